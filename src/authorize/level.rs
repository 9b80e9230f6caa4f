//! The assurance level a request requires (HL-6.1) and whether a session meets it: the client's
//! minimum (`min_level`), `acr_values` (OIDC Core s3.1.2.1) and an essential `acr` in the
//! `claims` parameter (OIDC Core s5.5.1.1), the highest of them. Levels are ordered, so a higher
//! level meets a lower requirement. A session below it is taken through real-name verification
//! when that reaches the level, else the request ends in `unmet_authentication_requirements`
//! (OpenID Connect Core Unmet Authentication Requirements 1.0).

use serde_json::Value;

use crate::clients::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::identity::AssuranceLevel;

/// The highest level a person reaches by themselves at `/verify`.
pub const SELF_SERVICE: AssuranceLevel = AssuranceLevel::RealName;

/// The error of a requirement this platform cannot meet.
pub fn unmet(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::UnmetAuthenticationRequirements, description)
}

/// The level the request requires, if any. `acr_values` names acceptable levels; the lowest
/// known one is required (unknown values are ignored: they are voluntary, OIDC Core s3.1.2.1).
/// An essential `acr` claim whose values are all unknown here cannot be met at all.
pub fn required(
    client: &Client,
    acr_values: Option<&str>,
    claims: Option<&str>,
) -> Result<Option<AssuranceLevel>, OAuthError> {
    let from_values = acr_values.and_then(|v| v.split(' ').filter_map(AssuranceLevel::parse).min());
    let from_claims = match claims {
        Some(raw) => essential_acr(raw)?,
        None => None,
    };
    Ok([client.min_level, from_values, from_claims].into_iter().flatten().max())
}

/// The level an essential `acr` request of the `claims` parameter asks for (OIDC Core s5.5,
/// s5.5.1.1): in `id_token` or `userinfo`, `value` or the lowest of `values`.
fn essential_acr(raw: &str) -> Result<Option<AssuranceLevel>, OAuthError> {
    let v: Value = serde_json::from_str(raw).map_err(|_| OAuthError::invalid_request("claims is not a JSON object"))?;
    let Some(obj) = v.as_object() else {
        return Err(OAuthError::invalid_request("claims is not a JSON object"));
    };
    let mut need: Option<AssuranceLevel> = None;
    for member in ["id_token", "userinfo"] {
        let Some(acr) = obj.get(member).and_then(|m| m.get("acr")) else { continue };
        if !acr.get("essential").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let mut named: Vec<&str> = acr.get("value").and_then(Value::as_str).into_iter().collect();
        if let Some(values) = acr.get("values").and_then(Value::as_array) {
            named.extend(values.iter().filter_map(Value::as_str));
        }
        if named.is_empty() {
            // Essential with no value: any acr at all (every login here has one).
            continue;
        }
        let lowest = named
            .iter()
            .filter_map(|s| AssuranceLevel::parse(s))
            .min()
            .ok_or_else(|| unmet("no requested acr value is offered by this platform"))?;
        need = need.max(Some(lowest));
    }
    Ok(need)
}

/// Where a session stands against a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The session's level meets it.
    Met,
    /// The person can reach it by verifying their real name.
    Verify,
    /// Nothing the person can do here reaches it (an admin-recorded level is needed).
    Unmet,
}

/// Compares a session's `acr` with the requirement.
pub fn standing(session_acr: &str, required: Option<AssuranceLevel>) -> Standing {
    let Some(need) = required else { return Standing::Met };
    let have = AssuranceLevel::parse(session_acr).unwrap_or(AssuranceLevel::Visitor);
    if have >= need {
        Standing::Met
    } else if need <= SELF_SERVICE {
        Standing::Verify
    } else {
        Standing::Unmet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essential_acr_takes_the_lowest_named_value() {
        // OIDC Core s5.5.1.1.
        let c = r#"{"id_token":{"acr":{"essential":true,"values":["3","2"]}}}"#;
        assert_eq!(essential_acr(c).unwrap(), Some(AssuranceLevel::RealName));
        let voluntary = r#"{"id_token":{"acr":{"values":["3"]}}}"#;
        assert_eq!(essential_acr(voluntary).unwrap(), None);
        let unknown = r#"{"userinfo":{"acr":{"essential":true,"value":"urn:x"}}}"#;
        assert_eq!(essential_acr(unknown).unwrap_err().code, ErrorCode::UnmetAuthenticationRequirements);
        assert_eq!(essential_acr("[1]").unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn standing_by_level() {
        assert_eq!(standing("1", None), Standing::Met);
        assert_eq!(standing("1", Some(AssuranceLevel::RealName)), Standing::Verify);
        assert_eq!(standing("3", Some(AssuranceLevel::RealName)), Standing::Met);
        assert_eq!(standing("2", Some(AssuranceLevel::Strong)), Standing::Unmet);
        assert_eq!(standing("urn:other", Some(AssuranceLevel::Registered)), Standing::Verify);
    }
}
