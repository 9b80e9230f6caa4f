//! Acting for a legal person (HL-5.1) in the browser flow: after an agent's password was right
//! at a login posted with `account_kind=legal_person`, either the only legal person they act
//! for is picked, or they are asked (`POST /act`), or refused; then the SSO session is
//! established acting for it and the remembered authorization request continues.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::json;

use super::AppState;
use super::authorize::{
    BROWSER_COOKIE, continue_after_auth, expired, locale, session_of, set_cookie, unavailable_page,
};
use super::extract::{Form, Meta, cookie};
use super::pages::{self, Locale, act as page};
use crate::audit::{Event, Kind, Outcome};
use crate::authorize::{self, Pending};
use crate::crypto;
use crate::error::OAuthError;
use crate::identity::acting::{self, Acting, Choosing, Options, PickError};
use crate::metrics::LoginOutcome;
use crate::session;
use crate::users::User;

/// The form field the login page's 法人 tab sends (issue 11 contract).
pub const ACCOUNT_KIND: &str = "account_kind";

/// After a good password at a legal-person login that did not pick exactly one legal person:
/// the chooser, or the refusal (audited).
#[allow(clippy::too_many_arguments)]
pub(super) async fn ask_or_refuse(
    state: &AppState,
    meta: &Meta,
    headers: &HeaderMap,
    id: &str,
    p: &Pending,
    user: &User,
    options: Options,
    client_name: &str,
    app_id: Option<&str>,
) -> Response {
    let loc = locale(state, p.req.ui_locales.as_deref(), headers);
    match options {
        Options::Many(list) => {
            let now = state.clock.now();
            let c = Choosing {
                agent: user.id.clone(),
                generation: user.generation,
                amr: vec!["pwd".into()],
                acr: "1".into(),
                exp: p.exp.min(now + state.config.tokens.login_ttl),
            };
            if let Err(e) = acting::remember(&state.store, id, &c, now).await {
                return unavailable_page(state, headers, e);
            }
            let choices: Vec<page::Choice<'_>> =
                list.iter().map(|lp| page::Choice { id: &lp.id, name: &lp.name, uscc: &lp.uscc }).collect();
            page::chooser(loc, id, &p.csrf, client_name, &choices)
        }
        Options::None | Options::One(_) => {
            state.metrics.login(LoginOutcome::Failure, "not_an_agent");
            let event = Event::new(Kind::LoginFailure, Outcome::Denied)
                .actor(format!("user:{}", user.id))
                .client(&p.req.client_id)
                .subject(&user.id)
                .detail(json!({"reason": "not_an_agent", "account_kind": "legal_person"}));
            state.audit.record(meta.apply(event, app_id)).await;
            page::refused(loc, id)
        }
    }
}

/// Establishes the browser's session for `user` (acting when `acting` is set), audits the
/// login and continues the remembered request. The guard's bookkeeping is the caller's.
#[allow(clippy::too_many_arguments)]
pub(super) async fn establish_and_continue(
    state: &AppState,
    meta: &Meta,
    headers: &HeaderMap,
    id: &str,
    p: Pending,
    user: &User,
    acting: Option<Acting>,
    amr: Vec<String>,
    acr: String,
) -> Response {
    let t = state.timeouts();
    let existing = match session_of(state, headers).await {
        Ok(s) => s,
        Err(e) => return unavailable_page(state, headers, e),
    };
    let login = session::Login { sub: user.id.clone(), generation: user.generation, acr, amr, upstream: None, acting };
    let (session, cookie_value) = match session::establish(state.logout_ctx("user"), existing, login, t).await {
        Ok(e) => (e.session, e.cookie),
        Err(e) => return unavailable_page(state, headers, e),
    };
    state.metrics.login(LoginOutcome::Success, "ok");
    if cookie_value.is_some() {
        state.metrics.session_started();
    }
    let app_id = crate::clients::get(&state.store, &p.req.client_id).await.ok().flatten().and_then(|c| c.app_id);
    let event = Event::new(Kind::LoginSuccess, Outcome::Success)
        .actor(format!("user:{}", user.id))
        .client(&p.req.client_id)
        .subject(&user.id)
        .detail(json!({"sid": session.sid, "amr": session.amr, "acr": session.acr,
            "acting_for": session.acting.as_ref().map(|a| a.lp.clone())}));
    state.audit.record(meta.apply(event, app_id.as_deref())).await;
    let mut resp = continue_after_auth(state, headers, id, p.req, session, None).await;
    if let Some(c) = cookie_value {
        set_cookie(&mut resp, state, &state.config.session.cookie_name, &c, t.absolute);
    }
    resp
}

fn forbidden(loc: Locale, e: &OAuthError) -> Response {
    pages::error(loc, StatusCode::FORBIDDEN, e.code.as_str(), &e.description)
}

/// POST /act: the agent's pick on the chooser.
async fn act_submit(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(form): Form) -> Response {
    let id = form.get("req").cloned().unwrap_or_default();
    let now = state.clock.now();
    let (pending, choosing) = tokio::join!(
        authorize::recall(&state.store, &id, cookie(&headers, BROWSER_COOKIE), now),
        acting::recall(&state.store, &id, now),
    );
    let p = match pending {
        Ok(Some(p)) => p,
        Ok(None) => return expired(&state, &headers),
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let loc = locale(&state, p.req.ui_locales.as_deref(), &headers);
    if !form.get("csrf").is_some_and(|c| crypto::ct_eq(c.as_bytes(), p.csrf.as_bytes())) {
        return forbidden(loc, &OAuthError::invalid_request("the form has expired; reload the page"));
    }
    let c = match choosing {
        Ok(Some(c)) => c,
        Ok(None) => return expired(&state, &headers),
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let lp_id = form.get("legal_person").map_or("", String::as_str);
    let (agent, lp) = match acting::pick(&state.store, &c, lp_id).await {
        Ok(v) => v,
        Err(PickError::Store(e)) => return unavailable_page(&state, &headers, e),
        Err(e) => {
            let event = Event::new(Kind::LoginFailure, Outcome::Denied)
                .actor(format!("user:{}", c.agent))
                .client(&p.req.client_id)
                .subject(&c.agent)
                .detail(json!({"reason": "not_an_agent", "legal_person": lp_id}));
            state.audit.record(meta.apply(event, None)).await;
            return forbidden(loc, &OAuthError::new(crate::error::ErrorCode::AccessDenied, e.to_string()));
        }
    };
    if let Err(e) = acting::forget(&state.store, &id).await {
        return unavailable_page(&state, &headers, e);
    }
    establish_and_continue(&state, &meta, &headers, &id, p, &agent, Some(Acting::of(&lp)), c.amr, c.acr).await
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/act", post(act_submit))
}
