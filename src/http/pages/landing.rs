//! The landing page (`GET /`: the platform's name, a way to sign in to the account page, and
//! the help, agreement and privacy links) and the HTML 404 page for browsers, in the same style.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, brand, catalogue, esc, page};

/// The help, agreement and privacy links that are configured.
fn links(l: Locale) -> String {
    let b = brand::current();
    let t = &catalogue::of(l).brand;
    let links: Vec<String> = [(b.help(), t.help), (b.agreement(), t.agreement), (b.privacy(), t.privacy)]
        .into_iter()
        .filter_map(|(href, text)| href.map(|h| format!("<li><a href=\"{}\">{text}</a></li>", esc(h))))
        .collect();
    if links.is_empty() { String::new() } else { format!("<ul class=\"links\">{}</ul>", links.concat()) }
}

/// `GET /`.
pub fn landing(l: Locale) -> Response {
    let t = &catalogue::of(l).landing;
    let b = brand::current();
    let name = b.name(l);
    let title = if name.is_empty() { t.title } else { name };
    let links = links(l);
    let more = if links.is_empty() { String::new() } else { format!("<h2>{}</h2>{links}", t.links) };
    let body = format!(
        "<h1>{}</h1><p class=\"lead\">{}</p><p><a class=\"button\" href=\"/account\">{}</a></p>\
         <p><a class=\"button secondary\" href=\"/signup\">{}</a></p>{more}",
        esc(title),
        t.lead,
        t.sign_in,
        t.signup
    );
    page(l, title, &body, StatusCode::OK, false)
}

/// The 404 page for browsers.
pub fn not_found(l: Locale) -> Response {
    let t = &catalogue::of(l).landing;
    let body = format!(
        "<h1>{}</h1><p class=\"lead\" role=\"alert\">{}</p><p><a class=\"button\" href=\"/\">{}</a></p>",
        t.not_found_title, t.not_found_lead, t.home
    );
    page(l, t.not_found_title, &body, StatusCode::NOT_FOUND, false)
}
