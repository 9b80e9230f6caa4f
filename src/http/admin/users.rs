//! `/admin/v1/users`: people who log in, their organizations (which decide the applications
//! they may use), their sessions and logouts. Phone numbers are sealed at rest and shown
//! masked (SH-8.2); a changed password or a disabled account ends every login (DC-4).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::{Api, op};
use super::{Admin, Json};
use crate::audit::Kind;
use crate::crypto::Secret;
use crate::guard;
use crate::http::AppState;
use crate::http::error::Problem;
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
    /// Phone, masked (SH-8.2).
    pub phone_number: Option<String>,
    /// Organizations.
    pub orgs: Vec<String>,
    /// Whether the account may log in.
    pub enabled: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A list of users.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserList {
    /// The users.
    pub users: Vec<UserView>,
}

fn view(state: &AppState, u: &User) -> UserView {
    UserView {
        id: u.id.clone(),
        username: u.username.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        phone_number: u.phone_masked(state.keys.data()),
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
    /// Password (required at create; at least 12 characters, not a common password).
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
    /// Phone; sealed at rest.
    #[serde(default)]
    pub phone_number: Option<String>,
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
    let username = b.username.ok_or_else(|| Problem::bad_request("username is required"))?;
    users::check_username(&username).map_err(Problem::bad_request)?;
    let password = b.password.ok_or_else(|| Problem::bad_request("password is required"))?;
    let orgs = b.orgs.unwrap_or_default();
    check_orgs(&orgs)?;
    let now = state.clock.now();
    let mut user = User {
        id: users::new_id(),
        name: b.name.unwrap_or_else(|| username.clone()),
        username,
        password_hash: hash(&state, password).await?,
        email: b.email,
        email_verified: b.email_verified.unwrap_or(false),
        phone_sealed: None,
        orgs,
        enabled: b.enabled.unwrap_or(true),
        generation: 0,
        created_at: now,
        updated_at: now,
    };
    user.set_phone(state.keys.data(), b.phone_number.as_deref());
    if !users::create(&state.store, &user).await? {
        return Err(Problem::conflict(format!("username '{}' is taken", user.username)));
    }
    who.about_subject(&user.id);
    // GB-6.4a: a registration here is pushed to the upstream platforms that want it.
    crate::federation::sync::enqueue(&state.store, &user.id, now, Some(&state.sync_wake)).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, &user))).into_response())
}

async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let users = users::list(&state.store).await?.iter().map(|u| view(&state, u)).collect();
    Ok(axum::Json(UserList { users }).into_response())
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
    if let Some(p) = b.password {
        u.password_hash = hash(&state, p).await?;
    }
    if let Some(n) = b.name {
        u.name = n;
    }
    if b.email.is_some() {
        u.email = b.email;
    }
    if let Some(v) = b.email_verified {
        u.email_verified = v;
    }
    if let Some(p) = &b.phone_number {
        u.set_phone(state.keys.data(), Some(p));
    }
    if let Some(orgs) = b.orgs {
        check_orgs(&orgs)?;
        u.orgs = orgs;
    }
    if let Some(e) = b.enabled {
        u.enabled = e;
    }
    u.updated_at = state.clock.now();
    // A changed password or a disabled account kills every token of the user (the generation
    // moves on in the same write) and ends every login, with the logout broadcast (DC-4).
    if users::update(&state.store, &old, &mut u).await? {
        crate::logout::end_user_sessions(state.logout_ctx(&who.actor()), &u.id, Reason::AccountChanged, None, None)
            .await?;
    }
    Ok(axum::Json(view(&state, &u)).into_response())
}

async fn remove(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_subject(&id);
    if !users::delete(&state.store, &id).await? {
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

/// This module's routes.
pub fn api() -> Api {
    let tag = "users";
    Api::new()
        .get("/admin/v1/users", list, op("listUsers", "List users", tag).ok::<UserList>(200))
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
                .errors(&[404, 413]),
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
