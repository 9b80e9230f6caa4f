//! Platform federation endpoints (DC-5, GB-6.4c, GB-6.4d): the "log in with <upstream>" link,
//! the callback where an upstream platform sends the user back, and the back-channel logout
//! receiver where an upstream tells us its session ended.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::authorize::{
    BROWSER_COOKIE, continue_after_auth, error_to_client, expired, locale, session_of, set_cookie, unavailable_page,
};
use super::extract::{Form, Meta, Query, cookie};
use super::pages;
use crate::audit::{Event, Kind, Outcome};
use crate::authorize::{self, Redirect};
use crate::error::{ErrorCode, OAuthError};
use crate::federation::login::{self, Callback, Returned};
use crate::federation::{self, FedError, Role};
use crate::http::error::JsonError;
use crate::metrics::LoginOutcome;
use crate::session;

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn fed_page(state: &AppState, headers: &HeaderMap, e: &FedError) -> Response {
    let (status, code) = match e {
        FedError::Denied(_) => (StatusCode::FORBIDDEN, ErrorCode::AccessDenied),
        FedError::Remote(_) => (StatusCode::BAD_GATEWAY, ErrorCode::TemporarilyUnavailable),
        FedError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::TemporarilyUnavailable),
        FedError::NoTrust(_) | FedError::Invalid(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
    };
    pages::error(locale(state, None, headers), status, code.as_str(), &e.to_string())
}

async fn audit(
    state: &AppState,
    meta: &Meta,
    outcome: Outcome,
    trust: &str,
    step: &str,
    sub: Option<&str>,
    why: Option<&str>,
) {
    let mut e = Event::new(Kind::Federation, outcome)
        .actor(format!("platform:{trust}"))
        .detail(serde_json::json!({"trust": trust, "step": step, "error": why}));
    if let Some(s) = sub {
        e = e.subject(s);
    }
    state.audit.record(meta.apply(e, None)).await;
}

/// GET /federation/{id}/login?req=ID: the user chose to log in through an upstream platform.
async fn login_with(
    State(state): State<AppState>,
    meta: Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query,
) -> Response {
    let req_id = q.get("req").map_or("", String::as_str);
    let browser = cookie(&headers, BROWSER_COOKIE);
    let pending = match authorize::recall(&state.store, req_id, browser, state.clock.now()).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired(&state, &headers),
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let trust = match federation::enabled(&state.store, &id, Role::Upstream).await {
        Ok(t) if !pending.req.path.contains(&t.issuer) => t,
        Ok(_) => return fed_page(&state, &headers, &FedError::Invalid("this request came from that platform".into())),
        Err(e) => return fed_page(&state, &headers, &e),
    };
    let path = pending.req.path.clone();
    match login::start(state.fed_ctx(), &trust, req_id, browser.unwrap_or_default(), false, &path).await {
        Ok(url) => see_other(&url),
        Err(e) => {
            audit(&state, &meta, Outcome::Failure, &trust.id, "start", None, Some(&e.to_string())).await;
            see_other(&format!("/login?req={req_id}&upstream=failed"))
        }
    }
}

/// GET /federation/callback: the upstream sends the user back (RFC 6749 s4.1.2, RFC 9207).
async fn callback(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Query(q): Query) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str);
    let cb =
        Callback { state: get("state").unwrap_or_default(), code: get("code"), error: get("error"), iss: get("iss") };
    let browser = cookie(&headers, BROWSER_COOKIE);
    let returned = match login::finish(state.fed_ctx(), cb, browser).await {
        Ok(r) => r,
        Err(e) => {
            audit(&state, &meta, Outcome::Failure, "unknown", "callback", None, Some(&e.to_string())).await;
            state.metrics.login(LoginOutcome::Failure, "upstream");
            return fed_page(&state, &headers, &e);
        }
    };
    let now = state.clock.now();
    match returned {
        Returned::NotLoggedIn { pending, silent, error, trust } => {
            audit(&state, &meta, Outcome::Failure, &trust, if silent { "silent" } else { "login" }, None, Some(&error))
                .await;
            let p = match authorize::recall(&state.store, &pending, browser, now).await {
                Ok(Some(p)) => p,
                Ok(None) => return expired(&state, &headers),
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            if silent && p.req.prompt.none {
                // OIDC Core s3.1.2.6: login_required only when the upstream has no session either.
                let _ = authorize::forget(&state.store, &pending).await;
                let r =
                    Redirect { uri: p.req.redirect_uri.clone(), mode: p.req.response_mode, state: p.req.state.clone() };
                let e = OAuthError::new(ErrorCode::LoginRequired, "the user is not logged in here or upstream");
                return error_to_client(&state, &headers, &r, &e);
            }
            let failed = if silent { "" } else { "&upstream=failed" };
            see_other(&format!("/login?req={pending}{failed}"))
        }
        Returned::BelowLevel { pending, silent, trust } => {
            // HL-6.1: the upstream login is below what this platform accepts from it. Not a dead
            // end: the person is offered this platform's own login (and, from there, the
            // verification a client may require); prompt=none cannot show it, so the client
            // gets login_required at its redirect URI (OIDC Core s3.1.2.6).
            let step = if silent { "silent_below_level" } else { "below_level" };
            audit(&state, &meta, Outcome::Denied, &trust, step, None, Some("upstream acr below min_acr")).await;
            state.metrics.login(LoginOutcome::Failure, "upstream_level");
            let p = match authorize::recall(&state.store, &pending, browser, now).await {
                Ok(Some(p)) => p,
                Ok(None) => return expired(&state, &headers),
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            if p.req.prompt.none {
                let _ = authorize::forget(&state.store, &pending).await;
                let r =
                    Redirect { uri: p.req.redirect_uri.clone(), mode: p.req.response_mode, state: p.req.state.clone() };
                let e = OAuthError::new(
                    ErrorCode::LoginRequired,
                    "the upstream login is below the assurance level this platform accepts; log in here",
                );
                return error_to_client(&state, &headers, &r, &e);
            }
            see_other(&format!("/login?req={pending}&upstream=failed"))
        }
        Returned::LoggedIn(arrived) => {
            let login::Arrived { pending, user, upstream, trust, acr, amr } = *arrived;
            let p = match authorize::recall(&state.store, &pending, browser, now).await {
                Ok(Some(p)) => p,
                Ok(None) => return expired(&state, &headers),
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            let existing = match session_of(&state, &headers).await {
                Ok(s) => s,
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            let t = state.timeouts();
            let up_sid = upstream.sid.clone();
            let login = session::Login {
                sub: user.id.clone(),
                generation: user.generation,
                acr,
                amr,
                upstream: Some(upstream),
                acting: None,
            };
            let (s, cookie_value) = match session::establish(state.logout_ctx("user"), existing, login, t).await {
                Ok(e) => (e.session, e.cookie.unwrap_or_default()),
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            tracing::info!(trust = %trust.id, sub = %user.id, sid = %s.sid, "logged in through an upstream platform");
            state.metrics.login(LoginOutcome::Success, "upstream");
            state.metrics.session_started();
            let e = Event::new(Kind::LoginSuccess, Outcome::Success)
                .actor(format!("platform:{}", trust.issuer))
                .client(&p.req.client_id)
                .subject(&user.id)
                .detail(serde_json::json!({"sid": s.sid, "acr": s.acr, "via": trust.id, "upstream_sid": up_sid, "origin": trust.issuer}));
            state.audit.record(meta.apply(e, None)).await;
            let mut resp = continue_after_auth(&state, &headers, &pending, p.req, s, None).await;
            set_cookie(&mut resp, &state, &state.config.session.cookie_name, &cookie_value, t.absolute);
            resp
        }
    }
}

/// POST /federation/backchannel-logout: an upstream ended a session (Back-Channel Logout
/// s2.5): every local session that came from it ends and is broadcast here (GB-6.4d).
async fn backchannel_logout(
    State(state): State<AppState>,
    meta: Meta,
    Form(form): Form,
) -> Result<Response, JsonError> {
    let token = form.get("logout_token").ok_or_else(|| OAuthError::invalid_request("logout_token is missing"))?;
    let now = state.clock.now();
    let verified = federation::logout::verify(&state.store, &state.http, &state.jwks, &state.peers, token, now).await;
    let (trust, t) = match verified {
        Ok(v) => v,
        Err(FedError::Store(e)) => return Err(e.into()),
        Err(e) => {
            audit(&state, &meta, Outcome::Denied, "unknown", "backchannel_logout", None, Some(&e.to_string())).await;
            // s2.8: 400 with an error when the token is refused.
            return Err(OAuthError::invalid_request(e.to_string()).into());
        }
    };
    let actor = format!("platform:{}", trust.issuer);
    let ended = federation::logout::end_linked(state.logout_ctx(&actor), &trust, &t).await.map_err(|e| match e {
        FedError::Store(s) => JsonError::from(s),
        other => OAuthError::invalid_request(other.to_string()).into(),
    })?;
    let step = format!("backchannel_logout: {} session(s) ended", ended.len());
    audit(&state, &meta, Outcome::Success, &trust.id, &step, t.sub.as_deref(), None).await;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// POST /federation/v1/registrations (GB-6.4a): a trusted downstream platform, authenticated
/// as its client here, registers a user it created; the account here is created or found, and
/// linked to the downstream's.
async fn registrations(
    State(state): State<AppState>,
    meta: Meta,
    req: axum::extract::Request,
) -> Result<Response, JsonError> {
    let headers = req.headers().clone();
    let body = super::extract::body_bytes(req, &()).await?;
    let mut none = super::extract::Params::default();
    let client = super::token::authenticate(
        &state,
        &meta,
        headers.get(header::AUTHORIZATION),
        &mut none,
        crate::clients::Endpoint::RegistrationSync,
    )
    .await?;
    state.rate_check(&client)?;
    let reg: federation::sync::Registration = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::invalid_request(format!("the body is not a registration: {e}")))?;
    let now = state.clock.now();
    let done = federation::sync::accept(&state.store, &state.keys, &client.client_id, &reg, now).await.map_err(
        |e| match e {
            FedError::Store(s) => JsonError::from(s),
            FedError::Denied(d) => OAuthError::new(ErrorCode::AccessDenied, d).into(),
            other => OAuthError::invalid_request(other.to_string()).into(),
        },
    )?;
    let e = Event::new(Kind::Federation, Outcome::Success)
        .actor(format!("client:{}", client.client_id))
        .client(&client.client_id)
        .subject(&done.sub)
        .detail(
            serde_json::json!({"step": "registration_received", "downstream_sub": reg.sub, "created": done.created}),
        );
    state.audit.record(meta.apply(e, None)).await;
    let status = if done.created { StatusCode::CREATED } else { StatusCode::OK };
    let mut r = (status, axum::Json(done)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/federation/{id}/login", get(login_with))
        .route("/federation/callback", get(callback))
        .route("/federation/backchannel-logout", post(backchannel_logout))
        .route("/federation/v1/registrations", post(registrations))
}
