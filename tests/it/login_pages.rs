//! The citizen-facing pages of issue 11 over HTTP, on both stores: the login page of a
//! provincial unified login (JM-5.6, SH-D: 个人/法人 tabs without JavaScript, sign-up,
//! password-reset, agreement and privacy links, branding from config, zh-CN and en, generic
//! wrong-credential messages) and the consent page (SH-8.2: scopes named from the catalogue in
//! the user's language, sensitive items marked, the application and its owning unit, the
//! decision recorded per client and revocable; a sensitive scope always needs that consent).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lifecycle::{call, office_evidence};
use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::*;

per_backend!(
    login_page_has_tabs_links_and_branding,
    wrong_credentials_stay_generic_on_both_tabs,
    consent_page_names_scopes_and_marks_sensitive_items,
    sensitive_scope_always_needs_its_recorded_consent,
);

const BRANDING: &str = "[branding]\n\
    name = \"某省统一身份认证平台\"\n\
    name_en = \"Province Unified Login\"\n\
    logo_url = \"https://static.example.gov.cn/logo.png\"\n\
    footer = \"主办单位：某省大数据中心\"\n\
    footer_en = \"Operated by the provincial big data centre\"\n\
    help_url = \"https://www.example.gov.cn/help\"\n\
    primary_color = \"#1d4ed8\"\n";

const APP_REDIRECT: &str = "http://127.0.0.1:9310/cb";

/// GET /authorize for the demo web client with `scope` (and more `extra` parameters) in the
/// test server's browser.
async fn authorize(s: &TestServer, scope: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let pkce = Pkce::new();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", scope),
        ("state", "st-pages"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    flow::authorize(s, &params).await
}

async fn get_html(s: &TestServer, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = s.browser.get(s.url(path)).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// The text of the page's `.error` paragraph.
fn error_text(html: &str) -> String {
    let start = html.find("<p class=\"error\" role=\"alert\"").expect("an error paragraph");
    let text = html[start..].split_once('>').unwrap().1;
    text.split("</p>").next().unwrap().to_owned()
}

// JM-5.6, SH-D: the login page of a provincial unified login: branding from config on it, the
// 个人 and 法人 tabs as plain links (no script), each tab its form (法人 posts
// account_kind=legal_person), sign-up keeping the request, password reset, agreement and privacy;
// zh-CN by default, English by the switch (remembered), and the built-in notices.
async fn login_page_has_tabs_links_and_branding(b: Backend) {
    let s = TestServer::start_with(b, BRANDING).await;
    let r = authorize(&s, "openid profile", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    let req = login.strip_prefix("/login?req=").expect("the login page").to_owned();

    let (status, headers, html) = get_html(&s, &login).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"zh-CN\">"), "zh-CN by default: {html}");
    // Branding: name, logo, footer, help link, the primary colour; the CSP admits the logo's origin.
    assert!(html.contains("<span class=\"platform\">某省统一身份认证平台</span>"), "{html}");
    assert!(html.contains("<img src=\"https://static.example.gov.cn/logo.png\""), "{html}");
    assert!(html.contains("<p>主办单位：某省大数据中心</p>"), "{html}");
    assert!(html.contains("href=\"https://www.example.gov.cn/help\">帮助</a>"), "{html}");
    assert!(html.contains(":root{--p:#1d4ed8}"), "{html}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("img-src https://static.example.gov.cn"), "{csp}");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    // Works without JavaScript: no script at all; the tabs are links, 个人 shown.
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains(&format!("id=\"tab-person\" href=\"/login?req={req}\" aria-current=\"page\">个人登录</a>")));
    assert!(html.contains(&format!("id=\"tab-legal\" href=\"/login?req={req}&amp;kind=legal_person\">法人登录</a>")));
    assert!(html.contains("<form id=\"person-form\" method=\"post\" action=\"/login\">"), "{html}");
    assert!(html.contains("name=\"account_kind\" value=\"natural_person\""), "{html}");
    // Sign-up keeps the authorization request (HL-5.2); reset; agreement and privacy (built in).
    assert!(html.contains(&format!("href=\"/signup?req={req}\">注册账号</a>")), "{html}");
    assert!(html.contains("href=\"/password/reset\">忘记密码？</a>"), "{html}");
    assert!(
        html.contains("href=\"/agreement\">《用户协议》</a>") && html.contains("href=\"/privacy\">《隐私政策》</a>")
    );

    // The 法人 tab: the same form for the agent's own account, posting account_kind=legal_person.
    let (status, _, legal) = get_html(&s, &format!("{login}&kind=legal_person")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(legal.contains("aria-current=\"page\">法人登录</a>"), "{legal}");
    assert!(legal.contains("<form id=\"legal-form\" method=\"post\" action=\"/login\">"), "{legal}");
    assert!(legal.contains("name=\"account_kind\" value=\"legal_person\""), "{legal}");
    assert!(legal.contains("经办人") && legal.contains(&format!("href=\"/signup?req={req}\"")), "{legal}");
    assert!(!legal.contains("value=\"natural_person\""), "one form per tab");

    // The language switch: English, and the choice is remembered for the next pages.
    let (_, headers, en) = get_html(&s, &format!("{login}&lang=en")).await;
    assert!(en.contains("<html lang=\"en\">") && en.contains(">Individual</a>") && en.contains(">Organization</a>"));
    assert!(en.contains("Province Unified Login") && en.contains("Operated by the provincial big data centre"));
    assert!(en.contains(">User Agreement</a>") && en.contains(">Privacy Policy</a>"), "{en}");
    let cookie = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("tz_lang="));
    assert!(cookie.is_some_and(|c| c.starts_with("tz_lang=en;") && c.contains("SameSite=Lax")), "{headers:?}");
    let (_, _, again) = get_html(&s, &login).await;
    assert!(again.contains("<html lang=\"en\">") && again.contains(">Sign in</button>"), "remembered: {again}");
    assert!(again.contains("lang=\"zh-CN\" href=") && again.contains(">中文</a>"), "the way back: {again}");
    let (_, _, zh) = get_html(&s, &format!("{login}&lang=zh-CN")).await;
    assert!(zh.contains("<html lang=\"zh-CN\">"));

    // The built-in notices the default links point at, branded too.
    let (status, _, privacy) = get_html(&s, "/privacy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(privacy.contains("<h1>隐私政策</h1>") && privacy.contains("某省统一身份认证平台"), "{privacy}");
    let (status, _, agreement) = get_html(&s, "/agreement").await;
    assert_eq!(status, StatusCode::OK);
    assert!(agreement.contains("<h1>用户协议</h1>") && agreement.contains("经办人"), "{agreement}");
    // Branding reaches the other pages too (here an error page), without a logo: no img-src.
    let plain = TestServer::start(b).await;
    let r = plain.browser.get(plain.url("/login?req=nope")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!csp.contains("img-src"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<span class=\"platform\">统一身份认证平台</span>") && html.contains(":root{--p:#b91c1c}"));
}

// JM-5.6, RFC 6749 s10.10 (no account enumeration): an unknown account and a wrong password get
// the same generic message on both tabs; the 法人 tab stays the 法人 tab after a failure.
async fn wrong_credentials_stay_generic_on_both_tabs(b: Backend) {
    let s = TestServer::start(b).await;
    let login = location(&authorize(&s, "openid", &[]).await);
    for kind in ["natural_person", "legal_person"] {
        let page = if kind == "legal_person" { format!("{login}&kind=legal_person") } else { login.clone() };
        let mut messages = Vec::new();
        for (user, password) in [(USER, "wrong-password"), ("nobody-at-all", "wrong-password")] {
            let (_, _, html) = get_html(&s, &page).await;
            let form = [
                ("req", hidden(&html, "req")),
                ("csrf", hidden(&html, "csrf")),
                ("account_kind", hidden(&html, "account_kind")),
                ("username", user.to_owned()),
                ("password", password.to_owned()),
            ];
            assert_eq!(form[2].1, kind);
            let r = s.browser.post(s.url("/login")).form(&form).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{kind} {user}");
            let html = r.text().await.unwrap();
            assert!(html.contains(&format!("name=\"account_kind\" value=\"{kind}\"")), "the same tab again: {html}");
            let msg = error_text(&html);
            assert!(msg.starts_with("用户名或密码错误。"), "{msg}");
            messages.push(msg.split('。').next().unwrap().to_owned());
        }
        assert_eq!(messages[0], messages[1], "{kind}: the same words for an unknown account");
    }
}

/// Creates the sensitive business scope `tax.records` with zh-CN and en descriptions, an
/// application owned by 市税务局 holding it and `phone`, and approves it (demo is a test user).
async fn tax_application(s: &TestServer) -> String {
    use reqwest::Method as M;
    let admin = flow::admin_token(s).await;
    // The admin API takes the localized descriptions, within bounds (RFC 7807 otherwise).
    let long = "长".repeat(501);
    let bad = json!({"name": "tax.records", "description": "Tax records", "description_zh": long});
    let r = call(s, &admin, M::POST, "/admin/v1/scopes", Some(bad)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let def = json!({"name": "tax.records", "description": "Tax records of the user", "sensitive": true,
        "description_zh": "您的纳税记录", "description_en": "Your tax records"});
    let r = call(s, &admin, M::POST, "/admin/v1/scopes", Some(def)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    assert_eq!(
        (made["description_zh"].as_str(), made["description_en"].as_str()),
        (Some("您的纳税记录"), Some("Your tax records"))
    );
    // Built-ins carry real texts in both languages.
    let phone: Value = call(s, &admin, M::GET, "/admin/v1/scopes/phone", None).await.json().await.unwrap();
    assert_eq!((phone["description_zh"].as_str(), phone["sensitive"].as_bool()), (Some("您的手机号码"), Some(true)));

    let id = "tax-portal";
    let app = json!({
        "id": id, "name": "电子税务局", "description": "Tax portal", "category": "office",
        "industry_theme": "税务", "app_type": "web", "visible_scope": [], "developer": "某某软件有限公司",
        "owning_unit": "市税务局", "contact": {"name": "王工"},
        "grants": {"grant_types": ["authorization_code"], "redirect_uris": [APP_REDIRECT],
                   "scopes": ["openid", "profile", "phone", "tax.records"]},
        "test_users": [USER]
    });
    let r = call(s, &admin, M::POST, "/admin/v1/applications", Some(app)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let approve = json!({"reviewer": "李审核", "decision": "approve", "evidence": office_evidence()});
    let r = call(s, &admin, M::POST, &format!("/admin/v1/applications/{id}/reviews"), Some(approve)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    id.to_owned()
}

// SH-8.2, OIDC Core s3.1.2.4: the consent page names the application and its owning unit, each
// scope by the catalogue's description in the user's language (never the raw token), and marks
// the sensitive ones plainly; a denial is access_denied and records nothing.
async fn consent_page_names_scopes_and_marks_sensitive_items(b: Backend) {
    let s = TestServer::start(b).await;
    let app = tax_application(&s).await;
    let pkce = Pkce::new();
    let params = |ui: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", app.as_str()),
            ("redirect_uri", APP_REDIRECT),
            ("scope", "openid profile phone tax.records"),
            ("state", "st-tax"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("ui_locales", ui),
        ]
    };
    let r = flow::authorize(&s, &params("zh-CN")).await;
    let r = flow::submit_login(&s, &location(&r), USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "the consent page (this client asks for none, but sensitive scopes)");
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>授权确认</h1>"), "{html}");
    assert!(
        html.contains("<dd class=\"app-name\">电子税务局</dd>") && html.contains("<dd class=\"unit\">市税务局</dd>")
    );
    assert!(html.contains("<li data-scope=\"profile\">您的姓名和用户名</li>"), "{html}");
    assert!(html.contains("<li data-scope=\"openid\">使用您的账号登录"), "{html}");
    assert!(html.contains(
        "<li class=\"sensitive\" data-scope=\"phone\"><span class=\"badge\">敏感信息</span>您的手机号码</li>"
    ));
    assert!(html.contains(
        "<li class=\"sensitive\" data-scope=\"tax.records\"><span class=\"badge\">敏感信息</span>您的纳税记录</li>"
    ));
    assert!(html.contains("敏感个人信息"), "the note on sensitive items: {html}");
    assert!(!html.contains(">phone<") && !html.contains(">tax.records<"), "no raw scope tokens shown");
    // Deny: access_denied at the client, nothing recorded.
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "deny".to_owned())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    let q = query(&location(&r));
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"), "{q:?}");
    let demo = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    assert!(tongzheng::authorize::consent::consent_of(&s.state.store, &demo.id, &app).await.unwrap().is_none());

    // In English (the session is live: straight to the consent page).
    let r = flow::authorize(&s, &params("en")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let en = r.text().await.unwrap();
    assert!(
        en.contains("<h1>Allow access</h1>") && en.contains("<dt>Operated by</dt><dd class=\"unit\">市税务局</dd>")
    );
    assert!(en.contains("<span class=\"badge\">Sensitive</span>Your tax records</li>"), "{en}");
    assert!(en.contains("<span class=\"badge\">Sensitive</span>Your mobile phone number</li>"), "{en}");
    assert!(en.contains("<li data-scope=\"profile\">Your name and username</li>"), "{en}");
    // Allow: the decision is recorded for this client, with the scopes shown.
    let form = [("req", hidden(&en, "req")), ("csrf", hidden(&en, "csrf")), ("decision", "allow".to_owned())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    assert!(query(&location(&r)).contains_key("code"));
    let c = tongzheng::authorize::consent::consent_of(&s.state.store, &demo.id, &app).await.unwrap().unwrap();
    assert_eq!(c.scopes, ["openid", "profile", "phone", "tax.records"]);
}

// SH-8.2: releasing a sensitive scope needs the user's recorded consent for that client, even
// from a client that asks for no consent and whose other scopes the user allowed before; also
// under prompt=none (consent_required, OIDC Core s3.1.2.6); revoke_consent (the account page's)
// makes the next authorization ask again. Before this rule, demo-web got `phone` unasked.
async fn sensitive_scope_always_needs_its_recorded_consent(b: Backend) {
    let s = TestServer::start(b).await;
    // Not sensitive, no consent asked by this client: a code at once after login.
    let r = authorize(&s, "openid profile", &[]).await;
    let r = flow::submit_login(&s, &location(&r), USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(query(&location(&r)).contains_key("code"));
    // The user allows openid, profile and email (prompt=consent records it).
    let r = authorize(&s, "openid profile email", &[("prompt", "consent")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".to_owned())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    assert!(query(&location(&r)).contains_key("code"));
    assert!(query(&location(&authorize(&s, "openid email", &[]).await)).contains_key("code"));

    // Now phone too: sensitive, not consented: asked, even with the earlier consent.
    let r = authorize(&s, "openid profile phone", &[("prompt", "none")]).await;
    let q = query(&location(&r));
    assert_eq!(q.get("error").map(String::as_str), Some("consent_required"), "{q:?}");
    let r = authorize(&s, "openid profile phone", &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "the consent page, not a code");
    let html = r.text().await.unwrap();
    assert!(html.contains("data-scope=\"phone\"><span class=\"badge\">敏感信息</span>"), "{html}");
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".to_owned())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    assert!(query(&location(&r)).contains_key("code"));
    // Recorded per client: phone now goes without asking, also under prompt=none.
    let r = authorize(&s, "openid phone", &[("prompt", "none")]).await;
    assert!(query(&location(&r)).contains_key("code"), "{}", location(&r));

    // Revoked (the account page's domain function): asked again; revoking twice is harmless.
    let demo = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    let listed = tongzheng::authorize::consents_of(&s.state.store, &demo.id).await.unwrap();
    assert_eq!(listed.len(), 1, "the account page's list: {listed:?}");
    assert_eq!(
        (listed[0].0.as_str(), listed[0].1.scopes.as_slice()),
        (WEB_CLIENT, ["openid", "profile", "phone"].map(String::from).as_slice())
    );
    assert!(tongzheng::authorize::revoke_consent(&s.state.store, &demo.id, WEB_CLIENT).await.unwrap());
    assert!(tongzheng::authorize::consents_of(&s.state.store, &demo.id).await.unwrap().is_empty());
    assert!(!tongzheng::authorize::revoke_consent(&s.state.store, &demo.id, WEB_CLIENT).await.unwrap());
    let r = authorize(&s, "openid phone", &[("prompt", "none")]).await;
    assert_eq!(query(&location(&r)).get("error").map(String::as_str), Some("consent_required"));
    assert_eq!(authorize(&s, "openid phone", &[]).await.status(), StatusCode::OK, "the consent page again");
    // Still not for a scope that is not sensitive.
    assert!(query(&location(&authorize(&s, "openid profile", &[]).await)).contains_key("code"));
}
