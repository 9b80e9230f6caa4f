//! Consent (SH-8.2, OIDC Core s3.1.2.4): when the user must be asked, what the consent page
//! shows (the application, its owning unit, the scopes as the catalogue describes them), and
//! the record of the decision per user and client, revocable one client at a time.
//!
//! A sensitive scope (`sensitive: true` in the catalogue: `phone`, `idcard`, `legal_person`, ...)
//! is released only under a recorded consent that names it, whatever the client's
//! `consent_required` setting and whatever the user allowed that client before.

use serde::{Deserialize, Serialize};

use super::AuthRequest;
use crate::clients::Client;
use crate::scopes::{self, ScopeDef};
use crate::session::Session;
use crate::store::{self, DynStore, StoreError, keys};

/// A stored consent: which scopes a user allowed a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    /// The scopes.
    pub scopes: Vec<String>,
    /// When.
    pub at: i64,
}

/// How long a remembered consent lasts: 180 days.
const CONSENT_TTL: u64 = 180 * 24 * 3600;

/// Records that the user consented to `scopes` for the client. The indexes are written before
/// the record, so a crash between the steps leaves at most an index entry without a record
/// (skipped by every reader), never a consent that cannot be listed or revoked.
pub async fn remember_consent(
    store: &DynStore,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    // Indexed by client, so taking an application offline can revoke every consent (AY-8.6.3),
    // and by user, so the account page can list them (SH-8.2).
    let (by_client, by_user) = (keys::client_consents(client_id), keys::user_consents(sub));
    tokio::try_join!(
        store.set_add(&by_client, sub, Some(CONSENT_TTL)),
        store.set_add(&by_user, client_id, Some(CONSENT_TTL)),
    )?;
    let c = Consent { scopes: scopes.to_vec(), at: now };
    store::put_json(store.as_ref(), &keys::consent(sub, client_id), &c, Some(CONSENT_TTL)).await
}

/// Revokes every user's consent to a client; returns how many there were.
pub async fn revoke_consents(store: &DynStore, client_id: &str) -> Result<usize, StoreError> {
    let subs = store.set_members(&keys::client_consents(client_id)).await?;
    for sub in &subs {
        store.delete(&keys::consent(sub, client_id)).await?;
        store.set_remove(&keys::user_consents(sub), client_id).await?;
    }
    store.delete(&keys::client_consents(client_id)).await?;
    Ok(subs.len())
}

/// SH-8.2: the user withdraws their consent to one client (the account page); the next
/// authorization that needs it asks again. True when there was one. Idempotent: the record
/// goes first, then its index entries (a stale entry left by a crash between the steps is
/// skipped by readers and removed by the next revocation).
pub async fn revoke_consent(store: &DynStore, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
    let existed = store.delete(&keys::consent(user_id, client_id)).await?;
    let (by_client, by_user) = (keys::client_consents(client_id), keys::user_consents(user_id));
    tokio::try_join!(store.set_remove(&by_client, user_id), store.set_remove(&by_user, client_id))?;
    Ok(existed)
}

/// The consents a user has given, by client id (sorted), for the account page (SH-8.2).
pub async fn consents_of(store: &DynStore, user_id: &str) -> Result<Vec<(String, Consent)>, StoreError> {
    let mut clients = store.set_members(&keys::user_consents(user_id)).await?;
    clients.sort();
    let keys: Vec<String> = clients.iter().map(|c| keys::consent(user_id, c)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for ((client, k), v) in clients.into_iter().zip(&keys).zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push((client, store::decode(k, &bytes)?));
        }
    }
    Ok(out)
}

/// The consent a user gave a client, if any (for the account page).
pub async fn consent_of(store: &DynStore, user_id: &str, client_id: &str) -> Result<Option<Consent>, StoreError> {
    store::get_json(store.as_ref(), &keys::consent(user_id, client_id)).await
}

/// Whether the user must be asked before `req` is answered for session `s`: always on
/// `prompt=consent`; for a client that asks for consent, unless a recorded consent covers
/// every requested scope; and for any client, unless a recorded consent covers every
/// requested sensitive scope (SH-8.2).
pub(super) async fn needed(
    store: &DynStore,
    builtins: &[ScopeDef],
    req: &AuthRequest,
    client: &Client,
    s: &Session,
) -> Result<bool, StoreError> {
    if req.prompt.consent {
        return Ok(true);
    }
    let sensitive = scopes::sensitive(store, builtins, &req.scope).await?;
    let must_cover: &[String] = if client.consent_required {
        &req.scope
    } else if sensitive.is_empty() {
        return Ok(false);
    } else {
        &sensitive
    };
    let stored = consent_of(store, &s.sub, &client.client_id).await?;
    Ok(!stored.is_some_and(|c| must_cover.iter().all(|s| c.scopes.contains(s))))
}

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentView {
    /// The application's name (its registration's; the client's display name without one).
    pub app_name: String,
    /// The unit that owns and answers for the application (AY-8.2.1 应用单位), when the
    /// client belongs to a registered application.
    pub owning_unit: Option<String>,
    /// The application's privacy policy (its registration's, else the client's `policy_uri`).
    pub policy_uri: Option<String>,
    /// Who is signed in: the person's name (their username without one), so that someone
    /// at a shared browser sees whose data is asked for before allowing it.
    pub person: String,
    /// The legal person the signed-in agent acts for in this session (HL-5.1), by name.
    pub acting_for: Option<String>,
    /// The requested scopes as the catalogue describes them, in the order requested.
    pub scopes: Vec<ScopeDef>,
}

/// Builds the consent page's contents for `client` asking `session`'s person for `requested`.
pub async fn consent_view(
    store: &DynStore,
    builtins: &[ScopeDef],
    client: &Client,
    session: &Session,
    requested: &[String],
) -> Result<ConsentView, StoreError> {
    let app = async {
        match &client.app_id {
            Some(id) => crate::apps::get(store, id).await,
            None => Ok(None),
        }
    };
    let acting = async {
        match &session.acting {
            Some(a) => crate::identity::legal::get(store, &a.lp).await,
            None => Ok(None),
        }
    };
    let (app, described, user, acting) = tokio::try_join!(
        app,
        scopes::describe(store, builtins, requested),
        crate::users::get(store, &session.sub),
        acting
    )?;
    let (app_name, owning_unit, app_policy) = match app {
        Some(a) => {
            let unit = Some(a.registration.owning_unit).filter(|u| !u.trim().is_empty());
            (a.registration.name, unit, a.registration.policy_uri)
        }
        None => (client.name.clone(), None, None),
    };
    let person = user.map_or_else(String::new, |u| if u.name.trim().is_empty() { u.username } else { u.name });
    Ok(ConsentView {
        app_name,
        owning_unit,
        policy_uri: app_policy.or_else(|| client.policy_uri.clone()),
        person,
        acting_for: acting.map(|lp| lp.name),
        scopes: described,
    })
}
