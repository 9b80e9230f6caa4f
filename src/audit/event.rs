//! One audit event: what happened, who did it, to which application, with what outcome.
//! Identifiers only, never secrets (passwords, client secrets, tokens, codes, keys), in the
//! fields or in `detail`; the writer bounds every field before writing (`bound`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// What an event records. Closed: a new kind is a code change, so queries can rely on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A call of the admin API.
    AdminAction,
    /// An application moved through its lifecycle (registered, approved, suspended ...).
    AppTransition,
    /// A person signed in.
    LoginSuccess,
    /// A sign-in was refused.
    LoginFailure,
    /// An access or ID token was issued.
    TokenIssued,
    /// A refresh token was used.
    TokenRefreshed,
    /// A token was revoked.
    TokenRevoked,
    /// A token was exchanged (RFC 8693).
    TokenExchanged,
    /// A session ended.
    Logout,
    /// A person granted or refused consent.
    Consent,
    /// A client secret or signing key was rotated.
    SecretRotated,
    /// A caller was throttled.
    RateLimited,
    /// A call to or from a peer platform.
    Federation,
    /// A password or client-secret attempt was refused unchecked after earlier failures
    /// (RFC 6749 s10.10).
    CredentialThrottled,
    /// Failures started a temporary lockout of an account or client (NIST SP 800-63B s5.2.2).
    LockoutStarted,
    /// An admin ended an account's lockout and cleared its failures.
    AccountUnlocked,
    /// A real-name verification (GB-6.4a): each call of the verifier, and each result.
    IdentityVerification,
    /// A person's own account changed: registered, password reset or changed, a session
    /// ended or a consent revoked from `/account` (`detail.action` says which).
    Account,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 18] = [
        Kind::AdminAction,
        Kind::AppTransition,
        Kind::LoginSuccess,
        Kind::LoginFailure,
        Kind::TokenIssued,
        Kind::TokenRefreshed,
        Kind::TokenRevoked,
        Kind::TokenExchanged,
        Kind::Logout,
        Kind::Consent,
        Kind::SecretRotated,
        Kind::RateLimited,
        Kind::Federation,
        Kind::CredentialThrottled,
        Kind::LockoutStarted,
        Kind::AccountUnlocked,
        Kind::IdentityVerification,
        Kind::Account,
    ];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AdminAction => "admin_action",
            Kind::AppTransition => "app_transition",
            Kind::LoginSuccess => "login_success",
            Kind::LoginFailure => "login_failure",
            Kind::TokenIssued => "token_issued",
            Kind::TokenRefreshed => "token_refreshed",
            Kind::TokenRevoked => "token_revoked",
            Kind::TokenExchanged => "token_exchanged",
            Kind::Logout => "logout",
            Kind::Consent => "consent",
            Kind::SecretRotated => "secret_rotated",
            Kind::RateLimited => "rate_limited",
            Kind::Federation => "federation",
            Kind::CredentialThrottled => "credential_throttled",
            Kind::LockoutStarted => "lockout_started",
            Kind::AccountUnlocked => "account_unlocked",
            Kind::IdentityVerification => "identity_verification",
            Kind::Account => "account",
        }
    }

    /// Parses a wire value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How the recorded action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It failed (bad input, bad credentials, an error).
    Failure,
    /// It was refused by policy (scope, state, throttling).
    Denied,
}

impl Outcome {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    /// Parses a wire value.
    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Success, Outcome::Failure, Outcome::Denied].into_iter().find(|o| o.as_str() == s)
    }
}

/// One audit event, one JSON line in the files. Build it with [`Event::new`] and the setters;
/// [`super::Audit::record`] fills `id`, `time`, `ts` and `origin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Random identifier, unique per event.
    #[serde(default)]
    pub id: String,
    /// When it happened, unix seconds.
    #[serde(default)]
    pub time: i64,
    /// `time` as RFC 3339 UTC, for people reading the files.
    #[serde(default)]
    pub ts: String,
    /// What happened.
    pub kind: Kind,
    /// Who did it: `client:<client_id>`, `user:<sub>`, `system` or `platform:<issuer>`.
    pub actor: String,
    /// The OAuth client involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The application (business system) involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The person concerned (`sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The caller's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The HTTP request id (`X-Request-Id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Kind-specific facts (scopes, grant type, old and new state ...); never secrets.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
    /// Issuer of the platform where it happened; forwarded events keep the downstream's.
    #[serde(default)]
    pub origin: String,
    /// Forwarded events only (GB-6.8c): the authenticated client that sent it here
    /// (`client:<id>`), set by this platform whatever the line said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingested_by: Option<String>,
}

impl Event {
    /// A new event by `system`; set the other fields with the builder methods.
    pub fn new(kind: Kind, outcome: Outcome) -> Self {
        Self {
            id: String::new(),
            time: 0,
            ts: String::new(),
            kind,
            actor: "system".to_owned(),
            client_id: None,
            app_id: None,
            subject: None,
            ip: None,
            request_id: None,
            outcome,
            detail: serde_json::Value::Null,
            origin: String::new(),
            ingested_by: None,
        }
    }

    /// Sets who did it (`client:<id>`, `user:<sub>`, `system`, `platform:<issuer>`).
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// Sets the OAuth client.
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the application.
    pub fn app(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Sets the person concerned.
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.subject = Some(sub.into());
        self
    }

    /// Sets the caller's IP address.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the kind-specific facts. Never put a secret here.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Appends the event's JSON line (without the newline): the bytes `serde_json::to_vec`
    /// gives, in the derive's field order, with [`crate::json::push_str`] for the strings,
    /// which are identifiers nearly always, and [`crate::json::push_value`] for `detail` (issue
    /// 13: the writer's serde_json pass scanned every byte for escapes). It cannot fail: a
    /// `Value` always has a JSON text.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json::{push_int_member, push_member as field, push_str};
        out.extend_from_slice(b"{\"id\":");
        push_str(out, &self.id);
        push_int_member(out, "time", self.time);
        field(out, "ts", &self.ts);
        field(out, "kind", self.kind.as_str());
        field(out, "actor", &self.actor);
        let optional = [
            ("client_id", &self.client_id),
            ("app_id", &self.app_id),
            ("subject", &self.subject),
            ("ip", &self.ip),
            ("request_id", &self.request_id),
        ];
        for (name, v) in optional {
            if let Some(v) = v {
                field(out, name, v);
            }
        }
        field(out, "outcome", self.outcome.as_str());
        if !self.detail.is_null() {
            out.extend_from_slice(b",\"detail\":");
            crate::json::push_value(out, &self.detail);
        }
        field(out, "origin", &self.origin);
        if let Some(v) = &self.ingested_by {
            field(out, "ingested_by", v);
        }
        out.push(b'}');
    }

    /// Order of events in queries: by time, then id.
    pub(crate) fn key_cmp(&self, other: &Event) -> Ordering {
        self.time.cmp(&other.time).then_with(|| self.id.cmp(&other.id))
    }
}

/// RFC 3339 UTC of unix seconds; empty when out of range.
pub(crate) fn rfc3339(time: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // The files' lines are the derive's bytes: every kind and outcome, every optional field
    // present or absent, detail absent or nested, strings that need escaping in any field.
    #[test]
    fn write_json_writes_what_serde_json_writes() {
        let outcomes = [Outcome::Success, Outcome::Failure, Outcome::Denied];
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let mut e = Event::new(kind, outcomes[i % 3]);
            e.id = format!("0000019ae{i:05x}AbC_-.tz-1");
            e.time = 1_764_979_200 + i as i64;
            e.ts = rfc3339(e.time);
            e.origin = "https://tz.example.gov.cn".into();
            let mut cases = vec![e.clone()];
            let full = e
                .clone()
                .actor("client:demo-web")
                .client("demo-web")
                .app("app-1")
                .subject("sub-中文")
                .ip("203.0.113.9")
                .request_id("req-1")
                .detail(json!({"grant_type": "client_credentials", "scope": "a b", "n": -3, "ok": true,
                    "list": [1, "x", null], "nested": {"q\"": "line\nbreak"}}));
            cases.push(full.clone());
            let mut forwarded = full;
            forwarded.ingested_by = Some("client:county".into());
            forwarded.actor = "evil\"\\\u{1}\u{7f}".into();
            forwarded.detail = json!("just a string");
            cases.push(forwarded);
            for e in &cases {
                let mut line = Vec::new();
                e.write_json(&mut line);
                let want = serde_json::to_vec(e).expect("serializes");
                assert_eq!(String::from_utf8_lossy(&line), String::from_utf8_lossy(&want));
            }
        }
    }
}
