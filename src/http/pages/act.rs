//! Acting for a legal person (HL-5.1): after an agent authenticated through the 法人 tab, the
//! page that asks which legal person they act for, and the refusal when they act for none.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, esc, page};

/// One legal person on the chooser: its id, name and (masked) unified social credit code.
pub struct Choice<'a> {
    /// Legal person id (the form value).
    pub id: &'a str,
    /// Organization name.
    pub name: &'a str,
    /// Unified social credit code.
    pub uscc: &'a str,
}

use super::catalogue::ActTexts as Texts;

fn texts(l: Locale) -> &'static Texts {
    &super::catalogue::of(l).act
}

/// Masks a USCC for display: its first 4 and last 4 characters.
fn mask(uscc: &str) -> String {
    let chars: Vec<char> = uscc.chars().collect();
    if chars.len() <= 8 {
        return uscc.to_owned();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

/// The chooser: one button per legal person, posting to `/act` (works without JavaScript).
pub fn chooser(locale: Locale, req: &str, csrf: &str, client_name: &str, choices: &[Choice<'_>]) -> Response {
    let t = texts(locale);
    let items: String = choices
        .iter()
        .map(|c| {
            format!(
                "<li><form method=\"post\" action=\"/act\"><input type=\"hidden\" name=\"req\" value=\"{req}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"legal_person\" value=\"{id}\">\
                 <p><strong>{name}</strong><br><small>{uscc_label}: {uscc}</small></p>\
                 <button type=\"submit\">{act}</button></form></li>",
                req = esc(req),
                csrf = esc(csrf),
                id = esc(c.id),
                name = esc(c.name),
                uscc_label = t.uscc,
                uscc = esc(&mask(c.uscc)),
                act = t.act,
            )
        })
        .collect();
    let body = format!(
        "<h1>{title}</h1><p class=\"client\"><strong>{client}</strong></p><p>{intro}</p><ul class=\"choices\">{items}</ul>",
        title = t.choose_title,
        client = esc(client_name),
        intro = t.choose_intro,
    );
    page(locale, t.choose_title, &body, StatusCode::OK, false)
}

/// The refusal: the agent acts for no legal person (403).
pub fn refused(locale: Locale, req: &str) -> Response {
    let t = texts(locale);
    let body = format!(
        "<h1>{title}</h1><p class=\"error\" role=\"alert\" id=\"not-an-agent\">{msg}</p><p><a href=\"/login?req={req}\">{back}</a></p>",
        title = t.refused_title,
        msg = t.refused,
        req = esc(req),
        back = t.back,
    );
    page(locale, t.refused_title, &body, StatusCode::FORBIDDEN, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_is_masked() {
        assert_eq!(mask("91350100M000100Y43"), "9135**********0Y43");
    }
}
