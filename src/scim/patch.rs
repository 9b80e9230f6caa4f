//! PATCH (RFC 7644 s3.5.2): `add`, `remove` and `replace` on a resource's JSON, with paths
//! (`name.givenName`, a schema-qualified path, a whole extension) and value filters
//! (`emails[type eq "work"].value`, `members[value eq "..."]`). Operations apply in order to a
//! copy; any failure leaves the resource as it was (the request is atomic).

use serde_json::{Map, Value as Json};

use super::error::{ScimError, ScimType};
use super::eval;
use super::filter::{self, AttrPath, Filter};
use super::schema::{self, Attr, Mutability, Resource, Ty};

/// Most operations in one PATCH request.
pub const MAX_OPERATIONS: usize = 1000;

/// A parsed PATCH path.
struct Target {
    kind: Resource,
    ext: Option<&'static str>,
    attr: Option<&'static Attr>,
    filter: Option<Filter>,
    sub: Option<&'static Attr>,
}

fn bad_path(d: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidPath, d)
}

fn parse_path(kind: Resource, raw: &str) -> Result<Target, ScimError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 1024 {
        return Err(bad_path("the path is empty or too long"));
    }
    if let Some(ext) = kind.extension(raw) {
        return Ok(Target { kind, ext: Some(ext), attr: None, filter: None, sub: None });
    }
    let (attr_part, filter, sub_part) = match raw.find('[') {
        Some(open) => {
            let close = raw.rfind(']').filter(|c| *c > open).ok_or_else(|| bad_path("unbalanced '[' in the path"))?;
            let inner = raw.get(open + 1..close).unwrap_or_default();
            let rest = raw.get(close + 1..).unwrap_or_default();
            let sub = match rest {
                "" => None,
                r => Some(r.strip_prefix('.').ok_or_else(|| bad_path("expected '.' after ']'"))?),
            };
            let f = filter::parse_value_filter(inner).map_err(|e| bad_path(format!("value filter: {e}")))?;
            (raw.get(..open).unwrap_or_default(), Some(f), sub)
        }
        None => (raw, None, None),
    };
    let p: AttrPath =
        filter::attr_path(attr_part).ok_or_else(|| bad_path(format!("'{}' is not a path", filter::shown(raw))))?;
    if filter.is_some() && p.sub.is_some() {
        return Err(bad_path("a value filter follows the attribute, not a sub-attribute"));
    }
    let (ext, attr, sub) = eval::resolve_top(kind, &p)
        .ok_or_else(|| bad_path(format!("unknown attribute in path '{}'", filter::shown(raw))))?;
    let sub = match sub_part {
        Some(s) => Some(
            schema::sub(attr, s).ok_or_else(|| bad_path(format!("unknown sub-attribute '{}'", filter::shown(s))))?,
        ),
        None => sub,
    };
    if let Some(f) = &filter {
        if attr.ty != Ty::Complex || !attr.multi {
            return Err(bad_path(format!("'{}' is not a multi-valued complex attribute", attr.name)));
        }
        let wrapped =
            Filter::ValuePath(AttrPath { uri: None, name: attr.name.to_lowercase(), sub: None }, Box::new(f.clone()));
        let top = Filter::ValuePath(AttrPath { uri: ext.map(str::to_lowercase), ..p.clone() }, Box::new(f.clone()));
        eval::check(kind, if ext.is_some() { &top } else { &wrapped }).map_err(|e| bad_path(e.to_string()))?;
    }
    Ok(Target { kind, ext, attr: Some(attr), filter, sub })
}

fn mutability(attr: &Attr, sub: Option<&Attr>) -> Result<(), ScimError> {
    let target = sub.unwrap_or(attr);
    if attr.mutability == Mutability::ReadOnly || target.mutability == Mutability::ReadOnly {
        return Err(ScimError::bad(ScimType::Mutability, format!("'{}' is read-only", target.name)));
    }
    Ok(())
}

/// Applies a PatchOp request body to `json` (a rendered resource of type `kind`).
pub fn apply(kind: Resource, json: &mut Json, body: &Json) -> Result<(), ScimError> {
    let syntax = |d: &str| ScimError::bad(ScimType::InvalidSyntax, d.to_owned());
    let schemas = eval::member(body, "schemas")
        .and_then(Json::as_array)
        .ok_or_else(|| syntax("schemas must list the PatchOp URI"))?;
    if !schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema::PATCH))) {
        return Err(syntax("schemas must list urn:ietf:params:scim:api:messages:2.0:PatchOp"));
    }
    let ops = eval::member(body, "Operations")
        .and_then(Json::as_array)
        .ok_or_else(|| syntax("Operations must be an array"))?;
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(syntax("Operations must hold 1 to 1000 operations"));
    }
    let mut work = json.clone();
    for op in ops {
        let name = eval::member(op, "op").and_then(Json::as_str).ok_or_else(|| syntax("each operation needs an op"))?;
        let path = match eval::member(op, "path") {
            None | Some(Json::Null) => None,
            Some(Json::String(p)) => Some(p.as_str()),
            Some(_) => return Err(bad_path("path must be a string")),
        };
        let value = eval::member(op, "value").cloned().map(coerce);
        match name.to_ascii_lowercase().as_str() {
            "add" | "replace" => {
                let replace = name.eq_ignore_ascii_case("replace");
                let value =
                    value.ok_or_else(|| ScimError::bad(ScimType::InvalidValue, format!("{name} needs a value")))?;
                match path {
                    Some(p) => set(kind, &mut work, &parse_path(kind, p)?, value, replace)?,
                    None => {
                        let obj = value.as_object().ok_or_else(|| {
                            ScimError::bad(
                                ScimType::InvalidValue,
                                "without a path, the value must be an object of attributes",
                            )
                        })?;
                        for (k, v) in obj {
                            if k.eq_ignore_ascii_case("schemas") {
                                continue;
                            }
                            set(kind, &mut work, &parse_path(kind, k)?, v.clone(), replace)?;
                        }
                    }
                }
            }
            "remove" => {
                let p = path.ok_or_else(|| ScimError::bad(ScimType::NoTarget, "remove needs a path"))?;
                remove(kind, &mut work, &parse_path(kind, p)?, value)?;
            }
            other => {
                return Err(ScimError::bad(ScimType::InvalidSyntax, format!("unknown op '{}'", filter::shown(other))));
            }
        }
    }
    one_primary(&mut work);
    *json = work;
    Ok(())
}

/// Entra ID and others send booleans as "True"/"False" strings in PATCH values.
fn coerce(v: Json) -> Json {
    match v {
        Json::String(s) if s.eq_ignore_ascii_case("true") => Json::Bool(true),
        Json::String(s) if s.eq_ignore_ascii_case("false") => Json::Bool(false),
        Json::Object(o) => Json::Object(o.into_iter().map(|(k, v)| (k, coerce(v))).collect()),
        Json::Array(a) => Json::Array(a.into_iter().map(coerce).collect()),
        other => other,
    }
}

fn container<'a>(json: &'a mut Json, ext: Option<&str>) -> Result<&'a mut Map<String, Json>, ScimError> {
    let root =
        json.as_object_mut().ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "resource is not an object"))?;
    match ext {
        None => Ok(root),
        Some(u) => {
            let e = root.entry(u.to_owned()).or_insert_with(|| Json::Object(Map::new()));
            if !e.is_object() {
                *e = Json::Object(Map::new());
            }
            e.as_object_mut().ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "extension is not an object"))
        }
    }
}

fn matching(t: &Target, attr: &'static Attr, item: &Json, f: &Filter) -> bool {
    let wrapped = Filter::ValuePath(
        AttrPath { uri: t.ext.map(str::to_lowercase), name: attr.name.to_lowercase(), sub: None },
        Box::new(f.clone()),
    );
    let mut holder = Map::new();
    holder.insert(attr.name.to_owned(), Json::Array(vec![item.clone()]));
    let holder = match t.ext {
        Some(u) => Json::Object(Map::from_iter([(u.to_owned(), Json::Object(holder))])),
        None => Json::Object(holder),
    };
    eval::matches(t.kind, &holder, &wrapped)
}

fn merge(into: &mut Json, value: Json) {
    match (into.as_object_mut(), value) {
        (Some(obj), Json::Object(v)) => {
            for (k, x) in v {
                obj.insert(k, x);
            }
        }
        (_, v) => *into = v,
    }
}

fn set(kind: Resource, json: &mut Json, t: &Target, value: Json, replace: bool) -> Result<(), ScimError> {
    let Some(attr) = t.attr else {
        // A whole extension: its attributes, one by one.
        let obj = value
            .as_object()
            .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "an extension's value must be an object"))?;
        for (k, v) in obj {
            let path = format!("{}:{k}", t.ext.unwrap_or_default());
            set(kind, json, &parse_path(kind, &path)?, v.clone(), replace)?;
        }
        return Ok(());
    };
    mutability(attr, t.sub)?;
    let obj = container(json, t.ext)?;
    let cur = obj.entry(attr.name.to_owned()).or_insert(Json::Null);
    match (&t.filter, t.sub, attr.multi) {
        (Some(f), sub, _) => {
            let items = match cur {
                Json::Array(a) => a,
                other => {
                    *other = Json::Array(Vec::new());
                    other.as_array_mut().ok_or_else(|| ScimError::bad(ScimType::NoTarget, "no values"))?
                }
            };
            let mut hit = false;
            for item in items.iter_mut().filter(|i| matching(t, attr, i, f)) {
                hit = true;
                match sub {
                    Some(s) => {
                        if let Some(o) = item.as_object_mut() {
                            o.insert(s.name.to_owned(), value.clone());
                        }
                    }
                    None => merge(item, value.clone()),
                }
            }
            if !hit {
                if replace {
                    return Err(ScimError::bad(
                        ScimType::NoTarget,
                        format!("no value of {} matches the filter", attr.name),
                    ));
                }
                // add: a new value made of the filter's equalities and the given value.
                let mut fresh = Map::new();
                equalities(f, &mut fresh);
                match sub {
                    Some(s) => {
                        fresh.insert(s.name.to_owned(), value);
                    }
                    None => {
                        if let Json::Object(v) = value {
                            fresh.extend(v);
                        }
                    }
                }
                items.push(Json::Object(fresh));
            }
        }
        (None, Some(s), false) => {
            if !cur.is_object() {
                *cur = Json::Object(Map::new());
            }
            if let Some(o) = cur.as_object_mut() {
                o.insert(s.name.to_owned(), value);
            }
        }
        (None, Some(s), true) => {
            let Some(items) = cur.as_array_mut().filter(|a| !a.is_empty()) else {
                return Err(ScimError::bad(ScimType::NoTarget, format!("{} has no values", attr.name)));
            };
            for item in items.iter_mut() {
                if let Some(o) = item.as_object_mut() {
                    o.insert(s.name.to_owned(), value.clone());
                }
            }
        }
        (None, None, true) => {
            let new_items = match value {
                Json::Array(a) => a,
                one => vec![one],
            };
            if replace || !cur.is_array() {
                *cur = Json::Array(Vec::new());
            }
            if let Some(items) = cur.as_array_mut() {
                for v in new_items {
                    // add: a value already present is not added twice (RFC 7644 s3.5.2.1).
                    if !items.iter().any(|i| same_value(i, &v)) {
                        items.push(v);
                    }
                }
            }
        }
        (None, None, false) => {
            if attr.ty == Ty::Complex && cur.is_object() {
                merge(cur, value);
            } else {
                *cur = value;
            }
        }
    }
    Ok(())
}

fn same_value(a: &Json, b: &Json) -> bool {
    match (eval::member(a, "value"), eval::member(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The `attr eq "v"` parts of an and-only filter (to build the value an `add` creates).
fn equalities(f: &Filter, out: &mut Map<String, Json>) {
    match f {
        Filter::And(a, b) => {
            equalities(a, out);
            equalities(b, out);
        }
        Filter::Compare(p, filter::Op::Eq, v) if p.sub.is_none() && p.uri.is_none() => {
            let j = match v {
                filter::Value::Str(s) => Json::String(s.clone()),
                filter::Value::Bool(b) => Json::Bool(*b),
                filter::Value::Num(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
                filter::Value::Null => Json::Null,
            };
            out.insert(p.name.clone(), j);
        }
        _ => {}
    }
}

fn remove(kind: Resource, json: &mut Json, t: &Target, value: Option<Json>) -> Result<(), ScimError> {
    let Some(attr) = t.attr else {
        if let Some(root) = json.as_object_mut()
            && let Some(u) = t.ext
        {
            root.remove(u);
        }
        return Ok(());
    };
    mutability(attr, t.sub)?;
    if attr.required && t.sub.is_none() && t.filter.is_none() {
        return Err(ScimError::bad(ScimType::Mutability, format!("'{}' is required and cannot be removed", attr.name)));
    }
    let _ = kind;
    let obj = container(json, t.ext)?;
    match (&t.filter, t.sub) {
        (Some(f), sub) => {
            if let Some(items) = obj.get_mut(attr.name).and_then(Json::as_array_mut) {
                match sub {
                    None => items.retain(|i| !matching(t, attr, i, f)),
                    Some(s) => {
                        for i in items.iter_mut().filter(|i| matching(t, attr, i, f)) {
                            if let Some(o) = i.as_object_mut() {
                                o.remove(s.name);
                            }
                        }
                    }
                }
            }
        }
        (None, Some(s)) => match obj.get_mut(attr.name) {
            Some(Json::Array(items)) => {
                for i in items.iter_mut() {
                    if let Some(o) = i.as_object_mut() {
                        o.remove(s.name);
                    }
                }
            }
            Some(Json::Object(o)) => {
                o.remove(s.name);
            }
            _ => {}
        },
        (None, None) => match (value, attr.multi) {
            // Remove the listed values only (e.g. `members` with `value: [{"value": id}]`).
            (Some(v), true) => {
                let listed = match v {
                    Json::Array(a) => a,
                    one => vec![one],
                };
                if let Some(items) = obj.get_mut(attr.name).and_then(Json::as_array_mut) {
                    items.retain(|i| !listed.iter().any(|l| same_value(i, l)));
                }
            }
            _ => {
                obj.remove(attr.name);
            }
        },
    }
    Ok(())
}

/// RFC 7644 s3.5.2: setting one value primary makes the others not primary (the last wins).
fn one_primary(json: &mut Json) {
    let Some(root) = json.as_object_mut() else { return };
    for v in root.values_mut() {
        let Some(items) = v.as_array_mut() else { continue };
        let primaries: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| eval::member(i, "primary") == Some(&Json::Bool(true)))
            .map(|(n, _)| n)
            .collect();
        if let Some((_, rest)) = primaries.split_last() {
            for n in rest {
                if let Some(o) = items.get_mut(*n).and_then(Json::as_object_mut) {
                    o.insert("primary".into(), Json::Bool(false));
                }
            }
        }
    }
}
