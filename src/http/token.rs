//! `/token` (RFC 6749 s3.2): authenticates the client once, then hands the request to its
//! grant. Success is RFC 6749 s5.1 JSON with `Cache-Control: no-store`; errors are s5.2 JSON.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::AppState;
use super::extract::Meta;
use super::extract::{Authorization, Form, Params, credentials};
use crate::audit::{Event, Kind, Outcome};
use crate::clients::{self, Client, Credentials, Endpoint, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::TokenResponse;
use crate::grant::{client_credentials, code, refresh, token_exchange};
use crate::guard::{self, GuardError};
use crate::http::error::JsonError;

/// Authenticates the client of a token-style request (token, introspect, revoke, backend
/// logout, federation) and checks it may call `endpoint` now ([`clients::admit`]; `/token`
/// checks that itself, after the grant type is known, so the refusal is audited with the
/// client). A shared secret is checked behind the guessing guard (RFC 6749 s10.10): a client id
/// and address with too many failures is refused unchecked (429), a failure counts, a success
/// resets the client's counters.
pub async fn authenticate(
    state: &AppState,
    meta: &Meta,
    authorization: Option<&HeaderValue>,
    form: &mut super::extract::Params,
    endpoint: Endpoint,
) -> Result<Arc<Client>, JsonError> {
    authenticate_reading(state, meta, authorization, form, endpoint, &[]).await.map(|(client, _)| client)
}

/// Records read with a client's authentication, in the order asked; `None` when the client's
/// method made no store read to add them to (a signed assertion).
pub type ReadAlong = Option<crate::tokens::validity::Records>;

/// As [`authenticate`], and reads the records under `more` in the same store round trip as
/// the guessing guard's marks and the client's record (introspection's token state).
pub async fn authenticate_reading(
    state: &AppState,
    meta: &Meta,
    authorization: Option<&HeaderValue>,
    form: &mut super::extract::Params,
    endpoint: Endpoint,
    more: &[String],
) -> Result<(Arc<Client>, ReadAlong), JsonError> {
    let creds = credentials(authorization, form)?;
    let url: std::borrow::Cow<'_, str> = match endpoint {
        Endpoint::Token => state.urls.token.as_str().into(),
        Endpoint::Introspection => state.urls.introspect.as_str().into(),
        Endpoint::Revocation => state.urls.revoke.as_str().into(),
        Endpoint::Logout => format!("{}/logout", state.config.issuer).into(),
        Endpoint::RegistrationSync => format!("{}/federation/v1/registrations", state.config.issuer).into(),
    };
    let (client, read) = guarded(state, meta, creds, &url, more).await?;
    if endpoint != Endpoint::Token {
        clients::admit(&client, endpoint)?;
    }
    Ok((client, read))
}

/// Client authentication behind the guessing guard; `endpoint` is the URL an assertion may name.
async fn guarded(
    state: &AppState,
    meta: &Meta,
    creds: Credentials,
    endpoint: &str,
    more: &[String],
) -> Result<(Arc<Client>, ReadAlong), JsonError> {
    let audiences = [endpoint, state.config.issuer.as_str(), state.urls.token.as_str()];
    let now = state.clock.now();
    // Only shared secrets can be guessed; a signed assertion or a public client cannot.
    let claimed = match &creds {
        Credentials::Basic { client_id, .. } | Credentials::Post { client_id, .. } => Some(client_id.clone()),
        _ => None,
    };
    let Some(claimed) = claimed else {
        // Boxed: a signed assertion may fetch the client's JWKS, a future far larger than the
        // shared-secret path's; inline, every secret-authenticated request would carry (and
        // copy) its space (issue 13).
        return Box::pin(clients::authenticate(&state.store, &state.clients, &state.jwks, creds, &audiences, now))
            .await
            .map(|a| (a.client, None))
            .map_err(JsonError::from);
    };
    let cfg = &state.config.guard;
    let attempt = guard::Attempt::new(guard::Realm::ClientSecret, &claimed, meta.ip.as_deref());
    // The guard's counters, the client's record (absent for an id no record can have) and then
    // `more` are read in one store round trip; a held attempt's secret is never checked (it
    // neither counts nor answers).
    let record = clients::record_key(&claimed);
    let has_record = record.is_some();
    let extra: Vec<String> = record.into_iter().chain(more.iter().cloned()).collect();
    let admitted = guard::admit_with(&state.store, cfg, attempt, now, extra).await;
    let (admitted, read) = match admitted {
        Ok((a, mut values)) => {
            let rest = values.split_off(usize::from(has_record).min(values.len()));
            let raw = values.into_iter().next().flatten();
            ((a, clients::authenticate_record(&state.clients, creds, raw.as_deref(), now)), rest)
        }
        Err(GuardError::Store(e)) => return Err(e.into()),
        Err(GuardError::Throttled(r)) => {
            let detail = json!({"realm": "client", "scope": r.scope.as_str(), "retry_after": r.retry_after,
                "locked": r.locked, "claimed_client_id": claimed, "endpoint": endpoint});
            let event = Event::new(Kind::CredentialThrottled, Outcome::Denied).actor("anonymous").detail(detail);
            state.audit.record(meta.apply(event, None)).await;
            return Err(r.into());
        }
    };
    let (admitted, verdict) = admitted;
    match verdict {
        Ok(a) => {
            guard::succeeded(&state.store, admitted).await?;
            Ok((a.client, Some(read)))
        }
        Err(e) if e.code == ErrorCode::InvalidClient => {
            // Boxed, as a failure is rare: its future is the largest of the guard's.
            let failed = Box::pin(guard::failed(&state.store, cfg, admitted, now)).await?;
            for scope in &failed.lockouts {
                let detail = json!({"realm": "client", "scope": scope.as_str(), "lockout": cfg.client_lockout,
                    "claimed_client_id": claimed, "endpoint": endpoint});
                let event = Event::new(Kind::LockoutStarted, Outcome::Failure).actor("anonymous").detail(detail);
                state.audit.record(meta.apply(event, None)).await;
            }
            Err(e.into())
        }
        Err(e) => {
            guard::release(&state.store, admitted).await?;
            Err(e.into())
        }
    }
}

async fn token(
    State(state): State<AppState>,
    meta: Meta,
    authorization: Authorization,
    Form(mut form): Form,
) -> Result<Response, JsonError> {
    let grant_type =
        form.get("grant_type").cloned().ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let Some(grant) = GrantType::parse(&grant_type) else {
        return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type").into());
    };
    let claimed = form.get("client_id").cloned();
    let client = match authenticate(&state, &meta, authorization.value(), &mut form, Endpoint::Token).await {
        Ok(c) => c,
        Err(e) => {
            // GB-6.8a: failed client authentication is audited (who tried, from where).
            let detail = serde_json::json!({"grant_type": grant.as_str(), "error": e.error.code.as_str(), "claimed_client_id": claimed});
            let event = Event::new(Kind::TokenIssued, Outcome::Denied).actor("anonymous").detail(detail);
            state.audit.record(meta.apply(event, None)).await;
            return Err(e);
        }
    };
    let issued = issue(&state, &client, grant, &form).await;
    let kind = match grant {
        GrantType::RefreshToken => Kind::TokenRefreshed,
        GrantType::TokenExchange => Kind::TokenExchanged,
        _ => Kind::TokenIssued,
    };
    let (outcome, mut detail) = match &issued {
        Ok(resp) => (Outcome::Success, serde_json::json!({"grant_type": grant.as_str(), "scope": resp.scope})),
        Err(e) => (Outcome::Failure, serde_json::json!({"grant_type": grant.as_str(), "error": e.error.code.as_str()})),
    };
    if let (Err(e), Some(d)) = (&issued, detail.as_object_mut()) {
        d.insert("error_description".into(), e.error.description.as_ref().into());
    }
    // A grant's own detail (token exchange: origin platform, audience, actor).
    if let (Ok(Some(serde_json::Value::Object(extra))), Some(d)) =
        (issued.as_ref().map(|r| r.audit.as_ref()), detail.as_object_mut())
    {
        d.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut event = Event::new(kind, outcome)
        .actor(format!("client:{}", client.client_id))
        .client(&client.client_id)
        .detail(detail);
    if let Some(sub) = issued.as_ref().ok().and_then(|r| r.subject.as_deref()) {
        event = event.subject(sub);
    }
    state.audit.record(meta.apply(event, client.app_id.as_deref())).await;
    let resp = issued?;
    state.metrics.token_issued(&client.client_id, grant);
    let mut r = token_json(&resp);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// The s5.1 JSON body ([`TokenResponse::to_json`]).
fn token_json(resp: &TokenResponse) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], resp.to_json()).into_response()
}

/// Runs one grant for an authenticated client.
async fn issue(state: &AppState, client: &Client, grant: GrantType, form: &Params) -> Result<TokenResponse, JsonError> {
    // AY-8.5.3.2: a suspended application gets no tokens; AY-8.3.2.1: call control per client.
    clients::admit(client, Endpoint::Token)?;
    state.rate_check(client)?;
    let ctx = state.ctx();
    let get = |k: &str| form.get(k).map(String::as_str);
    // Each grant but client_credentials (the one that only signs) is boxed: this future is
    // as large as its largest arm, and the token exchange's (which may fetch a peer's keys)
    // would otherwise sit in, and be copied with, every client_credentials request's.
    Ok(match grant {
        GrantType::AuthorizationCode => {
            let code = get("code").ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
            let req = code::Redeem { code, redirect_uri: get("redirect_uri"), code_verifier: get("code_verifier") };
            Box::pin(code::redeem(ctx, client, req)).await?
        }
        GrantType::RefreshToken => {
            let token = get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
            Box::pin(refresh::grant(ctx, client, token, get("scope"))).await?
        }
        GrantType::ClientCredentials => client_credentials::grant(ctx, client, get("scope")).await?,
        GrantType::TokenExchange => {
            let req = token_exchange::Request::parse(get)?;
            Box::pin(token_exchange::grant(state.exchange_env(), client, &req)).await?
        }
    })
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/token", post(token))
}
