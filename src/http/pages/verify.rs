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

struct Texts {
    title: &'static str,
    intro: &'static str,
    for_client: &'static str,
    name: &'static str,
    id_type: &'static str,
    id_number: &'static str,
    submit: &'static str,
    cancel: &'static str,
    types: [&'static str; 4],
    malformed: &'static str,
    unavailable: &'static str,
    too_many: &'static str,
    refused: &'static str,
}

const ZH: Texts = Texts {
    title: "实名认证",
    intro: "请填写与证件一致的姓名和证件号码，完成实名认证后继续。",
    for_client: "以下应用要求实名认证：",
    name: "姓名",
    id_type: "证件类型",
    id_number: "证件号码",
    submit: "提交认证",
    cancel: "取消",
    types: ["居民身份证", "护照", "港澳居民来往内地通行证", "台湾居民来往大陆通行证"],
    malformed: "姓名或证件号码格式不正确，请核对后重新填写。",
    unavailable: "实名认证服务暂时不可用，请稍后再试。",
    too_many: "今日实名认证次数已达上限，请明天再试。",
    refused: "实名认证未通过：姓名与证件号码不一致或无此记录。",
};

const EN: Texts = Texts {
    title: "Real-name verification",
    intro: "Enter your name and document number exactly as on the document to continue.",
    for_client: "This application requires a verified real name:",
    name: "Name",
    id_type: "Document type",
    id_number: "Document number",
    submit: "Verify",
    cancel: "Cancel",
    types: [
        "Resident identity card",
        "Passport",
        "Mainland travel permit for Hong Kong and Macao residents",
        "Mainland travel permit for Taiwan residents",
    ],
    malformed: "The name or the document number is not valid. Check them and try again.",
    unavailable: "The verification service is unavailable. Please try again later.",
    too_many: "Too many verification attempts today. Please try again tomorrow.",
    refused: "Verification failed: the name and document number do not match, or there is no such record.",
};

const TYPES: [&str; 4] = ["resident_id_card", "passport", "hk_macao_permit", "taiwan_permit"];

/// The verification form.
pub fn verify(locale: Locale, f: &VerifyForm<'_>) -> Response {
    let t = match locale {
        Locale::ZhCn => &ZH,
        Locale::En => &EN,
    };
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
