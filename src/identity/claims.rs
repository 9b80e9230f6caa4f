//! The one place that decides which claims a token's scopes release (OIDC Core s5.4, SH-8.2,
//! HL-5.1, HL-6.1), for each place they are released: `/userinfo`, the ID token and
//! introspection. [`RULES`] is the table the README shows; [`release`] follows it.

use serde_json::{Map, Value, json};

use super::legal::LegalPerson;
use super::{AssuranceLevel, PrincipalKind};
use crate::sealing::DataKey;
use crate::users::User;

/// Where claims are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The UserInfo endpoint (OIDC Core s5.3).
    UserInfo,
    /// The ID token (OIDC Core s2), beside its protocol claims.
    IdToken,
    /// Token introspection (RFC 7662 s2.2), beside its protocol members.
    Introspection,
}

/// One row of the claims table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The claim name.
    pub claim: &'static str,
    /// The scope that releases it; `None`: released whenever the place is (`openid` for
    /// UserInfo and the ID token).
    pub scope: Option<&'static str>,
    /// Whether its scope is a sensitive one (SH-8.2: released only with the person's consent).
    pub sensitive: bool,
    /// Which kind of subject has it.
    pub of: Of,
    /// Released at `/userinfo`.
    pub userinfo: bool,
    /// Released in the ID token.
    pub id_token: bool,
    /// Released by introspection.
    pub introspection: bool,
    /// What it holds.
    pub about: &'static str,
}

/// Which subjects a claim exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Of {
    /// Both kinds.
    Any,
    /// Natural persons only.
    Natural,
    /// Legal persons only (an agent acting for one).
    Legal,
}

impl Of {
    fn as_str(self) -> &'static str {
        match self {
            Self::Any => "both",
            Self::Natural => "natural person",
            Self::Legal => "legal person",
        }
    }
}

const fn rule(
    claim: &'static str,
    scope: Option<&'static str>,
    sensitive: bool,
    of: Of,
    places: [bool; 3],
    about: &'static str,
) -> Rule {
    let [userinfo, id_token, introspection] = places;
    Rule { claim, scope, sensitive, of, userinfo, id_token, introspection, about }
}

const ALL: [bool; 3] = [true, true, true];
const UI: [bool; 3] = [true, false, false];

/// The claims table (the README's "Claims released by scope" mirrors it; a test checks).
/// `sub`, `acr` and `act` are also protocol claims of the access token.
pub const RULES: &[Rule] = &[
    rule(
        "sub",
        None,
        false,
        Of::Any,
        ALL,
        "subject: the user's id, or the legal person's id when an agent acts for it; pairwise per sector when the client asks (OIDC Core s8.1)",
    ),
    rule("user_type", None, false, Of::Any, ALL, "`natural_person` or `legal_person` (HL-5.1)"),
    rule("acr", None, false, Of::Any, ALL, "assurance level of the authentication, `0`..`3` (HL-6.1)"),
    rule(
        "auth_level",
        None,
        false,
        Of::Any,
        ALL,
        "the same level by name: `visitor`, `registered`, `real_name`, `strong`",
    ),
    rule("act", None, false, Of::Legal, ALL, "the acting agent, `{\"sub\": <agent's sub>}` (RFC 8693 s4.1)"),
    rule("name", Some("profile"), false, Of::Any, UI, "full name; for a legal person its organization name"),
    rule("preferred_username", Some("profile"), false, Of::Natural, UI, "username"),
    rule("updated_at", Some("profile"), false, Of::Any, UI, "last change of the record (unix seconds)"),
    rule("email", Some("email"), false, Of::Natural, UI, "e-mail address"),
    rule("email_verified", Some("email"), false, Of::Natural, UI, "whether it was verified"),
    rule("phone_number", Some("phone"), true, Of::Natural, UI, "phone number"),
    rule("phone_number_verified", Some("phone"), true, Of::Natural, UI, "whether it was verified"),
    rule(
        "id_type",
        Some("idcard"),
        true,
        Of::Natural,
        UI,
        "`resident_id_card`, `passport`, `hk_macao_permit`, `taiwan_permit`",
    ),
    rule("id_number", Some("idcard"), true, Of::Natural, UI, "identity document number"),
    rule("org_name", Some("legal_person"), true, Of::Legal, UI, "organization name"),
    rule("uscc", Some("legal_person"), true, Of::Legal, UI, "unified social credit code (GB 32100)"),
    rule("legal_representative", Some("legal_person"), true, Of::Legal, UI, "legal representative's name"),
];

/// The scopes that release claims beyond `openid` (for discovery's `scopes_supported`).
pub const CLAIM_SCOPES: [&str; 5] = ["profile", "email", "phone", "idcard", "legal_person"];

/// Whom the claims are about, as far as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The `sub` the client sees (pairwise or public).
    pub sub: &'a str,
    /// The acting agent's `sub` as the client sees it, when an agent acts for a legal person.
    pub agent_sub: Option<&'a str>,
    /// The authentication's `acr`.
    pub acr: Option<&'a str>,
    /// The natural person's record (the subject, or the acting agent), when read.
    pub person: Option<&'a User>,
    /// The legal person's record, when acting and read.
    pub legal: Option<&'a LegalPerson>,
}

impl Principal<'_> {
    /// The kind of subject.
    pub fn kind(&self) -> PrincipalKind {
        if self.agent_sub.is_some() { PrincipalKind::LegalPerson } else { PrincipalKind::NaturalPerson }
    }
}

/// The value of `claim` for `p`, if it has one (read from its records).
fn value(claim: &str, p: &Principal<'_>, data: &DataKey) -> Option<Value> {
    let legal = p.kind() == PrincipalKind::LegalPerson;
    // A legal person's claims come from its record; the agent's own data is never released
    // as the legal person's.
    let person = p.person.filter(|_| !legal);
    let lp = p.legal.filter(|_| legal);
    let level = p.acr.and_then(AssuranceLevel::parse);
    match claim {
        "sub" => Some(json!(p.sub)),
        "user_type" => Some(json!(p.kind().as_str())),
        "acr" => p.acr.map(|a| json!(a)),
        "auth_level" => level.map(|l| json!(l.as_str())),
        "act" => p.agent_sub.map(|a| json!({ "sub": a })),
        "name" => person.map(|u| json!(u.name)).or_else(|| lp.map(|l| json!(l.name))),
        "preferred_username" => person.map(|u| json!(u.username)),
        "updated_at" => person.map(|u| json!(u.updated_at)).or_else(|| lp.map(|l| json!(l.updated_at))),
        "email" => person.and_then(|u| u.email.as_ref()).map(|e| json!(e)),
        "email_verified" => person.filter(|u| u.email.is_some()).map(|u| json!(u.email_verified)),
        "phone_number" => person.and_then(|u| u.phone(data)).map(|ph| json!(ph)),
        "phone_number_verified" => person.filter(|u| u.phone_sealed.is_some()).map(|_| json!(false)),
        "id_type" => person.filter(|u| u.id_number_sealed.is_some()).and_then(|u| u.id_type).map(|t| json!(t.as_str())),
        "id_number" => person.filter(|u| u.id_type.is_some()).and_then(|u| u.id_number(data)).map(|n| json!(n)),
        "org_name" => lp.map(|l| json!(l.name)),
        "uscc" => lp.map(|l| json!(l.uscc)),
        "legal_representative" => lp.map(|l| json!(l.legal_representative)),
        _ => None,
    }
}

/// The claims released at `place` for a token holding the scopes `has_scope` says, about `p`.
/// `skip` names claims the caller sets itself (protocol claims such as `sub` and `acr`).
pub fn release(
    place: Place,
    has_scope: impl Fn(&str) -> bool,
    p: &Principal<'_>,
    data: &DataKey,
    skip: &[&str],
) -> Map<String, Value> {
    let mut out = Map::new();
    for r in RULES {
        let here = match place {
            Place::UserInfo => r.userinfo,
            Place::IdToken => r.id_token,
            Place::Introspection => r.introspection,
        };
        if !here || skip.contains(&r.claim) || r.scope.is_some_and(|s| !has_scope(s)) {
            continue;
        }
        if let Some(v) = value(r.claim, p, data) {
            out.insert(r.claim.to_owned(), v);
        }
    }
    out
}

/// Every claim name of the table (for discovery's `claims_supported`).
pub fn names() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.claim)
}

/// The README's claims table, rendered from [`RULES`].
pub fn markdown_table() -> String {
    let yes = |b: bool| if b { "yes" } else { "" };
    let mut out = String::from(
        "| claim | scope | sensitive | subject | /userinfo | ID token | introspection | holds |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            r.claim,
            r.scope.map_or_else(|| "(always)".to_owned(), |s| format!("`{s}`")),
            yes(r.sensitive),
            r.of.as_str(),
            yes(r.userinfo),
            yes(r.id_token),
            yes(r.introspection),
            r.about
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn readme_table_matches_the_rules() {
        // One rule, one place: the README shows exactly this table.
        let readme = include_str!("../../README.md");
        assert!(readme.contains(&markdown_table()), "README claims table is out of date:\n{}", markdown_table());
    }

    #[test]
    fn sensitive_claims_need_their_scope_and_stay_out_of_tokens() {
        // SH-8.2, OIDC Core s5.4.
        let k = key();
        let mut u = User::new("zs".into(), "Zhang San".into(), "x".into(), 0);
        u.set_phone(&k, Some("+8613800138000"));
        u.id_type = Some(crate::identity::IdType::ResidentIdCard);
        u.set_id_number(&k, Some("11010519491231002X"));
        let p = Principal { sub: "s", agent_sub: None, acr: Some("2"), person: Some(&u), legal: None };
        let none = release(Place::UserInfo, |_| false, &p, &k, &[]);
        assert_eq!(none.get("user_type"), Some(&json!("natural_person")));
        assert_eq!(none.get("auth_level"), Some(&json!("real_name")));
        assert!(!none.contains_key("id_number") && !none.contains_key("phone_number"));
        let all = release(Place::UserInfo, |_| true, &p, &k, &[]);
        assert_eq!(all.get("id_number"), Some(&json!("11010519491231002X")));
        assert_eq!(all.get("id_type"), Some(&json!("resident_id_card")));
        assert!(!all.contains_key("uscc"), "a natural person has no legal-person claims");
        let id = release(Place::IdToken, |_| true, &p, &k, &["sub", "acr"]);
        assert!(!id.contains_key("id_number") && !id.contains_key("phone_number") && !id.contains_key("sub"));
    }
}
