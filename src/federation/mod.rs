//! Trust between platforms (DC-5, GB-6.4c, GB-6.4d, AY-6, GB-5.2): a county, city, province and
//! national platform each run tongzheng and trust each other. A [`Trust`] names a peer
//! platform: an **upstream** we send users to (login, silent login, logout notices) holding a
//! client of ours there, or a **downstream** that sends its users to us as one of our clients.
//! Every path reads the trust record when it runs, so disabling a trust stops them at once.
//! The peer's metadata and keys are in [`remote`], the login through an upstream in [`login`],
//! account links in [`links`], logout in both directions in [`logout`].

pub mod links;
pub mod login;
pub mod logout;
pub mod remote;
pub mod sync;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::sealing::DataKey;
use crate::store::{self, DynStore, StoreError, keys};

/// Which way a trust points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A higher-level (or peer) platform whose logins we accept; we hold a client there.
    Upstream,
    /// A lower-level platform that logs its users in here through one of our clients.
    Downstream,
}

/// How an upstream subject becomes a local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkBy {
    /// The upstream `iss` + `sub` pair, linked on first arrival or by registration sync.
    Subject,
    /// The upstream's `preferred_username` equals a local username.
    PreferredUsername,
}

/// A trusted platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Trust {
    /// Short id, used in URLs (`/federation/{id}/login`).
    pub id: String,
    /// Upstream or downstream.
    pub role: Role,
    /// The peer's issuer identifier (its discovery document is under it).
    pub issuer: String,
    /// Display name (zh-CN), for the login button.
    pub name: String,
    /// Display name (en).
    #[serde(default)]
    pub name_en: String,
    /// Upstream: our client_id at the peer. Downstream: the peer's client_id here.
    pub client_id: String,
    /// Upstream: our client secret at the peer, sealed with the data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub client_secret_sealed: Option<String>,
    /// Scopes asked of the upstream.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Upstream claims copied into a local account (`name`, `email`, `phone_number`).
    #[serde(default = "default_claims")]
    pub accept_claims: Vec<String>,
    /// How an upstream subject is matched to a local account.
    #[serde(default = "default_link")]
    pub link_by: LinkBy,
    /// Create the local account on first arrival when nothing links.
    #[serde(default)]
    pub create_accounts: bool,
    /// The lowest authentication context (`acr`) accepted from the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_acr: Option<String>,
    /// Try this upstream with `prompt=none` before showing the login form.
    #[serde(default = "yes")]
    pub silent_login: bool,
    /// Push users registered here to the upstream and link them (GB-6.4a).
    #[serde(default)]
    pub sync_registrations: bool,
    /// Whether the trust is in force.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When it was added.
    #[serde(default)]
    pub created_at: i64,
    /// Last change.
    #[serde(default)]
    pub updated_at: i64,
}

fn yes() -> bool {
    true
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into()]
}
fn default_claims() -> Vec<String> {
    vec!["name".into()]
}
fn default_link() -> LinkBy {
    LinkBy::Subject
}

impl Trust {
    fn secret_context(&self) -> String {
        format!("trust:{}:client_secret", self.id)
    }
    /// Seals and sets our client secret at the upstream.
    pub fn set_secret(&mut self, key: &DataKey, secret: Option<&str>) {
        self.client_secret_sealed = secret.filter(|s| !s.is_empty()).map(|s| key.seal(s, &self.secret_context()));
    }
    /// Our client secret at the upstream, in clear, for the one request that sends it.
    pub fn secret(&self, key: &DataKey) -> Option<String> {
        self.client_secret_sealed.as_deref().and_then(|s| key.open(s, &self.secret_context()))
    }
    /// Whether `acr` meets `min_acr`: numerically when both are numbers, else equal.
    pub fn acr_ok(&self, acr: Option<&str>) -> bool {
        let Some(min) = &self.min_acr else { return true };
        let Some(acr) = acr else { return false };
        match (min.parse::<f64>(), acr.parse::<f64>()) {
            (Ok(m), Ok(a)) => a >= m,
            _ => acr == min,
        }
    }
}

/// Why a federation step failed.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    /// No such trust, or it is disabled.
    #[error("no enabled trust '{0}'")]
    NoTrust(String),
    /// The peer could not be reached or answered badly.
    #[error("the trusted platform failed: {0}")]
    Remote(String),
    /// A token or answer from the peer did not verify.
    #[error("{0}")]
    Invalid(String),
    /// The peer's user may not have an account here.
    #[error("{0}")]
    Denied(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Trust ids: 2-32 of lowercase letters, digits and '-'.
pub fn valid_id(id: &str) -> bool {
    (2..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads a trust (enabled or not).
pub async fn get(store: &DynStore, id: &str) -> Result<Option<Trust>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::trust(id)).await
}

/// Reads an enabled trust of `role`.
pub async fn enabled(store: &DynStore, id: &str, role: Role) -> Result<Trust, FedError> {
    get(store, id).await?.filter(|t| t.enabled && t.role == role).ok_or_else(|| FedError::NoTrust(id.to_owned()))
}

/// Writes a trust.
pub async fn put(store: &DynStore, t: &Trust) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::trust(&t.id), t, None).await?;
    store.set_add(keys::TRUST_INDEX, &t.id, None).await
}

/// Removes a trust; true when it existed.
pub async fn delete(store: &DynStore, id: &str) -> Result<bool, StoreError> {
    store.set_remove(keys::TRUST_INDEX, id).await?;
    store.delete(&keys::trust(id)).await
}

/// Every trust, by id.
pub async fn list(store: &DynStore) -> Result<Vec<Trust>, StoreError> {
    let mut ids = store.set_members(keys::TRUST_INDEX).await?;
    ids.sort();
    let keys: Vec<String> = ids.iter().map(|id| keys::trust(id)).collect();
    let mut out = Vec::new();
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    Ok(out)
}

/// The enabled trusts of `role`.
pub async fn all_enabled(store: &DynStore, role: Role) -> Result<Vec<Trust>, StoreError> {
    Ok(list(store).await?.into_iter().filter(|t| t.enabled && t.role == role).collect())
}

/// The enabled trust whose issuer is `issuer`, of `role`.
pub async fn by_issuer(store: &DynStore, issuer: &str, role: Role) -> Result<Option<Trust>, StoreError> {
    Ok(all_enabled(store, role).await?.into_iter().find(|t| t.issuer == issuer))
}

/// The enabled downstream trust whose platform is our client `client_id`.
pub async fn downstream_of_client(store: &DynStore, client_id: &str) -> Result<Option<Trust>, StoreError> {
    Ok(all_enabled(store, Role::Downstream).await?.into_iter().find(|t| t.client_id == client_id))
}

/// Checks a trust's fields; the message names the bad one.
pub fn validate(t: &Trust, dev: bool) -> Result<(), String> {
    if !valid_id(&t.id) {
        return Err("id must be 2-32 of lowercase letters, digits and '-'".into());
    }
    let url = url::Url::parse(&t.issuer).map_err(|_| "issuer is not a URL".to_owned())?;
    let loopback = crate::registration::is_loopback(&url);
    if url.scheme() != "https" && !(dev && loopback && url.scheme() == "http") {
        return Err("issuer must be https (http only on loopback in dev mode)".into());
    }
    if t.issuer.ends_with('/') || url.query().is_some() || url.fragment().is_some() {
        return Err("issuer: no trailing slash, query or fragment".into());
    }
    if t.name.trim().is_empty() || t.name.chars().count() > 100 || t.name_en.chars().count() > 100 {
        return Err("name is required (at most 100 characters)".into());
    }
    if t.client_id.is_empty() || t.client_id.len() > 256 {
        return Err("client_id is required".into());
    }
    if t.role == Role::Upstream && !t.scopes.iter().any(|s| s == "openid") {
        return Err("scopes must include openid".into());
    }
    if t.scopes.iter().chain(&t.accept_claims).any(|s| s.is_empty() || s.len() > 128 || s.contains(' ')) {
        return Err("scopes and accept_claims are single tokens".into());
    }
    Ok(())
}

/// The `path` of a federated authorization request: the issuers it has already visited, in a
/// non-standard `tz_path` parameter (space-separated). Other providers ignore it (OIDC Core
/// s3.1.2.1: unknown parameters are ignored).
pub const PATH_PARAM: &str = "tz_path";

/// Audit detail naming the platform an event came from or went to.
pub fn audit_detail(t: &Trust, what: &str) -> serde_json::Value {
    serde_json::json!({"trust": t.id, "platform": t.issuer, "step": what})
}

/// A trust as configured (`[[federation.trusts]]`) or sent to the admin API: absent optional
/// fields take their defaults.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustInput {
    /// Short id (2-32 of a-z, 0-9, '-'); in the admin API only when adding.
    #[serde(default)]
    pub id: Option<String>,
    /// Upstream or downstream.
    pub role: Role,
    /// The peer's issuer.
    pub issuer: String,
    /// Display name (zh-CN).
    pub name: String,
    /// Display name (en).
    #[serde(default)]
    pub name_en: String,
    /// Upstream: our client_id there. Downstream: its client_id here.
    pub client_id: String,
    /// Upstream: our client secret there (sealed once stored; never shown again).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes asked of the upstream (default `openid profile`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Claims copied into local accounts (default `name`).
    #[serde(default)]
    pub accept_claims: Option<Vec<String>>,
    /// How upstream subjects are matched (default `subject`).
    #[serde(default)]
    pub link_by: Option<LinkBy>,
    /// Create local accounts on first arrival.
    #[serde(default)]
    pub create_accounts: bool,
    /// Lowest `acr` accepted.
    #[serde(default)]
    pub min_acr: Option<String>,
    /// Try silently with `prompt=none`.
    #[serde(default = "yes")]
    pub silent_login: bool,
    /// Push registrations upstream (GB-6.4a).
    #[serde(default)]
    pub sync_registrations: bool,
    /// In force.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl TrustInput {
    /// The trust record for `id`, its secret sealed (or kept from `old` when none is sent),
    /// validated; the message names the bad field.
    pub fn into_trust(
        self,
        id: String,
        key: &DataKey,
        dev: bool,
        now: i64,
        old: Option<&Trust>,
    ) -> Result<Trust, String> {
        let mut t = Trust {
            id,
            role: self.role,
            issuer: self.issuer,
            name: self.name,
            name_en: self.name_en,
            client_id: self.client_id,
            client_secret_sealed: None,
            scopes: self.scopes.unwrap_or_else(default_scopes),
            accept_claims: self.accept_claims.unwrap_or_else(default_claims),
            link_by: self.link_by.unwrap_or(LinkBy::Subject),
            create_accounts: self.create_accounts,
            min_acr: self.min_acr,
            silent_login: self.silent_login,
            sync_registrations: self.sync_registrations,
            enabled: self.enabled,
            created_at: old.map_or(now, |o| o.created_at),
            updated_at: now,
        };
        match (&self.client_secret, old) {
            (Some(s), _) => t.set_secret(key, Some(s)),
            // The seal is bound to the trust id, which does not change.
            (None, Some(o)) => t.client_secret_sealed.clone_from(&o.client_secret_sealed),
            (None, None) => {}
        }
        validate(&t, dev)?;
        if t.role == Role::Upstream && t.client_secret_sealed.is_none() {
            return Err("an upstream trust needs client_secret (our secret at that platform)".into());
        }
        Ok(t)
    }
}
