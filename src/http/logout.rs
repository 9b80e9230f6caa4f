//! Logout endpoints: RP-Initiated Logout 1.0 at `/end_session` (with a CSRF-protected
//! confirmation when no valid `id_token_hint` came), and the server-to-server logout of HL-5.4
//! at `/logout` for application backends authenticated as their client.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use super::AppState;
use super::authorize::{BROWSER_COOKIE, locale, session_of, set_cookie, unavailable_page};
use super::extract::{Authorization, Form, Meta, Params, body_bytes, cookie, parse_params};
use super::pages;
use super::token::authenticate;
use crate::clients;
use crate::crypto;
use crate::error::{ErrorCode, OAuthError};
use crate::http::error::JsonError;
use crate::logout::{self, Ended, Reason, backend, confirm};
use crate::tokens::IdClaims;

fn bad_page(state: &AppState, headers: &HeaderMap, d: &'static str) -> Response {
    super::error::page(locale(state, None, headers), &OAuthError::invalid_request(d))
}

fn verify_hint(state: &AppState, hint: &str) -> Option<IdClaims> {
    confirm::verify_hint(&state.keys, &state.config.issuer, hint)
}

async fn params_of(method: &Method, req: Request) -> Result<Params, OAuthError> {
    if *method == Method::POST {
        let bytes = body_bytes(req, &()).await.map_err(|e| e.error)?;
        parse_params(&bytes)
    } else {
        parse_params(req.uri().query().unwrap_or_default().as_bytes())
    }
}

/// GET and POST /end_session (RP-Initiated Logout 1.0 s2, s3).
async fn end_session(State(state): State<AppState>, method: Method, req: Request) -> Response {
    let headers = req.headers().clone();
    let params = match params_of(&method, req).await {
        Ok(p) => p,
        Err(e) => {
            return pages::error(
                locale(&state, None, &headers),
                StatusCode::BAD_REQUEST,
                e.code.as_str(),
                &e.description,
            );
        }
    };
    let ui = params.get("ui_locales").cloned();
    let hint = match params.get("id_token_hint") {
        Some(h) => match verify_hint(&state, h) {
            Some(c) => Some(c),
            None => return bad_page(&state, &headers, "id_token_hint is not an ID token issued by this server"),
        },
        None => None,
    };
    let client_id = match (&hint, params.get("client_id")) {
        (Some(h), Some(c)) if h.aud != *c => {
            return bad_page(&state, &headers, "client_id does not match the id_token_hint");
        }
        (Some(h), _) => Some(h.aud.clone()),
        (None, c) => c.cloned(),
    };
    let client = match &client_id {
        Some(id) => match clients::get(&state.store, id).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => return bad_page(&state, &headers, "unknown client_id"),
            Err(e) => return unavailable_page(&state, &headers, e),
        },
        None => None,
    };
    // s3: redirect only to a URI the client registered, matched exactly.
    let next = match (params.get("post_logout_redirect_uri"), &client) {
        (None, _) => None,
        (Some(uri), Some(c)) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => {
            let mut url = uri.clone();
            if let Some(st) = params.get("state") {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                ser.append_pair("state", st);
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&ser.finish());
            }
            Some(url)
        }
        (Some(_), _) => {
            return bad_page(&state, &headers, "post_logout_redirect_uri is not registered for this client");
        }
    };
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let Some(session) = session else {
        // Nothing to end here; still honour the redirect (the RP cleared its own state).
        return finish(&state, &headers, ui.as_deref(), None, next);
    };
    if confirm::is_genuine(hint.as_ref(), &session) {
        return do_logout(&state, &headers, ui.as_deref(), &session.sid, next).await;
    }
    // No hint for this very session: ask the user (s2: the OP SHOULD ask when it cannot tell
    // the request is genuine).
    let (browser, fresh) = match cookie(&headers, BROWSER_COOKIE) {
        Some(b) if b.len() <= 64 => (b.to_owned(), false),
        _ => (crypto::random_token(24), true),
    };
    let back = client.as_ref().and_then(pages::trouble::home_of);
    let (id, pending) = match confirm::ask(&state.store, &session.sid, next, &browser, ui.clone(), back).await {
        Ok(asked) => asked,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let mut resp = pages::logout_confirm(locale(&state, ui.as_deref(), &headers), &id, &pending.csrf);
    if fresh {
        set_cookie(&mut resp, &state, BROWSER_COOKIE, &browser, 3600);
    }
    resp
}

/// POST /end_session/confirm: the user's answer.
async fn confirm(State(state): State<AppState>, headers: HeaderMap, Form(form): Form) -> Response {
    let id = form.get("req").map_or("", String::as_str);
    let answered =
        confirm::answer(&state.store, id, cookie(&headers, BROWSER_COOKIE), form.get("csrf").map(String::as_str)).await;
    let p = match answered {
        Ok(Ok(p)) => p,
        Ok(Err(confirm::Refused::Expired)) => {
            return bad_page(&state, &headers, "the logout request has expired or belongs to another browser");
        }
        Ok(Err(confirm::Refused::Forged)) => {
            let loc = locale(&state, None, &headers);
            return pages::error(
                loc,
                StatusCode::FORBIDDEN,
                "invalid_request",
                "the form has expired; reload the page",
            );
        }
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    if form.get("decision").map(String::as_str) != Some("logout") {
        // Cancel: the person stays signed in and goes back to the application (issue 14).
        return see_other(p.cancel_target());
    }
    do_logout(&state, &headers, p.ui_locales.as_deref(), &p.sid, p.next).await
}

/// Ends session `sid` (the logout broadcast), clears the session cookie, and continues at
/// `next` (after the front-channel iframes, when there are any). Also the consent page's
/// "not you?" ([`super::authorize`]).
pub(super) async fn do_logout(
    state: &AppState,
    headers: &HeaderMap,
    ui: Option<&str>,
    sid: &str,
    next: Option<String>,
) -> Response {
    match logout::end_session(state.logout_ctx("user"), sid, Reason::User, None).await {
        Ok(ended) => {
            let mut resp = finish(state, headers, ui, ended.as_ref(), next);
            set_cookie(&mut resp, state, &state.config.session.cookie_name, "", 0);
            resp
        }
        Err(e) => unavailable_page(state, headers, e),
    }
}

/// Front-channel iframes first (Front-Channel Logout s3), then the post-logout redirect.
fn finish(
    state: &AppState,
    headers: &HeaderMap,
    ui: Option<&str>,
    ended: Option<&Ended>,
    next: Option<String>,
) -> Response {
    let frames = ended.map(|e| e.frontchannel.as_slice()).unwrap_or_default();
    if frames.is_empty()
        && let Some(n) = &next
    {
        return see_other(n);
    }
    pages::logged_out(locale(state, ui, headers), frames, next.as_deref())
}

/// A 303 to `to` (a registered URI or one of our own pages), not cached.
fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// JSON answer of the server-to-server logout.
#[derive(Serialize)]
struct BackendLogout {
    sessions_ended: Vec<Ended>,
    frontchannel_logout_uris: Vec<String>,
}

/// POST /logout (HL-5.4): an application's backend, authenticated as its client, ends the
/// user's login everywhere; every other application the session reached is notified.
async fn backend_logout(
    State(state): State<AppState>,
    meta: Meta,
    authorization: Authorization,
    Form(mut form): Form,
) -> Result<Response, JsonError> {
    let caller = authenticate(&state, &meta, authorization.value(), &mut form, clients::Endpoint::Logout).await?;
    let given = ["id_token_hint", "sid", "logout_hint"].iter().filter(|k| form.contains_key(**k)).count();
    if given != 1 {
        return Err(OAuthError::invalid_request("send exactly one of id_token_hint, sid or logout_hint").into());
    }
    let me = caller.client_id.as_str();
    let hint = if let Some(hint) = form.get("id_token_hint") {
        let claims = verify_hint(&state, hint)
            .ok_or_else(|| OAuthError::invalid_request("id_token_hint is not an ID token issued by this server"))?;
        backend::Hint::IdToken(Box::new(claims))
    } else if let Some(sid) = form.get("sid") {
        backend::Hint::Sid(sid.clone())
    } else {
        let hint = form.get("logout_hint").map_or("", String::as_str);
        backend::Hint::Subject(crate::identity::subject::internal(state.keys.data(), hint))
    };
    let actor = format!("client:{me}");
    let ended = backend::end(state.logout_ctx(&actor), me, hint)
        .await?
        .map_err(|_| OAuthError::new(ErrorCode::AccessDenied, "this client may not end that session"))?;
    let frontchannel_logout_uris = ended.iter().flat_map(|e| e.frontchannel.iter().cloned()).collect();
    // OIDC Core s8.1: the caller sees its own subject identifiers.
    let mut ended = ended;
    for e in &mut ended {
        e.sub = crate::identity::subject::for_client(state.keys.data(), &caller, &e.sub);
    }
    tracing::info!(client_id = %me, sessions = ended.len(), "backend logout");
    let mut r = axum::Json(BackendLogout { sessions_ended: ended, frontchannel_logout_uris }).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/end_session", get(end_session).post(end_session))
        .route("/end_session/confirm", post(confirm))
        .route("/logout", post(backend_logout))
}
