//! Legal persons' records as admins keep them (HL-5.1): created with a checked unified social
//! credit code, changed and deleted, their agents (经办人) added, re-roled and removed. Only
//! existing natural persons can be made agents, and only an agent can act for a legal person
//! ([`super::legal::acting_for`] reads the record's agent list). Every change is a
//! compare-and-set of the record, so two instances editing agents never lose one another.

use super::legal::{self, Agent, AgentRole, LegalPerson, LegalWriteError, OrgKind};
use super::records::{self, Page, Paged, RecordError};
use super::{AssuranceLevel, Verification, VerifyMethod, names, uscc};
use crate::store::{DynStore, keys};
use crate::users;

/// How many times a change is retried when other writers keep changing the record.
const ATTEMPTS: usize = 8;
/// The most agents one legal person may have.
pub const MAX_AGENTS: usize = 1000;

/// A new legal person.
#[derive(Debug, Clone)]
pub struct NewLegal {
    /// Organization name.
    pub name: String,
    /// Unified social credit code, checked by [`uscc::check`].
    pub uscc: String,
    /// Kind of organization.
    pub kind: OrgKind,
    /// Legal representative's name.
    pub legal_representative: String,
    /// Its first agents: natural persons' user ids and roles.
    pub agents: Vec<(String, AgentRole)>,
    /// Whether it may be acted for.
    pub enabled: bool,
}

/// Changes to a legal person; `None` leaves a field as it is. The USCC cannot change.
#[derive(Debug, Clone, Default)]
pub struct LegalPatch {
    /// Organization name.
    pub name: Option<String>,
    /// Kind.
    pub kind: Option<OrgKind>,
    /// Legal representative's name.
    pub legal_representative: Option<String>,
    /// Whether it may be acted for; disabling kills every token issued for it.
    pub enabled: Option<bool>,
}

/// Checks that every id names an existing natural person, once each.
async fn check_agents(store: &DynStore, agents: &[(String, AgentRole)]) -> Result<(), RecordError> {
    if agents.len() > MAX_AGENTS {
        return Err(RecordError::Invalid("agents", format!("at most {MAX_AGENTS}")));
    }
    for (i, (id, _)) in agents.iter().enumerate() {
        records::id("agents.user_id", id)?;
        if agents.iter().take(i).any(|(other, _)| other == id) {
            return Err(RecordError::Invalid("agents", format!("user '{id}' is listed twice")));
        }
        if users::get(store, id).await?.is_none() {
            return Err(RecordError::Invalid(
                "agents",
                format!("no user '{id}': only existing natural persons can be agents"),
            ));
        }
    }
    Ok(())
}

/// Creates a legal person (new id) after checking every field.
pub async fn create(store: &DynStore, input: NewLegal, now: i64) -> Result<LegalPerson, RecordError> {
    let name = records::text("name", &input.name)?;
    let rep = records::text("legal_representative", &input.legal_representative)?;
    let code = uscc::check(&input.uscc)?;
    check_agents(store, &input.agents).await?;
    let lp = LegalPerson {
        id: users::new_id(),
        name,
        uscc: code,
        kind: input.kind,
        legal_representative: rep,
        agents: input.agents.into_iter().map(|(user_id, role)| Agent { user_id, role, since: now }).collect(),
        verification: None,
        enabled: input.enabled,
        generation: 0,
        created_at: now,
        updated_at: now,
    };
    legal::create(store, &lp).await.map_err(|e| match e {
        LegalWriteError::UsccTaken => RecordError::Conflict(e.to_string()),
        LegalWriteError::Store(s) => RecordError::Store(s),
    })?;
    Ok(lp)
}

/// Reads a legal person.
pub async fn load(store: &DynStore, id: &str) -> Result<LegalPerson, RecordError> {
    legal::get(store, id).await?.ok_or_else(|| RecordError::NotFound(format!("no legal person '{id}'")))
}

/// Applies `change` to the stored legal person by compare-and-set, re-reading and retrying
/// when another writer got there first. Returns the record before and after.
async fn modify(
    store: &DynStore,
    id: &str,
    now: i64,
    change: impl Fn(&mut LegalPerson) -> Result<(), RecordError>,
) -> Result<(LegalPerson, LegalPerson), RecordError> {
    for _ in 0..ATTEMPTS {
        let (old, raw) =
            legal::get_raw(store, id).await?.ok_or_else(|| RecordError::NotFound(format!("no legal person '{id}'")))?;
        let mut new = old.clone();
        change(&mut new)?;
        new.updated_at = now;
        if legal::update_if(store, &raw, &old, &mut new).await?.is_some() {
            return Ok((old, new));
        }
    }
    Err(RecordError::Busy)
}

/// Changes a legal person's fields. Returns the record before and after (disabling moved
/// its token generation on).
pub async fn change(
    store: &DynStore,
    id: &str,
    patch: LegalPatch,
    now: i64,
) -> Result<(LegalPerson, LegalPerson), RecordError> {
    let name = patch.name.as_deref().map(|n| records::text("name", n)).transpose()?;
    let rep = patch.legal_representative.as_deref().map(|n| records::text("legal_representative", n)).transpose()?;
    modify(store, id, now, |lp| {
        if let Some(n) = &name {
            lp.name.clone_from(n);
        }
        if let Some(r) = &rep {
            lp.legal_representative.clone_from(r);
        }
        if let Some(k) = patch.kind {
            lp.kind = k;
        }
        if let Some(e) = patch.enabled {
            lp.enabled = e;
        }
        Ok(())
    })
    .await
}

/// Authorizes natural person `user_id` to act for legal person `id` with `role`, or changes
/// the role of an existing agent (keeping their `since`).
pub async fn set_agent(
    store: &DynStore,
    id: &str,
    user_id: &str,
    role: AgentRole,
    now: i64,
) -> Result<(LegalPerson, LegalPerson), RecordError> {
    check_agents(store, &[(user_id.to_owned(), role)]).await?;
    modify(store, id, now, |lp| {
        let full = lp.agents.len() >= MAX_AGENTS;
        match lp.agents.iter_mut().find(|a| a.user_id == user_id) {
            Some(a) => a.role = role,
            None if full => {
                return Err(RecordError::Conflict(format!("a legal person has at most {MAX_AGENTS} agents")));
            }
            None => lp.agents.push(Agent { user_id: user_id.to_owned(), role, since: now }),
        }
        Ok(())
    })
    .await
}

/// Withdraws `user_id`'s authorization to act for legal person `id`; their tokens acting for
/// it die at the next check of the validity authority.
pub async fn remove_agent(
    store: &DynStore,
    id: &str,
    user_id: &str,
    now: i64,
) -> Result<(LegalPerson, LegalPerson), RecordError> {
    modify(store, id, now, |lp| {
        let before = lp.agents.len();
        lp.agents.retain(|a| a.user_id != user_id);
        if lp.agents.len() == before {
            return Err(RecordError::NotFound(format!("user '{user_id}' is no agent of legal person '{id}'")));
        }
        Ok(())
    })
    .await
}

/// Withdraws `user_id`'s authorization to act for every legal person (before their account is
/// deleted, so no record keeps an agent that no longer exists). Returns the legal persons'
/// ids. Idempotent: a repeated call finds nothing left to do.
pub async fn forget_agent(store: &DynStore, user_id: &str, now: i64) -> Result<Vec<String>, RecordError> {
    let mut done = Vec::new();
    for id in store.set_members(&keys::acting_for(user_id)).await? {
        match remove_agent(store, &id, user_id, now).await {
            Ok(_) => done.push(id),
            Err(RecordError::NotFound(_)) => {
                // A stale hint (the record no longer lists them, or is gone).
                store.set_remove(&keys::acting_for(user_id), &id).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Records an admin's check of a legal person (its documents in person, or its legal
/// representative's face) by `by`: `real_name` unless `level` says `strong`.
pub async fn record_check(
    store: &DynStore,
    id: &str,
    method: VerifyMethod,
    level: Option<AssuranceLevel>,
    by: &str,
    now: i64,
) -> Result<(LegalPerson, LegalPerson), RecordError> {
    if !matches!(method, VerifyMethod::Face | VerifyMethod::InPerson) {
        return Err(RecordError::Invalid("method", "an admin records face or in_person verification".into()));
    }
    let level = level.unwrap_or(AssuranceLevel::RealName);
    if level < AssuranceLevel::RealName {
        return Err(RecordError::Invalid("level", "must be real_name or strong".into()));
    }
    set_verification(store, id, Some(Verification { level, method, by: by.to_owned(), at: now }), now).await
}

/// Sets (or, with `None`, withdraws) a legal person's verification.
pub async fn set_verification(
    store: &DynStore,
    id: &str,
    v: Option<Verification>,
    now: i64,
) -> Result<(LegalPerson, LegalPerson), RecordError> {
    modify(store, id, now, |lp| {
        lp.verification.clone_from(&v);
        Ok(())
    })
    .await
}

/// Deletes a legal person; its tokens die with the record.
pub async fn delete(store: &DynStore, id: &str) -> Result<(), RecordError> {
    if legal::delete(store, id).await? { Ok(()) } else { Err(RecordError::NotFound(format!("no legal person '{id}'"))) }
}

/// How to find legal persons.
#[derive(Debug, Clone)]
pub enum LegalQuery {
    /// Every one, by id.
    All,
    /// Names starting with this, through the name index.
    Name(String),
    /// Exactly this unified social credit code.
    Uscc(String),
    /// Those natural person `user_id` is an agent of (enabled or not).
    Agent(String),
}

/// Finds legal persons, paged by id.
pub async fn search(store: &DynStore, q: &LegalQuery, page: &Page) -> Result<Paged<LegalPerson>, RecordError> {
    match q {
        LegalQuery::All => {
            let ids = store.set_members(keys::LEGAL_INDEX).await?;
            Ok(records::scan(store, ids, keys::legal_person, page, |_: &LegalPerson| true).await?)
        }
        LegalQuery::Name(name) => {
            let Some(ids) = names::candidates(store, names::Realm::Legal, name).await? else {
                return Err(RecordError::Invalid(
                    "name",
                    format!("give at least {} characters of the name", names::MIN_PREFIX),
                ));
            };
            Ok(records::scan(store, ids, keys::legal_person, page, |lp: &LegalPerson| names::matches(&lp.name, name))
                .await?)
        }
        LegalQuery::Uscc(code) => {
            let code = uscc::check(code)?;
            Ok(Paged { items: legal::by_uscc(store, &code).await?.into_iter().collect(), next: None })
        }
        LegalQuery::Agent(user_id) => {
            records::id("agent", user_id)?;
            let ids = store.set_members(&keys::acting_for(user_id)).await?;
            Ok(records::scan(store, ids, keys::legal_person, page, |lp: &LegalPerson| lp.agent(user_id).is_some())
                .await?)
        }
    }
}
