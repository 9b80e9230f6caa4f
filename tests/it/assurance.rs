//! Assurance levels and real-name verification (GB-6.4a, HL-6.1): a client that requires the
//! real-name level takes an unverified person through `/verify` in the same authorization flow,
//! against a real local HTTP server standing in for the real-name service (match, mismatch, no
//! record, timeout then success on retry, 5xx); `acr_values` and the essential `acr` claim
//! (OIDC Core s3.1.2.1, s5.5.1.1); `prompt=none` below the level (OIDC Core s3.1.2.6); failures
//! end in `unmet_authentication_requirements` (OpenID Connect Core Unmet Authentication
//! Requirements 1.0).

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{Pkce, admin_token, hidden, location, query, submit_login};
use crate::support::realname::{Behaviour, RealName};
use crate::support::server::*;

per_backend!(
    real_name_required_is_verified_in_the_same_flow,
    mismatch_or_no_record_ends_with_unmet,
    timeout_then_success_on_retry,
    server_errors_are_retried_then_reported,
    prompt_none_below_level_gets_unmet_at_once,
    acr_values_and_essential_acr_claim,
    account_page_verification_and_daily_limit,
    verified_account_is_not_asked_again,
    application_grant_sets_the_level,
    refused_call_is_not_retried,
    optional_verification_can_be_skipped_or_retried,
);

/// The client that requires real-name verified people.
const RN_CLIENT: &str = "rn-app";
const RN_REDIRECT: &str = "http://127.0.0.1:9400/rn/cb";
/// The demo user's name as on record at the stand-in.
const NAME: &str = "张三";

async fn setup(b: Backend) -> (TestServer, RealName) {
    let rn = RealName::start().await;
    let s = TestServer::start_with(b, &rn.overlay()).await;
    let admin = admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"client_id": RN_CLIENT, "client_name": "实名应用", "redirect_uris": [RN_REDIRECT],
                      "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none",
                      "scope": "openid profile", "min_level": "real_name"}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["min_level"], "real_name", "{body}");
    (s, rn)
}

/// GET /authorize for `client` (RN_CLIENT unless told), PKCE and state `st`.
async fn authorize(s: &TestServer, client: (&str, &str), extra: &[(&str, &str)], pkce: &Pkce) -> reqwest::Response {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.0),
        ("redirect_uri", client.1),
        ("scope", "openid profile"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    s.browser.get(s.url("/authorize")).query(&params).send().await.unwrap()
}

const RN: (&str, &str) = (RN_CLIENT, RN_REDIRECT);

/// Authorize at RN_CLIENT, log in as the demo user: the browser is sent to /verify. Returns
/// the verification page's URL.
async fn to_verify(s: &TestServer, pkce: &Pkce) -> String {
    let r = authorize(s, RN, &[], pkce).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "{login}");
    let r = submit_login(s, &login, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let verify = location(&r);
    assert!(verify.starts_with("/verify?req="), "below the client's level, the flow goes to /verify: {verify}");
    verify
}

/// Fills the verification form at `url` and posts it.
async fn submit_verify(s: &TestServer, url: &str, name: &str, number: &str) -> reqwest::Response {
    let page = s.browser.get(s.url(url)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("name", name.to_owned()),
        ("id_type", "resident_id_card".to_owned()),
        ("id_number", number.to_owned()),
        ("decision", "verify".to_owned()),
    ];
    s.browser.post(s.url("/verify")).form(&form).send().await.unwrap()
}

/// Redeems a code of the public RN_CLIENT; the ID token's claims.
async fn id_token_claims(s: &TestServer, code: &str, pkce: &Pkce) -> Value {
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", RN_CLIENT),
            ("code", code),
            ("redirect_uri", RN_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let (claims, _): (Value, _) = s.state.keys.verify(body["id_token"].as_str().unwrap()).unwrap();
    claims
}

/// The identity_verification events of the audit log, and the whole log's text.
async fn verification_events(s: &TestServer) -> (Vec<Value>, String) {
    s.state.audit.flush().await;
    let mut text = String::new();
    for entry in std::fs::read_dir(&s.state.config.audit.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let events = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "identity_verification")
        .collect();
    (events, text)
}

fn redirect_query(r: &reqwest::Response) -> HashMap<String, String> {
    let loc = location(r);
    assert!(loc.starts_with(RN_REDIRECT), "expected the client's redirect URI: {loc}");
    query(&loc)
}

// GB-6.4a, HL-6.1; OIDC Core s2 (acr): an unverified person meeting a client that requires the
// real-name level verifies in the same flow and comes back with a code whose ID token says so.
async fn real_name_required_is_verified_in_the_same_flow(b: Backend) {
    let (s, rn) = setup(b).await;
    let number = "110101199003071233";
    rn.record(number, NAME);
    let pkce = Pkce::new();
    let verify = to_verify(&s, &pkce).await;
    let r = submit_verify(&s, &verify, NAME, number).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = redirect_query(&r);
    assert_eq!(q.get("state").map(String::as_str), Some("st"));
    let claims = id_token_claims(&s, &q["code"], &pkce).await;
    assert_eq!(claims["acr"], "2", "{claims}");
    assert_eq!(claims["auth_level"], "real_name", "{claims}");
    assert_eq!(rn.calls_for(number).len(), 1);
    // The account is verified (who and how recorded); the number sealed, not in clear.
    let user = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    let v = user.verification.clone().expect("verification recorded");
    assert_eq!((v.level, v.by.as_str()), (tongzheng::identity::AssuranceLevel::RealName, "realname-test"));
    assert_eq!(user.id_number(s.state.keys.data()).as_deref(), Some(number));
    assert!(!serde_json::to_string(&user).unwrap().contains(number), "sealed at rest (SH-8.2)");
    // The session carries the level: the next request of the client gets a code at once, with
    // no second (billed) call.
    let pkce2 = Pkce::new();
    let r = authorize(&s, RN, &[], &pkce2).await;
    let q = redirect_query(&r);
    assert_eq!(id_token_claims(&s, &q["code"], &pkce2).await["acr"], "2");
    assert_eq!(rn.calls_for(number).len(), 1);
    // Every call audited with its outcome and billed flag; never the ID number.
    let (events, text) = verification_events(&s).await;
    let call = events.iter().find(|e| e["detail"]["step"] == "call").expect("the call is audited");
    assert_eq!((call["detail"]["outcome"].as_str(), call["detail"]["billed"].as_bool()), (Some("match"), Some(true)));
    assert!(events.iter().any(|e| e["detail"]["step"] == "result" && e["outcome"] == "success"), "{events:?}");
    assert!(!text.contains(number), "the ID number never reaches the audit log");
}

// GB-6.4a; Unmet Authentication Requirements 1.0: a mismatch or no record ends the request
// with the error at the client's redirect URI; a malformed number is asked again, uncharged.
async fn mismatch_or_no_record_ends_with_unmet(b: Backend) {
    let (s, rn) = setup(b).await;
    let number = "110101199003072340";
    rn.record(number, NAME);
    let pkce = Pkce::new();
    let verify = to_verify(&s, &pkce).await;
    // A wrong check digit, an over-long name, an unknown document type: the form again (400),
    // no call made.
    let r = submit_verify(&s, &verify, NAME, "110101199003072341").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(rn.calls_for("110101199003072341").len(), 0);
    let r = submit_verify(&s, &verify, &"名".repeat(65), number).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = s.browser.get(s.url(&verify)).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("name", NAME.to_owned()),
        ("id_type", "library_card".to_owned()),
        ("id_number", "x".repeat(5000)),
    ];
    let r = s.browser.post(s.url("/verify")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s.browser.get(s.url("/verify")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "neither req nor next");
    assert_eq!(rn.total_calls(), 0);
    // Mismatch.
    let r = submit_verify(&s, &verify, "李四", number).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = redirect_query(&r);
    assert_eq!(q.get("error").map(String::as_str), Some("unmet_authentication_requirements"), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some("st"));
    assert_eq!(q.get("iss"), Some(&s.base), "RFC 9207");
    // The request is over: its verification page is gone.
    let r = s.browser.get(s.url(&verify)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // No record: a new request of the same browser (logged in, still below) goes straight to /verify.
    let r = authorize(&s, RN, &[], &Pkce::new()).await;
    let verify = location(&r);
    assert!(verify.starts_with("/verify?req="), "{verify}");
    let r = submit_verify(&s, &verify, NAME, "110101199003073458").await;
    let q = redirect_query(&r);
    assert_eq!(q.get("error").map(String::as_str), Some("unmet_authentication_requirements"), "{q:?}");
    // Nothing was recorded on the account.
    let user = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    assert!(user.verification.is_none() && user.id_number_sealed.is_none());
    let (events, _) = verification_events(&s).await;
    let results: Vec<&str> = events
        .iter()
        .filter(|e| e["detail"]["step"] == "result")
        .filter_map(|e| e["detail"]["result"].as_str())
        .collect();
    assert_eq!(results, ["mismatch", "no_record"]);
    // The person can also decline: access_denied (RFC 6749 s4.1.2.1).
    let r = authorize(&s, RN, &[], &Pkce::new()).await;
    let verify = location(&r);
    let html = s.browser.get(s.url(&verify)).send().await.unwrap().text().await.unwrap();
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "cancel".to_owned())];
    let r = s.browser.post(s.url("/verify")).form(&form).send().await.unwrap();
    assert_eq!(redirect_query(&r).get("error").map(String::as_str), Some("access_denied"));
}

// GB-6.4a: a call that times out is retried (same request id, so the service can tell) and the
// retry's answer counts; the timed-out call is audited as not billed.
async fn timeout_then_success_on_retry(b: Backend) {
    let (s, rn) = setup(b).await;
    let number = "110101199003074565";
    rn.record(number, NAME);
    rn.set(number, Behaviour::HangOnce);
    let pkce = Pkce::new();
    let verify = to_verify(&s, &pkce).await;
    let r = submit_verify(&s, &verify, NAME, number).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = redirect_query(&r);
    assert_eq!(id_token_claims(&s, &q["code"], &pkce).await["acr"], "2");
    let calls = rn.calls_for(number);
    assert_eq!(calls.len(), 2, "one timeout, one retry");
    assert_eq!(calls[0]["request_id"], calls[1]["request_id"]);
    let (events, _) = verification_events(&s).await;
    let outcomes: Vec<(String, bool)> = events
        .iter()
        .filter(|e| e["detail"]["step"] == "call")
        .map(|e| (e["detail"]["outcome"].as_str().unwrap().to_owned(), e["detail"]["billed"].as_bool().unwrap()))
        .collect();
    assert_eq!(outcomes, [("timeout".to_owned(), false), ("match".to_owned(), true)]);
}

// GB-6.4a: 5xx answers are retried (1 + verify.retries calls), then the person is told the
// service is unavailable (503) and may try again; nothing is recorded meanwhile.
async fn server_errors_are_retried_then_reported(b: Backend) {
    let (s, rn) = setup(b).await;
    let number = "110101199003075672";
    rn.record(number, NAME);
    rn.set(number, Behaviour::Fail);
    let pkce = Pkce::new();
    let verify = to_verify(&s, &pkce).await;
    let r = submit_verify(&s, &verify, NAME, number).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rn.calls_for(number).len(), 3);
    let user = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    assert!(user.verification.is_none());
    // The service recovers; the same request continues.
    rn.set(number, Behaviour::Normal);
    let r = submit_verify(&s, &verify, NAME, number).await;
    let q = redirect_query(&r);
    assert!(q.contains_key("code"), "{q:?}");
    let (events, _) = verification_events(&s).await;
    let calls: Vec<&str> = events
        .iter()
        .filter(|e| e["detail"]["step"] == "call")
        .filter_map(|e| e["detail"]["outcome"].as_str())
        .collect();
    assert_eq!(calls, ["http_503", "http_503", "http_503", "match"]);
}

// OIDC Core s3.1.2.6, HL-6.1: prompt=none cannot show the verification page; a session below
// the client's level gets unmet_authentication_requirements at once.
async fn prompt_none_below_level_gets_unmet_at_once(b: Backend) {
    let (s, rn) = setup(b).await;
    // A session at the registered level, from another client.
    let (code, _) = crate::support::flow::web_code(&s, "openid").await;
    assert!(!code.is_empty());
    let r = authorize(&s, RN, &[("prompt", "none")], &Pkce::new()).await;
    let q = redirect_query(&r);
    assert_eq!(q.get("error").map(String::as_str), Some("unmet_authentication_requirements"), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some("st"));
    // acr_values on a client with no minimum does the same.
    let r = authorize(&s, (WEB_CLIENT, WEB_REDIRECT), &[("prompt", "none"), ("acr_values", "2")], &Pkce::new()).await;
    let q = query(&location(&r));
    assert_eq!(q.get("error").map(String::as_str), Some("unmet_authentication_requirements"), "{q:?}");
    // No service call was made for any of it.
    assert_eq!(rn.total_calls(), 0);
}

// OIDC Core s3.1.2.1 (acr_values), s5.5.1.1 (essential acr in `claims`), Discovery s3
// (acr_values_supported), HL-6.1.
async fn acr_values_and_essential_acr_claim(b: Backend) {
    let (s, _rn) = setup(b).await;
    let meta: Value =
        s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["acr_values_supported"], json!(["0", "1", "2", "3"]));
    assert_eq!(meta["claims_parameter_supported"], true);
    let web = (WEB_CLIENT, WEB_REDIRECT);
    // acr_values=2 at a client with no minimum: verification first.
    let r = authorize(&s, web, &[("acr_values", "2 3")], &Pkce::new()).await;
    let login = location(&r);
    let r = submit_login(&s, &login, USER, PASSWORD).await;
    assert!(location(&r).starts_with("/verify?req="), "{}", location(&r));
    // acr_values this platform does not know are voluntary and ignored: a code.
    let r = authorize(&s, web, &[("acr_values", "urn:example:loa:9")], &Pkce::new()).await;
    assert!(query(&location(&r)).contains_key("code"), "{}", location(&r));
    // An essential acr of "3" (strong): only an admin-recorded verification reaches it.
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["3"]}}}"#;
    let r = authorize(&s, web, &[("claims", claims)], &Pkce::new()).await;
    let q = query(&location(&r));
    assert_eq!(q.get("error").map(String::as_str), Some("unmet_authentication_requirements"), "{q:?}");
    // An essential acr of "1": met by the session.
    let claims = r#"{"id_token":{"acr":{"essential":true,"value":"1"}}}"#;
    let r = authorize(&s, web, &[("claims", claims)], &Pkce::new()).await;
    assert!(query(&location(&r)).contains_key("code"), "{}", location(&r));
    // A claims parameter that is not JSON: invalid_request at the redirect URI.
    let r = authorize(&s, web, &[("claims", "{not json")], &Pkce::new()).await;
    assert_eq!(query(&location(&r)).get("error").map(String::as_str), Some("invalid_request"));
    // The admin API keeps the minimum on update when absent, and "visitor" lifts it.
    let admin = admin_token(&s).await;
    let client: Value =
        s.http.get(s.url("/admin/v1/clients/rn-app")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(client["min_level"], "real_name");
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"client_id": "bad-level", "redirect_uris": [RN_REDIRECT], "min_level": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "an unknown level is refused (RFC 7807)");
}

// GB-6.4a, HL-6.1: /verify?next= for a signed-in person outside any authorization request (the
// account page), its own CSRF token, and the daily limit of verifications per person (each may
// be a billed call).
async fn account_page_verification_and_daily_limit(b: Backend) {
    let rn = RealName::start().await;
    let s = TestServer::start_with(b, &format!("{}attempts_per_day = 3\n", rn.overlay())).await;
    let number = "11010119900307678X";
    rn.record(number, NAME);
    // Not signed in: a clear refusal.
    let r = s.browser.get(s.url("/verify?next=/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Only our own paths: an absolute URL is refused.
    let r = s.browser.get(s.url("/verify?next=//evil.example/x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    crate::support::flow::web_code(&s, "openid").await;
    let html = s.browser.get(s.url("/verify?next=/account")).send().await.unwrap().text().await.unwrap();
    let post = |name: &str, num: &str, csrf: String| {
        let form = [
            ("next", "/account".to_owned()),
            ("csrf", csrf),
            ("name", name.to_owned()),
            ("id_type", "resident_id_card".to_owned()),
            ("id_number", num.to_owned()),
        ];
        s.browser.post(s.url("/verify")).form(&form).send()
    };
    let csrf = hidden(&html, "csrf");
    assert_eq!(post(NAME, number, "forged".into()).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post("李四", number, csrf.clone()).await.unwrap().status(), StatusCode::FORBIDDEN, "mismatch");
    assert_eq!(post(NAME, "440305198512121110", csrf.clone()).await.unwrap().status(), StatusCode::FORBIDDEN);
    let r = post(NAME, number, csrf.clone()).await.unwrap();
    assert_eq!((r.status(), location(&r).as_str()), (StatusCode::SEE_OTHER, "/account"));
    // A fourth verification today is refused before any call.
    let before = rn.total_calls();
    let r = post(NAME, number, csrf).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(rn.total_calls(), before);
    // The session was raised: the client requiring real names gets a code at once.
    let admin = admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"client_id": RN_CLIENT, "redirect_uris": [RN_REDIRECT], "grant_types": ["authorization_code"],
                      "token_endpoint_auth_method": "none", "scope": "openid", "min_level": "real_name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = authorize(&s, RN, &[("prompt", "none")], &Pkce::new()).await;
    assert!(redirect_query(&r).contains_key("code"), "{}", location(&r));
}

// HL-6.1: an account verified already (here by an admin, in person: strong, while the person
// is on the /verify page) is not asked again: the page raises the session from the record and
// the request continues; a later login starts at that level, which meets an essential acr of
// "3" (OIDC Core s5.5.1.1).
async fn verified_account_is_not_asked_again(b: Backend) {
    use tongzheng::identity::{AssuranceLevel, Verification, VerifyMethod};
    let (s, rn) = setup(b).await;
    let pkce = Pkce::new();
    let verify = to_verify(&s, &pkce).await;
    let old = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    let mut new = old.clone();
    new.verification = Some(Verification {
        level: AssuranceLevel::Strong,
        method: VerifyMethod::InPerson,
        by: "admin-cli".into(),
        at: 0,
    });
    tongzheng::users::update(&s.state.store, s.state.keys.data(), &old, &mut new).await.unwrap();
    let r = s.browser.get(s.url(&verify)).send().await.unwrap();
    let q = redirect_query(&r);
    let id = id_token_claims(&s, &q["code"], &pkce).await;
    assert_eq!((id["acr"].as_str(), id["auth_level"].as_str()), (Some("3"), Some("strong")));
    // A fresh login (prompt=login) takes the account's level from the start.
    let pkce = Pkce::new();
    let claims = r#"{"id_token":{"acr":{"essential":true,"value":"3"}}}"#;
    let r = authorize(&s, RN, &[("claims", claims), ("prompt", "login")], &pkce).await;
    let r = submit_login(&s, &location(&r), USER, PASSWORD).await;
    let q = redirect_query(&r);
    assert_eq!(id_token_claims(&s, &q["code"], &pkce).await["acr"], "3");
    assert_eq!(rn.total_calls(), 0);
}

// HL-6.1, AY-8.2.3: an application's grant names the minimum level; approval gives its client
// that level, and its users are taken through verification.
async fn application_grant_sets_the_level(b: Backend) {
    use crate::lifecycle::{application, call, office_evidence};
    use reqwest::Method as M;
    let s = TestServer::start(b).await;
    let admin = admin_token(&s).await;
    crate::support::flow::catalogue_scope(&s, &admin, "tax.read").await;
    let mut app = application("tax-rn", "office");
    app["grants"]["min_level"] = json!("real_name");
    let r = call(&s, &admin, M::POST, "/admin/v1/applications", Some(app)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let approve = json!({"reviewer": "李审核", "decision": "approve", "evidence": office_evidence()});
    let r = call(&s, &admin, M::POST, "/admin/v1/applications/tax-rn/reviews", Some(approve)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let client: Value = call(&s, &admin, M::GET, "/admin/v1/clients/tax-rn", None).await.json().await.unwrap();
    assert_eq!(client["min_level"], "real_name", "{client}");
    let redirect = client["redirect_uris"][0].as_str().unwrap().to_owned();
    let r = authorize(&s, ("tax-rn", &redirect), &[], &Pkce::new()).await;
    let r = submit_login(&s, &location(&r), USER, PASSWORD).await;
    assert!(location(&r).starts_with("/verify?req="), "{}", location(&r));
}

// GB-6.4a: a 4xx answer (here a wrong credential) is not retried: one call, audited, and the
// person told the service is unavailable.
async fn refused_call_is_not_retried(b: Backend) {
    let rn = RealName::start().await;
    let overlay = rn.overlay().replace(crate::support::realname::TOKEN, "wrong-token-0123456789");
    let s = TestServer::start_with(b, &overlay).await;
    let admin = admin_token(&s).await;
    let body = json!({"client_id": RN_CLIENT, "redirect_uris": [RN_REDIRECT], "grant_types": ["authorization_code"],
                      "token_endpoint_auth_method": "none", "scope": "openid", "min_level": "real_name"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let verify = to_verify(&s, &Pkce::new()).await;
    let r = submit_verify(&s, &verify, NAME, "110101199003071233").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rn.total_calls(), 1);
    let (events, text) = verification_events(&s).await;
    let call = events.iter().find(|e| e["detail"]["step"] == "call").expect("audited");
    assert_eq!(
        (call["detail"]["outcome"].as_str(), call["detail"]["billed"].as_bool()),
        (Some("http_401"), Some(false))
    );
    assert!(!text.contains("wrong-token-0123456789"), "the credential is never logged");
}

// GB-6.4a, HL-5.2: /verify?req= for a request that requires no level is an optional step (as
// offered after sign-up): a failure may be retried, declining continues the request, and a
// match continues it at the real-name level.
async fn optional_verification_can_be_skipped_or_retried(b: Backend) {
    let (s, rn) = setup(b).await;
    let number = "110101199003071233";
    rn.record(number, NAME);
    let web = (WEB_CLIENT, WEB_REDIRECT);
    // Two pending requests of demo-web in one browser; the second logs in (its code is issued),
    // the first is still pending, now with a session: the optional step.
    let first = location(&authorize(&s, web, &[], &Pkce::new()).await);
    let third = location(&authorize(&s, web, &[], &Pkce::new()).await);
    let second = location(&authorize(&s, web, &[], &Pkce::new()).await);
    submit_login(&s, &second, USER, PASSWORD).await;
    let verify = first.replace("/login?", "/verify?");
    let r = submit_verify(&s, &verify, "李四", number).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a mismatch shows the form again");
    // Declining continues the request at the level the session has.
    let html = s.browser.get(s.url(&verify)).send().await.unwrap().text().await.unwrap();
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "cancel".to_owned())];
    let r = s.browser.post(s.url("/verify")).form(&form).send().await.unwrap();
    let q = query(&location(&r));
    assert!(q.contains_key("code"), "declining an optional step continues: {q:?}");
    // A match continues the other pending request.
    let r = submit_verify(&s, &third.replace("/login?", "/verify?"), NAME, number).await;
    let q = query(&location(&r));
    assert!(q.contains_key("code"), "{q:?}");
    // OIDC Core s3.1.2.1: /verify never answers for the login a request asks for (prompt=login):
    // the login form first.
    s.clock.advance(5);
    let fresh = location(&authorize(&s, web, &[("prompt", "login")], &Pkce::new()).await);
    let r = s.browser.get(s.url(&fresh.replace("/login?", "/verify?"))).send().await.unwrap();
    assert_eq!(location(&r), fresh);
    let user = tongzheng::users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    assert_eq!(user.level(), tongzheng::identity::AssuranceLevel::RealName);
}
