//! Token introspection (RFC 7662): what a client learns about a token, decided by the
//! validity authority. A client learns about its own tokens only (and those naming it as their
//! audience, RFC 8693); another client's token introspects as inactive (RFC 7662 s4 leaves the
//! policy to us; this is the least-privilege one) unless the caller is privileged (admin).

use serde::Serialize;

use super::validity::{Authority, Dead, LiveAccess, Prefetch, Records, RefreshState};
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

impl Introspection {
    /// The response's JSON, in the field order and bytes of the derive, without serde_json's
    /// escape scan over the ids and scopes (issue 13; see [`crate::json`]).
    pub fn to_json(&self) -> Vec<u8> {
        use crate::json::{push_int_member, push_key as field, push_str};

        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(if self.active { b"{\"active\":true" } else { b"{\"active\":false" });
        let strings = [
            ("scope", self.scope.as_deref()),
            ("client_id", self.client_id.as_deref()),
            ("token_type", self.token_type),
        ];
        for (name, v) in strings {
            if let Some(v) = v {
                field(&mut out, name);
                push_str(&mut out, v);
            }
        }
        for (name, v) in [("exp", self.exp), ("iat", self.iat)] {
            if let Some(v) = v {
                push_int_member(&mut out, name, v);
            }
        }
        if let Some(sub) = &self.sub {
            field(&mut out, "sub");
            push_str(&mut out, sub);
        }
        if let Some(aud) = &self.aud {
            field(&mut out, "aud");
            super::wire::push_audience(&mut out, aud);
        }
        for (name, v) in [("iss", &self.iss), ("jti", &self.jti), ("sid", &self.sid)] {
            if let Some(v) = v {
                field(&mut out, name);
                push_str(&mut out, v);
            }
        }
        if let Some(t) = self.auth_time {
            push_int_member(&mut out, "auth_time", t);
        }
        if let Some(acr) = &self.acr {
            field(&mut out, "acr");
            push_str(&mut out, acr);
        }
        let values = self.act.as_ref().map(|a| ("act", a)).into_iter();
        for (name, v) in values.chain(self.extra.iter().map(|(k, v)| (k.as_str(), v))) {
            out.push(b',');
            push_str(&mut out, name);
            out.push(b':');
            crate::json::push_value(&mut out, v);
        }
        out.push(b'}');
        out
    }
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
        // Boxed: inline, the verification's future would sit in every introspection's.
        let verdict = Box::pin(auth.access(token, now)).await?;
        return Ok(of_access(verdict, caller, privileged, auth.keys.data()));
    }
    let Ok(live) = Box::pin(auth.refresh(token, now)).await? else {
        return Ok(Introspection::default());
    };
    let visible = privileged || live.record.client_id == caller.client_id;
    Ok(if visible { refresh(live, auth.issuer, auth.keys.data()) } else { Introspection::default() })
}

/// [`introspect`] of an access token found by [`Authority::prefetch`], over the records read
/// under its keys in the caller's authentication round trip: no store call, no await. `None`
/// when the rules need more than was read; then [`introspect`] answers.
pub fn introspect_prefetched(
    auth: Authority<'_>,
    caller: &Client,
    privileged: bool,
    prefetched: (Prefetch, Records),
    now: i64,
) -> Result<Option<Introspection>, StoreError> {
    let (p, found) = prefetched;
    let verdict = auth.access_prefetched(p, &found, now)?;
    Ok(verdict.map(|v| of_access(v, caller, privileged, auth.keys.data())))
}

/// The answer about an access token: its claims when alive and visible to `caller` (issued
/// to it, or naming it by client_id as their audience, RFC 8693), else inactive.
fn of_access(verdict: Result<LiveAccess, Dead>, caller: &Client, privileged: bool, data: &DataKey) -> Introspection {
    let Ok(live) = verdict else {
        return Introspection::default();
    };
    let c = &live.claims;
    let visible = privileged || c.client_id == caller.client_id || c.is_for(&caller.client_id);
    if visible { access(live, data) } else { Introspection::default() }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // RFC 7662 s2.2: the same bytes as the derived serialization: inactive, an access token's
    // answer with every field, a refresh token's, several audiences, the claims table's extra
    // members, and strings that need escaping.
    #[test]
    fn writes_what_serde_json_writes() {
        let full = || Introspection {
            active: true,
            scope: Some("openid profile".into()),
            client_id: Some("demo-web".into()),
            token_type: Some("Bearer"),
            exp: Some(1_764_979_800),
            iat: Some(-1),
            sub: Some("p-0123".into()),
            aud: Some(Audience::One("demo-web".into())),
            iss: Some("https://tz.example.gov.cn".into()),
            jti: Some("jti-_0123".into()),
            sid: Some("s1".into()),
            auth_time: Some(1_764_979_000),
            acr: Some("urn:tz:loa:2".into()),
            act: Some(json!({"sub": "agent", "act": {"sub": "x\"y"}})),
            extra: json!({"user_type": "natural_person", "auth_level": 3, "nested": {"a": [1, null]}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let escapes = Introspection {
            scope: Some(format!("{}\"\\\u{1}\u{7f}名", "s".repeat(63))),
            sub: Some("新\n".into()),
            aud: Some(Audience::Many(vec!["a".into(), "b\\".into(), "c".into()])),
            act: None,
            extra: serde_json::Map::new(),
            ..full()
        };
        let refresh = Introspection {
            active: true,
            scope: Some("openid".into()),
            client_id: Some("demo-web".into()),
            token_type: Some("refresh_token"),
            exp: Some(5),
            sub: Some("p".into()),
            iss: Some("i".into()),
            ..Introspection::default()
        };
        for answer in [Introspection::default(), full(), escapes, refresh] {
            let want = serde_json::to_vec(&answer).unwrap();
            assert_eq!(String::from_utf8(answer.to_json()).unwrap(), String::from_utf8(want).unwrap());
        }
    }
}
