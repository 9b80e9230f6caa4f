//! The pages of an application that takes no logins now (issue 14): a real maintenance page
//! (the admin's reason, the expected return time and a contact, when recorded) and plain
//! suspension, closure and not-yet-open pages; the technical refusal folded away.

use axum::http::StatusCode;
use axum::response::Response;
use time::{OffsetDateTime, UtcOffset};

use super::{Locale, catalogue, esc, page, trouble};
use crate::apps::State;
use crate::apps::gate::Closed;

/// `2026-12-05 18:00 (UTC+08:00)`: a unix time in the platform calendar's zone.
fn when(unix: i64, offset: UtcOffset) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(unix).map(|t| t.to_offset(offset)) else {
        return String::new();
    };
    let (h, m, _) = offset.as_hms();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} (UTC{}{:02}:{:02})",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        if offset.is_negative() { '-' } else { '+' },
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

/// The page of a closed application in `l`: 503 for maintenance, 400 otherwise.
pub fn closed(l: Locale, c: &Closed, offset: UtcOffset) -> Response {
    let t = &catalogue::of(l).app_state;
    let app = format!("<dl class=\"app\"><dt>{}</dt><dd>{}</dd></dl>", t.application, esc(&c.name));
    let (title, body, status) = match c.state {
        State::TemporarilyOffline => {
            let mut facts = String::new();
            if let Some(m) = &c.maintenance {
                if !m.reason.is_empty() {
                    facts.push_str(&format!("<dt>{}</dt><dd class=\"reason\">{}</dd>", t.reason, esc(&m.reason)));
                }
                let until = m.until.map(|u| when(u, offset)).filter(|u| !u.is_empty());
                match until {
                    Some(u) => facts.push_str(&format!("<dt>{}</dt><dd class=\"until\">{u}</dd>", t.until)),
                    None => {
                        facts.push_str(&format!("<dt>{}</dt><dd class=\"until\">{}</dd>", t.until, t.until_unknown))
                    }
                }
                if let Some(contact) = &m.contact {
                    facts.push_str(&format!("<dt>{}</dt><dd class=\"contact\">{}</dd>", t.contact, esc(contact)));
                }
            }
            let facts = if facts.is_empty() { String::new() } else { format!("<dl class=\"app\">{facts}</dl>") };
            (
                t.maintenance_title,
                format!("<p class=\"lead\">{}</p>{facts}", t.maintenance_lead),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
        State::Suspended => (
            t.suspended_title,
            format!("<p class=\"lead\">{}</p><p>{}</p>", t.suspended_lead, t.suspended_next),
            StatusCode::BAD_REQUEST,
        ),
        State::Offline => (t.closed_title, format!("<p class=\"lead\">{}</p>", t.closed_lead), StatusCode::BAD_REQUEST),
        State::Applied | State::Approved | State::PreRelease | State::Released => {
            (t.not_ready_title, format!("<p class=\"lead\">{}</p>", t.not_ready_lead), StatusCode::BAD_REQUEST)
        }
    };
    let details = trouble::details(l, c.error.code.as_str(), &c.error.description);
    page(l, title, &format!("<h1>{title}</h1>{app}{body}{details}"), status, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_calendar_zone() {
        let cst = UtcOffset::from_hms(8, 0, 0).unwrap();
        // 2026-12-05 10:00 UTC
        assert_eq!(when(1_796_464_800, cst), "2026-12-05 18:00 (UTC+08:00)");
    }
}
