//! Unit tests of the pure token exchange rules: parameters (RFC 8693 s2.1), targets (s2.2.2,
//! RFC 8707 s2), scope intersection (AY-7.1) and the `act` chain (s4.1).

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::clients::{AuthMethod, Origin};
use crate::jwt::Alg;

fn params(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

fn parse(pairs: &[(&'static str, &'static str)]) -> Result<Request<'static>, OAuthError> {
    let p = params(pairs);
    Request::parse(|k| p.get(k).copied())
}

const BASE: [(&str, &str); 3] =
    [("subject_token", "a.b.c"), ("subject_token_type", ACCESS_TOKEN_TYPE), ("audience", "https://api.example")];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    BASE.iter().copied().chain(extra.iter().copied()).collect()
}

fn client(scopes: &[&str]) -> Client {
    Client {
        client_id: "gateway".into(),
        name: "gateway".into(),
        secrets: Vec::new(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::TokenExchange],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        auth_method: AuthMethod::ClientSecretBasic,
        id_token_alg: Alg::ES256,
        jwks: None,
        jwks_uri: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        frontchannel_logout_uri: None,
        frontchannel_logout_session_required: false,
        consent_required: false,
        enabled: true,
        origin: Origin::Admin,
        registration_token_sealed: None,
        access_token_ttl: None,
        refresh_token_ttl: None,
        app_id: None,
        lifecycle: None,
        rate_limit: None,
        token_exchange: None,
        min_level: None,
        created_at: 0,
        subject_type: crate::clients::SubjectType::Public,
        sector_identifier_uri: None,
        legacy_login: false,
        policy_uri: None,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn parameters_follow_s2_1() {
    let r = parse(&BASE).unwrap();
    assert_eq!(r.subject_token_type, TokenType::AccessToken);
    assert_eq!(r.requested, TokenType::AccessToken, "s2.1: access_token when not requested");
    assert_eq!(r.actor, None);
    // s2.1: subject_token and subject_token_type are REQUIRED.
    for missing in ["subject_token", "subject_token_type"] {
        let rest: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != missing).collect();
        let e = parse(&rest).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{missing}");
        assert!(e.description.contains(missing));
    }
    let e = parse(&[("subject_token", "x"), ("subject_token_type", "urn:ietf:params:oauth:token-type:saml2")]);
    assert_eq!(e.unwrap_err().code, ErrorCode::InvalidRequest);
    // s2.1: actor_token_type is REQUIRED when actor_token is present and MUST NOT be otherwise.
    assert_eq!(parse(&with(&[("actor_token", "x")])).unwrap_err().code, ErrorCode::InvalidRequest);
    assert_eq!(parse(&with(&[("actor_token_type", JWT_TYPE)])).unwrap_err().code, ErrorCode::InvalidRequest);
    let r = parse(&with(&[("actor_token", "d.e.f"), ("actor_token_type", ID_TOKEN_TYPE)])).unwrap();
    assert_eq!(r.actor, Some(("d.e.f", TokenType::IdToken)));
    // Tokens here are for a named API: audience or resource is required.
    let e = parse(&[("subject_token", "x"), ("subject_token_type", JWT_TYPE)]).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(parse(&[("subject_token", "x"), ("subject_token_type", JWT_TYPE), ("resource", "https://r")]).is_ok());
    // requested_token_type: access_token or jwt only.
    assert_eq!(parse(&with(&[("requested_token_type", JWT_TYPE)])).unwrap().requested, TokenType::Jwt);
    for bad in [ID_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:refresh_token", "bearer"] {
        let e = parse(&with(&[("requested_token_type", bad)])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{bad}");
    }
    assert_eq!(parse(&with(&[("scope", "a b a")])).unwrap().scope, Some(strings(&["a", "b"])));
    assert_eq!(parse(&with(&[("scope", "bad\"scope")])).unwrap_err().code, ErrorCode::InvalidScope);
}

#[test]
fn targets_need_the_policy() {
    let policy = ExchangePolicy {
        issuers: Vec::new(),
        audiences: strings(&["https://api.example", "tax-api", "https://res.example/v1"]),
    };
    let r = parse(&BASE).unwrap();
    assert_eq!(target(&policy, &r).unwrap(), Audience::One("https://api.example".into()));
    let r = parse(&with(&[("resource", "https://res.example/v1")])).unwrap();
    assert_eq!(
        target(&policy, &r).unwrap(),
        Audience::Many(strings(&["https://api.example", "https://res.example/v1"]))
    );
    // RFC 8693 s2.2.2: a target the client may not obtain is invalid_target, whichever names it.
    let r = parse(&with(&[("resource", "https://other.example")])).unwrap();
    assert_eq!(target(&policy, &r).unwrap_err().code, ErrorCode::InvalidTarget);
    let r = parse(&[("subject_token", "x"), ("subject_token_type", JWT_TYPE), ("audience", "payroll")]).unwrap();
    assert_eq!(target(&policy, &r).unwrap_err().code, ErrorCode::InvalidTarget);
    // RFC 8707 s2: resource is an absolute URI without a fragment.
    let r = parse(&[("subject_token", "x"), ("subject_token_type", JWT_TYPE), ("resource", "tax-api")]).unwrap();
    assert_eq!(target(&policy, &r).unwrap_err().code, ErrorCode::InvalidTarget);
    let r = parse(&[("subject_token", "x"), ("subject_token_type", JWT_TYPE), ("audience", "tax-api")]).unwrap();
    assert_eq!(target(&policy, &r).unwrap(), Audience::One("tax-api".into()));
}

#[test]
fn scope_is_the_intersection() {
    // AY-7.1: subject token ∩ client grant (∩ request), never offline_access.
    let c = client(&["openid", "profile", "api.read", "api.write", "offline_access"]);
    let subject = strings(&["openid", "api.read", "email", "offline_access"]);
    assert_eq!(issued_scope(&subject, &c, None).unwrap(), strings(&["openid", "api.read"]));
    assert_eq!(issued_scope(&subject, &c, Some(&strings(&["api.read"]))).unwrap(), strings(&["api.read"]));
    let e = issued_scope(&subject, &c, Some(&strings(&["api.write"]))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidScope, "beyond the subject token");
    assert!(e.description.contains("subject"));
    let e = issued_scope(&subject, &c, Some(&strings(&["email"]))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidScope, "never granted to the client");
    assert!(e.description.contains("not granted"));
    let e = issued_scope(&subject, &c, Some(&strings(&["offline_access"]))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidScope);
    assert!(issued_scope(&strings(&["x"]), &c, None).unwrap().is_empty());
}

fn presented(iss: &str, sub: &str, act: Option<Value>) -> Presented {
    Presented { iss: iss.into(), sub: sub.into(), act, ..Presented::default() }
}

#[test]
fn act_chain_nests_prior_actors() {
    let ours = "https://b.example";
    // No actor, no prior delegation: no act (impersonation semantics, RFC 8693 s1.1).
    assert_eq!(act_chain(ours, &presented(ours, "u1", None), None, &|s: &str| s.to_owned()).unwrap(), None);
    // RFC 8693 s4.1: the current actor; iss only when it is not ours.
    let actor = presented(ours, "svc", None);
    assert_eq!(
        act_chain(ours, &presented(ours, "u1", None), Some(&actor), &|s: &str| s.to_owned()).unwrap(),
        Some(json!({"sub": "svc"}))
    );
    let foreign = presented("https://a.example", "svc-a", None);
    assert_eq!(
        act_chain(ours, &presented(ours, "u1", None), Some(&foreign), &|s: &str| s.to_owned()).unwrap(),
        Some(json!({"sub": "svc-a", "iss": "https://a.example"}))
    );
    // s4.1: a subject already delegated nests its chain under the new actor; a peer's chain
    // gets the peer's issuer where it was implied; extra members are dropped.
    let prior = json!({"sub": "first", "exp": 1, "act": {"sub": "zeroth", "iss": "https://c.example"}});
    let subject = presented("https://a.example", "u1", Some(prior));
    assert_eq!(
        act_chain(ours, &subject, Some(&actor), &|s: &str| s.to_owned()).unwrap(),
        Some(json!({"sub": "svc", "act": {"sub": "first", "iss": "https://a.example",
                     "act": {"sub": "zeroth", "iss": "https://c.example"}}}))
    );
    // Without an actor a delegated subject stays delegated.
    let local = presented(ours, "u1", Some(json!({"sub": "first"})));
    assert_eq!(act_chain(ours, &local, None, &|s: &str| s.to_owned()).unwrap(), Some(json!({"sub": "first"})));
    // Malformed or endless chains are refused.
    let bad = presented(ours, "u1", Some(json!({"iss": "x"})));
    assert_eq!(act_chain(ours, &bad, None, &|s: &str| s.to_owned()).unwrap_err().code, ErrorCode::InvalidRequest);
    let mut deep = json!({"sub": "s0"});
    for i in 1..=MAX_ACT_DEPTH {
        deep = json!({"sub": format!("s{i}"), "act": deep});
    }
    assert!(act_chain(ours, &presented(ours, "u1", Some(deep)), Some(&actor), &|s: &str| s.to_owned()).is_err());
}

#[test]
fn token_types_round_trip() {
    for t in [TokenType::AccessToken, TokenType::IdToken, TokenType::Jwt] {
        assert_eq!(TokenType::parse(t.as_str()), Some(t));
    }
    assert_eq!(GrantType::parse(crate::clients::TOKEN_EXCHANGE), Some(GrantType::TokenExchange));
    assert_eq!(GrantType::TokenExchange.as_str(), "urn:ietf:params:oauth:grant-type:token-exchange");
}
