//! Client metadata (RFC 7591 s2, OIDC Registration s2, Back-/Front-Channel Logout s2): one
//! validation path for dynamic registration (RFC 7591/7592) and the admin API, producing a
//! client record or the RFC 7591 s3.2.2 error that names the problem.

use serde::{Deserialize, Serialize};

use crate::clients::{AuthMethod, Client, GrantType, Origin, SubjectType};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::{USER_SCOPES, parse_scope};
use crate::jwt::{Alg, JwkSet, VerifyKey};

/// Client metadata as sent by a client or an admin. Unknown members are ignored (RFC 7591 s2).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Metadata {
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Grant types (default `authorization_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Response types (default `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// Token endpoint auth method (default `client_secret_basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// ID token signing algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// Inline JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub jwks: Option<JwkSet>,
    /// JWKS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Post-logout redirect URIs (RP-Initiated Logout s3.1).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-Channel Logout s2.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Back-Channel Logout s2.2.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Front-Channel Logout s2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// Front-Channel Logout s2.
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// OIDC Registration s2: `public` (default) or `pairwise` (OIDC Core s8.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<String>,
    /// OIDC Registration s2, OIDC Core s8.1.1: an https URL whose JSON array lists every
    /// redirect URI of the client; its host is the pairwise sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    /// RFC 7591 s2: the client's privacy policy, for people (linked from the consent page);
    /// https (http only on loopback in dev mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
}

/// Who is registering: decides defaults and which scopes may be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrar {
    /// RFC 7591 dynamic registration: user scopes only, RS256 ID tokens by default, consent on.
    Dynamic,
    /// The admin API: any scope, ES256 ID tokens by default.
    Admin,
}

fn meta_err(d: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

fn redirect_err(d: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, d)
}

/// Whether a URL's host is a loopback address (127.0.0.0/8, ::1) or `localhost`.
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Checks a URI we will send users or requests to: absolute, no fragment, https — or http on
/// a loopback host in dev mode.
pub fn check_uri(uri: &str, dev: bool) -> Result<(), &'static str> {
    if uri.len() > 2048 {
        return Err("URI too long");
    }
    // RFC 3986 s2: no control characters or spaces. The URL parser would silently drop a CR
    // or LF that exact matching (and a Location header) would then carry.
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("URI must not contain control characters or spaces");
    }
    let u = url::Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if u.fragment().is_some() {
        return Err("URI must not contain a fragment");
    }
    let loopback = is_loopback(&u);
    match u.scheme() {
        "https" => Ok(()),
        "http" if dev && loopback => Ok(()),
        "http" => Err("URI must use https (http only on loopback in dev mode)"),
        _ => Err("URI must use https"),
    }
}

/// RFC 7592 s2.2: a client's own update replaces its metadata, but never undoes what an
/// administrator decided: it keeps its secrets, registration token, standing (enabled,
/// application and lifecycle state), call control, lifetimes and exchange policy, and it can
/// narrow its scopes and grant types but never widen them (the server may replace requested
/// values and returns what it kept). Switching between secret, key and public authentication
/// needs a new registration.
pub fn apply_update(old: &Client, mut new: Client) -> Result<Client, OAuthError> {
    if new.auth_method.uses_secret() != old.auth_method.uses_secret()
        || (new.auth_method == AuthMethod::None) != old.is_public()
    {
        return Err(meta_err("changing between secret, key and public authentication needs a new registration"));
    }
    new.scopes.retain(|s| old.scopes.contains(s));
    new.grant_types.retain(|g| old.grant_types.contains(g));
    if new.grant_types.is_empty() {
        return Err(meta_err("grant_types: none of the requested grant types is allowed for this client"));
    }
    keep_standing(old, &mut new);
    Ok(new)
}

/// What a metadata update (RFC 7592 by the client, or the admin API's replace) never changes:
/// secrets, registration token, origin, creation time, standing (enabled, application and its
/// lifecycle state), consent, lifetimes, call control, exchange policy and minimum assurance level. The admin API then
/// applies the extras its request names.
pub fn keep_standing(old: &Client, new: &mut Client) {
    new.secrets.clone_from(&old.secrets);
    new.registration_token_sealed.clone_from(&old.registration_token_sealed);
    new.enabled = old.enabled;
    new.consent_required = old.consent_required;
    new.origin = old.origin;
    new.created_at = old.created_at;
    new.access_token_ttl = old.access_token_ttl;
    new.refresh_token_ttl = old.refresh_token_ttl;
    new.app_id.clone_from(&old.app_id);
    new.lifecycle = old.lifecycle;
    new.rate_limit.clone_from(&old.rate_limit);
    new.token_exchange.clone_from(&old.token_exchange);
    new.legacy_login = old.legacy_login;
    new.min_level = old.min_level;
}

impl Metadata {
    /// Validates the metadata into a client record for `client_id`.
    pub fn into_client(self, client_id: String, who: Registrar, dev: bool, now: i64) -> Result<Client, OAuthError> {
        let grant_types = match &self.grant_types {
            None => vec![GrantType::AuthorizationCode],
            Some(list) => list
                .iter()
                .map(|g| GrantType::parse(g).ok_or_else(|| meta_err(format!("unsupported grant type '{g}'"))))
                .collect::<Result<Vec<_>, _>>()?,
        };
        if grant_types.is_empty() {
            return Err(meta_err("grant_types must not be empty"));
        }
        let wants_code = grant_types.contains(&GrantType::AuthorizationCode);
        let response_types =
            self.response_types.clone().unwrap_or_else(|| if wants_code { vec!["code".into()] } else { vec![] });
        if response_types.iter().any(|r| r != "code") {
            return Err(meta_err("only the 'code' response type is supported"));
        }
        // RFC 7591 s2.1: grant_types and response_types must agree.
        if wants_code != response_types.contains(&"code".to_owned()) {
            return Err(meta_err("authorization_code grant and 'code' response type go together"));
        }
        if wants_code && self.redirect_uris.is_empty() {
            return Err(redirect_err("redirect_uris is required for the authorization_code grant"));
        }
        for uri in &self.redirect_uris {
            check_uri(uri, dev).map_err(|e| redirect_err(format!("redirect_uri '{uri}': {e}")))?;
        }
        for uri in &self.post_logout_redirect_uris {
            check_uri(uri, dev).map_err(|e| meta_err(format!("post_logout_redirect_uri '{uri}': {e}")))?;
        }
        for (name, uri) in [
            ("backchannel_logout_uri", &self.backchannel_logout_uri),
            ("frontchannel_logout_uri", &self.frontchannel_logout_uri),
        ] {
            if let Some(uri) = uri {
                check_uri(uri, dev).map_err(|e| meta_err(format!("{name}: {e}")))?;
            }
        }
        let auth_method = match &self.token_endpoint_auth_method {
            None => AuthMethod::ClientSecretBasic,
            Some(m) => {
                AuthMethod::parse(m).ok_or_else(|| meta_err(format!("unsupported token_endpoint_auth_method '{m}'")))?
            }
        };
        if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(meta_err("a public client cannot use client_credentials"));
        }
        // RFC 8693 s2.1: the exchanging client authenticates; a public one cannot.
        if auth_method == AuthMethod::None && grant_types.contains(&GrantType::TokenExchange) {
            return Err(meta_err("a public client cannot use token exchange"));
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(meta_err("jwks and jwks_uri must not both be present (RFC 7591 s2)"));
        }
        if let Some(set) = &self.jwks
            && (set.keys.is_empty() || set.keys.iter().any(|k| VerifyKey::from_jwk(k).is_none()))
        {
            return Err(meta_err("jwks must hold usable public keys (EC P-256, RSA >= 2048, Ed25519)"));
        }
        if let Some(uri) = &self.jwks_uri {
            check_uri(uri, dev).map_err(|e| meta_err(format!("jwks_uri: {e}")))?;
        }
        if auth_method == AuthMethod::PrivateKeyJwt && self.jwks.is_none() && self.jwks_uri.is_none() {
            return Err(meta_err("private_key_jwt needs jwks or jwks_uri"));
        }
        let id_token_alg = match self.id_token_signed_response_alg.as_deref() {
            None => match who {
                Registrar::Dynamic => Alg::RS256,
                Registrar::Admin => Alg::ES256,
            },
            Some(a) => {
                Alg::parse(a).ok_or_else(|| meta_err(format!("unsupported id_token_signed_response_alg '{a}'")))?
            }
        };
        // RFC 7591 s2: without `scope` the server picks a default. Relying-party libraries
        // register without one and then ask for the standard scopes, so a self-registered
        // client gets the standard user scopes; business and admin scopes stay admin-granted.
        let default = match who {
            Registrar::Dynamic => USER_SCOPES.join(" "),
            Registrar::Admin => "openid".to_owned(),
        };
        let scopes = parse_scope(self.scope.as_deref().unwrap_or(&default)).map_err(|e| meta_err(e.description))?;
        if who == Registrar::Dynamic
            && let Some(s) = scopes.iter().find(|s| !USER_SCOPES.contains(&s.as_str()))
        {
            return Err(meta_err(format!("scope '{s}' cannot be self-registered; ask an administrator")));
        }
        let subject_type = match self.subject_type.as_deref() {
            None => SubjectType::Public,
            Some(t) => SubjectType::parse(t).ok_or_else(|| meta_err(format!("unsupported subject_type '{t}'")))?,
        };
        if let Some(uri) = &self.sector_identifier_uri {
            // OIDC Core s8.1.1: it must use https (http on loopback in dev mode, for tests).
            check_uri(uri, dev).map_err(|e| meta_err(format!("sector_identifier_uri: {e}")))?;
        }
        if let Some(uri) = &self.policy_uri {
            // Shown to people as a link: a web page only, never `javascript:` or `data:`.
            check_uri(uri, dev).map_err(|e| meta_err(format!("policy_uri: {e}")))?;
        }
        if subject_type == SubjectType::Pairwise && self.sector_identifier_uri.is_none() {
            // OIDC Core s8.1: redirect URIs on several hosts need a sector identifier.
            let host = |u: &String| url::Url::parse(u).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
            let mut hosts: Vec<Option<String>> = self.redirect_uris.iter().map(host).collect();
            hosts.sort();
            hosts.dedup();
            if hosts.len() > 1 {
                return Err(meta_err(
                    "pairwise subjects with redirect URIs on several hosts need a sector_identifier_uri (OIDC Core s8.1)",
                ));
            }
        }
        let name = self.client_name.clone().unwrap_or_else(|| client_id.clone());
        if name.chars().count() > 200 {
            return Err(meta_err("client_name is too long"));
        }
        Ok(Client {
            client_id,
            name,
            secrets: Vec::new(),
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types,
            scopes,
            auth_method,
            id_token_alg,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            frontchannel_logout_uri: self.frontchannel_logout_uri,
            frontchannel_logout_session_required: self.frontchannel_logout_session_required,
            consent_required: who == Registrar::Dynamic,
            enabled: true,
            origin: match who {
                Registrar::Dynamic => Origin::Dynamic,
                Registrar::Admin => Origin::Admin,
            },
            registration_token_sealed: None,
            access_token_ttl: None,
            refresh_token_ttl: None,
            app_id: None,
            lifecycle: None,
            rate_limit: None,
            token_exchange: None,
            min_level: None,
            created_at: now,
            subject_type,
            sector_identifier_uri: self.sector_identifier_uri,
            legacy_login: false,
            policy_uri: self.policy_uri,
        })
    }

    /// The metadata view of a stored client.
    pub fn of(c: &Client) -> Self {
        Self {
            redirect_uris: c.redirect_uris.clone(),
            grant_types: Some(c.grant_types.iter().map(|g| g.as_str().to_owned()).collect()),
            response_types: Some(if c.allows(GrantType::AuthorizationCode) { vec!["code".into()] } else { vec![] }),
            token_endpoint_auth_method: Some(c.auth_method.as_str().to_owned()),
            client_name: Some(c.name.clone()),
            scope: Some(c.scopes.join(" ")),
            id_token_signed_response_alg: Some(c.id_token_alg.as_str().to_owned()),
            jwks: c.jwks.clone(),
            jwks_uri: c.jwks_uri.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            frontchannel_logout_uri: c.frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: c.frontchannel_logout_session_required,
            subject_type: Some(c.subject_type.as_str().to_owned()),
            sector_identifier_uri: c.sector_identifier_uri.clone(),
            policy_uri: c.policy_uri.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Metadata {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_follow_rfc7591() {
        let c = meta(r#"{"redirect_uris":["https://app.example/cb"],"unknown_field":1}"#)
            .into_client("c1".into(), Registrar::Dynamic, false, 0)
            .unwrap();
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.id_token_alg, Alg::RS256, "OIDC Registration s2: RS256 when nothing registered");
    }

    #[test]
    fn token_exchange_grant_type_is_registrable() {
        // RFC 8693 s2.1 grant type URN in RFC 7591 s2 grant_types.
        let c = meta(r#"{"grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"]}"#)
            .into_client("c1".into(), Registrar::Admin, false, 0)
            .unwrap();
        assert_eq!(c.grant_types, vec![GrantType::TokenExchange]);
        assert_eq!(Metadata::of(&c).grant_types.unwrap(), vec!["urn:ietf:params:oauth:grant-type:token-exchange"]);
    }

    #[test]
    fn bad_metadata_is_named() {
        let e = meta(r#"{"redirect_uris":["http://evil.example/cb"]}"#)
            .into_client("c".into(), Registrar::Dynamic, false, 0)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRedirectUri);
        let e = meta(r#"{"redirect_uris":["https://a.example/cb#frag"]}"#)
            .into_client("c".into(), Registrar::Dynamic, false, 0)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRedirectUri);
        let e = meta(r#"{"redirect_uris":["https://a.example/cb"],"scope":"tongzheng:admin"}"#)
            .into_client("c".into(), Registrar::Dynamic, false, 0)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClientMetadata);
        let e = meta(r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#)
            .into_client("c".into(), Registrar::Dynamic, false, 0)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClientMetadata);
        let e = meta(
            r#"{"grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"],"token_endpoint_auth_method":"none"}"#,
        )
        .into_client("c".into(), Registrar::Dynamic, false, 0)
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClientMetadata, "RFC 8693 s2.1: a public client cannot exchange");
        assert!(
            meta(r#"{"redirect_uris":["http://127.0.0.1:9000/cb"]}"#)
                .into_client("c".into(), Registrar::Dynamic, true, 0)
                .is_ok()
        );
    }
}
