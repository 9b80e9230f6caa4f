//! Unified social credit codes (统一社会信用代码, GB 32100-2015) of legal persons (HL-5.1): the
//! 18th check character and the embedded 9-character organization code's own check (GB 11714).

/// The longest input looked at: anything longer is refused before it is parsed.
pub const MAX_INPUT: usize = 64;

/// Why a unified social credit code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Nothing was given.
    #[error("the unified social credit code is empty")]
    Empty,
    /// Longer than [`MAX_INPUT`] bytes.
    #[error("the unified social credit code is too long")]
    TooLong,
    /// Not 18 characters.
    #[error("a unified social credit code has 18 characters")]
    BadLength,
    /// A character outside GB 32100's 31 (digits and upper-case letters but I, O, S, V, Z).
    #[error("the unified social credit code contains a character GB 32100 does not use")]
    BadChars,
    /// Characters 3-8 (the administrative division code) are not digits.
    #[error("the unified social credit code's division code (characters 3-8) must be digits")]
    BadDivision,
    /// Characters 9-17 fail the organization code's GB 11714 check.
    #[error("the unified social credit code's embedded organization code fails its check")]
    BadOrgCode,
    /// The 18th character is not the GB 32100 check character.
    #[error("the unified social credit code's check character is wrong")]
    BadCheck,
}

/// GB 32100's character set; a character's value is its index.
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights of the first 17 characters (3^i mod 31).
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// GB 11714 weights of the organization code's first 8 characters.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Checks a unified social credit code and returns it normalised (trimmed, upper-cased).
pub fn check(raw: &str) -> Result<String, UsccError> {
    if raw.len() > MAX_INPUT {
        return Err(UsccError::TooLong);
    }
    let s = raw.trim().to_ascii_uppercase();
    if s.is_empty() {
        return Err(UsccError::Empty);
    }
    let values: Vec<u32> = s.bytes().map(value).collect::<Option<_>>().ok_or(UsccError::BadChars)?;
    if values.len() != 18 {
        return Err(UsccError::BadLength);
    }
    if !s.get(2..8).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) {
        return Err(UsccError::BadDivision);
    }
    let org = s.get(8..17).ok_or(UsccError::BadLength)?;
    if !org_code_ok(org) {
        return Err(UsccError::BadOrgCode);
    }
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let expected = (31 - sum % 31) % 31;
    if values.get(17) != Some(&expected) {
        return Err(UsccError::BadCheck);
    }
    Ok(s)
}

fn value(b: u8) -> Option<u32> {
    CHARSET.iter().position(|&c| c == b).and_then(|i| u32::try_from(i).ok())
}

/// Whether 9 characters are an organization code with a right GB 11714 check character
/// (digits count as themselves, letters A-Z as 10-35; check `11 - sum mod 11`, 10 -> `X`,
/// 11 -> `0`).
pub fn org_code_ok(code: &str) -> bool {
    let bytes = code.as_bytes();
    let Some((&last, body)) = bytes.split_last() else {
        return false;
    };
    if body.len() != 8 {
        return false;
    }
    let mut sum = 0;
    for (&b, w) in body.iter().zip(ORG_WEIGHTS) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        sum += v * w;
    }
    let expected = match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        n => b'0' + u8::try_from(n).unwrap_or(0),
    };
    last == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_pass_and_are_normalised() {
        // Published examples and codes computed by the standard's weights, across registration
        // authorities (1 编制, 5 民政, 9 工商, Y other) and org codes with letters and an X check.
        for ok in [
            "91350100M000100Y43",
            "91110000600037341L",
            "91110108551385816B",
            "12100000400001205Y",
            "5111000050001234XG",
            "91440300MA5D8H7E7N",
            "Y1110000ABCDEFGH5H",
            "92330100MA2AXY0X2W",
        ] {
            assert_eq!(check(ok).as_deref(), Ok(ok), "{ok}");
        }
        assert_eq!(check(" 91350100m000100y43 ").as_deref(), Ok("91350100M000100Y43"));
    }

    #[test]
    fn invalid_codes_are_refused_for_the_right_reason() {
        use UsccError::*;
        let cases = [
            ("", Empty),
            ("  ", Empty),
            ("91350100M000100Y4", BadLength),
            ("91350100M000100Y433", BadLength),
            ("91350100M000100Y44", BadCheck),
            ("91110000600037341K", BadCheck),
            ("91350100M000100Y4I", BadChars), // I is not in the set
            ("9135010OM000100Y43", BadChars), // letter O for zero
            ("91350100M000100Y4-", BadChars),
            ("9135A100M000100Y43", BadDivision),
            ("91350100M000100X43", BadOrgCode), // org code check wrong, rest recomputed below
            ("913501 0M000100Y43", BadChars),
            ("９１３５０１００Ｍ０００１００Ｙ４３", BadChars),
        ];
        for (input, want) in cases {
            assert_eq!(check(input), Err(want), "{input:?}");
        }
        assert_eq!(check(&"9".repeat(65)), Err(TooLong));
    }

    #[test]
    fn a_right_outer_check_does_not_save_a_wrong_org_code() {
        // Org code 55138581 with check 7 instead of 6, outer check recomputed to match.
        let body = "91110108551385817";
        let sum: u32 = body.bytes().map(|b| value(b).unwrap()).zip(WEIGHTS).map(|(v, w)| v * w).sum();
        let c = char::from(CHARSET[((31 - sum % 31) % 31) as usize]);
        assert_eq!(check(&format!("{body}{c}")), Err(UsccError::BadOrgCode));
    }

    #[test]
    fn organization_codes() {
        assert!(org_code_ok("M000100Y4"));
        assert!(org_code_ok("600037341"));
        assert!(org_code_ok("50001234X"));
        assert!(!org_code_ok("600037342"));
        assert!(!org_code_ok("60003734"));
        assert!(!org_code_ok("60003734a"));
        assert!(!org_code_ok(""));
    }
}
