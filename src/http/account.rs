//! `/account`: the signed-in person's own account page and its actions (end a session,
//! revoke a consent, change the password). Every action is a CSRF-checked form post that
//! answers with a redirect back to the page (post/redirect/get) and is audited.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::AppState;
use super::authorize::{BROWSER_COOKIE, locale, pending_caps, session_of, set_cookie, unavailable_page};
use super::csrf::{self, Browser};
use super::error::account_status;
use super::extract::{Form, Meta, Query, cookie};
use super::pages::account as page;
use super::pages::signup::Notice;
use crate::account;
use crate::audit::{Event, Kind, Outcome};
use crate::authorize::own_page;
use crate::crypto::{self, Secret};
use crate::session::Session;

fn see_other(to: &str) -> Response {
    super::signup::see_other(to)
}

/// The page, with `notice` above it.
async fn show(state: &AppState, headers: &HeaderMap, s: &Session, notice: Notice, status: StatusCode) -> Response {
    let l = locale(state, None, headers);
    let now = state.clock.now();
    match account::overview(&state.store, &state.builtin_scopes, state.keys.data(), s, now, state.timeouts()).await {
        Ok(Some(o)) => {
            let b = Browser::of(headers);
            let mut resp = page::account(l, &o, &b.token(state), &notice, state.calendar.offset());
            *resp.status_mut() = status;
            b.keep(state, &mut resp);
            resp
        }
        Ok(None) => page::signed_out(l),
        Err(e) => unavailable_page(state, headers, e),
    }
}

/// Without a session: a login that returns to the account page (its login page, 303).
async fn sign_in_first(state: &AppState, headers: &HeaderMap) -> Response {
    let (browser, fresh) = match cookie(headers, BROWSER_COOKIE) {
        Some(b) if b.len() <= 64 => (b.to_owned(), false),
        _ => (crypto::random_token(24), true),
    };
    let ttl = state.config.tokens.login_ttl;
    let caps = pending_caps(state);
    let id = match own_page::start(&state.store, "/account", &browser, state.clock.now(), ttl, caps).await {
        Ok((id, _)) => id,
        Err(e) => return unavailable_page(state, headers, e),
    };
    let mut resp = see_other(&format!("/login?req={id}"));
    if fresh {
        set_cookie(&mut resp, state, BROWSER_COOKIE, &browser, ttl.max(3600));
    }
    resp
}

/// GET /account[?done=WHAT]: without a session, a login first.
async fn account_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query) -> Response {
    let s = match session_of(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return sign_in_first(&state, &headers).await,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let l = locale(&state, None, &headers);
    let notice = q.get("done").and_then(|d| page::done_text(l, d)).map_or(Notice::None, |t| Notice::Ok(t.to_owned()));
    show(&state, &headers, &s, notice, StatusCode::OK).await
}

/// The session of a form post, with its CSRF token checked; `Err` is the answer otherwise.
async fn signed_in(state: &AppState, headers: &HeaderMap, form: &super::extract::Params) -> Result<Session, Response> {
    let l = locale(state, None, headers);
    if !csrf::valid(state, headers, form) {
        return Err(super::signup::forbidden(l));
    }
    match session_of(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(page::signed_out(l)),
        Err(e) => Err(unavailable_page(state, headers, e)),
    }
}

async fn audit(state: &AppState, meta: &Meta, sub: &str, detail: serde_json::Value) {
    let event = Event::new(Kind::Account, Outcome::Success).actor(format!("user:{sub}")).subject(sub).detail(detail);
    state.audit.record(meta.apply(event, None)).await;
}

/// POST /account/sessions/end: ends one of the person's sessions (logout broadcast).
async fn end_session(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(form): Form) -> Response {
    let s = match signed_in(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let sid = form.get("sid").cloned().unwrap_or_default();
    let actor = format!("user:{}", s.sub);
    match account::end_session(state.logout_ctx(&actor), &s.sub, &sid).await {
        Ok(true) => {
            audit(&state, &meta, &s.sub, json!({"action": "session_ended", "sid": sid})).await;
            see_other("/account?done=session_ended")
        }
        Ok(false) => see_other("/account"),
        Err(e) => unavailable_page(&state, &headers, e),
    }
}

/// POST /account/consents/revoke: forgets the person's consent to one client.
async fn revoke_consent(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(form): Form) -> Response {
    let s = match signed_in(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    match account::revoke_consent(&state.store, &s.sub, &client_id, state.clock.now()).await {
        Ok(true) => {
            let event = Event::new(Kind::Consent, Outcome::Success)
                .actor(format!("user:{}", s.sub))
                .subject(&s.sub)
                .client(&client_id)
                .detail(json!({"action": "consent_revoked"}));
            state.audit.record(meta.apply(event, None)).await;
            see_other("/account?done=consent_revoked")
        }
        Ok(false) => see_other("/account"),
        Err(e) => unavailable_page(&state, &headers, e),
    }
}

/// POST /account/password: checks the current password, sets the new one, ends every
/// session and signs this browser in again.
async fn change_password(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(form): Form) -> Response {
    let s = match signed_in(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let current = Secret(form.get("current").cloned().unwrap_or_default());
    let new = Secret(form.get("password").cloned().unwrap_or_default());
    let actor = format!("user:{}", s.sub);
    let ctx = state.logout_ctx(&actor);
    match account::change_password(ctx, &state.passwords, state.keys.data(), &s, current, new, state.timeouts()).await {
        Ok(est) => {
            audit(&state, &meta, &s.sub, json!({"action": "password_changed"})).await;
            let mut resp = see_other("/account?done=password_changed");
            if let Some(c) = est.cookie {
                set_cookie(&mut resp, &state, &state.config.session.cookie_name, &c, state.timeouts().absolute);
            }
            resp
        }
        Err(e) => {
            let l = locale(&state, None, &headers);
            let notice = Notice::Error(page::change_problem(l, &e).to_owned());
            show(&state, &headers, &s, notice, account_status(&e)).await
        }
    }
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page))
        .route("/account/sessions/end", post(end_session))
        .route("/account/consents/revoke", post(revoke_consent))
        .route("/account/password", post(change_password))
}
