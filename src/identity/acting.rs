//! Acting for a legal person (HL-5.1): an agent (经办人) authenticates as themselves, picks the
//! legal person they act for, and the tokens then name the legal person as `sub` and the agent
//! in `act` (RFC 8693 s4.1). What a session, a grant family and a refresh token record of it,
//! and the choice between authentication and the new session (bound to the pending request).

use serde::{Deserialize, Serialize};

use super::legal::{self, LegalPerson};
use crate::store::{self, DynStore, StoreError, keys};
use crate::users::User;

/// The legal person a session, grant or token acts for; its natural person (the agent) is the
/// record's own user. Validity ([`crate::tokens::validity`]) checks at every use that the legal
/// person still exists, is enabled, keeps this generation and still lists the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acting {
    /// The legal person's id (the tokens' subject).
    #[serde(rename = "l")]
    pub lp: String,
    /// Its token generation when the agent chose it ([`LegalPerson::generation`]).
    #[serde(rename = "g", default)]
    pub generation: u32,
}

impl Acting {
    /// Acting for `lp` now.
    pub fn of(lp: &LegalPerson) -> Self {
        Self { lp: lp.id.clone(), generation: lp.generation }
    }
}

/// Whether `agent` may act for `lp` under `acting`: it exists (the caller read it), is enabled,
/// has not been disabled since (same generation) and still lists the agent.
pub fn still_allowed(lp: &LegalPerson, agent: &str, acting: &Acting) -> bool {
    lp.id == acting.lp && lp.enabled && lp.generation == acting.generation && lp.agent(agent).is_some()
}

/// An agent who authenticated and has yet to pick the legal person (bound to the pending
/// authorization request, so it lives no longer than that request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choosing {
    /// The agent's user id.
    pub agent: String,
    /// The agent's token generation at authentication.
    pub generation: u32,
    /// Authentication methods used.
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: String,
    /// Until when the choice may be made.
    pub exp: i64,
}

/// What the login of an agent leads to.
#[derive(Debug)]
pub enum Options {
    /// No enabled legal person lists the agent: refused.
    None,
    /// Exactly one: it is picked.
    One(LegalPerson),
    /// Several: the agent is asked (a chooser page).
    Many(Vec<LegalPerson>),
}

/// The legal persons `agent` may act for.
pub async fn options(store: &DynStore, agent: &User) -> Result<Options, StoreError> {
    if !agent.enabled {
        return Ok(Options::None);
    }
    let mut all = legal::acting_for(store, &agent.id).await?;
    Ok(match all.len() {
        0 => Options::None,
        1 => all.pop().map_or(Options::None, Options::One),
        _ => Options::Many(all),
    })
}

/// Remembers the authenticated agent for the pending request `req` until `c.exp`.
pub async fn remember(store: &DynStore, req: &str, c: &Choosing, now: i64) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::acting_choice(req), c, Some(store::ttl_until(c.exp, now))).await
}

/// The authenticated agent waiting to choose for `req`, if any and not expired.
pub async fn recall(store: &DynStore, req: &str, now: i64) -> Result<Option<Choosing>, StoreError> {
    if req.is_empty() || req.len() > 64 {
        return Ok(None);
    }
    let c: Option<Choosing> = store::get_json(store.as_ref(), &keys::acting_choice(req)).await?;
    Ok(c.filter(|c| c.exp > now))
}

/// Forgets the choice of `req` (made or abandoned). Idempotent.
pub async fn forget(store: &DynStore, req: &str) -> Result<(), StoreError> {
    store.delete(&keys::acting_choice(req)).await.map(|_| ())
}

/// Why a pick was refused.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// The legal person does not exist, is disabled or does not list the agent (any more).
    #[error("you are not authorized to act for this legal person")]
    NotAllowed,
    /// The agent's account is gone, disabled or changed its password since authenticating.
    #[error("the account is no longer usable; sign in again")]
    AgentGone,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the agent of `c` may act for legal person `lp_id` now; returns the agent's record
/// and the legal person.
pub async fn pick(store: &DynStore, c: &Choosing, lp_id: &str) -> Result<(User, LegalPerson), PickError> {
    let (agent, lp) = tokio::try_join!(crate::users::get(store, &c.agent), legal::get(store, lp_id))?;
    let agent = agent.filter(|u| u.enabled && u.generation == c.generation).ok_or(PickError::AgentGone)?;
    let lp = lp.filter(|lp| lp.enabled && lp.agent(&agent.id).is_some()).ok_or(PickError::NotAllowed)?;
    Ok((agent, lp))
}
