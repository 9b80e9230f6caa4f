//! `/signup` (HL-5.2, GB-6.4a; `prompt=create`, OpenID Connect Prompt Create 1.0) and
//! `/password/reset`: the registration and recovery forms. A registration signs the person in
//! and continues the pending authorization request (`req`), or goes on to the real-name
//! verification step (`/verify?req=`) when asked, or to `/account`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use super::authorize::{continue_after_auth, expired, locale, session_of, set_cookie, unavailable_page};
use super::csrf::{self, Browser};
use super::error::signup_status;
use super::extract::{Form, Meta, Params, Query, cookie};
use super::pages::signup::{self as page, Notice, SignupPage};
use super::pages::{self, Locale};
use crate::account::mask_mobile;
use crate::audit::{Event, Kind, Outcome};
use crate::authorize::{self, Pending};
use crate::crypto::Secret;
use crate::error::OAuthError;
use crate::otp::OtpError;
use crate::signup::{self, CompanyForm, Env, PersonForm, Registration, SignupError, reset};

/// The registration and recovery environment at the current time.
fn env(state: &AppState) -> Env<'_> {
    Env {
        store: &state.store,
        data: state.keys.data(),
        passwords: &state.passwords,
        sms: &state.sms,
        otp: &state.config.otp,
        logout: state.logout_ctx("user"),
        timeouts: state.timeouts(),
        sync_wake: Some(&state.sync_wake),
        now: state.clock.now(),
    }
}

/// The pending authorization request named by `req`, if any: `Err` is the page to show when
/// it is named but gone (expired, replaced, another browser's).
async fn pending(state: &AppState, headers: &HeaderMap, req: Option<&str>) -> Result<Option<Pending>, Response> {
    let Some(id) = req else {
        return Ok(None);
    };
    match authorize::recall(&state.store, id, cookie(headers, super::authorize::BROWSER_COOKIE), state.clock.now())
        .await
    {
        Ok(Some(p)) => Ok(Some(p)),
        Ok(None) => Err(expired(state, headers)),
        Err(e) => Err(unavailable_page(state, headers, e)),
    }
}

pub(super) fn forbidden(l: Locale) -> Response {
    let e = OAuthError::invalid_request("the form has expired; reload the page");
    pages::error(l, StatusCode::FORBIDDEN, e.code.as_str(), &e.description)
}

pub(super) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What the registration page of one request knows before its form is drawn.
struct Context {
    req: Option<String>,
    pending: Option<Pending>,
    client_name: Option<String>,
    legal: bool,
    agent: Option<crate::users::User>,
    locale: Locale,
}

async fn context(state: &AppState, headers: &HeaderMap, params: &Params) -> Result<Context, Response> {
    let req = params.get("req").filter(|r| !r.is_empty()).cloned();
    let pending = pending(state, headers, req.as_deref()).await?;
    let legal = params.get("kind").is_some_and(|k| k == "legal");
    let agent = if legal {
        match session_of(state, headers).await {
            Ok(Some(s)) => crate::users::get(&state.store, &s.sub).await.ok().flatten().filter(|u| u.enabled),
            Ok(None) => None,
            Err(e) => return Err(unavailable_page(state, headers, e)),
        }
    } else {
        None
    };
    let client_name = match &pending {
        // A login for the account page has no application to name.
        Some(p) if p.req.next.is_some() => None,
        Some(p) => Some(
            crate::clients::get(&state.store, &p.req.client_id)
                .await
                .ok()
                .flatten()
                .map_or_else(|| p.req.client_id.clone(), |c| c.name),
        ),
        None => None,
    };
    let locale = locale(state, pending.as_ref().and_then(|p| p.req.ui_locales.as_deref()), headers);
    Ok(Context { req, pending, client_name, legal, agent, locale })
}

fn render(
    state: &AppState,
    c: &Context,
    b: &Browser,
    values: &Params,
    notice: Notice,
    e: Option<&SignupError>,
) -> Response {
    let (status, retry) = e.map_or((StatusCode::OK, None), signup_status);
    let csrf = b.token(state);
    let p = SignupPage {
        req: c.req.as_deref(),
        csrf: &csrf,
        client_name: c.client_name.as_deref(),
        legal: c.legal,
        agent: c.agent.as_ref().map(|u| u.name.as_str()),
        values,
        notice,
    };
    let mut resp = page::signup(c.locale, &p, status, retry);
    b.keep(state, &mut resp);
    resp
}

/// GET /signup[?req=ID][&kind=natural|legal]: the registration page.
async fn signup_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query) -> Response {
    let c = match context(&state, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    render(&state, &c, &Browser::of(&headers), &Params::default(), Notice::None, None)
}

/// The typed values shown again (never the password, the code only after a send).
fn kept(form: &Params) -> Params {
    let mut v = form.clone();
    for k in ["password", "csrf", "current"] {
        v.remove(k);
    }
    v.retain(|_, val| val.len() <= 256);
    v
}

fn field(form: &Params, k: &str) -> String {
    form.get(k).cloned().unwrap_or_default()
}

/// The audit record of a code refused by the per-phone or per-address limit.
fn audit_throttle(meta: &Meta, e: &SignupError, what: &str) -> Option<Event> {
    let SignupError::Code(o @ OtpError::RateLimited { .. }) = e else {
        return None;
    };
    let event = Event::new(Kind::RateLimited, Outcome::Denied)
        .actor("anonymous")
        .detail(json!({"realm": "otp", "purpose": what, "retry_after": o.retry_after()}));
    Some(meta.apply(event, None))
}

/// POST /signup: `action=send_code` sends the phone a code and shows the form again;
/// `action=register` registers and signs in.
async fn signup_submit(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(form): Form) -> Response {
    let c = match context(&state, &headers, &form).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !csrf::valid(&state, &headers, &form) {
        return forbidden(c.locale);
    }
    let b = Browser::of(&headers);
    let values = kept(&form);
    if form.get("action").is_some_and(|a| a == "send_code") {
        return match signup::send_code(env(&state), &field(&form, "phone"), meta.ip.as_deref()).await {
            Ok((phone, sent)) => {
                let text = page::code_sent(c.locale, &mask_mobile(&phone), (sent.ttl + 59) / 60, false);
                render(&state, &c, &b, &values, Notice::Ok(text), None)
            }
            Err(e) => {
                if let Some(ev) = audit_throttle(&meta, &e, "signup") {
                    state.audit.record(ev).await;
                }
                render(&state, &c, &b, &values, Notice::of_error(c.locale, &e), Some(&e))
            }
        };
    }
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return unavailable_page(&state, &headers, e),
    };
    let company = c.legal.then(|| CompanyForm {
        name: field(&form, "org_name"),
        uscc: field(&form, "uscc"),
        kind: field(&form, "org_kind"),
        legal_representative: field(&form, "legal_representative"),
    });
    // A signed-in person registering an organization acts as themselves; anyone else
    // registers as a person too.
    let person = (c.agent.is_none()).then(|| PersonForm {
        username: field(&form, "username"),
        name: field(&form, "name"),
        phone: field(&form, "phone"),
        code: field(&form, "code"),
        password: Secret(field(&form, "password")),
    });
    let done = match signup::register(env(&state), Registration { person, company }, session).await {
        Ok(r) => r,
        Err(e) => {
            if let SignupError::Store(err) = &e {
                tracing::warn!(error = %err, "registration failed on the store");
            }
            return render(&state, &c, &b, &values, Notice::of_error(c.locale, &e), Some(&e));
        }
    };
    let mut detail = json!({"action": if done.established.is_some() { "signup" } else { "legal_signup" }});
    if let (Some(lp), Some(d)) = (&done.company, detail.as_object_mut()) {
        d.insert("legal_person".into(), lp.id.clone().into());
        d.insert("role".into(), "admin".into());
    }
    let client = c.pending.as_ref().map(|p| p.req.client_id.clone());
    let mut event = Event::new(Kind::Account, Outcome::Success)
        .actor(format!("user:{}", done.user.id))
        .subject(&done.user.id)
        .detail(detail);
    if let Some(cl) = &client {
        event = event.client(cl);
    }
    state.audit.record(meta.apply(event, None)).await;
    tracing::info!(sub = %done.user.id, "registered");
    let (session, cookie_value) = match done.established {
        Some(e) => {
            state.metrics.session_started();
            (Some(e.session), e.cookie)
        }
        None => (None, None),
    };
    let wants_verify = !c.legal && form.contains_key("verify");
    let mut resp = match (wants_verify, c.pending, session) {
        (true, Some(_), _) => see_other(&format!("/verify?req={}", c.req.unwrap_or_default())),
        (true, None, _) => see_other("/verify?next=/account"),
        (false, Some(p), Some(s)) => {
            let id = c.req.unwrap_or_default();
            continue_after_auth(&state, &headers, &id, p.req, s, None).await
        }
        (false, _, _) => see_other("/account?done=registered"),
    };
    if let Some(v) = cookie_value {
        set_cookie(&mut resp, &state, &state.config.session.cookie_name, &v, state.timeouts().absolute);
    }
    b.keep(&state, &mut resp);
    resp
}

/// GET /password/reset[?req=ID]: the recovery form.
async fn reset_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query) -> Response {
    let c = match context(&state, &headers, &q).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let b = Browser::of(&headers);
    let mut resp = page::reset(
        c.locale,
        c.req.as_deref(),
        &b.token(&state),
        &Params::default(),
        &Notice::None,
        StatusCode::OK,
        None,
    );
    b.keep(&state, &mut resp);
    resp
}

/// POST /password/reset: `action=send_code` or `action=reset`.
async fn reset_submit(State(state): State<AppState>, meta: Meta, headers: HeaderMap, Form(form): Form) -> Response {
    let c = match context(&state, &headers, &form).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !csrf::valid(&state, &headers, &form) {
        return forbidden(c.locale);
    }
    let b = Browser::of(&headers);
    let values = kept(&form);
    let again = |notice: Notice, e: Option<&SignupError>| {
        let (status, retry) = e.map_or((StatusCode::OK, None), signup_status);
        page::reset(c.locale, c.req.as_deref(), &b.token(&state), &values, &notice, status, retry)
    };
    if form.get("action").is_some_and(|a| a == "send_code") {
        return match reset::send_code(env(&state), &field(&form, "phone"), meta.ip.as_deref()).await {
            Ok(phone) => {
                let minutes = (state.config.otp.ttl + 59) / 60;
                again(Notice::Ok(page::code_sent(c.locale, &mask_mobile(&phone), minutes, true)), None)
            }
            Err(e) => {
                if let Some(ev) = audit_throttle(&meta, &e, "reset") {
                    state.audit.record(ev).await;
                }
                again(Notice::of_error(c.locale, &e), Some(&e))
            }
        };
    }
    let password = Secret(field(&form, "password"));
    match reset::reset(env(&state), &field(&form, "phone"), &field(&form, "code"), password).await {
        Ok(done) => {
            let event = Event::new(Kind::Account, Outcome::Success)
                .actor(format!("user:{}", done.user.id))
                .subject(&done.user.id)
                .detail(json!({"action": "password_reset", "sessions_ended": done.sessions_ended}));
            state.audit.record(meta.apply(event, None)).await;
            tracing::info!(sub = %done.user.id, sessions_ended = done.sessions_ended, "password reset");
            page::reset_done(c.locale, c.req.as_deref())
        }
        Err(e) => again(Notice::of_error(c.locale, &e), Some(&e)),
    }
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", get(signup_page).post(signup_submit))
        .route("/password/reset", get(reset_page).post(reset_submit))
}
