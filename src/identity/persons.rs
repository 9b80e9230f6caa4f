//! Natural persons' records as admins keep them (HL-5.1, HL-6.1, SH-8.2): name, phone and
//! identity document checked and sealed, verification recorded with who and how (face or
//! in-person verification reaches [`AssuranceLevel::Strong`]), and search by name prefix
//! (the name index), phone or ID number (exact, through the blind index) with paging.

use super::records::{self, Page, Paged, RecordError};
use super::{AssuranceLevel, IdType, Verification, VerifyMethod, idnum, names, phone};
use crate::sealing::DataKey;
use crate::store::{DynStore, keys};
use crate::users::{self, Lookup, User};

/// Changes to a natural person's identity fields; `None` leaves a field as it is, an empty
/// phone or ID number clears it.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityPatch<'a> {
    /// Display name (`name` claim).
    pub name: Option<&'a str>,
    /// Mobile number, normalised by [`phone::normalise`].
    pub phone: Option<&'a str>,
    /// Identity document type; the number is checked against it.
    pub id_type: Option<IdType>,
    /// Identity document number, checked by [`idnum::check`].
    pub id_number: Option<&'a str>,
}

/// Applies `patch` to `user` (not yet stored): every field checked, phone and ID number
/// normalised and sealed. A changed name or identity document voids a real-name or stronger
/// verification (it vouched for the old one). Returns the names of the fields that changed,
/// for the audit record (never their values).
pub fn apply(target: &mut User, data: &DataKey, patch: &IdentityPatch<'_>) -> Result<Vec<&'static str>, RecordError> {
    let mut user = target.clone();
    let mut changed = Vec::new();
    if let Some(n) = patch.name {
        let n = records::text("name", n)?;
        if n != user.name {
            user.name = n;
            changed.push("name");
        }
    }
    if let Some(p) = patch.phone {
        let p = if p.trim().is_empty() { None } else { Some(phone::normalise(p)?) };
        if p != user.phone(data) {
            user.set_phone(data, p.as_deref());
            changed.push("phone_number");
        }
    }
    let number = match patch.id_number {
        Some(n) if n.trim().is_empty() => None,
        Some(n) => Some(n.to_owned()),
        None => user.id_number(data),
    };
    let ty = match (&number, patch.id_type) {
        (None, _) => None,
        (Some(_), Some(t)) => Some(t),
        (Some(_), None) => Some(user.id_type.unwrap_or(IdType::ResidentIdCard)),
    };
    if patch.id_type.is_some() && number.is_none() {
        return Err(RecordError::Invalid("id_type", "give the id_number with it".into()));
    }
    let number = match (ty, number) {
        (Some(t), Some(n)) => Some(idnum::check(t, &n)?),
        _ => None,
    };
    if ty != user.id_type {
        user.id_type = ty;
        changed.push("id_type");
    }
    if number != user.id_number(data) {
        user.set_id_number(data, number.as_deref());
        changed.push("id_number");
    }
    let identity_moved = changed.iter().any(|f| matches!(*f, "name" | "id_type" | "id_number"));
    if identity_moved && user.level() > AssuranceLevel::Registered {
        user.verification = None;
        changed.push("verification_cleared");
    }
    *target = user;
    Ok(changed)
}

/// A verification an admin records after checking the person themselves.
#[derive(Debug, Clone, Copy)]
pub struct AdminCheck {
    /// How: [`VerifyMethod::Face`] or [`VerifyMethod::InPerson`].
    pub method: VerifyMethod,
    /// The level reached: [`AssuranceLevel::Strong`] unless given (at least real-name).
    pub level: Option<AssuranceLevel>,
}

/// The verification record of an admin's check of `user`, by `by` (the admin client) at
/// `now`. Refused unless the method is one an admin performs and the person's name and
/// identity document are on record (what the check vouches for).
pub fn admin_verification(
    user: &User,
    data: &DataKey,
    check: AdminCheck,
    by: &str,
    now: i64,
) -> Result<Verification, RecordError> {
    if !matches!(check.method, VerifyMethod::Face | VerifyMethod::InPerson) {
        return Err(RecordError::Invalid(
            "method",
            "an admin records face or in_person verification; the others are recorded by the flows that perform them"
                .into(),
        ));
    }
    let level = check.level.unwrap_or(AssuranceLevel::Strong);
    if level < AssuranceLevel::RealName {
        return Err(RecordError::Invalid("level", "must be real_name or strong".into()));
    }
    if user.id_type.is_none() || user.id_number(data).is_none() || user.name.trim().is_empty() {
        return Err(RecordError::Conflict(
            "record the person's name and identity document (id_type, id_number) before verifying them".into(),
        ));
    }
    Ok(Verification { level, method: check.method, by: by.to_owned(), at: now })
}

/// Records an admin's check of natural person `id` (see [`admin_verification`]) and returns
/// the stored record.
pub async fn record_check(
    store: &DynStore,
    data: &DataKey,
    id: &str,
    check: AdminCheck,
    by: &str,
    now: i64,
) -> Result<User, RecordError> {
    let old = load(store, id).await?;
    let mut user = old.clone();
    user.verification = Some(admin_verification(&user, data, check, by, now)?);
    user.updated_at = now;
    users::update(store, data, &old, &mut user).await?;
    Ok(user)
}

/// Withdraws the verification of natural person `id` (back to registered) and returns the
/// stored record.
pub async fn withdraw_verification(store: &DynStore, data: &DataKey, id: &str, now: i64) -> Result<User, RecordError> {
    let old = load(store, id).await?;
    let mut user = old.clone();
    user.verification = None;
    user.updated_at = now;
    users::update(store, data, &old, &mut user).await?;
    Ok(user)
}

async fn load(store: &DynStore, id: &str) -> Result<User, RecordError> {
    users::get(store, id).await?.ok_or_else(|| RecordError::NotFound(format!("no user '{id}'")))
}

/// How to find natural persons.
#[derive(Debug, Clone)]
pub enum PersonQuery {
    /// Everyone, by id.
    All,
    /// Names starting with this (at least [`names::MIN_PREFIX`] characters), through the name
    /// index.
    Name(String),
    /// Exactly this mobile number, through the blind index.
    Phone(String),
    /// Exactly this ID number (checked as `IdType` when given, else as any type that accepts
    /// it), through the blind index.
    IdNumber(Option<IdType>, String),
}

/// Finds natural persons: exact lookups answer at most one page; names and `All` page by id.
pub async fn search(
    store: &DynStore,
    data: &DataKey,
    q: &PersonQuery,
    page: &Page,
) -> Result<Paged<User>, RecordError> {
    let exact = |u: Option<User>| Paged { items: u.into_iter().collect(), next: None };
    match q {
        PersonQuery::All => {
            let ids = store.set_members(keys::USER_INDEX).await?;
            Ok(records::scan(store, ids, keys::user, page, |_: &User| true).await?)
        }
        PersonQuery::Name(name) => {
            let Some(ids) = names::candidates(store, names::Realm::Users(data), name).await? else {
                return Err(RecordError::Invalid(
                    "name",
                    format!("give at least {} characters of the name", names::MIN_PREFIX),
                ));
            };
            Ok(records::scan(store, ids, keys::user, page, |u: &User| names::matches(&u.name, name)).await?)
        }
        PersonQuery::Phone(p) => {
            let normal = phone::normalise(p)?;
            let mut found = users::by_lookup(store, data, Lookup::Phone, &normal).await?;
            if found.is_none() && p.trim() != normal {
                // Records written before phones were normalised are indexed as they were typed.
                found = users::by_lookup(store, data, Lookup::Phone, p.trim()).await?;
            }
            Ok(exact(found))
        }
        PersonQuery::IdNumber(ty, n) => {
            let forms: Vec<String> = match ty {
                Some(t) => vec![idnum::check(*t, n)?],
                None => {
                    let all: Vec<Result<String, _>> =
                        [IdType::ResidentIdCard, IdType::Passport, IdType::HkMacaoPermit, IdType::TaiwanPermit]
                            .into_iter()
                            .map(|t| idnum::check(t, n))
                            .collect();
                    let mut ok: Vec<String> = all.iter().filter_map(|r| r.clone().ok()).collect();
                    ok.dedup();
                    if ok.is_empty() {
                        // Report why it is no resident ID card, the default type.
                        return Err(idnum::check(IdType::ResidentIdCard, n)
                            .err()
                            .unwrap_or(idnum::IdError::BadFormat)
                            .into());
                    }
                    ok
                }
            };
            let mut found = None;
            for f in forms {
                if let Some(u) = users::by_lookup(store, data, Lookup::IdNumber, &f).await? {
                    found = Some(u);
                    break;
                }
            }
            Ok(exact(found))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&[7; 32]).unwrap()
    }

    fn person(k: &DataKey) -> User {
        let mut u = User::new("zhang.san".into(), "张三".into(), "x".into(), 0);
        apply(
            &mut u,
            k,
            &IdentityPatch {
                id_number: Some("11010519491231002x"),
                phone: Some("138 1234 5678"),
                ..Default::default()
            },
        )
        .unwrap();
        u
    }

    #[test]
    fn identity_fields_are_checked_normalised_and_sealed() {
        let k = key();
        let u = person(&k);
        assert_eq!(u.id_type, Some(IdType::ResidentIdCard));
        assert_eq!(u.id_number(&k).as_deref(), Some("11010519491231002X"));
        assert_eq!(u.phone(&k).as_deref(), Some("+8613812345678"));
        let stored = serde_json::to_string(&u).unwrap();
        assert!(!stored.contains("11010519491231002") && !stored.contains("13812345678"), "sealed: {stored}");
        let mut v = u.clone();
        let bad = IdentityPatch { id_number: Some("110105194912310021"), ..Default::default() };
        assert!(matches!(apply(&mut v, &k, &bad), Err(RecordError::IdNumber(idnum::IdError::BadCheckDigit))));
        let bad = IdentityPatch { phone: Some("12345"), ..Default::default() };
        assert!(matches!(apply(&mut v, &k, &bad), Err(RecordError::Phone(_))));
        let bad = IdentityPatch { id_type: Some(IdType::Passport), ..Default::default() };
        assert!(
            matches!(apply(&mut v, &k, &bad), Err(RecordError::IdNumber(idnum::IdError::BadLength))),
            "re-checked as the new type"
        );
        assert_eq!(v, u, "a refused patch changes nothing");
        let mut w = User::new("a".into(), "a".into(), "x".into(), 0);
        let bad = IdentityPatch { id_type: Some(IdType::Passport), ..Default::default() };
        assert!(matches!(apply(&mut w, &k, &bad), Err(RecordError::Invalid("id_type", _))));
        let clear = IdentityPatch { id_number: Some(""), phone: Some(""), ..Default::default() };
        assert_eq!(apply(&mut v, &k, &clear).unwrap(), vec!["phone_number", "id_type", "id_number"]);
        assert_eq!((v.id_type, v.id_number(&k), v.phone(&k)), (None, None, None));
    }

    #[test]
    fn admin_checks_reach_strong_and_need_an_identity_document() {
        let k = key();
        let mut u = person(&k);
        let face = AdminCheck { method: VerifyMethod::Face, level: None };
        let v = admin_verification(&u, &k, face, "client:admin-cli", 100).unwrap();
        assert_eq!(
            (v.level, v.method, v.by.as_str(), v.at),
            (AssuranceLevel::Strong, VerifyMethod::Face, "client:admin-cli", 100)
        );
        let bad = AdminCheck { method: VerifyMethod::RealNameService, level: None };
        assert!(matches!(admin_verification(&u, &k, bad, "c", 1), Err(RecordError::Invalid("method", _))));
        let low = AdminCheck { method: VerifyMethod::InPerson, level: Some(AssuranceLevel::Registered) };
        assert!(matches!(admin_verification(&u, &k, low, "c", 1), Err(RecordError::Invalid("level", _))));
        let bare = User::new("b".into(), "b".into(), "x".into(), 0);
        assert!(matches!(admin_verification(&bare, &k, face, "c", 1), Err(RecordError::Conflict(_))));
        // A new ID number voids the verification that vouched for the old one.
        u.verification = Some(v);
        let changed =
            apply(&mut u, &k, &IdentityPatch { id_number: Some("440304199001011233"), ..Default::default() }).unwrap();
        assert_eq!(changed, vec!["id_number", "verification_cleared"]);
        assert_eq!(u.level(), AssuranceLevel::Registered);
    }
}
