//! The relying party's side of OpenID Connect, written out so an integrator can see every check:
//! discovery, the JWKS, JWS signature verification (RS256, ES256, EdDSA with `ring`), the ID
//! token checks (OIDC Core s3.1.3.7) and the logout token checks (Back-Channel Logout 1.0 s2.6).

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// Allowed clock difference between the platform and this application, seconds.
const LEEWAY: i64 = 300;

/// What went wrong talking to the platform or checking one of its tokens.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    /// The platform could not be reached or answered something unexpected.
    #[error("platform request failed: {0}")]
    Platform(String),
    /// A token failed a check; the text says which.
    #[error("token rejected: {0}")]
    Token(&'static str),
}

/// The parts of the discovery document (OIDC Discovery s3) this application uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Issuer identifier: must equal the configured one (Discovery s4.3).
    pub issuer: String,
    /// Where the browser is sent to log in.
    pub authorization_endpoint: String,
    /// Where the backend exchanges the code.
    pub token_endpoint: String,
    /// Where the backend reads the user's claims.
    pub userinfo_endpoint: String,
    /// The platform's public keys.
    pub jwks_uri: String,
    /// tongzheng's server-to-server logout (HL-5.4); `{issuer}/logout` when absent.
    #[serde(default)]
    pub platform_logout_endpoint: Option<String>,
}

/// Reads the discovery document and checks its issuer.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, RpError> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let meta: Metadata = get_json(http.get(&url)).await?;
    if meta.issuer != issuer {
        return Err(RpError::Platform(format!("discovery names issuer {}, expected {issuer}", meta.issuer)));
    }
    Ok(meta)
}

/// Sends a request and reads a JSON body from a 2xx answer.
pub async fn get_json<T: serde::de::DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T, RpError> {
    let resp = req.send().await.map_err(|e| RpError::Platform(e.without_url().to_string()))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| RpError::Platform(e.without_url().to_string()))?;
    if !status.is_success() {
        return Err(RpError::Platform(format!("{status}: {}", body.chars().take(300).collect::<String>())));
    }
    serde_json::from_str(&body).map_err(|e| RpError::Platform(format!("unexpected answer: {e}")))
}

/// A JWS split into its parts, not yet trusted.
struct Jws<'a> {
    header: Value,
    claims: Value,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn b64_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn split(token: &str) -> Result<Jws<'_>, RpError> {
    let bad = RpError::Token("not a compact JWS");
    let (signing_input, sig) = token.rsplit_once('.').ok_or(RpError::Token("not a compact JWS"))?;
    let (header, claims) = signing_input.split_once('.').ok_or(RpError::Token("not a compact JWS"))?;
    let (Some(header), Some(claims)) = (b64_json(header), b64_json(claims)) else { return Err(bad) };
    let signature = URL_SAFE_NO_PAD.decode(sig).map_err(|_| RpError::Token("not a compact JWS"))?;
    Ok(Jws { header, claims, signing_input, signature })
}

fn key_bytes(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(jwk.get(name)?.as_str()?).ok()
}

/// Checks the signature with the key of the JWKS the header's `kid` names (RFC 7515 s5.2). The
/// algorithm must be the one the key is for: `none` and HMAC are never accepted.
fn verify_signature(jws: &Jws<'_>, jwks: &Value) -> Result<(), RpError> {
    let alg = jws.header.get("alg").and_then(Value::as_str).unwrap_or("none");
    let kid = jws.header.get("kid").and_then(Value::as_str).ok_or(RpError::Token("no kid in the header"))?;
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or(RpError::Token("JWKS has no keys"))?;
    let jwk =
        keys.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).ok_or(RpError::Token("unknown kid"))?;
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let msg = jws.signing_input.as_bytes();
    let ok = match (alg, kty) {
        ("RS256", "RSA") => {
            let (Some(n), Some(e)) = (key_bytes(jwk, "n"), key_bytes(jwk, "e")) else {
                return Err(RpError::Token("malformed RSA key"));
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, &jws.signature)
                .is_ok()
        }
        ("ES256", "EC") => {
            let (Some(x), Some(y)) = (key_bytes(jwk, "x"), key_bytes(jwk, "y")) else {
                return Err(RpError::Token("malformed EC key"));
            };
            let point = [&[4u8][..], &x, &y].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(msg, &jws.signature).is_ok()
        }
        ("EdDSA", "OKP") => {
            let x = key_bytes(jwk, "x").ok_or(RpError::Token("malformed OKP key"))?;
            UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, &jws.signature).is_ok()
        }
        _ => return Err(RpError::Token("algorithm not accepted for this key")),
    };
    if ok { Ok(()) } else { Err(RpError::Token("bad signature")) }
}

fn str_claim<'a>(claims: &'a Value, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn int_claim(claims: &Value, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

/// `aud` names us: a string, or a list that contains us (RFC 7519 s4.1.3).
fn audience_ok(claims: &Value, client_id: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    }
}

/// The platform this application trusts, and what it needs to check tokens from it.
pub struct Expect<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// Our client id (the audience).
    pub client_id: &'a str,
    /// The platform's JWKS (fetched from `jwks_uri`).
    pub jwks: &'a Value,
    /// Unix time now.
    pub now: i64,
}

/// OIDC Core s3.1.3.7: signature, `iss`, `aud`, `azp`, `exp`, `iat`, and the `nonce` this
/// browser's login sent. Returns the claims.
pub fn verify_id_token(token: &str, expect: &Expect<'_>, nonce: &str) -> Result<Value, RpError> {
    let jws = split(token)?;
    verify_signature(&jws, expect.jwks)?;
    let c = jws.claims;
    if str_claim(&c, "iss") != Some(expect.issuer) {
        return Err(RpError::Token("iss is not the platform"));
    }
    if !audience_ok(&c, expect.client_id) {
        return Err(RpError::Token("aud does not name this application"));
    }
    if c.get("aud").is_some_and(Value::is_array) && str_claim(&c, "azp") != Some(expect.client_id) {
        return Err(RpError::Token("azp is not this application"));
    }
    if int_claim(&c, "exp").is_none_or(|exp| exp + LEEWAY < expect.now) {
        return Err(RpError::Token("expired"));
    }
    if int_claim(&c, "iat").is_none_or(|iat| iat > expect.now + LEEWAY) {
        return Err(RpError::Token("iat missing or in the future"));
    }
    // The nonce binds the token to this browser's login request (replay protection).
    if str_claim(&c, "nonce") != Some(nonce) {
        return Err(RpError::Token("nonce does not match the login request"));
    }
    if str_claim(&c, "sub").is_none_or(str::is_empty) {
        return Err(RpError::Token("no sub"));
    }
    Ok(c)
}

/// The event a logout token must carry (Back-Channel Logout 1.0 s2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a verified logout token asks to end.
#[derive(Debug, Clone)]
pub struct LogoutOrder {
    /// The platform session to end, when given.
    pub sid: Option<String>,
    /// The user whose sessions to end, when given.
    pub sub: Option<String>,
    /// The token's id, to act on each token once.
    pub jti: String,
}

/// Back-Channel Logout 1.0 s2.6: signature by the platform's JWKS, `typ` (when set) is
/// `logout+jwt`, `iss`, `aud`, `iat` (and `exp` when given), the backchannel-logout event, `sid`
/// or `sub`, a `jti`, and no `nonce` (so an ID token cannot pass for a logout token).
pub fn verify_logout_token(token: &str, expect: &Expect<'_>) -> Result<LogoutOrder, RpError> {
    let jws = split(token)?;
    verify_signature(&jws, expect.jwks)?;
    if let Some(typ) = str_claim(&jws.header, "typ")
        && !typ.eq_ignore_ascii_case("logout+jwt")
    {
        return Err(RpError::Token("typ is not logout+jwt"));
    }
    let c = jws.claims;
    if str_claim(&c, "iss") != Some(expect.issuer) {
        return Err(RpError::Token("iss is not the platform"));
    }
    if !audience_ok(&c, expect.client_id) {
        return Err(RpError::Token("aud does not name this application"));
    }
    if int_claim(&c, "iat").is_none_or(|iat| iat > expect.now + LEEWAY || iat + 2 * LEEWAY < expect.now) {
        return Err(RpError::Token("iat missing or too far from now"));
    }
    if int_claim(&c, "exp").is_some_and(|exp| exp + LEEWAY < expect.now) {
        return Err(RpError::Token("expired"));
    }
    if c.get("events").and_then(|e| e.get(LOGOUT_EVENT)).is_none_or(|ev| !ev.is_object()) {
        return Err(RpError::Token("no backchannel-logout event"));
    }
    if c.get("nonce").is_some() {
        return Err(RpError::Token("a logout token never has a nonce"));
    }
    let sid = str_claim(&c, "sid").map(str::to_owned);
    let sub = str_claim(&c, "sub").map(str::to_owned);
    if sid.is_none() && sub.is_none() {
        return Err(RpError::Token("neither sid nor sub"));
    }
    let jti = str_claim(&c, "jti").ok_or(RpError::Token("no jti"))?.to_owned();
    Ok(LogoutOrder { sid, sub, jti })
}

/// Logout token ids already acted on (s2.6 point 10: a replay is dropped). Bounded: the oldest
/// half is forgotten when it fills, which is safe because tokens expire within minutes.
#[derive(Default)]
pub struct SeenJti {
    order: Vec<String>,
    set: HashSet<String>,
}

impl SeenJti {
    /// Records `jti`; false when it was seen before.
    pub fn first_time(&mut self, jti: &str) -> bool {
        if self.set.contains(jti) {
            return false;
        }
        if self.order.len() >= 10_000 {
            for old in self.order.drain(..5_000) {
                self.set.remove(&old);
            }
        }
        self.order.push(jti.to_owned());
        self.set.insert(jti.to_owned());
        true
    }
}

/// RFC 7636 s4.2: the S256 challenge of a code verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}
