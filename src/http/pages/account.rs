//! The account page (`/account`): the signed-in person's profile (phone and ID number
//! masked, SH-8.2), their sessions with a button to end each, the organizations they act
//! for, their consents per application with a revoke button, and a password change form.
//! Plain forms, no JavaScript, 320 px wide. zh-CN by default, English on request.

use axum::http::StatusCode;
use axum::response::Response;

use super::signup::{FORM_STYLE, Notice};
use super::{Locale, esc, page};
use crate::account::Overview;
use crate::identity::AssuranceLevel;
use crate::identity::legal::AgentRole;

use super::catalogue::AccountTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &super::catalogue::of(l).account
}

fn level_name(l: Locale, level: AssuranceLevel) -> &'static str {
    let m = &super::catalogue::of(l).account_messages;
    match level {
        AssuranceLevel::Visitor => m.level_visitor,
        AssuranceLevel::Registered => m.level_registered,
        AssuranceLevel::RealName => m.level_real_name,
        AssuranceLevel::Strong => m.level_strong,
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in the platform's time zone.
fn when(unix: i64, offset: time::UtcOffset) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.to_offset(offset).format(&fmt).ok())
        .unwrap_or_default()
}

fn post_button(action: &str, csrf: &str, name: &str, value: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"{name}\" value=\"{}\"><button type=\"submit\" class=\"secondary\">{label}</button></form>",
        esc(csrf),
        esc(value)
    )
}

/// The account page of the signed-in person.
pub fn account(l: Locale, o: &Overview, csrf: &str, notice: &Notice, offset: time::UtcOffset) -> Response {
    let t = texts(l);
    let u = &o.user;
    let level = u.level();
    let verify = if level < AssuranceLevel::RealName {
        format!(" <a href=\"/verify?next=/account\">{}</a>", t.verify)
    } else {
        String::new()
    };
    let profile = format!(
        "<h2>{h}</h2><dl><dt>{un}</dt><dd>{username}</dd><dt>{nm}</dt><dd>{name}</dd><dt>{ph}</dt><dd>{phone}</dd>\
         <dt>{idl}</dt><dd>{id}</dd><dt>{lv}</dt><dd>{level}{verify}</dd></dl>",
        h = t.profile,
        un = t.username,
        username = esc(&u.username),
        nm = t.name,
        name = esc(&u.name),
        ph = t.phone,
        phone = esc(o.phone.as_deref().unwrap_or(t.none)),
        idl = t.id_number,
        id = esc(o.id_number.as_deref().unwrap_or(t.none)),
        lv = t.level,
        level = level_name(l, level),
    );
    let sessions: String = o
        .sessions
        .iter()
        .map(|s| {
            let current = if s.current { t.this_browser } else { "" };
            let apps = if s.clients.is_empty() {
                String::new()
            } else {
                format!("<br><small>{}: {}</small>", t.apps, esc(&s.clients.join(", ")))
            };
            format!(
                "<li>{} {}{current}{apps}{}</li>",
                t.signed_in_at,
                when(s.auth_time, offset),
                post_button("/account/sessions/end", csrf, "sid", &s.sid, t.end)
            )
        })
        .collect();
    let companies: String = if o.companies.is_empty() {
        format!("<p>{}</p>", t.no_companies)
    } else {
        let items: String = o
            .companies
            .iter()
            .map(|c| {
                let role = match c.role {
                    AgentRole::Admin => t.admin,
                    AgentRole::Agent => t.agent,
                };
                format!("<li>{} <small>({}, {role})</small></li>", esc(&c.name), esc(&c.uscc))
            })
            .collect();
        format!("<ul>{items}</ul>")
    };
    let consents: String = if o.consents.is_empty() {
        format!("<p>{}</p>", t.no_consents)
    } else {
        let items: String = o
            .consents
            .iter()
            .map(|c| {
                format!(
                    "<li>{} <small>{}</small><br><small>{}</small>{}</li>",
                    esc(&c.client_name),
                    when(c.at, offset),
                    esc(&c
                        .scopes
                        .iter()
                        .map(|s| super::scope_text(l, s))
                        .collect::<Vec<_>>()
                        .join(if l == Locale::En { ", " } else { "、" })),
                    post_button("/account/consents/revoke", csrf, "client_id", &c.client_id, t.revoke)
                )
            })
            .collect();
        format!("<ul>{items}</ul>")
    };
    let password = format!(
        "<h2>{h}</h2><form method=\"post\" action=\"/account/password\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"current\">{cur}</label><input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required>\
         <label for=\"password\">{new}</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" minlength=\"8\" required>\
         <button type=\"submit\">{change}</button></form>",
        h = t.change_password,
        csrf = esc(csrf),
        cur = t.current_password,
        new = t.new_password,
        change = t.change,
    );
    let body = format!(
        "{FORM_STYLE}<style>h2{{font-size:1.1rem;margin:1.4rem 0 .4rem}}dt{{color:#6b7280;font-size:.85rem}}dd{{margin:0 0 .5rem}}\
         li{{margin-bottom:.8rem}}</style><h1>{title}</h1>{notice}{profile}<h2>{sh}</h2><ul>{sessions}</ul>\
         <h2>{ch}</h2>{companies}<h2>{coh}</h2>{consents}{password}<p class=\"links\"><a href=\"/end_session\">{out}</a></p>",
        title = t.title,
        notice = notice.html(),
        sh = t.sessions,
        ch = t.companies,
        coh = t.consents,
        out = t.sign_out,
    );
    page(l, t.title, &body, StatusCode::OK, false)
}

/// The account page's title (what a login for it is "for").
pub fn title(l: Locale) -> &'static str {
    texts(l).title
}

/// The account page without a session: where to go instead.
pub fn signed_out(l: Locale) -> Response {
    let t = texts(l);
    let body = format!(
        "{FORM_STYLE}<h1>{}</h1><p>{}</p><p class=\"links\"><a href=\"/signup\">{}</a><a href=\"/password/reset\">{}</a></p>",
        t.not_signed_in, t.not_signed_in_text, t.register, t.forgot
    );
    page(l, t.title, &body, StatusCode::UNAUTHORIZED, false)
}

/// The line shown after an account action (`done=` of the redirect back to `/account`).
pub fn done_text(l: Locale, what: &str) -> Option<&'static str> {
    let m = &super::catalogue::of(l).account_messages;
    Some(match what {
        "registered" => m.done_registered,
        "session_ended" => m.done_session_ended,
        "consent_revoked" => m.done_consent_revoked,
        "password_changed" => m.done_password_changed,
        _ => return None,
    })
}

/// The message of a refused password change.
pub fn change_problem(l: Locale, e: &crate::account::ChangeError) -> &'static str {
    use crate::account::ChangeError as C;
    let m = &super::catalogue::of(l).account_messages;
    match e {
        C::WrongPassword => m.wrong_password,
        C::Policy(_) => m.weak_password,
        C::Gone => m.gone,
        C::Busy | C::Store(_) => m.account_busy,
    }
}
