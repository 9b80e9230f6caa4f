//! `[otp]`: how long one-time codes live, how many wrong entries they survive, and how often
//! they may be sent per phone and per client address.

use serde::Deserialize;

use crate::config::ConfigError;

/// `[otp]` settings (times in seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpConfig {
    /// Digits in a code.
    pub length: u32,
    /// Lifetime of a code.
    pub ttl: i64,
    /// Wrong entries before a code is void.
    pub max_tries: u32,
    /// Seconds before another code may be sent to the same phone.
    pub resend_after: i64,
    /// Codes sent to one phone per window.
    pub per_phone: u32,
    /// Codes sent from one client address per window.
    pub per_ip: u32,
    /// Length of the counting window.
    pub window: i64,
}

impl OtpConfig {
    /// Fails fast naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        if !(6..=8).contains(&self.length) {
            return Err(invalid("otp.length", "must be 6..=8 digits"));
        }
        if !(60..=1800).contains(&self.ttl) {
            return Err(invalid("otp.ttl", "must be 60..=1800 seconds"));
        }
        if !(1..=10).contains(&self.max_tries) {
            return Err(invalid("otp.max_tries", "must be 1..=10"));
        }
        if !(0..=self.ttl).contains(&self.resend_after) {
            return Err(invalid("otp.resend_after", "must be 0..=otp.ttl seconds"));
        }
        if !(60..=86_400).contains(&self.window) {
            return Err(invalid("otp.window", "must be 60..=86400 seconds"));
        }
        if self.per_phone == 0 || self.per_ip == 0 {
            return Err(invalid("otp.per_phone", "per_phone and per_ip must be at least 1"));
        }
        Ok(())
    }
}
