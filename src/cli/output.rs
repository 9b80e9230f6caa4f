//! How the admin CLI prints answers: the API's JSON with `--json`, else compact lines and
//! aligned `label: value` blocks read from that JSON. A newly issued client secret is printed
//! here once, labelled; no other secret ever is (the API sends none).

use std::io::{self, Write};

use serde_json::Value;
use time::UtcOffset;

/// The JSON, pretty-printed, on one document.
pub fn json(out: &mut dyn Write, v: &Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

/// A string member, or "" when absent.
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An array member's items, or none.
pub fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// A list of strings, space-separated.
fn words(v: &Value, key: &str) -> String {
    items(v, key).iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")
}

/// Unix seconds as RFC 3339 UTC; "" when absent.
pub fn when(v: Option<&Value>) -> String {
    v.and_then(Value::as_i64).map(|t| crate::calendar::rfc3339(t, UtcOffset::UTC)).unwrap_or_default()
}

/// Rows of cells, each column padded to its widest cell (counted in characters).
pub fn table(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let last = i + 1 == row.len();
            line.push_str(cell);
            if !last {
                let pad = widths.get(i).copied().unwrap_or_default().saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `label: value` lines with the values aligned; empty values are left out.
pub fn block(out: &mut dyn Write, pairs: &[(&str, String)]) -> io::Result<()> {
    let width = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        writeln!(out, "{k}:{}{v}", " ".repeat(width - k.chars().count() + 1))?;
    }
    Ok(())
}

/// One application as a row: id, state, name.
fn app_row(app: &Value) -> Vec<String> {
    vec![text(app, "id").to_owned(), text(app, "state").to_owned(), text(app, "name").to_owned()]
}

/// Applications, one line each: `tax-office  released  税务协同办公`.
pub fn apps(out: &mut dyn Write, list: &[Value]) -> io::Result<()> {
    table(out, &list.iter().map(app_row).collect::<Vec<_>>())
}

/// One application in a line (after a change).
pub fn app_line(out: &mut dyn Write, app: &Value) -> io::Result<()> {
    table(out, &[app_row(app)])
}

/// One application in full (the contact phone comes masked from the API).
pub fn app(out: &mut dyn Write, app: &Value) -> io::Result<()> {
    let empty = Value::Null;
    let grants = app.get("grants").unwrap_or(&empty);
    let contact = app.get("contact").unwrap_or(&empty);
    let audience = app.get("pre_release").unwrap_or(&empty);
    let clients: Vec<String> = items(app, "client_details")
        .iter()
        .map(|c| {
            let on = if c.get("enabled").and_then(Value::as_bool) == Some(false) { " (disabled)" } else { "" };
            format!("{}{on}", text(c, "client_id"))
        })
        .collect();
    let audience = [("users", words(audience, "users")), ("orgs", words(audience, "orgs"))]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut pairs = vec![
        ("id", text(app, "id").to_owned()),
        ("name", text(app, "name").to_owned()),
        ("state", format!("{} since {}", text(app, "state"), when(app.get("state_since")))),
        ("category", format!("{} ({})", text(app, "category"), text(app, "app_type"))),
        ("owning unit", text(app, "owning_unit").to_owned()),
        ("developer", text(app, "developer").to_owned()),
        (
            "contact",
            [text(contact, "name"), text(contact, "phone"), text(contact, "email")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("  "),
        ),
        ("scopes", words(grants, "scopes")),
        ("grant types", words(grants, "grant_types")),
        ("redirect uris", words(grants, "redirect_uris")),
        ("clients", clients.join(" ")),
        ("test users", words(app, "test_users")),
        ("audience", audience),
        ("review due", text(app, "review_due").to_owned()),
    ];
    if let Some(s) = app.get("suspension") {
        pairs.push(("suspended", format!("{} (at {})", text(s, "reason"), when(s.get("at")))));
        if let Some(e) = s.get("extension") {
            let days = e.get("working_days").and_then(Value::as_u64).unwrap_or_default();
            pairs.push(("extension", format!("{days} working days: {}", text(e, "reason"))));
        }
        let overdue = app.get("rectification_overdue").and_then(Value::as_bool) == Some(true);
        let due = text(app, "rectification_due");
        pairs.push(("rectify by", format!("{due}{}", if overdue { " (OVERDUE)" } else { "" })));
    }
    pairs.push(("archive", text(app, "archive").to_owned()));
    block(out, &pairs)
}

/// A newly issued client secret, labelled, shown this once.
pub fn secret(out: &mut dyn Write, client_id: &str, secret: &str) -> io::Result<()> {
    block(out, &[("client_id", client_id.to_owned()), ("client_secret", secret.to_owned())])?;
    writeln!(out, "(the client secret is shown this once; store it now: the server keeps only its hash)")
}

/// A review's outcome: the record, the application, and the credentials on approval.
pub fn review(out: &mut dyn Write, v: &Value) -> io::Result<()> {
    let empty = Value::Null;
    let r = v.get("review").unwrap_or(&empty);
    writeln!(out, "review {}: {} by {}", text(r, "id"), text(r, "decision"), text(r, "reviewer"))?;
    if let Some(a) = v.get("application") {
        app_line(out, a)?;
    }
    if let Some(c) = v.get("credentials") {
        client_credentials(out, c)?;
    }
    Ok(())
}

/// A client with its secret (approval or add-client).
pub fn client_credentials(out: &mut dyn Write, c: &Value) -> io::Result<()> {
    match c.get("client_secret").and_then(Value::as_str) {
        Some(s) => secret(out, text(c, "client_id"), s),
        None => writeln!(out, "client_id: {} (public client: no secret)", text(c, "client_id")),
    }
}

/// Transitions, oldest first: `time  from -> to  by  reason`.
pub fn transitions(out: &mut dyn Write, list: &[Value]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                when(t.get("at")),
                format!("{} -> {}", text(t, "from"), text(t, "to")),
                text(t, "by").to_owned(),
                text(t, "reason").to_owned(),
            ]
        })
        .collect();
    table(out, &rows)
}

/// A directory webhook's status: the URL and cursors, then one line per event: cursor, state,
/// attempts, next attempt, last error.
pub fn webhook_deliveries(out: &mut dyn Write, v: &Value) -> io::Result<()> {
    writeln!(out, "webhook: {}", v.get("webhook").and_then(Value::as_str).unwrap_or("(none)"))?;
    writeln!(out, "delivered up to: {}  feed head: {}", text(v, "cursor"), text(v, "head"))?;
    let list = v.get("deliveries").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                text(d, "cursor").to_owned(),
                text(d, "state").to_owned(),
                d.get("attempts").map(Value::to_string).unwrap_or_default(),
                d.get("next_attempt_at").map(|n| when(Some(n))).unwrap_or_default(),
                text(d, "last_error").to_owned(),
            ]
        })
        .collect();
    table(out, &rows)
}

/// Clients, one line each: id, enabled, origin, application, name.
pub fn clients(out: &mut dyn Write, list: &[Value]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let enabled = c.get("enabled").and_then(Value::as_bool) == Some(true);
            let app = text(c, "app_id");
            vec![
                text(c, "client_id").to_owned(),
                if enabled { "enabled" } else { "disabled" }.to_owned(),
                text(c, "origin").to_owned(),
                if app.is_empty() { "-".to_owned() } else { format!("{app} ({})", text(c, "lifecycle")) },
                text(c, "client_name").to_owned(),
            ]
        })
        .collect();
    table(out, &rows)
}

/// One client in full (the API never sends its secrets).
pub fn client(out: &mut dyn Write, c: &Value) -> io::Result<()> {
    let secrets: Vec<String> = items(c, "secret_expires_at")
        .iter()
        .map(|e| if e.is_null() { "no expiry".to_owned() } else { format!("expires {}", when(Some(e))) })
        .collect();
    let enabled = c.get("enabled").and_then(Value::as_bool) == Some(true);
    block(
        out,
        &[
            ("client_id", text(c, "client_id").to_owned()),
            ("name", text(c, "client_name").to_owned()),
            ("enabled", enabled.to_string()),
            ("origin", text(c, "origin").to_owned()),
            ("application", text(c, "app_id").to_owned()),
            ("lifecycle", text(c, "lifecycle").to_owned()),
            ("auth method", text(c, "token_endpoint_auth_method").to_owned()),
            ("grant types", words(c, "grant_types")),
            ("scope", text(c, "scope").to_owned()),
            ("redirect uris", words(c, "redirect_uris")),
            ("secrets", if secrets.is_empty() { "none".to_owned() } else { secrets.join(", ") }),
            ("created", when(c.get("created_at"))),
        ],
    )
}

/// A rotated secret, shown this once, and when the old ones stop working.
pub fn rotated(out: &mut dyn Write, v: &Value) -> io::Result<()> {
    secret(out, text(v, "client_id"), text(v, "client_secret"))?;
    writeln!(out, "previous secrets stop working at {}", when(v.get("previous_secrets_expire_at")))
}

/// The catalogue: name, flags, description.
pub fn scopes(out: &mut dyn Write, list: &[Value]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let flag = |k: &str, label: &'static str| {
                if s.get(k).and_then(Value::as_bool) == Some(true) { Some(label) } else { None }
            };
            let flags: Vec<&str> =
                [flag("built_in", "built-in"), flag("sensitive", "sensitive")].into_iter().flatten().collect();
            vec![
                text(s, "name").to_owned(),
                if flags.is_empty() { "-".to_owned() } else { flags.join(",") },
                text(s, "description").to_owned(),
            ]
        })
        .collect();
    table(out, &rows)
}

/// Audit events, one line each: time, kind, outcome, actor, what it was about, detail.
pub fn events(out: &mut dyn Write, list: &[Value]) -> io::Result<()> {
    for e in list {
        let ts = match text(e, "ts") {
            "" => when(e.get("time")),
            ts => ts.to_owned(),
        };
        let mut line = format!("{ts}  {}  {}  {}", text(e, "kind"), text(e, "outcome"), text(e, "actor"));
        for (k, label) in [("app_id", "app"), ("client_id", "client"), ("subject", "subject")] {
            let v = text(e, k);
            if !v.is_empty() {
                line.push_str(&format!("  {label}={v}"));
            }
        }
        if let Some(d) = e.get("detail").filter(|d| !d.is_null()) {
            line.push_str(&format!("  {d}"));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_lines_align() {
        let mut out = Vec::new();
        let list = [
            json!({"id": "tax-office", "state": "released", "name": "税务协同办公"}),
            json!({"id": "a1", "state": "applied", "name": "x"}),
        ];
        apps(&mut out, &list).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "tax-office  released  税务协同办公\na1          applied   x\n");
    }

    #[test]
    fn blocks_skip_empty_values() {
        let mut out = Vec::new();
        block(&mut out, &[("id", "x".into()), ("archive", String::new()), ("state", "applied".into())]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "id:    x\nstate: applied\n");
    }
}
