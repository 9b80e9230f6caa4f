//! One-time codes sent by SMS (GB-6.4a registration, account recovery; SH-8.2): short-lived,
//! single-use (an atomic take), void after `max_tries` wrong entries, rate-limited per phone
//! and per client address in the store (so every instance agrees), compared in constant time
//! through a keyed MAC, and never logged. The phone is never part of a key: keys carry its
//! keyed hash.

pub mod config;

use serde::{Deserialize, Serialize};

pub use config::OtpConfig;

use crate::crypto::{self, Secret};
use crate::sealing::DataKey;
use crate::sms::{Message, SmsError, SmsSender, Template};
use crate::store::{self, DynStore, StoreError, keys};

/// What a code is for: a code sent for one purpose never works for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a new account (`/signup`).
    Signup,
    /// Resetting a forgotten password (`/password/reset`).
    Reset,
}

impl Purpose {
    /// The key label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Reset => "reset",
        }
    }
    fn template(self) -> Template {
        match self {
            Self::Signup => Template::Signup,
            Self::Reset => Template::Reset,
        }
    }
}

/// Everything code handling needs besides the phone.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store (shared by every instance).
    pub store: &'a DynStore,
    /// The data key: keyed hashes of phones, MACs of codes.
    pub data: &'a DataKey,
    /// Lifetimes and limits.
    pub cfg: &'a OtpConfig,
    /// Current time.
    pub now: i64,
}

/// Why a code was not sent or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    /// No live code for this phone: never sent, already used, replaced by a newer one, or voided.
    #[error("no valid code for this phone; request a new one")]
    NoCode,
    /// The code's lifetime is over.
    #[error("the code has expired; request a new one")]
    Expired,
    /// A wrong code; `remaining` more entries are allowed before the code is void.
    #[error("wrong code; {remaining} tries left")]
    Wrong {
        /// Entries left.
        remaining: u32,
    },
    /// The code was entered wrongly too often and is void.
    #[error("too many wrong entries; request a new code")]
    TooManyTries,
    /// Not digits of the configured length.
    #[error("a code is {0} digits")]
    Malformed(u32),
    /// A code was sent to this phone moments ago.
    #[error("a code was just sent; retry in {retry_after} s")]
    TooSoon {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Too many codes for this phone or from this address in the window.
    #[error("too many codes requested; retry in {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The SMS sender failed or none is configured.
    #[error(transparent)]
    Sms(#[from] SmsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored code: its id, the keyed MAC of its digits, and its expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    mac: String,
    exp: i64,
}

/// A code on its way: how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Seconds the code is valid.
    pub ttl: i64,
}

/// Seconds an expired code's record is kept to say so.
const EXPIRED_KEPT: i64 = 600;

fn phone_key(data: &DataKey, phone: &str) -> String {
    data.derive(&format!("otp:phone:{phone}"))
}

fn mac(data: &DataKey, id: &str, code: &str) -> String {
    data.derive(&format!("otp:code:{id}:{code}"))
}

/// A uniformly random code of `len` digits from the system CSPRNG (rejection sampling).
fn random_code(len: u32) -> Secret {
    let modulus = 10u64.pow(len);
    let limit = u64::MAX - u64::MAX % modulus;
    loop {
        let n = crypto::random_u64();
        if n < limit {
            return Secret(format!("{:0width$}", n % modulus, width = len as usize));
        }
    }
}

/// Counts one more send against `subject` over a sliding window; `Err` past `limit`.
///
/// Two counters per subject: this `window`-long bucket's sends and the previous bucket's, the
/// latter weighted by how much of it still lies within one window of now (the usual
/// two-counter approximation of a sliding log). A burst just before a bucket boundary still
/// counts just after it, so any `window`-long stretch sees about `limit` sends at most; fixed
/// buckets allowed twice that around a boundary. Refused asks count too, as before.
async fn count(ctx: Ctx<'_>, subject: &str, limit: u32) -> Result<(), OtpError> {
    let w = ctx.cfg.window.max(1);
    let bucket = ctx.now.div_euclid(w);
    // Kept two windows: the bucket is read as the previous one during the whole next window.
    let ttl = u64::try_from(w.saturating_mul(2)).unwrap_or(7200);
    let n = ctx.store.incr(&keys::otp_sent(subject, bucket), ttl).await?;
    let prev = ctx.store.get(&keys::otp_sent(subject, bucket - 1)).await?;
    let prev = prev.and_then(|v| String::from_utf8_lossy(&v).parse::<i64>().ok()).unwrap_or(0);
    match sliding_wait(n, prev, ctx.now - bucket * w, w, i64::from(limit)) {
        None => Ok(()),
        Some(retry_after) => Err(OtpError::RateLimited { retry_after }),
    }
}

/// `None` when `n` sends in this bucket (this one included), `prev` in the previous one,
/// `elapsed` seconds into this `w`-long bucket, fit `limit`; else the seconds until one more
/// would fit if nothing else were asked meanwhile (at least 1).
fn sliding_wait(n: i64, prev: i64, elapsed: i64, w: i64, limit: i64) -> Option<u64> {
    // In whole units of 1/w: n + prev * (w - elapsed) / w <= limit.
    let weighted = |n: i64, prev: i64, elapsed: i64| n * w + prev * (w - elapsed);
    if weighted(n, prev, elapsed) <= limit * w {
        return None;
    }
    // One more in this bucket fits once the previous bucket's share has shrunk enough.
    let room = limit - n - 1;
    if room >= 0 && prev > 0 {
        // prev * (w - e) <= room * w  <=>  e >= w - room * w / prev (rounded up).
        let at = w - (room * w) / prev;
        if at < w {
            return Some(u64::try_from(at - elapsed).unwrap_or(1).max(1));
        }
    }
    // Else in the next bucket, where this bucket's `n` is the weighted one:
    // w + n * (w - e) <= limit * w  <=>  e >= w - (limit - 1) * w / n (rounded up).
    let at = if n > 0 { (w - ((limit - 1) * w) / n).max(0) } else { 0 };
    Some(u64::try_from(w - elapsed + at).unwrap_or(1).max(1))
}

/// A code stored and ready to go out: its message and what [`deliver`] takes back if sending
/// fails. Its `Debug` shows neither the code nor the phone.
pub struct Issued {
    /// The SMS to send.
    pub message: Message,
    key: String,
    pause: String,
    id: String,
    exp: i64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("message", &self.message).finish_non_exhaustive()
    }
}

/// Sends a fresh code for `purpose` to `phone` (normalised) through `sms`, asked from `ip`:
/// [`issue`], then [`deliver`].
pub async fn send(
    ctx: Ctx<'_>,
    sms: &dyn SmsSender,
    purpose: Purpose,
    phone: &str,
    ip: Option<&str>,
) -> Result<Sent, OtpError> {
    let issued = issue(ctx, purpose, phone, ip).await?;
    deliver(ctx.store, sms, &issued, ctx.now).await?;
    Ok(Sent { ttl: ctx.cfg.ttl })
}

/// Makes a code for `purpose` and `phone`, asked from `ip`, and stores it (replacing any older
/// one). The address is counted first, then the phone's resend pause, then the phone's count.
pub async fn issue(ctx: Ctx<'_>, purpose: Purpose, phone: &str, ip: Option<&str>) -> Result<Issued, OtpError> {
    let pk = phone_key(ctx.data, phone);
    count(ctx, &format!("ip:{}", crate::guard::address(ip)), ctx.cfg.per_ip).await?;
    let pause = keys::otp_pause(purpose.as_str(), &pk);
    if ctx.cfg.resend_after > 0 {
        let until = ctx.now + ctx.cfg.resend_after;
        let ttl = u64::try_from(ctx.cfg.resend_after).unwrap_or(60);
        if !ctx.store.put_new(&pause, until.to_string().as_bytes(), Some(ttl)).await? {
            let held = ctx.store.get(&pause).await?;
            let until = held.and_then(|v| String::from_utf8_lossy(&v).parse::<i64>().ok()).unwrap_or(until);
            if until > ctx.now {
                return Err(OtpError::TooSoon { retry_after: u64::try_from(until - ctx.now).unwrap_or(1).max(1) });
            }
            // A pause whose time is over but whose key outlived it (clock skew): renew it.
            ctx.store.put(&pause, (ctx.now + ctx.cfg.resend_after).to_string().as_bytes(), Some(ttl)).await?;
        }
    }
    count(ctx, &format!("phone:{pk}"), ctx.cfg.per_phone).await?;
    let code = random_code(ctx.cfg.length);
    let id = crypto::random_token(12);
    let record = Record { mac: mac(ctx.data, &id, code.expose()), id, exp: ctx.now + ctx.cfg.ttl };
    let key = keys::otp_code(purpose.as_str(), &pk);
    // Kept a while past its expiry, so a late entry is told "expired" rather than "no code".
    let keep = store::ttl_until(record.exp + EXPIRED_KEPT, ctx.now);
    store::put_json(ctx.store.as_ref(), &key, &record, Some(keep)).await?;
    let minutes = (ctx.cfg.ttl + 59) / 60;
    let message = Message {
        template: purpose.template(),
        phone: phone.to_owned(),
        params: vec![("code".into(), code.expose().to_owned()), ("minutes".into(), minutes.to_string())],
    };
    Ok(Issued { message, key, pause, id: record.id, exp: record.exp })
}

/// Sends an issued code. When sending fails the code is taken back (only this one: a newer
/// one sent meanwhile stays) and the resend pause lifted, so the person may ask again at once.
pub async fn deliver(store: &DynStore, sms: &dyn SmsSender, issued: &Issued, now: i64) -> Result<(), OtpError> {
    let Err(e) = sms.send(&issued.message).await else {
        return Ok(());
    };
    let key = &issued.key;
    if let Some(bytes) = store.take(key).await?
        && let Ok(other) = store::decode::<Record>(key, &bytes)
        && other.id != issued.id
    {
        store.put_new(key, &bytes, Some(store::ttl_until(other.exp.max(issued.exp), now))).await?;
    }
    store.delete(&issued.pause).await?;
    Err(e.into())
}

/// Whether a live code waits for `purpose` and `phone`: the refusal [`verify`] would give
/// when none does, so callers skip costly work (a password hash) for an entry that cannot
/// succeed. Uses nothing up.
pub async fn live(ctx: Ctx<'_>, purpose: Purpose, phone: &str) -> Result<(), OtpError> {
    let key = keys::otp_code(purpose.as_str(), &phone_key(ctx.data, phone));
    match store::get_json::<Record>(ctx.store.as_ref(), &key).await? {
        None => Err(OtpError::NoCode),
        Some(r) if r.exp <= ctx.now => Err(OtpError::Expired),
        Some(_) => Ok(()),
    }
}

/// Checks `code` for `purpose` and `phone` and, when right, uses it up: exactly one caller
/// ever succeeds with one code. Each wrong entry counts; past `max_tries` the code is void.
pub async fn verify(ctx: Ctx<'_>, purpose: Purpose, phone: &str, code: &str) -> Result<(), OtpError> {
    let code = code.trim();
    if code.len() != ctx.cfg.length as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OtpError::Malformed(ctx.cfg.length));
    }
    let key = keys::otp_code(purpose.as_str(), &phone_key(ctx.data, phone));
    let Some(record) = store::get_json::<Record>(ctx.store.as_ref(), &key).await? else {
        return Err(OtpError::NoCode);
    };
    if record.exp <= ctx.now {
        ctx.store.delete(&key).await?;
        return Err(OtpError::Expired);
    }
    let tries = ctx.store.incr(&keys::otp_tries(&record.id), store::ttl_until(record.exp, ctx.now)).await?;
    let max = i64::from(ctx.cfg.max_tries);
    if tries > max {
        ctx.store.delete(&key).await?;
        return Err(OtpError::TooManyTries);
    }
    if !crypto::ct_eq(mac(ctx.data, &record.id, code).as_bytes(), record.mac.as_bytes()) {
        if tries == max {
            ctx.store.delete(&key).await?;
        }
        return Err(OtpError::Wrong { remaining: u32::try_from(max - tries).unwrap_or(0) });
    }
    // The single use: whoever takes the record wins. A newer code found instead is put back.
    match ctx.store.take(&key).await? {
        Some(bytes) => match store::decode::<Record>(&key, &bytes) {
            Ok(r) if r.id == record.id => Ok(()),
            Ok(other) => {
                ctx.store.put_new(&key, &bytes, Some(store::ttl_until(other.exp, ctx.now))).await?;
                Err(OtpError::NoCode)
            }
            Err(_) => Err(OtpError::NoCode),
        },
        None => Err(OtpError::NoCode),
    }
}

impl OtpError {
    /// Seconds to wait before asking again, for the throttling errors.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooSoon { retry_after } | Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
