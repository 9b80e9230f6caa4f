//! `attributes` and `excludedAttributes` (RFC 7644 s3.4.2.5, s3.9): which attributes of a
//! rendered resource are returned. `id` and `schemas` are always returned; unknown names are
//! ignored.

use serde_json::{Map, Value as Json};

use super::filter;
use super::schema::Resource;

/// Parses a comma-separated attribute list.
pub fn list(raw: Option<&str>) -> Vec<String> {
    raw.map(|r| r.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

fn locate(kind: Resource, raw: &str) -> Option<(Option<&'static str>, &'static str, Option<&'static str>)> {
    if let Some(ext) = kind.extension(raw) {
        return Some((Some(ext), "", None));
    }
    let p = filter::attr_path(raw)?;
    let (ext, attr, sub) = super::eval::resolve_top(kind, &p)?;
    Some((ext, attr.name, sub.map(|s| s.name)))
}

/// Applies the projection to a rendered resource.
pub fn apply(kind: Resource, json: Json, attributes: &[String], excluded: &[String]) -> Json {
    let Json::Object(src) = json else { return json };
    if !attributes.is_empty() {
        let mut out = Map::new();
        for keep in ["schemas", "id"] {
            if let Some(v) = src.get(keep) {
                out.insert(keep.to_owned(), v.clone());
            }
        }
        for raw in attributes {
            let Some((ext, name, sub)) = locate(kind, raw) else { continue };
            let (from, to) = match ext {
                Some(u) => {
                    let Some(Json::Object(e)) = src.get(u) else { continue };
                    if name.is_empty() {
                        out.insert(u.to_owned(), Json::Object(e.clone()));
                        continue;
                    }
                    let slot = out.entry(u.to_owned()).or_insert_with(|| Json::Object(Map::new()));
                    (e, slot)
                }
                None => {
                    // The top level: copy straight into `out`.
                    let Some(v) = src.get(name) else { continue };
                    copy(name, sub, v, &mut out);
                    continue;
                }
            };
            if let (Some(v), Some(to)) = (from.get(name), to.as_object_mut()) {
                copy(name, sub, v, to);
            }
        }
        return Json::Object(out);
    }
    let mut out = src;
    for raw in excluded {
        let Some((ext, name, sub)) = locate(kind, raw) else { continue };
        if ext.is_none() && matches!(name, "id" | "schemas") {
            continue;
        }
        let target = match ext {
            Some(u) if name.is_empty() => {
                out.remove(u);
                continue;
            }
            Some(u) => match out.get_mut(u).and_then(Json::as_object_mut) {
                Some(e) => e,
                None => continue,
            },
            None => &mut out,
        };
        match sub {
            None => {
                target.remove(name);
            }
            Some(s) => match target.get_mut(name) {
                Some(Json::Object(o)) => {
                    o.remove(s);
                }
                Some(Json::Array(items)) => {
                    for i in items.iter_mut().filter_map(Json::as_object_mut) {
                        i.remove(s);
                    }
                }
                _ => {}
            },
        }
    }
    Json::Object(out)
}

fn copy(name: &str, sub: Option<&str>, v: &Json, to: &mut Map<String, Json>) {
    match (sub, v) {
        (None, v) => {
            to.insert(name.to_owned(), v.clone());
        }
        (Some(s), Json::Object(o)) => {
            let slot = to.entry(name.to_owned()).or_insert_with(|| Json::Object(Map::new()));
            if let (Some(x), Some(slot)) = (o.get(s), slot.as_object_mut()) {
                slot.insert(s.to_owned(), x.clone());
            }
        }
        (Some(s), Json::Array(items)) => {
            let picked: Vec<Json> = items
                .iter()
                .filter_map(|i| i.get(s).map(|x| Json::Object(Map::from_iter([(s.to_owned(), x.clone())]))))
                .collect();
            to.insert(name.to_owned(), Json::Array(picked));
        }
        _ => {}
    }
}
