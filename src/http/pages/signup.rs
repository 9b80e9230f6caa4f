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
    let zh = l == Locale::ZhCn;
    let pick = |z: &str, e: &str| if zh { z.to_owned() } else { e.to_owned() };
    match e {
        SignupError::Invalid(f) => match f {
            Field::Username => pick(
                "用户名须为 1-64 个字母、数字或 . _ - @。",
                "A username is 1-64 letters, digits, '.', '_', '-' or '@'.",
            ),
            Field::Name => pick("请填写姓名（最多 64 个字符）。", "Enter your name (at most 64 characters)."),
            Field::Phone => pick("请输入有效的中国大陆手机号。", "Enter a valid mainland China mobile number."),
            Field::Code => pick("请输入短信验证码。", "Enter the SMS code."),
            Field::Password => {
                pick("密码至少 8 个字符，最多 256 字节。", "A password has 8 characters at least, 256 bytes at most.")
            }
            Field::OrgName => {
                pick("请填写单位名称（最多 128 个字符）。", "Enter the organization's name (at most 128 characters).")
            }
            Field::Uscc => pick(
                "统一社会信用代码不正确，请核对 18 位代码（含校验位）。",
                "The unified social credit code is not valid: check its 18 characters (with the check characters).",
            ),
            Field::OrgKind => pick("请选择单位类型。", "Choose the kind of organization."),
            Field::LegalRepresentative => pick(
                "请填写法定代表人姓名（最多 64 个字符）。",
                "Enter the legal representative's name (at most 64 characters).",
            ),
        },
        SignupError::UsernameTaken => pick("该用户名已被使用，请换一个。", "This username is taken; choose another."),
        SignupError::PhoneTaken => pick(
            "该手机号已注册。请直接登录，或通过“忘记密码”找回。",
            "This phone number is registered already. Sign in, or use \"Forgot password\".",
        ),
        SignupError::UsccTaken => pick(
            "该统一社会信用代码已注册。如需成为该单位的经办人，请联系其管理员。",
            "This organization is registered already. Ask its administrator to add you as an agent.",
        ),
        SignupError::NoPerson => pick("请先登录或注册个人账号。", "Sign in or register as a person first."),
        SignupError::NoAccount => pick("未找到绑定该手机号的账号。", "No account has this phone number."),
        SignupError::Code(o) => code_problem(zh, o),
        SignupError::Busy => pick("系统繁忙，请稍后再试。", "The service is busy. Please try again shortly."),
        SignupError::Store(_) => {
            pick("服务暂时不可用，请稍后再试。", "The service is unavailable. Please try again shortly.")
        }
    }
}

fn code_problem(zh: bool, e: &OtpError) -> String {
    let pick = |z: String, e: String| if zh { z } else { e };
    match e {
        OtpError::NoCode => {
            pick("验证码无效或已使用，请重新获取。".into(), "The code is not valid or was used; get a new one.".into())
        }
        OtpError::Expired => pick("验证码已过期，请重新获取。".into(), "The code has expired; get a new one.".into()),
        OtpError::Wrong { remaining } => {
            pick(format!("验证码错误，还可尝试 {remaining} 次。"), format!("Wrong code; {remaining} tries left."))
        }
        OtpError::TooManyTries => {
            pick("验证码错误次数过多，请重新获取。".into(), "Too many wrong codes; get a new one.".into())
        }
        OtpError::Malformed(n) => pick(format!("验证码为 {n} 位数字。"), format!("The code is {n} digits.")),
        OtpError::TooSoon { retry_after } => pick(
            format!("验证码刚刚已发送，请 {retry_after} 秒后再试。"),
            format!("A code was just sent; try again in {retry_after} seconds."),
        ),
        OtpError::RateLimited { retry_after } => {
            let mins = retry_after.div_ceil(60);
            pick(
                format!("获取验证码过于频繁，请 {mins} 分钟后再试。"),
                format!("Too many codes requested; try again in {mins} minutes."),
            )
        }
        OtpError::Sms(SmsError::Off) => pick(
            "短信服务未开通，暂时无法发送验证码。".into(),
            "The SMS service is not set up; no code can be sent now.".into(),
        ),
        OtpError::Sms(_) => {
            pick("短信发送失败，请稍后再试。".into(), "The SMS could not be sent; try again shortly.".into())
        }
        OtpError::Store(_) => {
            pick("服务暂时不可用，请稍后再试。".into(), "The service is unavailable. Please try again shortly.".into())
        }
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
    match (l, maybe) {
        (Locale::ZhCn, false) => format!("验证码已发送至 {masked_phone}，{minutes} 分钟内有效。"),
        (Locale::ZhCn, true) => format!("如该手机号已注册，验证码已发送至 {masked_phone}，{minutes} 分钟内有效。"),
        (Locale::En, false) => format!("A code was sent to {masked_phone}; it is valid for {minutes} minutes."),
        (Locale::En, true) => {
            format!(
                "If an account has this number, a code was sent to {masked_phone}; it is valid for {minutes} minutes."
            )
        }
    }
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
    let body = format!(
        "{FORM_STYLE}<h1>{title}</h1>{client}{tabs}{notice}<form method=\"post\" action=\"/signup\">{req_field}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"kind\" value=\"{kind}\">\
         {org}{person}{verify}<button type=\"submit\" name=\"action\" value=\"register\">{submit}</button></form>\
         <p class=\"links\">{login_link}<a href=\"/password/reset?{rq_trim}\">{forgot}</a></p>",
        title = t.title,
        notice = p.notice.html(),
        csrf = esc(p.csrf),
        submit = t.submit,
        forgot = t.forgot,
        rq_trim = rq.trim_end_matches('&'),
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
