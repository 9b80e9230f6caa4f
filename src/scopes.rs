//! The scope catalogue (AY-7.1 least privilege): every scope a client may be granted is named
//! here first, with what it allows. The OpenID scopes and tongzheng's own API scopes are
//! built in; business scopes are added by admins. Granting an unknown scope is refused, and a
//! scope still held by a client cannot be removed. Each entry says what it allows in Chinese and
//! English too, for the consent page (SH-8.2: sensitive items named plainly).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{self, DynStore, StoreError, keys};

/// A catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScopeDef {
    /// The scope token (RFC 6749 s3.3 characters; at most 128).
    pub name: String,
    /// What it allows, for admins (and consent pages lacking the localized texts below).
    pub description: String,
    /// What it allows, in Simplified Chinese, as the consent page tells the user (empty:
    /// `description`).
    #[serde(default)]
    pub description_zh: String,
    /// What it allows, in English, as the consent page tells the user (empty: `description`).
    #[serde(default)]
    pub description_en: String,
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

/// Separation of duties (AY-8.5.2.1, GB-6.8, 三员分立): whether `name` belongs to the auditor
/// role: the audit scope (`security.audit_scope`) or the audit-ingest scope. Such scopes, and
/// the clients holding them, are managed in the configuration only, never by the admin API.
pub fn reserved_for_auditor(name: &str, audit_scope: &str) -> bool {
    name == audit_scope || name == AUDIT_INGEST
}

impl ScopeDef {
    /// What the consent page says in Simplified Chinese.
    pub fn text_zh(&self) -> &str {
        if self.description_zh.is_empty() { &self.description } else { &self.description_zh }
    }

    /// What the consent page says in English.
    pub fn text_en(&self) -> &str {
        if self.description_en.is_empty() { &self.description } else { &self.description_en }
    }
}

/// What the consent page tells the user of a built-in scope, in zh-CN and English (SH-8.2:
/// sensitive items named plainly, never by their scope token).
fn built_in_texts(name: &str, admin_scope: &str, audit_scope: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "openid" => (
            "使用您的账号登录，并获得您在本平台的用户标识",
            "Sign you in with your account and know your user identifier",
        ),
        "profile" => ("您的姓名和用户名", "Your name and username"),
        "email" => ("您的电子邮箱地址", "Your e-mail address"),
        "phone" => ("您的手机号码", "Your mobile phone number"),
        "offline_access" => {
            ("在您退出登录后仍可继续访问上述信息", "Keep access to this information after you sign out")
        }
        "idcard" => (
            "您的证件类型和证件号码（如居民身份证号码）",
            "Your identity document type and number (such as your resident ID card number)",
        ),
        "legal_person" => (
            "您所代表单位的名称、统一社会信用代码和法定代表人",
            "The name, unified social credit code and legal representative of the organization you act for",
        ),
        AUDIT_INGEST => {
            ("向本平台转发下级平台的审计事件", "Forward a downstream platform's audit events to this platform")
        }
        n if n == admin_scope => (
            "管理本平台：应用、客户端、用户、授权范围、密钥和会话",
            "Administer this platform: applications, clients, users, scopes, keys, sessions",
        ),
        n if n == audit_scope => {
            ("查询和导出本平台的审计日志（只读）", "Query and export this platform's audit log (read only)")
        }
        _ => return None,
    })
}

/// Scopes every platform has: OpenID Connect's (OIDC Core s5.4, s11) and tongzheng's own.
pub fn built_in(admin_scope: &str, audit_scope: &str) -> Vec<ScopeDef> {
    let def = |name: &str, description: &str, sensitive: bool| {
        let (zh, en) = built_in_texts(name, admin_scope, audit_scope).unwrap_or_default();
        ScopeDef {
            name: name.to_owned(),
            description: description.to_owned(),
            description_zh: zh.to_owned(),
            description_en: en.to_owned(),
            sensitive,
            built_in: true,
            created_at: 0,
        }
    };
    vec![
        def("openid", "Sign the user in (OpenID Connect): an ID token and the subject identifier", false),
        def("profile", "The user's name and username", false),
        def("email", "The user's e-mail address", false),
        def("phone", "The user's phone number", true),
        def("idcard", "The user's identity document type and number (ID card)", true),
        def(
            "legal_person",
            "The company you act for: its name, unified social credit code and legal representative",
            true,
        ),
        def("offline_access", "Keep access after the user logs out (a refresh token that outlives the session)", false),
        def(admin_scope, "tongzheng admin API: applications, clients, users, scopes, keys, sessions", false),
        def(audit_scope, "tongzheng audit log: query and export (read only)", false),
        def(AUDIT_INGEST, "Forward a downstream platform's audit events to this one (cascade reporting)", false),
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

/// The entries of `names` that are marked sensitive (SH-8.2), in the order asked. Names not in
/// the catalogue are not.
pub async fn sensitive(store: &DynStore, builtins: &[ScopeDef], names: &[String]) -> Result<Vec<String>, StoreError> {
    Ok(describe(store, builtins, names).await?.into_iter().filter(|d| d.sensitive).map(|d| d.name).collect())
}

/// The catalogue entries of `names`, in the order asked (one read for the stored ones); a name
/// not in the catalogue gets a bare entry that describes it by its name.
pub async fn describe(store: &DynStore, builtins: &[ScopeDef], names: &[String]) -> Result<Vec<ScopeDef>, StoreError> {
    let stored: Vec<&String> =
        names.iter().filter(|n| !builtins.iter().any(|b| b.name == **n) && valid_name(n)).collect();
    let keys: Vec<String> = stored.iter().map(|s| keys::scope(s)).collect();
    let mut found = std::collections::HashMap::new();
    if !keys.is_empty() {
        for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
            if let Some(bytes) = v {
                let def: ScopeDef = store::decode(k, &bytes)?;
                found.insert(def.name.clone(), def);
            }
        }
    }
    Ok(names
        .iter()
        .map(|n| {
            builtins.iter().find(|b| b.name == *n).cloned().or_else(|| found.remove(n)).unwrap_or_else(|| ScopeDef {
                name: n.clone(),
                description: n.clone(),
                description_zh: String::new(),
                description_en: String::new(),
                sensitive: false,
                built_in: false,
                created_at: 0,
            })
        })
        .collect())
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
