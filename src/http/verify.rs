//! `/verify` (GB-6.4a, HL-6.1): real-name verification in the middle of an authorization request
//! (`?req=<pending request>`), or from the account page (`?next=/account`). A person below the
//! level a client requires is sent here by `/authorize`; a match continues the same request at
//! the raised level, a refusal ends it with `unmet_authentication_requirements` at the client's
//! redirect URI (OpenID Connect Core Unmet Authentication Requirements 1.0), a cancel with
//! `access_denied` (RFC 6749 s4.1.2.1).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::AppState;
use super::authorize::{
    BROWSER_COOKIE, continue_after_auth, error_to_client, expired, locale, see_other, session_of, unavailable_page,
};
use super::extract::{Form, Query, cookie};
use super::pages::verify::{Notice, VerifyForm};
use super::pages::{self, Locale};
use crate::authorize::{self, Pending, Redirect, level};
use crate::clients;
use crate::crypto;
use crate::error::{ErrorCode, OAuthError};
use crate::identity::verify::flow::{self, Done, Input, StepError};
use crate::session::Session;

/// Where the person goes afterwards.
enum Target {
    /// Continue a pending authorization request.
    Req(String),
    /// Back to a page of ours.
    Next(String),
}

fn target(q: &super::extract::Params) -> Option<Target> {
    if let Some(id) = q.get("req") {
        return Some(Target::Req(id.clone()));
    }
    // Only a path of ours: no scheme, no host (`//`, `/\`), no control characters.
    let next = q.get("next")?;
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 512
        && !next.chars().any(char::is_control);
    ok.then(|| Target::Next(next.clone()))
}

fn flow_ctx(state: &AppState) -> flow::Ctx<'_> {
    flow::Ctx {
        store: &state.store,
        data: state.keys.data(),
        verifier: &state.verifier,
        audit: &state.audit,
        attempts_per_day: state.config.verify.attempts_per_day,
        timeouts: state.timeouts(),
        now: state.clock.now(),
    }
}

/// The anti-CSRF token of the `next` form: bound to the session, unknowable without the data key.
fn session_csrf(state: &AppState, s: &Session) -> String {
    state.keys.data().derive(&format!("csrf:verify:{}", s.sid))
}

fn bad_request(state: &AppState, headers: &HeaderMap, d: &'static str) -> Response {
    let e = OAuthError::invalid_request(d);
    pages::error(locale(state, None, headers), StatusCode::BAD_REQUEST, e.code.as_str(), &e.description)
}

fn redirect_of(p: &Pending) -> Redirect {
    Redirect { uri: p.req.redirect_uri.clone(), mode: p.req.response_mode, state: p.req.state.clone() }
}

async fn client_name(state: &AppState, id: &str) -> Option<String> {
    clients::get(&state.store, id).await.ok().flatten().map(|c| c.name)
}

/// The level the page aims at: what the request requires, else (an optional step, e.g. after
/// sign-up) the real-name level.
fn aim(p: &Pending) -> crate::identity::AssuranceLevel {
    p.req.min_level.unwrap_or(level::SELF_SERVICE)
}

/// Ends the pending request with `e` at the client's redirect URI.
async fn end_request(state: &AppState, headers: &HeaderMap, id: &str, to: Redirect, e: OAuthError) -> Response {
    if let Err(err) = authorize::forget(&state.store, id).await {
        return unavailable_page(state, headers, err);
    }
    error_to_client(state, headers, &to, &e)
}

/// GET /verify: the form (or, when the account is verified already, straight on).
async fn verify_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query) -> Response {
    let Some(to) = target(&q) else {
        return bad_request(&state, &headers, "/verify needs req (a pending request) or next (a path)");
    };
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    match to {
        Target::Req(id) => {
            let now = state.clock.now();
            let p = match authorize::recall(&state.store, &id, cookie(&headers, BROWSER_COOKIE), now).await {
                Ok(Some(p)) => p,
                Ok(None) => return expired(&state, &headers),
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            // No session, or one this request may not use as it stands (prompt=login, max_age,
            // another subject): the login form first.
            let Some(s) = session.filter(|s| p.admits(s, now, state.config.tokens.login_ttl)) else {
                return see_other(&format!("/login?req={id}"));
            };
            // Verified already (by an admin, elsewhere, or a step cut short): no new call.
            let s = match flow::from_record(flow_ctx(&state), s).await {
                Ok(s) => s,
                Err(StepError::Store(e)) => return unavailable_page(&state, &headers, e),
                Err(_) => return expired(&state, &headers),
            };
            if level::standing(&s.acr, Some(aim(&p))) == level::Standing::Met {
                return continue_after_auth(&state, &headers, &id, p.req, s, None).await;
            }
            let name = client_name(&state, &p.req.client_id).await;
            let f = VerifyForm {
                target: ("req", &id),
                csrf: &p.csrf,
                client_name: name.as_deref(),
                name: "",
                id_type: "resident_id_card",
                notice: Notice::None,
            };
            pages::verify::verify(locale(&state, p.req.ui_locales.as_deref(), &headers), &f)
        }
        Target::Next(next) => {
            let Some(s) = session else {
                return bad_request(&state, &headers, "sign in first, then verify from your account page");
            };
            let csrf = session_csrf(&state, &s);
            let f = VerifyForm {
                target: ("next", &next),
                csrf: &csrf,
                client_name: None,
                name: "",
                id_type: "resident_id_card",
                notice: Notice::None,
            };
            pages::verify::verify(locale(&state, None, &headers), &f)
        }
    }
}

/// POST /verify: the person's answer.
async fn verify_submit(State(state): State<AppState>, headers: HeaderMap, Form(form): Form) -> Response {
    let Some(to) = target(&form) else {
        return bad_request(&state, &headers, "the form names neither req nor next");
    };
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let field = |k: &str| form.get(k).map_or("", String::as_str);
    let csrf_ok = |expected: &str| crypto::ct_eq(field("csrf").as_bytes(), expected.as_bytes());
    let cancel = field("decision") == "cancel";
    let input = Input { name: field("name"), id_type: field("id_type"), id_number: field("id_number") };
    let again = |loc: Locale, target: (&'static str, &str), csrf: &str, client: Option<&str>, notice: Notice| {
        let f = VerifyForm { target, csrf, client_name: client, name: input.name, id_type: input.id_type, notice };
        pages::verify::verify(loc, &f)
    };
    match to {
        Target::Req(id) => {
            let now = state.clock.now();
            let p = match authorize::recall(&state.store, &id, cookie(&headers, BROWSER_COOKIE), now).await {
                Ok(Some(p)) => p,
                Ok(None) => return expired(&state, &headers),
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            if !csrf_ok(&p.csrf) {
                let e = OAuthError::invalid_request("the form has expired; reload the page");
                return pages::error(
                    locale(&state, None, &headers),
                    StatusCode::FORBIDDEN,
                    e.code.as_str(),
                    &e.description,
                );
            }
            let Some(s) = session.filter(|s| p.admits(s, now, state.config.tokens.login_ttl)) else {
                return see_other(&format!("/login?req={id}"));
            };
            let loc = locale(&state, p.req.ui_locales.as_deref(), &headers);
            let end = |e: OAuthError| end_request(&state, &headers, &id, redirect_of(&p), e);
            // Required by the request: declining or failing ends it. Optional (a step offered
            // after sign-up): declining continues the request as it is, a failure may be retried.
            let required = p.req.min_level.is_some();
            if cancel && required {
                return end(OAuthError::new(ErrorCode::AccessDenied, "the user declined real-name verification")).await;
            }
            // Declined, or met already (a form sent twice, a verification finished in another
            // tab): no new (billed) call.
            if cancel || level::standing(&s.acr, Some(aim(&p))) == level::Standing::Met {
                return continue_after_auth(&state, &headers, &id, p.req, s, None).await;
            }
            let client_id = p.req.client_id.clone();
            let name = client_name(&state, &client_id).await;
            let shown = |notice: Notice| again(loc, ("req", &id), &p.csrf, name.as_deref(), notice);
            match flow::step_up(flow_ctx(&state), s, &input, Some(&client_id)).await {
                Ok(Done::Verified(s)) => continue_after_auth(&state, &headers, &id, p.req, *s, None).await,
                Ok(Done::Refused(why)) if required => end(level::unmet(why)).await,
                Ok(Done::Refused(_)) => shown(Notice::Refused),
                Err(StepError::TooMany) if required => {
                    end(level::unmet("too many real-name verification attempts today")).await
                }
                Err(StepError::TooMany) => shown(Notice::TooMany),
                Err(StepError::Malformed(_)) => shown(Notice::Malformed),
                Err(StepError::Unavailable(_)) => shown(Notice::Unavailable),
                Err(StepError::Gone) => expired(&state, &headers),
                Err(StepError::Store(e)) => unavailable_page(&state, &headers, e),
            }
        }
        Target::Next(next) => {
            let Some(s) = session else {
                return bad_request(&state, &headers, "sign in first, then verify from your account page");
            };
            let csrf = session_csrf(&state, &s);
            if !csrf_ok(&csrf) {
                let e = OAuthError::invalid_request("the form has expired; reload the page");
                return pages::error(
                    locale(&state, None, &headers),
                    StatusCode::FORBIDDEN,
                    e.code.as_str(),
                    &e.description,
                );
            }
            if cancel {
                return see_other(&next);
            }
            let loc = locale(&state, None, &headers);
            match flow::step_up(flow_ctx(&state), s, &input, None).await {
                Ok(Done::Verified(_)) => see_other(&next),
                Ok(Done::Refused(_)) => again(loc, ("next", &next), &csrf, None, Notice::Refused),
                Err(StepError::TooMany) => again(loc, ("next", &next), &csrf, None, Notice::TooMany),
                Err(StepError::Malformed(_)) => again(loc, ("next", &next), &csrf, None, Notice::Malformed),
                Err(StepError::Unavailable(_)) => again(loc, ("next", &next), &csrf, None, Notice::Unavailable),
                Err(StepError::Gone) => expired(&state, &headers),
                Err(StepError::Store(e)) => unavailable_page(&state, &headers, e),
            }
        }
    }
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/verify", get(verify_page).post(verify_submit))
}
