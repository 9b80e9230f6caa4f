//! `tongzheng admin`: a command-line client of the admin API of a running server (DC-8), for the
//! common steps of an application's lifecycle (AY-8), clients, the scope catalogue (AY-7.1),
//! natural and legal persons (HL-5.1) and the audit log (AY-8.5.2.1). Parses its arguments,
//! resolves the server and credentials, and hands the command to [`commands`]; [`run`] is the
//! whole CLI as a library call.

pub mod client;
mod commands;
pub mod error;
mod import;
pub mod output;
mod persons;

use std::ffi::OsString;
use std::io::Write;

use clap::{ArgGroup, Args, FromArgMatches, Subcommand};
use url::Url;

use crate::crypto::Secret;
pub use client::{AdminClient, Credentials};
pub use error::CliError;

/// Environment variable with the server URL.
pub const ENV_URL: &str = "TONGZHENG_ADMIN_URL";
/// Environment variable with the client id.
pub const ENV_CLIENT_ID: &str = "TONGZHENG_ADMIN_CLIENT_ID";
/// Environment variable with the client secret.
pub const ENV_CLIENT_SECRET: &str = "TONGZHENG_ADMIN_CLIENT_SECRET";
/// The server used when neither `--server` nor the environment names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// The client used when neither `--client-id` nor the environment names one.
pub const DEFAULT_CLIENT_ID: &str = "admin-cli";

/// Help text after the options: where the settings come from, credentials, exit status.
pub const AFTER_HELP: &str = "\
Settings: --server, --client-id and --client-secret, else the environment variables
TONGZHENG_ADMIN_URL, TONGZHENG_ADMIN_CLIENT_ID and TONGZHENG_ADMIN_CLIENT_SECRET, else
http://127.0.0.1:8080 and admin-cli; there is no default secret. Prefer the environment for the
secret: a command line is visible to other users of the machine.

Management commands need a client holding the admin scope (admin-cli). The audit commands need
the auditor's client instead, which holds the audit scope (separation of duties):
  tongzheng admin --client-id auditor-cli --client-secret \"$AUDITOR_SECRET\" audit query --all

Output is human-readable lines; --json prints the API's JSON. A client secret is printed only
when the server issues one (review approval, add-client, rotate-secret): it is shown this once.
Exit status: 0 done, 1 the command failed (message on stderr), 2 usage error.";

/// A client secret given on the command line; never printed.
#[derive(Clone)]
pub struct SecretArg(pub Secret);

impl From<String> for SecretArg {
    fn from(s: String) -> Self {
        Self(Secret(s))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

/// `tongzheng admin [options] <command>`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Server base URL (the issuer) [env: TONGZHENG_ADMIN_URL] [default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL", help_heading = "Global options")]
    pub server: Option<String>,
    /// Client to authenticate as [env: TONGZHENG_ADMIN_CLIENT_ID] [default: admin-cli].
    #[arg(long, global = true, value_name = "ID", help_heading = "Global options")]
    pub client_id: Option<String>,
    /// Its secret [env: TONGZHENG_ADMIN_CLIENT_SECRET].
    #[arg(long, global = true, value_name = "SECRET", help_heading = "Global options")]
    pub client_secret: Option<SecretArg>,
    /// Print the API's JSON instead of human-readable lines.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The admin command groups.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Applications and their lifecycle (AY-8).
    App {
        /// What to do.
        #[command(subcommand)]
        action: AppCommand,
    },
    /// OAuth clients.
    Client {
        /// What to do.
        #[command(subcommand)]
        action: ClientCommand,
    },
    /// The scope catalogue (AY-7.1).
    Scope {
        /// What to do.
        #[command(subcommand)]
        action: ScopeCommand,
    },
    /// The audit log (AY-8.5.2.1); needs the auditor's credentials (--client-id auditor-cli).
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Natural persons (HL-5.1): identity documents, phones, verification, search.
    Person {
        /// What to do.
        #[command(subcommand)]
        action: persons::PersonCommand,
    },
    /// Legal persons (HL-5.1): records, agents and their roles.
    Legal {
        /// What to do.
        #[command(subcommand)]
        action: persons::LegalCommand,
    },
    /// The directory: organizations and people (SH-6.2.4a), through SCIM.
    Directory {
        /// What to do.
        #[command(subcommand)]
        action: DirectoryCommand,
    },
}

/// Directory commands.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Loads organizations and people from a CSV (`.csv`) or JSON-lines file, idempotent by
    /// external id (a row already loaded is updated), reporting each bad row and going on.
    /// Organizations come before their departments and the people in them. Columns / keys:
    /// type (org|person), external_id, name, parent (an organization's external id), code,
    /// kind, order; username, email, phone, orgs ("ext:title;ext:title" in CSV, a list of
    /// {"org", "title"} in JSON).
    Import {
        /// The file.
        file: String,
        /// Rows per Bulk request.
        #[arg(long, default_value_t = 200)]
        batch: usize,
    },
}

/// Application commands.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List applications.
    List {
        /// Only applications in this state (applied, approved, pre_release, released, suspended,
        /// temporarily_offline, offline).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// Show one application.
    Show {
        /// Application id.
        id: String,
    },
    /// Register an application (SH-6.2.2); it starts in 'applied'.
    Apply {
        /// The registration as JSON (the ApplicationInput of the OpenAPI document); '-' reads stdin.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: String,
    },
    /// Replace an application's registration, grant and test users.
    Update {
        /// Application id.
        id: String,
        /// The registration as JSON; '-' reads stdin.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: String,
    },
    /// Record a review (SH-6.2.3); approval allocates the first client and prints its secret once.
    #[command(group(ArgGroup::new("decision").required(true).args(["approve", "reject"])))]
    Review {
        /// Application id.
        id: String,
        /// Reviewer's name or id.
        #[arg(long)]
        reviewer: String,
        /// Approve.
        #[arg(long)]
        approve: bool,
        /// Reject (the application stays 'applied').
        #[arg(long)]
        reject: bool,
        /// Evidence checked and passed, as kind:reference[:level] (kinds: software_test_report,
        /// mlps_assessment, security_test_report, crypto_assessment); repeatable.
        #[arg(long, value_name = "KIND:REF[:LEVEL]")]
        evidence: Vec<String>,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Grey release (SH-6.2.7 b) to the listed users and organizations.
    PreRelease {
        /// Application id.
        id: String,
        /// A user let in; repeatable.
        #[arg(long = "user", value_name = "USER")]
        users: Vec<String>,
        /// An organization let in; repeatable.
        #[arg(long = "org", value_name = "ORG")]
        orgs: Vec<String>,
        /// Passed re-test report, when returning from a suspension (AY-8.5.5).
        #[arg(long, value_name = "REPORT")]
        retest_report: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Release (SH-6.2.7 c), or return to released after maintenance or a suspension.
    Release {
        /// Application id.
        id: String,
        /// Passed re-test report, required when the application is suspended (AY-8.5.5).
        #[arg(long, value_name = "REPORT")]
        retest_report: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Suspend at once (AY-8.5.3.2): its tokens stop working, rectification is due.
    Suspend {
        /// Application id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Extend a suspension's rectification once (AY-8.5.4).
    Extend {
        /// Application id.
        id: String,
        /// Working days to add.
        #[arg(long)]
        days: u32,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Take a released application temporarily offline for maintenance (SH-7.3).
    Maintenance {
        /// Application id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Take an application offline for good (AY-8.6.3): grants revoked, records archived.
    Offline {
        /// Application id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// The lifecycle history (transitions, oldest first).
    History {
        /// Application id.
        id: String,
    },
    /// The archive (AY-8.6.4): registration, reviews, transitions, clients, calls.
    Archive {
        /// Application id.
        id: String,
        /// Write it to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<String>,
    },
    /// Add a client within the application's grant; prints its secret once.
    AddClient {
        /// Application id.
        id: String,
        /// RFC 7591 client metadata as JSON (may hold "client_id"); '-' reads stdin.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: String,
    },
    /// Directory webhook deliveries of the last 7 days (issue 12), newest first.
    Webhook {
        /// Application id.
        id: String,
    },
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List all clients.
    List,
    /// Show one client (never its secrets).
    Show {
        /// client_id.
        id: String,
    },
    /// Issue a new secret, printed once; the old ones keep working for the overlap.
    RotateSecret {
        /// client_id.
        id: String,
        /// Seconds the previous secrets keep working (server default when absent).
        #[arg(long, value_name = "SECONDS")]
        overlap: Option<i64>,
    },
}

/// Scope catalogue commands.
#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// List the catalogue.
    List,
    /// Add a scope.
    Add {
        /// The scope token.
        name: String,
        /// What it allows.
        #[arg(long)]
        description: String,
        /// It releases sensitive personal data (SH-8.2).
        #[arg(long)]
        sensitive: bool,
    },
    /// Remove a scope no client or application holds.
    Remove {
        /// The scope token.
        name: String,
    },
}

/// Filters shared by audit query and export. Times are unix seconds or RFC 3339.
#[derive(Debug, Clone, Default, Args)]
pub struct AuditFilters {
    /// Earliest time, inclusive (unix seconds or RFC 3339, e.g. 2026-03-01T00:00:00+08:00).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Latest time, exclusive (unix seconds or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Only this application.
    #[arg(long = "app", value_name = "ID")]
    pub app: Option<String>,
    /// Only this client.
    #[arg(long = "client", value_name = "ID")]
    pub client: Option<String>,
    /// Only about this person (sub).
    #[arg(long, value_name = "SUB")]
    pub subject: Option<String>,
    /// Only this kind (e.g. app_transition, token_issued, login_failure, admin_action).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only this outcome (success, failure, denied).
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Option<String>,
}

/// Audit commands (auditor credentials).
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Events, newest first, one page (or every page with --all).
    Query {
        /// Filters.
        #[command(flatten)]
        filters: AuditFilters,
        /// Page size, 1..=1000 (server default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// Start at this page (the next_cursor of a previous page).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow next_cursor until the last page.
        #[arg(long)]
        all: bool,
    },
    /// Every matching event as JSON lines, oldest first, streamed.
    Export {
        /// Filters.
        #[command(flatten)]
        filters: AuditFilters,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<String>,
    },
}

/// The resolved settings of one invocation.
pub struct Settings {
    /// Server and credentials.
    pub credentials: Credentials,
    /// `--json`.
    pub json: bool,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Resolves the flags over the environment (`env` looks a variable up) over the defaults.
pub fn settings(args: &AdminArgs, env: impl Fn(&str) -> Option<String>) -> Result<Settings, CliError> {
    let server = non_empty(args.server.clone()).or_else(|| non_empty(env(ENV_URL))).unwrap_or(DEFAULT_URL.into());
    let url = Url::parse(server.trim()).map_err(|_| CliError::BadUrl(server.clone()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(CliError::BadUrl(server));
    }
    let client_id =
        non_empty(args.client_id.clone()).or_else(|| non_empty(env(ENV_CLIENT_ID))).unwrap_or(DEFAULT_CLIENT_ID.into());
    let secret = match &args.client_secret {
        Some(s) if !s.0.expose().is_empty() => s.0.clone(),
        _ => non_empty(env(ENV_CLIENT_SECRET)).map(Secret).ok_or(CliError::NoSecret)?,
    };
    Ok(Settings { credentials: Credentials { server: url, client_id, client_secret: secret }, json: args.json })
}

/// The `admin` command as clap sees it, for parsing outside `main.rs`.
pub fn command() -> clap::Command {
    AdminArgs::augment_args(
        clap::Command::new("tongzheng admin")
            .about("Drive the admin API of a running tongzheng server")
            .after_help(AFTER_HELP),
    )
}

/// Runs parsed arguments: prints results to `out`, errors and notes to `err`. Returns the exit
/// status: 0 done, 1 failed.
pub async fn execute(args: AdminArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let result = match settings(&args, |k| std::env::var(k).ok()) {
        Ok(s) => commands::dispatch(&s, args.command, out, err).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "tongzheng admin: {e}");
            1
        }
    }
}

/// The whole admin CLI as a library call: `args` are the words after `tongzheng admin`.
/// Returns the exit status (2 for a usage error, after printing clap's message).
pub async fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = std::iter::once(OsString::from("tongzheng admin")).chain(args.into_iter().map(Into::into));
    let parsed = command().try_get_matches_from(argv).and_then(|m| AdminArgs::from_arg_matches(&m));
    match parsed {
        Ok(a) => execute(a, out, err).await,
        Err(e) => {
            let text = e.render().to_string();
            let _ = if e.use_stderr() { err.write_all(text.as_bytes()) } else { out.write_all(text.as_bytes()) };
            u8::try_from(e.exit_code()).unwrap_or(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> AdminArgs {
        let argv = std::iter::once("tongzheng admin").chain(words.iter().copied());
        AdminArgs::from_arg_matches(&command().try_get_matches_from(argv).unwrap()).unwrap()
    }

    #[test]
    fn flags_over_environment_over_defaults() {
        let env = |k: &str| match k {
            ENV_URL => Some("https://idp.example.gov.cn".to_owned()),
            ENV_CLIENT_SECRET => Some("from-env".to_owned()),
            _ => None,
        };
        let s = settings(&parse(&["app", "list"]), env).unwrap();
        assert_eq!(s.credentials.server.as_str(), "https://idp.example.gov.cn/");
        assert_eq!(s.credentials.client_id, DEFAULT_CLIENT_ID);
        assert_eq!(s.credentials.client_secret.expose(), "from-env");
        let a = parse(&["app", "list", "--server", "http://10.0.0.1:9000", "--client-secret", "flag", "--json"]);
        let s = settings(&a, env).unwrap();
        assert_eq!(
            (s.credentials.server.as_str(), s.credentials.client_secret.expose()),
            ("http://10.0.0.1:9000/", "flag")
        );
        assert!(s.json);
        assert!(matches!(settings(&parse(&["app", "list"]), |_| None), Err(CliError::NoSecret)));
        let a = parse(&["--server", "ftp://x", "--client-secret", "s", "scope", "list"]);
        assert!(matches!(settings(&a, |_| None), Err(CliError::BadUrl(_))));
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let a = parse(&["--client-secret", "hunter2-secret", "client", "list"]);
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn review_needs_exactly_one_decision() {
        let argv = ["tongzheng admin", "app", "review", "x", "--reviewer", "r"];
        assert!(command().try_get_matches_from(argv).is_err());
        let argv = ["tongzheng admin", "app", "review", "x", "--reviewer", "r", "--approve", "--reject"];
        assert!(command().try_get_matches_from(argv).is_err());
    }

    #[test]
    fn command_tree_is_consistent() {
        command().debug_assert();
    }
}
