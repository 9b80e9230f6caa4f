//! Bulk (RFC 7644 s3.7): operations applied in order, each on its own (a failed one leaves the
//! others as they are), `bulkId` references resolved from earlier creations (`"bulkId:x"` in
//! data and paths; an unresolved one fails that operation with 409), `failOnErrors` stopping
//! after that many errors, and the advertised `maxOperations` / `maxPayloadSize` enforced (413).

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::error::{ScimError, ScimType};
use super::ops::{Query, Service};
use super::schema::{self, Resource};

fn syntax(d: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidSyntax, d)
}

/// Replaces `"bulkId:x"` strings by the ids created; `Err` names an unknown one.
fn resolve(v: &mut Json, ids: &HashMap<String, String>) -> Result<(), String> {
    match v {
        Json::String(s) => {
            if let Some(b) = s.strip_prefix("bulkId:") {
                *s = ids.get(b).cloned().ok_or_else(|| b.to_owned())?;
            }
        }
        Json::Array(a) => {
            for x in a {
                resolve(x, ids)?;
            }
        }
        Json::Object(o) => {
            for x in o.values_mut() {
                resolve(x, ids)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn error_json(e: &ScimError) -> (u16, Json) {
    let (status, t, detail) = match e {
        ScimError::Client { status, scim_type, detail } => (*status, scim_type.map(|t| t.as_str()), detail.clone()),
        ScimError::Auth { status, detail, .. } => (*status, None, detail.clone()),
        ScimError::Limited(_) => (429, None, "too many requests".to_owned()),
        ScimError::Resync { .. } => (410, None, e.to_string()),
        ScimError::Store(_) => (503, None, "storage is unavailable, retry later".to_owned()),
    };
    let mut body = json!({"schemas": [schema::ERROR], "status": status.to_string(), "detail": detail});
    if let (Some(t), Some(o)) = (t, body.as_object_mut()) {
        o.insert("scimType".into(), t.into());
    }
    (status, body)
}

impl Service<'_> {
    /// Runs a BulkRequest; the BulkResponse lists each operation's outcome.
    pub async fn bulk(&self, body: &Json) -> Result<Json, ScimError> {
        let size = serde_json::to_vec(body).map(|v| v.len()).unwrap_or(0);
        if size > self.limits.bulk_max_payload {
            return Err(ScimError::status(
                413,
                format!("the request is larger than maxPayloadSize ({})", self.limits.bulk_max_payload),
            ));
        }
        let m = |n: &str| super::eval::member(body, n);
        let ok = m("schemas").and_then(Json::as_array).is_some_and(|a| {
            a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema::BULK_REQUEST)))
        });
        if !ok {
            return Err(syntax("schemas must list urn:ietf:params:scim:api:messages:2.0:BulkRequest"));
        }
        let ops = m("Operations").and_then(Json::as_array).ok_or_else(|| syntax("Operations must be an array"))?;
        if ops.len() > self.limits.bulk_max_operations {
            return Err(ScimError::status(
                413,
                format!("more than maxOperations ({}) operations", self.limits.bulk_max_operations),
            ));
        }
        let fail_on = match m("failOnErrors") {
            None | Some(Json::Null) => None,
            Some(v) => {
                Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| syntax("failOnErrors must be a positive integer"))?)
            }
        };
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut out = Vec::with_capacity(ops.len());
        let mut errors = 0u64;
        for op in ops {
            if fail_on.is_some_and(|n| errors >= n) {
                break;
            }
            let method =
                super::eval::member(op, "method").and_then(Json::as_str).unwrap_or_default().to_ascii_uppercase();
            let bulk_id = super::eval::member(op, "bulkId").and_then(Json::as_str).map(str::to_owned);
            let path = super::eval::member(op, "path").and_then(Json::as_str).unwrap_or_default().to_owned();
            let mut result = json!({"method": method});
            if let (Some(b), Some(o)) = (&bulk_id, result.as_object_mut()) {
                o.insert("bulkId".into(), json!(b));
            }
            match self.one(&method, &path, bulk_id.as_deref(), op, &mut ids).await {
                Ok((status, location, version)) => {
                    if let Some(o) = result.as_object_mut() {
                        o.insert("status".into(), json!(status.to_string()));
                        if let Some(l) = location {
                            o.insert("location".into(), json!(l));
                        }
                        if let Some(v) = version {
                            o.insert("version".into(), json!(v));
                        }
                    }
                }
                Err(e) => {
                    if matches!(e, ScimError::Store(_)) {
                        return Err(e);
                    }
                    errors += 1;
                    let (status, body) = error_json(&e);
                    if let Some(o) = result.as_object_mut() {
                        o.insert("status".into(), json!(status.to_string()));
                        o.insert("response".into(), body);
                    }
                }
            }
            out.push(result);
        }
        Ok(json!({"schemas": [schema::BULK_RESPONSE], "Operations": out}))
    }

    async fn one(
        &self,
        method: &str,
        path: &str,
        bulk_id: Option<&str>,
        op: &Json,
        ids: &mut HashMap<String, String>,
    ) -> Result<(u16, Option<String>, Option<String>), ScimError> {
        let conflict = |b: String| ScimError::Client {
            status: 409,
            scim_type: Some(ScimType::InvalidValue),
            detail: format!("bulkId '{}' does not name an earlier successful creation", super::filter::shown(&b)),
        };
        let mut path = Json::String(path.to_owned());
        // A path may name a resource created earlier: "/Users/bulkId:x".
        if let Json::String(p) = &mut path
            && let Some((head, b)) = p.split_once("bulkId:")
        {
            let id = ids.get(b).cloned().ok_or_else(|| conflict(b.to_owned()))?;
            *p = format!("{head}{id}");
        }
        let path = path.as_str().unwrap_or_default().to_owned();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let kind = match parts.next() {
            Some("Users") => Resource::User,
            Some("Groups") => Resource::Group,
            _ => return Err(ScimError::bad(ScimType::InvalidPath, "path must be /Users or /Groups[/{id}]")),
        };
        let id = parts.next().filter(|s| !s.is_empty());
        let mut data = super::eval::member(op, "data").cloned().unwrap_or(Json::Null);
        resolve(&mut data, ids).map_err(conflict)?;
        let version = super::eval::member(op, "version").and_then(Json::as_str);
        let q = Query::default();
        match (method, id) {
            ("POST", None) => {
                let b = bulk_id.ok_or_else(|| syntax("a POST operation needs a bulkId"))?;
                let w = self.create(kind, &data, &q).await?;
                if let Some(new_id) = w.json.get("id").and_then(Json::as_str) {
                    ids.insert(b.to_owned(), new_id.to_owned());
                }
                Ok((201, Some(w.location), Some(w.etag)))
            }
            ("PUT", Some(id)) => {
                let w = self.replace(kind, id, &data, version, &q).await?;
                Ok((200, Some(w.location), Some(w.etag)))
            }
            ("PATCH", Some(id)) => {
                let w = self.patch(kind, id, &data, version, &q).await?;
                Ok((200, Some(w.location), Some(w.etag)))
            }
            ("DELETE", Some(id)) => {
                self.delete(kind, id, version, false).await?;
                Ok((204, Some(format!("{}{}/{id}", self.base, kind.endpoint())), None))
            }
            _ => Err(ScimError::bad(
                ScimType::InvalidSyntax,
                "method must be POST (to a collection), PUT, PATCH or DELETE (to a resource)",
            )),
        }
    }
}
