//! Parser tests: the RFC 7644 s3.4.2.2 examples, precedence, errors, and random input.

use super::*;

fn p(name: &str) -> AttrPath {
    attr_path(name).unwrap()
}

#[test]
fn rfc_examples_parse() {
    // RFC 7644 s3.4.2.2, the example filters.
    for f in [
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        "title pr",
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        "active eq true",
        "x.y gt -1.5e3",
        "manager eq null",
    ] {
        parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn precedence_and_case() {
    let f = parse(r#"a eq "1" OR b eq "2" And C Eq "3""#).unwrap();
    let want = Filter::Or(
        Box::new(Filter::Compare(p("a"), Op::Eq, Value::Str("1".into()))),
        Box::new(Filter::And(
            Box::new(Filter::Compare(p("b"), Op::Eq, Value::Str("2".into()))),
            Box::new(Filter::Compare(p("c"), Op::Eq, Value::Str("3".into()))),
        )),
    );
    assert_eq!(f, want);
    let f = parse(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#).unwrap();
    let Filter::Compare(path, ..) = f else { panic!() };
    assert_eq!(path.uri.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"));
    assert_eq!((path.name.as_str(), path.sub.as_deref()), ("manager", Some("value")));
    let f = parse(r#"displayName eq "a \"quoted\" \u4e2d""#).unwrap();
    assert_eq!(f, Filter::Compare(p("displayname"), Op::Eq, Value::Str("a \"quoted\" 中".into())));
}

#[test]
fn malformed_filters_are_invalid_filter() {
    for f in [
        "",
        "   ",
        "userName",
        "userName eq",
        "userName eq bjensen",
        r#"userName xx "a""#,
        r#"userName eq "a" and"#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]]"#,
        r#"emails[types[x eq "y"]]"#,
        r#"userName eq "unterminated"#,
        r#"userName eq "bad \q escape""#,
        "not userName pr",
        "1abc eq 1",
        "a eq 1e999",
        "a eq +1",
        "a.b.c eq 1",
        r#"userName eq "a" "b""#,
        "a eq {",
    ] {
        match parse(f) {
            Err(ScimError::Client { status: 400, scim_type: Some(ScimType::InvalidFilter), .. }) => {}
            other => panic!("{f:?}: {other:?}"),
        }
    }
    let deep = format!("{}a pr{}", "(".repeat(100), ")".repeat(100));
    assert!(parse(&deep).is_err());
    let nots = format!("{}a pr{}", "not (".repeat(100), ")".repeat(100));
    assert!(parse(&nots).is_err());
    assert!(parse(&"a pr and ".repeat(1000)).is_err());
}

/// A small deterministic generator (xorshift), so the property test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

// RFC 7644 s3.4.2.2: any input gets a filter or an invalidFilter, never a panic or a hang:
// random characters, and random sequences of filter tokens (more likely to get deep).
#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pieces = [
        "userName", " eq ", " ne ", " co ", " sw ", " pr", " gt ", " and ", " or ", "not ", "(", ")", "[", "]",
        "\"x\"", "\"", "\\", "true", "null", "1.5", "-", "emails", ".", "value", "urn:a:b:", ":", " ", "\u{4e2d}",
        "\u{0}", "e99999",
    ];
    for _ in 0..20_000 {
        let n = (rng.next() % 24) as usize;
        let tokens: String = (0..n).map(|_| rng.pick(&pieces)).collect();
        let _ = parse(&tokens);
        let _ = parse_value_filter(&tokens);
        let bytes: Vec<u8> = (0..n).map(|_| (rng.next() % 256) as u8).collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}
