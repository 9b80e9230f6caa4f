//! Resources as SCIM JSON: rendering a person (User) or an organization (Group) with `meta`
//! and a version, and [`clean`], the one schema check of what a client writes (types, sizes,
//! unknown attributes, one primary, required attributes; read-only values dropped as RFC 7644
//! s3.5.1 says).

use serde_json::{Map, Value as Json, json};

use super::error::{ScimError, ScimType};
use super::schema::{self, Attr, COMMON, Mutability, Resource, Ty};
use crate::directory::{Org, Person};
use crate::sealing::{DataKey, mask_phone};
use crate::users::User;

/// Longest string value, in characters.
pub const MAX_STRING: usize = 2048;
/// Most values of a multi-valued attribute (`members` excepted).
pub const MAX_VALUES: usize = 100;
/// Most members written in one request.
pub const MAX_MEMBERS: usize = 10_000;

/// How resources are rendered for one caller.
#[derive(Clone, Copy)]
pub struct Render<'a> {
    /// The SCIM base URL (`{issuer}/scim/v2`).
    pub base: &'a str,
    /// The data key that opens sealed values.
    pub data: &'a DataKey,
    /// Phone and ID numbers in clear (the caller holds the sensitive scope).
    pub reveal: bool,
}

/// RFC 3339 UTC text of a unix time.
pub fn time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The version (weak ETag) of a rendered resource: a digest of everything but `meta`.
pub fn version(json: &Json) -> String {
    let mut copy = json.clone();
    if let Some(o) = copy.as_object_mut() {
        o.remove("meta");
    }
    let digest = crate::crypto::sha256_hex(serde_json::to_string(&copy).unwrap_or_default().as_bytes());
    format!("W/\"{}\"", digest.get(..20).unwrap_or(&digest))
}

fn with_meta(mut json: Json, kind: Resource, base: &str, id: &str, created: i64, modified: i64) -> Json {
    let v = version(&json);
    if let Some(o) = json.as_object_mut() {
        o.insert(
            "meta".into(),
            json!({
                "resourceType": kind.name(),
                "created": time(created),
                "lastModified": time(modified),
                "location": format!("{base}{}/{id}", kind.endpoint()),
                "version": v,
            }),
        );
    }
    json
}

/// The context a phone number is sealed under in a person's directory record.
fn phone_context(id: &str) -> String {
    format!("user:{id}:scimphone")
}

/// Masks an ID number: the first 3 and last 2 characters shown.
pub fn mask_id(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    chars.iter().enumerate().map(|(i, c)| if i < 3 || i + 2 >= chars.len() { *c } else { '*' }).collect()
}

/// Renders a person. `orgs` are the records of their organizations (for display names).
pub fn user(r: Render<'_>, u: &User, p: &Person, orgs: &[Org]) -> Json {
    let mut o = Map::new();
    let mut schemas = vec![json!(schema::USER)];
    o.insert("id".into(), json!(u.id));
    if let Some(e) = &p.external_id {
        o.insert("externalId".into(), json!(e));
    }
    o.insert("userName".into(), json!(u.username));
    o.insert("displayName".into(), json!(u.name));
    o.insert("active".into(), json!(u.enabled));
    for (k, v) in &p.attrs {
        if k == schema::ENTERPRISE {
            schemas.push(json!(schema::ENTERPRISE));
        }
        if k == "phoneNumbers" {
            let phones: Vec<Json> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|ph| {
                            let mut ph = ph.clone();
                            let clear = member_str(&ph, "value").and_then(|s| r.data.open(s, &phone_context(&u.id)));
                            if let (Some(obj), Some(clear)) = (ph.as_object_mut(), clear) {
                                let shown = if r.reveal { clear } else { mask_phone(&clear) };
                                obj.insert("value".into(), json!(shown));
                            }
                            ph
                        })
                        .collect()
                })
                .unwrap_or_default();
            o.insert(k.clone(), Json::Array(phones));
        } else {
            o.insert(k.clone(), v.clone());
        }
    }
    if !o.contains_key("emails")
        && let Some(e) = &u.email
    {
        o.insert("emails".into(), json!([{"value": e, "primary": true}]));
    }
    if !o.contains_key("phoneNumbers")
        && let Some(ph) = u.phone(r.data)
    {
        let shown = if r.reveal { ph } else { mask_phone(&ph) };
        o.insert("phoneNumbers".into(), json!([{"value": shown, "primary": true}]));
    }
    let name_of = |id: &str| orgs.iter().find(|x| x.id == id).map(|x| x.name.clone());
    let groups: Vec<Json> = u
        .orgs
        .iter()
        .map(|g| {
            let mut v = json!({"value": g, "$ref": format!("{}/Groups/{g}", r.base), "type": "direct"});
            if let (Some(n), Some(obj)) = (name_of(g), v.as_object_mut()) {
                obj.insert("display".into(), json!(n));
            }
            v
        })
        .collect();
    if !groups.is_empty() {
        o.insert("groups".into(), Json::Array(groups));
    }
    let mut ext = Map::new();
    let memberships: Vec<Json> = u
        .orgs
        .iter()
        .map(|g| {
            let m = p.membership(g);
            let mut v = json!({"value": g, "order": m.order});
            if let Some(obj) = v.as_object_mut() {
                if !m.title.is_empty() {
                    obj.insert("title".into(), json!(m.title));
                }
                if let Some(n) = name_of(g) {
                    obj.insert("display".into(), json!(n));
                }
            }
            v
        })
        .collect();
    if !memberships.is_empty() {
        ext.insert("memberships".into(), Json::Array(memberships));
    }
    if let Some(t) = u.id_type {
        ext.insert("idType".into(), serde_json::to_value(t).unwrap_or(Json::Null));
    }
    if let Some(n) = u.id_number(r.data) {
        ext.insert("idNumber".into(), json!(if r.reveal { n } else { mask_id(&n) }));
    }
    ext.insert("assuranceLevel".into(), json!(u.level().as_str()));
    o.insert(schema::TZ_USER.into(), Json::Object(ext));
    schemas.push(json!(schema::TZ_USER));
    o.insert("schemas".into(), Json::Array(schemas));
    let modified = u.updated_at.max(p.updated_at);
    with_meta(Json::Object(o), Resource::User, r.base, &u.id, u.created_at, modified)
}

/// Renders an organization with its direct members (`members`: id and display name).
pub fn group(base: &str, g: &Org, members: &[(String, String)]) -> Json {
    let mut o = Map::new();
    o.insert("schemas".into(), json!([schema::GROUP, schema::TZ_GROUP]));
    o.insert("id".into(), json!(g.id));
    if let Some(e) = &g.external_id {
        o.insert("externalId".into(), json!(e));
    }
    o.insert("displayName".into(), json!(g.name));
    let members: Vec<Json> = members
        .iter()
        .map(|(id, name)| json!({"value": id, "$ref": format!("{base}/Users/{id}"), "display": name, "type": "User"}))
        .collect();
    o.insert("members".into(), Json::Array(members));
    let mut ext = Map::new();
    if let Some(p) = &g.parent {
        ext.insert("parent".into(), json!(p));
    }
    if let Some(c) = &g.code {
        ext.insert("code".into(), json!(c));
    }
    ext.insert("kind".into(), json!(g.kind.as_str()));
    ext.insert("order".into(), json!(g.order));
    ext.insert(
        "status".into(),
        json!(match g.status {
            crate::directory::OrgStatus::Active => "active",
            crate::directory::OrgStatus::Inactive => "inactive",
        }),
    );
    ext.insert("ancestors".into(), json!(g.ancestors));
    o.insert(schema::TZ_GROUP.into(), Json::Object(ext));
    with_meta(Json::Object(o), Resource::Group, base, &g.id, g.created_at, g.updated_at)
}

/// A string member of a JSON object.
pub fn member_str<'a>(v: &'a Json, name: &str) -> Option<&'a str> {
    super::eval::member(v, name).and_then(Json::as_str)
}

fn bad(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// Checks a resource a client wrote against the schema and returns it cleaned: canonical
/// attribute names, read-only values dropped, extensions under their canonical URN, `schemas`
/// rebuilt. Unknown attributes, wrong types, over-long values, two primaries and missing
/// required attributes are `invalidValue` (or `invalidSyntax` for a body that is no object).
pub fn clean(kind: Resource, input: &Json) -> Result<Map<String, Json>, ScimError> {
    let obj =
        input.as_object().ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "the body must be a JSON object"))?;
    let mut out = Map::new();
    let mut exts = Vec::new();
    if let Some(s) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")).map(|(_, v)| v) {
        let list = s.as_array().ok_or_else(|| bad("schemas must be an array of URIs"))?;
        let mut core = false;
        for u in list {
            let u = u.as_str().ok_or_else(|| bad("schemas must be an array of URIs"))?;
            if u.eq_ignore_ascii_case(kind.core()) {
                core = true;
            } else if let Some(ext) = kind.extension(u) {
                exts.push(ext);
            } else {
                return Err(bad(format!("schema '{}' is not a {} schema", super::filter::shown(u), kind.name())));
            }
        }
        if !core {
            return Err(bad(format!("schemas must include {}", kind.core())));
        }
    } else {
        return Err(bad(format!("schemas is required and must include {}", kind.core())));
    }
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = kind.extension(k) {
            let attrs = kind.schemas().into_iter().find(|(u, _)| *u == ext).map(|(_, a)| a).unwrap_or(&[]);
            let inner = v.as_object().ok_or_else(|| bad(format!("{ext} must be an object")))?;
            let mut cleaned = Map::new();
            for (ik, iv) in inner {
                let a = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(ik)).ok_or_else(|| unknown(ik))?;
                if let Some(val) = value(a, iv, kind)? {
                    cleaned.insert(a.name.to_owned(), val);
                }
            }
            if !exts.contains(&ext) {
                exts.push(ext);
            }
            out.insert(ext.to_owned(), Json::Object(cleaned));
            continue;
        }
        let a = COMMON
            .iter()
            .chain(kind.schemas()[0].1.iter())
            .find(|a| a.name.eq_ignore_ascii_case(k))
            .ok_or_else(|| unknown(k))?;
        if let Some(val) = value(a, v, kind)? {
            out.insert(a.name.to_owned(), val);
        }
    }
    for a in kind.schemas()[0].1.iter().filter(|a| a.required) {
        if out.get(a.name).is_none_or(|v| v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty())) {
            return Err(bad(format!("{} is required", a.name)));
        }
    }
    Ok(out)
}

fn unknown(k: &str) -> ScimError {
    bad(format!("unknown attribute '{}'", super::filter::shown(k)))
}

/// One attribute's value, checked; `None` when it is dropped (read-only, or null).
fn value(a: &Attr, v: &Json, kind: Resource) -> Result<Option<Json>, ScimError> {
    if a.mutability == Mutability::ReadOnly || v.is_null() {
        return Ok(None);
    }
    if a.multi {
        let items: Vec<Json> = match v {
            Json::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        let max = if a.name == "members" { MAX_MEMBERS } else { MAX_VALUES };
        if items.len() > max {
            return Err(bad(format!("{} has more than {max} values", a.name)));
        }
        let mut out = Vec::with_capacity(items.len());
        for i in &items {
            if let Some(x) = single(a, i, kind)? {
                out.push(x);
            }
        }
        let primaries = out.iter().filter(|i| super::eval::member(i, "primary") == Some(&Json::Bool(true))).count();
        if primaries > 1 {
            return Err(bad(format!("at most one of {} may be primary", a.name)));
        }
        return Ok(Some(Json::Array(out)));
    }
    single(a, v, kind)
}

fn single(a: &Attr, v: &Json, kind: Resource) -> Result<Option<Json>, ScimError> {
    let wrong = || bad(format!("{} must be a {}", a.name, ty(a.ty)));
    Ok(Some(match a.ty {
        Ty::Str | Ty::Ref | Ty::Binary => {
            let s = v.as_str().ok_or_else(wrong)?;
            if s.chars().count() > MAX_STRING {
                return Err(bad(format!("{} is longer than {MAX_STRING} characters", a.name)));
            }
            if a.ty == Ty::Binary && crate::crypto::b64_decode_std(s).is_none() {
                return Err(bad(format!("{} must be base64", a.name)));
            }
            json!(s)
        }
        Ty::DateTime => {
            let s = v.as_str().ok_or_else(wrong)?;
            if !rfc3339(s) {
                return Err(wrong());
            }
            json!(s)
        }
        Ty::Bool => json!(v.as_bool().ok_or_else(wrong)?),
        Ty::Int => json!(v.as_i64().ok_or_else(wrong)?),
        Ty::Complex => {
            let obj = v.as_object().ok_or_else(wrong)?;
            let mut out = Map::new();
            for (k, iv) in obj {
                let s = schema::sub(a, k).ok_or_else(|| unknown(&format!("{}.{k}", a.name)))?;
                if let Some(x) = value(s, iv, kind)? {
                    out.insert(s.name.to_owned(), x);
                }
            }
            if let Some(req) = a.sub.iter().find(|s| s.required && !out.contains_key(s.name)) {
                return Err(bad(format!("{}.{} is required", a.name, req.name)));
            }
            if out.is_empty() {
                return Ok(None);
            }
            Json::Object(out)
        }
    }))
}

fn ty(t: Ty) -> &'static str {
    match t {
        Ty::Str => "string",
        Ty::Bool => "boolean",
        Ty::Int => "integer",
        Ty::DateTime => "dateTime (RFC 3339)",
        Ty::Ref => "reference (string)",
        Ty::Binary => "binary (base64 string)",
        Ty::Complex => "complex (object)",
    }
}

/// Seals phone numbers of a person's attributes, keeping the clear value of a masked one the
/// caller read back (`current`: the clear numbers stored now). Returns the primary (or first)
/// clear number.
pub fn seal_phones(data: &DataKey, id: &str, attrs: &mut Map<String, Json>, current: &[String]) -> Option<String> {
    let Some(Json::Array(phones)) = attrs.get_mut("phoneNumbers") else { return None };
    let mut primary = None;
    let mut first = None;
    for ph in phones.iter_mut() {
        let Some(obj) = ph.as_object_mut() else { continue };
        let Some(given) = obj.get("value").and_then(Json::as_str).map(str::to_owned) else { continue };
        let clear = if given.contains('*') {
            current.iter().find(|c| mask_phone(c) == given).cloned().unwrap_or(given)
        } else {
            given
        };
        if obj.get("primary") == Some(&Json::Bool(true)) {
            primary = Some(clear.clone());
        }
        first.get_or_insert_with(|| clear.clone());
        obj.insert("value".into(), json!(data.seal(&clear, &phone_context(id))));
    }
    primary.or(first)
}

/// The clear phone numbers in a person's stored attributes.
pub fn stored_phones(data: &DataKey, id: &str, attrs: &Map<String, Json>) -> Vec<String> {
    attrs
        .get("phoneNumbers")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter().filter_map(|p| member_str(p, "value")).filter_map(|s| data.open(s, &phone_context(id))).collect()
        })
        .unwrap_or_default()
}

/// Whether `s` is an RFC 3339 date-time (`2026-01-02T03:04:05Z`, optional fraction, `Z` or an
/// offset).
pub fn rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return false;
    }
    if !(matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6) && i + 6 == b.len(),
        _ => false,
    }
}
