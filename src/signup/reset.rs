//! Account recovery by phone (a forgotten password): a code goes to the phone of an account,
//! and the code plus a new password replace the password. The token generation moves on and
//! every session ends through the logout broadcast.

use super::{Env, Field, SignupError, checks};
use crate::crypto::Secret;
use crate::logout::{self, Reason};
use crate::otp::{self, Purpose};
use crate::users::{self, Lookup, User, WriteError};

/// What a reset did.
#[derive(Debug)]
pub struct Done {
    /// The account, with its new password.
    pub user: User,
    /// Sessions ended.
    pub sessions_ended: usize,
}

/// Sends a reset code to `phone` when an account has it. The answer is the same either way,
/// and as quick (`Ok` with the normalised phone; the SMS goes out in the background, a failure
/// is logged), so neither the page nor its timing tells which numbers are registered; the rate
/// limits count both.
pub async fn send_code(env: Env<'_>, phone: &str, ip: Option<&str>) -> Result<String, SignupError> {
    let phone = checks::phone(phone).ok_or(SignupError::Invalid(Field::Phone))?;
    let known = users::by_lookup(env.store, env.data, Lookup::Phone, &phone).await?.is_some_and(|u| u.enabled);
    let issued = otp::issue(env.otp(), Purpose::Reset, &phone, ip).await?;
    if known {
        let (store, sms, now) = (env.store.clone(), env.sms.clone(), env.now);
        tokio::spawn(async move {
            if let Err(e) = otp::deliver(&store, sms.as_ref(), &issued, now).await {
                tracing::warn!(error = %e, "reset code not sent");
            }
        });
    }
    Ok(phone)
}

/// Replaces the password of the account with `phone` after its reset code is proven: the
/// generation moves on in the same write (every token dies), then every session ends with the
/// logout broadcast. The new password is hashed before the code is used.
pub async fn reset(env: Env<'_>, phone: &str, code: &str, password: Secret) -> Result<Done, SignupError> {
    let phone = checks::phone(phone).ok_or(SignupError::Invalid(Field::Phone))?;
    if code.trim().is_empty() {
        return Err(SignupError::Invalid(Field::Code));
    }
    users::check_password_policy(password.expose()).map_err(|_| SignupError::Invalid(Field::Password))?;
    // No hash for an entry that cannot succeed (no code sent, or expired).
    otp::live(env.otp(), Purpose::Reset, &phone).await?;
    let hash = env.passwords.hash(password).await?;
    otp::verify(env.otp(), Purpose::Reset, &phone, code).await?;
    let old = users::by_lookup(env.store, env.data, Lookup::Phone, &phone)
        .await?
        .filter(|u| u.enabled)
        .ok_or(SignupError::NoAccount)?;
    let mut user = old.clone();
    user.password_hash = hash;
    user.updated_at = env.now;
    users::update(env.store, env.data, &old, &mut user).await.map_err(|e| match e {
        WriteError::Store(e) => SignupError::Store(e),
        WriteError::UsernameTaken | WriteError::Duplicate(_) => SignupError::PhoneTaken,
    })?;
    let ended = logout::end_user_sessions(env.logout, &user.id, Reason::AccountChanged, None, None).await?;
    Ok(Done { user, sessions_ended: ended.len() })
}
