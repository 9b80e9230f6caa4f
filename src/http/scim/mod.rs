//! SCIM 2.0 at `/scim/v2` (RFC 7644): discovery (`ServiceProviderConfig`, `Schemas`,
//! `ResourceTypes`), `Users` and `Groups` (read, list, `.search`, create, replace, patch,
//! delete, with ETags), `Bulk`, and the directory's change feed at `Changes`. Each handler
//! extracts, makes one call to [`crate::scim`], and maps the answer; bodies and errors are
//! `application/scim+json`.

mod auth;
mod discovery;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value as Json;

use self::auth::{Caller, Writer};
use super::AppState;
use crate::scim::schema::Resource;
use crate::scim::{Limits, Query, ScimError, ScimType, Service, Written, ops, project};

/// The SCIM media type (RFC 7644 s3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// The SCIM base URL of this instance.
pub fn base(state: &AppState) -> String {
    format!("{}/scim/v2", state.config.issuer)
}

/// A JSON response as `application/scim+json`, with an ETag and a Location when given.
pub fn respond(status: StatusCode, body: &Json, etag: Option<&str>, location: Option<&str>) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    for (name, v) in [(header::ETAG, etag), (header::LOCATION, location)] {
        if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name, v);
        }
    }
    resp
}

fn written(status: StatusCode, w: &Written) -> Response {
    let location = (status == StatusCode::CREATED).then_some(w.location.as_str());
    respond(status, &w.json, Some(&w.etag), location)
}

/// A SCIM request body: JSON, `application/scim+json` or `application/json`.
pub struct Body(pub Json);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ScimError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
        if let Some(ct) = ct
            && !(ct.starts_with(MEDIA_TYPE) || ct.starts_with("application/json"))
        {
            return Err(ScimError::status(415, "Content-Type must be application/scim+json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::status(413, "the request body is larger than maxPayloadSize")
            } else {
                ScimError::bad(ScimType::InvalidSyntax, "the request body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ScimError::bad(ScimType::InvalidSyntax, format!("the body is not JSON: {e}")))
    }
}

fn kind(rtype: &str) -> Result<Resource, ScimError> {
    match rtype {
        "Users" => Ok(Resource::User),
        "Groups" => Ok(Resource::Group),
        _ => Err(ScimError::not_found("endpoint")),
    }
}

fn service<'a>(state: &'a AppState, caller: &Caller, base: &'a str) -> Service<'a> {
    let d = &state.config.directory;
    Service {
        store: &state.store,
        data: state.keys.data(),
        passwords: &state.passwords,
        base,
        now: state.clock.now(),
        view: caller.view.clone(),
        reveal: caller.reveal,
        limits: Limits {
            default_count: d.default_count,
            max_count: d.max_count,
            scan_limit: d.scan_limit,
            bulk_max_operations: d.bulk_max_operations,
            bulk_max_payload: d.max_payload,
        },
    }
}

/// The query parameters of a SCIM request (names compared case-insensitively).
fn query(raw: Option<&str>) -> Result<(Query, Vec<(String, String)>), ScimError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ScimError::bad(ScimType::InvalidValue, "malformed query string"))?;
    let one = |name: &str| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let int = |name: &str| -> Result<Option<i64>, ScimError> {
        one(name)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::bad(ScimType::InvalidValue, format!("{name} must be an integer")))
            })
            .transpose()
    };
    let q = Query {
        filter: one("filter"),
        sort_by: one("sortBy"),
        sort_order: one("sortOrder"),
        start_index: int("startIndex")?,
        count: int("count")?,
        attributes: project::list(one("attributes").as_deref()),
        excluded: project::list(one("excludedAttributes").as_deref()),
    };
    Ok((q, pairs))
}

/// The parameters of a `POST .search` body (RFC 7644 s3.4.3).
fn search_query(body: &Json) -> Result<Query, ScimError> {
    let member = |n: &str| crate::scim::eval::member(body, n);
    let schemas_ok = member("schemas").and_then(Json::as_array).is_some_and(|a| {
        a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(crate::scim::schema::SEARCH)))
    });
    if !schemas_ok {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "schemas must list urn:ietf:params:scim:api:messages:2.0:SearchRequest",
        ));
    }
    let bad = |n: &str, t: &str| ScimError::bad(ScimType::InvalidValue, format!("{n} must be {t}"));
    let string = |n: &str| -> Result<Option<String>, ScimError> {
        match member(n) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(n, "a string")),
        }
    };
    let int = |n: &str| -> Result<Option<i64>, ScimError> {
        match member(n) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| bad(n, "an integer")),
        }
    };
    let list = |n: &str| -> Result<Vec<String>, ScimError> {
        match member(n) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(a)) => {
                a.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(n, "an array of strings"))).collect()
            }
            Some(Json::String(s)) => Ok(project::list(Some(s))),
            Some(_) => Err(bad(n, "an array of strings")),
        }
    };
    Ok(Query {
        filter: string("filter")?,
        sort_by: string("sortBy")?,
        sort_order: string("sortOrder")?,
        start_index: int("startIndex")?,
        count: int("count")?,
        attributes: list("attributes")?,
        excluded: list("excludedAttributes")?,
    })
}

fn header(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path(rtype): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let (q, _) = query(raw.as_deref())?;
    let base = base(&s);
    let body = service(&s, &caller, &base).list(kind, &q).await?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn search(
    State(s): State<AppState>,
    caller: Caller,
    Path(rtype): Path<String>,
    Body(b): Body,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let q = search_query(&b)?;
    let base = base(&s);
    let body = service(&s, &caller, &base).list(kind, &q).await?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let (q, _) = query(raw.as_deref())?;
    let base = base(&s);
    let w = service(&s, &caller, &base).get(kind, &id, &q).await?;
    // RFC 7644 s3.14: If-None-Match naming the current version: 304, no body.
    if header(&headers, header::IF_NONE_MATCH).is_some_and(|h| ops::etag_listed(h, &w.etag)) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&w.etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    Ok(written(StatusCode::OK, &w))
}

async fn create(
    State(s): State<AppState>,
    Writer(caller): Writer,
    Path(rtype): Path<String>,
    RawQuery(raw): RawQuery,
    Body(b): Body,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let (q, _) = query(raw.as_deref())?;
    let base = base(&s);
    let w = service(&s, &caller, &base).create(kind, &b, &q).await?;
    Ok(written(StatusCode::CREATED, &w))
}

async fn replace(
    State(s): State<AppState>,
    Writer(caller): Writer,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Body(b): Body,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let (q, _) = query(raw.as_deref())?;
    let base = base(&s);
    let w = service(&s, &caller, &base).replace(kind, &id, &b, header(&headers, header::IF_MATCH), &q).await?;
    Ok(written(StatusCode::OK, &w))
}

async fn patch(
    State(s): State<AppState>,
    Writer(caller): Writer,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Body(b): Body,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let (q, _) = query(raw.as_deref())?;
    let base = base(&s);
    let w = service(&s, &caller, &base).patch(kind, &id, &b, header(&headers, header::IF_MATCH), &q).await?;
    Ok(written(StatusCode::OK, &w))
}

async fn delete(
    State(s): State<AppState>,
    Writer(caller): Writer,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ScimError> {
    let kind = kind(&rtype)?;
    let (_, pairs) = query(raw.as_deref())?;
    let cascade = pairs.iter().any(|(k, v)| k == "cascade" && v == "true");
    let base = base(&s);
    service(&s, &caller, &base).delete(kind, &id, header(&headers, header::IF_MATCH), cascade).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn bulk(State(s): State<AppState>, Writer(caller): Writer, Body(b): Body) -> Result<Response, ScimError> {
    let base = base(&s);
    let body = service(&s, &caller, &base).bulk(&b).await?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn changes(State(s): State<AppState>, caller: Caller, RawQuery(raw): RawQuery) -> Result<Response, ScimError> {
    let (q, pairs) = query(raw.as_deref())?;
    let cursor = pairs.iter().find(|(k, _)| k == "cursor").map(|(_, v)| v.clone());
    let base = base(&s);
    let retention = s.config.directory.feed_retention_days.saturating_mul(86_400);
    let body =
        service(&s, &caller, &base).changes(cursor.as_deref(), caller.app.as_deref(), q.count, retention).await?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn not_found() -> ScimError {
    ScimError::not_found("SCIM endpoint")
}

async fn not_allowed() -> ScimError {
    ScimError::status(405, "method not allowed on this SCIM endpoint")
}

/// Routes of this module (everything under `/scim/v2`, unknown paths answered as SCIM 404s).
pub fn routes(state: &AppState) -> Router<AppState> {
    let inner = Router::new()
        .route("/ServiceProviderConfig", get(discovery::config).fallback(not_allowed))
        .route("/Schemas", get(discovery::schemas).fallback(not_allowed))
        .route("/Schemas/{id}", get(discovery::schema).fallback(not_allowed))
        .route("/ResourceTypes", get(discovery::resource_types).fallback(not_allowed))
        .route("/ResourceTypes/{id}", get(discovery::resource_type).fallback(not_allowed))
        .route("/Bulk", post(bulk).fallback(not_allowed))
        .route("/Changes", get(changes).fallback(not_allowed))
        .route("/{rtype}", get(list).post(create).fallback(not_allowed))
        .route("/{rtype}/.search", post(search).fallback(not_allowed))
        .route("/{rtype}/{id}", get(get_one).put(replace).patch(patch).delete(delete).fallback(not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.directory.max_payload));
    Router::new().nest("/scim/v2", inner)
}
