//! Client authentication at the token endpoint with private_key_jwt (RFC 7523 s2.2, s3;
//! OIDC Core s9): inline JWKS and jwks_uri, audience, expiry and single-use `jti`.

use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tongzheng::crypto::{b64, random_token};
use tongzheng::jwt::{Alg, signing_input};

use crate::support::flow;
use crate::support::server::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct ClientKey {
    pair: EcdsaKeyPair,
    kid: String,
}

impl ClientKey {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        Self { pair, kid: random_token(8) }
    }

    fn jwks(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
            "x": b64(&p[1..33]), "y": b64(&p[33..65])}]})
    }

    fn assertion(&self, claims: &Value) -> String {
        let mut t = signing_input(Alg::ES256, "JWT", &self.kid, claims);
        let sig = self.pair.sign(&SystemRandom::new(), t.as_bytes()).unwrap();
        t.push('.');
        t.push_str(&b64(sig.as_ref()));
        t
    }
}

async fn register(s: &TestServer, id: &str, keys: Value) -> Value {
    let admin = flow::admin_token(s).await;
    let mut body = json!({"client_id": id, "grant_types": ["client_credentials"], "scope": "api.read",
        "token_endpoint_auth_method": "private_key_jwt"});
    for (k, v) in keys.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn token_with(s: &TestServer, assertion: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

fn claims(s: &TestServer, id: &str, aud: &str, exp_in: i64) -> Value {
    let now = s.clock.now();
    json!({"iss": id, "sub": id, "aud": aud, "iat": now, "exp": now + exp_in, "jti": random_token(12)})
}

#[tokio::test]
async fn private_key_jwt_inline_jwks() {
    let s = TestServer::start(Backend::Memory).await;
    let key = ClientKey::new();
    let created = register(&s, "pkjwt-client", json!({"jwks": key.jwks()})).await;
    assert!(created.get("client_secret").is_none(), "no secret for a key-authenticated client");
    let token_url = s.url("/token");
    // RFC 7523 s3: aud may be the token endpoint URL.
    let good = key.assertion(&claims(&s, "pkjwt-client", &token_url, 60));
    let (status, t) = token_with(&s, &good).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["scope"], "api.read");
    // RFC 7523 s3 item 7: a jti may be used once.
    let (status, e) = token_with(&s, &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "invalid_client");
    // The issuer is an accepted audience too.
    assert_eq!(token_with(&s, &key.assertion(&claims(&s, "pkjwt-client", &s.base, 60))).await.0, StatusCode::OK);
    // Wrong audience, expired, too long-lived, another key, wrong iss.
    assert_eq!(
        token_with(&s, &key.assertion(&claims(&s, "pkjwt-client", "https://elsewhere.example", 60))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_with(&s, &key.assertion(&claims(&s, "pkjwt-client", &token_url, -5))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_with(&s, &key.assertion(&claims(&s, "pkjwt-client", &token_url, 3600))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let other = ClientKey { kid: key.kid.clone(), ..ClientKey::new() };
    assert_eq!(
        token_with(&s, &other.assertion(&claims(&s, "pkjwt-client", &token_url, 60))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut c = claims(&s, "pkjwt-client", &token_url, 60);
    c["iss"] = json!("someone-else");
    assert_eq!(token_with(&s, &key.assertion(&c)).await.0, StatusCode::UNAUTHORIZED);
    // A secret-based client cannot authenticate with an assertion.
    assert_eq!(
        token_with(&s, &key.assertion(&claims(&s, WEB_CLIENT, &token_url, 60))).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn private_key_jwt_jwks_uri() {
    let s = TestServer::start(Backend::Redis).await;
    let key = ClientKey::new();
    // The client publishes its keys on its own (loopback) server.
    let jwks = key.jwks();
    let app = axum::Router::new().route("/jwks", axum::routing::get(move || async move { axum::Json(jwks) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    register(&s, "pkjwt-uri", json!({"jwks_uri": format!("http://{addr}/jwks")})).await;
    let (status, t) = token_with(&s, &key.assertion(&claims(&s, "pkjwt-uri", &s.url("/token"), 60))).await;
    assert_eq!(status, StatusCode::OK, "{t}");
}
