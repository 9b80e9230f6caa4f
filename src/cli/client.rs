//! The admin CLI's HTTP client: gets an access token with the client_credentials grant (RFC 6749
//! s4.4, HTTP Basic client authentication) and calls `/admin/v1/...` with it. Connects within
//! 5 s; a call must finish within 30 s, except an export, which streams for as long as it takes.

use std::io::Write;
use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::error::{CliError, Problem};
use crate::crypto::Secret;

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take (not an export).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where to connect and as whom.
pub struct Credentials {
    /// The server's base URL (the issuer).
    pub server: Url,
    /// The client to authenticate as.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
}

/// A connection to the admin API holding an access token.
pub struct AdminClient {
    http: reqwest::Client,
    server: Url,
    token: Secret,
}

/// The innermost cause of an error, which is where reqwest keeps the useful words.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The URL of `segments` below the server's base path, each segment percent-encoded.
pub fn endpoint(server: &Url, segments: &[&str]) -> Url {
    let mut url = server.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

impl AdminClient {
    /// Gets an access token for `creds` at `{server}/token`.
    pub async fn connect(creds: &Credentials) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tongzheng-admin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Network { url: creds.server.to_string(), reason: root_cause(&e) })?;
        let mut client = Self { http, server: creds.server.clone(), token: Secret(String::new()) };
        client.token = client.token(creds).await?;
        Ok(client)
    }

    fn network(&self, e: &reqwest::Error) -> CliError {
        let reason = if e.is_timeout() {
            format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
        } else if e.is_connect() {
            format!("connection failed: {}", root_cause(e))
        } else {
            root_cause(e)
        };
        CliError::Network { url: self.server.to_string(), reason }
    }

    async fn token(&self, creds: &Credentials) -> Result<Secret, CliError> {
        let url = endpoint(&self.server, &["token"]);
        let resp = self
            .http
            .post(url.clone())
            .timeout(REQUEST_TIMEOUT)
            .basic_auth(&creds.client_id, Some(creds.client_secret.expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| self.network(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.network(&e))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let field = |k: &str| json.as_ref().and_then(|v| v.get(k)).and_then(Value::as_str).map(str::to_owned);
        if !status.is_success() {
            return Err(match field("error") {
                Some(error) => CliError::Token {
                    status: status.as_u16(),
                    client_id: creds.client_id.clone(),
                    error,
                    description: field("error_description"),
                },
                None => http_error(status, url.as_str(), &body),
            });
        }
        field("access_token").map(Secret).ok_or_else(|| CliError::BadResponse {
            url: url.to_string(),
            reason: "no access_token in the answer".into(),
        })
    }

    fn request(&self, method: Method, segments: &[&str], query: &[(&str, String)]) -> reqwest::RequestBuilder {
        let mut url = endpoint(&self.server, &[&["admin", "v1"], segments].concat());
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.http.request(method, url).bearer_auth(self.token.expose()).header(ACCEPT, "application/json")
    }

    /// Calls `/admin/v1/<segments>` and returns the JSON answer (`Null` for 204 No Content).
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let mut req = self.request(method, segments, query).timeout(REQUEST_TIMEOUT);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.network(&e))?;
        let (status, url) = (resp.status(), resp.url().to_string());
        let bytes = resp.bytes().await.map_err(|e| self.network(&e))?;
        if !status.is_success() {
            return Err(http_error(status, &url, &bytes));
        }
        if status == StatusCode::NO_CONTENT || bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| CliError::BadResponse { url, reason: format!("not JSON: {e}") })
    }

    /// Calls `/scim/v2/<segments>` (the directory) and returns the JSON answer.
    pub async fn scim(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let mut url = endpoint(&self.server, &[&["scim", "v2"], segments].concat());
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.request(method, url).bearer_auth(self.token.expose()).timeout(REQUEST_TIMEOUT * 4);
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| self.network(&e))?;
        let (status, url) = (resp.status(), resp.url().to_string());
        let bytes = resp.bytes().await.map_err(|e| self.network(&e))?;
        if !status.is_success() {
            return Err(http_error(status, &url, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| CliError::BadResponse { url, reason: format!("not JSON: {e}") })
    }

    /// GET `/admin/v1/<segments>`.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value, CliError> {
        self.call(Method::GET, segments, query, None).await
    }

    /// POST a JSON body to `/admin/v1/<segments>`.
    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, CliError> {
        self.call(Method::POST, segments, &[], Some(body)).await
    }

    /// Streams the body of GET `/admin/v1/<segments>` into `sink` as it arrives, with no
    /// overall timeout; returns the bytes written.
    pub async fn stream(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        sink: &mut dyn Write,
    ) -> Result<u64, CliError> {
        let mut resp = self.request(Method::GET, segments, query).send().await.map_err(|e| self.network(&e))?;
        let (status, url) = (resp.status(), resp.url().to_string());
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(|e| self.network(&e))?;
            return Err(http_error(status, &url, &bytes));
        }
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.network(&e))? {
            sink.write_all(&chunk)?;
            n += chunk.len() as u64;
        }
        sink.flush()?;
        Ok(n)
    }
}

/// The error of a non-2xx answer: its problem document when it is one.
fn http_error(status: StatusCode, url: &str, body: &[u8]) -> CliError {
    match Problem::parse(status.as_u16(), body) {
        Some(p) => CliError::Problem(p),
        None => {
            let text = String::from_utf8_lossy(body);
            let mut short: String = text.trim().chars().take(200).collect();
            if short.is_empty() {
                short = status.canonical_reason().unwrap_or("no body").to_owned();
            }
            CliError::Http { status: status.as_u16(), url: url.to_owned(), body: short }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_path_and_encode_segments() {
        let base = Url::parse("https://idp.example.gov.cn/tz/").unwrap();
        assert_eq!(endpoint(&base, &["token"]).as_str(), "https://idp.example.gov.cn/tz/token");
        let u = endpoint(&base, &["admin", "v1", "applications", "a b/c"]);
        assert_eq!(u.as_str(), "https://idp.example.gov.cn/tz/admin/v1/applications/a%20b%2Fc");
        let root = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(endpoint(&root, &["token"]).as_str(), "http://127.0.0.1:8080/token");
    }
}
