//! Logout across platforms, both ways (GB-6.4d, HL-5.4). Down: an upstream ends a session and
//! sends us a back-channel logout token (OpenID Back-Channel Logout 1.0 s2.6 validation); every
//! local session that came from that upstream session ends here and is broadcast to our own
//! applications and downstream platforms, never back up. Up: a local session that came from an
//! upstream ends (any path but the upstream's own notice) and the upstream is told through its
//! server-to-server logout API, by a durable outbox delivery. A logout token is acted on once
//! per platform (a `jti` seen-set), so nothing ping-pongs.

use serde::Deserialize;

use super::remote::{self, Audience, Peers};
use super::{FedError, Role, Trust};
use crate::jwks_cache::JwksCache;
use crate::jwt::Unverified;
use crate::logout::{self, Ended, Reason};
use crate::store::{DynStore, keys};

/// The claims of a logout token (Back-Channel Logout s2.4).
#[derive(Debug, Clone, Deserialize)]
pub struct LogoutToken {
    /// Issuer.
    pub iss: String,
    /// Audience: our client_id at the upstream.
    pub aud: Audience,
    /// Issued at.
    pub iat: i64,
    /// Expiry, when present.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Unique id.
    pub jti: String,
    /// The user there.
    #[serde(default)]
    pub sub: Option<String>,
    /// The session there.
    #[serde(default)]
    pub sid: Option<String>,
    /// Must hold the back-channel logout event.
    pub events: serde_json::Value,
    /// Must be absent (s2.4).
    #[serde(default)]
    pub nonce: Option<serde_json::Value>,
}

/// How old a logout token may be, seconds.
const MAX_AGE: i64 = 600;

/// Back-Channel Logout s2.6: a logout token from an enabled upstream, signed with its keys,
/// for us, recent, with the event, a `sid` or `sub`, no `nonce`, not seen before.
pub async fn verify(
    store: &DynStore,
    http: &reqwest::Client,
    jwks: &JwksCache,
    peers: &Peers,
    token: &str,
    now: i64,
) -> Result<(Trust, LogoutToken), FedError> {
    let iss = Unverified::parse(token)
        .ok()
        .and_then(|p| p.claims::<serde_json::Value>().ok())
        .and_then(|c| c.get("iss").and_then(|i| i.as_str()).map(str::to_owned))
        .ok_or_else(|| FedError::Invalid("not a logout token".into()))?;
    let trust = super::by_issuer(store, &iss, Role::Upstream)
        .await?
        .ok_or_else(|| FedError::NoTrust(format!("issuer {iss}")))?;
    let meta = peers.metadata(http, &trust.issuer).await?;
    let (t, typ): (LogoutToken, _) = remote::verify(jwks, &meta.jwks_uri, token).await?;
    let bad = |w: &str| Err(FedError::Invalid(format!("logout token: {w}")));
    if typ.as_deref().is_some_and(|t| t != "logout+jwt") {
        return bad("typ is not logout+jwt");
    }
    if t.iss != trust.issuer || !t.aud.contains(&trust.client_id) {
        return bad("not from the trusted issuer to us");
    }
    if t.iat > now + remote::LEEWAY || t.iat + MAX_AGE < now || t.exp.is_some_and(|e| e + remote::LEEWAY <= now) {
        return bad("too old or from the future");
    }
    if t.events.get(crate::logout::outbox::EVENT).is_none_or(|e| !e.is_object()) {
        return bad("no back-channel logout event");
    }
    if t.sid.is_none() && t.sub.is_none() {
        return bad("neither sid nor sub");
    }
    if t.nonce.is_some() {
        return bad("carries a nonce");
    }
    if t.jti.is_empty() || t.jti.len() > 128 {
        return bad("no usable jti");
    }
    // Acted on once: a retried delivery of the same logout is acknowledged and ignored.
    let seen = keys::fed_logout_jti(&crate::crypto::token_key(&trust.issuer), &t.jti);
    if !store.put_new(&seen, b"1", Some(u64::try_from(MAX_AGE * 2).unwrap_or(1200))).await? {
        return Ok((trust, LogoutToken { sid: None, sub: None, ..t }));
    }
    Ok((trust, t))
}

/// Ends every local session that came from the upstream session (or, without `sid`, from the
/// upstream subject), broadcasting to our applications, and not back to the upstream.
pub async fn end_linked(ctx: logout::Ctx<'_>, trust: &Trust, t: &LogoutToken) -> Result<Vec<Ended>, FedError> {
    let index = match (&t.sid, &t.sub) {
        (Some(sid), _) => keys::fed_sessions_by_sid(&trust.id, sid),
        (None, Some(sub)) => keys::fed_sessions_by_sub(&trust.id, sub),
        (None, None) => return Ok(Vec::new()),
    };
    let mut ended = Vec::new();
    for sid in ctx.store.set_members(&index).await? {
        if let Some(e) = logout::end_session(ctx, &sid, Reason::Upstream, None).await? {
            ended.push(e);
        }
    }
    Ok(ended)
}
