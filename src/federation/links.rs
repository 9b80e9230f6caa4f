//! Who an upstream user is here: a link from the upstream `iss`+`sub` pair (per trust) to a
//! local account, made on first arrival (by the trust's rule, creating the account when the
//! trust allows) or by registration sync (GB-6.4a), so the person is the same from either side.

use serde::Deserialize;

use super::{FedError, LinkBy, Trust};
use crate::keys::Keys;
use crate::store::{DynStore, StoreError, keys};
use crate::users::{self, User, WriteError};

/// The password hash of accounts that only log in through a trusted platform: not a PHC
/// string, so no password ever verifies against it.
pub const NO_PASSWORD: &str = "!federated";

/// What the upstream told us about the person (ID token `sub` plus UserInfo claims).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Person {
    /// Subject at the upstream.
    #[serde(default)]
    pub sub: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Username there.
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the upstream verified the e-mail.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// Phone.
    #[serde(default)]
    pub phone_number: Option<String>,
}

/// The local account linked to `upstream_sub` of `trust`, if any.
pub async fn linked(store: &DynStore, trust: &str, upstream_sub: &str) -> Result<Option<User>, StoreError> {
    match store.get(&keys::fed_link(trust, upstream_sub)).await? {
        Some(local) => users::get(store, &String::from_utf8_lossy(&local)).await,
        None => Ok(None),
    }
}

/// Records the link both ways.
pub async fn link(store: &DynStore, trust: &str, upstream_sub: &str, local_sub: &str) -> Result<(), StoreError> {
    store.put(&keys::fed_link(trust, upstream_sub), local_sub.as_bytes(), None).await?;
    store.set_add(&keys::fed_links_of(local_sub), &format!("{trust}:{upstream_sub}"), None).await
}

/// The upstream subjects linked to a local account, as `(trust, upstream sub)`.
pub async fn links_of(store: &DynStore, local_sub: &str) -> Result<Vec<(String, String)>, StoreError> {
    let members = store.set_members(&keys::fed_links_of(local_sub)).await?;
    Ok(members.iter().filter_map(|m| m.split_once(':')).map(|(t, s)| (t.to_owned(), s.to_owned())).collect())
}

fn accepted<'a>(trust: &Trust, claim: &str, value: Option<&'a String>) -> Option<&'a str> {
    value.filter(|_| trust.accept_claims.iter().any(|c| c == claim)).map(String::as_str)
}

/// Copies the accepted claims onto a local account; true when anything changed.
fn apply_claims(trust: &Trust, keys_: &Keys, user: &mut User, p: &Person) -> bool {
    let before = user.clone();
    if let Some(n) = accepted(trust, "name", p.name.as_ref()) {
        n.clone_into(&mut user.name);
    }
    if let Some(e) = accepted(trust, "email", p.email.as_ref()) {
        user.email = Some(e.to_owned());
        user.email_verified = p.email_verified.unwrap_or(false);
    }
    // Stored in the one normalised form (SH-8.2), so the blind index finds the number however
    // the upstream wrote it; a number that is not a mainland mobile number is not copied.
    let phone = accepted(trust, "phone_number", p.phone_number.as_ref())
        .and_then(|ph| crate::identity::phone::normalise(ph).ok());
    if let Some(ph) = phone
        && user.phone(keys_.data()).as_deref() != Some(ph.as_str())
    {
        user.set_phone(keys_.data(), Some(&ph));
    }
    *user != before
}

/// The local account of an upstream person: by link, else by the trust's rule, else created
/// when the trust allows; the link is recorded. Disabled accounts are refused.
pub async fn local_account(
    store: &DynStore,
    keys_: &Keys,
    trust: &Trust,
    p: &Person,
    now: i64,
) -> Result<User, FedError> {
    let found = match linked(store, &trust.id, &p.sub).await? {
        Some(u) => Some(u),
        None => {
            let by_rule = match (&trust.link_by, &p.preferred_username) {
                (LinkBy::PreferredUsername, Some(name)) => users::by_username(store, name).await?,
                _ => None,
            };
            if let Some(u) = &by_rule {
                link(store, &trust.id, &p.sub, &u.id).await?;
            }
            by_rule
        }
    };
    let mut user = match found {
        Some(u) => u,
        None if trust.create_accounts => create(store, keys_, trust, p, now).await?,
        None => {
            return Err(FedError::Denied(format!(
                "no account here is linked to this person at {}; ask an administrator",
                trust.name
            )));
        }
    };
    if !user.enabled {
        return Err(FedError::Denied("the account here is disabled".into()));
    }
    let old = user.clone();
    if apply_claims(trust, keys_, &mut user, p) {
        user.updated_at = now;
        match users::update(store, keys_.data(), &old, &mut user).await {
            Ok(_) => {}
            // Another account holds the arriving phone number: keep ours as it was.
            Err(WriteError::Duplicate(_)) => return Ok(old),
            Err(WriteError::UsernameTaken) => {}
            Err(WriteError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(user)
}

async fn create(store: &DynStore, keys_: &Keys, trust: &Trust, p: &Person, now: i64) -> Result<User, FedError> {
    let wanted = p.preferred_username.clone().filter(|n| users::check_username(n).is_ok());
    let digest = crate::crypto::sha256_hex(p.sub.as_bytes());
    let fallback = format!("{}-{}", trust.id, digest.get(..12).unwrap_or_default());
    for username in wanted.into_iter().chain([fallback]) {
        let name = p.name.clone().unwrap_or_else(|| username.clone());
        let mut user = User::new(username, name, NO_PASSWORD.into(), now);
        apply_claims(trust, keys_, &mut user, p);
        match users::create(store, keys_.data(), &user).await {
            Ok(()) => {
                link(store, &trust.id, &p.sub, &user.id).await?;
                return Ok(user);
            }
            Err(WriteError::UsernameTaken) => {}
            Err(WriteError::Duplicate(_)) => {
                return Err(FedError::Denied(
                    "an account here already has this phone number; ask an administrator to link it".into(),
                ));
            }
            Err(WriteError::Store(e)) => return Err(e.into()),
        }
    }
    Err(FedError::Denied("no free username for the arriving account".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // SH-8.2: an upstream's phone claim is stored in the one normalised form, so the blind index
    // (which indexes that form) finds the person; a number that is not a mainland mobile number
    // is not copied at all.
    #[test]
    fn upstream_phone_is_normalised() {
        let trust: Trust = serde_json::from_value(serde_json::json!({
            "id": "province", "role": "upstream", "issuer": "https://province.example",
            "name": "province", "client_id": "city", "accept_claims": ["phone_number"]
        }))
        .unwrap();
        let keys_ = Keys::ephemeral(0).unwrap();
        let mut user = User::new("li".into(), "li".into(), NO_PASSWORD.into(), 0);
        let person = Person { phone_number: Some("138-1234 5678".into()), ..Person::default() };
        assert!(apply_claims(&trust, &keys_, &mut user, &person));
        assert_eq!(user.phone(keys_.data()).as_deref(), Some("+8613812345678"));
        // The same number written another way is no change.
        let again = Person { phone_number: Some("+86 13812345678".into()), ..Person::default() };
        assert!(!apply_claims(&trust, &keys_, &mut user, &again));
        let foreign = Person { phone_number: Some("+1 202 555 0100".into()), ..Person::default() };
        assert!(!apply_claims(&trust, &keys_, &mut user, &foreign));
        assert_eq!(user.phone(keys_.data()).as_deref(), Some("+8613812345678"));
    }
}
