//! The built-in verifier: formats and check digits only (GB 11643 for resident ID cards). It
//! cannot know whether the person exists, so it is for development and demonstrations; a
//! production platform configures the real-name service (`verify.verifier = "http"`).

use super::{Checked, Claim, Verdict, Verifier, VerifyError};
use crate::identity::IdType;

/// Formats and check digits only.
pub struct Builtin {
    /// Recorded as who verified.
    pub name: String,
}

#[async_trait::async_trait]
impl Verifier for Builtin {
    fn name(&self) -> &str {
        &self.name
    }
    async fn verify(&self, claim: &Claim<'_>) -> Result<Checked, VerifyError> {
        check(claim.id_type, claim.id_number)?;
        Ok(Checked { verdict: Verdict::Match, billed: false, calls: 0 })
    }
}

/// The normalised number (upper-cased, spaces removed) when its format and check digit are
/// right for `id_type`.
// placeholder until part A merges: then this calls `identity::idnum::check(IdType, &str)`.
pub fn check(id_type: IdType, raw: &str) -> Result<String, VerifyError> {
    let n: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let all = |f: fn(&u8) -> bool, s: &str| s.as_bytes().iter().all(f);
    let ok = match id_type {
        IdType::ResidentIdCard => resident_ok(&n),
        IdType::Passport => (5..=17).contains(&n.len()) && all(u8::is_ascii_alphanumeric, &n),
        IdType::HkMacaoPermit => {
            matches!(n.as_bytes().first(), Some(b'H' | b'M'))
                && matches!(n.len(), 9 | 11)
                && all(u8::is_ascii_digit, n.get(1..).unwrap_or_default())
        }
        IdType::TaiwanPermit => matches!(n.len(), 8 | 10) && all(u8::is_ascii_digit, &n),
    };
    if ok { Ok(n) } else { Err(VerifyError::Malformed("the ID number is not valid for this document type")) }
}

/// GB 11643-1999: 17 digits (region, birth date, sequence) and a check character, the weighted
/// sum of the digits modulo 11 mapped through `10X98765432`.
fn resident_ok(n: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = n.as_bytes();
    let Some((last, body)) = b.split_last() else { return false };
    if b.len() != 18 || !body.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let month = n.get(10..12).and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    let day = n.get(12..14).and_then(|d| d.parse::<u32>().ok()).unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK.get((sum % 11) as usize) == Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_check_digit() {
        // GB 11643-1999 example: 11010519491231002X.
        assert_eq!(check(IdType::ResidentIdCard, "11010519491231002x").unwrap(), "11010519491231002X");
        assert!(check(IdType::ResidentIdCard, "110105194912310021").is_err());
        assert!(check(IdType::ResidentIdCard, "110105194913310028").is_err());
        assert!(check(IdType::ResidentIdCard, "1101051949").is_err());
        assert!(check(IdType::HkMacaoPermit, "H12345678").is_ok());
        assert!(check(IdType::HkMacaoPermit, "X12345678").is_err());
        assert!(check(IdType::Passport, "E12345678").is_ok());
        assert!(check(IdType::Passport, "E1-345678").is_err());
    }
}
