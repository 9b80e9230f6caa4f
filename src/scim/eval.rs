//! Filter evaluation (RFC 7644 s3.4.2.2) against a resource's JSON: attribute names are
//! case-insensitive, string comparisons follow each attribute's `caseExact`, a multi-valued
//! attribute matches when any value does, a complex multi-valued attribute without a
//! sub-attribute compares its `value`s, and ordering operators on booleans or binaries are an
//! `invalidFilter`. [`check`] validates a filter against the schema before any record is read.

use std::cmp::Ordering;

use serde_json::Value as Json;

use super::error::{ScimError, ScimType};
use super::filter::{AttrPath, Filter, Op, Value};
use super::schema::{Attr, Resource, Ty, sub};

/// Where attribute names are looked up: a resource's schemas, or the sub-attributes of the
/// attribute a value filter is on.
#[derive(Clone, Copy)]
enum Scope {
    Top(Resource),
    Inner(&'static Attr),
}

/// A resolved attribute path: the extension it lives in, the attribute, the sub-attribute.
struct Resolved {
    ext: Option<&'static str>,
    attr: &'static Attr,
    sub: Option<&'static Attr>,
}

impl Resolved {
    /// The definition compared: the sub-attribute, or for a complex attribute its `value`.
    fn leaf(&self) -> Option<&'static Attr> {
        match self.sub {
            Some(s) => Some(s),
            None if self.attr.ty == Ty::Complex => sub(self.attr, "value"),
            None => Some(self.attr),
        }
    }
}

fn invalid(d: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidFilter, d)
}

fn resolve(scope: Scope, p: &AttrPath) -> Option<Resolved> {
    let (ext, attr) = match scope {
        Scope::Top(r) => r.find(p.uri.as_deref(), &p.name)?,
        Scope::Inner(parent) => {
            if p.uri.is_some() || p.sub.is_some() {
                return None;
            }
            (None, sub(parent, &p.name)?)
        }
    };
    let sub_attr = match &p.sub {
        Some(s) => Some(sub(attr, s)?),
        None => None,
    };
    Some(Resolved { ext, attr, sub: sub_attr })
}

/// Resolves a path of a resource (for sorting and projection): its extension, attribute and
/// sub-attribute definitions.
pub fn resolve_top(r: Resource, p: &AttrPath) -> Option<(Option<&'static str>, &'static Attr, Option<&'static Attr>)> {
    resolve(Scope::Top(r), p).map(|x| (x.ext, x.attr, x.sub))
}

/// Checks a filter against the schema: every attribute known, every operator allowed.
pub fn check(r: Resource, f: &Filter) -> Result<(), ScimError> {
    check_in(Scope::Top(r), f)
}

fn check_in(scope: Scope, f: &Filter) -> Result<(), ScimError> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_in(scope, a)?;
            check_in(scope, b)
        }
        Filter::Not(a) => check_in(scope, a),
        Filter::Present(p) => {
            let r = resolve(scope, p).ok_or_else(|| unknown(p))?;
            if r.sub.unwrap_or(r.attr).mutability == super::schema::Mutability::WriteOnly {
                return Err(invalid(format!("'{}' cannot be filtered on", p.name)));
            }
            Ok(())
        }
        Filter::ValuePath(p, inner) => {
            let r = resolve(scope, p).ok_or_else(|| unknown(p))?;
            if r.attr.ty != Ty::Complex || r.sub.is_some() {
                return Err(invalid(format!("'{}' has no sub-attributes to filter on", p.name)));
            }
            check_in(Scope::Inner(r.attr), inner)
        }
        Filter::Compare(p, op, v) => {
            let r = resolve(scope, p).ok_or_else(|| unknown(p))?;
            let leaf = r.leaf().ok_or_else(|| invalid(format!("'{}' cannot be compared", p.name)))?;
            if leaf.mutability == super::schema::Mutability::WriteOnly {
                return Err(invalid(format!("'{}' cannot be filtered on", leaf.name)));
            }
            let ordering = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
            let substring = matches!(op, Op::Co | Op::Sw | Op::Ew);
            match (leaf.ty, v) {
                (Ty::Bool | Ty::Binary, _) if ordering => {
                    Err(invalid(format!("'{}' is {}: gt, ge, lt and le do not apply", leaf.name, ty_name(leaf.ty))))
                }
                (Ty::Bool, Value::Bool(_) | Value::Null) | (Ty::Int, Value::Num(_) | Value::Null) => {
                    if substring {
                        Err(invalid(format!("co, sw and ew apply to strings, not '{}'", leaf.name)))
                    } else {
                        Ok(())
                    }
                }
                (Ty::Str | Ty::Ref | Ty::DateTime | Ty::Binary, Value::Str(_) | Value::Null) => Ok(()),
                (Ty::Complex, _) => Err(invalid(format!("'{}' is complex: name a sub-attribute", leaf.name))),
                _ => Err(invalid(format!("the value compared with '{}' is not a {}", leaf.name, ty_name(leaf.ty)))),
            }
        }
    }
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Str => "string",
        Ty::Bool => "boolean",
        Ty::Int => "integer",
        Ty::DateTime => "dateTime",
        Ty::Ref => "reference",
        Ty::Binary => "binary",
        Ty::Complex => "complex",
    }
}

fn unknown(p: &AttrPath) -> ScimError {
    let full = match (&p.uri, &p.sub) {
        (Some(u), Some(s)) => format!("{u}:{}.{s}", p.name),
        (Some(u), None) => format!("{u}:{}", p.name),
        (None, Some(s)) => format!("{}.{s}", p.name),
        (None, None) => p.name.clone(),
    };
    invalid(format!("unknown attribute '{}'", super::filter::shown(&full)))
}

/// A JSON object's member by case-insensitive name.
pub fn member<'a>(obj: &'a Json, name: &str) -> Option<&'a Json> {
    obj.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The values a resolved path yields in `json` (flattened over multi-valued attributes).
fn values<'a>(json: &'a Json, r: &Resolved) -> Vec<&'a Json> {
    let root = match r.ext {
        Some(u) => member(json, u),
        None => Some(json),
    };
    let Some(v) = root.and_then(|root| member(root, r.attr.name)) else { return Vec::new() };
    let items: Vec<&Json> = match v {
        Json::Array(a) => a.iter().collect(),
        Json::Null => Vec::new(),
        other => vec![other],
    };
    let leaf_name = match r.sub {
        Some(s) => Some(s.name),
        None if r.attr.ty == Ty::Complex => Some("value"),
        None => None,
    };
    match leaf_name {
        Some(n) => items.into_iter().filter_map(|i| member(i, n)).filter(|v| !v.is_null()).collect(),
        None => items,
    }
}

/// Whether `json` (a resource of type `r`) matches a checked filter.
pub fn matches(r: Resource, json: &Json, f: &Filter) -> bool {
    eval(Scope::Top(r), json, f)
}

fn eval(scope: Scope, json: &Json, f: &Filter) -> bool {
    match f {
        Filter::And(a, b) => eval(scope, json, a) && eval(scope, json, b),
        Filter::Or(a, b) => eval(scope, json, a) || eval(scope, json, b),
        Filter::Not(a) => !eval(scope, json, a),
        Filter::Present(p) => {
            let Some(r) = resolve(scope, p) else { return false };
            values(json, &r).iter().any(|v| match v {
                Json::String(s) => !s.is_empty(),
                Json::Array(a) => !a.is_empty(),
                Json::Object(o) => !o.is_empty(),
                Json::Null => false,
                _ => true,
            })
        }
        Filter::ValuePath(p, inner) => {
            let Some(r) = resolve(scope, p) else { return false };
            let root = match r.ext {
                Some(u) => member(json, u),
                None => Some(json),
            };
            let items: Vec<&Json> = match root.and_then(|x| member(x, r.attr.name)) {
                Some(Json::Array(a)) => a.iter().collect(),
                Some(o @ Json::Object(_)) => vec![o],
                _ => Vec::new(),
            };
            items.into_iter().any(|item| eval(Scope::Inner(r.attr), item, inner))
        }
        Filter::Compare(p, op, v) => {
            let Some(r) = resolve(scope, p) else { return false };
            let Some(leaf) = r.leaf() else { return false };
            let vals = values(json, &r);
            match (op, v) {
                (Op::Eq, Value::Null) => vals.is_empty(),
                (Op::Ne, Value::Null) => !vals.is_empty(),
                (_, Value::Null) => false,
                (Op::Ne, _) => !vals.iter().any(|x| compare(leaf, x, Op::Eq, v)),
                _ => vals.iter().any(|x| compare(leaf, x, *op, v)),
            }
        }
    }
}

/// Folds a string for comparison per the attribute's `caseExact`.
pub fn fold(leaf: &Attr, s: &str) -> String {
    if leaf.case_exact { s.to_owned() } else { s.to_lowercase() }
}

fn compare(leaf: &Attr, x: &Json, op: Op, v: &Value) -> bool {
    let ord = match (x, v) {
        (Json::String(a), Value::Str(b)) => {
            let (a, b) = (fold(leaf, a), fold(leaf, b));
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Json::Number(a), Value::Num(b)) => match a.as_f64().and_then(|a| a.partial_cmp(b)) {
            Some(o) => o,
            None => return false,
        },
        (Json::Bool(a), Value::Bool(b)) => {
            return matches!(op, Op::Eq) && a == b;
        }
        _ => return false,
    };
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Ne | Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// The value a resource sorts by (RFC 7644 s3.4.2.3): the primary (else first) value of the
/// path, folded per `caseExact`; `None` when absent.
pub fn sort_key(r: Resource, json: &Json, p: &AttrPath) -> Option<SortKey> {
    let res = resolve(Scope::Top(r), p)?;
    let leaf = res.leaf()?;
    let root = match res.ext {
        Some(u) => member(json, u),
        None => Some(json),
    };
    let v = root.and_then(|x| member(x, res.attr.name))?;
    let item = match v {
        Json::Array(a) => a.iter().find(|i| member(i, "primary") == Some(&Json::Bool(true))).or_else(|| a.first())?,
        other => other,
    };
    let leaf_v = match (res.sub, res.attr.ty) {
        (Some(s), _) => member(item, s.name)?,
        (None, Ty::Complex) => member(item, "value")?,
        _ => item,
    };
    match leaf_v {
        Json::String(s) => Some(SortKey::Str(fold(leaf, s))),
        Json::Number(n) => n.as_f64().map(SortKey::Num),
        Json::Bool(b) => Some(SortKey::Num(if *b { 1.0 } else { 0.0 })),
        _ => None,
    }
}

/// A sort key.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortKey {
    /// A number.
    Num(f64),
    /// A folded string.
    Str(String),
}
