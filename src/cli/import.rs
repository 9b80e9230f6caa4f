//! `tongzheng admin directory import FILE`: loads organizations and people from CSV or JSON
//! lines through SCIM Bulk, idempotent by external id (a row whose external id is already
//! there is patched instead), reporting each bad row without stopping, with a progress line.

use std::collections::HashMap;
use std::io::Write;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::AdminClient;
use super::{CliError, DirectoryCommand, Settings};
use crate::scim::schema::{GROUP, TZ_GROUP, TZ_USER, USER};

/// One row of the file.
#[derive(Debug, Clone, Default)]
struct Row {
    line: usize,
    person: bool,
    external_id: String,
    name: String,
    parent: Option<String>,
    code: Option<String>,
    kind: Option<String>,
    order: Option<i64>,
    username: String,
    email: Option<String>,
    phone: Option<String>,
    orgs: Vec<(String, String)>,
}

/// Splits one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn parse(text: &str, csv: bool) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut header: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let obj: Map<String, Value> = if csv {
            let fields = csv_fields(line);
            if header.is_empty() {
                header = fields.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
                continue;
            }
            header.iter().cloned().zip(fields.into_iter().map(Value::String)).collect()
        } else {
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(o)) => o,
                _ => {
                    errors.push(format!("line {n}: not a JSON object"));
                    continue;
                }
            }
        };
        let s = |k: &str| non_empty(obj.get(k).and_then(Value::as_str));
        let kind = s("type").unwrap_or_default();
        let Some(external_id) = s("external_id") else {
            errors.push(format!("line {n}: external_id is required"));
            continue;
        };
        let orgs = match obj.get("orgs") {
            Some(Value::String(list)) => list
                .split(';')
                .filter(|x| !x.trim().is_empty())
                .map(|x| {
                    let (o, t) = x.split_once(':').unwrap_or((x, ""));
                    (o.trim().to_owned(), t.trim().to_owned())
                })
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|m| {
                    let o = m.get("org").and_then(Value::as_str)?;
                    Some((o.to_owned(), m.get("title").and_then(Value::as_str).unwrap_or_default().to_owned()))
                })
                .collect(),
            _ => Vec::new(),
        };
        let order = match obj.get("order") {
            Some(Value::Number(x)) => x.as_i64(),
            Some(Value::String(x)) if !x.trim().is_empty() => match x.trim().parse() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(format!("line {n}: order must be an integer"));
                    continue;
                }
            },
            _ => None,
        };
        let row = Row {
            line: n,
            person: match kind.as_str() {
                "org" => false,
                "person" => true,
                _ => {
                    errors.push(format!("line {n}: type must be org or person"));
                    continue;
                }
            },
            external_id,
            name: s("name").unwrap_or_default(),
            parent: s("parent"),
            code: s("code"),
            kind: s("kind"),
            order,
            username: s("username").unwrap_or_default(),
            email: s("email"),
            phone: s("phone"),
            orgs,
        };
        rows.push(row);
    }
    (rows, errors)
}

/// The SCIM resource of a row (org references resolved through `ids`); `Err` names a missing one.
fn resource(r: &Row, ids: &HashMap<String, String>, pending: &HashMap<String, String>) -> Result<Value, String> {
    let find = |ext: &String| ids.get(ext).cloned().or_else(|| pending.get(ext).map(|b| format!("bulkId:{b}")));
    if r.person {
        let mut memberships = Vec::new();
        for (ext, title) in &r.orgs {
            let id = find(ext).ok_or_else(|| format!("organization '{ext}' is not loaded"))?;
            memberships.push(json!({"value": id, "title": title}));
        }
        let mut v = json!({"schemas": [USER, TZ_USER], "userName": r.username, "externalId": r.external_id,
            "displayName": if r.name.is_empty() { &r.username } else { &r.name }, TZ_USER: {"memberships": memberships}});
        if let Some(e) = &r.email {
            put(&mut v, "emails", json!([{"value": e, "primary": true, "type": "work"}]));
        }
        if let Some(p) = &r.phone {
            put(&mut v, "phoneNumbers", json!([{"value": p, "primary": true, "type": "mobile"}]));
        }
        Ok(v)
    } else {
        let mut ext = json!({"kind": r.kind.clone().unwrap_or_else(|| "unit".into()), "order": r.order.unwrap_or(0)});
        if let Some(p) = &r.parent {
            put(&mut ext, "parent", json!(find(p).ok_or_else(|| format!("parent '{p}' is not loaded"))?));
        }
        if let Some(c) = &r.code {
            put(&mut ext, "code", json!(c));
        }
        Ok(json!({"schemas": [GROUP, TZ_GROUP], "displayName": r.name, "externalId": r.external_id, TZ_GROUP: ext}))
    }
}

fn put(v: &mut Value, k: &str, x: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(k.to_owned(), x);
    }
}

fn text_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// A PATCH replacing what a row sets on an existing resource (members and other attributes kept).
fn patch_of(res: &Value) -> Value {
    let mut value = res.clone();
    if let Some(o) = value.as_object_mut() {
        o.remove("schemas");
        o.remove("userName");
    }
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": value}]})
}

async fn existing(c: &AdminClient, person: bool, ext: &str) -> Result<Option<String>, CliError> {
    let filter = format!("externalId eq {}", Value::String(ext.to_owned()));
    let path = if person { "Users" } else { "Groups" };
    let v = c.scim(Method::GET, &[path], &[("filter", filter), ("attributes", "id".into())], None).await?;
    Ok(text_at(&v, "/Resources/0/id").map(str::to_owned))
}

/// External ids looked up in one request (an `or` of `eq`s, well inside the filter's limits).
const LOOKUP: usize = 20;

/// The ids of the organizations with these external ids (those that exist).
async fn existing_many(c: &AdminClient, exts: &[&String]) -> Result<HashMap<String, String>, CliError> {
    if exts.is_empty() {
        return Ok(HashMap::new());
    }
    let filter =
        exts.iter().map(|e| format!("externalId eq {}", Value::String((*e).clone()))).collect::<Vec<_>>().join(" or ");
    let query = [("filter", filter), ("attributes", "id,externalId".into()), ("count", exts.len().to_string())];
    let v = c.scim(Method::GET, &["Groups"], &query, None).await?;
    let found = v.get("Resources").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(found
        .iter()
        .filter_map(|r| Some((text_at(r, "/externalId")?.to_owned(), text_at(r, "/id")?.to_owned())))
        .collect())
}

/// Pauses before another try of a Bulk request the server was too busy for.
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// The HTTP status of a whole request's failure.
fn status_of(e: &CliError) -> Option<u16> {
    match e {
        CliError::Http { status, .. } => Some(*status),
        CliError::Problem(p) => Some(p.status),
        _ => None,
    }
}

/// Sends one Bulk request; a busy server (503, 429: the work may go on behind its answer) is
/// asked again after a pause, which only finds what is already there (idempotent by external
/// id: a created row answers 409 and is patched).
async fn bulk_once(c: &AdminClient, ops: &[Value]) -> Result<Vec<Value>, CliError> {
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let mut tries = 0;
    loop {
        match c.scim(Method::POST, &["Bulk"], &[], Some(&body)).await {
            Ok(answer) => return Ok(answer.get("Operations").and_then(Value::as_array).cloned().unwrap_or_default()),
            Err(e) if matches!(status_of(&e), Some(503 | 429)) && tries < 3 => {
                tries += 1;
                tokio::time::sleep(BUSY_PAUSE * tries).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Each operation's result. A Bulk request refused as a whole (413: a row over the payload
/// limit; another 4xx) is sent again one row at a time, so one bad row fails alone.
async fn bulk_results(c: &AdminClient, ops: &[Value]) -> Result<Vec<Value>, CliError> {
    match bulk_once(c, ops).await {
        Ok(r) => Ok(r),
        Err(e) if status_of(&e).is_some_and(|s| (400..500).contains(&s)) => {
            let mut out = Vec::with_capacity(ops.len());
            for op in ops {
                let one = match bulk_once(c, std::slice::from_ref(op)).await {
                    Ok(r) => r.into_iter().next().unwrap_or(Value::Null),
                    Err(e) => match status_of(&e).filter(|s| (400..500).contains(s)) {
                        Some(s) => json!({"status": s.to_string(), "response": {"detail": e.to_string()}}),
                        None => return Err(e),
                    },
                };
                out.push(one);
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// The file's text, line by line: a line that is not UTF-8 is reported and left empty (so the
/// line numbers stay right), a byte-order mark (spreadsheet exports) dropped.
fn read_lines(bytes: &[u8], errors: &mut Vec<String>) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut text = String::with_capacity(bytes.len());
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(l) => text.push_str(l),
            Err(_) => errors.push(format!("line {}: not UTF-8 text", i + 1)),
        }
        text.push('\n');
    }
    text
}

/// Runs a directory command.
pub(super) async fn run(
    s: &Settings,
    cmd: DirectoryCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let DirectoryCommand::Import { file, batch } = cmd;
    let bytes = std::fs::read(&file).map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?;
    let mut errors = Vec::new();
    let text = read_lines(&bytes, &mut errors);
    let (rows, parse_errors) = parse(&text, file.to_ascii_lowercase().ends_with(".csv"));
    errors.extend(parse_errors);
    let c = AdminClient::connect(&s.credentials).await?;
    let total = rows.len();
    let started = std::time::Instant::now();
    let mut ids: HashMap<String, String> = HashMap::new();
    let (mut created, mut updated) = (0usize, 0usize);
    // Organizations first (in file order, so parents precede departments), then people.
    let (orgs, people): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|r| !r.person);
    let mut done = 0usize;
    let mut looked_up: std::collections::HashSet<String> = std::collections::HashSet::new();
    for group in [orgs, people] {
        for chunk in group.chunks(batch.clamp(1, 1000)) {
            let mut ops = Vec::new();
            let mut sent: Vec<(&Row, Value)> = Vec::new();
            let mut pending: HashMap<String, String> = HashMap::new();
            // Organizations loaded by an earlier run that this chunk refers to: looked up a few
            // dozen per request, before the chunk (not one request per row).
            let unknown: Vec<&String> = chunk
                .iter()
                .flat_map(|r| r.parent.iter().chain(r.orgs.iter().map(|(o, _)| o)))
                .filter(|ext| !ids.contains_key(*ext) && !looked_up.contains(*ext))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            for part in unknown.chunks(LOOKUP) {
                ids.extend(existing_many(&c, part).await?);
                looked_up.extend(part.iter().map(|e| (*e).clone()));
            }
            for r in chunk {
                let mut made = resource(r, &ids, &pending);
                // A reference to an organization loaded by an earlier run: look it up once.
                if made.is_err() {
                    for ext in r.parent.iter().chain(r.orgs.iter().map(|(o, _)| o)) {
                        if !ids.contains_key(ext)
                            && !pending.contains_key(ext)
                            && !looked_up.contains(ext)
                            && let Some(id) = existing(&c, false, ext).await?
                        {
                            ids.insert(ext.clone(), id);
                        }
                    }
                    made = resource(r, &ids, &pending);
                }
                match made {
                    Ok(res) => {
                        pending.insert(r.external_id.clone(), format!("r{}", r.line));
                        let path = if r.person { "/Users" } else { "/Groups" };
                        ops.push(
                            json!({"method": "POST", "path": path, "bulkId": format!("r{}", r.line), "data": res}),
                        );
                        sent.push((r, res));
                    }
                    Err(e) => errors.push(format!("line {}: {e}", r.line)),
                }
            }
            if !ops.is_empty() {
                let results = bulk_results(&c, &ops).await?;
                for ((r, res), result) in sent.iter().zip(results) {
                    let status = text_at(&result, "/status").unwrap_or_default();
                    if status == "201" {
                        created += 1;
                        if let Some(id) = text_at(&result, "/location").and_then(|l| l.rsplit('/').next()) {
                            ids.insert(r.external_id.clone(), id.to_owned());
                        }
                        continue;
                    }
                    let detail = text_at(&result, "/response/detail").unwrap_or_default().to_owned();
                    // Already loaded (same external id): patch it instead.
                    if status == "409" && detail.contains("externalId") {
                        match existing(&c, r.person, &r.external_id).await? {
                            Some(id) => {
                                let path = if r.person { "Users" } else { "Groups" };
                                match c.scim(Method::PATCH, &[path, &id], &[], Some(&patch_of(res))).await {
                                    Ok(_) => {
                                        updated += 1;
                                        ids.insert(r.external_id.clone(), id);
                                    }
                                    Err(e) => errors.push(format!("line {}: {e}", r.line)),
                                }
                            }
                            None => errors.push(format!("line {}: {detail}", r.line)),
                        }
                    } else {
                        errors.push(format!("line {}: {status} {detail}", r.line));
                    }
                }
            }
            done += chunk.len();
            let _ = write!(
                err,
                "\rimported {done}/{total} rows ({} errors, {:.0} s)",
                errors.len(),
                started.elapsed().as_secs_f64()
            );
            let _ = err.flush();
        }
    }
    let _ = writeln!(err);
    for e in &errors {
        let _ = writeln!(err, "{e}");
    }
    let summary = json!({"rows": total, "created": created, "updated": updated, "errors": errors.len(),
        "seconds": started.elapsed().as_secs_f64()});
    if s.json {
        let _ = writeln!(out, "{summary}");
    } else {
        let _ = writeln!(out, "{total} rows: {created} created, {updated} updated, {} errors", errors.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows() {
        let text = "type,external_id,name,parent,code,kind,order,username,email,phone,orgs\n\
                    org,g1,\"市政府, 本级\",,C1,unit,1,,,,\n\
                    person,p1,张三,,,,,zhang.san,zs@example.gov.cn,,g1:主任;g2\n\
                    robot,x,,,,,,,,,\n\
                    org,,no id,,,,,,,,\n";
        let (rows, errors) = parse(text, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "市政府, 本级");
        assert_eq!(rows[1].orgs, [("g1".to_owned(), "主任".to_owned()), ("g2".to_owned(), String::new())]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        let ids = HashMap::from([("g1".to_owned(), "id1".to_owned())]);
        assert!(resource(&rows[1], &ids, &HashMap::new()).unwrap_err().contains("g2"));
    }
}
