//! Mainland China mobile numbers (SH-8.2): normalised to one stored form, `+86` and 11 digits
//! (E.164, as the `phone_number` claim wants it), so the sealed value and its blind index agree
//! however the number was typed; masked as `138****5678` when shown.

/// The longest input looked at: anything longer is refused before it is parsed.
pub const MAX_INPUT: usize = 32;

/// Why a phone number was refused. The messages never repeat the number (SH-8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing was given.
    #[error("the phone number is empty")]
    Empty,
    /// Longer than [`MAX_INPUT`] bytes.
    #[error("the phone number is too long")]
    TooLong,
    /// Not a mainland China mobile number (11 digits starting 13-19, optionally after +86).
    #[error("the phone number is not a mainland China mobile number (11 digits starting 13-19, optionally +86)")]
    NotMainlandMobile,
}

/// Normalises a mainland mobile number to `+86` and its 11 digits. Accepted: the 11 digits,
/// optionally after `+86`, `0086` or `86`, with spaces, hyphens or a parenthesised `(+86)`
/// between groups (`+86 138-1234-5678`, `(+86)13812345678`).
pub fn normalise(raw: &str) -> Result<String, PhoneError> {
    if raw.len() > MAX_INPUT {
        return Err(PhoneError::TooLong);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    let mut s = String::with_capacity(16);
    for (i, c) in trimmed.char_indices() {
        match c {
            '0'..='9' => s.push(c),
            '+' if s.is_empty() && i <= 1 => s.push(c),
            ' ' | '-' | '(' | ')' => {}
            _ => return Err(PhoneError::NotMainlandMobile),
        }
    }
    let national = s
        .strip_prefix("+86")
        .or_else(|| s.strip_prefix("0086"))
        .or_else(|| s.strip_prefix("86").filter(|r| r.len() == 11))
        .unwrap_or(&s);
    let b = national.as_bytes();
    let ok = b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b.first() == Some(&b'1')
        && b.get(1).is_some_and(|d| (b'3'..=b'9').contains(d));
    if !ok {
        return Err(PhoneError::NotMainlandMobile);
    }
    Ok(format!("+86{national}"))
}

/// Masks a phone number for display (SH-8.2): a mainland mobile (normalised or not) as
/// `138****5678`; anything else through [`crate::sealing::mask_phone`].
pub fn mask(phone: &str) -> String {
    match normalise(phone).ok().as_deref().and_then(|n| n.strip_prefix("+86")) {
        Some(national) => {
            format!("{}****{}", national.get(..3).unwrap_or_default(), national.get(7..).unwrap_or_default())
        }
        None => crate::sealing::mask_phone(phone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form_of_a_mobile_normalises_to_one() {
        for input in [
            "13812345678",
            " 13812345678 ",
            "+8613812345678",
            "+86 138 1234 5678",
            "+86-138-1234-5678",
            "(+86)13812345678",
            "008613812345678",
            "8613812345678",
            "138-1234-5678",
        ] {
            assert_eq!(normalise(input).as_deref(), Ok("+8613812345678"), "{input:?}");
        }
        for ok in ["13000000000", "14700000000", "19912345678", "16612345678"] {
            assert!(normalise(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn what_is_no_mainland_mobile_is_refused() {
        use PhoneError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("1381234567", NotMainlandMobile),   // 10 digits
            ("138123456789", NotMainlandMobile), // 12 digits
            ("12812345678", NotMainlandMobile),  // 12x is no mobile range
            ("23812345678", NotMainlandMobile),
            ("010-12345678", NotMainlandMobile), // a landline
            ("+85291234567", NotMainlandMobile), // Hong Kong
            ("+1 415 555 0100", NotMainlandMobile),
            ("1381234567a", NotMainlandMobile),
            ("138 1234 5678 ext 1", NotMainlandMobile),
            ("13812+345678", NotMainlandMobile),
            ("１３８１２３４５６７", NotMainlandMobile), // full-width digits
            ("86 86 13812345678", NotMainlandMobile),
        ];
        for (input, want) in cases {
            assert_eq!(normalise(input), Err(want), "{input:?}");
        }
        assert_eq!(normalise(&"1".repeat(MAX_INPUT + 1)), Err(TooLong));
    }

    #[test]
    fn masking() {
        assert_eq!(mask("+8613812345678"), "138****5678");
        assert_eq!(mask("138 1234 5678"), "138****5678");
        assert_eq!(mask("+1 415 555 0100"), "+1 ******0100");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn errors_never_repeat_the_number() {
        assert!(!normalise("1381234567").unwrap_err().to_string().contains("138"));
    }
}
