//! `/admin/v1/users`: natural persons who log in (HL-5.1), their identity documents and
//! verification (HL-6.1), their organizations (which decide the applications they may use),
//! their sessions and logouts. Phone and ID numbers are checked, sealed at rest, shown masked
//! and searched through the blind index (SH-8.2); a changed password or a disabled account
//! ends every login (DC-4).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::{Api, op};
use super::{Admin, Json, Params};
use crate::audit::Kind;
use crate::crypto::Secret;
use crate::guard;
use crate::http::AppState;
use crate::http::error::Problem;
use crate::identity::legal_records;
use crate::identity::persons::{self, AdminCheck, IdentityPatch, PersonQuery};
use crate::identity::records::{self, Page};
use crate::identity::{AssuranceLevel, IdType, PrincipalKind, Verification, VerifyMethod, idnum, names};
use crate::logout::Reason;
use crate::users::{self, User};

/// A user as the admin API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserView {
    /// Subject identifier.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail.
    pub email: Option<String>,
    /// Whether the e-mail was verified.
    pub email_verified: bool,
    /// Phone, masked as `138****5678` (SH-8.2).
    pub phone_number: Option<String>,
    /// Always `natural_person` (HL-5.1).
    pub user_type: PrincipalKind,
    /// Identity document type.
    pub id_type: Option<IdType>,
    /// Identity document number, masked as `110***********1234` (SH-8.2).
    pub id_number: Option<String>,
    /// How well the person is known (HL-6.1): `visitor`, `registered`, `real_name`, `strong`.
    pub auth_level: AssuranceLevel,
    /// The same level as an `acr` value (`0` to `3`).
    pub acr: String,
    /// The latest verification: level, method, by whom, when.
    pub verification: Option<Verification>,
    /// Organizations.
    pub orgs: Vec<String>,
    /// Whether the account may log in.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A page of users.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserList {
    /// The users, by id.
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn view(state: &AppState, u: &User) -> UserView {
    UserView {
        id: u.id.clone(),
        username: u.username.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        phone_number: u.phone_masked(state.keys.data()),
        user_type: PrincipalKind::NaturalPerson,
        id_type: u.id_type,
        id_number: u.id_number(state.keys.data()).map(|n| idnum::mask(&n)),
        auth_level: u.level(),
        acr: u.level().acr().to_owned(),
        verification: u.verification.clone(),
        orgs: u.orgs.clone(),
        enabled: u.enabled,
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

/// Body of user create and update; absent fields stay as they are.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// Login name (create only).
    #[serde(default)]
    pub username: Option<String>,
    /// Password (required at create; at least 12 characters).
    #[serde(default)]
    pub password: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the e-mail was verified.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// Mainland mobile number (`13812345678`, `+86 138 1234 5678`...), stored as
    /// `+8613812345678` and sealed; empty clears it.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Identity document type (default `resident_id_card` when a number is given).
    #[serde(default)]
    pub id_type: Option<IdType>,
    /// Identity document number, checked for its type (GB 11643 check digit for resident ID
    /// cards) and sealed; empty clears it. A new number voids a real-name verification.
    #[serde(default)]
    pub id_number: Option<String>,
    /// Organization ids (replaces the list).
    #[serde(default)]
    pub orgs: Option<Vec<String>>,
    /// Whether the account may log in.
    #[serde(default)]
    pub enabled: Option<bool>,
}

fn check_orgs(orgs: &[String]) -> Result<(), Problem> {
    if orgs.len() > 1000 || orgs.iter().any(|o| o.is_empty() || o.len() > 128 || o.chars().any(char::is_control)) {
        return Err(Problem::bad_request("orgs: at most 1000 ids of 1-128 characters"));
    }
    Ok(())
}

async fn hash(state: &AppState, password: String) -> Result<String, Problem> {
    users::check_password_policy(&password).map_err(Problem::bad_request)?;
    state.passwords.hash(Secret(password)).await.map_err(|e| {
        tracing::warn!(error = %e, "password hashing unavailable");
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:tongzheng:problem:unavailable",
            "Service unavailable",
            "password hashing is busy, retry",
        );
        p.retry_after = Some(1);
        p
    })
}

async fn create(
    State(state): State<AppState>,
    Admin(who): Admin,
    Json(b): Json<UserBody>,
) -> Result<Response, Problem> {
    let username = b.username.clone().ok_or_else(|| Problem::bad_request("username is required"))?;
    users::check_username(&username).map_err(Problem::bad_request)?;
    let password = b.password.clone().ok_or_else(|| Problem::bad_request("password is required"))?;
    let orgs = b.orgs.clone().unwrap_or_default();
    check_orgs(&orgs)?;
    let now = state.clock.now();
    let name = b.name.clone().unwrap_or_else(|| username.clone());
    let email = b.email.as_deref().map(records::email).transpose()?.flatten();
    let mut user = User::new(username, String::new(), String::new(), now);
    let patch = IdentityPatch { name: Some(&name), ..identity_patch(&b) };
    persons::apply(&mut user, state.keys.data(), &patch)?;
    user.password_hash = hash(&state, password).await?;
    user.email = email;
    user.email_verified = b.email_verified.unwrap_or(false);
    user.orgs = orgs;
    user.enabled = b.enabled.unwrap_or(true);
    users::create(&state.store, state.keys.data(), &user).await?;
    who.about_subject(&user.id);
    // GB-6.4a: a registration here is pushed to the upstream platforms that want it.
    crate::federation::sync::enqueue(&state.store, &user.id, now, Some(&state.sync_wake)).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, &user))).into_response())
}

fn identity_patch(b: &UserBody) -> IdentityPatch<'_> {
    IdentityPatch {
        name: b.name.as_deref(),
        phone: b.phone_number.as_deref(),
        id_type: b.id_type,
        id_number: b.id_number.as_deref(),
    }
}

/// Query of `GET /admin/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    name: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn list_page(limit: Option<usize>, cursor: Option<String>) -> Result<Page, Problem> {
    Ok(Page::new(limit, cursor)?)
}

/// Answers a search, and tells the audit record what was looked up by (never the value) and
/// who was found (SH-8.2: who looked whom up stays traceable).
async fn found(state: &AppState, who: &super::Caller, q: PersonQuery, page: &Page) -> Result<Response, Problem> {
    let by = match &q {
        PersonQuery::All => "all",
        PersonQuery::Name(_) => "name",
        PersonQuery::Phone(_) => "phone_number",
        PersonQuery::IdNumber(..) => "id_number",
    };
    let found = persons::search(&state.store, state.keys.data(), &q, page).await?;
    if let [one] = found.items.as_slice() {
        who.about_subject(&one.id);
    }
    who.record_as(Kind::AdminAction, json!({ "search_by": by, "found": found.items.len() }));
    let users = found.items.iter().map(|u| view(state, u)).collect();
    Ok(axum::Json(UserList { users, next_cursor: found.next }).into_response())
}

async fn list(
    State(state): State<AppState>,
    Admin(who): Admin,
    Params(q): Params<ListQuery>,
) -> Result<Response, Problem> {
    let page = list_page(q.limit, q.cursor)?;
    let query = q.name.map_or(PersonQuery::All, PersonQuery::Name);
    found(&state, &who, query, &page).await
}

/// Body of `POST /admin/v1/users/search`: exactly one of `name`, `phone_number` and
/// `id_number`. Phone and ID numbers travel in the body, never in a URL that access logs keep
/// (SH-8.2).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// The name's first characters (at least 2), or the whole name.
    #[serde(default)]
    pub name: Option<String>,
    /// A mainland mobile number, in any written form: exact match.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// An identity document number: exact match.
    #[serde(default)]
    pub id_number: Option<String>,
    /// The document type of `id_number`; absent: any type that accepts it.
    #[serde(default)]
    pub id_type: Option<IdType>,
    /// Page size (1-500, default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    Admin(who): Admin,
    Json(b): Json<SearchBody>,
) -> Result<Response, Problem> {
    let page = list_page(b.limit, b.cursor)?;
    let query = match (b.name, b.phone_number, b.id_number) {
        (Some(n), None, None) => PersonQuery::Name(n),
        (None, Some(p), None) => PersonQuery::Phone(p),
        (None, None, Some(n)) => PersonQuery::IdNumber(b.id_type, n),
        _ => return Err(Problem::bad_request("give exactly one of name, phone_number and id_number")),
    };
    found(&state, &who, query, &page).await
}

async fn load(state: &AppState, id: &str) -> Result<User, Problem> {
    users::get(&state.store, id).await?.ok_or_else(|| Problem::not_found(format!("no user '{id}'")))
}

async fn read(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    Ok(axum::Json(view(&state, &load(&state, &id).await?)).into_response())
}

async fn update(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(b): Json<UserBody>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let mut u = load(&state, &id).await?;
    let old = u.clone();
    if b.username.as_ref().is_some_and(|n| *n != u.username) {
        return Err(Problem::bad_request("username cannot be changed"));
    }
    let mut changed = persons::apply(&mut u, state.keys.data(), &identity_patch(&b))?;
    if let Some(e) = b.email.as_deref() {
        let e = records::email(e)?;
        if e != u.email {
            u.email = e;
            changed.push("email");
        }
    }
    if let Some(p) = b.password {
        u.password_hash = hash(&state, p).await?;
        changed.push("password");
    }
    if let Some(v) = b.email_verified {
        u.email_verified = v;
    }
    if let Some(orgs) = b.orgs {
        check_orgs(&orgs)?;
        u.orgs = orgs;
    }
    if let Some(e) = b.enabled {
        u.enabled = e;
    }
    u.updated_at = state.clock.now();
    // The audit record names the fields that changed, never their values (SH-8.2).
    who.record_as(Kind::AdminAction, json!({ "changed": changed }));
    // A changed password or a disabled account kills every token of the user (the generation
    // moves on in the same write) and ends every login, with the logout broadcast (DC-4).
    if users::update(&state.store, state.keys.data(), &old, &mut u).await? {
        crate::logout::end_user_sessions(state.logout_ctx(&who.actor()), &u.id, Reason::AccountChanged, None, None)
            .await?;
    }
    Ok(axum::Json(view(&state, &u)).into_response())
}

async fn remove(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    // HL-5.1: their authorizations to act for legal persons go first (a crash after this step
    // leaves an account that acts for no one; the delete can simply be repeated).
    if users::get(&state.store, &id).await?.is_some() {
        let released = legal_records::forget_agent(&state.store, &id, state.clock.now()).await?;
        if !released.is_empty() {
            who.record_as(Kind::AdminAction, json!({ "agent_removed_from": released }));
        }
    }
    if !users::delete(&state.store, state.keys.data(), &id).await? {
        return Err(Problem::not_found(format!("no user '{id}'")));
    }
    crate::logout::end_user_sessions(state.logout_ctx(&who.actor()), &id, Reason::AccountChanged, None, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn sessions(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let now = state.clock.now();
    let mut out = Vec::new();
    for sid in crate::session::of_user(&state.store, &id).await? {
        if let Some(s) = crate::session::get(&state.store, &sid).await?.filter(|s| s.live(now, state.timeouts())) {
            let clients = crate::session::clients(&state.store, &sid).await?;
            out.push(json!({
                "sid": s.sid, "auth_time": s.auth_time, "last_seen": s.last_seen,
                "expires_at": s.ends_at(state.timeouts()), "acr": s.acr, "amr": s.amr, "clients": clients,
            }));
        }
    }
    Ok(axum::Json(json!({ "sessions": out })).into_response())
}

/// Admin logout of every session of a user (DC-4).
async fn logout(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    let ended =
        crate::logout::end_user_sessions(state.logout_ctx(&who.actor()), &id, Reason::Admin, None, None).await?;
    Ok(axum::Json(json!({ "sessions_ended": ended })).into_response())
}

/// NIST SP 800-63B s5.2.2: ends a user's lockout and growing delays at once (from every
/// address) and clears the failures counted against the account. Recorded as
/// `account_unlocked`.
async fn unlock(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    let u = load(&state, &id).await?;
    let done = guard::unlock(&state.store, &state.config.guard, guard::Realm::Password, &u.username, state.clock.now())
        .await?;
    who.record_as(Kind::AccountUnlocked, json!({"was_held": done.was_held, "addresses": done.addresses}));
    Ok(axum::Json(json!({ "unlocked": true, "was_held": done.was_held })).into_response())
}

/// Body of `POST /admin/v1/users/{id}/verification`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationBody {
    /// How the admin checked the person: `face` or `in_person`.
    pub method: VerifyMethod,
    /// The level reached: `strong` (default) or `real_name`.
    #[serde(default)]
    pub level: Option<AssuranceLevel>,
    /// Who performed the check at the counter (kept in the audit record), at most 128
    /// characters.
    #[serde(default)]
    pub operator: Option<String>,
}

/// HL-6.1: records an admin's face or in-person verification of a person (who: the calling
/// client, plus the operator in the audit record; how: the method).
async fn verify(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(b): Json<VerificationBody>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let operator = b.operator.as_deref().map(|o| records::text("operator", o)).transpose()?;
    let check = AdminCheck { method: b.method, level: b.level };
    let u = persons::record_check(&state.store, state.keys.data(), &id, check, &who.actor(), state.clock.now()).await?;
    who.record_as(Kind::AdminAction, json!({ "verification": u.verification, "operator": operator }));
    Ok(axum::Json(view(&state, &u)).into_response())
}

/// Withdraws a person's verification: back to registered.
async fn unverify(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    who.about_subject(&id);
    let u = persons::withdraw_verification(&state.store, state.keys.data(), &id, state.clock.now()).await?;
    who.record_as(Kind::AdminAction, json!({ "verification": null }));
    Ok(axum::Json(view(&state, &u)).into_response())
}

/// What a name index rebuild read.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Reindexed {
    /// Natural persons indexed.
    pub users: usize,
    /// Legal persons indexed.
    pub legal_persons: usize,
}

/// Puts every natural and legal person into the name index: once after upgrading from a
/// version without it (records written since are indexed as they are written).
async fn reindex(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let (users, legal_persons) = names::rebuild(&state.store, state.keys.data()).await?;
    Ok(axum::Json(Reindexed { users, legal_persons }).into_response())
}

/// This module's routes.
pub fn api() -> Api {
    let tag = "users";
    Api::new()
        .get(
            "/admin/v1/users",
            list,
            op("listUsers", "List natural persons by id, paged; or those whose name starts with `name`", tag)
                .query("name", "the name's first characters (at least 2), through the name index")
                .query("limit", "page size, 1-500 (default 50)")
                .query("cursor", "the next_cursor of the previous page")
                .ok::<UserList>(200),
        )
        .post(
            "/admin/v1/name-index/rebuild",
            reindex,
            op("rebuildNameIndex", "Index every natural and legal person's name (once, after upgrading)", tag)
                .ok::<Reindexed>(200),
        )
        .post(
            "/admin/v1/users/search",
            search,
            op(
                "searchUsers",
                "Find natural persons by name prefix, or exactly by phone or ID number (blind index)",
                tag,
            )
            .body::<SearchBody>()
            .ok::<UserList>(200),
        )
        .post(
            "/admin/v1/users/{id}/verification",
            verify,
            op("verifyUser", "Record an admin's face or in-person verification (HL-6.1: strong)", tag)
                .body::<VerificationBody>()
                .ok::<UserView>(200)
                .errors(&[404, 409]),
        )
        .delete(
            "/admin/v1/users/{id}/verification",
            unverify,
            op("unverifyUser", "Withdraw a person's verification: back to registered", tag)
                .ok::<UserView>(200)
                .errors(&[404]),
        )
        .post(
            "/admin/v1/users",
            create,
            op("createUser", "Create a user", tag).body::<UserBody>().ok::<UserView>(201).errors(&[409, 413]),
        )
        .get("/admin/v1/users/{id}", read, op("getUser", "Read a user", tag).ok::<UserView>(200).errors(&[404]))
        .put(
            "/admin/v1/users/{id}",
            update,
            op("updateUser", "Change a user; a new password or disabling ends their logins", tag)
                .body::<UserBody>()
                .ok::<UserView>(200)
                .errors(&[404, 409, 413]),
        )
        .delete(
            "/admin/v1/users/{id}",
            remove,
            op("deleteUser", "Delete a user and end their logins", tag).no_content().errors(&[404]),
        )
        .get(
            "/admin/v1/users/{id}/sessions",
            sessions,
            op("listUserSessions", "A user's live SSO sessions and the clients each reached", tag).ok::<Value>(200),
        )
        .post(
            "/admin/v1/users/{id}/logout",
            logout,
            op("logoutUser", "End every session of a user, with the logout broadcast", tag).ok::<Value>(200),
        )
        .post(
            "/admin/v1/users/{id}/unlock",
            unlock,
            op("unlockUser", "End a user's lockout after failed logins and clear the failures", tag)
                .ok::<Value>(200)
                .errors(&[404]),
        )
}
