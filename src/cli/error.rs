//! Why an admin-CLI command failed: one closed enum, each variant printed as the one line the
//! user sees on stderr. Server errors that are RFC 7807 problems keep their fields.

use serde_json::{Map, Value};

/// A failed admin-CLI command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No client secret on the command line or in the environment.
    #[error("no client secret: pass --client-secret or set TONGZHENG_ADMIN_CLIENT_SECRET")]
    NoSecret,
    /// The server URL does not parse or is not http(s).
    #[error("invalid server URL '{0}': give an absolute http:// or https:// URL")]
    BadUrl(String),
    /// An argument the parser accepted but the command cannot use.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached, or the connection failed mid-way.
    #[error("cannot reach the server at {url}: {reason}")]
    Network {
        /// The server URL given.
        url: String,
        /// What went wrong, as the innermost cause says it.
        reason: String,
    },
    /// The token endpoint refused the credentials (RFC 6749 s5.2).
    #[error("error {status} getting a token for '{client_id}': {error}{}", description_suffix(.description))]
    Token {
        /// HTTP status.
        status: u16,
        /// The client that asked.
        client_id: String,
        /// The RFC 6749 s5.2 error code.
        error: String,
        /// `error_description`, when given.
        description: Option<String>,
    },
    /// The admin API answered with an RFC 7807 problem document.
    #[error("{0}")]
    Problem(Problem),
    /// The server answered with an error that is not a problem document.
    #[error("error {status} from {url}: {body}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The URL called.
        url: String,
        /// The start of the body.
        body: String,
    },
    /// The server answered 2xx with a body that is not what the API promises.
    #[error("unexpected response from {url}: {reason}")]
    BadResponse {
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file (`-` for stdin).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input file is not JSON.
    #[error("{path}: not valid JSON: {source}")]
    BadJson {
        /// The file (`-` for stdin).
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Standard output could not be written (a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

fn description_suffix(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
}

/// An RFC 7807 problem document as the admin API sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// HTTP status of the response.
    pub status: u16,
    /// `title`: the problem type's summary.
    pub title: String,
    /// `detail`: this occurrence.
    pub detail: String,
    /// RFC 7807 s3.2 extension members (everything but type, title, status, detail, instance).
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// Reads a problem document; `None` when `body` is not a JSON object with a title or detail.
    pub fn parse(status: u16, body: &[u8]) -> Option<Self> {
        let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else { return None };
        let mut text = |k: &str| match map.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let title = text("title");
        let detail = text("detail");
        if title.is_none() && detail.is_none() {
            return None;
        }
        for k in ["type", "status", "instance"] {
            map.remove(k);
        }
        Some(Self { status, title: title.unwrap_or_default(), detail: detail.unwrap_or_default(), extensions: map })
    }
}

/// An extension member as text: strings bare, arrays of strings comma-joined, the rest as JSON.
fn member_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(member_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

impl std::fmt::Display for Problem {
    /// `error 409 Illegal lifecycle transition: <detail> (allowed: approved, offline)`: the
    /// extension members the detail does not already say are appended.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}", self.status)?;
        match (self.title.is_empty(), self.detail.is_empty()) {
            (false, false) => write!(f, " {}: {}", self.title, self.detail)?,
            (false, true) => write!(f, " {}", self.title)?,
            _ => write!(f, ": {}", self.detail)?,
        }
        let extra: Vec<String> = self
            .extensions
            .iter()
            // The request id every problem carries is for support, not for this line.
            .filter(|(k, _)| k.as_str() != "request_id")
            .map(|(k, v)| (k, member_text(v)))
            .filter(|(_, v)| !v.is_empty() && !self.detail.contains(v.as_str()))
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if !extra.is_empty() {
            write!(f, " ({})", extra.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7807 s3.2: extension members are shown unless the detail already says them.
    #[test]
    fn problem_line() {
        let body = br#"{"type":"urn:tongzheng:problem:illegal-transition","title":"Illegal lifecycle transition",
            "detail":"an application cannot go from applied to released","status":409,
            "from":"applied","to":"released","allowed":["approved","offline"]}"#;
        let p = Problem::parse(409, body).unwrap();
        assert_eq!(
            CliError::Problem(p).to_string(),
            "error 409 Illegal lifecycle transition: an application cannot go from applied to released \
             (allowed: approved, offline)"
        );
        assert!(Problem::parse(500, b"<html>").is_none());
        assert!(Problem::parse(500, br#"{"error":"x"}"#).is_none());
    }

    #[test]
    fn token_error_line() {
        let e = CliError::Token {
            status: 401,
            client_id: "admin-cli".into(),
            error: "invalid_client".into(),
            description: Some("bad secret".into()),
        };
        assert_eq!(e.to_string(), "error 401 getting a token for 'admin-cli': invalid_client (bad secret)");
    }
}
