//! The admin API (DC-8) over real HTTP: who may call it, client grants (create, read, list,
//! update, suspend, delete) and what they allow at the token endpoint (AY-7.1, AY-8.5.3.2),
//! user accounts and their logins (HL-5.3), and signing-key rotation. Every error is an
//! RFC 7807 problem document. The client and user flows run once per store backend.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{self, Pkce, location, query};
use crate::support::server::*;

per_backend!(admin_requires_admin_scope, client_grants_lifecycle, user_accounts_lifecycle);

/// Checks an RFC 7807 problem document: media type (s3), members `type`, `title`, `status`
/// (equal to the HTTP status, s3.1) and `detail`.
async fn assert_problem(r: reqwest::Response, status: StatusCode, what: &str) -> Value {
    assert_eq!(r.status(), status, "{what}");
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(ct, "application/problem+json", "{what}");
    let v: Value = r.json().await.unwrap();
    assert!(v["type"].is_string() && v["title"].is_string() && v["detail"].is_string(), "{what}: {v}");
    assert_eq!(v["status"], status.as_u16(), "{what}: {v}");
    v
}

/// A client_credentials grant for `client_id:secret`, optionally with `scope`.
async fn client_credentials(s: &TestServer, client_id: &str, secret: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    s.http.post(s.url("/token")).basic_auth(client_id, Some(secret)).form(&form).send().await.unwrap()
}

/// Introspects `token` as the admin client (which may see every client's tokens).
async fn introspect(s: &TestServer, token: &str) -> Value {
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn jwt_header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

// DC-8: the admin API takes a bearer token carrying the admin scope; RFC 6750 s3.1 statuses.
async fn admin_requires_admin_scope(b: Backend) {
    let s = TestServer::start(b).await;
    let paths = ["/admin/v1/clients", "/admin/v1/users", "/admin/v1/clients/demo-web", "/admin/v1/users/x"];
    for p in paths {
        let r = s.http.get(s.url(p)).send().await.unwrap();
        let www = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(www.starts_with("Bearer"), "{p}: {www}");
        assert_problem(r, StatusCode::UNAUTHORIZED, p).await;
        let r = s.http.get(s.url(p)).bearer_auth("garbage.token.here").send().await.unwrap();
        assert_problem(r, StatusCode::UNAUTHORIZED, p).await;
    }
    // demo-web holds api.read, not the admin scope (AY-7.1): authenticated but forbidden.
    let r = client_credentials(&s, WEB_CLIENT, WEB_SECRET, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let weak = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    for p in paths {
        let r = s.http.get(s.url(p)).bearer_auth(&weak).send().await.unwrap();
        assert_problem(r, StatusCode::FORBIDDEN, p).await;
    }
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&weak)
        .json(&json!({"client_id": "sneaky", "grant_types": ["client_credentials"], "scope": "tongzheng:admin"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "create with a weak token").await;
    let r = s.http.post(s.url("/admin/v1/keys/rotate")).bearer_auth(&weak).send().await.unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "rotate with a weak token").await;
    // A user's token with the same client is no better.
    let (code, pkce) = flow::web_code(&s, "openid profile").await;
    let (status, t) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK);
    let r = s.http.get(s.url("/admin/v1/users")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "user token").await;
    // The admin token works.
    let admin = flow::admin_token(&s).await;
    let r = s.http.get(s.url("/admin/v1/clients")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

// RFC 6750 s3: a protected resource answers a token that "does not enable access" with a
// WWW-Authenticate challenge (MUST), naming the error (s3.1: invalid_token on 401 SHOULD,
// insufficient_scope on 403). The admin API is such a resource (DC-8).
#[tokio::test]
async fn admin_errors_carry_rfc6750_challenges() {
    let s = TestServer::start(Backend::Memory).await;
    let url = s.url("/admin/v1/clients");
    let r = s.http.get(&url).bearer_auth("garbage").send().await.unwrap();
    let www = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_problem(r, StatusCode::UNAUTHORIZED, "garbage token").await;
    let mut wrong = Vec::new();
    if !(www.starts_with("Bearer") && www.contains("error=\"invalid_token\"")) {
        wrong.push(format!("401 for a garbage token: WWW-Authenticate {www:?}"));
    }
    let r = client_credentials(&s, WEB_CLIENT, WEB_SECRET, None).await;
    let weak = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = s.http.get(&url).bearer_auth(&weak).send().await.unwrap();
    let www = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_problem(r, StatusCode::FORBIDDEN, "weak token").await;
    if !(www.starts_with("Bearer") && www.contains("error=\"insufficient_scope\"")) {
        wrong.push(format!("403 for a token without the admin scope: WWW-Authenticate {www:?}"));
    }
    assert!(wrong.is_empty(), "RFC 6750 s3 challenges missing:\n{}", wrong.join("\n"));
}

// DC-8, AY-8.2 (allocate a grant), AY-7.1 (least privilege), AY-8.5.3.2 (suspend at once),
// AY-8.6.3 (offline revokes the grant).
async fn client_grants_lifecycle(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    flow::catalogue_scope(&s, &admin, "api.write").await;
    let url = s.url("/admin/v1/clients");
    let one = s.url("/admin/v1/clients/tax-sync");
    let body = json!({
        "client_id": "tax-sync",
        "client_name": "税务数据同步",
        "grant_types": ["client_credentials"],
        "scope": "api.read",
    });
    let r = s.http.post(&url).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["client_id"], "tax-sync");
    assert_eq!(created["client_name"], "税务数据同步");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["grant_types"], json!(["client_credentials"]));
    // Admin-created clients sign ID tokens with ES256 unless told otherwise.
    assert_eq!(created["id_token_signed_response_alg"], "ES256");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "{secret}");
    // Duplicate client_id: 409.
    let r = s.http.post(&url).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_problem(r, StatusCode::CONFLICT, "duplicate client_id").await;
    // The secret is shown once: never in a read or a list.
    let r = s.http.get(&one).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = r.json().await.unwrap();
    assert!(got.get("client_secret").is_none(), "{got}");
    assert!(!got.to_string().contains(&secret));
    assert_eq!(got["scope"], "api.read");
    let list: Value = s.http.get(&url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let clients = list["clients"].as_array().unwrap();
    assert!(clients.iter().any(|c| c["client_id"] == "tax-sync"), "{list}");
    assert!(clients.iter().any(|c| c["client_id"] == WEB_CLIENT), "seed clients are listed");
    assert!(!list.to_string().contains(&secret) && !list.to_string().contains("client_secret\""), "{list}");
    let r = s.http.get(s.url("/admin/v1/clients/no-such-client")).bearer_auth(&admin).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "unknown client").await;

    // AY-7.2a: the grant gets a token with its lifetime; AY-7.1: only granted scopes.
    let r = client_credentials(&s, "tax-sync", &secret, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "api.read");
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["expires_in"].as_i64().is_some_and(|e| e > 0));
    let live = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&s, &live).await["active"], true);
    // RFC 6749 s5.2: a scope the client was not granted is invalid_scope.
    for scope in ["api.write", "api.read api.write", "tongzheng:admin", "openid"] {
        let r = client_credentials(&s, "tax-sync", &secret, Some(scope)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{scope}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope", "{scope}");
    }
    // A wrong secret is invalid_client (RFC 6749 s5.2).
    let r = client_credentials(&s, "tax-sync", "wrong-secret", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");

    // Update: grant api.write too.
    let r = s
        .http
        .put(&one)
        .bearer_auth(&admin)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read api.write", "client_name": "税务数据同步"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["scope"], "api.read api.write");
    assert!(updated.get("client_secret").is_none());
    let r = client_credentials(&s, "tax-sync", &secret, Some("api.write")).await;
    assert_eq!(r.status(), StatusCode::OK, "the secret survives an update");
    // The client_id cannot change; an unknown client cannot be updated; bad metadata is a 400.
    let r = s
        .http
        .put(&one)
        .bearer_auth(&admin)
        .json(&json!({"client_id": "other-id", "grant_types": ["client_credentials"], "scope": "api.read"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "changed client_id").await;
    let r = s
        .http
        .put(s.url("/admin/v1/clients/no-such-client"))
        .bearer_auth(&admin)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "update unknown").await;
    let r = s.http.put(&one).bearer_auth(&admin).json(&json!({"grant_types": ["password"]})).send().await.unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "bad grant type").await;

    // AY-8.5.3.2: suspending takes effect at once: live tokens go inactive, no new tokens.
    let r = s
        .http
        .put(&one)
        .bearer_auth(&admin)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read api.write", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["enabled"], false);
    assert_eq!(introspect(&s, &live).await["active"], false, "RFC 7662 s2.2: a suspended client's token");
    let r = client_credentials(&s, "tax-sync", &secret, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // The suspension persists across an update that does not mention `enabled`.
    let r = s
        .http
        .put(&one)
        .bearer_auth(&admin)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["enabled"], false);
    assert_eq!(client_credentials(&s, "tax-sync", &secret, None).await.status(), StatusCode::UNAUTHORIZED);

    // AY-8.6.3: delete -> 204, then 404; the grant's secret and tokens are dead.
    let r = s.http.delete(&one).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.http.get(&one).bearer_auth(&admin).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "deleted client").await;
    let r = s.http.delete(&one).bearer_auth(&admin).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "delete twice").await;
    assert_eq!(client_credentials(&s, "tax-sync", &secret, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(introspect(&s, &live).await["active"], false);
    let list: Value = s.http.get(&url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(!list["clients"].as_array().unwrap().iter().any(|c| c["client_id"] == "tax-sync"));
}

// DC-8 + DC-1: an admin-created website client runs the code flow without a consent page and
// gets ES256 ID tokens by default.
#[tokio::test]
async fn admin_created_web_client_code_flow() {
    let s = TestServer::start(Backend::Memory).await;
    let admin = flow::admin_token(&s).await;
    let redirect = "http://127.0.0.1:9200/cb";
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"client_id": "portal-web", "redirect_uris": [redirect], "scope": "openid profile"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let secret = r.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let q = flow::login_for_code(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", "portal-web"),
            ("redirect_uri", redirect),
            ("scope", "openid profile"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth("portal-web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(jwt_header(t["id_token"].as_str().unwrap())["alg"], "ES256");
    let at = t["access_token"].as_str().unwrap().to_owned();

    // AY-8.5.3.2: suspending the website takes effect at once, wherever its users are.
    let code_params = [
        ("response_type", "code"),
        ("client_id", "portal-web"),
        ("redirect_uri", redirect),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let q = flow::login_for_code(&s, &code_params).await;
    let unredeemed = q.get("code").cloned().unwrap_or_else(|| panic!("no code: {q:?}"));
    let mut relogin = code_params.to_vec();
    relogin.push(("prompt", "login"));
    let r = flow::authorize(&s, &relogin).await;
    let pending_login = location(&r);
    assert!(pending_login.starts_with("/login?req="), "{pending_login}");
    let r = s
        .http
        .put(s.url("/admin/v1/clients/portal-web"))
        .bearer_auth(&admin)
        .json(&json!({"redirect_uris": [redirect], "scope": "openid profile", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Its tokens stop working...
    assert_eq!(introspect(&s, &at).await["active"], false);
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // ...a code it already holds cannot be redeemed (its authentication fails)...
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth("portal-web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", unredeemed.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // ...a login already under way ends on an error page, not at the client...
    let r = flow::submit_login(&s, &pending_login, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty(), "{}", location(&r));
    // ...and new requests are refused without a redirect (RFC 6749 s4.1.2.1).
    let r = flow::authorize(&s, &code_params).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty(), "{}", location(&r));
}

// SH-8.2: phone numbers are sensitive: never stored in plain text, masked when shown.
#[tokio::test]
async fn phone_numbers_are_protected() {
    let s = TestServer::start(Backend::Memory).await;
    let admin = flow::admin_token(&s).await;
    let phone = "+86 139 8765 4321";
    let r = s
        .http
        .post(s.url("/admin/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "zhao.liu", "password": "zhao-liu-password", "phone_number": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let got: Value = s
        .http
        .get(s.url(&format!("/admin/v1/users/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list: Value =
        s.http.get(s.url("/admin/v1/users")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let stored = s.state.store.get(&tongzheng::store::keys::user(&id)).await.unwrap().unwrap();
    let mut wrong = Vec::new();
    for (what, text) in [
        ("create response", created.to_string()),
        ("read response", got.to_string()),
        ("list response", list.to_string()),
        ("stored record", String::from_utf8_lossy(&stored).into_owned()),
    ] {
        if text.contains(phone) || text.contains("87654321") {
            wrong.push(format!("{what}: {text}"));
        }
    }
    assert!(wrong.is_empty(), "the phone number appears in plain text:\n{}", wrong.join("\n"));
}

// DC-8, HL-5.1, HL-5.3: accounts created through the API log in; a disabled account cannot,
// and its live logins end (AY-8.5.3.2 in spirit); deleted accounts are gone.
async fn user_accounts_lifecycle(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let url = s.url("/admin/v1/users");
    let password = "li-si-password-2025";
    // Validation: weak password, missing fields, bad username, unknown members.
    for (body, what) in [
        (json!({"username": "li.si", "password": "short"}), "weak password"),
        (json!({"username": "li.si"}), "no password"),
        (json!({"password": password}), "no username"),
        (json!({"username": "li si/..", "password": password}), "bad username"),
        (json!({"username": "li.si", "password": password, "is_admin": true}), "unknown member"),
    ] {
        let r = s.http.post(&url).bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_problem(r, StatusCode::BAD_REQUEST, what).await;
    }
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"username": "li.si", "password": password, "name": "李四", "email": "lisi@example.gov.cn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let u: Value = r.json().await.unwrap();
    let text = u.to_string();
    // SH-8.2, GB-6.8b: neither the password nor its hash ever leaves the server.
    assert!(u.get("password").is_none() && u.get("password_hash").is_none(), "{u}");
    assert!(!text.contains(password) && !text.contains("$argon2"), "{u}");
    assert_eq!(u["username"], "li.si");
    assert_eq!(u["enabled"], true);
    let id = u["id"].as_str().unwrap().to_owned();
    let one = s.url(&format!("/admin/v1/users/{id}"));
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"username": "li.si", "password": password}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "duplicate username").await;
    let got: Value = s.http.get(&one).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["id"], id.as_str());
    assert!(!got.to_string().contains("$argon2"));
    let list: Value = s.http.get(&url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(list["users"].as_array().unwrap().iter().any(|x| x["id"] == id.as_str()), "{list}");
    assert!(!list.to_string().contains("$argon2"));
    let r = s.http.get(s.url("/admin/v1/users/no-such-user")).bearer_auth(&admin).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "unknown user").await;

    // HL-5.3: the new account logs in through the login page and gets a code.
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid profile"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = flow::authorize(&s, &params).await;
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "{login}");
    let r = flow::submit_login(&s, &login, "li.si", "wrong-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a wrong password keeps the form");
    let r = flow::submit_login(&s, &login, "li.si", password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query(&location(&r));
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    let (status, t) = flow::redeem(&s, code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], id.as_str());
    assert_eq!(info["preferred_username"], "li.si");
    assert_eq!(info["name"], "李四");

    // Disable: the account's tokens stop working, its SSO session ends, and login fails.
    let r = s.http.put(&one).bearer_auth(&admin).json(&json!({"enabled": false})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["enabled"], false);
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "RFC 6750 s3.1: the token is no longer valid");
    let r = flow::authorize(&s, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "the SSO session ended: {login}");
    let r = flow::submit_login(&s, &login, "li.si", password).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a disabled account cannot log in");
    assert!(location(&r).is_empty());
    // Re-enabled, it logs in again.
    let r = s.http.put(&one).bearer_auth(&admin).json(&json!({"enabled": true})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = flow::submit_login(&s, &login, "li.si", password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(query(&location(&r)).contains_key("code"));
    // A password reset: the old password stops working and the live SSO session ends.
    let new_password = "li-si-new-password-2026";
    let r = s.http.put(&one).bearer_auth(&admin).json(&json!({"password": "short"})).send().await.unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "weak new password").await;
    let r = s.http.put(&one).bearer_auth(&admin).json(&json!({"password": new_password})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.text().await.unwrap().contains("$argon2"));
    let r = flow::authorize(&s, &params).await;
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "the SSO session ended: {login}");
    let r = flow::submit_login(&s, &login, "li.si", password).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the old password");
    let r = flow::submit_login(&s, &login, "li.si", new_password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the new password");
    let password = new_password;
    // The username cannot be changed.
    let r = s.http.put(&one).bearer_auth(&admin).json(&json!({"username": "li.si.2"})).send().await.unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "renaming").await;

    // Delete: 204, then 404; the username is free again.
    let r = s.http.delete(&one).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.http.get(&one).bearer_auth(&admin).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "deleted user").await;
    let r = s.http.delete(&one).bearer_auth(&admin).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "delete twice").await;
    let mut again = params.to_vec();
    again.push(("prompt", "login"));
    let r = flow::authorize(&s, &again).await;
    let r = flow::submit_login(&s, &location(&r), "li.si", password).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a deleted account cannot log in");
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"username": "li.si", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "the username of a deleted account can be reused");
    assert_ne!(r.json::<Value>().await.unwrap()["id"], id.as_str(), "a new account, a new subject");
}

// RFC 7517 s5, DC-8: rotation publishes new keys next to the old ones, so tokens signed before
// it still validate (AY-7.2b) while new tokens use the new keys. The key set is not in the
// store, so this runs once.
#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid() {
    let s = TestServer::start(Backend::Memory).await;
    let admin = flow::admin_token(&s).await;
    let (code, pkce) = flow::web_code(&s, "openid profile").await;
    let (status, t) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK);
    let user_at = t["access_token"].as_str().unwrap().to_owned();
    let old_id_token = t["id_token"].as_str().unwrap().to_owned();
    let kids_of = |jwks: &Value| -> Vec<String> {
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    };
    let before = kids_of(&s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap());
    // Rotation is an admin operation.
    let r = s.http.post(s.url("/admin/v1/keys/rotate")).send().await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "rotate without a token").await;
    let r = s.http.post(s.url("/admin/v1/keys/rotate")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new_kids: Vec<String> = r.json::<Value>().await.unwrap()["active_kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert!(!new_kids.is_empty());
    assert!(new_kids.iter().all(|k| !before.contains(k)), "new kids {new_kids:?} vs {before:?}");
    let after = kids_of(&s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap());
    for k in before.iter().chain(&new_kids) {
        assert!(after.contains(k), "{k} missing from {after:?}");
    }
    // Tokens signed before the rotation still validate at /userinfo and /introspect.
    assert!(!new_kids.iter().any(|k| jwt_header(&user_at)["kid"] == k.as_str()));
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&user_at).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(introspect(&s, &user_at).await["active"], true);
    assert_eq!(introspect(&s, &admin).await["active"], true);
    let r = s.http.get(s.url("/admin/v1/clients")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the admin token from before the rotation still works");
    // The old ID token's key is still published (a relying party can verify it).
    assert!(after.iter().any(|k| jwt_header(&old_id_token)["kid"] == k.as_str()));
    // New tokens use the new keys.
    let fresh = flow::admin_token(&s).await;
    assert!(new_kids.iter().any(|k| jwt_header(&fresh)["kid"] == k.as_str()), "{}", jwt_header(&fresh));
}
