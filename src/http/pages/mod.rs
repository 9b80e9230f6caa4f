//! Server-rendered pages: login, consent, error and the form_post auto-submit page. Plain HTML
//! forms that work without JavaScript and on phones; zh-CN by default, English on request
//! (`ui_locales`, then `Accept-Language`). Every value is HTML-escaped. Each family of pages
//! (sign-up, account, ...) lives in a submodule with its own strings and renders through
//! [`page`] / [`page_with`].

pub mod account;
pub mod signup;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::crypto::{b64, sha256};

/// Page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// Simplified Chinese.
    ZhCn,
    /// English.
    En,
}

impl Locale {
    /// Picks the locale: first match in `ui_locales` (OIDC Core s3.1.2.1), then the
    /// Accept-Language header, then the configured default.
    pub fn choose(ui_locales: Option<&str>, headers: &HeaderMap, default: &str) -> Self {
        let pick = |tag: &str| {
            let tag = tag.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            if tag.starts_with("zh") {
                Some(Self::ZhCn)
            } else if tag.starts_with("en") {
                Some(Self::En)
            } else {
                None
            }
        };
        if let Some(l) = ui_locales.and_then(|u| u.split(' ').find_map(pick)) {
            return l;
        }
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        if let Some(l) = accept.and_then(|a| a.split(',').find_map(pick)) {
            return l;
        }
        if default == "en" { Self::En } else { Self::ZhCn }
    }

    /// The HTML `lang` value.
    pub fn lang(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }
}

/// The strings of the pages.
struct Texts {
    login_title: &'static str,
    username: &'static str,
    password: &'static str,
    submit: &'static str,
    signing_in_to: &'static str,
    bad_credentials: &'static str,
    consent_title: &'static str,
    consent_intro: &'static str,
    allow: &'static str,
    deny: &'static str,
    error_title: &'static str,
    error_hint: &'static str,
    continue_: &'static str,
    busy: &'static str,
    logout_title: &'static str,
    logout_question: &'static str,
    logout_yes: &'static str,
    logout_no: &'static str,
    logged_out: &'static str,
    or_with: &'static str,
    upstream_failed: &'static str,
    request_id: &'static str,
}

const ZH: Texts = Texts {
    login_title: "统一身份认证登录",
    username: "用户名",
    password: "密码",
    submit: "登录",
    signing_in_to: "登录到",
    bad_credentials: "用户名或密码错误。",
    consent_title: "授权确认",
    consent_intro: "以下应用请求访问您的信息：",
    allow: "同意",
    deny: "拒绝",
    error_title: "请求无法处理",
    error_hint: "请返回原应用重新发起登录。如问题持续，请联系系统管理员。",
    continue_: "继续",
    busy: "系统繁忙，请稍后再试。",
    logout_title: "退出登录",
    logout_question: "是否退出统一身份认证登录？退出后，您在所有已登录应用中的登录状态都将结束。",
    logout_yes: "退出",
    logout_no: "取消",
    logged_out: "您已安全退出。",
    or_with: "或使用以下平台账号登录：",
    upstream_failed: "通过上级平台登录未成功，请使用本平台账号登录或稍后重试。",
    request_id: "请求编号",
};

const EN: Texts = Texts {
    login_title: "Sign in",
    username: "Username",
    password: "Password",
    submit: "Sign in",
    signing_in_to: "Signing in to",
    bad_credentials: "Wrong username or password.",
    consent_title: "Allow access",
    consent_intro: "This application asks to access your information:",
    allow: "Allow",
    deny: "Deny",
    error_title: "The request cannot be processed",
    error_hint: "Go back to the application and sign in again. If this keeps happening, contact the administrator.",
    continue_: "Continue",
    busy: "The service is busy. Please try again shortly.",
    logout_title: "Sign out",
    logout_question: "Sign out? This ends your sign-in at every application you are signed in to.",
    logout_yes: "Sign out",
    logout_no: "Cancel",
    logged_out: "You have signed out.",
    or_with: "Or sign in with a trusted platform:",
    upstream_failed: "Signing in through the other platform did not succeed. Sign in here, or try again later.",
    request_id: "Request id",
};

fn texts(l: Locale) -> &'static Texts {
    match l {
        Locale::ZhCn => &ZH,
        Locale::En => &EN,
    }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages' one style sheet (inline: the CSP allows no other source).
pub(crate) const STYLE: &str = "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;background:#f3f5f8;margin:0;color:#1f2937}\
main{max-width:24rem;margin:8vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.1)}\
h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .3rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.7rem;font-size:1rem;border:1px solid #cbd5e1;border-radius:4px}\
button{width:100%;margin-top:1.2rem;padding:.8rem;font-size:1rem;border:0;border-radius:4px;background:#b91c1c;color:#fff;cursor:pointer}\
button.secondary{background:#e5e7eb;color:#111}a.upstream{display:block;margin-top:.6rem;padding:.7rem;text-align:center;border:1px solid #b91c1c;border-radius:4px;color:#b91c1c;text-decoration:none}p.or{margin-top:1.4rem;color:#555}.error{color:#b91c1c;background:#fef2f2;padding:.6rem;border-radius:4px}\
.client{color:#475569;margin-bottom:1rem}ul{padding-left:1.2rem}p.rid{font-size:.75rem;color:#6b7280;word-break:break-all}";

const AUTOSUBMIT: &str = "document.forms[0].submit();";
/// After every front-channel iframe has loaded (the window's load event waits for them),
/// continue to the post-logout redirect, if there is one.
const CONTINUE_AFTER_LOAD: &str = "window.addEventListener('load',function(){var a=document.getElementById('next');if(a){location.replace(a.href);}});";

pub(crate) fn page(locale: Locale, title: &str, body: &str, status: StatusCode, script: bool) -> Response {
    page_with(locale, title, body, status, if script { Some(AUTOSUBMIT) } else { None }, "")
}

pub(crate) fn page_with(
    locale: Locale,
    title: &str,
    body: &str,
    status: StatusCode,
    script: Option<&str>,
    frame_src: &str,
) -> Response {
    let script_tag = script.map(|s| format!("<script>{s}</script>")).unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main>{script_tag}</body></html>",
        locale.lang(),
        esc(title)
    );
    let mut resp = (status, Html(html)).into_response();
    let script_hash = b64(&sha256(script.unwrap_or(AUTOSUBMIT).as_bytes()));
    let frames = if frame_src.is_empty() { String::new() } else { format!("; frame-src {frame_src}") };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{}'; frame-ancestors 'none'; base-uri 'none'{frames}",
        base64_std_of_b64url(&script_hash)
    );
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// CSP hashes are standard base64 with padding.
fn base64_std_of_b64url(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

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
}

/// A wait in words: seconds below two minutes, else whole minutes (rounded up).
fn wait_text(locale: Locale, secs: u64) -> String {
    let mins = secs.div_ceil(60);
    match (locale, secs < 120) {
        (Locale::ZhCn, true) => format!("{secs} 秒"),
        (Locale::ZhCn, false) => format!("{mins} 分钟"),
        (Locale::En, true) => format!("{secs} seconds"),
        (Locale::En, false) => format!("{mins} minutes"),
    }
}

/// The lines after a failed or refused attempt: attempts left, and when to come back.
fn guard_text(locale: Locale, f: &LoginForm<'_>) -> String {
    let mut out = String::new();
    if let Some(n) = f.remaining.filter(|n| *n > 0) {
        out.push_str(&match (locale, n) {
            (Locale::ZhCn, n) => format!("还可尝试 {n} 次。"),
            (Locale::En, 1) => " 1 attempt left.".to_owned(),
            (Locale::En, n) => format!(" {n} attempts left."),
        });
    }
    if let Some(secs) = f.retry_after {
        let wait = wait_text(locale, secs);
        out.push_str(&match (locale, f.throttled || f.remaining == Some(0)) {
            (Locale::ZhCn, true) => format!("尝试次数过多，请于 {wait}后再试。"),
            (Locale::ZhCn, false) => format!("请于 {wait}后再试。"),
            (Locale::En, true) => format!(" Too many attempts. Try again in {wait}."),
            (Locale::En, false) => format!(" Try again in {wait}."),
        });
    }
    out
}

/// The login page (HL-5.3): a plain form posting `username` and `password`.
pub fn login(locale: Locale, f: &LoginForm<'_>) -> Response {
    let t = texts(locale);
    let error = if f.throttled {
        format!("<p class=\"error\" role=\"alert\">{}</p>", guard_text(locale, f).trim_start())
    } else if f.failed {
        format!("<p class=\"error\" role=\"alert\">{}{}</p>", t.bad_credentials, guard_text(locale, f))
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
    let body = format!(
        "<h1>{title}</h1><p class=\"client\">{to} {client}</p>{error}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"req\" value=\"{req}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"username\">{u}</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" required value=\"{user}\">\
         <label for=\"password\">{p}</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">{submit}</button></form>{upstreams}",
        title = t.login_title,
        to = t.signing_in_to,
        client = esc(f.client_name),
        req = esc(f.req),
        csrf = esc(f.csrf),
        u = t.username,
        p = t.password,
        user = esc(f.username.unwrap_or_default()),
        submit = t.submit,
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
    let mut resp = page(locale, t.login_title, &body, status, false);
    if let Some(secs) = f.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The consent page.
pub fn consent(locale: Locale, req: &str, csrf: &str, client_name: &str, scopes: &[String]) -> Response {
    let t = texts(locale);
    let items: String = scopes.iter().map(|s| format!("<li>{}</li>", esc(s))).collect();
    let body = format!(
        "<h1>{title}</h1><p>{intro}</p><p class=\"client\"><strong>{client}</strong></p><ul>{items}</ul>\
         <form method=\"post\" action=\"/consent\"><input type=\"hidden\" name=\"req\" value=\"{req}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">{allow}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">{deny}</button></form>",
        title = t.consent_title,
        intro = t.consent_intro,
        client = esc(client_name),
        req = esc(req),
        csrf = esc(csrf),
        allow = t.allow,
        deny = t.deny,
    );
    page(locale, t.consent_title, &body, StatusCode::OK, false)
}

/// An error page for requests that must not redirect (RFC 6749 s4.1.2.1).
pub fn error(locale: Locale, status: StatusCode, code: &str, description: &str) -> Response {
    let t = texts(locale);
    // The request id, small, for a support call (the request-id layer set it for this task).
    let id = super::request_id::current()
        .map(|id| format!("<p class=\"rid\">{}: <span>{}</span></p>", t.request_id, esc(&id)))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p class=\"error\" role=\"alert\">{code}: {desc}</p><p>{hint}</p>{id}",
        title = t.error_title,
        code = esc(code),
        desc = esc(description),
        hint = t.error_hint,
    );
    page(locale, t.error_title, &body, status, false)
}

/// The form_post response (OAuth 2.0 Form Post Response Mode s2): an auto-submitting form,
/// with a visible button for browsers without JavaScript.
pub fn form_post(locale: Locale, action: &str, params: &[(&str, String)]) -> Response {
    let t = texts(locale);
    let inputs: String = params
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v)))
        .collect();
    let body = format!(
        "<form method=\"post\" action=\"{}\">{inputs}<noscript><button type=\"submit\">{}</button></noscript></form>",
        esc(action),
        t.continue_
    );
    page(locale, t.continue_, &body, StatusCode::OK, true)
}

/// RP-Initiated Logout s2: asks the user to confirm (when no valid id_token_hint came).
pub fn logout_confirm(locale: Locale, req: &str, csrf: &str) -> Response {
    let t = texts(locale);
    let body = format!(
        "<h1>{title}</h1><p>{q}</p><form method=\"post\" action=\"/end_session/confirm\">\
         <input type=\"hidden\" name=\"req\" value=\"{req}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"logout\">{yes}</button>\
         <button type=\"submit\" name=\"decision\" value=\"stay\" class=\"secondary\">{no}</button></form>",
        title = t.logout_title,
        q = t.logout_question,
        req = esc(req),
        csrf = esc(csrf),
        yes = t.logout_yes,
        no = t.logout_no,
    );
    page(locale, t.logout_title, &body, StatusCode::OK, false)
}

/// The end of a logout: front-channel iframes (Front-Channel Logout s3), then on to the
/// post-logout redirect URI when there is one (a link without JavaScript).
pub fn logged_out(locale: Locale, frontchannel: &[String], next: Option<&str>) -> Response {
    let t = texts(locale);
    let frames: String = frontchannel
        .iter()
        .map(|u| format!("<iframe src=\"{}\" style=\"display:none\" width=\"0\" height=\"0\"></iframe>", esc(u)))
        .collect();
    let link =
        next.map(|n| format!("<p><a id=\"next\" href=\"{}\">{}</a></p>", esc(n), t.continue_)).unwrap_or_default();
    let body = format!("<h1>{}</h1><p>{}</p>{link}{frames}", t.logout_title, t.logged_out);
    let origins: Vec<String> =
        frontchannel.iter().filter_map(|u| url::Url::parse(u).ok()).map(|u| u.origin().ascii_serialization()).collect();
    page_with(locale, t.logout_title, &body, StatusCode::OK, Some(CONTINUE_AFTER_LOAD), &origins.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_selection_order() {
        let mut h = HeaderMap::new();
        assert_eq!(Locale::choose(None, &h, "zh-CN"), Locale::ZhCn);
        h.insert(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9".parse().unwrap());
        assert_eq!(Locale::choose(None, &h, "zh-CN"), Locale::En);
        assert_eq!(Locale::choose(Some("fr zh-CN"), &h, "en"), Locale::ZhCn);
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("<a href=\"x\">'&"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
