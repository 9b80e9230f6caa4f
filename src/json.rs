//! JSON strings written without serde_json's escape scan, which looks at every byte through a
//! table, one at a time. Tokens (base64url and dots), scopes and identifiers never need
//! escaping; for them a check that the compiler vectorizes is enough, and a string that does
//! need escaping still goes through serde_json, so the bytes are always serde_json's (issue
//! 13: the scan was the largest single cost of a client_credentials request outside the
//! signature).

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends `items` as a JSON array, each written by `each`.
pub fn push_list<T>(out: &mut Vec<u8>, items: impl IntoIterator<Item = T>, mut each: impl FnMut(&mut Vec<u8>, T)) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

/// Appends `n` in decimal, as serde_json writes an integer (issue 13: `write!` went through the
/// formatting machinery, about 500 instructions for each number of a token or an answer).
pub fn push_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut v = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Appends `,"name":` and `n`, an integer member after the first.
pub fn push_int_member(out: &mut Vec<u8>, name: &str, n: i64) {
    push_key(out, name);
    push_int(out, n);
}

/// Appends `,"name":`, the start of an object member after the first (`name` is one of ours and
/// needs no escaping).
pub fn push_key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `,"name":` and `value` as a JSON string.
pub fn push_member(out: &mut Vec<u8>, name: &str, value: &str) {
    push_key(out, name);
    push_str(out, value);
}

/// Appends `v` as serde_json writes it (compact, members in the map's order), its strings and
/// keys through [`push_str`] (issue 13: an audit event's `detail`, written for every token
/// issued, went through serde_json's per-byte scan).
pub fn push_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Writing to a Vec cannot fail; a number writes the same bytes through either path.
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => push_str(out, s),
        Value::Array(items) => push_list(out, items, push_value),
        Value::Object(members) => {
            out.push(b'{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str(out, k);
                out.push(b':');
                push_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Whether `b` holds nothing serde_json escapes (`"`, `\` and the controls below 0x20). No
/// early exit inside a chunk, so the compiler checks many bytes per instruction.
pub fn plain(b: &[u8]) -> bool {
    b.chunks(64).all(|c| c.iter().fold(true, |ok, &x| ok & (x >= 0x20) & (x != b'"') & (x != b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_agrees_with_serde_json_for_every_byte() {
        for b in 0u8..=0x7f {
            let s = format!("{}{}", "x".repeat(70), b as char);
            let escaped = serde_json::to_string(&s).expect("serializes") != format!("\"{s}\"");
            assert_eq!(plain(s.as_bytes()), !escaped, "byte {b:#04x}");
        }
    }

    #[test]
    fn push_value_writes_what_serde_json_writes() {
        let values = [
            serde_json::json!(null),
            serde_json::json!({}),
            serde_json::json!([]),
            serde_json::json!({"grant_type": "client_credentials", "scope": "a b", "n": -3, "u": 18446744073709551615u64,
                "f": 1.5, "e": 1e300, "ok": true, "no": false, "list": [1, "x", null, [], {}],
                "nested": {"q\"": "line\nbreak", "中文": "\u{1}\u{7f}"}, "z": {"b": 1, "a": 2}}),
            serde_json::json!("just a string"),
            serde_json::json!(0.1),
        ];
        for v in &values {
            let mut out = Vec::new();
            push_value(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), serde_json::to_string(v).expect("serializes"));
        }
    }

    #[test]
    fn push_int_writes_what_serde_json_writes() {
        for n in [0, 1, 9, 10, 99, 100, -1, -10, 1_764_979_200, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut out = Vec::new();
            push_int(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).expect("serializes"), "{n}");
        }
    }

    #[test]
    fn push_str_writes_what_serde_json_writes() {
        for s in ["", "plain", "q\"uote", "back\\slash", "nl\n", "中文", "\u{7f}", "\u{1}"] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).expect("serializes"), "{s:?}");
        }
    }
}
