//! The built-in user agreement and privacy notice (`/agreement`, `/privacy`): short, true
//! statements of what this platform does, linked from every login page by default (JM-5.6,
//! SH-D, SH-8.2). An operator points `branding.agreement_url` / `privacy_url` at its own texts.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, page};

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The user agreement.
    Agreement,
    /// The privacy notice.
    Privacy,
}

/// The notice page in `locale`.
pub fn notice(locale: Locale, which: Notice) -> Response {
    let t = &super::catalogue::of(locale).notices;
    let (title, paragraphs) = match which {
        Notice::Agreement => (t.agreement_title, t.agreement),
        Notice::Privacy => (t.privacy_title, t.privacy),
    };
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    page(locale, title, &format!("<h1>{title}</h1>{body}"), StatusCode::OK, false)
}
