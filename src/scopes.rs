//! The scope catalogue (AY-7.1 least privilege): every scope a client may be granted is named
//! here first, with what it allows. The OpenID scopes and tongzheng's own API scopes are
//! built in; business scopes are added by admins. Granting an unknown scope is refused, and a
//! scope still held by a client cannot be removed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{self, DynStore, StoreError, keys};

/// A catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScopeDef {
    /// The scope token (RFC 6749 s3.3 characters; at most 128).
    pub name: String,
    /// What it allows, for admins and consent pages.
    pub description: String,
    /// Whether it releases sensitive personal data (SH-8.2: needs the user's consent).
    #[serde(default)]
    pub sensitive: bool,
    /// Built in (cannot be changed or removed).
    #[serde(default)]
    pub built_in: bool,
    /// When it was added (0 for built-ins).
    #[serde(default)]
    pub created_at: i64,
}

/// The scope a downstream platform's client holds to forward its audit events (GB-6.8c).
pub const AUDIT_INGEST: &str = "tongzheng:audit.ingest";

/// Directory read scope (issue 12; `directory.read_scope` names the one in force).
pub const DIRECTORY_READ: &str = "tongzheng:directory.read";
/// Directory write scope.
pub const DIRECTORY_WRITE: &str = "tongzheng:directory.write";
/// Directory sensitive-values scope.
pub const DIRECTORY_SENSITIVE: &str = "tongzheng:directory.sensitive";

/// Separation of duties (AY-8.5.2.1, GB-6.8, 三员分立): whether `name` belongs to the auditor
/// role: the audit scope (`security.audit_scope`) or the audit-ingest scope. Such scopes, and
/// the clients holding them, are managed in the configuration only, never by the admin API.
pub fn reserved_for_auditor(name: &str, audit_scope: &str) -> bool {
    name == audit_scope || name == AUDIT_INGEST
}

/// Scopes every platform has: OpenID Connect's (OIDC Core s5.4, s11) and tongzheng's own.
pub fn built_in(admin_scope: &str, audit_scope: &str) -> Vec<ScopeDef> {
    let def = |name: &str, description: &str, sensitive: bool| ScopeDef {
        name: name.to_owned(),
        description: description.to_owned(),
        sensitive,
        built_in: true,
        created_at: 0,
    };
    vec![
        def("openid", "Sign the user in (OpenID Connect): an ID token and the subject identifier", false),
        def("profile", "The user's name and username", false),
        def("email", "The user's e-mail address", false),
        def("phone", "The user's phone number", true),
        def("offline_access", "Keep access after the user logs out (a refresh token that outlives the session)", false),
        def(admin_scope, "tongzheng admin API: applications, clients, users, scopes, keys, sessions", false),
        def(audit_scope, "tongzheng audit log: query and export (read only)", false),
        def(AUDIT_INGEST, "Forward a downstream platform's audit events to this one (cascade reporting)", false),
        def(
            DIRECTORY_READ,
            "Directory (SCIM): read the organizations and people of the application's visible scope",
            false,
        ),
        def(DIRECTORY_WRITE, "Directory (SCIM): read the whole directory and change it", false),
        def(DIRECTORY_SENSITIVE, "Directory (SCIM): phone and ID numbers in clear (masked otherwise)", true),
    ]
}

/// Checks a scope name: RFC 6749 s3.3 scope-token characters, 1..=128 of them.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Reads one entry (built-in or stored).
pub async fn get(store: &DynStore, builtins: &[ScopeDef], name: &str) -> Result<Option<ScopeDef>, StoreError> {
    if let Some(b) = builtins.iter().find(|b| b.name == name) {
        return Ok(Some(b.clone()));
    }
    if !valid_name(name) {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::scope(name)).await
}

/// The whole catalogue: built-ins first, then stored entries by name.
pub async fn list(store: &DynStore, builtins: &[ScopeDef]) -> Result<Vec<ScopeDef>, StoreError> {
    let mut names = store.set_members(keys::SCOPE_INDEX).await?;
    names.sort();
    let keys: Vec<String> = names.iter().map(|n| keys::scope(n)).collect();
    let mut out = builtins.to_vec();
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    Ok(out)
}

/// Adds an entry; false when the name is taken.
pub async fn create(store: &DynStore, builtins: &[ScopeDef], def: &ScopeDef) -> Result<bool, StoreError> {
    if builtins.iter().any(|b| b.name == def.name) {
        return Ok(false);
    }
    let created = store.put_new(&keys::scope(&def.name), &store::encode(def), None).await?;
    if created {
        store.set_add(keys::SCOPE_INDEX, &def.name, None).await?;
    }
    Ok(created)
}

/// Replaces a stored entry's description and sensitivity.
pub async fn update(store: &DynStore, def: &ScopeDef) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::scope(&def.name), def, None).await
}

/// Removes a stored entry; true when it existed.
pub async fn delete(store: &DynStore, name: &str) -> Result<bool, StoreError> {
    store.set_remove(keys::SCOPE_INDEX, name).await?;
    store.delete(&keys::scope(name)).await
}

/// The requested scopes that are not in the catalogue (empty when all are known).
pub async fn unknown(store: &DynStore, builtins: &[ScopeDef], scopes: &[String]) -> Result<Vec<String>, StoreError> {
    let stored: Vec<&String> = scopes.iter().filter(|s| !builtins.iter().any(|b| b.name == **s)).collect();
    let keys: Vec<String> = stored.iter().map(|s| keys::scope(s)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let found = store.get_many(&keys).await?;
    Ok(stored.into_iter().zip(found).filter(|(_, v)| v.is_none()).map(|(s, _)| s.clone()).collect())
}
