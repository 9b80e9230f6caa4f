//! The consent page (SH-8.2, OIDC Core s3.1.2.4): which application (and the unit that owns it)
//! asks for what, each scope named by the catalogue's description in the page's language, and
//! the sensitive items marked plainly as such, the application's privacy policy, and who is
//! signed in (for whom it acts) with "not you?". Allow, deny and "not you?" are buttons of one
//! form: "not you?" ends this browser's session and returns to the login form of the request.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, esc, page};
use crate::authorize::ConsentView;

use super::catalogue::ConsentTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &super::catalogue::of(l).consent
}

/// The consent page for pending request `req`.
pub fn consent(locale: Locale, req: &str, csrf: &str, view: &ConsentView) -> Response {
    let t = texts(locale);
    let items: String = view
        .scopes
        .iter()
        .map(|s| {
            let text = super::scope_text(locale, s);
            if s.sensitive {
                format!(
                    "<li class=\"sensitive\" data-scope=\"{}\"><span class=\"badge\">{}</span>{}</li>",
                    esc(&s.name),
                    t.sensitive,
                    esc(text)
                )
            } else {
                format!("<li data-scope=\"{}\">{}</li>", esc(&s.name), esc(text))
            }
        })
        .collect();
    let unit = view
        .owning_unit
        .as_deref()
        .map(|u| format!("<dt>{}</dt><dd class=\"unit\">{}</dd>", t.unit, esc(u)))
        .unwrap_or_default();
    let policy = view
        .policy_uri
        .as_deref()
        .map(|u| format!("<p class=\"policy\"><a href=\"{}\" rel=\"noopener\">{}</a></p>", esc(u), t.policy))
        .unwrap_or_default();
    let acting = view
        .acting_for
        .as_deref()
        .map(|c| format!("<dt>{}</dt><dd class=\"acting\">{}</dd>", t.acting_for, esc(c)))
        .unwrap_or_default();
    let note = if view.scopes.iter().any(|s| s.sensitive) {
        format!("<p class=\"warn\" role=\"note\">{}</p>", t.sensitive_note)
    } else {
        String::new()
    };
    let body = format!(
        "<h1>{title}</h1><dl class=\"app\"><dt>{app}</dt><dd class=\"app-name\">{name}</dd>{unit}</dl>\
         <dl class=\"app who\"><dt>{signed_in_as}</dt><dd class=\"person\">{person}</dd>{acting}</dl>\
         <p>{intro}</p><ul class=\"scopes\">{items}</ul>{note}{policy}\
         <form method=\"post\" action=\"/consent\"><input type=\"hidden\" name=\"req\" value=\"{req}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">{allow}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">{deny}</button>\
         <p class=\"switch\"><button type=\"submit\" name=\"decision\" value=\"switch\" class=\"link\">{not_you}</button></p></form>\
         <p class=\"hint\">{revoke}</p>",
        title = t.title,
        app = t.app,
        name = esc(&view.app_name),
        intro = t.intro,
        signed_in_as = t.signed_in_as,
        person = esc(&view.person),
        not_you = t.not_you,
        req = esc(req),
        csrf = esc(csrf),
        allow = t.allow,
        deny = t.deny,
        revoke = t.revoke_note,
    );
    page(locale, t.title, &body, StatusCode::OK, false)
}
