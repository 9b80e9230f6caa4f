//! Who a principal is (HL-5.1, HL-6.1): natural persons (自然人, [`crate::users::User`]) and legal
//! persons (法人, [`legal::LegalPerson`]), their identity documents, and how well each one is known
//! (assurance levels, released as `acr` and `auth_level`).

pub mod acting;
pub mod claims;
pub mod idnum;
pub mod legal;
pub mod legal_records;
pub mod names;
pub mod persons;
pub mod phone;
pub mod records;
pub mod subject;
pub mod uscc;

use serde::{Deserialize, Serialize};

/// The two kinds of principal (HL-5.1), released as the `user_type` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A natural person (自然人): logs in as themselves.
    NaturalPerson,
    /// A legal person (法人): never logs in itself; an authorized agent acts for it.
    LegalPerson,
}

impl PrincipalKind {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NaturalPerson => "natural_person",
            Self::LegalPerson => "legal_person",
        }
    }
}

/// A natural person's identity document type, released as `id_type` (scope `idcard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// Resident identity card of the PRC (居民身份证, GB 11643 check digit): the default.
    ResidentIdCard,
    /// Passport.
    Passport,
    /// Mainland travel permit for Hong Kong and Macao residents (港澳居民来往内地通行证).
    HkMacaoPermit,
    /// Mainland travel permit for Taiwan residents (台湾居民来往大陆通行证).
    TaiwanPermit,
}

impl IdType {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentIdCard => "resident_id_card",
            Self::Passport => "passport",
            Self::HkMacaoPermit => "hk_macao_permit",
            Self::TaiwanPermit => "taiwan_permit",
        }
    }
}

/// How well a principal is known (HL-6.1), ordered from least to most. Released as `acr`
/// (the level's number as a string, listed in discovery's `acr_values_supported`) and as
/// `auth_level` (its name).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceLevel {
    /// An ordinary visitor (普通访客): an account whose identity nobody checked.
    Visitor,
    /// Registered (注册用户): an account whose phone (or e-mail) was proven by a one-time code.
    #[default]
    Registered,
    /// Real-name verified (实名认证): name and ID number confirmed by a real-name service.
    RealName,
    /// Verified with a stronger factor (face or in-person verification, recorded by an admin).
    Strong,
}

impl AssuranceLevel {
    /// Every level, lowest first.
    pub const ALL: [Self; 4] = [Self::Visitor, Self::Registered, Self::RealName, Self::Strong];

    /// The `acr` value (OIDC Core s2): `"0"` to `"3"`.
    pub fn acr(self) -> &'static str {
        match self {
            Self::Visitor => "0",
            Self::Registered => "1",
            Self::RealName => "2",
            Self::Strong => "3",
        }
    }

    /// The `auth_level` claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Registered => "registered",
            Self::RealName => "real_name",
            Self::Strong => "strong",
        }
    }

    /// The level an `acr` value or `auth_level` name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.acr() == s || l.as_str() == s)
    }
}

/// How a principal's identity was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMethod {
    /// A phone (or e-mail) one-time code at registration.
    OneTimeCode,
    /// The configured real-name service matched name and ID number.
    RealNameService,
    /// Face verification, recorded by an admin.
    Face,
    /// Verified in person at a counter, recorded by an admin.
    InPerson,
}

/// The record of a verification: what level it reached, how, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verification {
    /// The level reached.
    pub level: AssuranceLevel,
    /// How.
    pub method: VerifyMethod,
    /// Who: the verifier's name (`builtin`, the service's name) or the admin client id.
    pub by: String,
    /// When (unix seconds).
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse_both_ways() {
        assert!(AssuranceLevel::Visitor < AssuranceLevel::Registered);
        assert!(AssuranceLevel::RealName < AssuranceLevel::Strong);
        for l in AssuranceLevel::ALL {
            assert_eq!(AssuranceLevel::parse(l.acr()), Some(l));
            assert_eq!(AssuranceLevel::parse(l.as_str()), Some(l));
        }
        assert_eq!(AssuranceLevel::parse("9"), None);
    }
}
