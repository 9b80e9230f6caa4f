//! The client registry: client records, secrets (random, stored as SHA-256, compared in
//! constant time), and client authentication at the token-style endpoints (RFC 6749 s2.3,
//! RFC 7523 s2.2 / OIDC Core s9 private_key_jwt).

pub mod cache;
pub mod secrets;

use serde::{Deserialize, Serialize};

pub use secrets::new_secret;

pub use crate::apps::State;
use crate::crypto::{self, Secret, ct_eq};
use crate::error::OAuthError;
pub use crate::grant::token_exchange::ExchangePolicy;
pub use crate::identity::subject::SubjectType;
use crate::jwks_cache::JwksCache;
use crate::jwt::{Alg, JwkSet, Unverified, VerifyKey};
pub use crate::ratelimit::RateLimit;
use crate::store::{self, DynStore, StoreError, keys};

/// The token exchange grant type (RFC 8693 s2.1).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Grant types a client may be allowed (RFC 7591 s2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantType {
    /// RFC 6749 s4.1.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 s6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 6749 s4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8693 s2.1 (token exchange).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            TOKEN_EXCHANGE => Some(Self::TokenExchange),
            _ => None,
        }
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => TOKEN_EXCHANGE,
        }
    }
}

/// Token endpoint authentication methods (RFC 7591 s2, OIDC Core s9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with client_id and secret.
    ClientSecretBasic,
    /// client_id and client_secret in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
    /// Public client: no authentication, PKCE required.
    None,
}

impl AuthMethod {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "none" => Some(Self::None),
            _ => None,
        }
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
    /// True for methods that use a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// Where a client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Seeded from configuration.
    Config,
    /// Created through the admin API.
    Admin,
    /// Dynamic registration (RFC 7591).
    Dynamic,
}

/// A stored client secret: SHA-256 of a high-entropy random string, optionally expiring (for
/// rotation with an overlap window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    /// Lowercase hex SHA-256 of the secret.
    pub sha256: String,
    /// Unix time after which the secret stops working.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// client_id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Secrets (empty for public and private_key_jwt clients).
    #[serde(default)]
    pub secrets: Vec<StoredSecret>,
    /// Registered redirect URIs, matched exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client was granted (AY-7.1 least privilege).
    pub scopes: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// ID token signing algorithm (RS256 unless registered otherwise, OIDC Registration s2).
    pub id_token_alg: Alg,
    /// Inline public keys for private_key_jwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// URL of the client's public keys for private_key_jwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// OpenID Back-Channel Logout s2.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the logout token must carry `sid`.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// OpenID Front-Channel Logout s2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// Whether the front-channel URI gets `iss` and `sid`.
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// Ask the user before releasing claims (dynamic clients default to true).
    #[serde(default)]
    pub consent_required: bool,
    /// Whether the client may be used at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where it came from.
    pub origin: Origin,
    /// The RFC 7592 registration access token, sealed with the data key (RFC 7592 s3 has
    /// every client information response carry it, so it must be recoverable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_token_sealed: Option<String>,
    /// Per-client access token lifetime override, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<i64>,
    /// Per-client refresh token (family) lifetime override, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<i64>,
    /// The application that owns the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The owning application's lifecycle state, mirrored here so token validation reads one
    /// record (AY-8.5.3.2: a suspension takes effect on the next request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<State>,
    /// Call control (AY-8.3.2.1); the platform default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// What the client may exchange and for which audiences (RFC 8693); none: no exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<ExchangePolicy>,
    /// The lowest assurance level of the people it serves (HL-6.1); none: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_level: Option<crate::identity::AssuranceLevel>,
    /// Creation time.
    pub created_at: i64,
    /// OIDC Core s8: `public` or `pairwise` subject identifiers ([`crate::identity::subject`]).
    #[serde(default, skip_serializing_if = "SubjectType::is_public")]
    pub subject_type: SubjectType,
    /// OIDC Core s8.1.1: the https URL listing the redirect URIs of the client's sector; its
    /// host is the sector of pairwise subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// JM-B: the legacy direct login `POST /api/auth` is allowed (an admin's flag, off by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_login: bool,
    /// RFC 7591 s2 `policy_uri`: the application's privacy policy, linked from the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
}

fn yes() -> bool {
    true
}

/// Why the admin API may not do something (separation of duties, AY-8.5.2.1, GB-6.8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reserved {
    /// The client holds a scope of the auditor role.
    #[error(
        "client '{client_id}' holds '{scope}', which belongs to the auditor role: the admin API cannot change it, \
         rotate its secret or delete it (it is managed in the configuration; separation of duties, AY-8.5.2.1)"
    )]
    AuditorClient {
        /// The client.
        client_id: String,
        /// The auditor's scope it holds.
        scope: String,
    },
    /// The change would grant a scope of the auditor role.
    #[error(
        "'{0}' belongs to the auditor role and cannot be granted through the admin API (grant it in the \
         configuration; separation of duties, AY-8.5.2.1)"
    )]
    AuditorScope(String),
}

/// The admin API's rule for clients (AY-8.5.2.1, GB-6.8): it may act on `existing` (create
/// when `None`; update, rotate or delete otherwise) only if that client holds no scope of the
/// auditor role, and may grant `granted` only if none of them is one. Every admin path that
/// creates, changes or deletes a client or grants scopes calls this.
pub fn managed_by_admin(existing: Option<&Client>, granted: &[String], audit_scope: &str) -> Result<(), Reserved> {
    if let Some(c) = existing
        && let Some(scope) = c.scopes.iter().find(|s| crate::scopes::reserved_for_auditor(s, audit_scope))
    {
        return Err(Reserved::AuditorClient { client_id: c.client_id.clone(), scope: scope.clone() });
    }
    match granted.iter().find(|s| crate::scopes::reserved_for_auditor(s, audit_scope)) {
        Some(scope) => Err(Reserved::AuditorScope(scope.clone())),
        None => Ok(()),
    }
}

impl Client {
    /// True when the client authenticates with nothing (public client).
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
    /// Whether the client may use a grant type.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
    /// Whether `uri` is registered, by exact string comparison (RFC 9700 s2.1, OIDC Core s3.1.2.1).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
    /// Whether the client holds a scope.
    pub fn holds_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
    /// Whether tokens already issued to the client still validate (its application is not
    /// suspended or offline).
    pub fn tokens_valid(&self) -> bool {
        self.enabled && self.lifecycle.is_none_or(State::tokens_valid)
    }
    /// Why the client may not be issued new tokens, if it may not (AY-8.5.3.2: "new grants
    /// are refused with a clear error").
    pub fn refusal(&self) -> Option<&'static str> {
        match self.lifecycle {
            Some(s) if !s.issues_tokens() => Some(s.refusal()),
            _ => None,
        }
    }
}

/// The client-authenticated endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/token` (RFC 6749 s3.2).
    Token,
    /// `/introspect` (RFC 7662).
    Introspection,
    /// `/revoke` (RFC 7009).
    Revocation,
    /// `/logout`, the server-to-server logout (HL-5.4).
    Logout,
    /// `/federation/v1/registrations`, a downstream platform's registration push (GB-6.4a).
    RegistrationSync,
}

/// May an authenticated client call `endpoint` now? The one rule for every client-authenticated
/// endpoint (AY-8.5.3.2: a suspended or offline application is blocked at once). New tokens are
/// refused with `unauthorized_client` and the reason (RFC 6749 s5.2); introspection and
/// revocation with `invalid_client` (RFC 7662 s2.3, RFC 7009 s2.2.1: the caller is not
/// authorized). Ending a user's session is never refused: a logout only takes power away.
pub fn admit(client: &Client, endpoint: Endpoint) -> Result<(), OAuthError> {
    let Some(why) = client.refusal() else { return Ok(()) };
    match endpoint {
        Endpoint::Token => Err(OAuthError::unauthorized_client(why)),
        Endpoint::Introspection | Endpoint::Revocation | Endpoint::RegistrationSync => {
            Err(OAuthError::invalid_client(why))
        }
        Endpoint::Logout => Ok(()),
    }
}

/// Reads a client, reusing `cache`'s decode when the stored record is unchanged (it is read
/// from the store every time: a change by any instance counts at once).
pub async fn get_cached(
    store: &DynStore,
    cache: &cache::ClientCache,
    client_id: &str,
) -> Result<Option<std::sync::Arc<Client>>, StoreError> {
    if client_id.is_empty() || client_id.len() > 256 {
        return Ok(None);
    }
    let key = keys::client(client_id);
    match store.get(&key).await? {
        Some(raw) => cache.decode(&key, &raw).map(Some),
        None => Ok(None),
    }
}

/// Reads a client.
pub async fn get(store: &DynStore, client_id: &str) -> Result<Option<Client>, StoreError> {
    if client_id.is_empty() || client_id.len() > 256 {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::client(client_id)).await
}

/// Writes a client (create or replace) and indexes it.
pub async fn put(store: &DynStore, client: &Client) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::client(&client.client_id), client, None).await?;
    store.set_add(keys::CLIENT_INDEX, &client.client_id, None).await
}

/// Creates a client only if the id is free; false when taken.
pub async fn create(store: &DynStore, client: &Client) -> Result<bool, StoreError> {
    let created = store.put_new(&keys::client(&client.client_id), &store::encode(client), None).await?;
    if created {
        store.set_add(keys::CLIENT_INDEX, &client.client_id, None).await?;
    }
    Ok(created)
}

/// Deletes a client; true when it existed.
pub async fn delete(store: &DynStore, client_id: &str) -> Result<bool, StoreError> {
    store.set_remove(keys::CLIENT_INDEX, client_id).await?;
    store.delete(&keys::client(client_id)).await
}

/// Lists all clients, sorted by id.
pub async fn list(store: &DynStore) -> Result<Vec<Client>, StoreError> {
    let mut ids = store.set_members(keys::CLIENT_INDEX).await?;
    ids.sort();
    let keys: Vec<String> = ids.iter().map(|id| keys::client(id)).collect();
    let values = store.get_many(&keys).await?;
    let mut out = Vec::with_capacity(values.len());
    for (k, v) in keys.iter().zip(values) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    Ok(out)
}

/// Credentials a request presented, as parsed from headers and form by the HTTP layer.
#[derive(Debug)]
pub enum Credentials {
    /// HTTP Basic (RFC 6749 s2.3.1), already form-url-decoded.
    Basic {
        /// client_id.
        client_id: String,
        /// The secret.
        secret: Secret,
    },
    /// client_id and client_secret in the body.
    Post {
        /// client_id.
        client_id: String,
        /// The secret.
        secret: Secret,
    },
    /// RFC 7523 s2.2 client assertion.
    Assertion {
        /// client_id from the body, if sent (must match the assertion's `sub`).
        client_id: Option<String>,
        /// The JWT.
        assertion: String,
    },
    /// Only a client_id (public clients).
    Id(String),
    /// Nothing at all.
    Missing,
}

/// What an authenticated request proved about its client.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The client record (shared with the decoded-record cache).
    pub client: std::sync::Arc<Client>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Longest lifetime we accept for a client assertion, seconds.
const MAX_ASSERTION_LIFETIME: i64 = 300;

/// Authenticates a client at a token-style endpoint. `audiences` are the values a client
/// assertion's `aud` may name (the endpoint URL and the issuer). Every failure is the same
/// `invalid_client` to the caller; the reason is logged without secrets.
pub async fn authenticate(
    store: &DynStore,
    cache: &cache::ClientCache,
    jwks: &JwksCache,
    creds: Credentials,
    audiences: &[&str],
    now: i64,
) -> Result<Authenticated, OAuthError> {
    let fail = |why: &'static str| {
        tracing::info!(reason = why, "client authentication failed");
        OAuthError::invalid_client("client authentication failed")
    };
    match creds {
        Credentials::Missing => Err(fail("no client credentials")),
        Credentials::Basic { client_id, secret } => {
            authenticate_secret(store, cache, &client_id, &secret, AuthMethod::ClientSecretBasic, now)
                .await?
                .map_err(fail)
        }
        Credentials::Post { client_id, secret } => {
            authenticate_secret(store, cache, &client_id, &secret, AuthMethod::ClientSecretPost, now)
                .await?
                .map_err(fail)
        }
        Credentials::Id(client_id) => {
            let client = get_cached(store, cache, &client_id).await?.ok_or_else(|| fail("unknown client"))?;
            if !client.enabled {
                return Err(fail("client disabled"));
            }
            if client.auth_method != AuthMethod::None {
                return Err(fail("confidential client sent no credentials"));
            }
            Ok(Authenticated { client })
        }
        Credentials::Assertion { client_id, assertion } => {
            authenticate_assertion(store, jwks, client_id, &assertion, audiences, now).await.map_err(fail)
        }
    }
}

/// Checks a shared secret. The outer `Result` is a store failure, the inner one the verdict.
async fn authenticate_secret(
    store: &DynStore,
    cache: &cache::ClientCache,
    client_id: &str,
    secret: &Secret,
    method: AuthMethod,
    now: i64,
) -> Result<Result<Authenticated, &'static str>, OAuthError> {
    let client = get_cached(store, cache, client_id).await?;
    Ok(check_secret(client, secret, method, now))
}

/// The store key of a client's record (read together with other records in one round trip).
pub fn record_key(client_id: &str) -> Option<String> {
    (!client_id.is_empty() && client_id.len() <= 256).then(|| keys::client(client_id))
}

/// Authenticates a client_secret_basic or client_secret_post request against the client's
/// record as read from the store under [`record_key`] (`None`: no such client). The outer
/// `Result` is an undecodable record, the inner one the verdict; every refusal is the same
/// `invalid_client`, the reason is logged.
pub fn authenticate_record(
    cache: &cache::ClientCache,
    creds: Credentials,
    record: Option<&[u8]>,
    now: i64,
) -> Result<Authenticated, OAuthError> {
    let (client_id, secret, method) = match creds {
        Credentials::Basic { client_id, secret } => (client_id, secret, AuthMethod::ClientSecretBasic),
        Credentials::Post { client_id, secret } => (client_id, secret, AuthMethod::ClientSecretPost),
        _ => return Err(OAuthError::invalid_client("client authentication failed")),
    };
    let client = match (record_key(&client_id), record) {
        (Some(key), Some(raw)) => Some(cache.decode(&key, raw)?),
        _ => None,
    };
    check_secret(client, &secret, method, now).map_err(|why| {
        tracing::info!(reason = why, "client authentication failed");
        OAuthError::invalid_client("client authentication failed")
    })
}

/// The shared-secret rules over a client record already read.
fn check_secret(
    client: Option<std::sync::Arc<Client>>,
    secret: &Secret,
    method: AuthMethod,
    now: i64,
) -> Result<Authenticated, &'static str> {
    let Some(client) = client else {
        return Err("unknown client");
    };
    if !client.enabled {
        return Err("client disabled");
    }
    if client.auth_method != method {
        return Err("authentication method differs from the registered one");
    }
    let presented = crypto::sha256(secret.expose().as_bytes());
    let mut matched = false;
    for s in &client.secrets {
        let live = s.expires_at.is_none_or(|e| e > now);
        let stored = hex32(&s.sha256);
        // Compare every live secret so timing does not tell which one matched.
        matched |= live & stored.is_some_and(|h| ct_eq(&h, &presented));
    }
    if matched { Ok(Authenticated { client }) } else { Err("wrong secret") }
}

/// A stored SHA-256 in hex as its 32 bytes, without allocating (this runs per request).
fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *o = nibble(*high)? << 4 | nibble(*low)?;
    }
    Some(out)
}

/// One hex digit's value (issue 13: `u8::from_str_radix` per pair cost 40 instructions a byte).
fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// RFC 7523 s3 and OIDC Core s9: `iss` = `sub` = client_id, `aud` names us, not expired, `jti`
/// used once, signed by a key the client registered.
async fn authenticate_assertion(
    store: &DynStore,
    jwks: &JwksCache,
    client_id: Option<String>,
    assertion: &str,
    audiences: &[&str],
    now: i64,
) -> Result<Authenticated, &'static str> {
    let parsed = Unverified::parse(assertion).map_err(|_| "malformed client assertion")?;
    let unverified: AssertionClaims = parsed.claims().map_err(|_| "malformed assertion claims")?;
    if let Some(id) = &client_id
        && *id != unverified.sub
    {
        return Err("client_id differs from assertion sub");
    }
    let client = get(store, &unverified.sub).await.map_err(|_| "store unavailable")?.ok_or("unknown client")?;
    if !client.enabled || client.auth_method != AuthMethod::PrivateKeyJwt {
        return Err("client not registered for private_key_jwt");
    }
    parsed.alg.ok_or("unsupported assertion alg")?;
    let candidates = client_keys(jwks, &client, parsed.header.kid.as_deref(), false).await;
    let mut claims = None;
    for key in candidates.iter().flatten() {
        if let Ok(c) = parsed.verify::<AssertionClaims>(key) {
            claims = Some(c);
            break;
        }
    }
    if claims.is_none() && client.jwks_uri.is_some() && candidates.is_some() {
        // Unknown kid or rotated keys: refetch once (rate-limited by the cache). Not after a
        // failed fetch: one request fetches a jwks_uri at most once (OWASP SSRF).
        for key in client_keys(jwks, &client, parsed.header.kid.as_deref(), true).await.iter().flatten() {
            if let Ok(c) = parsed.verify::<AssertionClaims>(key) {
                claims = Some(c);
                break;
            }
        }
    }
    let claims = claims.ok_or("assertion signature does not verify")?;
    if claims.iss != client.client_id || claims.sub != client.client_id {
        return Err("assertion iss/sub must be the client_id");
    }
    let aud_ok = match &claims.aud {
        serde_json::Value::String(a) => audiences.contains(&a.as_str()),
        serde_json::Value::Array(list) => list.iter().any(|a| a.as_str().is_some_and(|a| audiences.contains(&a))),
        _ => false,
    };
    if !aud_ok {
        return Err("assertion aud does not name this server");
    }
    if claims.exp <= now {
        return Err("assertion expired");
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME + 60 || claims.iat.is_some_and(|iat| iat > now + 60) {
        return Err("assertion lifetime too long or issued in the future");
    }
    let jti = claims.jti.ok_or("assertion has no jti")?;
    let ttl = store::ttl_until(claims.exp, now);
    let fresh = store
        .put_new(&keys::assertion_jti(&client.client_id, &jti), b"1", Some(ttl))
        .await
        .map_err(|_| "store unavailable")?;
    if !fresh {
        return Err("assertion jti replayed");
    }
    Ok(Authenticated { client: client.into() })
}

/// The client's registered verification keys matching `kid` (all keys when no kid); `None`
/// when it has none or its `jwks_uri` could not be fetched.
async fn client_keys(jwks: &JwksCache, client: &Client, kid: Option<&str>, refresh: bool) -> Option<Vec<VerifyKey>> {
    let set = match (&client.jwks, &client.jwks_uri) {
        (Some(set), _) => Some(set.clone()),
        (None, Some(uri)) => jwks.get(uri, refresh).await.ok(),
        (None, None) => None,
    };
    set.map(|s| {
        s.keys.iter().filter(|k| kid.is_none() || k.kid.as_deref() == kid).filter_map(VerifyKey::from_jwk).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        assert_eq!(hex_decode("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        let h = crate::crypto::sha256_hex(b"abc");
        assert_eq!(hex32(&h).map(Vec::from), hex_decode(&h));
        assert_eq!(hex32("00ff10"), None);
        assert_eq!(hex32(&"z".repeat(64)), None);
        // Every byte value in every digit position: the stored hash decodes as it always did.
        for b in 0..=255u8 {
            let digits = format!("{}{}", "0a".repeat(31), char::from(b));
            for s in [format!("{digits}F"), format!("{}{}", "Bc".repeat(31), &digits[61..])] {
                let want = s.is_ascii() && s.bytes().all(|c| c.is_ascii_hexdigit());
                assert_eq!(hex32(&s).is_some(), want && s.len() == 64, "{s:?}");
                if want && s.len() == 64 {
                    assert_eq!(hex32(&s).map(Vec::from), hex_decode(&s));
                }
            }
        }
    }
}
