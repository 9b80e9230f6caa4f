//! The real-name verification page (`/verify`, GB-6.4a, HL-6.1): name, document type and
//! number, posted to `/verify`; zh-CN and en strings of its own. Works without JavaScript.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, esc, page};

/// Why the form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// First showing.
    None,
    /// The input is malformed (400).
    Malformed,
    /// The service is unavailable (503).
    Unavailable,
    /// Too many attempts today (429).
    TooMany,
    /// The service said no (403).
    Refused,
}

/// What the verification form needs.
pub struct VerifyForm<'a> {
    /// The hidden field that says where to go afterwards: `("req", id)` or `("next", path)`.
    pub target: (&'static str, &'a str),
    /// Anti-CSRF token.
    pub csrf: &'a str,
    /// The application asking for the verified level, if any.
    pub client_name: Option<&'a str>,
    /// Name to prefill.
    pub name: &'a str,
    /// Document type to preselect.
    pub id_type: &'a str,
    /// Why the form is shown again.
    pub notice: Notice,
}

use super::catalogue::VerifyTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &super::catalogue::of(l).verify
}

const TYPES: [&str; 4] = ["resident_id_card", "passport", "hk_macao_permit", "taiwan_permit"];

/// The verification form.
pub fn verify(locale: Locale, f: &VerifyForm<'_>) -> Response {
    let t = texts(locale);
    let (message, status) = match f.notice {
        Notice::None => ("", StatusCode::OK),
        Notice::Malformed => (t.malformed, StatusCode::BAD_REQUEST),
        Notice::Unavailable => (t.unavailable, StatusCode::SERVICE_UNAVAILABLE),
        Notice::TooMany => (t.too_many, StatusCode::TOO_MANY_REQUESTS),
        Notice::Refused => (t.refused, StatusCode::FORBIDDEN),
    };
    let error =
        if message.is_empty() { String::new() } else { format!("<p class=\"error\" role=\"alert\">{message}</p>") };
    let client = f
        .client_name
        .map(|c| format!("<p class=\"client\">{} <strong>{}</strong></p>", t.for_client, esc(c)))
        .unwrap_or_default();
    let options: String = TYPES
        .iter()
        .zip(t.types)
        .map(|(v, label)| {
            let sel = if *v == f.id_type { " selected" } else { "" };
            format!("<option value=\"{v}\"{sel}>{label}</option>")
        })
        .collect();
    let body = format!(
        "<h1>{title}</h1>{client}<p>{intro}</p>{error}\
         <form method=\"post\" action=\"/verify\">\
         <input type=\"hidden\" name=\"{tf}\" value=\"{tv}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"name\">{n}</label><input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"name\" maxlength=\"64\" required value=\"{name}\">\
         <label for=\"id_type\">{it}</label><select id=\"id_type\" name=\"id_type\" style=\"width:100%;box-sizing:border-box;padding:.7rem;font-size:1rem;border:1px solid #cbd5e1;border-radius:4px;background:#fff\">{options}</select>\
         <label for=\"id_number\">{inum}</label><input type=\"text\" id=\"id_number\" name=\"id_number\" autocomplete=\"off\" autocapitalize=\"characters\" maxlength=\"32\" required>\
         <button type=\"submit\" name=\"decision\" value=\"verify\">{submit}</button>\
         <button type=\"submit\" name=\"decision\" value=\"cancel\" class=\"secondary\" formnovalidate>{cancel}</button></form>",
        title = t.title,
        intro = t.intro,
        tf = f.target.0,
        tv = esc(f.target.1),
        csrf = esc(f.csrf),
        n = t.name,
        name = esc(f.name),
        it = t.id_type,
        inum = t.id_number,
        submit = t.submit,
        cancel = t.cancel,
    );
    page(locale, t.title, &body, status, false)
}
