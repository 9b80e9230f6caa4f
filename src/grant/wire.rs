//! The token response's JSON (RFC 6749 s5.1), written directly. serde_json looks at every byte
//! of every string for characters to escape, one table lookup at a time; the strings of a
//! token response (a JWT of several hundred base64url characters, the scope) never hold one,
//! and that scan was the largest single cost of a client_credentials request outside the
//! signature (issue 13). The bytes are those of `serde_json::to_vec` of the response (tested
//! below; see [`crate::json`]).

use super::TokenResponse;
use crate::json::{push_int_member, push_str};

impl TokenResponse {
    /// The s5.1 body, in the field order and bytes of the type's `Serialize`.
    pub fn to_json(&self) -> Vec<u8> {
        let tokens = [Some(&self.access_token), self.refresh_token.as_ref(), self.id_token.as_ref()];
        let size = tokens.iter().flatten().map(|t| t.len()).sum::<usize>() + self.scope.len() + 160;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(b"{\"access_token\":");
        push_str(&mut out, &self.access_token);
        if let Some(t) = self.issued_token_type {
            out.extend_from_slice(b",\"issued_token_type\":");
            push_str(&mut out, t);
        }
        out.extend_from_slice(b",\"token_type\":");
        push_str(&mut out, self.token_type);
        push_int_member(&mut out, "expires_in", self.expires_in);
        out.extend_from_slice(b",\"scope\":");
        push_str(&mut out, &self.scope);
        if let Some(t) = &self.refresh_token {
            out.extend_from_slice(b",\"refresh_token\":");
            push_str(&mut out, t);
        }
        if let Some(t) = &self.id_token {
            out.extend_from_slice(b",\"id_token\":");
            push_str(&mut out, t);
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(access: &str, scope: &str, refresh: Option<&str>, id: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: access.into(),
            issued_token_type: None,
            token_type: "Bearer",
            expires_in: 3600,
            scope: scope.into(),
            refresh_token: refresh.map(Into::into),
            id_token: id.map(Into::into),
            subject: Some("never written".into()),
            audit: Some(serde_json::json!({"never": "written"})),
        }
    }

    // RFC 6749 s5.1: the same bytes as the derived serialization, for every optional field
    // present or absent, and for strings that need escaping (quote, backslash, controls,
    // non-ASCII, DEL) at either end of a 64-byte chunk.
    #[test]
    fn writes_what_serde_json_writes() {
        let jwt = format!("eyJhbGciOiJFUzI1NiJ9.{}.sig-_", "A".repeat(700));
        let mut cases = vec![
            response(&jwt, "openid profile", Some("rt-_0123"), Some(&jwt)),
            response(&jwt, "", None, None),
            response("", "a", None, Some("x")),
            response("tab\there", "q\"uote", Some("back\\slash"), Some("nl\n")),
            response("中文令牌", "\u{7f}\u{1f}\u{0}", None, None),
            response(&format!("{}\"", "a".repeat(63)), &format!("{}\\", "b".repeat(64)), None, None),
            response(&format!("{}\u{1}", "a".repeat(127)), "scope", Some(&"c".repeat(200)), None),
        ];
        let mut exchanged = response(&jwt, "read", None, None);
        exchanged.issued_token_type = Some("urn:ietf:params:oauth:token-type:access_token");
        exchanged.expires_in = -5;
        cases.push(exchanged);
        for r in &cases {
            let want = serde_json::to_vec(r).expect("serializes");
            assert_eq!(String::from_utf8_lossy(&r.to_json()), String::from_utf8_lossy(&want));
        }
    }
}
