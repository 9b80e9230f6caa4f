//! Bulk (RFC 7644 s3.7): operations applied in order (runs of creations that refer to nothing
//! else at once), each on its own (a failed one leaves the
//! others as they are), `bulkId` references resolved from earlier creations (`"bulkId:x"` in
//! data and paths; an unresolved one fails that operation with 409), `failOnErrors` stopping
//! after that many errors, and the advertised `maxOperations` / `maxPayloadSize` enforced (413).

use std::collections::{HashMap, HashSet};

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

/// Most creations run at once in one wave.
const WAVE: usize = 32;

/// One operation's outcome.
struct Done {
    status: u16,
    location: Option<String>,
    version: Option<String>,
    /// The id a POST created (for later `bulkId` references).
    created: Option<String>,
}

/// Whether `op` may run beside its neighbours: a creation (POST to a collection) that refers to
/// no other operation's `bulkId` and writes no other resource (a User, whose memberships are
/// its own; a Group without `members`, which would rewrite those people). Two such creations
/// racing for one unique value are settled by its claim, as two requests would be.
fn stands_alone(op: &Json) -> bool {
    let s = |n: &str| super::eval::member(op, n);
    let path = s("path").and_then(Json::as_str).unwrap_or_default();
    let post = s("method").and_then(Json::as_str).is_some_and(|m| m.eq_ignore_ascii_case("POST"));
    let data = s("data");
    let refers = data.is_some_and(|d| d.to_string().contains("\"bulkId:")) || path.contains("bulkId:");
    let members = data
        .and_then(|d| super::eval::member(d, "members"))
        .is_some_and(|m| m.as_array().is_none_or(|a| !a.is_empty()));
    post && !refers && (path == "/Users" || (path == "/Groups" && !members))
}

/// The unique values a creation claims (user name, external id, code, phone and ID numbers),
/// normalised enough that two spellings of one value compare equal.
fn unique_values(op: &Json) -> Vec<String> {
    let path = super::eval::member(op, "path").and_then(Json::as_str).unwrap_or_default().to_owned();
    let Some(data) = super::eval::member(op, "data") else { return Vec::new() };
    let text = |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_owned);
    let mut out = Vec::new();
    out.extend(text(super::eval::member(data, "userName")).map(|u| format!("user:{}", u.to_lowercase())));
    out.extend(text(super::eval::member(data, "externalId")).map(|e| format!("ext:{path}:{e}")));
    for ext in [schema::TZ_USER, schema::TZ_GROUP] {
        if let Some(x) = super::eval::member(data, ext) {
            out.extend(text(super::eval::member(x, "code")).map(|c| format!("code:{}", c.to_uppercase())));
            out.extend(text(super::eval::member(x, "idNumber")).map(|n| format!("idn:{}", n.to_uppercase())));
        }
    }
    for phone in super::eval::member(data, "phoneNumbers").and_then(Json::as_array).into_iter().flatten() {
        if let Some(v) = text(super::eval::member(phone, "value")) {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let tail = digits.get(digits.len().saturating_sub(11)..).unwrap_or_default();
            out.push(format!("phone:{tail}"));
        }
    }
    out
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
        let mut next = 0;
        while let Some(first) = ops.get(next) {
            if fail_on.is_some_and(|n| errors >= n) {
                break;
            }
            // A wave: this operation, and when it is a creation that stands alone, the following
            // ones that do too, run at once (an import's thousand people cost the round trips of
            // a few, not of each in turn). Without failOnErrors only: that counts in order.
            let mut end = next + 1;
            if fail_on.is_none() && stands_alone(first) {
                // Two creations claiming one unique value never run together: a claim held by
                // a record not written yet looks like a crashed write's and would be taken over.
                let mut claimed: HashSet<String> = unique_values(first).into_iter().collect();
                while end < ops.len()
                    && end - next < WAVE
                    && ops
                        .get(end)
                        .is_some_and(|op| stands_alone(op) && unique_values(op).into_iter().all(|v| claimed.insert(v)))
                {
                    end += 1;
                }
            }
            let wave = ops.get(next..end).unwrap_or_default();
            let results = futures_util::future::join_all(wave.iter().map(|op| self.one(op, &ids))).await;
            for (op, res) in wave.iter().zip(results) {
                let method =
                    super::eval::member(op, "method").and_then(Json::as_str).unwrap_or_default().to_ascii_uppercase();
                let bulk_id = super::eval::member(op, "bulkId").and_then(Json::as_str).map(str::to_owned);
                let mut result = json!({"method": method});
                if let (Some(b), Some(o)) = (&bulk_id, result.as_object_mut()) {
                    o.insert("bulkId".into(), json!(b));
                }
                match res {
                    Ok(done) => {
                        if let (Some(b), Some(id)) = (&bulk_id, done.created) {
                            ids.insert(b.clone(), id);
                        }
                        if let Some(o) = result.as_object_mut() {
                            o.insert("status".into(), json!(done.status.to_string()));
                            if let Some(l) = done.location {
                                o.insert("location".into(), json!(l));
                            }
                            if let Some(v) = done.version {
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
            next = end;
        }
        Ok(json!({"schemas": [schema::BULK_RESPONSE], "Operations": out}))
    }

    async fn one(&self, op: &Json, ids: &HashMap<String, String>) -> Result<Done, ScimError> {
        let method = super::eval::member(op, "method").and_then(Json::as_str).unwrap_or_default().to_ascii_uppercase();
        let method = method.as_str();
        let bulk_id = super::eval::member(op, "bulkId").and_then(Json::as_str);
        let path = super::eval::member(op, "path").and_then(Json::as_str).unwrap_or_default();
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
                bulk_id.ok_or_else(|| syntax("a POST operation needs a bulkId"))?;
                let w = self.create(kind, &data, &q).await?;
                let created = w.json.get("id").and_then(Json::as_str).map(str::to_owned);
                Ok(Done { status: 201, location: Some(w.location), version: Some(w.etag), created })
            }
            ("PUT", Some(id)) => {
                let w = self.replace(kind, id, &data, version, &q).await?;
                Ok(Done { status: 200, location: Some(w.location), version: Some(w.etag), created: None })
            }
            ("PATCH", Some(id)) => {
                let w = self.patch(kind, id, &data, version, &q).await?;
                Ok(Done { status: 200, location: Some(w.location), version: Some(w.etag), created: None })
            }
            ("DELETE", Some(id)) => {
                self.delete(kind, id, version, false).await?;
                let location = format!("{}{}/{id}", self.base, kind.endpoint());
                Ok(Done { status: 204, location: Some(location), version: None, created: None })
            }
            _ => Err(ScimError::bad(
                ScimType::InvalidSyntax,
                "method must be POST (to a collection), PUT, PATCH or DELETE (to a resource)",
            )),
        }
    }
}
