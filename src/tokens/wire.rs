//! An access token's claims as JSON (RFC 9068 s2.2), written directly: the bytes of the type's
//! `Serialize`, without serde_json's byte-at-a-time escape scan over the issuer, subject,
//! scope and ids (issue 13; see [`crate::json`]). Signed by [`crate::keys::Keys::sign_json`].

use super::AccessClaims;
use crate::json::{push_int_member, push_list, push_member, push_str};
use crate::jwt::Audience;

impl AccessClaims {
    /// The claims' JSON, in the field order and bytes of the derive.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.scope.len() + self.iss.len() + self.sub.len() + 192);
        out.extend_from_slice(b"{\"iss\":");
        push_str(&mut out, &self.iss);
        out.extend_from_slice(b",\"sub\":");
        push_str(&mut out, &self.sub);
        out.extend_from_slice(b",\"aud\":");
        push_audience(&mut out, &self.aud);
        out.extend_from_slice(b",\"client_id\":");
        push_str(&mut out, &self.client_id);
        out.extend_from_slice(b",\"scope\":");
        push_str(&mut out, &self.scope);
        out.extend_from_slice(b",\"jti\":");
        push_str(&mut out, &self.jti);
        push_int_member(&mut out, "iat", self.iat);
        push_int_member(&mut out, "exp", self.exp);
        if let Some(t) = self.auth_time {
            push_int_member(&mut out, "auth_time", t);
        }
        for (name, v) in [("acr", &self.acr), ("sid", &self.sid), ("gid", &self.gid)] {
            if let Some(v) = v {
                push_member(&mut out, name, v);
            }
        }
        if let Some(act) = &self.act {
            out.extend_from_slice(b",\"act\":");
            crate::json::push_value(&mut out, act);
        }
        if let Some(k) = self.user_type {
            out.extend_from_slice(b",\"user_type\":");
            push_str(&mut out, k.as_str());
        }
        out.push(b'}');
        out
    }
}

/// Appends `aud` as its `Serialize` writes it: one value as a string, several as a list.
pub(crate) fn push_audience(out: &mut Vec<u8>, aud: &Audience) {
    match aud {
        Audience::One(a) => push_str(out, a),
        Audience::Many(list) => push_list(out, list, |out, a| push_str(out, a)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::PrincipalKind;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://tz.example.gov.cn".into(),
            sub: "admin-cli".into(),
            aud: Audience::One("https://tz.example.gov.cn".into()),
            client_id: "admin-cli".into(),
            scope: "admin directory:read".into(),
            jti: "jti-_0123".into(),
            iat: 1_764_979_200,
            exp: 1_764_982_800,
            auth_time: None,
            acr: None,
            sid: None,
            gid: None,
            act: None,
            user_type: None,
        }
    }

    // RFC 9068 s2.2: the signed payload is the derive's bytes for a client's token, a user's
    // with every optional claim, several audiences, an actor, and strings that need escaping.
    #[test]
    fn writes_what_serde_json_writes() {
        let mut user = claims();
        user.auth_time = Some(-1);
        user.acr = Some("urn:acr:2".into());
        user.sid = Some("sid".into());
        user.gid = Some("gid".into());
        user.act = Some(json!({"sub": "agent", "act": {"sub": "prior"}}));
        user.user_type = Some(PrincipalKind::LegalPerson);
        let mut many = claims();
        many.aud = Audience::Many(vec!["a".into(), "b\"".into(), "中文".into()]);
        many.user_type = Some(PrincipalKind::NaturalPerson);
        let mut empty = claims();
        empty.aud = Audience::Many(Vec::new());
        let mut escaped = claims();
        escaped.sub = "tab\there\\".into();
        escaped.scope = "\u{1}".into();
        for c in [claims(), user, many, empty, escaped] {
            assert_eq!(String::from_utf8_lossy(&c.to_json()), serde_json::to_string(&c).expect("serializes"));
        }
    }
}
