//! `/authorize` (RFC 6749 s4.1.1, OIDC Core s3.1.2), the login form and the consent form.
//! The flow of HL-5.3: no session -> remember the request and show the login page -> after a
//! good password the browser continues the original request and returns to the client with a
//! code; with a live SSO session the code is returned at once.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::AppState;
use super::extract::{Form, Meta, Query, body_bytes, cookie, is_form, parse_params};
use super::pages::{self, Locale, LoginForm};
use crate::audit::{Event, Kind, Outcome};
use crate::authorize::{self, AuthRequest, Decision, Redirect, Rejection, ResponseMode};
use crate::clients;
use crate::crypto::{self, Secret};
use crate::error::{ErrorCode, OAuthError};
use crate::guard::{self, GuardError};
use crate::identity::PrincipalKind;
use crate::identity::acting::{Acting, Options};
use crate::metrics::LoginOutcome;
use crate::session::{self, Session};
use crate::store::StoreError;
use crate::users::{self, PasswordError};

/// Cookie that binds a pending login to the browser that started it.
pub(super) const BROWSER_COOKIE: &str = "tz_b";

pub(super) fn locale(state: &AppState, ui_locales: Option<&str>, headers: &HeaderMap) -> Locale {
    Locale::choose(ui_locales, headers, &state.config.security.default_locale)
}

pub(super) fn set_cookie(resp: &mut Response, state: &AppState, name: &str, value: &str, max_age: i64) {
    let secure = if state.config.server.dev { "" } else { "; Secure" };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The caps on pending logins (issue 9: per browser and in total, oldest first).
pub(super) fn pending_caps(state: &AppState) -> authorize::Caps {
    let s = &state.config.security;
    authorize::Caps { per_browser: s.pending_logins_per_browser, total: s.pending_logins_total }
}

pub(super) fn unavailable_page(state: &AppState, headers: &HeaderMap, e: StoreError) -> Response {
    super::error::store_page(locale(state, None, headers), e)
}

/// Sends response parameters to the client by its response mode (RFC 6749 s4.1.2, Form Post).
fn to_client(state: &AppState, headers: &HeaderMap, r: &Redirect, params: &[(&'static str, String)]) -> Response {
    match r.mode {
        ResponseMode::FormPost => pages::form_post(locale(state, None, headers), &r.uri, params),
        ResponseMode::Query => {
            let mut url = r.uri.clone();
            url.push(if url.contains('?') { '&' } else { '?' });
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                ser.append_pair(k, v);
            }
            url.push_str(&ser.finish());
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&url) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
    }
}

/// An error to the client's redirect URI, with `state` and `iss` (RFC 6749 s4.1.2.1, RFC 9207 s2).
pub(super) fn error_to_client(state: &AppState, headers: &HeaderMap, r: &Redirect, e: &OAuthError) -> Response {
    let mut params = vec![("error", e.code.as_str().to_owned()), ("error_description", e.description.to_string())];
    if let Some(s) = &r.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", state.config.issuer.clone()));
    to_client(state, headers, r, &params)
}

fn rejection(state: &AppState, headers: &HeaderMap, r: Rejection) -> Response {
    match r {
        Rejection::Page(e) => {
            pages::error(locale(state, None, headers), StatusCode::BAD_REQUEST, e.code.as_str(), &e.description)
        }
        // The registered home of the client, never the URI the request named (issue 14).
        Rejection::Misdirected(e, client) => pages::trouble::trouble(
            locale(state, None, headers),
            StatusCode::BAD_REQUEST,
            pages::trouble::Trouble::of(StatusCode::BAD_REQUEST, e.code.as_str(), &e.description),
            e.code.as_str(),
            &e.description,
            pages::trouble::home_of(&client).as_deref(),
        ),
        Rejection::Redirect(to, e) => error_to_client(state, headers, &to, &e),
        Rejection::Store(e) => unavailable_page(state, headers, e),
        Rejection::Closed(c) => pages::app_state::closed(locale(state, None, headers), &c, state.calendar.offset()),
    }
}

pub(super) async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    match cookie(headers, &state.config.session.cookie_name) {
        Some(c) => session::from_cookie(&state.store, c, state.clock.now(), state.timeouts()).await,
        None => Ok(None),
    }
}

/// GET and POST /authorize.
async fn authorize_endpoint(State(state): State<AppState>, method: Method, req: Request) -> Response {
    let headers = req.headers().clone();
    let params = if method == Method::POST {
        if !is_form(&headers) {
            let e = OAuthError::invalid_request("POST to /authorize must be application/x-www-form-urlencoded");
            return rejection(&state, &headers, Rejection::Page(e));
        }
        match body_bytes(req, &()).await {
            Ok(b) => parse_params(&b),
            Err(e) => Err(e.error),
        }
    } else {
        parse_params(req.uri().query().unwrap_or_default().as_bytes())
    };
    let params = match params {
        Ok(p) => p,
        // A repeated parameter might be client_id or redirect_uri: never redirect on it.
        Err(e) => return rejection(&state, &headers, Rejection::Page(e)),
    };
    let now = state.clock.now();
    let (req, client) = match authorize::validate(&state.store, &state.keys, &state.config.issuer, &params).await {
        Ok(v) => v,
        Err(r) => return rejection(&state, &headers, r),
    };
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let decision = match authorize::decide(&state.store, &state.builtin_scopes, &req, &client, session, now).await {
        Ok(d) => d,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    respond(&state, &headers, req, &client, decision).await
}

pub(super) async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    req: AuthRequest,
    client: &clients::Client,
    decision: Decision,
) -> Response {
    let redirect = Redirect { uri: req.redirect_uri.clone(), mode: req.response_mode, state: req.state.clone() };
    let needs_login = match &decision {
        Decision::Login => true,
        Decision::Error(e) => e.code == ErrorCode::LoginRequired,
        Decision::Issue(_) | Decision::Consent(_) | Decision::Verify(_) => false,
    };
    // prompt=login and max_age ask for a fresh authentication here: an upstream session does
    // not answer them (OIDC Core s3.1.2.1).
    if needs_login
        && !req.fed_tried
        && !req.prompt.login
        && !req.prompt.create
        && req.max_age.is_none()
        && state.config.federation.silent_login
        && let Some(r) = silent_login(state, headers, &req).await
    {
        return r;
    }
    match decision {
        Decision::Error(e) => error_to_client(state, headers, &redirect, &e),
        Decision::Issue(s) => match authorize::issue_code(state.ctx(), &req, &s, state.timeouts()).await {
            Ok(r) => to_client(state, headers, &r.redirect, &r.params),
            Err(e) if e.code == ErrorCode::TemporarilyUnavailable => pages::error(
                locale(state, None, headers),
                StatusCode::SERVICE_UNAVAILABLE,
                e.code.as_str(),
                &e.description,
            ),
            Err(e) => error_to_client(state, headers, &redirect, &e),
        },
        Decision::Login | Decision::Consent(_) | Decision::Verify(_) => {
            let (browser, fresh) = match cookie(headers, BROWSER_COOKIE) {
                Some(b) if b.len() <= 64 => (b.to_owned(), false),
                _ => (crypto::random_token(24), true),
            };
            let ui = req.ui_locales.clone();
            let consent_of = match &decision {
                Decision::Consent(s) => Some(s.clone()),
                _ => None,
            };
            // Prompt Create 1.0 s4.1: `create` goes to the registration page (HL-5.2).
            let page = match decision {
                Decision::Verify(_) => "/verify",
                _ if req.prompt.create => "/signup",
                _ => "/login",
            };
            let (id, pending) = match authorize::remember(
                &state.store,
                req,
                &browser,
                state.clock.now(),
                state.config.tokens.login_ttl,
                pending_caps(state),
            )
            .await
            {
                Ok(v) => v,
                Err(e) => return unavailable_page(state, headers, e),
            };
            let mut resp = if let Some(s) = &consent_of {
                consent_page(state, headers, ui.as_deref(), &id, &pending.csrf, client, s, &pending.req.scope).await
            } else {
                let mut r = StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("{page}?req={id}")) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            };
            if fresh {
                set_cookie(&mut resp, state, BROWSER_COOKIE, &browser, state.config.tokens.login_ttl.max(3600));
            }
            resp
        }
    }
}

/// "Log in with <upstream>" links (GB-6.4c) for the trusted upstream platforms this request
/// may go to (not where it came from, not already visited).
async fn upstream_buttons(state: &AppState, id: &str, req: &AuthRequest) -> Vec<(String, String, String)> {
    use crate::federation::Role;
    // One read of the trusts for both questions.
    let trusts: Vec<_> =
        crate::federation::list(&state.store).await.unwrap_or_default().into_iter().filter(|t| t.enabled).collect();
    let from =
        trusts.iter().find(|t| t.role == Role::Downstream && t.client_id == req.client_id).map(|t| t.issuer.clone());
    trusts
        .into_iter()
        .filter(|t| t.role == Role::Upstream)
        .filter(|t| !req.path.contains(&t.issuer) && from.as_ref().is_none_or(|f| *f != t.issuer))
        .map(|t| (format!("/federation/{}/login?req={id}", t.id), t.name, t.name_en))
        .collect()
}

/// GB-6.4c: with no usable session here, tries the first eligible upstream platform with
/// `prompt=none` before any form. `None` when there is none to try (or it failed to start;
/// the failure is logged and the login continues here).
async fn silent_login(state: &AppState, headers: &HeaderMap, req: &AuthRequest) -> Option<Response> {
    let trust = match crate::federation::login::silent_candidate(&state.store, &req.client_id, &req.path).await {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "looking for an upstream platform failed");
            return None;
        }
    };
    let (browser, fresh) = match cookie(headers, BROWSER_COOKIE) {
        Some(b) if b.len() <= 64 => (b.to_owned(), false),
        _ => (crypto::random_token(24), true),
    };
    let mut tried = req.clone();
    tried.fed_tried = true;
    let path = tried.path.clone();
    let now = state.clock.now();
    let (id, _) =
        authorize::remember(&state.store, tried, &browser, now, state.config.tokens.login_ttl, pending_caps(state))
            .await
            .ok()?;
    let url = match crate::federation::login::start(state.fed_ctx(), &trust, &id, &browser, true, &path).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(trust = %trust.id, error = %e, "silent login upstream could not start");
            return None;
        }
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&url).ok()?);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if fresh {
        set_cookie(&mut r, state, BROWSER_COOKIE, &browser, state.config.tokens.login_ttl.max(3600));
    }
    Some(r)
}

/// GET /login?req=ID: the login form for a remembered request, on the tab `kind` asks for.
/// `lang` is the language switch (JM-5.6): the page in that language, remembered in a cookie
/// (also when the request itself has expired).
async fn login_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query) -> Response {
    let chosen = q.get("lang").and_then(|l| Locale::parse(l));
    let mut resp = login_form(&state, &headers, &q, chosen).await;
    if let Some(l) = chosen {
        set_cookie(&mut resp, &state, pages::LANG_COOKIE, l.lang(), 365 * 24 * 3600);
    }
    resp
}

async fn login_form(state: &AppState, headers: &HeaderMap, q: &authorize::Params, chosen: Option<Locale>) -> Response {
    let id = q.get("req").map_or("", String::as_str);
    let pending = match authorize::recall(&state.store, id, cookie(headers, BROWSER_COOKIE), state.clock.now()).await {
        Ok(p) => p,
        Err(e) => return unavailable_page(state, headers, e),
    };
    let Some(p) = pending else {
        return expired(state, headers);
    };
    let loc = chosen.unwrap_or_else(|| locale(state, p.req.ui_locales.as_deref(), headers));
    let client_name = match p.req.next {
        Some(_) => pages::account::title(loc).to_owned(),
        None => client_name(state, &p.req.client_id).await,
    };
    let upstreams = upstream_buttons(state, id, &p.req).await;
    let form = LoginForm {
        req: id,
        csrf: &p.csrf,
        client_name: &client_name,
        username: p.req.login_hint.as_deref(),
        failed: false,
        busy: false,
        upstreams: &upstreams,
        upstream_failed: q.get("upstream").is_some_and(|v| v == "failed"),
        remaining: None,
        retry_after: None,
        throttled: false,
        kind: account_kind(q.get("kind")),
    };
    pages::login(loc, &form)
}

/// The login tab asked for (`kind` on the page, `account_kind` from its form): 法人 or 个人.
fn account_kind(v: Option<&String>) -> PrincipalKind {
    if v.is_some_and(|k| k == PrincipalKind::LegalPerson.as_str()) {
        PrincipalKind::LegalPerson
    } else {
        PrincipalKind::NaturalPerson
    }
}

pub(super) fn expired(state: &AppState, headers: &HeaderMap) -> Response {
    let e = OAuthError::invalid_request(
        "this login request has expired, was replaced by newer login requests, or belongs to another browser; \
         start again from the application",
    );
    pages::error(locale(state, None, headers), StatusCode::BAD_REQUEST, e.code.as_str(), &e.description)
}

async fn client_name(state: &AppState, client_id: &str) -> String {
    client_info(state, client_id).await.0
}

/// A client's display name and application, for the login page and the audit log.
async fn client_info(state: &AppState, client_id: &str) -> (String, Option<String>, Option<clients::Client>) {
    let client = clients::get(&state.store, client_id).await.ok().flatten();
    let (name, app) =
        client.as_ref().map_or_else(|| (client_id.to_owned(), None), |c| (c.name.clone(), c.app_id.clone()));
    (name, app, client)
}

/// What the guessing guard adds to a login form shown again.
#[derive(Default)]
struct Guarded {
    remaining: Option<u32>,
    retry_after: Option<u64>,
    throttled: bool,
}

/// POST /login: checks the password and continues the remembered request.
async fn login_submit(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(mut form): Form) -> Response {
    let id = form.remove("req").unwrap_or_default();
    let now = state.clock.now();
    let pending = match authorize::recall(&state.store, &id, cookie(&headers, BROWSER_COOKIE), now).await {
        Ok(p) => p,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let Some(p) = pending else {
        return expired(&state, &headers);
    };
    let csrf_ok = form.get("csrf").is_some_and(|c| crypto::ct_eq(c.as_bytes(), p.csrf.as_bytes()));
    if !csrf_ok {
        let e = OAuthError::invalid_request("the form has expired; reload the page");
        return pages::error(locale(&state, None, &headers), StatusCode::FORBIDDEN, e.code.as_str(), &e.description);
    }
    let username = form.remove("username").unwrap_or_default();
    let password = Secret(form.remove("password").unwrap_or_default());
    let kind = account_kind(form.get(super::act::ACCOUNT_KIND));
    let legal_login = kind == PrincipalKind::LegalPerson;
    let loc = locale(&state, p.req.ui_locales.as_deref(), &headers);
    // RFC 6749 s10.10, NIST SP 800-63B s5.2.2: the address and the account (typed, known or
    // not) may be held after earlier failures; then the password is not even checked. The
    // guard's check and the reads the page needs are independent: one round trip for all (JM-5
    // with a slow store).
    let cfg = &state.config.guard;
    let attempt = guard::Attempt::new(guard::Realm::Password, &username, meta.ip.as_deref());
    let ((client_name, app_id, client), user, upstreams, admitted, existing) = tokio::join!(
        client_info(&state, &p.req.client_id),
        users::by_username(&state.store, username.trim()),
        upstream_buttons(&state, &id, &p.req),
        guard::admit(&state.store, cfg, &attempt, now),
        session_of(&state, &headers),
    );
    let client_name = if p.req.next.is_some() { pages::account::title(loc).to_owned() } else { client_name };
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            if let Ok(a) = admitted {
                let _ = guard::release(&state.store, a).await;
            }
            return unavailable_page(&state, &headers, e);
        }
    };
    let form_again = |failed: bool, busy: bool, guard: Guarded| {
        let f = LoginForm {
            req: &id,
            csrf: &p.csrf,
            client_name: &client_name,
            username: Some(username.as_str()),
            failed,
            busy,
            upstreams: &upstreams,
            upstream_failed: false,
            remaining: guard.remaining,
            retry_after: guard.retry_after,
            throttled: guard.throttled,
            kind,
        };
        pages::login(loc, &f)
    };
    let admitted = match admitted {
        Ok(a) => a,
        Err(GuardError::Store(e)) => return unavailable_page(&state, &headers, e),
        Err(GuardError::Throttled(r)) => {
            state.metrics.login(LoginOutcome::Failure, "throttled");
            let mut event = Event::new(Kind::CredentialThrottled, Outcome::Denied)
                .actor("anonymous")
                .client(&p.req.client_id)
                .detail(json!({"realm": "login", "scope": r.scope.as_str(), "retry_after": r.retry_after, "locked": r.locked}));
            if let Some(u) = &user {
                event = event.subject(&u.id);
            }
            state.audit.record(meta.apply(event, app_id.as_deref())).await;
            let held = Guarded { remaining: None, retry_after: Some(r.retry_after), throttled: true };
            return form_again(false, false, held);
        }
    };
    let phc = user.as_ref().filter(|u| u.enabled).map(|u| u.password_hash.clone());
    let verdict = state.passwords.verify(password, phc).await;
    let (user, admitted) = match (verdict, user) {
        // The guard's bookkeeping of the success goes with the session's writes, below.
        (Ok(true), Some(u)) => (u, admitted),
        (Ok(_), known) => {
            tracing::info!(client_id = %p.req.client_id, "login failed");
            let reason = match &known {
                None => "unknown_user",
                Some(u) if !u.enabled => "disabled",
                Some(_) => "bad_password",
            };
            state.metrics.login(LoginOutcome::Failure, reason);
            let failed = match guard::failed(&state.store, cfg, admitted, now).await {
                Ok(f) => f,
                Err(e) => return unavailable_page(&state, &headers, e),
            };
            let retry_after = failed.hold.map(|h| h.retry_after);
            // The username typed is kept only when it names an account (no typo'd passwords).
            let mut detail = json!({"reason": reason, "remaining": failed.remaining});
            if let (Some(secs), Some(d)) = (retry_after, detail.as_object_mut()) {
                d.insert("retry_after".into(), secs.into());
            }
            let mut event = Event::new(Kind::LoginFailure, Outcome::Failure)
                .actor("anonymous")
                .client(&p.req.client_id)
                .detail(detail);
            if let Some(u) = &known {
                event = event.subject(&u.id);
            }
            state.audit.record(meta.apply(event, app_id.as_deref())).await;
            for scope in &failed.lockouts {
                let mut event = Event::new(Kind::LockoutStarted, Outcome::Failure)
                    .actor("anonymous")
                    .client(&p.req.client_id)
                    .detail(json!({"realm": "login", "scope": scope.as_str(), "lockout": cfg.lockout}));
                if let Some(u) = &known {
                    event = event.subject(&u.id);
                }
                state.audit.record(meta.apply(event, app_id.as_deref())).await;
            }
            let shown = Guarded { remaining: failed.remaining, retry_after, throttled: false };
            return form_again(true, false, shown);
        }
        (Err(e), _) => {
            if !matches!(e, PasswordError::Busy) {
                tracing::error!(error = %e, "password verification failed");
            }
            if let Err(e) = guard::release(&state.store, admitted).await {
                return unavailable_page(&state, &headers, e);
            }
            // RFC 9110 s10.2.3: a full hashing queue answers 503 with when to come back.
            return form_again(false, true, Guarded { retry_after: e.retry_after(), ..Guarded::default() });
        }
    };
    // HL-5.1: the 法人 tab: the agent acts for the only legal person listing them, or is asked
    // which one, or refused.
    let acting = if legal_login {
        match crate::identity::acting::options(&state.store, &user).await {
            Ok(Options::One(lp)) => Some(Acting::of(&lp)),
            Ok(other) => {
                if let Err(e) = guard::succeeded(&state.store, admitted).await {
                    return unavailable_page(&state, &headers, e);
                }
                let app = app_id.as_deref();
                return super::act::ask_or_refuse(&state, &meta, &headers, &id, &p, &user, other, &client_name, app)
                    .await;
            }
            Err(e) => {
                let _ = guard::release(&state.store, admitted).await;
                return unavailable_page(&state, &headers, e);
            }
        }
    } else {
        None
    };
    let t = state.timeouts();
    let existing = match existing {
        Ok(s) => s,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let login = session::Login {
        sub: user.id.clone(),
        generation: user.generation,
        // HL-6.1: the session carries the level the person is known at (raised by a step-up).
        acr: user.level().acr().into(),
        amr: vec!["pwd".into()],
        upstream: None,
        acting,
    };
    // Independent: the account's failure counters start over, and the session is written.
    let (established, guarded) = tokio::join!(
        session::establish(state.logout_ctx("user"), existing, login, t),
        guard::succeeded(&state.store, admitted),
    );
    let (session, cookie_value) = match (established, guarded) {
        (Ok(e), Ok(())) => (e.session, e.cookie),
        (Err(e), _) | (_, Err(e)) => return unavailable_page(&state, &headers, e),
    };
    tracing::info!(client_id = %p.req.client_id, sub = %user.id, sid = %session.sid, "login succeeded");
    state.metrics.login(LoginOutcome::Success, "ok");
    if cookie_value.is_some() {
        state.metrics.session_started();
    }
    let event = Event::new(Kind::LoginSuccess, Outcome::Success)
        .actor(format!("user:{}", user.id))
        .client(&p.req.client_id)
        .subject(&user.id)
        .detail(json!({"sid": session.sid, "amr": session.amr, "acr": session.acr,
            "acting_for": session.acting.as_ref().map(|a| a.lp.clone())}));
    state.audit.record(meta.apply(event, app_id.as_deref())).await;
    let mut resp = continue_after_auth(&state, &headers, &id, p.req, session, client).await;
    if let Some(c) = cookie_value {
        set_cookie(&mut resp, &state, &state.config.session.cookie_name, &c, t.absolute);
    }
    resp
}

/// A 303 to a path of ours.
pub(super) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// After login: verify the real name when the request requires it (HL-6.1), ask for consent
/// when needed, else issue the code.
pub(super) async fn continue_after_auth(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    req: AuthRequest,
    s: Session,
    known: Option<clients::Client>,
) -> Response {
    // A login for one of our own pages (the account page) returns there: no client involved.
    if let Some(next) = &req.next {
        return match authorize::forget(&state.store, id).await {
            Ok(()) => see_other(next),
            Err(e) => unavailable_page(state, headers, e),
        };
    }
    // The client as read moments ago by the caller, when it did.
    let read = match known {
        Some(c) => Ok(Some(c)),
        None => clients::get(&state.store, &req.client_id).await,
    };
    let client = match read {
        Ok(Some(c)) if c.enabled => c,
        Ok(_) => {
            let e = OAuthError::invalid_client("the client is no longer available");
            return pages::error(
                locale(state, None, headers),
                StatusCode::BAD_REQUEST,
                e.code.as_str(),
                &e.description,
            );
        }
        Err(e) => return unavailable_page(state, headers, e),
    };
    // The user just authenticated: prompt=login and max_age are satisfied now.
    let mut fresh = req.clone();
    fresh.prompt.login = false;
    fresh.prompt.create = false;
    fresh.max_age = None;
    let decision =
        match authorize::decide(&state.store, &state.builtin_scopes, &fresh, &client, Some(s), state.clock.now()).await
        {
            Ok(d) => d,
            Err(e) => return unavailable_page(state, headers, e),
        };
    // HL-6.1: below the required level, the same request continues at /verify.
    if let Decision::Verify(_) = decision {
        return see_other(&format!("/verify?req={id}"));
    }
    if let Decision::Consent(s) = &decision {
        let pending = authorize::recall(&state.store, id, cookie(headers, BROWSER_COOKIE), state.clock.now()).await;
        if let Ok(Some(p)) = pending {
            return consent_page(state, headers, req.ui_locales.as_deref(), id, &p.csrf, &client, s, &req.scope).await;
        }
    }
    // Independent: the answered request is forgotten while the answer (a code) is made.
    let (forgotten, resp) =
        tokio::join!(authorize::forget(&state.store, id), respond(state, headers, req, &client, decision));
    if let Err(e) = forgotten {
        return unavailable_page(state, headers, e);
    }
    resp
}

/// The consent page (SH-8.2): the application, its owning unit and privacy policy, who is
/// signed in (with "not you?"), and the requested scopes as the catalogue describes them.
#[allow(clippy::too_many_arguments)]
async fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    ui_locales: Option<&str>,
    id: &str,
    csrf: &str,
    client: &clients::Client,
    session: &Session,
    scope: &[String],
) -> Response {
    match authorize::consent_view(&state.store, &state.builtin_scopes, client, session, scope).await {
        Ok(view) => pages::consent(locale(state, ui_locales, headers), id, csrf, &view),
        Err(e) => unavailable_page(state, headers, e),
    }
}

/// POST /consent: the user's answer.
async fn consent_submit(State(state): State<AppState>, headers: HeaderMap, Form(form): Form) -> Response {
    let id = form.get("req").cloned().unwrap_or_default();
    let now = state.clock.now();
    let p = match authorize::recall(&state.store, &id, cookie(&headers, BROWSER_COOKIE), now).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired(&state, &headers),
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    if !form.get("csrf").is_some_and(|c| crypto::ct_eq(c.as_bytes(), p.csrf.as_bytes())) {
        let e = OAuthError::invalid_request("the form has expired; reload the page");
        return pages::error(locale(&state, None, &headers), StatusCode::FORBIDDEN, e.code.as_str(), &e.description);
    }
    let session = match session_of(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return expired(&state, &headers),
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    // "Not you?": this browser's session ends (with the logout broadcast, as any logout) and
    // the same request goes on at the login form, for whoever signs in next (issue 14).
    if form.get("decision").map(String::as_str) == Some("switch") {
        let next = format!("/login?req={id}");
        return super::logout::do_logout(&state, &headers, p.req.ui_locales.as_deref(), &session.sid, Some(next)).await;
    }
    // The login form of a request carries the same `req` and `csrf`: the browser's session
    // answers only a request it may answer as it stands (prompt=login, max_age, id_token_hint:
    // OIDC Core s3.1.2.1); otherwise the person logs in first.
    if !p.admits(&session, now, state.config.tokens.login_ttl) {
        return see_other(&format!("/login?req={id}"));
    }
    let redirect = Redirect { uri: p.req.redirect_uri.clone(), mode: p.req.response_mode, state: p.req.state.clone() };
    if form.get("decision").map(String::as_str) != Some("allow") {
        if let Err(e) = authorize::forget(&state.store, &id).await {
            return unavailable_page(&state, &headers, e);
        }
        let e = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return error_to_client(&state, &headers, &redirect, &e);
    }
    if let Err(e) = authorize::remember_consent(&state.store, &session.sub, &p.req.client_id, &p.req.scope, now).await {
        return unavailable_page(&state, &headers, e);
    }
    let client = match clients::get(&state.store, &p.req.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return expired(&state, &headers),
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    // Consent given, freshness checked: every other rule (the assurance level above all) is
    // decided again, in the one place that decides it.
    let mut answered = p.req.clone();
    answered.prompt.login = false;
    answered.prompt.consent = false;
    answered.prompt.create = false;
    answered.max_age = None;
    let decision =
        match authorize::decide(&state.store, &state.builtin_scopes, &answered, &client, Some(session), now).await {
            Ok(d) => d,
            Err(e) => return unavailable_page(&state, &headers, e),
        };
    if let Decision::Verify(_) = decision {
        return see_other(&format!("/verify?req={id}"));
    }
    if let Err(e) = authorize::forget(&state.store, &id).await {
        return unavailable_page(&state, &headers, e);
    }
    respond(&state, &headers, p.req, &client, decision).await
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize_endpoint).post(authorize_endpoint))
        .route("/login", get(login_page).post(login_submit))
        .route("/consent", post(consent_submit))
}
