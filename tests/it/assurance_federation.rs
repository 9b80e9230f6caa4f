//! Assurance levels across platforms (HL-6.1, GB-6.4a, GB-6.4c): a login arriving from a
//! trusted upstream below what this platform accepts from it, or below what a client requires,
//! continues here (this platform's login form, or its `/verify`) instead of ending on an error
//! page; `prompt=none` gets its error at the client's redirect URI (OIDC Core s3.1.2.6).

use reqwest::StatusCode;
use serde_json::json;

use crate::federation::{Landed, authorize_url, browser, rp, submit, trust, upstream_link, walk};
use crate::support::flow::{admin_token, hidden, location, query};
use crate::support::server::*;

per_backend!(upstream_below_level_offers_local_login, upstream_login_below_client_level_verifies_here);

// HL-6.1, GB-6.4c; OIDC Core s3.1.2.6: a login arriving from a trusted upstream below the level
// this platform accepts from it (the trust's min_acr) is not a dead end (it used to be a 403 at
// /federation/callback on every try for as long as the upstream session lived): the person is
// offered this platform's own login; prompt=none gets login_required at the redirect URI.
async fn upstream_below_level_offers_local_login(b: Backend) {
    let ips = if b == Backend::Memory { ("127.0.0.41", "127.0.0.42") } else { ("127.0.0.43", "127.0.0.44") };
    let province = TestServer::start_platform(b, ips.0, "").await;
    let city = TestServer::start_platform(b, ips.1, "").await;
    trust(&province, "province", &city, "city").await;
    // The city accepts the province's logins from the real-name level up; the province's demo
    // user is registered (acr "1").
    let admin = admin_token(&city).await;
    let r = city
        .http
        .put(city.url("/admin/v1/trusts/province"))
        .bearer_auth(&admin)
        .json(&json!({"role": "upstream", "issuer": province.base, "name": "province", "client_id": "city-platform",
                      "create_accounts": true, "min_acr": "2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rx = crate::support::receiver::Receivers::start().await;
    rp(&city, "city", &rx).await;
    let browser = browser();
    let (landed, _) = walk(&browser, &authorize_url(&city, "city", &[])).await;
    let Landed::Form { url, html } = landed else { panic!("expected the city's form") };
    let (landed, _) = walk(&browser, &upstream_link(&url, &html)).await;
    let Landed::Form { url, html } = landed else { panic!("expected the province's form") };
    assert!(url.starts_with(&province.base), "{url}");
    // The login at the province is below the city's floor: back at the city's own login form.
    let (landed, hops) = submit(&browser, &url, &html).await;
    let Landed::Form { url, html } = landed else { panic!("expected the city's form again: {hops:#?}") };
    assert!(url.starts_with(&city.base) && url.contains("upstream=failed"), "{url}");
    // With the province's session alive, the next request tries silently, and again lands on the
    // city's form rather than an error page.
    let (landed, hops) = walk(&browser, &authorize_url(&city, "city", &[])).await;
    assert!(hops.iter().any(|h| h.starts_with(&province.base)), "the silent try went upstream: {hops:#?}");
    assert!(matches!(landed, Landed::Form { ref url, .. } if url.starts_with(&city.base)), "{landed:?}");
    // prompt=none: the error at the client's redirect URI.
    let (landed, hops) = walk(&browser, &authorize_url(&city, "city", &[("prompt", "none")])).await;
    let Landed::Rp(q) = landed else { panic!("expected the RP: {hops:#?}") };
    assert_eq!(q.get("error").map(String::as_str), Some("login_required"), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some("city"));
    // This platform's own login works from the form it offered: straight back to the RP.
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("username", USER.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let r = browser.post(city.url("/login")).form(&form).send().await.unwrap();
    let q = query(&location(&r));
    assert!(q.contains_key("code"), "{q:?} at {url}");
}

// HL-6.1, GB-6.4a, GB-6.4c: a login from a trusted upstream that meets the trust but not the
// client's level continues at this platform's /verify (built-in verifier here), then the client
// gets its code at the real-name level.
async fn upstream_login_below_client_level_verifies_here(b: Backend) {
    let ips = if b == Backend::Memory { ("127.0.0.45", "127.0.0.46") } else { ("127.0.0.47", "127.0.0.48") };
    let province = TestServer::start_platform(b, ips.0, "").await;
    let city = TestServer::start_platform(b, ips.1, "").await;
    trust(&province, "province", &city, "city").await;
    let admin = admin_token(&city).await;
    let r = city
        .http
        .post(city.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"client_id": "web-rp", "redirect_uris": ["http://127.0.0.1:9400/city/cb"],
                      "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none",
                      "scope": "openid profile", "min_level": "real_name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let browser = browser();
    let (landed, _) = walk(&browser, &authorize_url(&city, "city", &[])).await;
    let Landed::Form { url, html } = landed else { panic!("expected the city's form") };
    let (landed, _) = walk(&browser, &upstream_link(&url, &html)).await;
    let Landed::Form { url, html } = landed else { panic!("expected the province's form") };
    let (landed, hops) = submit(&browser, &url, &html).await;
    let Landed::Form { url, html } = landed else { panic!("expected the city's verification page: {hops:#?}") };
    assert!(url.starts_with(&city.base) && url.contains("/verify?req="), "{url}");
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("name", "张三".to_owned()),
        ("id_type", "resident_id_card".to_owned()),
        ("id_number", "440305198512121110".to_owned()),
    ];
    let r = browser.post(city.url("/verify")).form(&form).send().await.unwrap();
    let q = query(&location(&r));
    assert!(q.contains_key("code"), "{q:?}");
}
