//! One function per command group: check and build the request locally (files, evidence,
//! times) before connecting, make the admin-API call, print the answer through [`output`].

use std::io::{Read, Write};

use serde_json::{Map, Value, json};

use super::client::AdminClient;
use super::output::{self, items, text};
use super::{AdminCommand, AppCommand, AuditCommand, AuditFilters, CliError, ClientCommand, ScopeCommand, Settings};
use crate::apps::EvidenceKind;
use crate::audit::{Kind, Outcome};

/// Runs one command with resolved settings.
pub(super) async fn dispatch(
    s: &Settings,
    cmd: AdminCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    warn_plain_http(s, err);
    match cmd {
        AdminCommand::App { action } => app(s, action, out).await,
        AdminCommand::Client { action } => client(s, action, out).await,
        AdminCommand::Scope { action } => scope(s, action, out).await,
        AdminCommand::Audit { action } => audit(s, action, out, err).await,
        AdminCommand::Person { action } => super::persons::person(s, action, out).await,
        AdminCommand::Legal { action } => super::persons::legal(s, action, out).await,
        AdminCommand::Directory { action } => super::import::run(s, action, out, err).await,
    }
}

/// Credentials over plain HTTP are only acceptable on the local machine.
fn warn_plain_http(s: &Settings, err: &mut dyn Write) {
    let url = &s.credentials.server;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        let _ = writeln!(err, "tongzheng admin: warning: {url} is plain HTTP; the credentials travel unencrypted");
    }
}

/// Reads a JSON document from a file, or stdin for `-`.
fn read_json(path: &str) -> Result<Value, CliError> {
    let file_err = |source| CliError::File { path: path.to_owned(), source };
    let raw = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(file_err)?;
        buf
    } else {
        std::fs::read(path).map_err(file_err)?
    };
    let v: Value =
        serde_json::from_slice(&raw).map_err(|source| CliError::BadJson { path: path.to_owned(), source })?;
    if !v.is_object() {
        return Err(CliError::Usage(format!("{path}: expected a JSON object")));
    }
    Ok(v)
}

/// Writes `bytes` to a file.
fn write_file(path: &str, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::File { path: path.to_owned(), source })
}

/// `kind:reference[:level]` as a passed piece of evidence (SH-6.2.3). A last `:N` of digits is
/// the MLPS level; the reference may itself hold colons (a URL).
pub(super) fn evidence(spec: &str) -> Result<Value, CliError> {
    let bad = |why: &str| CliError::Usage(format!("--evidence '{spec}': {why}; expected kind:reference[:level]"));
    let (kind, rest) = spec.split_once(':').ok_or_else(|| bad("no reference"))?;
    if serde_json::from_value::<EvidenceKind>(json!(kind)).is_err() {
        return Err(bad(
            "unknown kind (software_test_report, mlps_assessment, security_test_report, crypto_assessment)",
        ));
    }
    let (reference, level) = match rest.rsplit_once(':') {
        Some((r, l)) if !r.is_empty() && !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            (r, Some(l.parse::<u8>().map_err(|_| bad("level out of range"))?))
        }
        _ => (rest, None),
    };
    if reference.trim().is_empty() {
        return Err(bad("empty reference"));
    }
    let mut e = json!({"kind": kind, "reference": reference, "passed": true});
    if let (Some(l), Some(o)) = (level, e.as_object_mut()) {
        o.insert("level".into(), l.into());
    }
    Ok(e)
}

/// Unix seconds, or RFC 3339 (`2026-03-01T08:00:00+08:00`, `...Z`, fractions ignored).
pub(super) fn parse_time(s: &str) -> Result<i64, CliError> {
    let bad = || CliError::Usage(format!("'{s}' is not a time: give unix seconds or RFC 3339"));
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let (date, rest) = s.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let date = crate::calendar::parse_date(date).ok_or_else(bad)?;
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, time::UtcOffset::UTC)
    } else {
        let at = rest.rfind(['+', '-']).ok_or_else(bad)?;
        let (c, o) = rest.split_at(at);
        (c, crate::calendar::parse_offset(o).ok_or_else(bad)?)
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let mut hms = clock.splitn(3, ':').map(str::parse::<u8>);
    let (Some(Ok(h)), Some(Ok(m)), Some(Ok(sec))) = (hms.next(), hms.next(), hms.next()) else {
        return Err(bad());
    };
    let t = time::Time::from_hms(h, m, sec).map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, t).assume_offset(offset).unix_timestamp())
}

/// The query parameters of the audit filters, checked locally.
fn filter_query(f: &AuditFilters) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut q = Vec::new();
    if let Some(t) = &f.from {
        q.push(("from", parse_time(t)?.to_string()));
    }
    if let Some(t) = &f.to {
        q.push(("to", parse_time(t)?.to_string()));
    }
    if let Some(k) = &f.kind {
        if Kind::parse(k).is_none() {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(CliError::Usage(format!("--kind '{k}': one of {}", all.join(", "))));
        }
        q.push(("kind", k.clone()));
    }
    if let Some(o) = &f.outcome {
        if Outcome::parse(o).is_none() {
            return Err(CliError::Usage(format!("--outcome '{o}': one of success, failure, denied")));
        }
        q.push(("outcome", o.clone()));
    }
    for (name, v) in [("app_id", &f.app), ("client_id", &f.client), ("subject", &f.subject)] {
        if let Some(v) = v {
            q.push((name, v.clone()));
        }
    }
    Ok(q)
}

/// A lifecycle move: `{"to", "reason"?, "audience"?, "retest"?}`.
fn move_to(to: &str, reason: Option<String>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("to".into(), to.into());
    if let Some(r) = reason {
        body.insert("reason".into(), r.into());
    }
    body
}

fn retest(body: &mut Map<String, Value>, report: Option<String>) {
    if let Some(r) = report {
        body.insert("retest".into(), json!({"report": r, "passed": true}));
    }
}

async fn app(s: &Settings, action: AppCommand, out: &mut dyn Write) -> Result<(), CliError> {
    // Each arm checks its input, then connects.
    let connect = || AdminClient::connect(&s.credentials);
    let (result, style): (Value, AppStyle) = match action {
        AppCommand::List { state } => {
            let q: Vec<(&str, String)> = state.into_iter().map(|st| ("state", st)).collect();
            (connect().await?.get(&["applications"], &q).await?, AppStyle::List)
        }
        AppCommand::Show { id } => (connect().await?.get(&["applications", &id], &[]).await?, AppStyle::Full),
        AppCommand::Apply { file } => {
            let body = read_json(&file)?;
            (connect().await?.post(&["applications"], &body).await?, AppStyle::Full)
        }
        AppCommand::Update { id, file } => {
            let body = read_json(&file)?;
            let c = connect().await?;
            (c.call(reqwest::Method::PUT, &["applications", &id], &[], Some(&body)).await?, AppStyle::Line)
        }
        AppCommand::Review { id, reviewer, approve, reject: _, evidence: specs, comment } => {
            let evidence = specs.iter().map(|e| evidence(e)).collect::<Result<Vec<_>, _>>()?;
            let body = json!({
                "reviewer": reviewer,
                "decision": if approve { "approve" } else { "reject" },
                "evidence": evidence,
                "comment": comment.unwrap_or_default(),
            });
            (connect().await?.post(&["applications", &id, "reviews"], &body).await?, AppStyle::Review)
        }
        AppCommand::PreRelease { id, users, orgs, retest_report, reason } => {
            let mut body = move_to("pre_release", reason);
            if !users.is_empty() || !orgs.is_empty() {
                body.insert("audience".into(), json!({"users": users, "orgs": orgs}));
            }
            retest(&mut body, retest_report);
            (transition(connect().await?, &id, body).await?, AppStyle::Line)
        }
        AppCommand::Release { id, retest_report, reason } => {
            let mut body = move_to("released", reason);
            retest(&mut body, retest_report);
            (transition(connect().await?, &id, body).await?, AppStyle::Line)
        }
        AppCommand::Suspend { id, reason } => {
            (transition(connect().await?, &id, move_to("suspended", Some(reason))).await?, AppStyle::Full)
        }
        AppCommand::Maintenance { id, reason } => {
            let body = move_to("temporarily_offline", Some(reason));
            (transition(connect().await?, &id, body).await?, AppStyle::Line)
        }
        AppCommand::Offline { id, reason } => {
            (transition(connect().await?, &id, move_to("offline", Some(reason))).await?, AppStyle::Full)
        }
        AppCommand::Extend { id, days, reason } => {
            let body = json!({"working_days": days, "reason": reason});
            let c = connect().await?;
            (c.post(&["applications", &id, "suspension", "extension"], &body).await?, AppStyle::Full)
        }
        AppCommand::History { id } => {
            (connect().await?.get(&["applications", &id, "transitions"], &[]).await?, AppStyle::History)
        }
        AppCommand::Archive { id, out: file } => {
            let doc = connect().await?.get(&["applications", &id, "archive"], &[]).await?;
            return archive(s, &id, &doc, file.as_deref(), out);
        }
        AppCommand::AddClient { id, file } => {
            let body = read_json(&file)?;
            (connect().await?.post(&["applications", &id, "clients"], &body).await?, AppStyle::Credentials)
        }
        AppCommand::Webhook { id } => {
            (connect().await?.get(&["applications", &id, "webhook", "deliveries"], &[]).await?, AppStyle::Webhook)
        }
    };
    if s.json {
        return Ok(output::json(out, &result)?);
    }
    match style {
        AppStyle::List => output::apps(out, items(&result, "applications"))?,
        AppStyle::Full => output::app(out, &result)?,
        AppStyle::Line => output::app_line(out, &result)?,
        AppStyle::Review => output::review(out, &result)?,
        AppStyle::History => output::transitions(out, items(&result, "transitions"))?,
        AppStyle::Credentials => output::client_credentials(out, &result)?,
        AppStyle::Webhook => output::webhook_deliveries(out, &result)?,
    }
    Ok(())
}

/// How an application command's answer is shown.
enum AppStyle {
    List,
    Full,
    Line,
    Review,
    History,
    Credentials,
    Webhook,
}

async fn transition(c: AdminClient, id: &str, body: Map<String, Value>) -> Result<Value, CliError> {
    c.post(&["applications", id, "transitions"], &Value::Object(body)).await
}

fn archive(s: &Settings, id: &str, doc: &Value, file: Option<&str>, out: &mut dyn Write) -> Result<(), CliError> {
    let Some(path) = file else { return Ok(output::json(out, doc)?) };
    let mut bytes = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_file(path, &bytes)?;
    if !s.json {
        let n = |k: &str| items(doc, k).len();
        writeln!(
            out,
            "archive of {id} written to {path}: {} reviews, {} transitions, {} clients, {} calls",
            n("reviews"),
            n("transitions"),
            n("clients"),
            n("calls")
        )?;
    }
    Ok(())
}

/// Prints an answer for people.
type Printer = fn(&mut dyn Write, &Value) -> std::io::Result<()>;

async fn client(s: &Settings, action: ClientCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let c = AdminClient::connect(&s.credentials).await?;
    let (v, print): (Value, Printer) = match action {
        ClientCommand::List => (c.get(&["clients"], &[]).await?, |o, v| output::clients(o, items(v, "clients"))),
        ClientCommand::Show { id } => (c.get(&["clients", &id], &[]).await?, output::client),
        ClientCommand::RotateSecret { id, overlap } => {
            let body = match overlap {
                Some(o) => json!({"overlap_seconds": o}),
                None => json!({}),
            };
            (c.post(&["clients", &id, "secret"], &body).await?, output::rotated)
        }
    };
    if s.json {
        output::json(out, &v)?
    } else {
        print(out, &v)?
    }
    Ok(())
}

async fn scope(s: &Settings, action: ScopeCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let c = AdminClient::connect(&s.credentials).await?;
    match action {
        ScopeCommand::List => {
            let v = c.get(&["scopes"], &[]).await?;
            if s.json { output::json(out, &v)? } else { output::scopes(out, items(&v, "scopes"))? }
        }
        ScopeCommand::Add { name, description, sensitive } => {
            let body = json!({"name": name, "description": description, "sensitive": sensitive});
            let v = c.post(&["scopes"], &body).await?;
            if s.json { output::json(out, &v)? } else { writeln!(out, "added scope {}", text(&v, "name"))? }
        }
        ScopeCommand::Remove { name } => {
            c.call(reqwest::Method::DELETE, &["scopes", &name], &[], None).await?;
            if s.json { output::json(out, &json!({"removed": name}))? } else { writeln!(out, "removed scope {name}")? }
        }
    }
    Ok(())
}

/// Counts the lines passing through to another writer.
struct Lines<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += buf.iter().take(n).filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A 403 from the audit API usually means the admin's credentials were used.
fn auditor_hint(e: CliError) -> CliError {
    match e {
        CliError::Problem(mut p) if p.status == 403 => {
            p.detail.push_str("; the audit commands need the auditor's client (--client-id auditor-cli)");
            CliError::Problem(p)
        }
        other => other,
    }
}

/// The most pages `--all` follows, so a server handing out the same cursor cannot loop forever.
const MAX_PAGES: usize = 100_000;

async fn audit(s: &Settings, action: AuditCommand, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    match action {
        AuditCommand::Query { filters, limit, cursor, all } => {
            let mut q = filter_query(&filters)?;
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            let c = AdminClient::connect(&s.credentials).await?;
            let mut cursor = cursor;
            let mut collected: Vec<Value> = Vec::new();
            for _ in 0..MAX_PAGES {
                let mut page_q = q.clone();
                if let Some(cur) = &cursor {
                    page_q.push(("cursor", cur.clone()));
                }
                let page = c.get(&["audit", "events"], &page_q).await.map_err(auditor_hint)?;
                let next = page.get("next_cursor").and_then(Value::as_str).map(str::to_owned);
                if !all {
                    if s.json {
                        output::json(out, &page)?;
                    } else {
                        output::events(out, items(&page, "events"))?;
                        if let Some(n) = &next {
                            writeln!(err, "more events: repeat with --cursor {n}, or use --all")?;
                        }
                    }
                    return Ok(());
                }
                if s.json {
                    collected.extend(items(&page, "events").iter().cloned());
                } else {
                    output::events(out, items(&page, "events"))?;
                }
                if next.is_none() || next == cursor {
                    break;
                }
                cursor = next;
            }
            if s.json {
                output::json(out, &json!({"events": collected, "next_cursor": null}))?;
            }
            Ok(())
        }
        AuditCommand::Export { filters, out: file } => {
            let q = filter_query(&filters)?;
            let c = AdminClient::connect(&s.credentials).await?;
            match file {
                None => {
                    c.stream(&["audit", "export"], &q, out).await.map_err(auditor_hint)?;
                }
                Some(path) => {
                    let file_err = |source| CliError::File { path: path.clone(), source };
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).map_err(file_err)?);
                    let mut sink = Lines { inner: &mut f, count: 0 };
                    c.stream(&["audit", "export"], &q, &mut sink).await.map_err(auditor_hint)?;
                    let n = sink.count;
                    f.flush().map_err(file_err)?;
                    if !s.json {
                        writeln!(out, "exported {n} events to {path}")?;
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_specs() {
        assert_eq!(
            evidence("mlps_assessment:DJCP-2026-17:2").unwrap(),
            json!({"kind": "mlps_assessment", "reference": "DJCP-2026-17", "level": 2, "passed": true})
        );
        assert_eq!(
            evidence("software_test_report:https://docs.example/tr/1").unwrap(),
            json!({"kind": "software_test_report", "reference": "https://docs.example/tr/1", "passed": true})
        );
        assert!(evidence("crypto_assessment").is_err());
        assert!(evidence("photo:x").is_err());
        assert!(evidence("crypto_assessment:").is_err());
    }

    // DC-8: every call the CLI makes is a route of the admin API's OpenAPI document.
    #[test]
    fn every_route_called_is_in_the_openapi_document() {
        let (_, doc) = crate::http::admin::api().finish("tongzheng:admin", "tongzheng:audit", "http://127.0.0.1");
        let calls = [
            ("get", "/admin/v1/applications"),
            ("post", "/admin/v1/applications"),
            ("get", "/admin/v1/applications/{id}"),
            ("put", "/admin/v1/applications/{id}"),
            ("post", "/admin/v1/applications/{id}/reviews"),
            ("post", "/admin/v1/applications/{id}/transitions"),
            ("get", "/admin/v1/applications/{id}/transitions"),
            ("post", "/admin/v1/applications/{id}/suspension/extension"),
            ("get", "/admin/v1/applications/{id}/archive"),
            ("post", "/admin/v1/applications/{id}/clients"),
            ("get", "/admin/v1/applications/{id}/webhook/deliveries"),
            ("get", "/admin/v1/clients"),
            ("get", "/admin/v1/clients/{id}"),
            ("post", "/admin/v1/clients/{id}/secret"),
            ("get", "/admin/v1/scopes"),
            ("post", "/admin/v1/scopes"),
            ("delete", "/admin/v1/scopes/{name}"),
            ("get", "/admin/v1/audit/events"),
            ("get", "/admin/v1/audit/export"),
            ("get", "/admin/v1/users"),
            ("post", "/admin/v1/users"),
            ("get", "/admin/v1/users/{id}"),
            ("put", "/admin/v1/users/{id}"),
            ("post", "/admin/v1/users/search"),
            ("post", "/admin/v1/users/{id}/verification"),
            ("delete", "/admin/v1/users/{id}/verification"),
            ("get", "/admin/v1/legal-persons"),
            ("post", "/admin/v1/legal-persons"),
            ("get", "/admin/v1/legal-persons/{id}"),
            ("put", "/admin/v1/legal-persons/{id}"),
            ("delete", "/admin/v1/legal-persons/{id}"),
            ("put", "/admin/v1/legal-persons/{id}/agents/{user_id}"),
            ("delete", "/admin/v1/legal-persons/{id}/agents/{user_id}"),
            ("post", "/admin/v1/legal-persons/{id}/verification"),
            ("post", "/admin/v1/name-index/rebuild"),
        ];
        for (method, path) in calls {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} is not in the API");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1767225600").unwrap(), 1_767_225_600);
        assert_eq!(parse_time("2026-01-01T00:00:00Z").unwrap(), 1_767_225_600);
        assert_eq!(parse_time("2026-01-01T08:00:00.5+08:00").unwrap(), 1_767_225_600);
        assert!(parse_time("2026-01-01").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
