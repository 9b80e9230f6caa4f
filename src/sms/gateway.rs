//! The HTTP SMS gateway sender (SH-A.2 "短信模板发送短信"): one JSON POST per message with
//! the template id, the phone number and the template's parameters, a bearer token, a
//! deadline, through the server's one outgoing client (the `outbound` rules apply). The
//! contract is in the README ("SMS gateway").

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{Message, SmsConfig, SmsError, SmsSender, Template};
use crate::outbound::read_limited;

/// The largest gateway answer read, bytes.
const MAX_ANSWER: usize = 8 * 1024;

/// Posts messages to the configured gateway.
pub struct Gateway {
    url: String,
    token: String,
    template_signup: String,
    template_reset: String,
    sign_name: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl Gateway {
    /// A gateway sender from `[sms]`, using the server's outgoing client.
    pub fn new(cfg: &SmsConfig, http: reqwest::Client) -> Self {
        Self {
            url: cfg.gateway_url.clone(),
            token: cfg.gateway_token.clone(),
            template_signup: cfg.template_signup.clone(),
            template_reset: cfg.template_reset.clone(),
            sign_name: cfg.sign_name.clone(),
            timeout: Duration::from_millis(cfg.timeout_ms),
            http,
        }
    }
}

/// The gateway's answer: `code` 0 is accepted; anything else is refused with `msg`.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    msg: String,
}

#[async_trait]
impl SmsSender for Gateway {
    async fn send(&self, msg: &Message) -> Result<(), SmsError> {
        let template_id = match msg.template {
            Template::Signup => &self.template_signup,
            Template::Reset => &self.template_reset,
        };
        let params: serde_json::Map<String, serde_json::Value> =
            msg.params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let mut body = serde_json::json!({"template_id": template_id, "phone": msg.phone, "params": params});
        if !self.sign_name.is_empty()
            && let Some(o) = body.as_object_mut()
        {
            o.insert("sign_name".into(), self.sign_name.clone().into());
        }
        let mut req = self.http.post(&self.url).timeout(self.timeout).json(&body);
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        // Errors are reported without the URL's query and never with the body (it holds the code).
        let resp = req.send().await.map_err(|e| SmsError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let text = read_limited(resp, MAX_ANSWER).await.map_err(|e| SmsError::Unavailable(e.to_string()))?;
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(SmsError::Unavailable(format!("the gateway answered {status}")));
        }
        let answer: Option<Answer> = serde_json::from_slice(&text).ok();
        match (status.is_success(), answer) {
            (true, Some(Answer { code: 0, .. }) | None) => Ok(()),
            (_, Some(a)) => Err(SmsError::Refused(format!("{status}, code {}: {}", a.code, bounded(&a.msg)))),
            (false, None) => Err(SmsError::Refused(format!("the gateway answered {status}"))),
        }
    }
}

/// At most 200 characters of a gateway's message, for logs.
fn bounded(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}
