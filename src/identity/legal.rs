//! Legal persons (法人, HL-5.1): companies, public institutions, social organizations and
//! government bodies, identified by their unified social credit code, and the natural persons
//! authorized to act for them (agents, 经办人) with their roles.

use serde::{Deserialize, Serialize};

use crate::store::{self, DynStore, StoreError, keys};

/// What kind of organization a legal person is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// An enterprise (企业).
    Enterprise,
    /// A public institution (事业单位).
    PublicInstitution,
    /// A social organization (社会组织).
    SocialOrganization,
    /// A government body (机关).
    GovernmentBody,
    /// Anything else (其他).
    Other,
}

/// What an agent may do for the legal person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// Manages the legal person's account and its agents (the first agent, who registered it).
    Admin,
    /// Acts for the legal person in applications (经办人).
    Agent,
}

/// A natural person authorized to act for a legal person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Agent {
    /// The natural person's user id.
    pub user_id: String,
    /// Their role.
    pub role: AgentRole,
    /// When they were authorized (unix seconds).
    pub since: i64,
}

/// A legal person. Its `id` is the `sub` of tokens issued to its agents acting for it; the
/// acting agent is recorded in the token's `act` claim (RFC 8693 s4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalPerson {
    /// Stable subject identifier.
    pub id: String,
    /// Organization name (`org_name` claim).
    pub name: String,
    /// Unified social credit code (统一社会信用代码, GB 32100; `uscc` claim).
    pub uscc: String,
    /// Kind of organization.
    pub kind: OrgKind,
    /// Legal representative's name (`legal_representative` claim).
    pub legal_representative: String,
    /// The natural persons who may act for it.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// How well it is known (a verified USCC reaches real-name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<super::Verification>,
    /// Disabled legal persons cannot be acted for.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Token generation, as [`crate::users::User::generation`].
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

impl LegalPerson {
    /// The agent record of `user_id`, when they may act for this legal person.
    pub fn agent(&self, user_id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.user_id == user_id)
    }
}

/// Why a legal person could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LegalWriteError {
    /// Another legal person has this unified social credit code.
    #[error("another legal person has this unified social credit code")]
    UsccTaken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a legal person by id.
pub async fn get(store: &DynStore, id: &str) -> Result<Option<LegalPerson>, StoreError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::legal_person(id)).await
}

/// Reads a legal person by its unified social credit code (upper-cased).
pub async fn by_uscc(store: &DynStore, uscc: &str) -> Result<Option<LegalPerson>, StoreError> {
    if uscc.is_empty() || uscc.len() > 64 {
        return Ok(None);
    }
    match store.get(&keys::legal_uscc(uscc)).await? {
        Some(id) if !id.is_empty() => get(store, &String::from_utf8_lossy(&id)).await,
        _ => Ok(None),
    }
}

/// Creates a legal person: marked in flight and the USCC claimed first (`store::claim`: taken
/// over only from a holder that is gone), then the index entries, then the record.
pub async fn create(store: &DynStore, lp: &LegalPerson) -> Result<(), LegalWriteError> {
    store::claim::begin(store, &lp.id).await?;
    if !store::claim::claim(store, &keys::legal_uscc(&lp.uscc), &lp.id, keys::legal_person).await? {
        store::claim::end(store, &lp.id).await?;
        return Err(LegalWriteError::UsccTaken);
    }
    // The index entries first, the record last: an entry is a hint that readers drop while
    // the record is missing, so a crash between two writes leaves nothing half-visible, and a
    // retry (the USCC's holder has no record, so it is claimed again) completes the rest.
    super::names::add(store, super::names::Realm::Legal, &lp.id, &lp.name).await?;
    store.set_add(keys::LEGAL_INDEX, &lp.id, None).await?;
    for a in &lp.agents {
        store.set_add(&keys::acting_for(&a.user_id), &lp.id, None).await?;
    }
    store::put_json(store.as_ref(), &keys::legal_person(&lp.id), lp, None).await?;
    store::claim::end(store, &lp.id).await?;
    Ok(())
}

/// Whether a change from `old` to `new` must kill every token issued for the legal person
/// (it was disabled). An agent's removal needs no generation: the validity authority checks
/// the acting agent's authorization at every use.
pub fn standing_changed(old: &LegalPerson, new: &LegalPerson) -> bool {
    old.enabled && !new.enabled
}

/// Replaces a legal person (its USCC must not change through this call): the record first
/// (the generation moved on when [`standing_changed`]), then the agents' index entries, added
/// for new agents and removed for old ones. Returns whether the generation moved.
pub async fn update(store: &DynStore, old: &LegalPerson, new: &mut LegalPerson) -> Result<bool, StoreError> {
    write(store, old, new, None).await.map(|done| done.unwrap_or(false))
}

/// [`update`] as a compare-and-set: written only when the stored record is still the bytes
/// `stored` that `old` was decoded from (read them with [`get_raw`]). `None`: another writer
/// changed it meanwhile, nothing was written; read again and retry. Concurrent agent edits by
/// two instances thus never lose one another.
pub async fn update_if(
    store: &DynStore,
    stored: &[u8],
    old: &LegalPerson,
    new: &mut LegalPerson,
) -> Result<Option<bool>, StoreError> {
    write(store, old, new, Some(stored)).await
}

/// A legal person and its stored bytes, for [`update_if`].
pub async fn get_raw(store: &DynStore, id: &str) -> Result<Option<(LegalPerson, Vec<u8>)>, StoreError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let key = keys::legal_person(id);
    match store.get(&key).await? {
        Some(raw) => Ok(Some((store::decode(&key, &raw)?, raw))),
        None => Ok(None),
    }
}

async fn write(
    store: &DynStore,
    old: &LegalPerson,
    new: &mut LegalPerson,
    expected: Option<&[u8]>,
) -> Result<Option<bool>, StoreError> {
    let changed = standing_changed(old, new);
    if changed {
        new.generation = old.generation.wrapping_add(1);
    }
    if old.name != new.name {
        super::names::add(store, super::names::Realm::Legal, &new.id, &new.name).await?;
    }
    // New agents' index entries go first: an entry is a hint, the record decides.
    for a in new.agents.iter().filter(|a| old.agent(&a.user_id).is_none()) {
        store.set_add(&keys::acting_for(&a.user_id), &new.id, None).await?;
    }
    let key = keys::legal_person(&new.id);
    match expected {
        None => store::put_json(store.as_ref(), &key, new, None).await?,
        Some(raw) => {
            if !store.put_if(&key, Some(raw), &store::encode(new)).await? {
                return Ok(None);
            }
        }
    }
    for a in &new.agents {
        store.set_add(&keys::acting_for(&a.user_id), &new.id, None).await?;
    }
    for a in old.agents.iter().filter(|a| new.agent(&a.user_id).is_none()) {
        store.set_remove(&keys::acting_for(&a.user_id), &new.id).await?;
    }
    super::names::remove(store, super::names::Realm::Legal, &new.id, &old.name, Some(&new.name)).await?;
    Ok(Some(changed))
}

/// Deletes a legal person (its tokens die with the record), then frees its USCC and index
/// entries; true when it existed.
pub async fn delete(store: &DynStore, id: &str) -> Result<bool, StoreError> {
    let Some(lp) = get(store, id).await? else {
        return Ok(false);
    };
    let existed = store.delete(&keys::legal_person(id)).await?;
    store.set_remove(keys::LEGAL_INDEX, id).await?;
    store.put_if(&keys::legal_uscc(&lp.uscc), Some(id.as_bytes()), b"").await?;
    for a in &lp.agents {
        store.set_remove(&keys::acting_for(&a.user_id), id).await?;
    }
    super::names::remove(store, super::names::Realm::Legal, id, &lp.name, None).await?;
    Ok(existed)
}

/// The enabled legal persons `user_id` may act for, by name. The index is a hint: each
/// record's own agent list decides (an entry left by a crash between two writes is ignored).
pub async fn acting_for(store: &DynStore, user_id: &str) -> Result<Vec<LegalPerson>, StoreError> {
    let ids = store.set_members(&keys::acting_for(user_id)).await?;
    let mut out = read_many(store, &ids).await?;
    out.retain(|lp| lp.enabled && lp.agent(user_id).is_some());
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every legal person, by name.
pub async fn list(store: &DynStore) -> Result<Vec<LegalPerson>, StoreError> {
    let ids = store.set_members(keys::LEGAL_INDEX).await?;
    let mut out = read_many(store, &ids).await?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn read_many(store: &DynStore, ids: &[String]) -> Result<Vec<LegalPerson>, StoreError> {
    let keys: Vec<String> = ids.iter().map(|id| keys::legal_person(id)).collect();
    let mut out = Vec::with_capacity(keys.len());
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn company(id: &str) -> LegalPerson {
        LegalPerson {
            id: id.into(),
            name: "某某科技有限公司".into(),
            uscc: "91350100M000100Y43".into(),
            kind: OrgKind::Enterprise,
            legal_representative: "张三".into(),
            agents: vec![Agent { user_id: "agent-1".into(), role: AgentRole::Admin, since: 0 }],
            verification: None,
            enabled: true,
            generation: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    // HL-5.1: a registration killed after the USCC claim and the index entries but before the
    // record leaves nothing visible, and registering again completes (the rule: write the intent
    // first, make every step idempotent). The old order (record, then the agent's entry) could
    // leave a company its agent could never act for, with every retry refused as taken; this test
    // pins the state the new order leaves instead (it passes on either order: it is a contract).
    #[tokio::test]
    async fn a_create_killed_before_its_record_is_invisible_and_retried() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let first = company("lp-first");
        // What the killed create wrote: the claim and the hints, no record; its in-flight mark
        // has run out since.
        assert!(store.put_new(&keys::legal_uscc(&first.uscc), first.id.as_bytes(), None).await.unwrap());
        store.set_add(keys::LEGAL_INDEX, &first.id, None).await.unwrap();
        store.set_add(&keys::acting_for("agent-1"), &first.id, None).await.unwrap();
        assert!(acting_for(&store, "agent-1").await.unwrap().is_empty());
        assert!(list(&store).await.unwrap().is_empty());
        assert!(by_uscc(&store, &first.uscc).await.unwrap().is_none());
        // The retry (a new registration, a new id) takes the USCC over and completes.
        let retry = company("lp-retry");
        create(&store, &retry).await.unwrap();
        let acting: Vec<String> = acting_for(&store, "agent-1").await.unwrap().into_iter().map(|l| l.id).collect();
        assert_eq!(acting, ["lp-retry"]);
        assert_eq!(by_uscc(&store, &retry.uscc).await.unwrap().map(|l| l.id).as_deref(), Some("lp-retry"));
        assert_eq!(list(&store).await.unwrap().len(), 1);
        assert!(matches!(create(&store, &company("lp-third")).await, Err(LegalWriteError::UsccTaken)));
    }
}
