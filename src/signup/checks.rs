//! What the registration forms accept: names, the mainland mobile number and the unified social
//! credit code. The phone and USCC checks stand in for part A's `identity::phone::normalise`
//! and `identity::uscc::check` (same signatures, same results) until it merges.

use crate::identity::legal::OrgKind;

/// Longest name of a person or legal representative, characters.
pub const MAX_NAME: usize = 64;
/// Longest organization name, characters.
pub const MAX_ORG_NAME: usize = 128;

/// A display name: trimmed, 1..=`max` characters, no control characters.
pub fn name(raw: &str, max: usize) -> Option<String> {
    let n = raw.trim();
    let len = n.chars().count();
    ((1..=max).contains(&len) && !n.chars().any(char::is_control)).then(|| n.to_owned())
}

/// The organization kind of a form value.
pub fn org_kind(raw: &str) -> Option<OrgKind> {
    Some(match raw {
        "enterprise" => OrgKind::Enterprise,
        "public_institution" => OrgKind::PublicInstitution,
        "social_organization" => OrgKind::SocialOrganization,
        "government_body" => OrgKind::GovernmentBody,
        "other" => OrgKind::Other,
        _ => return None,
    })
}

/// A mainland mobile number, normalised to `+86` and 11 digits (spaces, dashes, a leading
/// `+86`, `86` or `0086` accepted). Placeholder until part A merges: `identity::phone::normalise`.
pub fn phone(raw: &str) -> Option<String> {
    if raw.len() > 32 {
        return None;
    }
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let digits = compact
        .strip_prefix("+86")
        .or_else(|| compact.strip_prefix("0086"))
        .or_else(|| compact.strip_prefix("86").filter(|r| r.len() == 11))
        .unwrap_or(&compact);
    let ok = digits.len() == 11
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.starts_with('1')
        && digits.as_bytes().get(1).is_some_and(|d| (b'3'..=b'9').contains(d));
    ok.then(|| format!("+86{digits}"))
}

/// The characters of a USCC (GB 32100): digits and capitals without I, O, S, V, Z.
const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A unified social credit code (GB 32100-2015), upper-cased, with its check character and
/// the check character of the embedded organization code (GB 11714-1997) verified.
/// Placeholder until part A merges: `identity::uscc::check`.
pub fn uscc(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return None;
    }
    let values: Vec<u32> =
        chars.iter().map(|c| USCC_CHARS.find(*c).and_then(|i| u32::try_from(i).ok())).collect::<Option<_>>()?;
    // Registration authority (1-9, A-H, N, Y) and the six-digit administrative division code.
    if !chars.first().is_some_and(|c| "123456789ABCDEFGHNY".contains(*c)) {
        return None;
    }
    if !chars.get(2..8)?.iter().all(char::is_ascii_digit) {
        return None;
    }
    let mut sum = 0u32;
    let mut w = 1u32;
    for v in values.get(..17)? {
        sum += v * w;
        w = w * 3 % 31;
    }
    let check = (31 - sum % 31) % 31;
    if values.get(17) != Some(&check) {
        return None;
    }
    org_code_ok(chars.get(8..17)?).then_some(code)
}

/// GB 11714-1997: eight digits or capitals, then the check character (`0`-`9` or `X`).
fn org_code_ok(c: &[char]) -> bool {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let mut sum = 0;
    for (ch, w) in c.iter().zip(W) {
        let v = match ch.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        sum += v * w;
    }
    let expected = match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('?'),
    };
    c.get(8) == Some(&expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completes 16 characters (authority, category, division, 8 organization-code characters)
    /// into a valid USCC.
    pub(crate) fn make_uscc(prefix16: &str) -> String {
        const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
        let org: Vec<char> = prefix16[8..16].chars().collect();
        let s: u32 = org.iter().zip(W).map(|(c, w)| c.to_digit(36).unwrap() * w).sum();
        let oc = match 11 - s % 11 {
            10 => 'X',
            11 => '0',
            d => char::from_digit(d, 10).unwrap(),
        };
        let body = format!("{prefix16}{oc}");
        let (mut sum, mut w) = (0, 1);
        for c in body.chars() {
            sum += u32::try_from(USCC_CHARS.find(c).unwrap()).unwrap() * w;
            w = w * 3 % 31;
        }
        let check = USCC_CHARS.chars().nth(((31 - sum % 31) % 31) as usize).unwrap();
        format!("{body}{check}")
    }

    #[test]
    fn uscc_check_characters() {
        // GB 32100: a published example code.
        assert_eq!(uscc("91350100M000100Y43").as_deref(), Some("91350100M000100Y43"));
        let made = make_uscc("9111010810001234");
        assert_eq!(uscc(&made.to_lowercase()), Some(made.clone()));
        // One character changed: the check fails.
        let mut bad: Vec<char> = made.chars().collect();
        bad[10] = if bad[10] == '9' { '8' } else { '9' };
        assert_eq!(uscc(&bad.iter().collect::<String>()), None);
        for junk in ["", "91350100M000100Y4", "91350100M000100Y43X", "9135010OM000100Y43", "中文"] {
            assert_eq!(uscc(junk), None, "{junk}");
        }
    }

    #[test]
    fn phones_normalise_to_plus_86() {
        for ok in ["13800138000", "+86 138 0013 8000", "86-138-0013-8000", "008613800138000"] {
            assert_eq!(phone(ok).as_deref(), Some("+8613800138000"), "{ok}");
        }
        for bad in ["", "1380013800", "12800138000", "+1 415 555 0100", "1380013800a", &"1".repeat(40)] {
            assert_eq!(phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(name("  张三 ", MAX_NAME).as_deref(), Some("张三"));
        assert_eq!(name("", MAX_NAME), None);
        assert_eq!(name(&"x".repeat(65), MAX_NAME), None);
        assert_eq!(name("a\u{0}b", MAX_NAME), None);
    }
}
