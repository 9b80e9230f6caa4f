//! `/admin/v1/audit`: the audit log for auditors (AY-8.5.2.1, GB-6.8a): query by time range,
//! application, client, subject, kind and outcome with cursor pagination, export as JSON lines,
//! and the ingest point where downstream platforms forward their events (GB-6.8c).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::{Api, op};
use super::{Auditor, Forwarder, Params};
use crate::audit::Query;
use crate::http::AppState;
use crate::http::error::Problem;

async fn events(State(state): State<AppState>, _: Auditor, Params(q): Params<Query>) -> Result<Response, Problem> {
    let page = state.audit.query(q).await?;
    Ok(axum::Json(page).into_response())
}

async fn export(State(state): State<AppState>, _: Auditor, Params(q): Params<Query>) -> Result<Response, Problem> {
    if !state.audit.enabled() {
        return Err(crate::audit::AuditError::Disabled.into());
    }
    let mut r = Body::from_stream(state.audit.export(q)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"audit.jsonl\""));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// GB-6.8c: a downstream platform forwards its events (NDJSON) with a client holding the
/// ingest scope; they are kept with the origin they carry.
async fn ingest(State(state): State<AppState>, Forwarder(who): Forwarder, req: Request) -> Result<Response, Problem> {
    let body = Bytes::from_request(req, &()).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "urn:tongzheng:problem:too-large",
                "Body too large",
                "at most 16 MiB per request",
            )
        } else {
            Problem::bad_request("the request body could not be read")
        }
    })?;
    let n = state.audit.ingest(&body, &who.actor()).await?;
    Ok((StatusCode::OK, axum::Json(json!({ "accepted": n }))).into_response())
}

const QUERY: [(&str, &str); 9] = [
    ("from", "earliest unix time, inclusive"),
    ("to", "latest unix time, exclusive"),
    ("kind", "event kind, e.g. token_issued, app_transition, login_failure"),
    ("app_id", "application"),
    ("client_id", "client"),
    ("subject", "user"),
    ("outcome", "success, failure or denied"),
    ("limit", "page size, 1..=1000 (default 100)"),
    ("cursor", "next_cursor of the previous page"),
];

/// This module's routes.
pub fn api() -> Api {
    let tag = "audit";
    let mut query = op("queryAudit", "Audit events, newest first, one page at a time", tag).audit().ok::<Value>(200);
    let mut export_op = op("exportAudit", "Every matching audit event as JSON lines, oldest first", tag)
        .audit()
        .ok_raw("application/x-ndjson");
    for (name, d) in QUERY {
        query = query.query(name, d);
        if !matches!(name, "limit" | "cursor") {
            export_op = export_op.query(name, d);
        }
    }
    Api::new().get("/admin/v1/audit/events", events, query).get("/admin/v1/audit/export", export, export_op).post(
        "/admin/v1/audit/ingest",
        ingest,
        op("ingestAudit", "Forwarded events of a downstream platform (NDJSON, at most 10000 lines)", tag)
            .ingest()
            .raw_body("application/x-ndjson")
            .body_limit(16 * 1024 * 1024)
            .ok::<Value>(200)
            .errors(&[413]),
    )
}
