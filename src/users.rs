//! People who log in: user records, unique usernames, and the password rules; passwords are
//! hashed with argon2id by [`crate::passwords`].

use serde::{Deserialize, Serialize};

pub use crate::passwords::{PasswordError, PasswordPool};

use crate::crypto;
use crate::identity::{AssuranceLevel, IdType, Verification, names};
use crate::sealing::DataKey;
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
    /// Identity document type (HL-5.1); `None` until one is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<IdType>,
    /// Identity document number, sealed with the data key (SH-8.2); read it with
    /// [`User::id_number`], write it with [`User::set_id_number`].
    #[serde(default, rename = "idn", skip_serializing_if = "Option::is_none")]
    pub id_number_sealed: Option<String>,
    /// The latest verification of this person (HL-6.1); `None`: registered, nothing checked
    /// beyond what registration did (see [`User::level`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
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
    /// A new, enabled natural person with nothing but a name and a password hash.
    pub fn new(username: String, name: String, password_hash: String, now: i64) -> Self {
        Self {
            id: new_id(),
            username,
            password_hash,
            name,
            email: None,
            email_verified: false,
            phone_sealed: None,
            id_type: None,
            id_number_sealed: None,
            verification: None,
            orgs: Vec::new(),
            enabled: true,
            generation: 0,
            created_at: now,
            updated_at: now,
        }
    }
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
    /// The phone number masked for display (SH-8.2): `138****5678`.
    pub fn phone_masked(&self, key: &DataKey) -> Option<String> {
        self.phone(key).map(|p| crate::identity::phone::mask(&p))
    }
    fn id_number_context(&self) -> String {
        format!("user:{}:idn", self.id)
    }
    /// The ID number in clear, for the one place that may release it (scope `idcard`).
    pub fn id_number(&self, key: &DataKey) -> Option<String> {
        self.id_number_sealed.as_deref().and_then(|s| key.open(s, &self.id_number_context()))
    }
    /// Seals and sets (or clears) the ID number. The user's `id` must already be set.
    pub fn set_id_number(&mut self, key: &DataKey, number: Option<&str>) {
        self.id_number_sealed = number.filter(|n| !n.is_empty()).map(|n| key.seal(n, &self.id_number_context()));
    }
    /// How well this person is known (HL-6.1): their latest verification's level, else
    /// registered.
    pub fn level(&self) -> AssuranceLevel {
        self.verification.as_ref().map_or(AssuranceLevel::Registered, |v| v.level)
    }
}

/// The blind-index lookups of a user (SH-8.2): sensitive values are found by a keyed hash,
/// never by opening every record. Each maps to at most one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// By phone number (as stored: normalise before sealing).
    Phone,
    /// By ID number (upper-cased).
    IdNumber,
}

impl Lookup {
    fn label(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::IdNumber => "idn",
        }
    }
    /// The store key under which the user id of `value` is found.
    pub fn key(self, data: &DataKey, value: &str) -> String {
        keys::user_lookup(self.label(), &data.derive(&format!("lookup:{}:{value}", self.label())))
    }
    /// The value of this lookup on `user`, in clear.
    fn of(self, data: &DataKey, user: &User) -> Option<String> {
        match self {
            Self::Phone => user.phone(data),
            Self::IdNumber => user.id_number(data),
        }
    }
    /// Every lookup.
    pub const ALL: [Self; 2] = [Self::Phone, Self::IdNumber];
}

/// Reads the user a blind-index lookup points to.
pub async fn by_lookup(
    store: &DynStore,
    data: &DataKey,
    lookup: Lookup,
    value: &str,
) -> Result<Option<User>, StoreError> {
    if value.is_empty() || value.len() > 256 {
        return Ok(None);
    }
    match store.get(&lookup.key(data, value)).await? {
        Some(id) => get(store, &String::from_utf8_lossy(&id)).await,
        None => Ok(None),
    }
}

/// Why a user could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The username is taken.
    #[error("the username is taken")]
    UsernameTaken,
    /// Another user has this phone number or ID number.
    #[error("another account has this {}", match .0 { Lookup::Phone => "phone number", Lookup::IdNumber => "ID number" })]
    Duplicate(Lookup),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Creates a user with its unique username and blind indexes. Claims run first (username,
/// then each lookup), the record last, so a crash in between leaves only claims that point to
/// no record; a claim found pointing to a missing record is taken over.
pub async fn create(store: &DynStore, data: &DataKey, user: &User) -> Result<(), WriteError> {
    // In flight first: a concurrent create cannot take our claims over before our record exists.
    store::claim::begin(store, &user.id).await?;
    let username = keys::username(&user.username);
    if !claim(store, &username, &user.id).await? {
        store::claim::end(store, &user.id).await?;
        return Err(WriteError::UsernameTaken);
    }
    for lookup in Lookup::ALL {
        if let Some(v) = lookup.of(data, user)
            && !claim(store, &lookup.key(data, &v), &user.id).await?
        {
            // Given up: what we claimed is free again at once (not after the in-flight mark).
            release_claims(store, data, user, None).await?;
            store::claim::release(store, &username, &user.id).await?;
            store::claim::end(store, &user.id).await?;
            return Err(WriteError::Duplicate(lookup));
        }
    }
    names::add(store, names::Realm::Users(data), &user.id, &user.name).await?;
    crate::directory::people::on_user_write(store, None, Some(user)).await?;
    store::put_json(store.as_ref(), &keys::user(&user.id), user, None).await?;
    store.set_add(keys::USER_INDEX, &user.id, None).await?;
    store::claim::end(store, &user.id).await?;
    Ok(())
}

/// Claims a unique key for `id` (`store::claim`: taken over only from a holder that is gone).
async fn claim(store: &DynStore, key: &str, id: &str) -> Result<bool, StoreError> {
    store::claim::claim(store, key, id, keys::user).await
}

/// Frees the lookups of `user` (those still pointing to it), except the ones `keep` has too.
async fn release_claims(store: &DynStore, data: &DataKey, user: &User, keep: Option<&User>) -> Result<(), StoreError> {
    for lookup in Lookup::ALL {
        let Some(v) = lookup.of(data, user) else { continue };
        if keep.and_then(|k| lookup.of(data, k)).as_deref() == Some(v.as_str()) {
            continue;
        }
        // Released, not deleted: a compare-and-set can only replace, and an unconditional
        // delete could remove a claim another user took over meanwhile.
        store.put_if(&lookup.key(data, &v), Some(user.id.as_bytes()), b"").await?;
    }
    Ok(())
}

/// Whether a change from `old` to `new` must kill every token of the user: a new password
/// or a disabled account (DC-4). Re-enabling does not bring old tokens back.
pub fn credentials_changed(old: &User, new: &User) -> bool {
    old.password_hash != new.password_hash || (old.enabled && !new.enabled)
}

/// Replaces a user record (the username must not change through this call). New phone or ID
/// numbers are claimed first (refused when another user holds them), the record is written,
/// then the old ones are freed. When the change is one of [`credentials_changed`], the token
/// generation moves on first, so every session, grant and token issued before is dead from this
/// write on. Returns whether it did.
pub async fn update(store: &DynStore, data: &DataKey, old: &User, new: &mut User) -> Result<bool, WriteError> {
    for lookup in Lookup::ALL {
        if let Some(v) = lookup.of(data, new)
            && lookup.of(data, old).as_deref() != Some(v.as_str())
            && !claim(store, &lookup.key(data, &v), &new.id).await?
        {
            return Err(WriteError::Duplicate(lookup));
        }
    }
    let changed = credentials_changed(old, new);
    if changed {
        new.generation = old.generation.wrapping_add(1);
    }
    if old.name != new.name {
        names::add(store, names::Realm::Users(data), &new.id, &new.name).await?;
    }
    crate::directory::people::on_user_write(store, Some(old), Some(new)).await?;
    store::put_json(store.as_ref(), &keys::user(&new.id), new, None).await?;
    crate::directory::people::after_user_write(store, Some(old), new).await?;
    release_claims(store, data, old, Some(new)).await?;
    names::remove(store, names::Realm::Users(data), &new.id, &old.name, Some(&new.name)).await?;
    Ok(changed)
}

/// Deletes a user and frees the username and lookups; true when it existed. The record goes
/// first (its tokens die with it), the claims after: a claim left by a crash points to no
/// record and is taken over by the next claimant.
pub async fn delete(store: &DynStore, data: &DataKey, id: &str) -> Result<bool, StoreError> {
    let Some(user) = get(store, id).await? else {
        return Ok(false);
    };
    let existed = store.delete(&keys::user(id)).await?;
    store.set_remove(keys::USER_INDEX, id).await?;
    store.delete(&keys::username(&user.username)).await?;
    release_claims(store, data, &user, None).await?;
    names::remove(store, names::Realm::Users(data), id, &user.name, None).await?;
    crate::directory::people::on_user_write(store, Some(&user), None).await?;
    Ok(existed)
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
