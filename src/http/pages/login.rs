//! The login page (HL-5.3, JM-5.6, SH-D), laid out like a provincial government's unified login:
//! tabs for 个人 (natural person) and 法人 (legal person, whose agent signs in as themselves and
//! posts `account_kind=legal_person`), links to sign-up, password reset, agreement and privacy,
//! and a language switch. Tabs and switch are plain links: no JavaScript needed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{Locale, brand, esc, page};
use crate::identity::PrincipalKind;

/// What the login form needs.
pub struct LoginForm<'a> {
    /// Pending request id.
    pub req: &'a str,
    /// CSRF token.
    pub csrf: &'a str,
    /// Client display name.
    pub client_name: &'a str,
    /// Username to prefill.
    pub username: Option<&'a str>,
    /// Show the generic failure message.
    pub failed: bool,
    /// Show the "busy" message.
    pub busy: bool,
    /// Trusted upstream platforms to offer (GB-6.4c): `(link, zh-CN name, en name)`.
    pub upstreams: &'a [(String, String, String)],
    /// A login through an upstream did not succeed.
    pub upstream_failed: bool,
    /// After a failure: attempts left before a lockout (NIST SP 800-63B s5.2.2).
    pub remaining: Option<u32>,
    /// Seconds before the next attempt may be made (a delay or lockout is in force).
    pub retry_after: Option<u64>,
    /// The attempt was refused unchecked after too many failures (429).
    pub throttled: bool,
    /// The tab shown: 个人 (natural person) or 法人 (legal person, through an agent).
    pub kind: PrincipalKind,
}

use super::catalogue::LoginTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &super::catalogue::of(l).login
}

/// A wait in words: seconds below two minutes, else whole minutes (rounded up).
fn wait_text(locale: Locale, secs: u64) -> String {
    let m = &super::catalogue::of(locale).messages;
    if secs < 120 {
        super::catalogue::fill(m.wait_seconds, &[&secs.to_string()])
    } else {
        super::catalogue::fill(m.wait_minutes, &[&secs.div_ceil(60).to_string()])
    }
}

/// The lines after a failed or refused attempt: attempts left, and when to come back.
fn guard_text(locale: Locale, f: &LoginForm<'_>) -> String {
    use super::catalogue::fill;
    let m = &super::catalogue::of(locale).messages;
    let mut out = String::new();
    if let Some(n) = f.remaining.filter(|n| *n > 0) {
        out.push_str(&if n == 1 { m.attempt_left_one.to_owned() } else { fill(m.attempts_left, &[&n.to_string()]) });
    }
    if let Some(secs) = f.retry_after {
        let wait = wait_text(locale, secs);
        let template = if f.throttled || f.remaining == Some(0) { m.too_many_wait } else { m.wait };
        out.push_str(&fill(template, &[&wait]));
    }
    out
}

/// The link to this login page for request `req` on tab `kind`, in `lang` when given.
fn self_link(req: &str, kind: PrincipalKind, lang: Option<&str>) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    ser.append_pair("req", req);
    if kind == PrincipalKind::LegalPerson {
        ser.append_pair("kind", kind.as_str());
    }
    if let Some(l) = lang {
        ser.append_pair("lang", l);
    }
    format!("/login?{}", ser.finish())
}

/// The 个人 / 法人 tabs: links to this page with the other tab shown (no JavaScript).
fn tabs(t: &Texts, f: &LoginForm<'_>) -> String {
    let tab = |kind: PrincipalKind, id: &str, text: &str| {
        let current = if f.kind == kind { " aria-current=\"page\"" } else { "" };
        format!("<a id=\"{id}\" href=\"{}\"{current}>{text}</a>", esc(&self_link(f.req, kind, None)))
    };
    format!(
        "<nav class=\"tabs\" aria-label=\"{}\">{}{}</nav>",
        t.tabs_label,
        tab(PrincipalKind::NaturalPerson, "tab-person", t.tab_person),
        tab(PrincipalKind::LegalPerson, "tab-legal", t.tab_legal)
    )
}

/// "By signing in you agree to the User Agreement and the Privacy Policy", with the links that
/// are configured.
fn terms(t: &Texts) -> String {
    let b = brand::current();
    let link = |href: Option<&str>, class: &str, text: &str| {
        href.map(|h| format!("<a class=\"{class}\" href=\"{}\">{text}</a>", esc(h)))
    };
    let (before, between, after) = t.terms;
    match (link(b.agreement(), "agreement", t.agreement), link(b.privacy(), "privacy", t.privacy)) {
        (Some(a), Some(p)) => format!("<p class=\"terms\">{before}{a}{between}{p}{after}</p>"),
        (Some(one), None) | (None, Some(one)) => format!("<p class=\"terms\">{before}{one}{after}</p>"),
        (None, None) => String::new(),
    }
}

/// The login page (HL-5.3): the tab's form posting `username`, `password` and `account_kind`.
/// Every wrong-credential answer carries the same generic message, whichever tab.
pub fn login(locale: Locale, f: &LoginForm<'_>) -> Response {
    let t = texts(locale);
    let failed_here = f.failed && !f.throttled;
    let error = if f.throttled {
        format!("<p class=\"error\" role=\"alert\">{}</p>", guard_text(locale, f).trim_start())
    } else if f.failed {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}{}</p>",
            t.bad_credentials,
            guard_text(locale, f)
        )
    } else if f.busy {
        format!("<p class=\"error\" role=\"alert\">{}</p>", t.busy)
    } else if f.upstream_failed {
        format!("<p class=\"error\" role=\"alert\">{}</p>", t.upstream_failed)
    } else {
        String::new()
    };
    let upstreams = if f.upstreams.is_empty() {
        String::new()
    } else {
        let links: String = f
            .upstreams
            .iter()
            .map(|(href, zh, en)| {
                let name = if locale == Locale::En && !en.is_empty() { en } else { zh };
                format!("<a class=\"upstream\" href=\"{}\">{}</a>", esc(href), esc(name))
            })
            .collect();
        format!("<p class=\"or\">{}</p>{links}", t.or_with)
    };
    let legal = f.kind == PrincipalKind::LegalPerson;
    let (form_id, user_label, hint) = if legal {
        ("legal-form", t.agent_username, format!("<p class=\"hint\">{}</p>", t.legal_hint))
    } else {
        ("person-form", t.username, String::new())
    };
    let (lang_code, lang_name) = t.other_language;
    let req_q = url::form_urlencoded::byte_serialize(f.req.as_bytes()).collect::<String>();
    let body = format!(
        "<p class=\"lang\"><a id=\"lang\" lang=\"{lang_code}\" href=\"{lang_href}\">{lang_name}</a></p>\
         <h1>{title}</h1><p class=\"client\">{to} {client}</p>{tabs}{error}{hint}\
         <form id=\"{form_id}\" method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"req\" value=\"{req}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"account_kind\" value=\"{kind}\">\
         <label for=\"username\">{u}</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" required value=\"{user}\"{invalid}{focus}>\
         <label for=\"password\">{p}</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{invalid}>\
         <button type=\"submit\">{submit}</button></form>\
         <p class=\"links\"><a id=\"signup\" href=\"/signup?req={req_q}\">{signup}</a><a id=\"forgot\" href=\"/password/reset\">{forgot}</a></p>\
         {upstreams}{terms}",
        lang_href = esc(&self_link(f.req, f.kind, Some(lang_code))),
        // Wrong credentials: both fields are in error, tied to the message; the focus goes to
        // the first (issue 14, WCAG 3.3.1).
        invalid = if failed_here { " aria-invalid=\"true\" aria-describedby=\"login-error\"" } else { "" },
        focus = if failed_here { " autofocus" } else { "" },
        title = t.title,
        to = t.signing_in_to,
        client = esc(f.client_name),
        tabs = tabs(t, f),
        req = esc(f.req),
        csrf = esc(f.csrf),
        kind = f.kind.as_str(),
        u = user_label,
        p = t.password,
        user = esc(f.username.unwrap_or_default()),
        submit = t.submit,
        signup = t.signup,
        forgot = t.forgot,
        terms = terms(t),
    );
    let status = if f.throttled {
        // RFC 6585 s4: too many requests, with when to come back.
        StatusCode::TOO_MANY_REQUESTS
    } else if f.busy {
        StatusCode::SERVICE_UNAVAILABLE
    } else if f.failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut resp = page(locale, t.title, &body, status, false);
    if let Some(secs) = f.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: PrincipalKind) -> LoginForm<'static> {
        LoginForm {
            req: "r1",
            csrf: "c",
            client_name: "<App>",
            username: None,
            failed: false,
            busy: false,
            upstreams: &[],
            upstream_failed: false,
            remaining: None,
            retry_after: None,
            throttled: false,
            kind,
        }
    }

    async fn html(r: Response) -> String {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn tabs_are_links_and_the_legal_form_says_so() {
        // JM-5.6, SH-D: both tabs without JavaScript; the 法人 form posts account_kind=legal_person.
        let person = html(login(Locale::ZhCn, &form(PrincipalKind::NaturalPerson))).await;
        assert!(person.contains("id=\"tab-person\" href=\"/login?req=r1\" aria-current=\"page\""), "{person}");
        assert!(person.contains("id=\"tab-legal\" href=\"/login?req=r1&amp;kind=legal_person\">"), "{person}");
        assert!(person.contains("name=\"account_kind\" value=\"natural_person\""));
        assert!(person.contains("&lt;App&gt;") && person.contains("href=\"/signup?req=r1\""));
        let legal = html(login(Locale::En, &form(PrincipalKind::LegalPerson))).await;
        assert!(legal.contains("name=\"account_kind\" value=\"legal_person\""), "{legal}");
        assert!(legal.contains("id=\"tab-legal\" href=\"/login?req=r1&amp;kind=legal_person\" aria-current=\"page\""));
        assert!(legal.contains("href=\"/login?req=r1&amp;kind=legal_person&amp;lang=zh-CN\">中文<"), "{legal}");
    }
}
