//! Bounds every event in the writer's one intake, where no handler can forget it: many fields
//! come from unauthenticated requests (a claimed `client_id`, an echoed description) and the log
//! is kept 180 days, so strings are cut to a fixed length and control characters escaped.

use serde_json::{Map, Value};

use super::event::Event;

/// Longest string kept, in characters; longer ones keep this many plus a marker.
pub(crate) const MAX_CHARS: usize = 256;
/// Most elements of one array or members of one object in `detail`.
const MAX_ITEMS: usize = 64;
/// Deepest nesting kept in `detail`.
const MAX_DEPTH: usize = 8;
/// Most values (of any kind) kept in one `detail`; the rest become `null`. With
/// [`MAX_CHARS`] this caps a line at a few tens of kilobytes whatever a handler puts there.
const MAX_NODES: usize = 256;

/// Whether a character is shown escaped: control characters (newlines could forge a line for
/// whoever reads the file as text, ESC sequences could drive a terminal) and the Unicode
/// direction overrides that make text read differently from how it is stored.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with control characters escaped (`\n`, `\u{1b}`) and cut after [`MAX_CHARS`]
/// characters with a `…[+N bytes]` marker naming how much was dropped.
pub(crate) fn text(s: &str) -> String {
    if clean(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len().min(MAX_CHARS * 2));
    for (kept, (i, c)) in s.char_indices().enumerate() {
        if kept == MAX_CHARS {
            out.push_str(&format!("…[+{} bytes]", s.len() - i));
            break;
        }
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `s` is kept as it is (short, nothing to escape). Printable ASCII, nearly every
/// string, is recognised without decoding characters, and without an early exit inside a
/// 64-byte chunk so the compiler checks many bytes per instruction (issue 13: the byte loop
/// was 2 % of a client_credentials request's own instructions); other ASCII holds a C0
/// control or DEL, the only ASCII characters to escape.
fn clean(s: &str) -> bool {
    if s.len() > MAX_CHARS {
        return false;
    }
    let b = s.as_bytes();
    if b.chunks(64).all(|c| c.iter().fold(true, |ok, &x| ok & (0x20..0x7f).contains(&x))) {
        return true;
    }
    if s.is_ascii() {
        return false;
    }
    !s.chars().any(needs_escape)
}

/// Bounds `s` in place; a clean string (nearly all of them) is left alone, not copied.
fn bound(s: &mut String) {
    if !clean(s) {
        *s = text(s);
    }
}

fn opt(v: &mut Option<String>) {
    if let Some(s) = v {
        bound(s);
    }
}

/// Bounds a JSON value in place: every string bounded, containers cut to [`MAX_ITEMS`],
/// nesting to [`MAX_DEPTH`] and the whole to [`MAX_NODES`] values. What is already within
/// bounds is not copied (this runs for every event, issue 13).
fn value(v: &mut Value, depth: usize, budget: &mut usize) {
    if *budget == 0 {
        *v = Value::Null;
        return;
    }
    *budget -= 1;
    match v {
        Value::String(s) => bound(s),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
            *v = Value::String("…[nested too deep]".into());
        }
        Value::Array(items) => {
            let n = items.len();
            items.truncate(MAX_ITEMS);
            for x in items.iter_mut() {
                value(x, depth + 1, budget);
            }
            if n > MAX_ITEMS {
                items.push(Value::String(format!("…[+{} items]", n - MAX_ITEMS)));
            }
        }
        Value::Object(members) if members.len() <= MAX_ITEMS && members.keys().all(|k| clean(k)) => {
            for x in members.values_mut() {
                value(x, depth + 1, budget);
            }
        }
        Value::Object(members) => {
            let n = members.len();
            let mut out = Map::new();
            for (k, mut x) in std::mem::take(members).into_iter().take(MAX_ITEMS) {
                value(&mut x, depth + 1, budget);
                out.insert(text(&k), x);
            }
            if n > MAX_ITEMS {
                out.insert("…".into(), Value::String(format!("+{} members", n - MAX_ITEMS)));
            }
            *members = out;
        }
        _ => {}
    }
}

/// The event with every string field and every value of `detail` bounded (see the module
/// doc). Events built from our own short identifiers come out unchanged, and uncopied.
pub(crate) fn event(mut e: Event) -> Event {
    bound(&mut e.id);
    bound(&mut e.ts);
    bound(&mut e.actor);
    bound(&mut e.origin);
    opt(&mut e.client_id);
    opt(&mut e.app_id);
    opt(&mut e.subject);
    opt(&mut e.ip);
    opt(&mut e.request_id);
    let mut budget = MAX_NODES;
    value(&mut e.detail, 0, &mut budget);
    e
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::{Kind, Outcome};

    #[test]
    fn short_clean_text_is_unchanged() {
        assert_eq!(text("client:demo-web"), "client:demo-web");
        assert_eq!(text("演示用户"), "演示用户");
        let e = Event::new(Kind::LoginSuccess, Outcome::Success).actor("user:1").detail(json!({"sid": "abc"}));
        assert_eq!(event(e.clone()), e);
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let long = "x".repeat(65_536);
        let cut = text(&long);
        assert!(cut.starts_with(&"x".repeat(MAX_CHARS)));
        assert!(cut.ends_with(&format!("…[+{} bytes]", 65_536 - MAX_CHARS)), "{cut}");
        assert!(cut.len() < MAX_CHARS + 32);
        // Multi-byte characters are cut on a character boundary.
        let cut = text(&"界".repeat(1000));
        assert_eq!(cut.chars().filter(|c| *c == '界').count(), MAX_CHARS);
    }

    // The ASCII shortcut of `clean` agrees with `needs_escape` on every ASCII character.
    #[test]
    fn ascii_shortcut_agrees_with_the_character_rule() {
        for b in 0u8..128 {
            let c = char::from(b);
            assert_eq!(clean(&format!("a{c}b")), !needs_escape(c), "{b:#x}");
            // Either side of a 64-byte chunk's edge, and beside non-ASCII text.
            for at in [0, 62, 63, 64, 65, 127, 200] {
                let s = format!("{}{c}{}", "x".repeat(at), "y".repeat(3));
                assert_eq!(clean(&s), !needs_escape(c), "{b:#x} at {at}");
                assert_eq!(clean(&format!("{s}中文")), !needs_escape(c), "{b:#x} at {at}, non-ASCII");
            }
        }
        assert!(!clean(&format!("{}\u{202e}", "x".repeat(70))));
        assert!(!clean(&"x".repeat(MAX_CHARS + 1)));
    }

    #[test]
    fn control_and_direction_characters_are_escaped() {
        let forged = "evil\n{\"kind\":\"login_success\"}\u{1b}[2J\u{202e}txt";
        let out = text(forged);
        assert!(!out.chars().any(needs_escape), "{out:?}");
        assert!(out.contains("\\n") && out.contains("\\u{1b}") && out.contains("\\u{202e}"), "{out}");
    }

    #[test]
    fn detail_is_bounded_in_size_and_depth() {
        let mut deep = json!("leaf");
        for _ in 0..20 {
            deep = json!({ "d": deep });
        }
        let wide: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let e = Event::new(Kind::TokenIssued, Outcome::Denied)
            .client("c".repeat(10_000))
            .detail(json!({"deep": deep, "wide": wide, "claimed_client_id": "y".repeat(100_000)}));
        let out = event(e);
        let line = serde_json::to_string(&out).unwrap();
        assert!(line.len() < 40_000, "{}", line.len());
        assert_eq!(out.detail["wide"].as_array().unwrap().len(), MAX_ITEMS + 1);
        assert!(line.contains("nested too deep"));
        assert!(out.client_id.unwrap().len() < MAX_CHARS + 32);
    }
}
