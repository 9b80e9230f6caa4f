//! `tongzheng admin person|legal`: natural persons (identity document, phone, verification,
//! search) and legal persons (records, agents and roles) through the admin API (HL-5.1,
//! HL-6.1). ID and phone numbers can be read from stdin (`-`) so they stay out of the process
//! list and shell history, and are searched by POST body, never in a URL (SH-8.2).

use std::io::{Read, Write};

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::AdminClient;
use super::output::{self, items, text, when};
use super::{CliError, Settings};

/// Natural person commands.
#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// List natural persons by id, a page at a time; `--name` keeps those whose name starts so.
    List {
        /// The name's first characters (at least 2).
        #[arg(long)]
        name: Option<String>,
        /// Page size (1-500).
        #[arg(long)]
        limit: Option<usize>,
        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Find a person exactly by phone or ID number ('-' reads it from stdin), or by name prefix.
    Search {
        /// Mainland mobile number, any written form.
        #[arg(long, conflicts_with_all = ["id_number", "name"])]
        phone: Option<String>,
        /// Identity document number.
        #[arg(long, conflicts_with = "name")]
        id_number: Option<String>,
        /// Document type of --id-number (resident_id_card, passport, hk_macao_permit, taiwan_permit).
        #[arg(long, requires = "id_number")]
        id_type: Option<String>,
        /// The name's first characters (at least 2).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one person (phone and ID number masked).
    Show {
        /// User id.
        id: String,
    },
    /// Create a natural person; the password is read from a file ('-': stdin), never an argument.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// File holding the password on its first line; '-' reads stdin.
        #[arg(long, value_name = "FILE")]
        password_file: String,
        /// Mainland mobile number ('-': stdin).
        #[arg(long)]
        phone: Option<String>,
        /// Identity document number ('-': stdin).
        #[arg(long)]
        id_number: Option<String>,
        /// Document type (default resident_id_card).
        #[arg(long, requires = "id_number")]
        id_type: Option<String>,
        /// E-mail.
        #[arg(long)]
        email: Option<String>,
    },
    /// Record or change a person's identity document (voids a real-name verification).
    SetId {
        /// User id.
        id: String,
        /// Identity document number ('-': stdin; '' clears it).
        #[arg(long)]
        id_number: String,
        /// Document type (default: the current one, else resident_id_card).
        #[arg(long)]
        id_type: Option<String>,
    },
    /// Record or change a person's mobile number.
    SetPhone {
        /// User id.
        id: String,
        /// Mainland mobile number ('-': stdin; '' clears it).
        #[arg(long)]
        phone: String,
    },
    /// Record an admin's face or in-person verification (HL-6.1: strong unless --level).
    Verify {
        /// User id.
        id: String,
        /// face or in_person.
        #[arg(long)]
        method: String,
        /// strong (default) or real_name.
        #[arg(long)]
        level: Option<String>,
        /// Who checked the person at the counter (kept in the audit record).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Withdraw a person's verification (back to registered).
    Unverify {
        /// User id.
        id: String,
    },
    /// Index every natural and legal person's name for search (once, after upgrading).
    Reindex,
}

/// Legal person commands.
#[derive(Debug, Subcommand)]
pub enum LegalCommand {
    /// List legal persons, or find them by name prefix, USCC or agent.
    List {
        /// The name's first characters (at least 2).
        #[arg(long, conflicts_with_all = ["uscc", "agent"])]
        name: Option<String>,
        /// Unified social credit code.
        #[arg(long, conflicts_with = "agent")]
        uscc: Option<String>,
        /// A natural person's user id: the legal persons they are an agent of.
        #[arg(long)]
        agent: Option<String>,
        /// Page size (1-500).
        #[arg(long)]
        limit: Option<usize>,
        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one legal person and its agents.
    Show {
        /// Legal person id.
        id: String,
    },
    /// Create a legal person (the USCC's check characters are verified).
    Create {
        /// Organization name.
        #[arg(long)]
        name: String,
        /// Unified social credit code.
        #[arg(long)]
        uscc: String,
        /// enterprise, public_institution, social_organization, government_body or other.
        #[arg(long, default_value = "enterprise")]
        kind: String,
        /// Legal representative's name.
        #[arg(long)]
        representative: String,
        /// A first agent as USER_ID or USER_ID:ROLE (admin, agent); repeatable.
        #[arg(long = "agent", value_name = "USER_ID[:ROLE]")]
        agents: Vec<String>,
    },
    /// Change a legal person's name, kind, representative or standing.
    Update {
        /// Legal person id.
        id: String,
        /// Organization name.
        #[arg(long)]
        name: Option<String>,
        /// Kind of organization.
        #[arg(long)]
        kind: Option<String>,
        /// Legal representative's name.
        #[arg(long)]
        representative: Option<String>,
        /// Let its agents act for it again.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop its agents acting for it (kills the tokens issued for it).
        #[arg(long)]
        disable: bool,
    },
    /// Delete a legal person.
    Delete {
        /// Legal person id.
        id: String,
    },
    /// Authorize a natural person to act for the legal person, or change their role.
    AddAgent {
        /// Legal person id.
        id: String,
        /// The natural person's user id.
        user_id: String,
        /// admin or agent.
        #[arg(long, default_value = "agent")]
        role: String,
    },
    /// Withdraw an agent's authorization.
    RemoveAgent {
        /// Legal person id.
        id: String,
        /// The natural person's user id.
        user_id: String,
    },
    /// Record an admin's in-person verification of the legal person.
    Verify {
        /// in_person or face.
        #[arg(long, default_value = "in_person")]
        method: String,
        /// Legal person id.
        id: String,
        /// real_name (default) or strong.
        #[arg(long)]
        level: Option<String>,
        /// Who checked the documents (kept in the audit record).
        #[arg(long)]
        operator: Option<String>,
    },
}

/// The value, or a line read from stdin for `-`.
fn value_or_stdin(v: String) -> Result<String, CliError> {
    if v != "-" {
        return Ok(v);
    }
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).map_err(|source| CliError::File { path: "-".into(), source })?;
    Ok(buf.lines().next().unwrap_or_default().trim().to_owned())
}

fn password(path: &str) -> Result<String, CliError> {
    let text = if path == "-" {
        value_or_stdin(path.to_owned())?
    } else {
        let raw = std::fs::read_to_string(path).map_err(|source| CliError::File { path: path.to_owned(), source })?;
        raw.lines().next().unwrap_or_default().to_owned()
    };
    if text.is_empty() {
        return Err(CliError::Usage(format!("{path}: no password on its first line")));
    }
    Ok(text)
}

fn put(body: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        body.insert(key.into(), Value::String(v));
    }
}

fn print(
    s: &Settings,
    out: &mut dyn Write,
    v: &Value,
    human: fn(&mut dyn Write, &Value) -> std::io::Result<()>,
) -> Result<(), CliError> {
    if s.json {
        output::json(out, v)?
    } else {
        human(out, v)?
    }
    Ok(())
}

/// Runs a natural person command.
pub(super) async fn person(s: &Settings, action: PersonCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let c = AdminClient::connect(&s.credentials).await?;
    let v = match action {
        PersonCommand::List { name, limit, cursor } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(n) = name {
                q.push(("name", n));
            }
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            if let Some(c) = cursor {
                q.push(("cursor", c));
            }
            return print(s, out, &c.get(&["users"], &q).await?, persons);
        }
        PersonCommand::Search { phone, id_number, id_type, name } => {
            let mut body = Map::new();
            put(&mut body, "phone_number", phone.map(value_or_stdin).transpose()?);
            put(&mut body, "id_number", id_number.map(value_or_stdin).transpose()?);
            put(&mut body, "id_type", id_type);
            put(&mut body, "name", name);
            if body.is_empty() {
                return Err(CliError::Usage("give --phone, --id-number or --name".into()));
            }
            return print(s, out, &c.post(&["users", "search"], &Value::Object(body)).await?, persons);
        }
        PersonCommand::Show { id } => c.get(&["users", &id], &[]).await?,
        PersonCommand::Create { username, name, password_file, phone, id_number, id_type, email } => {
            let mut body = Map::new();
            put(&mut body, "username", Some(username));
            put(&mut body, "name", Some(name));
            put(&mut body, "password", Some(password(&password_file)?));
            put(&mut body, "phone_number", phone.map(value_or_stdin).transpose()?);
            put(&mut body, "id_number", id_number.map(value_or_stdin).transpose()?);
            put(&mut body, "id_type", id_type);
            put(&mut body, "email", email);
            c.post(&["users"], &Value::Object(body)).await?
        }
        PersonCommand::SetId { id, id_number, id_type } => {
            let mut body = Map::new();
            put(&mut body, "id_number", Some(value_or_stdin(id_number)?));
            put(&mut body, "id_type", id_type);
            c.call(Method::PUT, &["users", &id], &[], Some(&Value::Object(body))).await?
        }
        PersonCommand::SetPhone { id, phone } => {
            let body = json!({"phone_number": value_or_stdin(phone)?});
            c.call(Method::PUT, &["users", &id], &[], Some(&body)).await?
        }
        PersonCommand::Verify { id, method, level, operator } => {
            let mut body = Map::new();
            put(&mut body, "method", Some(method.replace('-', "_")));
            put(&mut body, "level", level);
            put(&mut body, "operator", operator);
            c.post(&["users", &id, "verification"], &Value::Object(body)).await?
        }
        PersonCommand::Unverify { id } => c.call(Method::DELETE, &["users", &id, "verification"], &[], None).await?,
        PersonCommand::Reindex => {
            let v = c.post(&["name-index", "rebuild"], &json!({})).await?;
            if s.json {
                output::json(out, &v)?
            } else {
                writeln!(out, "indexed {} natural and {} legal persons", num(&v, "users"), num(&v, "legal_persons"))?
            }
            return Ok(());
        }
    };
    print(s, out, &v, person_block)
}

/// Runs a legal person command.
pub(super) async fn legal(s: &Settings, action: LegalCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let c = AdminClient::connect(&s.credentials).await?;
    let v = match action {
        LegalCommand::List { name, uscc, agent, limit, cursor } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            for (k, v) in [("name", name), ("uscc", uscc), ("agent", agent), ("cursor", cursor)] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if let Some(l) = limit {
                q.push(("limit", l.to_string()));
            }
            return print(s, out, &c.get(&["legal-persons"], &q).await?, legals);
        }
        LegalCommand::Show { id } => c.get(&["legal-persons", &id], &[]).await?,
        LegalCommand::Create { name, uscc, kind, representative, agents } => {
            let agents: Vec<Value> = agents
                .iter()
                .map(|a| match a.split_once(':') {
                    Some((id, role)) => json!({"user_id": id, "role": role}),
                    None => json!({"user_id": a}),
                })
                .collect();
            let body = json!({"name": name, "uscc": uscc, "kind": kind, "legal_representative": representative, "agents": agents});
            c.post(&["legal-persons"], &body).await?
        }
        LegalCommand::Update { id, name, kind, representative, enable, disable } => {
            let mut body = Map::new();
            put(&mut body, "name", name);
            put(&mut body, "kind", kind);
            put(&mut body, "legal_representative", representative);
            if enable || disable {
                body.insert("enabled".into(), Value::Bool(enable));
            }
            c.call(Method::PUT, &["legal-persons", &id], &[], Some(&Value::Object(body))).await?
        }
        LegalCommand::Delete { id } => {
            c.call(Method::DELETE, &["legal-persons", &id], &[], None).await?;
            if s.json {
                output::json(out, &json!({"deleted": id}))?
            } else {
                writeln!(out, "deleted legal person {id}")?
            }
            return Ok(());
        }
        LegalCommand::AddAgent { id, user_id, role } => {
            let body = json!({"role": role});
            c.call(Method::PUT, &["legal-persons", &id, "agents", &user_id], &[], Some(&body)).await?
        }
        LegalCommand::RemoveAgent { id, user_id } => {
            c.call(Method::DELETE, &["legal-persons", &id, "agents", &user_id], &[], None).await?
        }
        LegalCommand::Verify { id, method, level, operator } => {
            let mut body = Map::new();
            put(&mut body, "method", Some(method.replace('-', "_")));
            put(&mut body, "level", level);
            put(&mut body, "operator", operator);
            c.post(&["legal-persons", &id, "verification"], &Value::Object(body)).await?
        }
    };
    print(s, out, &v, legal_block)
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or_default()
}

fn enabled(v: &Value) -> bool {
    v.get("enabled").and_then(Value::as_bool).unwrap_or(true)
}

fn cursor_line(out: &mut dyn Write, v: &Value) -> std::io::Result<()> {
    match v.get("next_cursor").and_then(Value::as_str) {
        Some(c) => writeln!(out, "more: --cursor {c}"),
        None => Ok(()),
    }
}

/// Persons, one line each: id, username, name, level, masked phone and ID number.
fn persons(out: &mut dyn Write, v: &Value) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = items(v, "users")
        .iter()
        .map(|u| {
            ["id", "username", "name", "auth_level", "phone_number", "id_number"]
                .iter()
                .map(|k| text(u, k).to_owned())
                .collect()
        })
        .collect();
    output::table(out, &rows)?;
    cursor_line(out, v)
}

fn person_block(out: &mut dyn Write, u: &Value) -> std::io::Result<()> {
    let verified = if let Some(verification) = u.get("verification").filter(|v| v.is_object()) {
        format!("{} by {} at {}", text(verification, "method"), text(verification, "by"), when(verification.get("at")))
    } else {
        String::new()
    };
    output::block(
        out,
        &[
            ("id", text(u, "id").to_owned()),
            ("username", text(u, "username").to_owned()),
            ("name", text(u, "name").to_owned()),
            ("phone", text(u, "phone_number").to_owned()),
            ("id type", text(u, "id_type").to_owned()),
            ("id number", text(u, "id_number").to_owned()),
            ("level", format!("{} (acr {})", text(u, "auth_level"), text(u, "acr"))),
            ("verified", verified),
            ("enabled", enabled(u).to_string()),
        ],
    )
}

/// Legal persons, one line each: id, USCC, kind, name, agents count, standing.
fn legals(out: &mut dyn Write, v: &Value) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = items(v, "legal_persons")
        .iter()
        .map(|l| {
            vec![
                text(l, "id").to_owned(),
                text(l, "uscc").to_owned(),
                text(l, "kind").to_owned(),
                text(l, "name").to_owned(),
                format!("{} agents", items(l, "agents").len()),
                if enabled(l) { "enabled".into() } else { "disabled".into() },
            ]
        })
        .collect();
    output::table(out, &rows)?;
    cursor_line(out, v)
}

fn legal_block(out: &mut dyn Write, l: &Value) -> std::io::Result<()> {
    let agents: Vec<String> =
        items(l, "agents").iter().map(|a| format!("{} ({})", text(a, "user_id"), text(a, "role"))).collect();
    output::block(
        out,
        &[
            ("id", text(l, "id").to_owned()),
            ("name", text(l, "name").to_owned()),
            ("uscc", text(l, "uscc").to_owned()),
            ("kind", text(l, "kind").to_owned()),
            ("representative", text(l, "legal_representative").to_owned()),
            ("agents", agents.join(", ")),
            ("level", text(l, "auth_level").to_owned()),
            ("enabled", enabled(l).to_string()),
        ],
    )
}
