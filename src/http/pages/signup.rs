//! The registration page (HL-5.2, GB-6.4a) and the password-reset page: plain forms that
//! work without JavaScript at 320 px; the "send code" button submits the same form (its
//! values come back filled in, never the password). zh-CN by default, English on request.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{Locale, esc, page};
use crate::http::extract::Params;
use crate::otp::OtpError;
use crate::signup::{Field, SignupError};
use crate::sms::SmsError;

/// Extra styles of the registration and account pages (inline: the CSP allows no other source).
pub(crate) const FORM_STYLE: &str = "<style>input[type=tel],select{width:100%;box-sizing:border-box;padding:.7rem;font-size:1rem;border:1px solid #767676;border-radius:4px;background:#fff}\
nav.tabs{display:flex;gap:.5rem;margin-bottom:1rem}nav.tabs a{flex:1;text-align:center;padding:.6rem;border:1px solid var(--p);border-radius:4px;color:var(--p);text-decoration:none}\
nav.tabs a.on{background:var(--p);color:#fff}fieldset{border:1px solid #e5e7eb;border-radius:4px;margin:1rem 0 0;padding:.2rem .8rem .8rem}\
legend{padding:0 .3rem;color:#475569}small{color:#6b7280}.ok{color:#166534;background:#f0fdf4;padding:.6rem;border-radius:4px}\
label.check{display:flex;gap:.5rem;align-items:flex-start}label.check input{margin-top:.25rem}\
p.links{display:flex;justify-content:space-between;flex-wrap:wrap;gap:.5rem;margin-top:1.2rem}p.links a{color:var(--p)}\
button.secondary{margin-top:.5rem}@media(max-width:380px){main{margin:0;padding:1rem;border-radius:0;box-shadow:none}}</style>";

use super::catalogue::SignupTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &super::catalogue::of(l).signup
}

/// The message for a refused registration, code or reset, in the page's language.
pub fn problem(l: Locale, e: &SignupError) -> String {
    let m = &super::catalogue::of(l).messages;
    let text = match e {
        SignupError::Invalid(f) => match f {
            Field::Username => m.username_invalid,
            Field::Name => m.name_invalid,
            Field::Phone => m.phone_invalid,
            Field::Code => m.code_missing,
            Field::Password => m.password_invalid,
            Field::OrgName => m.org_name_invalid,
            Field::Uscc => m.uscc_invalid,
            Field::OrgKind => m.org_kind_invalid,
            Field::LegalRepresentative => m.representative_invalid,
        },
        SignupError::UsernameTaken => m.username_taken,
        SignupError::PhoneTaken => m.phone_taken,
        SignupError::UsccTaken => m.uscc_taken,
        SignupError::NoPerson => m.no_person,
        SignupError::NoAccount => m.no_account,
        SignupError::Code(o) => return code_problem(l, o),
        SignupError::Busy => m.busy,
        SignupError::Store(_) => m.unavailable,
    };
    text.to_owned()
}

fn code_problem(l: Locale, e: &OtpError) -> String {
    use super::catalogue::fill;
    let m = &super::catalogue::of(l).messages;
    match e {
        OtpError::NoCode => m.code_unknown.to_owned(),
        OtpError::Expired => m.code_expired.to_owned(),
        OtpError::Wrong { remaining } => fill(m.code_wrong, &[&remaining.to_string()]),
        OtpError::TooManyTries => m.code_too_many.to_owned(),
        OtpError::Malformed(n) => fill(m.code_digits, &[&n.to_string()]),
        OtpError::TooSoon { retry_after } => fill(m.code_too_soon, &[&retry_after.to_string()]),
        OtpError::RateLimited { retry_after } => fill(m.code_rate_limited, &[&retry_after.div_ceil(60).to_string()]),
        OtpError::Sms(SmsError::Off) => m.sms_off.to_owned(),
        OtpError::Sms(_) => m.sms_failed.to_owned(),
        OtpError::Store(_) => m.unavailable.to_owned(),
    }
}

/// A notice or an error line above a form.
pub enum Notice {
    /// Nothing.
    None,
    /// A success line.
    Ok(String),
    /// An error line.
    Error(String),
    /// An error line about one field (its input's id): the field gets `aria-invalid`, is
    /// described by the line (`aria-describedby`) and takes the focus (`autofocus`, no script).
    FieldError(String, &'static str),
}

impl Notice {
    pub(crate) fn html(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Ok(t) => format!("<p class=\"ok\" role=\"status\">{}</p>", esc(t)),
            Self::Error(t) => format!("<p class=\"error\" role=\"alert\">{}</p>", esc(t)),
            Self::FieldError(t, _) => {
                format!("<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>", esc(t))
            }
        }
    }

    /// The error notice of a refused registration, code or reset, tied to its field when the
    /// error is about one.
    pub fn of_error(l: Locale, e: &SignupError) -> Self {
        let field = match e {
            SignupError::Invalid(f) => Some(match f {
                Field::Username => "username",
                Field::Name => "name",
                Field::Phone => "phone",
                Field::Code => "code",
                Field::Password => "password",
                Field::OrgName => "org_name",
                Field::Uscc => "uscc",
                Field::OrgKind => "org_kind",
                Field::LegalRepresentative => "legal_representative",
            }),
            SignupError::UsernameTaken => Some("username"),
            SignupError::PhoneTaken | SignupError::NoAccount => Some("phone"),
            SignupError::UsccTaken => Some("uscc"),
            SignupError::Code(
                OtpError::NoCode | OtpError::Expired | OtpError::Wrong { .. } | OtpError::Malformed(_),
            ) => Some("code"),
            _ => None,
        };
        match field {
            Some(f) => Self::FieldError(problem(l, e), f),
            None => Self::Error(problem(l, e)),
        }
    }

    /// `body` with the field in error marked (see [`Notice::FieldError`]).
    pub(crate) fn mark(&self, body: String) -> String {
        let Self::FieldError(_, id) = self else {
            return body;
        };
        let needle = format!("id=\"{id}\" name=\"{id}\"");
        let marked = format!("{needle} aria-invalid=\"true\" aria-describedby=\"form-error\" autofocus");
        body.replacen(&needle, &marked, 1)
    }
}

/// The "code sent" line.
pub fn code_sent(l: Locale, masked_phone: &str, minutes: i64, maybe: bool) -> String {
    let m = &super::catalogue::of(l).messages;
    let template = if maybe { m.code_sent_maybe } else { m.code_sent };
    super::catalogue::fill(template, &[masked_phone, &minutes.to_string()])
}

fn field(id: &str, label: &str, kind: &str, value: &str, extra: &str) -> String {
    format!(
        "<label for=\"{id}\">{label}</label><input type=\"{kind}\" id=\"{id}\" name=\"{id}\" value=\"{}\" {extra}>",
        esc(value)
    )
}

fn val<'a>(values: &'a Params, k: &str) -> &'a str {
    values.get(k).map_or("", String::as_str)
}

fn req_query(req: Option<&str>) -> String {
    req.map(|r| format!("req={}&", esc(&url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>())))
        .unwrap_or_default()
}

/// What the registration page shows.
pub struct SignupPage<'a> {
    /// The pending authorization request the registration continues, if any.
    pub req: Option<&'a str>,
    /// Anti-CSRF token.
    pub csrf: &'a str,
    /// The application signed in to afterwards.
    pub client_name: Option<&'a str>,
    /// The legal-person form.
    pub legal: bool,
    /// The signed-in person registering a company (no person fields then).
    pub agent: Option<&'a str>,
    /// Values typed so far (never the password).
    pub values: &'a Params,
    /// The line above the form.
    pub notice: Notice,
}

/// The registration page (HL-5.2): tabs for a person and an organization, one form.
pub fn signup(l: Locale, p: &SignupPage<'_>, status: StatusCode, retry_after: Option<u64>) -> Response {
    let t = texts(l);
    let rq = req_query(p.req);
    let (on_p, on_l) = if p.legal { ("", " class=\"on\"") } else { (" class=\"on\"", "") };
    let tabs = format!(
        "<nav class=\"tabs\"><a href=\"/signup?{rq}kind=natural\"{on_p}>{}</a><a href=\"/signup?{rq}kind=legal\"{on_l}>{}</a></nav>",
        t.tab_person, t.tab_legal
    );
    let client =
        p.client_name.map(|c| format!("<p class=\"client\">{} {}</p>", t.continue_to, esc(c))).unwrap_or_default();
    let v = p.values;
    let person = if p.agent.is_some() {
        String::new()
    } else {
        let fields = [
            field("phone", t.phone, "tel", val(v, "phone"), "autocomplete=\"tel\" inputmode=\"tel\" maxlength=\"32\" required"),
            format!("<button type=\"submit\" name=\"action\" value=\"send_code\" class=\"secondary\" formnovalidate>{}</button>", t.send_code),
            field("code", t.code, "text", val(v, "code"), "autocomplete=\"one-time-code\" inputmode=\"numeric\" maxlength=\"8\" required"),
            field("username", t.username, "text", val(v, "username"), "autocomplete=\"username\" autocapitalize=\"none\" maxlength=\"64\" required"),
            format!("<small>{}</small>", t.username_hint),
            field("name", t.name, "text", val(v, "name"), "autocomplete=\"name\" maxlength=\"64\" required"),
            field("password", t.password, "password", "", "autocomplete=\"new-password\" minlength=\"8\" required"),
            format!("<small>{}</small>", t.password_hint),
        ]
        .concat();
        if p.legal { format!("<fieldset><legend>{}</legend>{fields}</fieldset>", t.person) } else { fields }
    };
    let org = if p.legal {
        let chosen = val(v, "org_kind");
        let options: String = t
            .kinds
            .iter()
            .map(|(k, label)| {
                let sel = if *k == chosen { " selected" } else { "" };
                format!("<option value=\"{k}\"{sel}>{label}</option>")
            })
            .collect();
        let agent = match p.agent {
            Some(name) => format!("<p class=\"client\">{} <strong>{}</strong></p>", t.agent_signed_in, esc(name)),
            None => format!("<p class=\"client\">{}</p>", t.agent_new),
        };
        format!(
            "<fieldset><legend>{org}</legend>{name}{uscc}<label for=\"org_kind\">{kind}</label><select id=\"org_kind\" name=\"org_kind\">{options}</select>{rep}{agent}</fieldset>",
            org = t.org,
            name = field(
                "org_name",
                t.org_name,
                "text",
                val(v, "org_name"),
                "autocomplete=\"organization\" maxlength=\"128\" required"
            ),
            uscc = field(
                "uscc",
                t.uscc,
                "text",
                val(v, "uscc"),
                "autocapitalize=\"characters\" maxlength=\"18\" required"
            ),
            kind = t.org_kind,
            rep = field(
                "legal_representative",
                t.legal_rep,
                "text",
                val(v, "legal_representative"),
                "maxlength=\"64\" required"
            ),
        )
    } else {
        String::new()
    };
    let verify = if p.legal {
        String::new()
    } else {
        let checked = if v.contains_key("verify") { " checked" } else { "" };
        format!(
            "<label class=\"check\"><input type=\"checkbox\" name=\"verify\" value=\"1\"{checked}>{}</label>",
            t.verify
        )
    };
    let req_field =
        p.req.map(|r| format!("<input type=\"hidden\" name=\"req\" value=\"{}\">", esc(r))).unwrap_or_default();
    let kind = if p.legal { "legal" } else { "natural" };
    let login_link =
        p.req.map(|r| format!("<a href=\"/login?req={}\">{}</a>", esc(r), t.have_account)).unwrap_or_default();
    // Signing in and password recovery are for someone not signed in: a signed-in person
    // registering a company is its agent already.
    let links = if p.agent.is_some() {
        String::new()
    } else {
        format!(
            "<p class=\"links\">{login_link}<a href=\"/password/reset?{}\">{}</a></p>",
            rq.trim_end_matches('&'),
            t.forgot
        )
    };
    let body = format!(
        "{FORM_STYLE}<h1>{title}</h1>{client}{tabs}{notice}<form method=\"post\" action=\"/signup\">{req_field}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"kind\" value=\"{kind}\">\
         {org}{person}{verify}<button type=\"submit\" name=\"action\" value=\"register\">{submit}</button></form>\
         {links}",
        title = t.title,
        notice = p.notice.html(),
        csrf = esc(p.csrf),
        submit = t.submit,
    );
    let body = p.notice.mark(body);
    with_retry(page(l, t.title, &body, status, false), retry_after)
}

fn with_retry(mut resp: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The password-reset page: phone, code, new password.
pub fn reset(
    l: Locale,
    req: Option<&str>,
    csrf: &str,
    values: &Params,
    notice: &Notice,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let t = texts(l);
    let req_field =
        req.map(|r| format!("<input type=\"hidden\" name=\"req\" value=\"{}\">", esc(r))).unwrap_or_default();
    let body = format!(
        "{FORM_STYLE}<h1>{title}</h1><p>{intro}</p>{notice}<form method=\"post\" action=\"/password/reset\">{req_field}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{phone}\
         <button type=\"submit\" name=\"action\" value=\"send_code\" class=\"secondary\" formnovalidate>{send}</button>\
         {code}{pw}<small>{hint}</small><button type=\"submit\" name=\"action\" value=\"reset\">{submit}</button></form>",
        title = t.reset_title,
        intro = t.reset_intro,
        notice = notice.html(),
        csrf = esc(csrf),
        phone = field(
            "phone",
            t.phone,
            "tel",
            val(values, "phone"),
            "autocomplete=\"tel\" inputmode=\"tel\" maxlength=\"32\" required"
        ),
        send = t.send_code,
        code = field(
            "code",
            t.code,
            "text",
            val(values, "code"),
            "autocomplete=\"one-time-code\" inputmode=\"numeric\" maxlength=\"8\" required"
        ),
        pw =
            field("password", t.new_password, "password", "", "autocomplete=\"new-password\" minlength=\"8\" required"),
        hint = t.password_hint,
        submit = t.reset_submit,
    );
    let body = notice.mark(body);
    with_retry(page(l, t.reset_title, &body, status, false), retry_after)
}

/// After a reset: every sign-in ended; a link back to the login of the pending request.
pub fn reset_done(l: Locale, req: Option<&str>) -> Response {
    let t = texts(l);
    let link = req
        .map(|r| format!("<p class=\"links\"><a href=\"/login?req={}\">{}</a></p>", esc(r), t.sign_in))
        .unwrap_or_default();
    let body =
        format!("{FORM_STYLE}<h1>{}</h1><p class=\"ok\" role=\"status\">{}</p>{link}", t.reset_title, t.reset_done);
    page(l, t.reset_title, &body, StatusCode::OK, false)
}
