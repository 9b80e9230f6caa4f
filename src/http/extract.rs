//! Request extraction in our own error format: form and query parameters with the RFC 6749
//! s3.1 rules (each at most once, form bodies only as application/x-www-form-urlencoded),
//! client credentials (RFC 6749 s2.3.1, RFC 7523 s2.2), bearer tokens (RFC 6750 s2) and cookies.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::clients::Credentials;
use crate::crypto::Secret;
use crate::error::OAuthError;
use crate::http::error::{BearerError, JsonError};

/// Parameters of a request, each at most once. Hashed with foldhash ([`crate::fastmap`]), although
/// the names are the client's: every map is seeded afresh, and a request is parsed once, so no
/// client can learn a map's seed to aim colliding names at it (SipHash here cost about 1,800
/// instructions of every token request, issue 13).
pub type Params = crate::fastmap::Map<String, String>;

/// Parses `application/x-www-form-urlencoded` text, refusing repeated names (RFC 6749 s3.1)
/// and dropping empty values ("parameters sent without a value MUST be treated as if they
/// were omitted").
pub fn parse_params(raw: &[u8]) -> Result<Params, OAuthError> {
    // A UTF-8 body (nearly all) is split by `str`'s searcher, which finds `&` and `=` with
    // memchr instead of a byte-at-a-time closure (issue 13: a 600-character token took 2,400
    // instructions to split); any other body byte by byte. The pairs are the same. The pieces of
    // a body found to be UTF-8 are not checked again one by one (issue 13: that second check was
    // about 1,000 instructions of an introspection).
    let pairs: Vec<(String, String)> = match std::str::from_utf8(raw) {
        Ok(text) => text
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .map(|(k, v)| (text_component(k), text_component(v)))
            .collect(),
        Err(_) => raw
            .split(|b| *b == b'&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.iter().position(|b| *b == b'=') {
                Some(i) => (pair.get(..i).unwrap_or_default(), pair.get(i + 1..).unwrap_or_default()),
                None => (pair, &[][..]),
            })
            .map(|(k, v)| (form_component(k), form_component(v)))
            .collect(),
    };
    let mut out = Params::with_capacity_and_hasher(4, Default::default());
    for (k, v) in pairs {
        if out.contains_key(&k) {
            return Err(OAuthError::invalid_request(format!("parameter '{k}' is repeated")));
        }
        // Kept while parsing, so a repeat of an empty parameter is still refused.
        out.insert(k, v);
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

/// [`form_component`] of a piece of text already known to be UTF-8.
fn text_component(s: &str) -> String {
    if needs_decoding(s.as_bytes()) { form_component(s.as_bytes()) } else { s.to_owned() }
}

/// Whether `b` holds a `%` or a `+`, the bytes form decoding changes. No early exit inside a
/// chunk, and the hits folded as integers, not booleans, so the compiler compares many bytes per
/// instruction: over 600 bytes, 56 ns against 130 ns for two `contains` scans (and 524 ns for the
/// same fold over `bool`, which the compiler does not vectorize), in a release build on this VM.
fn needs_decoding(b: &[u8]) -> bool {
    b.chunks(64).any(|c| c.iter().fold(0u8, |hit, &x| hit | u8::from(x == b'%') | u8::from(x == b'+')) != 0)
}

/// One name or value of `application/x-www-form-urlencoded` text (WHATWG URL s5.1: `+` is a
/// space, `%XX` a byte, anything else itself; a `%` not followed by two hex digits stays; bytes
/// that are not UTF-8 become U+FFFD). What `url::form_urlencoded::parse` yields, without its
/// byte-at-a-time passes over the (usually plain) text.
fn form_component(raw: &[u8]) -> String {
    if !needs_decoding(raw) {
        return match std::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        };
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let escaped = match (b, raw.get(i + 1).and_then(|h| hex(*h)), raw.get(i + 2).and_then(|l| hex(*l))) {
            (b'%', Some(h), Some(l)) => Some((h << 4) | l),
            _ => None,
        };
        match (b, escaped) {
            (_, Some(byte)) => {
                bytes.push(byte);
                i += 3;
            }
            (b'+', None) => {
                bytes.push(b' ');
                i += 1;
            }
            (b, None) => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// A form body parsed by [`parse_params`]; rejections are RFC 6749 s5.2 JSON.
pub struct Form(pub Params);

/// Whether the body is `application/x-www-form-urlencoded` (media type names are
/// case-insensitive, RFC 9110 s8.3.1; parameters such as charset are ignored).
pub fn is_form(headers: &HeaderMap) -> bool {
    const FORM: &str = "application/x-www-form-urlencoded";
    let Some(v) = headers.get(header::CONTENT_TYPE) else { return false };
    // The usual spelling, compared at once (issue 13: the general path cost 500 instructions).
    if v.as_bytes() == FORM.as_bytes() {
        return true;
    }
    v.to_str().ok().and_then(|v| v.split(';').next()).is_some_and(|m| m.trim().eq_ignore_ascii_case(FORM))
}

/// Reads a whole body, mapping "too large" to 413 with an OAuth-shaped error.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, JsonError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            JsonError {
                error: OAuthError::invalid_request("request body too large"),
                status: Some(StatusCode::PAYLOAD_TOO_LARGE),
                retry_after: None,
            }
        } else {
            OAuthError::invalid_request("the request body could not be read").into()
        }
    })
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = JsonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(req.headers()) {
            return Err(OAuthError::invalid_request("Content-Type must be application/x-www-form-urlencoded").into());
        }
        let bytes = body_bytes(req, state).await?;
        Ok(Self(parse_params(&bytes)?))
    }
}

/// Who sent a request, for the audit log: its request id and the client's IP address (the
/// socket peer, or the last `X-Forwarded-For` hop when a trusted TLS proxy is configured).
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The client address.
    pub ip: Option<String>,
    /// The request's record ([`super::context`]): its id, and where the access line learns the
    /// request's client.
    pub ctx: Option<super::context::RequestCtx>,
}

impl Meta {
    /// The task's current request record ([`super::context::current`]) and the address from
    /// request parts.
    pub fn of(parts: &Parts, trust_proxy: bool) -> Self {
        let ctx = super::context::current();
        let forwarded = trust_proxy
            .then(|| parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
        let peer = ctx.as_ref().and_then(super::context::RequestCtx::peer).map(|p| crate::ip::text(p.ip()));
        Self { ip: forwarded.or(peer), ctx }
    }

    /// The request id.
    pub fn request_id(&self) -> Option<&str> {
        self.ctx.as_ref().map(|c| c.id().as_str())
    }
}

impl Meta {
    /// Adds the request id, address and application to an audit event.
    pub fn apply(&self, mut e: crate::audit::Event, app_id: Option<&str>) -> crate::audit::Event {
        if let Some(ip) = &self.ip {
            e = e.ip(ip);
        }
        if let Some(id) = self.request_id() {
            e = e.request_id(id);
        }
        if let Some(app) = app_id {
            e = e.app(app);
        }
        if let (Some(ctx), Some(client)) = (&self.ctx, &e.client_id) {
            ctx.note_client(client);
        }
        e
    }
}

impl FromRequestParts<super::AppState> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &super::AppState) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, state.config.server.behind_tls_proxy))
    }
}

/// Query parameters parsed by [`parse_params`].
pub struct Query(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = JsonError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parse_params(parts.uri.query().unwrap_or_default().as_bytes())?))
    }
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The request's `Authorization` header, alone: what client authentication reads of the
/// headers (issue 13: the `HeaderMap` extractor copied all of them on every token request).
pub struct Authorization(pub Option<HeaderValue>);

impl Authorization {
    /// The header's value, if the request had one.
    pub fn value(&self) -> Option<&HeaderValue> {
        self.0.as_ref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorization {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::AUTHORIZATION).cloned()))
    }
}

/// Picks the client credentials out of the `Authorization` header's value and the form. Using
/// more than one method at once is an error (RFC 6749 s2.3).
pub fn credentials(authorization: Option<&HeaderValue>, form: &mut Params) -> Result<Credentials, JsonError> {
    let basic = match authorization.and_then(|v| v.to_str().ok()) {
        Some(v) if v.len() > 6 && v.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")) => {
            let bad = || JsonError::from(OAuthError::invalid_client("malformed Basic credentials"));
            let decoded = crate::crypto::b64_decode_std(v.get(6..).unwrap_or_default().trim()).ok_or_else(bad)?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = text.split_once(':').ok_or_else(bad)?;
            // RFC 6749 s2.3.1: both parts are form-encoded before they are joined.
            Some((form_component(id.as_bytes()), form_component(secret.as_bytes())))
        }
        _ => None,
    };
    let post_secret = form.remove("client_secret");
    let assertion = form.remove("client_assertion");
    let assertion_type = form.remove("client_assertion_type");
    let form_id = form.get("client_id").cloned();
    let methods = usize::from(basic.is_some()) + usize::from(post_secret.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request("use exactly one client authentication method").into());
    }
    if let Some((client_id, secret)) = basic {
        if form_id.as_ref().is_some_and(|f| *f != client_id) {
            return Err(OAuthError::invalid_request("client_id differs from the authenticated client").into());
        }
        return Ok(Credentials::Basic { client_id, secret: Secret(secret) });
    }
    if let Some(secret) = post_secret {
        let client_id = form_id.ok_or_else(|| JsonError::from(OAuthError::invalid_request("client_id is missing")))?;
        return Ok(Credentials::Post { client_id, secret: Secret(secret) });
    }
    if let Some(assertion) = assertion {
        if assertion_type.as_deref() != Some(ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request("client_assertion_type must be the jwt-bearer type").into());
        }
        return Ok(Credentials::Assertion { client_id: form_id, assertion });
    }
    Ok(form_id.map_or(Credentials::Missing, Credentials::Id))
}

/// The bearer token of a request (RFC 6750 s2.1 header, or s2.2 form body when given).
pub fn bearer(headers: &HeaderMap, form: Option<&Params>) -> Result<String, BearerError> {
    let header_token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
    });
    let body_token = form.and_then(|f| f.get("access_token").cloned());
    match (header_token, body_token) {
        (Some(_), Some(_)) => {
            Err(BearerError::Rejected(OAuthError::invalid_request("send the token once (RFC 6750 s2)")))
        }
        (Some(t), None) | (None, Some(t)) if !t.is_empty() => Ok(t),
        _ => Err(BearerError::Missing),
    }
}

/// A cookie's value from the `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9110 s8.3.1: the media type is case-insensitive; parameters do not change it.
    #[test]
    fn form_bodies_are_known_by_their_media_type() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_form(&h)
        };
        assert!(with("application/x-www-form-urlencoded"));
        assert!(with("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(with(" application/x-www-form-urlencoded ;x=1"));
        assert!(!with("application/json"));
        assert!(!with("application/x-www-form-urlencodedx"));
        assert!(!is_form(&HeaderMap::new()));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        // RFC 6749 s3.1
        assert!(parse_params(b"a=1&a=2").is_err());
        let p = parse_params(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("c").map(String::as_str), Some("x y"));
        assert!(!p.contains_key("b"));
    }

    // The parser decodes as the WHATWG form rules (and the `url` crate) do, byte for byte.
    // Every position of a long component, across the scan's 64-byte chunks.
    #[test]
    fn an_escape_is_found_anywhere() {
        for at in 0..150 {
            for c in [b'%', b'+'] {
                let mut raw = vec![b'a'; 150];
                raw[at] = c;
                assert!(needs_decoding(&raw), "{} at {at}", c as char);
            }
        }
        assert!(!needs_decoding(&[b'a'; 150]));
    }

    #[test]
    fn form_components_decode_like_the_url_crate() {
        let cases: [&[u8]; 14] = [
            b"plain",
            b"a+b",
            b"x%20y%2Bz",
            b"%E4%BD%A0%E5%A5%BD",
            b"%",
            b"%4",
            b"%zz%41",
            b"100%",
            b"%%41",
            b"%ff%fe",
            b"\xe4\xbd",
            b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_",
            b"",
            b"%2b+%2B",
        ];
        for raw in cases {
            let mut joined = b"k=".to_vec();
            joined.extend_from_slice(raw);
            let want = url::form_urlencoded::parse(&joined).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
            assert_eq!(form_component(raw), want, "{:?}", String::from_utf8_lossy(raw));
        }
        let p = parse_params(b"&&grant_type=client_credentials&&scope=a+b&flag&x=%41=").unwrap();
        assert_eq!(p.get("grant_type").map(String::as_str), Some("client_credentials"));
        assert_eq!(p.get("scope").map(String::as_str), Some("a b"));
        assert_eq!(p.get("x").map(String::as_str), Some("A="));
        assert!(!p.contains_key("flag"));
        // RFC 6749 s3.1: a repeat is refused even when one of the two is empty.
        assert!(parse_params(b"a=&a=1").is_err());
        assert!(parse_params(b"a%3D=1&a%3d=2").is_err());
        // A UTF-8 body and one that is not split into the same pairs as the url crate does.
        let bodies: [&[u8]; 4] = [
            b"&&grant_type=x&&scope=a+b&flag&x=%41=&=v&k==",
            b"a=\xff&b\xfe=2&&c",
            b"t=\xe4\xbd&u=%E4",
            "k1=%E4%BD%A0%E5%A5%BD&k2=%ff%fe&k3=%2b+%2B&k4=100%&k5=%%41&k6=你好&k%2B7=%zz".as_bytes(),
        ];
        for body in bodies {
            let mut want: Params =
                url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            want.retain(|_, v| !v.is_empty());
            assert_eq!(parse_params(body).unwrap(), want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // RFC 6749 s2.3.1: "client%3Aid" : "p%40ss"
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", base64_std("client%3Aid:p%40ss"));
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        match credentials(h.get(header::AUTHORIZATION), &mut Params::default()).unwrap() {
            Credentials::Basic { client_id, secret } => {
                assert_eq!(client_id, "client:id");
                assert_eq!(secret.expose(), "p@ss");
            }
            other => panic!("{other:?}"),
        }
    }

    fn base64_std(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }
}
