//! Pages citizens understand (issue 14): every citizen-facing page and error page, in zh-CN and
//! English, says what happened and what to do next without a requirement id or a raw OAuth code
//! outside the folded technical details; maintenance and suspension pages; logout "cancel"
//! going back to the application; the landing page; HTML or JSON 404 by `Accept`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lifecycle::{application, call, office_evidence, problem};
use crate::support::flow::{self, Pkce, hidden, location};
use crate::support::server::*;

per_backend!(every_page_speaks_plainly, maintenance_and_suspension_pages, logout_cancel_goes_back);

/// The raw OAuth error codes a citizen must not read outside the details.
const CODES: [&str; 12] = [
    "invalid_client",
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "unsupported_response_type",
    "invalid_grant",
    "interaction_required",
    "login_required",
    "unmet_authentication_requirements",
];

/// The page without its `<details>` elements (the folded technical details).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<details") {
        out.push_str(&rest[..i]);
        rest = rest[i..].split_once("</details>").map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

/// A requirement id such as `AY-8.5.3.2` or `SH-D`: `\b(AY|HL|SH|GB|JM)-[0-9A-Z]`.
fn requirement_id(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for prefix in ["AY-", "HL-", "SH-", "GB-", "JM-"] {
        for (i, _) in text.match_indices(prefix) {
            let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let next = bytes.get(i + 3).is_some_and(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
            if boundary && next {
                return Some(text[i..(i + 8).min(text.len())].to_owned());
            }
        }
    }
    None
}

/// Issue 14: no requirement id and no raw OAuth code in what a citizen sees of `html`.
fn assert_plain(html: &str, what: &str) {
    assert!(html.contains("<html"), "{what}: an HTML page: {html}");
    let seen = visible(html);
    assert!(requirement_id(&seen).is_none(), "{what}: a requirement id {:?}: {seen}", requirement_id(&seen));
    for code in CODES {
        assert!(!seen.contains(code), "{what}: the raw code {code} outside the details: {seen}");
    }
}

/// A browser-like GET in `lang`: (status, body).
async fn get(s: &TestServer, path: &str, lang: &str) -> (StatusCode, String) {
    let r = s
        .browser
        .get(s.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

pub(crate) fn authorize_path(client: &str, redirect: &str) -> String {
    let pkce = Pkce::new();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    format!("/authorize?{q}")
}

// Issue 14 (citizens), RFC 6749 s4.1.2.1 (pages that must not redirect), JM-5.6: every page in
// both languages; error pages explain and keep the code, its description and the request id in
// the folded details.
async fn every_page_speaks_plainly(b: Backend) {
    let s = TestServer::start(b).await;
    for lang in ["zh-CN", "en"] {
        let plain = [
            ("/", StatusCode::OK, "landing"),
            ("/agreement", StatusCode::OK, "agreement"),
            ("/privacy", StatusCode::OK, "privacy"),
            ("/signup", StatusCode::OK, "registration"),
            ("/password/reset", StatusCode::OK, "password reset"),
            ("/no/such/page", StatusCode::NOT_FOUND, "404"),
        ];
        for (path, status, what) in plain {
            let (got, html) = get(&s, path, lang).await;
            assert_eq!(got, status, "{lang} {what}: {html}");
            assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{lang} {what}");
            assert_plain(&html, &format!("{lang} {what}"));
        }
        let errors = [
            ("/authorize?response_type=code".to_owned(), "invalid_request", "no client_id"),
            (authorize_path("no-such-client", WEB_REDIRECT), "invalid_client", "unknown client"),
            (authorize_path(WEB_CLIENT, "https://evil.example/cb"), "invalid_request", "bad redirect_uri"),
            ("/login?req=expired-or-forged".to_owned(), "invalid_request", "expired login request"),
            (
                "/end_session?client_id=demo-web&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F".to_owned(),
                "invalid_request",
                "unregistered post-logout URI",
            ),
        ];
        for (path, code, what) in errors {
            let (status, html) = get(&s, &path, lang).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{lang} {what}");
            assert_plain(&html, &format!("{lang} {what}"));
            let details = html.split_once("<details").map(|(_, d)| d).unwrap_or_else(|| panic!("{what}: {html}"));
            assert!(details.contains(code), "{lang} {what}: the code in the details: {html}");
            assert!(details.contains("class=\"rid\""), "{lang} {what}: the request id for support: {html}");
        }
        // The bad redirect and the expired request each get their own explanation.
        let (_, html) = get(&s, &authorize_path(WEB_CLIENT, "https://evil.example/cb"), lang).await;
        let expect = if lang == "en" { "We cannot send you back to the application" } else { "无法返回应用" };
        assert!(html.contains(expect), "{lang}: {html}");
        // Issue 14 (a button back to the application when there is a safe place to go), RFC 6749
        // s4.1.2.1 (never the unregistered URI): the client's registered home, not the request's.
        assert!(html.contains("class=\"button\" href=\"http://127.0.0.1:9000/\""), "{lang}: {html}");
        assert!(!html.contains("href=\"https://evil.example"), "{lang}: {html}");
        let (_, html) = get(&s, "/login?req=gone", lang).await;
        let expect = if lang == "en" { "This sign-in page has expired" } else { "登录页面已过期" };
        assert!(html.contains(expect), "{lang}: {html}");
    }
    // The login page itself (a real request), and the logout question, in both languages.
    for lang in ["zh-CN", "en"] {
        let r = flow::authorize(
            &s,
            &[
                ("response_type", "code"),
                ("client_id", WEB_CLIENT),
                ("redirect_uri", WEB_REDIRECT),
                ("scope", "openid"),
                ("code_challenge", Pkce::new().challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
        let (_, html) = get(&s, &location(&r), lang).await;
        assert_plain(&html, &format!("{lang} login page"));
        // WCAG 1.4.11, 2.4.7, 3.3.1: visible input borders (>= 3:1 on white), a focus outline,
        // and the fields in error tied to the message and focused.
        assert!(html.contains("border:1px solid #767676") && html.contains(":focus-visible{outline"), "{html}");
        let r = flow::submit_login(&s, &location(&r), USER, "wrong-password").await;
        let html = r.text().await.unwrap();
        assert!(html.contains("id=\"login-error\""), "{html}");
        let username = html.split("id=\"username\"").nth(1).unwrap().split('>').next().unwrap();
        assert!(username.contains("aria-invalid=\"true\" aria-describedby=\"login-error\" autofocus"), "{username}");
    }
    // API clients keep the RFC 7807 problem on unknown paths.
    let r = s.http.get(s.url("/no/such/endpoint")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The landing page leads to the account page.
    let (_, html) = get(&s, "/", "zh-CN").await;
    assert!(html.contains("href=\"/account\""), "{html}");
}

/// An application taken to `released` through review and grey release.
pub(crate) async fn released_app(s: &TestServer, admin: &str, id: &str) {
    flow::catalogue_scope(s, admin, "tax.read").await;
    let r = call(s, admin, reqwest::Method::POST, "/admin/v1/applications", Some(application(id, "office"))).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let approve = json!({"reviewer": "李审核", "decision": "approve", "evidence": office_evidence()});
    let reviews = format!("/admin/v1/applications/{id}/reviews");
    let r = call(s, admin, reqwest::Method::POST, &reviews, Some(approve)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    for body in [json!({"to": "pre_release", "audience": {"users": [USER]}}), json!({"to": "released"})] {
        let r = transition(s, admin, id, body).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
}

pub(crate) async fn transition(s: &TestServer, admin: &str, id: &str, body: Value) -> reqwest::Response {
    call(s, admin, reqwest::Method::POST, &format!("/admin/v1/applications/{id}/transitions"), Some(body)).await
}

// Issue 14, SH-7.3: a real maintenance page with the admin's reason, the expected return and a
// contact; AY-8.5.3.2: a suspension page, both without requirement codes and never redirecting.
async fn maintenance_and_suspension_pages(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let id = "citizen-app";
    released_app(&s, &admin, id).await;
    let redirect = "http://127.0.0.1:9300/cb";
    let now = s.clock.now();
    // until and contact are checked: in the future, and only for maintenance.
    let past = json!({"to": "temporarily_offline", "reason": "系统升级", "until": now - 60});
    problem(transition(&s, &admin, id, past).await, StatusCode::BAD_REQUEST, "until in the past").await;
    let misplaced = json!({"to": "suspended", "reason": "异常调用", "contact": "12345"});
    problem(transition(&s, &admin, id, misplaced).await, StatusCode::BAD_REQUEST, "contact off maintenance").await;

    let until = now + 2 * 3600;
    let body = json!({"to": "temporarily_offline", "reason": "系统升级", "until": until, "contact": "服务热线 12345"});
    let r = transition(&s, &admin, id, body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let app: Value = r.json().await.unwrap();
    assert_eq!(app["maintenance"]["until"], until, "recorded on the application: {app}");
    for lang in ["zh-CN", "en"] {
        let r =
            s.browser.get(s.url(&authorize_path(id, redirect))).header("accept-language", lang).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{lang}");
        assert!(location(&r).is_empty(), "no redirect to an application under maintenance");
        let html = r.text().await.unwrap();
        assert_plain(&html, &format!("{lang} maintenance"));
        let title = if lang == "en" { "The application is under maintenance" } else { "应用正在维护" };
        assert!(html.contains(title) && html.contains("系统升级") && html.contains("服务热线 12345"), "{html}");
        assert!(html.contains("class=\"until\">20") && html.contains("(UTC+08:00)"), "the return time: {html}");
    }
    // Back to released: the maintenance record goes.
    let r = transition(&s, &admin, id, json!({"to": "released"})).await;
    assert!(r.json::<Value>().await.unwrap().get("maintenance").is_none());

    let r = transition(&s, &admin, id, json!({"to": "suspended", "reason": "异常调用"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    for lang in ["zh-CN", "en"] {
        let r =
            s.browser.get(s.url(&authorize_path(id, redirect))).header("accept-language", lang).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{lang}");
        assert!(location(&r).is_empty(), "no redirect to a suspended application");
        let html = r.text().await.unwrap();
        assert_plain(&html, &format!("{lang} suspended"));
        let title = if lang == "en" { "The application is suspended" } else { "应用暂停服务" };
        assert!(html.contains(title) && html.contains("税务协同办公"), "{html}");
        // Operators keep the requirement id: it is in the folded details.
        assert!(html.contains("AY-8.5.3.2"), "{html}");
    }
}

// Issue 14, RP-Initiated Logout 1.0 s2, s3: "cancel" on the logout question goes back to the
// application (the registered post-logout URI with its state), the person stays signed in;
// without a client it goes to the account page; "you are logged out" has a way on.
async fn logout_cancel_goes_back(b: Backend) {
    let s = TestServer::start(b).await;
    let _ = flow::web_code(&s, "openid").await;
    let back = "http://127.0.0.1:9000/";
    let ask = |query: Vec<(&'static str, &'static str)>| {
        let s = &s;
        async move {
            let r = s.browser.get(s.url("/end_session")).query(&query).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let html = r.text().await.unwrap();
            assert_plain(&html, "logout question");
            (hidden(&html, "req"), hidden(&html, "csrf"))
        }
    };
    let answer = |req: String, csrf: String, decision: &'static str| {
        let s = &s;
        async move {
            s.browser
                .post(s.url("/end_session/confirm"))
                .form(&[("req", req.as_str()), ("csrf", csrf.as_str()), ("decision", decision)])
                .send()
                .await
                .unwrap()
        }
    };
    let (req, csrf) = ask(vec![("client_id", WEB_CLIENT), ("post_logout_redirect_uri", back), ("state", "st-1")]).await;
    let r = answer(req, csrf, "stay").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "cancel is no error page");
    assert_eq!(location(&r), format!("{back}?state=st-1"));
    assert!(flow::prompt_none(&s, WEB_CLIENT, WEB_REDIRECT).await.contains_key("code"), "still signed in");

    // The client named without a post-logout URI: back to its registered home.
    let (req, csrf) = ask(vec![("client_id", WEB_CLIENT)]).await;
    let r = answer(req, csrf, "stay").await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, back.to_owned()));
    // No client at all: the account page.
    let (req, csrf) = ask(vec![]).await;
    let r = answer(req, csrf, "stay").await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/account".to_owned()));

    // Confirmed, without a place to return to: sign in again or go home.
    let (req, csrf) = ask(vec![]).await;
    let r = answer(req, csrf, "logout").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert_plain(&html, "logged out");
    assert!(html.contains("href=\"/account\"") && html.contains("href=\"/\""), "a way on: {html}");
    assert_eq!(flow::prompt_none(&s, WEB_CLIENT, WEB_REDIRECT).await["error"], "login_required");
}
