//! `/admin/v1/legal-persons`: legal persons (法人, HL-5.1), their unified social credit codes
//! (GB 32100, checked), their agents (经办人) and roles, and their verification; searched by
//! name prefix, USCC or agent, paged. Only existing natural persons can be made agents, and a
//! removed agent can no longer act for the legal person.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{Api, op};
use super::{Admin, Caller, Json, Params};
use crate::audit::Kind;
use crate::http::AppState;
use crate::http::error::Problem;
use crate::identity::legal::{Agent, AgentRole, LegalPerson, OrgKind};
use crate::identity::legal_records::{self, LegalPatch, LegalQuery, NewLegal};
use crate::identity::records::{self, Page};
use crate::identity::{AssuranceLevel, PrincipalKind, Verification, VerifyMethod};

/// A legal person as the admin API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LegalView {
    /// Subject identifier (the `sub` of tokens its agents get when acting for it).
    pub id: String,
    /// Always `legal_person`.
    pub user_type: PrincipalKind,
    /// Organization name.
    pub name: String,
    /// Unified social credit code (public registration data, shown in full).
    pub uscc: String,
    /// Kind of organization.
    pub kind: OrgKind,
    /// Legal representative's name.
    pub legal_representative: String,
    /// The natural persons authorized to act for it, with their roles.
    pub agents: Vec<Agent>,
    /// How well it is known (`registered` until verified).
    pub auth_level: AssuranceLevel,
    /// The latest verification: level, method, by whom, when.
    pub verification: Option<Verification>,
    /// Whether its agents may act for it.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

fn view(lp: &LegalPerson) -> LegalView {
    LegalView {
        id: lp.id.clone(),
        user_type: PrincipalKind::LegalPerson,
        name: lp.name.clone(),
        uscc: lp.uscc.clone(),
        kind: lp.kind,
        legal_representative: lp.legal_representative.clone(),
        agents: lp.agents.clone(),
        auth_level: lp.verification.as_ref().map_or(AssuranceLevel::Registered, |v| v.level),
        verification: lp.verification.clone(),
        enabled: lp.enabled,
        created_at: lp.created_at,
        updated_at: lp.updated_at,
    }
}

/// A page of legal persons.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LegalList {
    /// The legal persons, by id.
    pub legal_persons: Vec<LegalView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An agent and their role.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// The natural person's user id.
    pub user_id: String,
    /// `admin` (manages the legal person's account and agents) or `agent` (acts for it).
    #[serde(default = "agent_role")]
    pub role: AgentRole,
}

fn agent_role() -> AgentRole {
    AgentRole::Agent
}

/// Body of legal person create.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalCreateBody {
    /// Organization name (1-128 characters).
    pub name: String,
    /// Unified social credit code (18 characters, GB 32100 check character and the embedded
    /// organization code's check verified).
    pub uscc: String,
    /// Kind of organization.
    pub kind: OrgKind,
    /// Legal representative's name (1-128 characters).
    pub legal_representative: String,
    /// Its first agents (existing natural persons).
    #[serde(default)]
    pub agents: Vec<AgentInput>,
    /// Whether its agents may act for it (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of legal person update; absent fields stay as they are. The USCC cannot change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalUpdateBody {
    /// Organization name.
    #[serde(default)]
    pub name: Option<String>,
    /// Must equal the current code when given: a USCC never changes.
    #[serde(default)]
    pub uscc: Option<String>,
    /// Kind of organization.
    #[serde(default)]
    pub kind: Option<OrgKind>,
    /// Legal representative's name.
    #[serde(default)]
    pub legal_representative: Option<String>,
    /// Whether its agents may act for it; disabling kills every token issued for it.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of an agent's authorization.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `admin` or `agent` (default).
    #[serde(default = "agent_role")]
    pub role: AgentRole,
}

/// Body of a legal person's verification by an admin.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalVerificationBody {
    /// How: `in_person` (documents checked at a counter) or `face` (the legal representative's).
    pub method: VerifyMethod,
    /// The level reached: `real_name` (default) or `strong`.
    #[serde(default)]
    pub level: Option<AssuranceLevel>,
    /// Who performed the check (kept in the audit record), at most 128 characters.
    #[serde(default)]
    pub operator: Option<String>,
}

/// Query of the legal person list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    name: Option<String>,
    uscc: Option<String>,
    agent: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn noted(who: &Caller, lp: &LegalPerson, detail: serde_json::Value) {
    who.about_subject(&lp.id);
    who.record_as(Kind::AdminAction, detail);
}

async fn list(State(state): State<AppState>, _: Admin, Params(q): Params<ListQuery>) -> Result<Response, Problem> {
    let page = Page::new(q.limit, q.cursor)?;
    let query = match (q.name, q.uscc, q.agent) {
        (None, None, None) => LegalQuery::All,
        (Some(n), None, None) => LegalQuery::Name(n),
        (None, Some(u), None) => LegalQuery::Uscc(u),
        (None, None, Some(a)) => LegalQuery::Agent(a),
        _ => return Err(Problem::bad_request("give at most one of name, uscc and agent")),
    };
    let found = legal_records::search(&state.store, &query, &page).await?;
    let legal_persons = found.items.iter().map(view).collect();
    Ok(axum::Json(LegalList { legal_persons, next_cursor: found.next }).into_response())
}

async fn create(
    State(state): State<AppState>,
    Admin(who): Admin,
    Json(b): Json<LegalCreateBody>,
) -> Result<Response, Problem> {
    let input = NewLegal {
        name: b.name,
        uscc: b.uscc,
        kind: b.kind,
        legal_representative: b.legal_representative,
        agents: b.agents.into_iter().map(|a| (a.user_id, a.role)).collect(),
        enabled: b.enabled.unwrap_or(true),
    };
    let lp = legal_records::create(&state.store, input, state.clock.now()).await?;
    noted(&who, &lp, json!({ "created": "legal_person", "agents": lp.agents }));
    Ok((StatusCode::CREATED, axum::Json(view(&lp))).into_response())
}

async fn read(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    Ok(axum::Json(view(&legal_records::load(&state.store, &id).await?)).into_response())
}

async fn update(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(b): Json<LegalUpdateBody>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    if let Some(u) = &b.uscc {
        let current = legal_records::load(&state.store, &id).await?;
        if crate::identity::uscc::check(u).ok().as_deref() != Some(current.uscc.as_str()) {
            return Err(Problem::bad_request("uscc cannot be changed: a legal person keeps its code"));
        }
    }
    let patch =
        LegalPatch { name: b.name, kind: b.kind, legal_representative: b.legal_representative, enabled: b.enabled };
    let (old, new) = legal_records::change(&state.store, &id, patch, state.clock.now()).await?;
    let changed: Vec<&str> = [
        ("name", old.name != new.name),
        ("kind", old.kind != new.kind),
        ("legal_representative", old.legal_representative != new.legal_representative),
        ("enabled", old.enabled != new.enabled),
    ]
    .into_iter()
    .filter_map(|(f, c)| c.then_some(f))
    .collect();
    noted(&who, &new, json!({ "changed": changed }));
    Ok(axum::Json(view(&new)).into_response())
}

async fn remove(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    legal_records::delete(&state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Authorizes a natural person to act for the legal person, or changes their role.
async fn put_agent(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((id, user_id)): Path<(String, String)>,
    Json(b): Json<RoleBody>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let (old, new) = legal_records::set_agent(&state.store, &id, &user_id, b.role, state.clock.now()).await?;
    let before = old.agent(&user_id).map(|a| a.role);
    noted(&who, &new, json!({ "agent": user_id, "role": b.role, "previous_role": before }));
    Ok(axum::Json(view(&new)).into_response())
}

/// Withdraws an agent's authorization.
async fn delete_agent(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let (_, new) = legal_records::remove_agent(&state.store, &id, &user_id, state.clock.now()).await?;
    noted(&who, &new, json!({ "agent_removed": user_id }));
    Ok(axum::Json(view(&new)).into_response())
}

async fn verify(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(b): Json<LegalVerificationBody>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let operator = b.operator.as_deref().map(|o| records::text("operator", o)).transpose()?;
    let (_, new) =
        legal_records::record_check(&state.store, &id, b.method, b.level, &who.actor(), state.clock.now()).await?;
    noted(&who, &new, json!({ "verification": new.verification, "operator": operator }));
    Ok(axum::Json(view(&new)).into_response())
}

async fn unverify(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let (_, new) = legal_records::set_verification(&state.store, &id, None, state.clock.now()).await?;
    noted(&who, &new, json!({ "verification": null }));
    Ok(axum::Json(view(&new)).into_response())
}

/// This module's routes.
pub fn api() -> Api {
    let tag = "legal-persons";
    let one = "/admin/v1/legal-persons/{id}";
    let agent = "/admin/v1/legal-persons/{id}/agents/{user_id}";
    let verification = "/admin/v1/legal-persons/{id}/verification";
    Api::new()
        .get(
            "/admin/v1/legal-persons",
            list,
            op("listLegalPersons", "List legal persons by id, paged; or find them by name prefix, USCC or agent", tag)
                .query("name", "the name's first characters (at least 2), through the name index")
                .query("uscc", "a unified social credit code: exact match")
                .query("agent", "a natural person's user id: the legal persons they are an agent of")
                .query("limit", "page size, 1-500 (default 50)")
                .query("cursor", "the next_cursor of the previous page")
                .ok::<LegalList>(200),
        )
        .post(
            "/admin/v1/legal-persons",
            create,
            op("createLegalPerson", "Create a legal person (USCC checked) with its first agents", tag)
                .body::<LegalCreateBody>()
                .ok::<LegalView>(201)
                .errors(&[409, 413]),
        )
        .get(one, read, op("getLegalPerson", "Read a legal person", tag).ok::<LegalView>(200).errors(&[404]))
        .put(
            one,
            update,
            op("updateLegalPerson", "Change a legal person; disabling kills the tokens issued for it", tag)
                .body::<LegalUpdateBody>()
                .ok::<LegalView>(200)
                .errors(&[404, 409, 413]),
        )
        .delete(one, remove, op("deleteLegalPerson", "Delete a legal person", tag).no_content().errors(&[404]))
        .put(
            agent,
            put_agent,
            op(
                "putLegalPersonAgent",
                "Authorize a natural person to act for the legal person, or change their role",
                tag,
            )
            .body::<RoleBody>()
            .ok::<LegalView>(200)
            .errors(&[404, 409]),
        )
        .delete(
            agent,
            delete_agent,
            op("deleteLegalPersonAgent", "Withdraw an agent's authorization to act for the legal person", tag)
                .ok::<LegalView>(200)
                .errors(&[404, 409]),
        )
        .post(
            verification,
            verify,
            op("verifyLegalPerson", "Record an admin's in-person verification of a legal person", tag)
                .body::<LegalVerificationBody>()
                .ok::<LegalView>(200)
                .errors(&[404, 409]),
        )
        .delete(
            verification,
            unverify,
            op("unverifyLegalPerson", "Withdraw a legal person's verification", tag)
                .ok::<LegalView>(200)
                .errors(&[404, 409]),
        )
}
