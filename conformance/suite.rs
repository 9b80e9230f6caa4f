//! The order of the checks of one pass, with what each proves. Later checks build on values
//! earlier ones produced; when one is missing they fail with "prerequisite failed".

use crate::report::{Check, Id, Runner};
use crate::rp::Rp;
use crate::{flows, logout, negative, pages, registration, signup, tokens};

/// The first row of a pass: the instance runs and says so (SH-6.2.4d: the health address
/// reports the real state of the store and the keys).
pub const READY: Id = (
    "SH-6.2.4d, DC-7",
    "REQUIREMENTS.md SH-6.2.4d (health address)",
    "instance started; /readyz reports store and keys ready",
);

/// Runs every check against `base` (`refresh_grace = 10`) and `strict` (the default, 0).
pub async fn run(base: &str, strict: &str, run: &mut Runner<'_>) {
    let rp = match Rp::new(base).await {
        Ok(rp) => rp,
        Err(err) => {
            run.record(("DC-1", "OIDC Discovery s4", "relying party set up"), Check::<()>::Err(err));
            return;
        }
    };
    let ready = readyz(&rp).await;
    run.record(READY, ready);

    // Discovery and keys.
    run.record(
        (
            "DC-1",
            "OIDC Discovery s3, s4.2, s4.3",
            "openidconnect discovery; issuer equals the URL prefix; required metadata",
        ),
        flows::discovery(&rp).await,
    );
    run.record(
        (
            "DC-1",
            "RFC 8414 s2, s3, s3.3",
            "/.well-known/oauth-authorization-server: issuer identical, required metadata",
        ),
        flows::as_metadata(&rp).await,
    );
    run.record(
        (
            "DC-1",
            "RFC 7636 s4.3, RFC 9207 s3, RFC 7591 s3",
            "metadata: S256 only, iss response parameter, registration endpoint, grant types",
        ),
        flows::metadata_features(&rp).await,
    );
    run.record(
        (
            "AY-7.2b, GB-6.8b",
            "RFC 7517 s4, s5; OIDC Core s10.1",
            "JWKS fetched by openidconnect: unique kids, signing use, no private members",
        ),
        flows::jwks(&rp).await,
    );

    // HL-5.3 with the confidential client.
    let pending = run.record(
        (
            "HL-5.3, DC-6",
            "RFC 6749 s4.1.1, OIDC Core s3.1.2.3",
            "no session: /authorize remembers the request and shows the login form",
        ),
        flows::login_redirect(&rp).await,
    );
    run.record(
        ("HL-5.3", "OIDC Core s3.1.2.3", "wrong password: the login form again, no redirect"),
        flows::wrong_password(&rp, pending.as_ref()).await,
    );
    let landed = run.record(
        ("HL-5.3, DC-6, DC-1", "RFC 6749 s4.1.2", "login: back to the registered redirect URI with code and state"),
        flows::login_post(&rp, pending).await,
    );
    let (code, response) = landed.map_or((None, None), |(c, q)| (Some(c), Some(q)));
    run.record(
        ("DC-1, GB-6.8b", "RFC 9207 s2", "authorization response carries iss equal to the issuer"),
        flows::iss_param(&rp, response.as_ref()),
    );
    let exchanged = run.record(
        (
            "DC-1, DC-6",
            "RFC 6749 s4.1.3, s2.3.1; RFC 7636 s4.5",
            "code exchange by openidconnect: client_secret_basic + code_verifier",
        ),
        flows::exchange(&rp, code).await,
    );
    run.record(
        (
            "DC-1, AY-7.2a",
            "RFC 6749 s5.1, OIDC Core s3.1.3.3",
            "code grant response: Bearer, expires_in, refresh token, ID token, scope",
        ),
        flows::code_response(exchanged.as_ref()),
    );
    let user = run.record(
        (
            "DC-1, HL-5.3, GB-6.8b",
            "OIDC Core s3.1.3.7, s3.1.3.8",
            "ID token verified by openidconnect: JWKS signature, iss, aud, exp, nonce, at_hash",
        ),
        flows::id_token(&rp, exchanged.as_ref()).await,
    );
    let user = user.as_ref();
    let sso_code = run.record(
        ("HL-5.3, GB-6.4c", "OIDC Core s3.1.2.1", "live session: /authorize returns a code at once"),
        flows::sso(&rp).await,
    );

    // The public client.
    run.record(
        ("DC-1", "RFC 7636 s4.1-s4.6, RFC 6749 s2.1", "public client demo-spa: code flow with PKCE S256, no secret"),
        flows::spa_flow(&rp).await,
    );
    run.record(
        (
            "DC-1",
            "RFC 7636 s4.4.1, RFC 9700 s2.1.1",
            "public client without code_challenge: invalid_request to the client",
        ),
        flows::spa_no_pkce(&rp).await,
    );
    run.record(
        ("DC-1", "RFC 7636 s4.2, s4.4.1; RFC 9700 s2.1.1", "code_challenge_method=plain refused"),
        flows::spa_plain(&rp).await,
    );

    // UserInfo.
    run.record(
        (
            "GB-6.4b, HL-5.3, SH-8.2",
            "OIDC Core s5.3.1, s5.3.2, s5.4",
            "UserInfo by openidconnect; sub equals the ID token's; claims by scope",
        ),
        flows::userinfo(&rp, user).await,
    );
    run.record(
        ("GB-6.8b", "RFC 6750 s3, s3.1", "UserInfo with an invalid token: 401, WWW-Authenticate error=invalid_token"),
        flows::userinfo_bad_token(&rp).await,
    );
    run.record(
        ("GB-6.8b", "RFC 6750 s3, s3.1", "UserInfo without a token: 401, bare Bearer challenge"),
        flows::userinfo_no_token(&rp).await,
    );
    run.record(
        ("AY-7.1", "RFC 6750 s3.1, OIDC Core s5.3", "token without openid at UserInfo: 403 insufficient_scope"),
        flows::userinfo_scope(&rp).await,
    );

    // Access tokens, client credentials.
    run.record(
        (
            "AY-7.2b",
            "RFC 9068 s2.1, s2.2, s4",
            "access token: JWT typ at+jwt, signature verifies against the JWKS, required claims",
        ),
        tokens::at_jwt(&rp, user).await,
    );
    run.record(
        (
            "DC-2",
            "RFC 6749 s4.4.2, s4.4.3",
            "client credentials by openidconnect for admin-cli: token, granted scope, no refresh token",
        ),
        tokens::client_credentials(&rp).await,
    );
    run.record(
        ("AY-7.2a", "RFC 6749 s5.1", "token response: access_token, token_type Bearer, expires_in"),
        tokens::token_response_fields(&rp).await,
    );
    run.record(
        ("GB-6.8b", "RFC 6749 s5.1", "token responses carry Cache-Control no-store and Pragma no-cache"),
        tokens::token_headers(&rp).await,
    );
    run.record(
        ("AY-7.1", "RFC 6749 s4.4.2, s5.2", "scope not granted to the client: 400 invalid_scope"),
        tokens::invalid_scope(&rp).await,
    );
    run.record(
        ("AY-7.1", "RFC 6749 s3.3, RFC 9068 s2.2.3", "token carries only the requested, granted scope"),
        tokens::least_privilege(&rp).await,
    );

    // Introspection and revocation.
    run.record(
        ("AY-7.2b", "RFC 7662 s2.1, s2.2", "introspection by openidconnect: active, client_id, sub, scope, exp"),
        tokens::introspect_active(&rp, user).await,
    );
    run.record(
        ("AY-7.2b", "RFC 7662 s2.2", "unknown or tampered token introspects as {\"active\": false} only"),
        tokens::introspect_inactive(&rp, user).await,
    );
    run.record(
        ("AY-7.2b", "RFC 7662 s2.1", "introspection without client authentication: 401 invalid_client"),
        tokens::introspect_auth(&rp).await,
    );
    run.record(
        (
            "AY-7.2c, AY-8.5.3.2",
            "RFC 7009 s2.1, s2.2",
            "revoking an access token: inactive at introspection, 401 at UserInfo",
        ),
        tokens::revoke_access(&rp).await,
    );
    run.record(
        ("DC-3, AY-7.2c", "RFC 7009 s2.1", "revoking a refresh token: its access tokens inactive, refresh refused"),
        tokens::revoke_refresh(&rp).await,
    );
    run.record(
        ("AY-7.2c", "RFC 7009 s2.2", "revoking an unknown token answers 200"),
        tokens::revoke_unknown(&rp).await,
    );

    // Refresh.
    let refreshed = run.record(
        ("DC-3, AY-7.2c", "RFC 6749 s6, s5.1", "refresh by openidconnect: new access token, rotated refresh token"),
        flows::refresh(&rp, user).await,
    );
    let rotated = user.filter(|_| refreshed.is_some());
    run.record(
        (
            "DC-3",
            "RFC 9700 s4.14.2 (tokens.refresh_grace = 10 s)",
            "rotated refresh token retried within an enabled grace window: the same successor, no new branch",
        ),
        flows::refresh_within_grace(&rp, rotated).await,
    );
    let strict_rp = Rp::new(strict).await;
    let reuse = match &strict_rp {
        Ok(s) => flows::refresh_reuse(s).await,
        Err(err) => Err(format!("prerequisite failed: second instance: {err}")),
    };
    run.record(
        (
            "DC-3",
            "RFC 9700 s4.14.2, RFC 6749 s10.4",
            "rotated refresh token reused (default refresh_grace = 0, same second): invalid_grant, family revoked",
        ),
        reuse,
    );

    // Dynamic registration.
    let reg = run.record(
        (
            "AY-8.2, DC-11",
            "RFC 7591 s3.1, s3.2.1; RFC 7592 s3",
            "dynamic registration by openidconnect with the initial access token",
        ),
        registration::register(&rp).await,
    );
    let reg = reg.as_ref();
    run.record(
        ("AY-8.2", "RFC 7591 s3, RFC 6750 s3.1", "registration without or with a wrong initial access token: 401"),
        registration::register_unauthorized(&rp).await,
    );
    run.record(
        ("GB-6.8b", "RFC 7591 s2, s3.2.2", "plain-http redirect URI: invalid_redirect_uri"),
        registration::register_bad_redirect(&rp).await,
    );
    run.record(
        ("DC-11", "RFC 7592 s2.1, s3", "read the registration with its access token; a wrong token gets 401"),
        registration::read(&rp, reg).await,
    );
    run.record(
        ("DC-11", "RFC 7592 s2.2", "update the registration: redirect_uris replaced"),
        registration::update(&rp, reg).await,
    );
    let consent_browser = run.record(
        (
            "SH-8.2",
            "OIDC Core s3.1.2.4, RFC 6749 s4.1.2.1",
            "registered client: consent page after login; deny gives access_denied",
        ),
        registration::consent_deny(&rp, reg).await,
    );
    run.record(
        (
            "DC-1, DC-11",
            "OIDC Core s3.1.2.4, s3.1.3.7",
            "registered client: consent allow, code, tokens, RS256 ID token verified",
        ),
        registration::consent_allow(&rp, reg, consent_browser).await,
    );
    run.record(
        ("DC-11, AY-8.6.3", "RFC 7592 s2.3", "delete the registration: 204; then 401 and the client is unusable"),
        registration::delete(&rp, reg).await,
    );

    // The login and consent pages (issue 11).
    run.record(
        (
            "JM-5.6, SH-D",
            "REQUIREMENTS.md JM-5.6",
            "login page: 个人/法人 tabs as links, sign-up, reset, agreement, privacy",
        ),
        pages::login_tabs(&rp).await,
    );
    run.record(
        (
            "SH-8.2",
            "OIDC Core s3.1.2.4, s3.1.2.6",
            "sensitive scope: consent page marks it even for a no-consent client",
        ),
        pages::sensitive_consent(&rp).await,
    );

    // Negative cases.
    run.record(
        ("DC-1, GB-6.8b", "RFC 6749 s4.1.2.1", "unknown client_id: error page, never redirected"),
        negative::unknown_client(&rp).await,
    );
    run.record(
        ("DC-1, GB-6.8b", "RFC 6749 s4.1.2.1, s3.1.2.4", "unregistered redirect_uri: error page, never redirected"),
        negative::bad_redirect_uri(&rp).await,
    );
    run.record(
        ("DC-1", "RFC 6749 s4.1.2.1", "response_type=token: unsupported_response_type to the client"),
        negative::unsupported_response_type(&rp).await,
    );
    run.record(
        ("DC-1", "RFC 6749 s4.1.2, s5.2", "replayed code: invalid_grant and the tokens it issued revoked"),
        negative::code_replay(&rp).await,
    );
    run.record(
        ("DC-1", "RFC 7636 s4.5, s4.6", "missing or wrong code_verifier: invalid_grant"),
        negative::pkce_mismatch(&rp, sso_code).await,
    );
    run.record(
        ("DC-1", "RFC 6749 s4.1.3", "redirect_uri differing from the authorization request: invalid_grant"),
        negative::redirect_mismatch(&rp).await,
    );
    run.record(
        ("GB-6.9.3", "RFC 6749 s5.2", "wrong client secret: 401 invalid_client with WWW-Authenticate Basic"),
        negative::wrong_secret(&rp).await,
    );
    run.record(
        ("GB-6.9.3", "RFC 6749 s5.2", "unsupported grant_type (password): unsupported_grant_type"),
        negative::unsupported_grant(&rp).await,
    );
    run.record(
        ("GB-6.9.3", "RFC 6749 s3.1", "repeated parameter: invalid_request at /token, error page at /authorize"),
        negative::repeated_parameter(&rp).await,
    );
    run.record(
        ("GB-6.9.3", "RFC 6749 s3.2, s4.1.3", "/token body not application/x-www-form-urlencoded: invalid_request"),
        negative::wrong_content_type(&rp).await,
    );
    run.record(
        ("GB-6.9.3", "RFC 6749 s4.4.2, s5.2", "missing grant_type: invalid_request"),
        negative::missing_grant_type(&rp).await,
    );
    run.record(
        (
            "HL-5.3, GB-6.4c",
            "OIDC Core s3.1.2.6, RFC 9207 s2",
            "prompt=none without a session: login_required to the client with state and iss",
        ),
        negative::prompt_none(&rp).await,
    );
    run.record(
        (
            "GB-6.8b, AY-7.2b",
            "RFC 6750 s3.1, RFC 7515 s5.2",
            "malformed, unsigned or tampered JWT bearer at UserInfo: 401 invalid_token",
        ),
        negative::malformed_bearer(&rp, user).await,
    );

    // Application lifecycle, least privilege, call control, audit (issue 4).
    crate::lifecycle::run(&rp, run).await;

    // One registration page (HL-5.2, GB-6.4a).
    run.record(
        ("HL-5.2", "OpenID Connect Prompt Create 1.0 s4.2", "discovery lists prompt value create"),
        signup::advertised(&rp).await,
    );
    run.record(
        ("HL-5.2, GB-6.4a", "OpenID Connect Prompt Create 1.0 s4.1", "prompt=create shows the registration page"),
        signup::shows_registration(&rp).await,
    );
    run.record(
        ("HL-5.2", "OIDC Core s3.1.2.1; Prompt Create 1.0 s4.1", "prompt=none create: invalid_request"),
        signup::none_with_create(&rp).await,
    );
    run.record(
        ("HL-5.2, SH-8.2", "RFC 6749 s4.1.2.1 (no 5xx for bad input)", "forged or malformed registration posts: 4xx"),
        signup::bad_input(&rp).await,
    );
    // Natural and legal persons through the admin API (issue 11, part A).
    crate::persons::run(&rp, run).await;
    // The directory: SCIM, visible scope, change feed (issue 12).
    crate::directory::run(&rp, run).await;

    // Assurance levels and real-name verification (issue 11, HL-6.1, GB-6.4a).
    crate::assurance::run(&rp, run).await;
    // JM-B legacy direct login (issue 11).
    crate::legacy::run(&rp, run).await;
    // The account page: login first, consent revocation ends tokens (issue 11, SH-8.2).
    crate::account::run(&rp, run).await;

    // Logout (last: it ends the browser's session).
    run.record(
        (
            "DC-4, GB-6.4d",
            "RP-Initiated Logout s2, s3",
            "end_session with id_token_hint: logged out, redirected with state",
        ),
        logout::rp_logout(&rp).await,
    );
    run.record(
        (
            "DC-4, HL-5.4",
            "Back-Channel Logout s2.4-s2.6",
            "backend logout (HL-5.4) reaches the other RP with a valid logout token",
        ),
        logout::backchannel(&rp).await,
    );
    run.record(
        ("DC-4", "Front-Channel Logout s3", "logout page embeds the RP's front-channel URI with iss and sid"),
        logout::frontchannel(&rp).await,
    );
}

async fn readyz(rp: &Rp) -> Check {
    let r = rp.http.get(rp.url("/readyz")).send().await.map_err(crate::rp::e("readyz"))?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.map_err(crate::rp::e("readyz JSON"))?;
    crate::report::ensure(status == 200 && v["store"] == "ok" && v["keys"] == "ok", format!("{status} {v}"))
}
