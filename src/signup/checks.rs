//! What the registration forms accept: names, organization kinds, and (through
//! [`crate::identity::phone`] and [`crate::identity::uscc`]) the mainland mobile number and the
//! unified social credit code.

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

/// A mainland mobile number, normalised to `+86` and 11 digits (part A's rules).
pub fn phone(raw: &str) -> Option<String> {
    crate::identity::phone::normalise(raw).ok()
}

/// A unified social credit code (GB 32100, with the embedded GB 11714 organization code),
/// trimmed and upper-cased (part A's rules).
pub fn uscc(raw: &str) -> Option<String> {
    crate::identity::uscc::check(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_and_phone_delegate() {
        // GB 32100: a published example code.
        assert_eq!(uscc(" 91350100m000100y43 ").as_deref(), Some("91350100M000100Y43"));
        assert_eq!(uscc("91350100M000100Y44"), None);
        assert_eq!(phone("+86 138 0013 8000").as_deref(), Some("+8613800138000"));
        assert_eq!(phone("12800138000"), None);
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(name("  张三 ", MAX_NAME).as_deref(), Some("张三"));
        assert_eq!(name("", MAX_NAME), None);
        assert_eq!(name(&"x".repeat(65), MAX_NAME), None);
        assert_eq!(name("a\u{0}b", MAX_NAME), None);
        assert_eq!(org_kind("enterprise"), Some(OrgKind::Enterprise));
        assert_eq!(org_kind("spaceship"), None);
    }
}
