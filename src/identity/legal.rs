//! Legal persons (法人, HL-5.1): companies, public institutions, social organizations and
//! government bodies, identified by their unified social credit code, and the natural persons
//! authorized to act for them (agents, 经办人) with their roles.

use serde::{Deserialize, Serialize};

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
