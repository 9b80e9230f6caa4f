//! Token introspection (RFC 7662): what a client learns about a token, decided by the
//! validity authority. A client learns about its own tokens only (and those naming it as their
//! audience, RFC 8693); another client's token introspects as inactive (RFC 7662 s4 leaves the
//! policy to us; this is the least-privilege one) unless the caller is privileged (admin).

use serde::Serialize;

use super::validity::{Authority, LiveAccess, RefreshState};
use crate::clients::Client;
use crate::identity::claims::{self, Place, Principal};
use crate::jwt::Audience;
use crate::sealing::DataKey;
use crate::store::StoreError;

/// RFC 7662 s2.2 response.
#[derive(Debug, Default, Serialize)]
pub struct Introspection {
    /// Whether the token is alive.
    pub active: bool,
    /// Its scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `Bearer` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// SSO session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user authenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Authentication context class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// RFC 8693 s4.1 (and s2.2.1's pointer to RFC 7662): the acting party of a delegated token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// The identity claims the claims table releases here (`user_type`, `auth_level`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What introspection sets itself rather than from the claims table.
const OWN: [&str; 3] = ["sub", "acr", "act"];

/// Whether a token is a JWT (three dot-separated parts): access tokens are, refresh tokens
/// are opaque. `token_type_hint` is only a hint (RFC 7662 s2.1): the token's shape decides.
pub fn looks_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Introspects `token` for `caller`; `privileged` callers (admin scope) see every token.
pub async fn introspect(
    auth: Authority<'_>,
    caller: &Client,
    privileged: bool,
    token: &str,
    now: i64,
) -> Result<Introspection, StoreError> {
    if looks_jwt(token) {
        let Ok(live) = auth.access(token, now).await? else {
            return Ok(Introspection::default());
        };
        let c = &live.claims;
        // The client it was issued to, or the resource it names by client_id (RFC 8693 aud).
        let visible = privileged || c.client_id == caller.client_id || c.is_for(&caller.client_id);
        return Ok(if visible { access(live, auth.keys.data()) } else { Introspection::default() });
    }
    let Ok(live) = auth.refresh(token, now).await? else {
        return Ok(Introspection::default());
    };
    let visible = privileged || live.record.client_id == caller.client_id;
    Ok(if visible { refresh(live, auth.issuer, auth.keys.data()) } else { Introspection::default() })
}

fn access(live: LiveAccess, data: &DataKey) -> Introspection {
    let extra = if live.standing.user.is_some() {
        claims::release(Place::Introspection, |s| live.claims.has_scope(s), &live.principal(), data, &OWN)
    } else {
        serde_json::Map::new()
    };
    let c = live.claims;
    Introspection {
        active: true,
        scope: Some(c.scope),
        client_id: Some(c.client_id),
        token_type: Some("Bearer"),
        exp: Some(c.exp),
        iat: Some(c.iat),
        sub: Some(c.sub),
        aud: Some(c.aud),
        iss: Some(c.iss),
        jti: Some(c.jti),
        sid: c.sid,
        auth_time: c.auth_time,
        acr: c.acr,
        act: c.act,
        extra,
    }
}

fn refresh(live: RefreshState, issuer: &str, data: &DataKey) -> Introspection {
    let (sub, agent) = live.public_subjects(data);
    let who = Principal {
        sub: &sub,
        agent_sub: agent.as_deref(),
        acr: Some(&live.record.user.acr),
        person: live.standing.user.as_ref(),
        legal: live.standing.legal.as_ref(),
    };
    let extra = claims::release(Place::Introspection, |s| live.record.scope.iter().any(|g| g == s), &who, data, &OWN);
    let act = agent.as_ref().map(|a| serde_json::json!({ "sub": a }));
    let r = live.record;
    Introspection {
        active: true,
        scope: Some(r.scope.join(" ")),
        client_id: Some(r.client_id),
        token_type: Some("refresh_token"),
        exp: Some(r.family_exp),
        sub: Some(sub),
        act,
        iss: Some(issuer.to_owned()),
        sid: Some(r.user.sid),
        auth_time: Some(r.user.auth_time),
        acr: Some(r.user.acr),
        extra,
        ..Introspection::default()
    }
}
