//! The HTTP verifier: one JSON POST to the configured real-name service per try, through the
//! instance's outgoing client (outbound policy), with a timeout per call, a bounded answer,
//! retries with doubling backoff on timeouts, transport errors and 5xx answers only, and an
//! audit record of every call (outcome, billed or not; never the ID number). README: contract.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Checked, Claim, Verdict, Verifier, VerifyError, builtin};
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::config::VerifyConfig;
use crate::crypto::{self, Secret};
use crate::outbound::read_limited;

/// The largest answer read from the service, bytes.
const MAX_ANSWER: usize = 16 * 1024;

/// The real-name service client.
pub struct HttpVerifier {
    http: reqwest::Client,
    name: String,
    url: String,
    token: Option<Secret>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    audit: Audit,
}

/// The request body (README, "Real-name verification service").
#[derive(Serialize)]
struct Request<'a> {
    request_id: &'a str,
    name: &'a str,
    id_type: &'static str,
    id_number: &'a str,
}

/// The answer body.
#[derive(Deserialize)]
struct Answer {
    result: String,
    #[serde(default)]
    billed: Option<bool>,
}

/// What one call came to.
enum Call {
    /// A result.
    Answered(Verdict, bool),
    /// Worth another try (timeout, transport error, 5xx).
    Retry(String),
    /// Not worth another try (4xx, an unreadable answer).
    Fail(String),
}

impl HttpVerifier {
    /// The verifier of `config`, its credential read from `verify.token` or `verify.token_file`.
    pub fn new(config: &VerifyConfig, http: reqwest::Client, audit: Audit) -> Result<Self, String> {
        let token = if config.token_file.as_os_str().is_empty() {
            config.token.clone()
        } else {
            std::fs::read_to_string(&config.token_file)
                .map_err(|e| format!("verify.token_file: cannot read {}: {e}", config.token_file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        Ok(Self {
            http,
            name: config.name.clone(),
            url: config.url.clone(),
            token: Some(Secret(token)).filter(|t| !t.expose().is_empty()),
            timeout: Duration::from_millis(config.timeout_ms),
            retries: config.retries,
            backoff: Duration::from_millis(config.retry_backoff_ms),
            audit,
        })
    }

    /// The credential in use (tests only).
    #[cfg(test)]
    pub(super) fn token_for_test(&self) -> Option<&str> {
        self.token.as_ref().map(Secret::expose)
    }

    async fn call(&self, body: &Request<'_>) -> Call {
        let mut req = self.http.post(&self.url).timeout(self.timeout).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Call::Retry("timeout".into()),
            Err(e) => return Call::Retry(format!("transport: {}", e.without_url())),
        };
        let status = resp.status();
        if status.is_server_error() {
            return Call::Retry(format!("http_{}", status.as_u16()));
        }
        if !status.is_success() {
            return Call::Fail(format!("http_{}", status.as_u16()));
        }
        let bytes = match read_limited(resp, MAX_ANSWER).await {
            Ok(b) => b,
            Err(crate::outbound::BodyError::Read(e)) => return Call::Retry(format!("reading the answer: {e}")),
            Err(e) => return Call::Fail(e.to_string()),
        };
        let Ok(answer) = serde_json::from_slice::<Answer>(&bytes) else {
            return Call::Fail("bad_answer: not the contract's JSON".into());
        };
        let verdict = match answer.result.as_str() {
            "match" => Verdict::Match,
            "mismatch" => Verdict::Mismatch,
            "no_record" => Verdict::NoRecord,
            _ => return Call::Fail("bad_answer: unknown result".into()),
        };
        // A result is billed unless the service says otherwise.
        Call::Answered(verdict, answer.billed.unwrap_or(true))
    }

    async fn record(&self, claim: &Claim<'_>, request_id: &str, attempt: u32, outcome: &str, billed: bool) {
        let kind = match outcome {
            "match" => Outcome::Success,
            "mismatch" | "no_record" => Outcome::Denied,
            _ => Outcome::Failure,
        };
        let mut e = Event::new(Kind::IdentityVerification, kind)
            .actor(format!("user:{}", claim.subject))
            .subject(claim.subject)
            .detail(json!({
                "step": "call", "verifier": self.name, "request_id": request_id, "attempt": attempt,
                "outcome": outcome, "billed": billed, "id_type": claim.id_type.as_str(), "id_ref": claim.id_ref,
            }));
        if let Some(c) = claim.client_id {
            e = e.client(c);
        }
        self.audit.record(e).await;
    }
}

#[async_trait::async_trait]
impl Verifier for HttpVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn verify(&self, claim: &Claim<'_>) -> Result<Checked, VerifyError> {
        // A malformed number never costs a call.
        let number = builtin::check(claim.id_type, claim.id_number)?;
        // One id for every try of this verification, so the service can tell retries apart.
        let request_id = crypto::random_token(12);
        let body =
            Request { request_id: &request_id, name: claim.name, id_type: claim.id_type.as_str(), id_number: &number };
        let mut wait = self.backoff;
        let mut calls = 0;
        loop {
            calls += 1;
            match self.call(&body).await {
                Call::Answered(verdict, billed) => {
                    self.record(claim, &request_id, calls, verdict.as_str(), billed).await;
                    return Ok(Checked { verdict, billed, calls });
                }
                Call::Fail(why) => {
                    self.record(claim, &request_id, calls, &why, false).await;
                    tracing::warn!(verifier = %self.name, %why, "real-name service refused the call");
                    return Err(VerifyError::Unavailable(why));
                }
                Call::Retry(why) => {
                    self.record(claim, &request_id, calls, &why, false).await;
                    if calls > self.retries {
                        tracing::warn!(verifier = %self.name, %why, calls, "real-name service failed");
                        return Err(VerifyError::Unavailable(why));
                    }
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
            }
        }
    }
}
