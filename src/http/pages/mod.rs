//! Server-rendered pages: login, consent, error and the form_post auto-submit page. Plain HTML
//! forms that work without JavaScript and on phones; zh-CN by default, English on request
//! (`ui_locales`, then `Accept-Language`). Every value is HTML-escaped. Each family of pages
//! (sign-up, account, ...) lives in a submodule with its own strings and renders through
//! [`page`] / [`page_with`], which put the platform's branding ([`brand`]) on every page.

pub mod act;
pub mod verify;

pub mod account;
pub mod signup;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::crypto::{b64, sha256};

pub mod app_state;
pub mod brand;
pub mod catalogue;
mod consent;
pub mod landing;
mod login;
pub mod notices;
pub mod trouble;

pub use consent::consent;
pub use login::{LoginForm, login};

/// Cookie holding the language a person chose with the pages' language switch.
pub const LANG_COOKIE: &str = "tz_lang";

/// Page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// Simplified Chinese.
    ZhCn,
    /// English.
    En,
}

impl Locale {
    /// Picks the locale: the language the person chose on our pages (the [`LANG_COOKIE`]),
    /// then the first match in `ui_locales` (OIDC Core s3.1.2.1), then the Accept-Language
    /// header, then the configured default.
    pub fn choose(ui_locales: Option<&str>, headers: &HeaderMap, default: &str) -> Self {
        if let Some(l) = super::extract::cookie(headers, LANG_COOKIE).and_then(Self::parse) {
            return l;
        }
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

    /// `zh-CN` or `en` (the values of the [`LANG_COOKIE`] and of the pages' `lang` switch).
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "zh-CN" => Some(Self::ZhCn),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The HTML `lang` value.
    pub fn lang(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }
}

use catalogue::CommonTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &catalogue::of(l).common
}

/// What a person is told of scope `s` in `l` (SH-8.2: the catalogue's description, never the
/// scope token): the consent page and the account page's consent list.
pub(crate) fn scope_text(l: Locale, s: &crate::scopes::ScopeDef) -> &str {
    if l == Locale::En { s.text_en() } else { s.text_zh() }
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

/// The pages' one style sheet (inline: the CSP allows no other source). `--p` is the branding's
/// primary colour, set before it. Narrow screens (320 px phones) get the card edge to edge.
pub(crate) const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif;background:#f3f5f8;margin:0;color:#1f2937;min-height:100vh;display:flex;flex-direction:column;overflow-wrap:anywhere}\
header.brand{display:flex;align-items:center;gap:.6rem;padding:.7rem 1rem;background:#fff;border-top:4px solid var(--p);box-shadow:0 1px 2px rgba(0,0,0,.06)}\
header.brand img{height:2rem;width:auto;max-width:40vw}header.brand .platform{font-size:1.1rem;font-weight:600;color:#111827}\
main{width:100%;max-width:24rem;margin:6vh auto 2rem;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.1)}\
footer{margin-top:auto;padding:1rem;text-align:center;font-size:.8rem;color:#6b7280}footer p{margin:.3rem 0}footer a{color:#4b5563}\
a{color:var(--p)}h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .3rem}\
input[type=text],input[type=password]{width:100%;padding:.7rem;font-size:1rem;border:1px solid #767676;border-radius:4px}\
input[aria-invalid=true]{border:2px solid #b91c1c}:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}input:focus{outline:3px solid #1d4ed8;outline-offset:1px}\
button{width:100%;margin-top:1.2rem;padding:.8rem;font-size:1rem;border:0;border-radius:4px;background:var(--p);color:#fff;cursor:pointer}\
button.secondary{background:#e5e7eb;color:#111}button.link{width:auto;margin:.4rem 0 0;padding:.2rem 0;background:none;color:var(--p);text-decoration:underline;font-size:.9rem}a.upstream{display:block;margin-top:.6rem;padding:.7rem;text-align:center;border:1px solid var(--p);border-radius:4px;color:var(--p);text-decoration:none}p.or{margin-top:1.4rem;color:#555}.error{color:#b91c1c;background:#fef2f2;padding:.6rem;border-radius:4px}\
.client{color:#475569;margin-bottom:1rem}ul{padding-left:1.2rem}p.rid{font-size:.75rem;color:#6b7280;word-break:break-all}\
nav.tabs{display:flex;border-bottom:1px solid #e5e7eb;margin:0 0 1rem}nav.tabs a{flex:1;text-align:center;padding:.7rem .2rem;color:#4b5563;text-decoration:none;border-bottom:3px solid transparent;margin-bottom:-1px}\
nav.tabs a[aria-current=page]{color:var(--p);border-bottom-color:var(--p);font-weight:600}\
p.lang{text-align:right;font-size:.85rem;margin:0 0 .4rem}p.hint{font-size:.85rem;color:#6b7280;margin:.2rem 0 .6rem}\
p.links{display:flex;justify-content:space-between;flex-wrap:wrap;gap:.5rem;margin:1rem 0 0;font-size:.9rem}p.terms{font-size:.8rem;color:#6b7280;margin:1rem 0 0}\
ul.scopes{list-style:none;padding:0;margin:0 0 1rem}ul.scopes li{padding:.6rem 0;border-bottom:1px solid #f1f5f9}\
ul.scopes li.sensitive{background:#fffbeb;padding:.6rem;border-radius:4px;border-bottom:0;margin:.3rem 0}\
.badge{display:inline-block;margin-right:.4rem;padding:0 .4rem;font-size:.75rem;line-height:1.5;border-radius:3px;background:#fef3c7;color:#92400e;border:1px solid #f59e0b;vertical-align:middle}\
p.warn{font-size:.85rem;color:#92400e}dl.app{margin:0 0 1rem;color:#475569}dl.app dt{font-size:.8rem;color:#6b7280}dl.app dd{margin:0 0 .4rem;color:#111827;font-weight:600}\
a.button{display:block;margin-top:1.2rem;padding:.8rem;text-align:center;border-radius:4px;background:var(--p);color:#fff;text-decoration:none}\
a.button.secondary{background:#e5e7eb;color:#111}p.lead{font-size:1.05rem}details.tech{margin-top:1.5rem;font-size:.8rem;color:#4b5563}details.tech summary{cursor:pointer}\
details.tech dl{margin:.4rem 0 0}details.tech dt{font-weight:600}details.tech dd{margin:0 0 .3rem;word-break:break-all}\
@media (max-width:480px){main{margin:0 0 1rem;max-width:none;border-radius:0;box-shadow:none;padding:1.25rem 1rem}}";

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
    let b = brand::current();
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>:root{{--p:{}}}{STYLE}</style></head><body>{}<main>{body}</main>{}{script_tag}</body></html>",
        locale.lang(),
        esc(title),
        b.colour(),
        b.header_html(locale),
        b.footer_html(locale),
    );
    let mut resp = (status, Html(html)).into_response();
    let script_hash = b64(&sha256(script.unwrap_or(AUTOSUBMIT).as_bytes()));
    let frames = if frame_src.is_empty() { String::new() } else { format!("; frame-src {frame_src}") };
    let images = b.img_src().map(|src| format!("; img-src {src}")).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{}'; frame-ancestors 'none'; base-uri 'none'{frames}{images}",
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

/// An error page for requests that must not redirect (RFC 6749 s4.1.2.1): a plain
/// explanation in the person's language ([`trouble`]); the code and description folded away.
pub fn error(locale: Locale, status: StatusCode, code: &str, description: &str) -> Response {
    trouble::trouble(locale, status, trouble::Trouble::of(status, code, description), code, description, None)
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
    let on = &catalogue::of(locale).landing;
    // A way on (issue 14): back to the application when known, else sign in again or home.
    let link = match next {
        Some(n) => format!("<p><a id=\"next\" class=\"button\" href=\"{}\">{}</a></p>", esc(n), on.back_to_app),
        None => format!(
            "<p><a class=\"button\" href=\"/account\">{}</a></p><p><a class=\"button secondary\" href=\"/\">{}</a></p>",
            on.sign_in_again, on.home
        ),
    };
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
        // The language the person chose on our pages wins over the client's hint (JM-5.6).
        h.insert(header::COOKIE, "a=b; tz_lang=en".parse().unwrap());
        assert_eq!(Locale::choose(Some("zh-CN"), &h, "zh-CN"), Locale::En);
        h.insert(header::COOKIE, "tz_lang=klingon".parse().unwrap());
        assert_eq!(Locale::choose(Some("zh-CN"), &h, "en"), Locale::ZhCn, "an unknown value is ignored");
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("<a href=\"x\">'&"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
    }
}
