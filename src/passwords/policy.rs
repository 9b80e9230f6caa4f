//! The password policy for every password a person sets (admin API, sign-up, change, reset):
//! at least [`MIN_CHARS`] characters and at most [`MAX_BYTES`] bytes, not too repetitive, and not
//! on the embedded forbidden-common list, whole or by its base (NIST SP 800-63B s5.1.1.2: length
//! and a blocklist instead of composition rules).

/// Fewest characters (Unicode scalar values) in a password.
pub const MIN_CHARS: usize = 12;
/// Most bytes in a password (bounds the hashing input).
pub const MAX_BYTES: usize = 256;
/// Fewest distinct characters ("aaaaaaaaaaab" is refused).
pub const MIN_DISTINCT: usize = 5;

/// The embedded list (`src/passwords/common.txt`).
const COMMON: &str = include_str!("common.txt");

/// Why a password is refused; the text is what the person is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Shorter than [`MIN_CHARS`].
    #[error("password must have at least 12 characters")]
    TooShort,
    /// Longer than [`MAX_BYTES`].
    #[error("password must have at most 256 bytes")]
    TooLong,
    /// Fewer than [`MIN_DISTINCT`] different characters.
    #[error("password is too repetitive")]
    Repetitive,
    /// On the forbidden-common list, whole or by its base.
    #[error("password is too common; choose one that is not a well-known password")]
    Common,
}

fn common() -> impl Iterator<Item = &'static str> {
    COMMON.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The password without leading and trailing digits and symbols, lowercased.
fn base(lower: &str) -> &str {
    lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace())
}

/// Checks `password` against the policy.
pub fn check(password: &str) -> Result<(), PolicyError> {
    if password.len() > MAX_BYTES {
        return Err(PolicyError::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT {
        return Err(PolicyError::Repetitive);
    }
    let lower = password.to_lowercase();
    let b = base(&lower);
    if common().any(|c| c == lower || c == b) || b.is_empty() {
        return Err(PolicyError::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // NIST SP 800-63B s5.1.1.2: length, and a blocklist of common passwords.
    #[test]
    fn policy() {
        assert_eq!(check("short-pass1"), Err(PolicyError::TooShort));
        assert_eq!(check(&"x".repeat(257)), Err(PolicyError::TooLong));
        assert_eq!(check("aaaaaaaaaaab"), Err(PolicyError::Repetitive));
        assert_eq!(check("123456789012"), Err(PolicyError::Common), "whole, digits only");
        assert_eq!(check("Password2026!"), Err(PolicyError::Common), "base 'password'");
        assert_eq!(check("2026WoAiNi1314!"), Err(PolicyError::Common), "base 'woaini1314'");
        assert_eq!(check("1qaz@WSX3edc"), Err(PolicyError::Common), "keyboard walk, any case");
        assert_eq!(check("@@@###123456"), Err(PolicyError::Common), "no letters at all");
        assert_eq!(check("correct horse battery"), Ok(()));
        assert_eq!(check("统一身份认证平台的密码"), Err(PolicyError::TooShort), "11 characters");
        assert_eq!(check("统一身份认证平台的好密码"), Ok(()), "12 characters, counted as characters");
        assert_eq!(check("li-si-password-2026"), Ok(()));
    }

    #[test]
    fn list_is_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in common() {
            assert_eq!(c, c.to_lowercase(), "{c}");
            assert!(seen.insert(c), "duplicate {c}");
        }
        assert!(seen.len() >= 120, "{}", seen.len());
    }
}
