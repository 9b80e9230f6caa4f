//! A small YAML reader for the deployment files the tests check (compose, alert rules): block
//! mappings and sequences, flow sequences of scalars, `{}`, quoted and plain scalars, comments.
//! Anything else (anchors, multi-line scalars, tags) is refused loudly, so the files stay simple.

use serde_json::{Map, Value};

/// Parses `text` into JSON values (every scalar a string); panics, naming the line, on anything
/// outside the subset.
pub fn parse(text: &str) -> Value {
    let lines: Vec<(usize, String, usize)> = text
        .lines()
        .enumerate()
        .filter_map(|(n, l)| {
            let content = strip_comment(l).trim_end().to_owned();
            let indent = content.len() - content.trim_start().len();
            let content = content.trim_start().to_owned();
            assert!(!l.contains('\t'), "line {}: tabs are not YAML indentation", n + 1);
            (!content.is_empty()).then_some((indent, content, n + 1))
        })
        .collect();
    if lines.is_empty() {
        return Value::Null;
    }
    let mut i = 0;
    let v = block(&lines, &mut i, lines[0].0);
    assert_eq!(i, lines.len(), "line {}: unexpected indentation", lines.get(i).map_or(0, |l| l.2));
    v
}

fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

fn block(lines: &[(usize, String, usize)], i: &mut usize, indent: usize) -> Value {
    if lines[*i].1 == "-" || lines[*i].1.starts_with("- ") {
        sequence(lines, i, indent)
    } else {
        mapping(lines, i, indent)
    }
}

/// `key: value` (or `key:`) when the text starts a mapping entry.
fn entry(s: &str) -> Option<(String, &str)> {
    if s.starts_with(['"', '\'', '[', '{']) {
        let q = s.chars().next().unwrap();
        if q == '"' || q == '\'' {
            let end = s[1..].find(q)? + 1;
            let rest = s[end + 1..].strip_prefix(':')?;
            return (rest.is_empty() || rest.starts_with(' ')).then(|| (s[1..end].to_owned(), rest.trim()));
        }
        return None;
    }
    let (k, rest) = s.split_once(':')?;
    (rest.is_empty() || rest.starts_with(' ')).then(|| (k.trim().to_owned(), rest.trim()))
}

fn sequence(lines: &[(usize, String, usize)], i: &mut usize, indent: usize) -> Value {
    let mut items = Vec::new();
    while *i < lines.len() && lines[*i].0 == indent && (lines[*i].1 == "-" || lines[*i].1.starts_with("- ")) {
        let (_, text, n) = &lines[*i];
        let rest = text[1..].trim_start();
        if rest.is_empty() {
            *i += 1;
            assert!(*i < lines.len() && lines[*i].0 > indent, "line {n}: empty sequence item");
            items.push(block(lines, i, lines[*i].0));
        } else if entry(rest).is_some() {
            // "- key: value" opens a mapping whose entries sit at the column of "key".
            let mut own: Vec<(usize, String, usize)> = lines.to_vec();
            let col = indent + (text.len() - rest.len());
            own[*i] = (col, rest.to_owned(), *n);
            items.push(mapping(&own, i, col));
        } else {
            items.push(scalar(rest, *n));
            *i += 1;
        }
    }
    Value::Array(items)
}

fn mapping(lines: &[(usize, String, usize)], i: &mut usize, indent: usize) -> Value {
    let mut map = Map::new();
    while *i < lines.len() && lines[*i].0 == indent {
        let (_, text, n) = &lines[*i];
        let (key, rest) = entry(text).unwrap_or_else(|| panic!("line {n}: expected `key: value`, got {text:?}"));
        *i += 1;
        let value = if !rest.is_empty() {
            scalar(rest, *n)
        } else if *i < lines.len() && lines[*i].0 > indent {
            block(lines, i, lines[*i].0)
        } else if *i < lines.len() && lines[*i].0 == indent && lines[*i].1.starts_with("- ") {
            sequence(lines, i, indent)
        } else {
            Value::Null
        };
        assert!(map.insert(key.clone(), value).is_none(), "line {n}: duplicate key {key}");
    }
    Value::Object(map)
}

fn scalar(s: &str, n: usize) -> Value {
    assert!(!s.starts_with(['&', '*', '!', '|', '>']), "line {n}: anchors, tags and block scalars are not used here");
    if s == "{}" {
        return Value::Object(Map::new());
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Value::Array(split_flow(inner).iter().map(|p| scalar(p, n)).collect());
    }
    if let Some(q) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return Value::String(q.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    if let Some(q) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Value::String(q.replace("''", "'"));
    }
    assert!(!s.starts_with(['"', '\'', '{']), "line {n}: unterminated or unsupported scalar {s:?}");
    Value::String(s.to_owned())
}

fn split_flow(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut quote) = (Vec::new(), String::new(), None);
    for c in s.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            (',', None) => {
                parts.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        parts.push(cur.trim().to_owned());
    }
    parts
}

#[test]
fn reads_the_subset() {
    let v = parse(
        "a: 1 # note\nb:\n  - x\n  - \"y: z\"\n  - k: v\n    l: [\"p\", 'q']\nc:\n- 1\nd: {}\ne: \"#not a comment\"\n",
    );
    assert_eq!(
        v,
        serde_json::json!({"a": "1", "b": ["x", "y: z", {"k": "v", "l": ["p", "q"]}], "c": ["1"], "d": {}, "e": "#not a comment"})
    );
}
