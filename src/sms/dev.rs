//! The development sender: writes each code to the log (the phone masked) and, when
//! `sms.dev_outbox` is set, appends the whole message as a JSON line to that file, where
//! tests and demos read the code. Built in dev mode only.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{Message, SmsError, SmsSender};
use crate::sealing::mask_phone;

/// Writes codes to the log and the optional outbox file.
pub struct DevSender {
    outbox: Option<PathBuf>,
    lock: std::sync::Mutex<()>,
}

impl DevSender {
    /// A dev sender; an empty `outbox` path means the log only.
    pub fn new(outbox: PathBuf) -> Self {
        Self { outbox: (!outbox.as_os_str().is_empty()).then_some(outbox), lock: std::sync::Mutex::new(()) }
    }
}

#[async_trait]
impl SmsSender for DevSender {
    async fn send(&self, msg: &Message) -> Result<(), SmsError> {
        let params: Vec<String> = msg.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tracing::warn!(
            template = msg.template.as_str(),
            phone = %mask_phone(&msg.phone),
            params = %params.join(" "),
            "dev SMS sender (dev mode only): message not sent"
        );
        let Some(path) = &self.outbox else {
            return Ok(());
        };
        let params: serde_json::Map<String, serde_json::Value> =
            msg.params.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let line = serde_json::json!({"template": msg.template.as_str(), "phone": msg.phone, "params": params});
        // One writer at a time, so lines never interleave.
        let _held = self.lock.lock().map_err(|_| SmsError::Unavailable("dev outbox lock poisoned".into()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| SmsError::Unavailable(format!("dev outbox: {e}")))?;
        writeln!(f, "{line}").map_err(|e| SmsError::Unavailable(format!("dev outbox: {e}")))
    }
}
