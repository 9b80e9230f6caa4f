//! The built-in verifier: formats and check digits only (GB 11643 for resident ID cards, through
//! [`crate::identity::idnum`]). It
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

/// The normalised number when its format (and, for resident ID cards, region, birth date and
/// GB 11643 check digit) is right for `id_type`: part A's [`crate::identity::idnum::check`].
pub fn check(id_type: IdType, raw: &str) -> Result<String, VerifyError> {
    crate::identity::idnum::check(id_type, raw)
        .map_err(|_| VerifyError::Malformed("the ID number is not valid for this document type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked_and_normalised() {
        // GB 11643-1999 example: 11010519491231002X.
        assert_eq!(check(IdType::ResidentIdCard, " 11010519491231002x").unwrap(), "11010519491231002X");
        assert!(check(IdType::ResidentIdCard, "110105194912310021").is_err());
        assert!(check(IdType::Passport, "E1-345678").is_err());
    }
}
