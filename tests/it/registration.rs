//! Dynamic client registration (RFC 7591) guarded by the initial access token, and the client
//! configuration endpoint (RFC 7592) guarded by the registration access token: metadata
//! validation and defaults, read/update/delete, and a registered client's code flow through the
//! consent page. The main flows run once per store backend.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::*;

per_backend!(register_read_update_delete, registered_client_code_flow);

/// The RFC 7591 initial access token of config/dev.toml.
const INITIAL_TOKEN: &str = "dev-initial-access-token-change-me";
/// A loopback redirect URI (http is allowed on loopback in dev mode).
const RP_REDIRECT: &str = "http://127.0.0.1:9100/cb";
/// A second loopback redirect URI, for updates.
const RP_REDIRECT_2: &str = "http://127.0.0.1:9100/cb2";

/// POST /register with `body` and, when given, `Authorization: Bearer <token>`.
async fn register(s: &TestServer, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = s.http.post(s.url("/register")).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// Registers `body` with the initial access token; asserts 201 and returns the response JSON.
async fn registered(s: &TestServer, body: &Value) -> Value {
    let r = register(s, Some(INITIAL_TOKEN), body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "register {body}");
    r.json().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The decoded JOSE header of a compact JWS (RFC 7515 s7.1: BASE64URL(header)).
fn jwt_header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Authenticates `client_id:secret` at /introspect (any authenticated client may call it):
/// the status tells whether the secret is (still) accepted.
async fn secret_works(s: &TestServer, client_id: &str, secret: &str) -> bool {
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .unwrap();
    match r.status() {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("introspect answered {other}"),
    }
}

// RFC 7591 s3.1, s3.2.1; RFC 7592 s2.1-s2.3; DC-8, AY-8.2.
async fn register_read_update_delete(b: Backend) {
    let s = TestServer::start(b).await;
    let r =
        register(&s, Some(INITIAL_TOKEN), &json!({"redirect_uris": [RP_REDIRECT], "client_name": "区政务网 RP"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(header(&r, "content-type").starts_with("application/json"));
    // RFC 7591 s3.2.1: the response carries credentials, so it must not be cached.
    assert_eq!(header(&r, "cache-control"), "no-store");
    let c: Value = r.json().await.unwrap();
    // RFC 7591 s3.2.1: client_id, client_secret with client_secret_expires_at (0 = never),
    // client_id_issued_at; RFC 7592 s3: registration_access_token and registration_client_uri.
    let id = c["client_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "a high-entropy secret: {secret}");
    assert_eq!(c["client_secret_expires_at"], 0);
    assert_eq!(c["client_id_issued_at"].as_i64(), Some(s.clock.now()));
    let rat = c["registration_access_token"].as_str().unwrap().to_owned();
    assert!(!rat.is_empty() && rat != secret);
    let uri = c["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, s.url(&format!("/register/{id}")));
    // RFC 7591 s2 defaults: grant_types [authorization_code], response_types [code],
    // client_secret_basic; OIDC Registration s2: id_token_signed_response_alg RS256.
    assert_eq!(c["grant_types"], json!(["authorization_code"]));
    assert_eq!(c["response_types"], json!(["code"]));
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["id_token_signed_response_alg"], "RS256");
    assert_eq!(c["redirect_uris"], json!([RP_REDIRECT]));
    assert_eq!(c["client_name"], "区政务网 RP");
    assert!(secret_works(&s, &id, &secret).await);

    // RFC 7592 s2.1: read with the registration access token.
    let r = s.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["client_id"], id.as_str());
    assert_eq!(got["redirect_uris"], json!([RP_REDIRECT]));
    assert_eq!(got["id_token_signed_response_alg"], "RS256");
    assert_eq!(got["registration_client_uri"], uri.as_str());
    // RFC 7592 s2.1: a bad token is an RFC 6750 error: 401 with a Bearer challenge.
    for bad in ["wrong-token", INITIAL_TOKEN, secret.as_str()] {
        let r = s.http.get(&uri).bearer_auth(bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(header(&r, "www-authenticate").contains("error=\"invalid_token\""), "{bad}");
    }
    let r = s.http.get(&uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").starts_with("Bearer"));
    // Another client's URI with this client's token: 401, not whether it exists (RFC 7592 s2.1).
    let r = s.http.get(s.url(&format!("/register/{WEB_CLIENT}"))).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // RFC 7592 s2.2: the update must name the client_id, and it must be this client's.
    let r = s.http.put(&uri).bearer_auth(&rat).json(&json!({"redirect_uris": [RP_REDIRECT_2]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "client_id is required in the body");
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = s
        .http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&json!({"client_id": WEB_CLIENT, "redirect_uris": [RP_REDIRECT_2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "client_id must match");
    // RFC 7592 s2.2 + RFC 7591 s3.2.2: invalid metadata in an update is named.
    let r = s
        .http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&json!({"client_id": id, "redirect_uris": ["https://rp.example/cb#frag"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_redirect_uri");
    // AY-7.1: an update cannot escalate to scopes self-registration may not ask for, nor
    // switch between secret and public authentication.
    for (body, want) in [
        (
            json!({"client_id": id, "redirect_uris": [RP_REDIRECT], "scope": "openid tongzheng:admin"}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "redirect_uris": [RP_REDIRECT], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "redirect_uris": [RP_REDIRECT], "grant_types": ["client_credentials"], "scope": "api.read"}),
            "invalid_client_metadata",
        ),
    ] {
        let r = s.http.put(&uri).bearer_auth(&rat).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], want, "{body}");
    }
    let r = s
        .http
        .put(&uri)
        .bearer_auth("wrong-token")
        .json(&json!({"client_id": id, "redirect_uris": [RP_REDIRECT_2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&json!({"client_id": id, "redirect_uris": [RP_REDIRECT_2], "client_name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["redirect_uris"], json!([RP_REDIRECT_2]));
    assert_eq!(updated["client_name"], "renamed");
    let mut got: Value = s.http.get(&uri).bearer_auth(&rat).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["redirect_uris"], json!([RP_REDIRECT_2]));
    // RFC 7592 s2.2: the usual update sends back everything a read returned, changed in place.
    got["redirect_uris"] = json!([RP_REDIRECT_2, RP_REDIRECT]);
    let r = s.http.put(&uri).bearer_auth(&rat).json(&got).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["redirect_uris"], json!([RP_REDIRECT_2, RP_REDIRECT]));
    let r = s
        .http
        .put(&uri)
        .bearer_auth(&rat)
        .json(&json!({"client_id": id, "redirect_uris": [RP_REDIRECT_2], "client_name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The secret survives an update, and the old redirect URI is no longer accepted.
    assert!(secret_works(&s, &id, &secret).await);
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", id.as_str()), ("redirect_uri", RP_REDIRECT), ("scope", "openid")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty());

    // RFC 7592 s2.3: delete -> 204; the client and its registration access token are gone.
    let r = s.http.delete(&uri).bearer_auth("wrong-token").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s.http.delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").starts_with("Bearer"));
    let r = s.http.delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!secret_works(&s, &id, &secret).await, "a deleted client cannot authenticate");
}

// RFC 7591 s3: the endpoint is protected by the initial access token (RFC 6750 errors).
#[tokio::test]
async fn initial_access_token_required() {
    let s = TestServer::start(Backend::Memory).await;
    let body = json!({"redirect_uris": [RP_REDIRECT]});
    // RFC 6750 s3.1: no credentials -> 401 with a bare challenge, no error code.
    let r = register(&s, None, &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let h = header(&r, "www-authenticate");
    assert!(h.starts_with("Bearer") && h.contains("realm=") && !h.contains("error="), "{h}");
    // A wrong token -> 401 invalid_token.
    let r = register(&s, Some("not-the-initial-access-token"), &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").contains("error=\"invalid_token\""));
    // The token must travel as a Bearer token, not as Basic credentials.
    let r = s.http.post(s.url("/register")).basic_auth(INITIAL_TOKEN, Some("")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").starts_with("Bearer"));
    // A client access token is not an initial access token either.
    let admin = flow::admin_token(&s).await;
    let r = register(&s, Some(&admin), &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // RFC 7591 s3.1: the body is JSON.
    let r = s
        .http
        .post(s.url("/register"))
        .bearer_auth(INITIAL_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("redirect_uris={RP_REDIRECT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // RFC 8414 s2: discovery names the registration endpoint while registration is enabled.
    let d: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["registration_endpoint"], s.url("/register"));
}

// RFC 7591 s3: with no initial access token configured, registration is closed and not advertised.
#[tokio::test]
async fn registration_can_be_disabled() {
    let s = TestServer::start_with(Backend::Memory, "[security]\ninitial_access_token = \"\"\n").await;
    let r = register(&s, Some(INITIAL_TOKEN), &json!({"redirect_uris": [RP_REDIRECT]})).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let d: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(d.get("registration_endpoint").is_none(), "{d}");
}

// RFC 7591 s3.2.2: invalid metadata is refused with the code naming the problem; DC-8, AY-7.1.
#[tokio::test]
async fn invalid_metadata_is_named() {
    let s = TestServer::start(Backend::Memory).await;
    let ok = [RP_REDIRECT];
    let cases: Vec<(&str, Value, &str)> = vec![
        ("http on a non-loopback host", json!({"redirect_uris": ["http://rp.example/cb"]}), "invalid_redirect_uri"),
        ("fragment (RFC 6749 s3.1.2)", json!({"redirect_uris": ["https://rp.example/cb#x"]}), "invalid_redirect_uri"),
        ("relative URI", json!({"redirect_uris": ["/cb"]}), "invalid_redirect_uri"),
        ("custom scheme that is not https", json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
        ("no redirect_uris for the code grant", json!({"client_name": "x"}), "invalid_redirect_uri"),
        ("unknown grant type", json!({"redirect_uris": ok, "grant_types": ["password"]}), "invalid_client_metadata"),
        ("implicit grant", json!({"redirect_uris": ok, "grant_types": ["implicit"]}), "invalid_client_metadata"),
        ("token response type", json!({"redirect_uris": ok, "response_types": ["token"]}), "invalid_client_metadata"),
        (
            "jwks and jwks_uri both (RFC 7591 s2)",
            json!({"redirect_uris": ok, "jwks": {"keys": []}, "jwks_uri": "https://rp.example/jwks"}),
            "invalid_client_metadata",
        ),
        (
            "private_key_jwt without keys",
            json!({"redirect_uris": ok, "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            "unknown auth method",
            json!({"redirect_uris": ok, "token_endpoint_auth_method": "tls_client_auth"}),
            "invalid_client_metadata",
        ),
        (
            "public client with client_credentials",
            json!({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            "admin scope self-requested (AY-7.1)",
            json!({"redirect_uris": ok, "scope": "openid tongzheng:admin"}),
            "invalid_client_metadata",
        ),
        ("business scope self-requested", json!({"redirect_uris": ok, "scope": "api.read"}), "invalid_client_metadata"),
        (
            "unsigned ID tokens (OIDC Registration s2)",
            json!({"redirect_uris": ok, "id_token_signed_response_alg": "none"}),
            "invalid_client_metadata",
        ),
        (
            "HS256 ID tokens",
            json!({"redirect_uris": ok, "id_token_signed_response_alg": "HS256"}),
            "invalid_client_metadata",
        ),
        ("redirect_uris not an array", json!({"redirect_uris": RP_REDIRECT}), "invalid_client_metadata"),
        ("not an object", json!(["redirect_uris"]), "invalid_client_metadata"),
    ];
    for (name, body, want) in cases {
        let r = register(&s, Some(INITIAL_TOKEN), &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(header(&r, "content-type").starts_with("application/json"), "{name}");
        assert_eq!(header(&r, "cache-control"), "no-store", "{name}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], want, "{name}: {v}");
        assert!(v["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{name}: {v}");
    }
    // Malformed JSON is invalid client metadata too.
    let r = s
        .http
        .post(s.url("/register"))
        .bearer_auth(INITIAL_TOKEN)
        .header("content-type", "application/json")
        .body("{\"redirect_uris\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    // A public client (RFC 7591 s2: "none") gets no secret and no secret expiry (s3.2.1).
    let c = registered(&s, &json!({"redirect_uris": [RP_REDIRECT], "token_endpoint_auth_method": "none"})).await;
    assert!(c.get("client_secret").is_none(), "{c}");
    assert!(c.get("client_secret_expires_at").is_none(), "{c}");
    assert!(c["registration_access_token"].is_string());
    // Unknown members are ignored (RFC 7591 s2), and an explicit alg is kept.
    let c = registered(
        &s,
        &json!({"redirect_uris": [RP_REDIRECT], "logo_uri": "https://rp.example/logo.png", "id_token_signed_response_alg": "ES256"}),
    )
    .await;
    assert_eq!(c["id_token_signed_response_alg"], "ES256");
}

// RFC 7592 s3: every client information response, including the one from a read, carries
// registration_access_token and registration_client_uri (both REQUIRED).
#[tokio::test]
async fn configuration_read_carries_management_fields() {
    let s = TestServer::start(Backend::Memory).await;
    let c = registered(&s, &json!({"redirect_uris": [RP_REDIRECT]})).await;
    let uri = c["registration_client_uri"].as_str().unwrap();
    let rat = c["registration_access_token"].as_str().unwrap();
    let got: Value = s.http.get(uri).bearer_auth(rat).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["registration_client_uri"], uri);
    // The server may rotate the token here (RFC 7592 s3); whatever it returns must work.
    let current = got["registration_access_token"].as_str().unwrap_or_else(|| panic!("RFC 7592 s3: {got}"));
    assert_eq!(s.http.get(uri).bearer_auth(current).send().await.unwrap().status(), StatusCode::OK);
}

// HL-5.3, SH-8.2: a self-registered client needs the user's consent (deny -> access_denied,
// allow -> code, remembered); its ID tokens are RS256 (OIDC Registration s2 default).
async fn registered_client_code_flow(b: Backend) {
    let s = TestServer::start(b).await;
    let c = registered(&s, &json!({"redirect_uris": [RP_REDIRECT], "scope": "openid profile"})).await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", RP_REDIRECT),
        ("scope", "openid profile"),
        ("state", "rp-state"),
        ("nonce", "rp-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // Login first, then the consent page (not a redirect).
    let r = flow::authorize(&s, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "{login}");
    let r = flow::submit_login(&s, &login, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "consent page after login");
    assert!(location(&r).is_empty());
    let html = r.text().await.unwrap();
    assert!(html.contains("action=\"/consent\""), "{html}");
    assert!(html.contains("name=\"decision\" value=\"allow\""), "{html}");
    assert!(html.contains("name=\"decision\" value=\"deny\""), "{html}");
    // SH-8.2: the scopes as the catalogue describes them, not their raw names.
    assert!(html.contains("<li data-scope=\"profile\">您的姓名和用户名</li>"), "the page lists the scopes: {html}");
    let (req, csrf) = (hidden(&html, "req"), hidden(&html, "csrf"));
    // Deny: RFC 6749 s4.1.2.1 access_denied, with state and iss (RFC 9207 s2).
    let r = s
        .browser
        .post(s.url("/consent"))
        .form(&[("req", req.as_str()), ("csrf", csrf.as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(RP_REDIRECT), "{loc}");
    let q = query(&loc);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"), "{q:?}");
    assert_eq!(q["state"], "rp-state");
    assert_eq!(q["iss"], s.base);
    assert!(!q.contains_key("code"));
    // The answered request cannot be answered again.
    let r = s
        .browser
        .post(s.url("/consent"))
        .form(&[("req", req.as_str()), ("csrf", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty());
    // Logged in now: the consent page comes at once. A forged CSRF token is refused.
    let r = flow::authorize(&s, &params).await;
    assert_eq!(r.status(), StatusCode::OK, "consent page for a logged-in user");
    let html = r.text().await.unwrap();
    let (req, csrf) = (hidden(&html, "req"), hidden(&html, "csrf"));
    let r = s
        .browser
        .post(s.url("/consent"))
        .form(&[("req", req.as_str()), ("csrf", "forged"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(location(&r).is_empty());
    // Allow: a code, with state and iss.
    let r = s
        .browser
        .post(s.url("/consent"))
        .form(&[("req", req.as_str()), ("csrf", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(RP_REDIRECT), "{loc}");
    let q = query(&loc);
    assert_eq!(q["state"], "rp-state");
    assert_eq!(q["iss"], s.base);
    let code = q.get("code").unwrap_or_else(|| panic!("no code: {q:?}"));
    // The registered secret redeems it; the ID token is RS256 and its key is published.
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert!(t.get("refresh_token").is_none(), "the client did not register the refresh_token grant");
    let id_token = t["id_token"].as_str().unwrap();
    let h = jwt_header(id_token);
    assert_eq!(h["alg"], "RS256", "{h}");
    let jwks: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == h["kid"]);
    assert_eq!(key.map(|k| k["kty"].clone()), Some(json!("RSA")), "{h} in {jwks}");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], id.as_str());
    assert_eq!(claims["nonce"], "rp-nonce");
    // The consent is remembered: the next request returns a code at once...
    let q = flow::login_for_code(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("scope", "openid profile"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert!(q.contains_key("code"), "{q:?}");
    // ...unless prompt=consent asks again (OIDC Core s3.1.2.1).
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("scope", "openid"),
            ("prompt", "consent"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("action=\"/consent\""));
}

// OIDC Core s3.1.2.6: prompt=none for a client the user has not consented to -> consent_required.
#[tokio::test]
async fn prompt_none_without_consent() {
    let s = TestServer::start(Backend::Memory).await;
    let c = registered(&s, &json!({"redirect_uris": [RP_REDIRECT]})).await;
    let id = c["client_id"].as_str().unwrap();
    // Log in through the demo client (no consent needed there), then ask silently.
    flow::web_code(&s, "openid").await;
    let pkce = Pkce::new();
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", RP_REDIRECT),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "silent"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query(&location(&r));
    assert_eq!(q.get("error").map(String::as_str), Some("consent_required"), "{q:?}");
    assert_eq!(q["state"], "silent");
    assert_eq!(q["iss"], s.base);
}
