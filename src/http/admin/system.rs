//! Platform operations under `/admin/v1`: signing-key rotation, ending one SSO session, and the
//! status of back-channel logout deliveries.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Api, op};
use super::{Admin, Params};
use crate::http::AppState;
use crate::http::error::Problem;

/// Admin logout of one session (DC-4): broadcast like any other logout.
async fn end_session(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(sid): Path<String>,
) -> Result<Response, Problem> {
    match crate::logout::end_session(state.logout_ctx(&who.actor()), &sid, crate::logout::Reason::Admin, None).await? {
        Some(ended) => {
            who.about_subject(&ended.sub);
            Ok(axum::Json(ended).into_response())
        }
        None => Err(Problem::not_found(format!("no session '{sid}'"))),
    }
}

/// Which deliveries to list: exactly one of the two.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeliveryQuery {
    /// Deliveries of one ended session.
    #[serde(default)]
    pub sid: Option<String>,
    /// Deliveries to one client.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Back-channel delivery status (pending, delivered, failed with the last error, attempts).
async fn deliveries(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<DeliveryQuery>,
) -> Result<Response, Problem> {
    use crate::logout::outbox::{self, Of};
    let of = match (&q.sid, &q.client_id) {
        (Some(sid), None) => Of::Session(sid),
        (None, Some(c)) => Of::Client(c),
        _ => return Err(Problem::bad_request("give exactly one of sid or client_id")),
    };
    let list = outbox::list(&state.store, of).await?;
    Ok(axum::Json(json!({ "deliveries": list })).into_response())
}

async fn delivery(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    let d = crate::logout::outbox::get(&state.store, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no delivery '{id}'")))?;
    Ok(axum::Json(d).into_response())
}

async fn rotate_keys(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let keep = crate::keys::keep_retired(&state.config.tokens);
    let kids = state.keys.rotate(state.clock.now(), keep).await?;
    Ok(axum::Json(json!({ "active_kids": kids })).into_response())
}

/// This module's routes.
pub fn api() -> Api {
    Api::new()
        .post(
            "/admin/v1/keys/rotate",
            rotate_keys,
            op(
                "rotateKeys",
                "Add new active signing keys to the shared key set (every instance uses them within \
                 keys.refresh_secs); retired keys stay in the JWKS until their tokens expire",
                "keys",
            )
            .ok::<Value>(200),
        )
        .delete(
            "/admin/v1/sessions/{sid}",
            end_session,
            op("endSession", "End one SSO session, with the logout broadcast", "sessions")
                .ok::<Value>(200)
                .errors(&[404]),
        )
        .get(
            "/admin/v1/logout/deliveries",
            deliveries,
            op("listDeliveries", "Back-channel logout deliveries of a session or to a client", "sessions")
                .query("sid", "ended session id")
                .query("client_id", "receiving client")
                .ok::<Value>(200),
        )
        .get(
            "/admin/v1/logout/deliveries/{id}",
            delivery,
            op("getDelivery", "One back-channel logout delivery", "sessions").ok::<Value>(200).errors(&[404]),
        )
}
