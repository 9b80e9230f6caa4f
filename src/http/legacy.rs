//! JM-B legacy direct login, `POST /api/auth`: `username` and base64 `password` (form or JSON
//! body) from an authenticated client; `{"code":0,"msg":"...","token":"..."}` or
//! `{"code":1,"msg":"...","data":null}`. The rules are in [`crate::grant::legacy`].

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Meta, Params, body_bytes, is_form, parse_params};
use super::token::authenticate;
use crate::audit::{Event, Kind, Outcome};
use crate::clients::Endpoint;
use crate::grant::legacy::{self, LegacyError};
use crate::metrics::LoginOutcome;

fn answer(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The JM-B failure body.
fn failure(status: StatusCode, msg: &str) -> Response {
    answer(status, json!({"code": 1, "msg": msg, "data": null}))
}

/// The request's fields: a form body, or a JSON object of strings.
fn fields(headers: &HeaderMap, body: &[u8]) -> Option<Params> {
    if is_form(headers) {
        return parse_params(body).ok();
    }
    let v: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    Some(v.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect())
}

/// POST /api/auth (JM-B).
async fn api_auth(State(state): State<AppState>, meta: Meta, req: Request) -> Response {
    let headers = req.headers().clone();
    let Ok(body) = body_bytes(req, &()).await else {
        return failure(StatusCode::BAD_REQUEST, "the request body could not be read");
    };
    let Some(mut form) = fields(&headers, &body) else {
        return failure(StatusCode::BAD_REQUEST, "send username and password as a form or a JSON object");
    };
    let Ok(client) = authenticate(&state, &meta, headers.get(header::AUTHORIZATION), &mut form, Endpoint::Token).await
    else {
        return failure(StatusCode::UNAUTHORIZED, "client authentication failed");
    };
    if state.rate_check(&client).is_err() {
        return failure(StatusCode::TOO_MANY_REQUESTS, "too many requests; retry later");
    }
    let get = |k: &str| form.get(k).map_or("", String::as_str);
    let r = legacy::Request {
        username: get("username"),
        password_b64: get("password"),
        account_kind: form.get("account_kind").map(String::as_str),
        ip: meta.ip.as_deref(),
    };
    let outcome = legacy::login(state.ctx(), &state.passwords, &state.config.guard, &client, &r).await;
    match outcome {
        Ok(ok) => {
            state.metrics.login(LoginOutcome::Success, "ok");
            let event = Event::new(Kind::LoginSuccess, Outcome::Success)
                .client(&client.client_id)
                .actor(format!("user:{}", ok.user))
                .subject(&ok.user)
                .detail(json!({"via": "jm-b /api/auth", "scope": ok.tokens.scope}));
            state.audit.record(meta.apply(event, client.app_id.as_deref())).await;
            answer(StatusCode::OK, json!({"code": 0, "msg": "success", "token": ok.tokens.access_token}))
        }
        Err(LegacyError::Store(e)) => {
            tracing::warn!(error = %e, "legacy login: store unavailable");
            failure(StatusCode::SERVICE_UNAVAILABLE, "the service is temporarily unavailable")
        }
        Err(e) => {
            let (status, reason) = match &e {
                LegacyError::NotEnabled => (StatusCode::FORBIDDEN, "not_enabled"),
                LegacyError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                LegacyError::BadCredentials { .. } => (StatusCode::UNAUTHORIZED, "bad_password"),
                LegacyError::Disabled => (StatusCode::UNAUTHORIZED, "disabled"),
                LegacyError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
                LegacyError::LegalPerson => (StatusCode::FORBIDDEN, "legal_person"),
                LegacyError::BelowLevel => (StatusCode::FORBIDDEN, "below_level"),
                LegacyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
                LegacyError::Mint(_) | LegacyError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            };
            state.metrics.login(LoginOutcome::Failure, reason);
            let kind =
                if matches!(e, LegacyError::Throttled { .. }) { Kind::CredentialThrottled } else { Kind::LoginFailure };
            let event = Event::new(kind, Outcome::Failure)
                .actor(format!("client:{}", client.client_id))
                .client(&client.client_id)
                .detail(json!({"via": "jm-b /api/auth", "reason": reason}));
            state.audit.record(meta.apply(event, client.app_id.as_deref())).await;
            let mut resp = failure(status, &e.to_string());
            if let LegacyError::Throttled { retry_after }
            | LegacyError::BadCredentials { retry_after: Some(retry_after), .. } = e
                && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/auth", post(api_auth))
}
