//! Sending one-time codes by SMS (SH-A.2 "短信模板发送短信"): one [`SmsSender`] interface, a
//! development sender that writes the code to the log (dev mode only) and an HTTP gateway
//! sender that posts template id + phone + parameters to the platform's SMS service.

pub mod config;
pub mod dev;
pub mod gateway;

use std::sync::Arc;

use async_trait::async_trait;

pub use config::{SenderKind, SmsConfig};

/// Which message a code is sent in; each maps to a template configured at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The code that proves a phone at registration (`/signup`).
    Signup,
    /// The code that authorizes a password reset (`/password/reset`).
    Reset,
}

impl Template {
    /// The wire name (logs, the dev outbox).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Reset => "reset",
        }
    }
}

/// One message: a template, the normalised phone number and the template's parameters
/// (`code`, `minutes`). Its `Debug` hides the phone and the parameters (SH-8.2: codes and phone
/// numbers never reach a log).
#[derive(Clone)]
pub struct Message {
    /// Which template.
    pub template: Template,
    /// The recipient, normalised (`+86` and 11 digits for mainland mobiles).
    pub phone: String,
    /// Template parameters, in order.
    pub params: Vec<(String, String)>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message").field("template", &self.template).finish_non_exhaustive()
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// No sender is configured (`sms.sender = "off"`).
    #[error("no SMS sender is configured")]
    Off,
    /// The gateway could not be reached, timed out or failed; retrying later may work.
    #[error("the SMS gateway is unavailable: {0}")]
    Unavailable(String),
    /// The gateway refused the message (its answer names why).
    #[error("the SMS gateway refused the message: {0}")]
    Refused(String),
}

/// Delivers one message. Implementations never log the phone number in clear nor, outside
/// dev mode, the parameters.
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// Sends `msg`; `Ok` once the gateway accepted it.
    async fn send(&self, msg: &Message) -> Result<(), SmsError>;
}

/// A shared handle to the configured sender.
pub type DynSms = Arc<dyn SmsSender>;

/// The sender `sms.sender` names ([`SmsConfig::validate`] already refused the dev sender
/// outside dev mode; it is refused here again, so no other path can build it in production).
pub fn from_config(cfg: &SmsConfig, dev_mode: bool, http: reqwest::Client) -> DynSms {
    match cfg.sender {
        SenderKind::Dev if dev_mode => Arc::new(dev::DevSender::new(cfg.dev_outbox.clone())),
        SenderKind::Http => Arc::new(gateway::Gateway::new(cfg, http)),
        SenderKind::Off | SenderKind::Dev => Arc::new(Off),
    }
}

/// The sender when none is configured: every send fails with [`SmsError::Off`].
pub struct Off;

#[async_trait]
impl SmsSender for Off {
    async fn send(&self, _msg: &Message) -> Result<(), SmsError> {
        Err(SmsError::Off)
    }
}
