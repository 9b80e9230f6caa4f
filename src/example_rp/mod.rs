//! **The integrator's reference**: a small website (relying party) that logs its users in through
//! tongzheng. It is not part of the server; `serve --dev` runs it on 127.0.0.1:9000 as the demo
//! client `demo-web`. Read it top to bottom: HL-5.3 login, HL-5.4 logout, back-channel logout.
//!
//! Routes: `/` (home), `/protected` (needs a login), `/callback` (the redirect URI),
//! `POST /logout` (the logout button), `POST /backchannel-logout` (the platform's logout tokens).
//! State lives in this process's memory; a real application keeps it in its own session store.

pub mod oidc;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use oidc::{Expect, Metadata, RpError, SeenJti};

/// How the application is registered at the platform.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The platform's issuer, e.g. `http://127.0.0.1:8080`.
    pub issuer: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret (kept on the backend; never sent to the browser).
    pub client_secret: String,
    /// Where this application is reached, e.g. `http://127.0.0.1:9000`; the redirect URI is
    /// `{base}/callback` and the back-channel logout URI `{base}/backchannel-logout`.
    pub base: String,
}

/// A logged-in user of this application (our *local* session, HL-5.3 "caches it").
#[derive(Debug, Clone)]
struct LocalSession {
    sub: String,
    /// The platform's session id (`sid` claim): what a logout token names.
    sid: Option<String>,
    name: String,
    userinfo: Value,
}

/// A login in progress: what the callback needs to finish it.
struct Pending {
    nonce: String,
    verifier: String,
    /// HL-5.3: "the originally requested page is remembered".
    return_to: String,
}

#[derive(Default)]
struct Memory {
    sessions: HashMap<String, LocalSession>,
    pending: HashMap<String, Pending>,
    seen: SeenJti,
    meta: Option<Metadata>,
}

#[derive(Clone)]
struct Rp {
    settings: Arc<Settings>,
    http: reqwest::Client,
    mem: Arc<Mutex<Memory>>,
}

const SESSION_COOKIE: &str = "rp_session";
const LOGIN_COOKIE: &str = "rp_login";

/// Serves the example application on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(settings)).with_graceful_shutdown(shutdown).await
}

/// The application's router.
pub fn app(settings: Settings) -> Router {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let rp = Rp { settings: Arc::new(settings), http, mem: Arc::default() };
    Router::new()
        .route("/", get(home))
        .route("/protected", get(protected))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/backchannel-logout", post(backchannel_logout))
        .with_state(rp)
}

impl Rp {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.mem.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The platform's discovery document, read once.
    async fn meta(&self) -> Result<Metadata, RpError> {
        if let Some(m) = self.lock().meta.clone() {
            return Ok(m);
        }
        let m = oidc::discover(&self.http, &self.settings.issuer).await?;
        self.lock().meta = Some(m.clone());
        Ok(m)
    }

    /// The platform's keys. Read on each use here for simplicity; a busy application caches
    /// them and re-reads when a token names an unknown `kid` (keys rotate).
    async fn jwks(&self, meta: &Metadata) -> Result<Value, RpError> {
        oidc::get_json(self.http.get(&meta.jwks_uri)).await
    }

    fn session(&self, headers: &HeaderMap) -> Option<(String, LocalSession)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.lock().sessions.get(id).map(|s| (id.to_owned(), s.clone()))
    }
}

/// `GET /`: the home page.
async fn home(State(rp): State<Rp>, headers: HeaderMap) -> Html<String> {
    let body = match rp.session(&headers) {
        Some((_, s)) => format!(
            "<p>已登录 Logged in as <b id=\"user\">{}</b>.</p><p><a href=\"/protected\">受保护页面 Protected page</a></p>{}",
            esc(&s.name),
            LOGOUT_BUTTON
        ),
        None => "<p id=\"anonymous\">未登录 Not logged in.</p>\
                 <p><a id=\"protected-link\" href=\"/protected\">受保护页面 Protected page</a> (需要登录 needs a login)</p>"
            .to_owned(),
    };
    page("示例应用 Example application", &body)
}

const LOGOUT_BUTTON: &str =
    "<form method=\"post\" action=\"/logout\"><button id=\"logout\" type=\"submit\">退出 Log out</button></form>";

/// `GET /protected`, HL-5.3 step 1: logged in here? Show the page. Not yet: remember the page
/// and send the browser to the platform's `/authorize` (with `state`, `nonce` and PKCE).
async fn protected(State(rp): State<Rp>, headers: HeaderMap) -> Response {
    if let Some((_, s)) = rp.session(&headers) {
        let claims = serde_json::to_string_pretty(&s.userinfo).unwrap_or_default();
        let body = format!(
            "<p>你好 Hello, <b id=\"user\">{}</b></p><p>sub: <code id=\"sub\">{}</code><br>sid: <code id=\"sid\">{}</code></p>\
             <h2>UserInfo</h2><pre>{}</pre><p><a href=\"/\">首页 Home</a></p>{}",
            esc(&s.name),
            esc(&s.sub),
            esc(s.sid.as_deref().unwrap_or("")),
            esc(&claims),
            LOGOUT_BUTTON
        );
        return page("受保护页面 Protected page", &body).into_response();
    }
    let meta = match rp.meta().await {
        Ok(m) => m,
        Err(e) => return error_page(&e),
    };
    let (state, nonce, verifier) = (random(), random(), random());
    let mut url = match url::Url::parse(&meta.authorization_endpoint) {
        Ok(u) => u,
        Err(e) => return error_page(&RpError::Platform(e.to_string())),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &rp.settings.client_id)
        .append_pair("redirect_uri", &format!("{}/callback", rp.settings.base))
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &oidc::pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    rp.lock().pending.insert(state.clone(), Pending { nonce, verifier, return_to: "/protected".into() });
    // The state also goes into a cookie: the callback checks that the browser returning is the
    // one that left (RFC 6749 s10.12, CSRF).
    let mut resp = Redirect::to(url.as_str()).into_response();
    set_cookie(&mut resp, LOGIN_COOKIE, &state, 600);
    resp
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    id_token: String,
}

/// `GET /callback`, HL-5.3 steps 3-5: the browser is back with a temporary code. The backend
/// exchanges it for tokens (client secret + PKCE verifier), verifies the ID token, calls
/// UserInfo, opens the local session and returns the user to the remembered page.
async fn callback(State(rp): State<Rp>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let state = q.state.unwrap_or_default();
    if cookie(&headers, LOGIN_COOKIE) != Some(state.as_str()) {
        return error_page(&RpError::Platform("this login was not started in this browser (state mismatch)".into()));
    }
    let Some(pending) = rp.lock().pending.remove(&state) else {
        return error_page(&RpError::Platform("unknown or already used login (state)".into()));
    };
    if let Some(err) = q.error {
        // e.g. access_denied: the user cancelled. Tell them and offer a way back.
        let text = format!("{err}: {}", q.error_description.unwrap_or_default());
        return error_page(&RpError::Platform(text));
    }
    let Some(code) = q.code else { return error_page(&RpError::Platform("no code in the callback".into())) };
    match finish_login(&rp, &code, &pending).await {
        Ok(session) => {
            let id = random();
            rp.lock().sessions.insert(id.clone(), session);
            let mut resp = Redirect::to(&pending.return_to).into_response();
            set_cookie(&mut resp, SESSION_COOKIE, &id, 8 * 3600);
            set_cookie(&mut resp, LOGIN_COOKIE, "", 0);
            resp
        }
        Err(e) => error_page(&e),
    }
}

async fn finish_login(rp: &Rp, code: &str, pending: &Pending) -> Result<LocalSession, RpError> {
    let s = &rp.settings;
    let meta = rp.meta().await?;
    // The code-for-token request (RFC 6749 s4.1.3), from the backend, client_secret_basic.
    let redirect_uri = format!("{}/callback", s.base);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect_uri),
        ("code_verifier", &pending.verifier),
    ];
    let tokens: TokenResponse = oidc::get_json(
        rp.http
            .post(&meta.token_endpoint)
            .basic_auth(form_enc(&s.client_id), Some(form_enc(&s.client_secret)))
            .form(&form),
    )
    .await?;
    let jwks = rp.jwks(&meta).await?;
    let expect = Expect { issuer: &s.issuer, client_id: &s.client_id, jwks: &jwks, now: now() };
    let claims = oidc::verify_id_token(&tokens.id_token, &expect, &pending.nonce)?;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
    // UserInfo with the access token (OIDC Core s5.3); its `sub` must be the ID token's (s5.3.2).
    let userinfo: Value =
        oidc::get_json(rp.http.get(&meta.userinfo_endpoint).bearer_auth(&tokens.access_token)).await?;
    if userinfo.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
        return Err(RpError::Token("UserInfo sub differs from the ID token's"));
    }
    let name = userinfo
        .get("name")
        .or_else(|| userinfo.get("preferred_username"))
        .and_then(Value::as_str)
        .unwrap_or(&sub)
        .to_owned();
    let sid = claims.get("sid").and_then(Value::as_str).map(str::to_owned);
    Ok(LocalSession { sub, sid, name, userinfo })
}

/// `POST /logout`, HL-5.4: clear our own session first, then tell the platform from the backend
/// (`POST /logout` with our client credentials and the platform session id). The platform ends
/// its session and notifies every *other* application the user reached.
async fn logout(State(rp): State<Rp>, headers: HeaderMap) -> Response {
    let ended = rp.session(&headers).and_then(|(id, _)| rp.lock().sessions.remove(&id));
    if let Some(session) = ended {
        let s = &rp.settings;
        let form: Vec<(&str, &str)> = match &session.sid {
            Some(sid) => vec![("sid", sid.as_str())],
            None => vec![("logout_hint", session.sub.as_str())],
        };
        let endpoint = match rp.meta().await {
            Ok(m) => m.platform_logout_endpoint.unwrap_or_else(|| format!("{}/logout", s.issuer)),
            Err(_) => format!("{}/logout", s.issuer),
        };
        let sent = rp
            .http
            .post(&endpoint)
            .basic_auth(form_enc(&s.client_id), Some(form_enc(&s.client_secret)))
            .form(&form)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "example RP: the platform refused the logout"),
            Err(e) => tracing::warn!(error = %e.without_url(), "example RP: the platform's logout failed"),
        }
    }
    let mut resp = Redirect::to("/").into_response();
    set_cookie(&mut resp, SESSION_COOKIE, "", 0);
    resp
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: Option<String>,
}

/// `POST /backchannel-logout` (Back-Channel Logout 1.0 s2.5-s2.8): the platform says a session
/// ended elsewhere (another application's logout, an admin, a timeout). Verify the token, end our
/// local sessions of that platform session (or of that user), answer 200; a bad token gets 400.
async fn backchannel_logout(State(rp): State<Rp>, Form(form): Form<LogoutForm>) -> Response {
    let result = async {
        let token = form.logout_token.ok_or(RpError::Token("no logout_token"))?;
        let meta = rp.meta().await?;
        let jwks = rp.jwks(&meta).await?;
        let s = &rp.settings;
        let expect = Expect { issuer: &s.issuer, client_id: &s.client_id, jwks: &jwks, now: now() };
        oidc::verify_logout_token(&token, &expect)
    }
    .await;
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    match result {
        Ok(order) => {
            let mut mem = rp.lock();
            if mem.seen.first_time(&order.jti) {
                mem.sessions.retain(|_, s| match (&order.sid, &order.sub) {
                    (Some(sid), _) => s.sid.as_deref() != Some(sid.as_str()),
                    (None, Some(sub)) => s.sub != *sub,
                    (None, None) => true,
                });
            }
            (StatusCode::OK, no_store).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "example RP: logout token refused");
            let body = serde_json::json!({ "error": "invalid_request", "error_description": e.to_string() });
            (StatusCode::BAD_REQUEST, no_store, axum::Json(body)).into_response()
        }
    }
}

// ---- small helpers -------------------------------------------------------------------------

/// Unix seconds now. This application has its own clock; the server's clock rule (time passed
/// in from `clock.rs`) governs the server, not its clients.
#[allow(clippy::disallowed_methods)]
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// 32 random bytes, base64url: state, nonce, PKCE verifier (RFC 7636 s4.1) and session ids.
fn random() -> String {
    let mut buf = [0u8; 32];
    // Without an entropy source no login can be safe: fail closed with an empty value, which
    // the platform refuses (a real application would refuse to start).
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// RFC 6749 s2.3.1: client id and secret are form-encoded before HTTP Basic.
fn form_enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// HttpOnly, SameSite=Lax (the platform's redirect back is a top-level GET, so Lax keeps it).
fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: u32) {
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn error_page(e: &RpError) -> Response {
    let body = format!(
        "<p id=\"error\">登录未完成 The login did not complete: {}</p><p><a href=\"/\">首页 Home</a></p>",
        esc(&e.to_string())
    );
    (StatusCode::BAD_GATEWAY, page("出错了 Error", &body)).into_response()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}\
         pre{{background:#f4f4f4;padding:.5rem;overflow:auto}}</style></head>\
         <body><h1>{t}</h1>{body}<hr><small>tongzheng example relying party (src/example_rp/)</small></body></html>",
        t = esc(title)
    ))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
