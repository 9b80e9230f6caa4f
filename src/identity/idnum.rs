//! Identity document numbers (HL-5.1): the resident ID card's GB 11643 check digit, region and
//! birth date, and the format checks of passports and the Hong Kong/Macao and Taiwan permits.
//! [`check`] returns the normalised number (the form sealed and blind-indexed); [`mask`] shows it.

use super::IdType;

/// The longest input looked at: anything longer is refused before it is parsed.
pub const MAX_INPUT: usize = 64;

/// Why an identity document number was refused. The messages never repeat the number (SH-8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing was given.
    #[error("the ID number is empty")]
    Empty,
    /// Longer than [`MAX_INPUT`] bytes.
    #[error("the ID number is too long")]
    TooLong,
    /// A character that no document of this type uses.
    #[error("the ID number contains characters this document type does not use")]
    BadChars,
    /// Wrong length for the document type (a 15-digit first-generation card included).
    #[error("the ID number has the wrong length for this document type")]
    BadLength,
    /// The resident ID card's first two digits are no province, region or permit code.
    #[error("the ID number's region code does not exist")]
    BadRegion,
    /// The resident ID card's birth date (digits 7-14) is no date between 1900 and 2099.
    #[error("the ID number's birth date is not a valid date")]
    BadBirthDate,
    /// The resident ID card's 18th character is not its GB 11643 check digit.
    #[error("the ID number's check digit is wrong")]
    BadCheckDigit,
    /// The number does not have this document type's shape.
    #[error("the ID number does not have this document type's format")]
    BadFormat,
}

/// Checks `raw` as a number of document type `ty` and returns its normalised form: surrounding
/// whitespace removed and letters upper-cased (`x` -> `X`; the old Taiwan permit's parentheses
/// dropped).
pub fn check(ty: IdType, raw: &str) -> Result<String, IdError> {
    if raw.len() > MAX_INPUT {
        return Err(IdError::TooLong);
    }
    let s = raw.trim().to_ascii_uppercase();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if !s.is_ascii() {
        return Err(IdError::BadChars);
    }
    match ty {
        IdType::ResidentIdCard => resident(&s).map(|()| s),
        IdType::Passport => passport(&s).map(|()| s),
        IdType::HkMacaoPermit => hk_macao(&s).map(|()| s),
        IdType::TaiwanPermit => taiwan(&s),
    }
}

/// GB 11643 weights of the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// GB 11643 check characters, indexed by the weighted sum modulo 11.
const CHECK: [u8; 11] = *b"10X98765432";

/// The GB 11643 check character of 17 digits; `None` when they are not 17 ASCII digits.
pub fn gb11643_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    CHECK.get((sum % 11) as usize).map(|&c| char::from(c))
}

/// Province-level codes (GB/T 2260) and the codes of residence permits for Hong Kong (81),
/// Macao (82) and Taiwan (83) residents, which use the same number format.
const REGIONS: [u32; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82, 83,
];

fn resident(s: &str) -> Result<(), IdError> {
    let bytes = s.as_bytes();
    let Some((&last, first17)) = bytes.split_last() else {
        return Err(IdError::Empty);
    };
    if !first17.iter().all(u8::is_ascii_digit) || !(last.is_ascii_digit() || last == b'X') {
        return Err(IdError::BadChars);
    }
    if bytes.len() != 18 {
        return Err(IdError::BadLength);
    }
    let region = digits(s.get(0..2)).ok_or(IdError::BadChars)?;
    if !REGIONS.contains(&region) {
        return Err(IdError::BadRegion);
    }
    let (y, m, d) = (digits(s.get(6..10)), digits(s.get(10..12)), digits(s.get(12..14)));
    match (y, m, d) {
        (Some(y), Some(m), Some(d)) if (1900..=2099).contains(&y) && valid_date(y, m, d) => {}
        _ => return Err(IdError::BadBirthDate),
    }
    let expected = s.get(0..17).and_then(gb11643_check_char);
    if expected != Some(char::from(last)) {
        return Err(IdError::BadCheckDigit);
    }
    Ok(())
}

fn digits(s: Option<&str>) -> Option<u32> {
    s.filter(|s| s.bytes().all(|b| b.is_ascii_digit())).and_then(|s| s.parse().ok())
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// Passports of any country: 5 to 17 letters and digits, at least one digit (ICAO 9303 allows
/// up to 9 characters in the machine-readable zone; some countries' printed numbers are longer).
fn passport(s: &str) -> Result<(), IdError> {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(IdError::BadChars);
    }
    if !(5..=17).contains(&s.len()) {
        return Err(IdError::BadLength);
    }
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return Err(IdError::BadFormat);
    }
    Ok(())
}

/// Mainland travel permit for Hong Kong and Macao residents: `H` (Hong Kong) or `M` (Macao)
/// and 8 digits (the card issued since 2013) or 10 digits (the earlier booklet).
fn hk_macao(s: &str) -> Result<(), IdError> {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(IdError::BadChars);
    }
    let Some(rest) = s.strip_prefix('H').or_else(|| s.strip_prefix('M')) else {
        return Err(IdError::BadFormat);
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::BadFormat);
    }
    if rest.len() != 8 && rest.len() != 10 {
        return Err(IdError::BadLength);
    }
    Ok(())
}

/// Mainland travel permit for Taiwan residents: 8 digits (the card issued since 2015), or the
/// earlier booklet's 8 digits and a 1-2 character suffix, written with or without parentheses
/// (`12345678(B)` is normalised to `12345678B`).
fn taiwan(s: &str) -> Result<String, IdError> {
    let (head, tail) = match s.find('(') {
        Some(open) => {
            let inner = s.get(open + 1..).and_then(|r| r.strip_suffix(')')).ok_or(IdError::BadFormat)?;
            let head = s.get(..open).unwrap_or_default();
            if head.len() != 8 || !(1..=2).contains(&inner.len()) {
                return Err(IdError::BadFormat);
            }
            (head, inner)
        }
        None => (s.get(..8.min(s.len())).unwrap_or_default(), s.get(8..).unwrap_or_default()),
    };
    if !head.bytes().chain(tail.bytes()).all(|b| b.is_ascii_alphanumeric()) {
        return Err(IdError::BadChars);
    }
    if head.len() != 8 || tail.len() > 2 {
        return Err(IdError::BadLength);
    }
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::BadFormat);
    }
    Ok(format!("{head}{tail}"))
}

/// Masks an identity document number for display (SH-8.2): `110***********1234` for an
/// 18-character number (first 3 and last 4 shown); shorter numbers show less (`E******78`).
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        12.. => (3, 4),
        7..=11 => (1, 2),
        2..=6 => (0, 1),
        _ => (0, 0),
    };
    let mut out: String = chars.iter().take(head).collect();
    out.push_str(&"*".repeat(n - head - tail));
    out.extend(chars.iter().skip(n - tail));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdType::*;

    #[test]
    fn resident_id_cards_with_a_right_check_digit_pass() {
        // GB 11643-1999 Appendix example, and numbers computed by the standard's weights.
        for ok in [
            "11010519491231002X",
            "440304199001011233",
            "110101200002290018",
            "650101198001010016",
            "810000199001010019",
            "410101197001014560",
        ] {
            assert_eq!(check(ResidentIdCard, ok).as_deref(), Ok(ok), "{ok}");
        }
        // Lower-case x and surrounding whitespace are normalised.
        assert_eq!(check(ResidentIdCard, " 11010519491231002x\n").as_deref(), Ok("11010519491231002X"));
    }

    #[test]
    fn resident_id_cards_are_refused_for_the_right_reason() {
        use IdError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("110105194912310021", BadCheckDigit),
            ("11010519491231002Y", BadChars),
            ("1101051949123100X2", BadChars),
            ("110105194912310", BadLength),     // first-generation 15-digit card
            ("1101051949123100201", BadLength), // 19 digits
            ("110105 19491231002X", BadChars),  // inner space
            ("１１０１０５１９４９１２３１００２Ｘ", BadChars), // full-width digits
            ("000105194912310028", BadRegion),
            ("990105194912310020", BadRegion),
            ("110101190002290013", BadBirthDate), // 1900 was no leap year
            ("110101200013010012", BadBirthDate),
            ("110101189912310012", BadBirthDate),
            ("110101199002300019", BadBirthDate),
        ];
        for (input, want) in cases {
            assert_eq!(check(ResidentIdCard, input), Err(want), "{input:?}");
        }
        assert_eq!(check(ResidentIdCard, &"1".repeat(65)), Err(TooLong));
    }

    #[test]
    fn check_char_matches_the_standard() {
        assert_eq!(gb11643_check_char("11010519491231002"), Some('X'));
        assert_eq!(gb11643_check_char("44030419900101123"), Some('3'));
        assert_eq!(gb11643_check_char("4403041990010112"), None);
        assert_eq!(gb11643_check_char("4403041990010112A"), None);
        // Every one of the 11 check characters is reachable.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200u32 {
            seen.insert(gb11643_check_char(&format!("110101199001{i:05}")));
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn passports() {
        for ok in ["E12345678", "EA1234567", "G12345678", "p1234567", "123456789", "K0123456789ABCDEF"] {
            assert!(check(Passport, ok).is_ok(), "{ok}");
        }
        assert_eq!(check(Passport, "e12345678").as_deref(), Ok("E12345678"));
        assert_eq!(check(Passport, "E1234"), Ok("E1234".into()));
        assert_eq!(check(Passport, "E123"), Err(IdError::BadLength));
        assert_eq!(check(Passport, "E1234567890123456X"), Err(IdError::BadLength));
        assert_eq!(check(Passport, "ABCDEFGHI"), Err(IdError::BadFormat));
        assert_eq!(check(Passport, "E1234-5678"), Err(IdError::BadChars));
        assert_eq!(check(Passport, "E1234 5678"), Err(IdError::BadChars));
    }

    #[test]
    fn hong_kong_and_macao_permits() {
        for ok in ["H12345678", "M12345678", "H1234567890", "h12345678"] {
            assert!(check(HkMacaoPermit, ok).is_ok(), "{ok}");
        }
        assert_eq!(check(HkMacaoPermit, "m87654321").as_deref(), Ok("M87654321"));
        assert_eq!(check(HkMacaoPermit, "X12345678"), Err(IdError::BadFormat));
        assert_eq!(check(HkMacaoPermit, "12345678"), Err(IdError::BadFormat));
        assert_eq!(check(HkMacaoPermit, "H1234567"), Err(IdError::BadLength));
        assert_eq!(check(HkMacaoPermit, "H123456789"), Err(IdError::BadLength));
        assert_eq!(check(HkMacaoPermit, "H1234567A"), Err(IdError::BadFormat));
        assert_eq!(check(HkMacaoPermit, "H1234_678"), Err(IdError::BadChars));
    }

    #[test]
    fn taiwan_permits() {
        assert_eq!(check(TaiwanPermit, "12345678").as_deref(), Ok("12345678"));
        assert_eq!(check(TaiwanPermit, "1234567890").as_deref(), Ok("1234567890"));
        assert_eq!(check(TaiwanPermit, "12345678(b)").as_deref(), Ok("12345678B"));
        assert_eq!(check(TaiwanPermit, "12345678B").as_deref(), Ok("12345678B"));
        assert_eq!(check(TaiwanPermit, "1234567"), Err(IdError::BadLength));
        assert_eq!(check(TaiwanPermit, "A2345678"), Err(IdError::BadFormat));
        assert_eq!(check(TaiwanPermit, "12345678901"), Err(IdError::BadLength));
        assert_eq!(check(TaiwanPermit, "12345678()"), Err(IdError::BadFormat));
        assert_eq!(check(TaiwanPermit, "(12345678)"), Err(IdError::BadFormat));
        assert_eq!(check(TaiwanPermit, "1234-5678"), Err(IdError::BadChars));
        assert_eq!(check(TaiwanPermit, "12345678(B"), Err(IdError::BadFormat));
        assert_eq!(check(TaiwanPermit, "12345678(ABC)"), Err(IdError::BadFormat));
    }

    #[test]
    fn every_type_refuses_empty_and_over_long_input() {
        for ty in [ResidentIdCard, Passport, HkMacaoPermit, TaiwanPermit] {
            assert_eq!(check(ty, ""), Err(IdError::Empty));
            assert_eq!(check(ty, &"9".repeat(MAX_INPUT + 1)), Err(IdError::TooLong));
            assert_eq!(check(ty, "身份证号码"), Err(IdError::BadChars));
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask("11010519491231002X"), "110***********002X");
        assert_eq!(mask("110105194912311234"), "110***********1234");
        assert_eq!(mask("E12345678"), "E******78");
        assert_eq!(mask("12345"), "****5");
        assert_eq!(mask("1"), "*");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn errors_never_repeat_the_number() {
        let e = check(ResidentIdCard, "110105194912310021").unwrap_err();
        assert!(!e.to_string().contains("110105"));
    }
}
