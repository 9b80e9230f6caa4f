//! Issue 11's proof in one headless-Chromium walk at phone size (390x844): a relying party
//! that requires the real-name level; a natural person registers with an SMS code read from
//! the dev sender's outbox, verifies their real name through the local stand-in service and
//! lands at the application, whose ID token carries the verified level; then the person
//! registers a company and logs in on the 法人 tab as its agent (`sub` is the legal person,
//! `act` names the agent). Screenshots of every page (and the account page) in zh-CN and en
//! in target/screenshots/.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{jwt_claims, screenshot_path, start_rp};
use crate::signup::{Outbox, make_uscc};
use crate::support::flow::{self, Pkce};
use crate::support::realname::RealName;
use crate::support::server::{Backend, TestServer};
use crate::support::webdriver::Browser;

const RP: &str = "identity-rp";
/// An iPhone 12-15 viewport.
const SIZE: (u32, u32) = (390, 844);
/// A resident ID number with a valid GB 11643 check digit, on record at the stand-in.
const ID_NUMBER: &str = "11010519491231002X";
const NAME: &str = "王五";
const USERNAME: &str = "wang.wu";
const PASSWORD: &str = "wang-wu-password-1";

/// Elements reaching past the right edge of the viewport (none on a page that fits).
const OVERFLOW: &str = "var w = document.documentElement.clientWidth, out = [];\
    if (document.documentElement.scrollWidth > w) out.push('document ' + document.documentElement.scrollWidth);\
    document.querySelectorAll('body *').forEach(function (e) { var r = e.getBoundingClientRect();\
    if (r.width > 0 && r.right > w + 0.5) out.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right)); });\
    return out;";

/// Checks that the page fits the width, then keeps a screenshot of it.
async fn shoot(browser: &Browser, name: &str) {
    let out = browser.execute(OVERFLOW).await;
    assert_eq!(out, Value::Array(vec![]), "{name}: wider than the viewport");
    let path = screenshot_path(&format!("screenshots/identity-{name}-{}x{}.png", SIZE.0, SIZE.1));
    browser.screenshot(&path).await;
}

/// Switches the pages' language (the login page's switch sets the language cookie; it does
/// so also for a request that is gone).
async fn language(s: &TestServer, browser: &Browser, lang: &str) {
    browser.navigate(&s.url(&format!("/login?req=-&lang={lang}"))).await;
}

/// Screenshots `path` in zh-CN and en (named `name-zh`, `name-en`), ending in zh-CN on it.
async fn both_languages(s: &TestServer, browser: &Browser, path: &str, name: &str, ready: &str) {
    for lang in ["en", "zh-CN"] {
        language(s, browser, lang).await;
        browser.navigate(&s.url(path)).await;
        let want = if lang == "en" { "en" } else { "zh-CN" };
        browser.wait_for(&format!("html[lang={want}] {ready}"), Duration::from_secs(10)).await;
        shoot(browser, &format!("{name}-{}", &lang[..2])).await;
    }
}

/// Waits for the RP's callback, answering a consent page on the way with `allow`.
async fn to_rp(browser: &Browser, redirect: &str) -> std::collections::HashMap<String, String> {
    let at = browser.wait_for_url(Duration::from_secs(15), |u| u.starts_with(redirect) || u.contains("/consent")).await;
    let at = if at.starts_with(redirect) {
        at
    } else {
        browser.click(&browser.find("button[value=allow]").await).await;
        browser.wait_for_url(Duration::from_secs(15), |u| u.starts_with(redirect)).await
    };
    assert!(at.starts_with(redirect), "back at the application, at {at}: {}", browser.source().await);
    flow::query(&at)
}

/// Redeems a code at the token endpoint; the token response.
async fn redeem(s: &TestServer, secret: &str, redirect: &str, code: &str, pkce: &Pkce) -> Value {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(RP, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn authorize_url(s: &TestServer, redirect: &str, scope: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&s.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", RP)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "id-st")
        .append_pair("nonce", "id-n")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    url.into()
}

// HL-5.1, HL-5.2, HL-6.1, GB-6.4a, SH-8.2, JM-5.6; OIDC Core s2 (acr), s5.5.1.1; RFC 8693 s4.1
// (act); Prompt Create 1.0: the whole citizen and company journey in Chromium at 390x844.
#[tokio::test(flavor = "multi_thread")]
async fn citizen_and_company_journey_in_chromium() {
    let started = Instant::now();
    let rn = RealName::start().await;
    rn.record(ID_NUMBER, NAME);
    let outbox = Outbox::new_for_browser();
    let s = TestServer::start_with(Backend::Memory, &format!("{}{}", outbox.overlay(), rn.overlay())).await;
    let (redirect, _seen) = start_rp().await;
    let admin = flow::admin_token(&s).await;
    let body = json!({"client_id": RP, "client_name": "不动产登记", "redirect_uris": [redirect],
        "grant_types": ["authorization_code"], "scope": "openid profile phone legal_person",
        "token_endpoint_auth_method": "client_secret_basic", "min_level": "real_name"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let client: Value = r.json().await.unwrap();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(client["min_level"], "real_name", "HL-6.1: the per-client minimum level");

    let mut browser = Browser::launch().await;
    browser.set_viewport(SIZE.0, SIZE.1).await;
    language(&s, &browser, "zh-CN").await;

    // JM-5.6: the login page, both tabs, both languages.
    let pkce = Pkce::new();
    browser.navigate(&authorize_url(&s, &redirect, "openid profile phone", &pkce, &[])).await;
    let login = browser.current_url().await;
    assert!(login.starts_with(&s.url("/login?req=")), "at {login}");
    let req = flow::query(&login)["req"].clone();
    let login_path = format!("/login?req={req}");
    both_languages(&s, &browser, &login_path, "login-person", "#person-form").await;
    both_languages(&s, &browser, &format!("{login_path}&kind=legal_person"), "login-legal", "#legal-form").await;

    // HL-5.2: the login page links to the one registration page, which keeps the request.
    browser.navigate(&s.url(&login_path)).await;
    browser.click(&browser.find("#signup").await).await;
    browser.wait_for("input[name=phone]", Duration::from_secs(10)).await;
    let at = browser.current_url().await;
    assert_eq!(at, s.url(&format!("/signup?req={req}")));
    both_languages(&s, &browser, &format!("/signup?req={req}&kind=legal"), "signup-legal", "select[name=org_kind]")
        .await;
    both_languages(&s, &browser, &format!("/signup?req={req}"), "signup-person", "input[name=phone]").await;

    // GB-6.4a, SH-8.2: the SMS code as the person reads it on their phone (the dev outbox).
    browser.send_keys(&browser.find("input[name=phone]").await, "139 0013 9000").await;
    browser.click(&browser.find("button[value=send_code]").await).await;
    let notice = browser.wait_for(".ok[role=status]", Duration::from_secs(10)).await;
    assert!(browser.text(&notice).await.contains("139****9000"), "SH-8.2: the phone is masked");
    let code = outbox.last_code("+8613900139000");
    for (name, value) in [("code", code.as_str()), ("username", USERNAME), ("name", NAME), ("password", PASSWORD)] {
        browser.send_keys(&browser.find(&format!("input[name={name}]")).await, value).await;
    }
    browser.click(&browser.find("button[value=register]").await).await;

    // HL-6.1: registered is below the client's minimum, so the flow continues at /verify.
    let at = browser.wait_for_url(Duration::from_secs(15), |u| u.contains("/verify?")).await;
    assert!(at.starts_with(&s.url("/verify?req=")), "below the client's level, at {at}: {}", browser.source().await);
    let verify_path = at.trim_start_matches(&s.base).to_owned();
    both_languages(&s, &browser, &verify_path, "verify", "input[name=id_number]").await;
    browser.send_keys(&browser.find("input[name=id_number]").await, ID_NUMBER).await;
    let name_field = browser.find("input[name=name]").await;
    if browser.attribute(&name_field, "value").await.as_deref() != Some(NAME) {
        browser.clear(&name_field).await;
        browser.send_keys(&name_field, NAME).await;
    }
    browser.click(&browser.find("button[value=verify]").await).await;

    // SH-8.2: `phone` is sensitive, so the consent page names it plainly before the code.
    let item = browser.wait_for("ul.scopes li.sensitive[data-scope=phone]", Duration::from_secs(15)).await;
    assert!(browser.text(&item).await.contains("手机号码"));
    shoot(&browser, "consent-zh").await;
    assert_eq!(rn.calls_for(ID_NUMBER).len(), 1, "GB-6.4a: one call to the real-name service");
    let q = to_rp(&browser, &redirect).await;
    assert_eq!(q.get("state").map(String::as_str), Some("id-st"));
    let tokens = redeem(&s, &secret, &redirect, &q["code"], &pkce).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!((id["acr"].as_str(), id["auth_level"].as_str()), (Some("2"), Some("real_name")), "HL-6.1: {id}");
    assert_eq!(id["user_type"], "natural_person", "{id}");
    let person = tongzheng::users::by_username(&s.state.store, USERNAME).await.unwrap().expect("registered");
    assert_eq!(person.level(), tongzheng::identity::AssuranceLevel::RealName);
    assert_eq!(person.id_number(s.state.keys.data()).as_deref(), Some(ID_NUMBER));

    // The consent page in English: the session is live, prompt=consent asks again.
    language(&s, &browser, "en").await;
    browser
        .navigate(&authorize_url(&s, &redirect, "openid profile phone", &Pkce::new(), &[("prompt", "consent")]))
        .await;
    let item =
        browser.wait_for("html[lang=en] ul.scopes li.sensitive[data-scope=phone]", Duration::from_secs(10)).await;
    assert!(browser.text(&item).await.contains("phone number"));
    shoot(&browser, "consent-en").await;
    browser.click(&browser.find("button[value=deny]").await).await;
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&redirect)).await;
    assert_eq!(flow::query(&at).get("error").map(String::as_str), Some("access_denied"));
    language(&s, &browser, "zh-CN").await;

    // HL-5.1, HL-5.2: signed in, the person registers a company and becomes its first agent.
    let uscc = make_uscc("9133010610001234");
    browser.navigate(&s.url("/signup?kind=legal")).await;
    assert_eq!(browser.count("input[name=phone]").await, 0, "signed in: company data only");
    for (name, value) in
        [("org_name", "杭州示例科技有限公司"), ("uscc", uscc.as_str()), ("legal_representative", "赵六")]
    {
        browser.send_keys(&browser.find(&format!("input[name={name}]")).await, value).await;
    }
    shoot(&browser, "signup-company-zh").await;
    browser.click(&browser.find("button[value=register]").await).await;
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.contains("/account")).await;
    assert!(at.contains("/account"), "at {at}: {}", browser.source().await);
    let lp = tongzheng::identity::legal::by_uscc(&s.state.store, &uscc).await.unwrap().expect("the company");
    assert_eq!(lp.agents.first().map(|a| a.user_id.as_str()), Some(person.id.as_str()));
    // SH-8.2: the account page, masked, with the company and the consent.
    both_languages(&s, &browser, "/account", "account", "form[action='/account/consents/revoke']").await;
    let source = browser.source().await;
    assert!(source.contains("139****9000") && !source.contains("13900139000"), "SH-8.2: masked phone");
    assert!(!source.contains(ID_NUMBER), "SH-8.2: masked ID number");

    // HL-5.1: the 法人 tab; the agent signs in as themselves and acts for the company.
    let pkce = Pkce::new();
    let url = authorize_url(&s, &redirect, "openid profile legal_person", &pkce, &[("prompt", "login")]);
    browser.navigate(&url).await;
    browser.wait_for("#person-form", Duration::from_secs(10)).await;
    browser.click(&browser.find("#tab-legal").await).await;
    browser.wait_for("#legal-form", Duration::from_secs(10)).await;
    browser.send_keys(&browser.find("#legal-form input[name=username]").await, USERNAME).await;
    browser.send_keys(&browser.find("#legal-form input[name=password]").await, PASSWORD).await;
    browser.click(&browser.find("#legal-form button[type=submit]").await).await;
    let q = to_rp(&browser, &redirect).await;
    let tokens = redeem(&s, &secret, &redirect, &q["code"], &pkce).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!(lp.id), "the subject is the legal person: {id}");
    assert_eq!(id["act"], json!({"sub": person.id}), "RFC 8693 s4.1: the agent: {id}");
    assert_eq!(id["user_type"], "legal_person", "{id}");
    assert_eq!(id["acr"], "2", "the agent's verified level: {id}");
    let r = s.http.get(s.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!((info["uscc"].as_str(), info["org_name"].as_str()), (Some(uscc.as_str()), Some("杭州示例科技有限公司")));

    browser.quit().await;
    eprintln!(
        "identity browser test: {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshot_path("screenshots").display()
    );
}
