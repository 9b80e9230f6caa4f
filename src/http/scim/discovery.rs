//! SCIM discovery (RFC 7644 s4): `ServiceProviderConfig`, `Schemas`, `ResourceTypes`. Readable
//! without a token (they describe the service, not its data); a `filter` on them is refused
//! with 403 as s4 says.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value as Json, json};

use super::{base, respond};
use crate::http::AppState;
use crate::scim::ScimError;
use crate::scim::schema::{self, Resource};

fn no_filter(raw: Option<&str>) -> Result<(), ScimError> {
    let filtered = serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or_default())
        .map(|p| p.iter().any(|(k, _)| k.eq_ignore_ascii_case("filter")))
        .unwrap_or(false);
    if filtered { Err(ScimError::status(403, "filtering is not supported on discovery endpoints")) } else { Ok(()) }
}

fn list(items: Vec<Json>) -> Json {
    json!({
        "schemas": [schema::LIST],
        "totalResults": items.len(),
        "itemsPerPage": items.len(),
        "startIndex": 1,
        "Resources": items,
    })
}

pub(super) async fn config(State(s): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ScimError> {
    no_filter(raw.as_deref())?;
    let d = &s.config.directory;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": format!("{}/admin/v1/openapi.json", s.config.issuer),
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": d.bulk_max_operations, "maxPayloadSize": d.max_payload},
        "filter": {"supported": true, "maxResults": d.max_count},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token of this platform (client_credentials) with tongzheng:directory.read or tongzheng:directory.write",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", base(&s))},
    });
    Ok(respond(StatusCode::OK, &body, None, None))
}

pub(super) async fn schemas(State(s): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ScimError> {
    no_filter(raw.as_deref())?;
    Ok(respond(StatusCode::OK, &list(schema::all(&base(&s))), None, None))
}

pub(super) async fn schema(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ScimError> {
    let found = schema::all(&base(&s)).into_iter().find(|x| x.get("id").and_then(Json::as_str) == Some(id.as_str()));
    let body = found.ok_or_else(|| ScimError::not_found("schema"))?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

fn resource_type_json(base: &str, r: Resource) -> Json {
    let ext: Vec<Json> = r.extensions().iter().map(|u| json!({"schema": u, "required": false})).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": r.name(),
        "name": r.name(),
        "endpoint": r.endpoint(),
        "description": match r { Resource::User => "People of the directory", Resource::Group => "Organizations of the directory (a tree)" },
        "schema": r.core(),
        "schemaExtensions": ext,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", r.name())},
    })
}

pub(super) async fn resource_types(State(s): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, ScimError> {
    no_filter(raw.as_deref())?;
    let base = base(&s);
    let items = vec![resource_type_json(&base, Resource::User), resource_type_json(&base, Resource::Group)];
    Ok(respond(StatusCode::OK, &list(items), None, None))
}

pub(super) async fn resource_type(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ScimError> {
    let r = match id.as_str() {
        "User" => Resource::User,
        "Group" => Resource::Group,
        _ => return Err(ScimError::not_found("resource type")),
    };
    Ok(respond(StatusCode::OK, &resource_type_json(&base(&s), r), None, None))
}
