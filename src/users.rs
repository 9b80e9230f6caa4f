//! People who log in: user records, unique usernames, and the password rules; passwords are
//! hashed with argon2id by [`crate::passwords`].

use serde::{Deserialize, Serialize};

pub use crate::passwords::{PasswordError, PasswordPool};

use crate::crypto;
use crate::sealing::{DataKey, mask_phone};
use crate::store::{self, DynStore, StoreError, keys};

/// A person who can log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable subject identifier (`sub`).
    pub id: String,
    /// Login name, unique case-insensitively.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Display name (`name` claim).
    pub name: String,
    /// E-mail (`email` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Phone number (`phone_number` claim), sealed with the data key (SH-8.2); read it with
    /// [`User::phone`], write it with [`User::set_phone`].
    #[serde(default, rename = "phone", skip_serializing_if = "Option::is_none")]
    pub phone_sealed: Option<String>,
    /// Organizations the user belongs to (ids); they decide which applications the user may
    /// use (visible scope, SH-6.2.2; grey release, SH-6.2.7).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<String>,
    /// Disabled users cannot log in.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Token generation: bumped when the password changes or the account is disabled. Sessions,
    /// grants and refresh tokens record the generation they were issued under, and are dead
    /// once it moved on (see [`crate::tokens::validity`]), offline_access ones included.
    #[serde(default, rename = "gen")]
    pub generation: u32,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

fn yes() -> bool {
    true
}

impl User {
    fn phone_context(&self) -> String {
        format!("user:{}:phone", self.id)
    }
    /// The phone number in clear, for the one place that may release it (UserInfo with the
    /// `phone` scope).
    pub fn phone(&self, key: &DataKey) -> Option<String> {
        self.phone_sealed.as_deref().and_then(|s| key.open(s, &self.phone_context()))
    }
    /// Seals and sets (or clears) the phone number. The user's `id` must already be set.
    pub fn set_phone(&mut self, key: &DataKey, phone: Option<&str>) {
        self.phone_sealed = phone.filter(|p| !p.is_empty()).map(|p| key.seal(p, &self.phone_context()));
    }
    /// The phone number masked for display (SH-8.2).
    pub fn phone_masked(&self, key: &DataKey) -> Option<String> {
        self.phone(key).map(|p| mask_phone(&p))
    }
}

/// Validation rules for a new password: [`crate::passwords::policy`] (length, repetition, the
/// forbidden-common list).
pub fn check_password_policy(password: &str) -> Result<(), &'static str> {
    crate::passwords::policy::check(password).map_err(|e| match e {
        crate::passwords::policy::PolicyError::TooShort => "password must have at least 12 characters",
        crate::passwords::policy::PolicyError::TooLong => "password must have at most 256 bytes",
        crate::passwords::policy::PolicyError::Repetitive => "password is too repetitive",
        crate::passwords::policy::PolicyError::Common => {
            "password is too common; choose one that is not a well-known password"
        }
    })
}

/// Checks a username's shape.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    let ok_len = (1..=64).contains(&username.chars().count());
    let ok_chars = username.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_chars { Ok(()) } else { Err("username must be 1-64 letters, digits, '.', '_', '-' or '@'") }
}

/// Reads a user by id.
pub async fn get(store: &DynStore, id: &str) -> Result<Option<User>, StoreError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::user(id)).await
}

/// Reads a user by username.
pub async fn by_username(store: &DynStore, username: &str) -> Result<Option<User>, StoreError> {
    if check_username(username).is_err() {
        return Ok(None);
    }
    match store.get(&keys::username(username)).await? {
        Some(id) => get(store, &String::from_utf8_lossy(&id)).await,
        None => Ok(None),
    }
}

/// Creates a user; false when the username is taken.
pub async fn create(store: &DynStore, user: &User) -> Result<bool, StoreError> {
    if !store.put_new(&keys::username(&user.username), user.id.as_bytes(), None).await? {
        return Ok(false);
    }
    store::put_json(store.as_ref(), &keys::user(&user.id), user, None).await?;
    store.set_add(keys::USER_INDEX, &user.id, None).await?;
    Ok(true)
}

/// Whether a change from `old` to `new` must kill every token of the user: a new password
/// or a disabled account (DC-4). Re-enabling does not bring old tokens back.
pub fn credentials_changed(old: &User, new: &User) -> bool {
    old.password_hash != new.password_hash || (old.enabled && !new.enabled)
}

/// Replaces a user record (the username must not change through this call). When the change
/// is one of [`credentials_changed`], the token generation moves on first, so every session,
/// grant and token issued before is dead from this write on. Returns whether it did.
pub async fn update(store: &DynStore, old: &User, new: &mut User) -> Result<bool, StoreError> {
    let changed = credentials_changed(old, new);
    if changed {
        new.generation = old.generation.wrapping_add(1);
    }
    store::put_json(store.as_ref(), &keys::user(&new.id), new, None).await?;
    Ok(changed)
}

/// Deletes a user and frees the username; true when it existed.
pub async fn delete(store: &DynStore, id: &str) -> Result<bool, StoreError> {
    let Some(user) = get(store, id).await? else {
        return Ok(false);
    };
    store.delete(&keys::username(&user.username)).await?;
    store.set_remove(keys::USER_INDEX, id).await?;
    store.delete(&keys::user(id)).await
}

/// Lists users sorted by username.
pub async fn list(store: &DynStore) -> Result<Vec<User>, StoreError> {
    let ids = store.set_members(keys::USER_INDEX).await?;
    let keys: Vec<String> = ids.iter().map(|id| keys::user(id)).collect();
    let mut out: Vec<User> = Vec::with_capacity(keys.len());
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    out.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(out)
}

/// A new user id.
pub fn new_id() -> String {
    crypto::random_token(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("long enough, not common").is_ok());
        assert!(check_username("zhang.san").is_ok());
        assert!(check_username("bad name").is_err());
    }
}
