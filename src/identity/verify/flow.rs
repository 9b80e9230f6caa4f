//! The verification step at `/verify` (GB-6.4a, HL-6.1): a signed-in person gives name, ID type
//! and number; the verifier answers; a match records the verification on the account (the ID
//! number claimed uniquely, sealed) and raises the browser's session to the real-name level, so
//! the authorization request under way continues at that level. Writes run account first,
//! session second: a crash in between leaves a verified account, and the next visit to
//! `/verify` raises the session from the record ([`from_record`]) without another (billed) call.

use serde_json::json;

use super::{Checked, Claim, DynVerifier, Verdict, VerifyError, builtin, check_name};
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::identity::{AssuranceLevel, IdType, Verification};
use crate::sealing::DataKey;
use crate::session::{self, Session, Timeouts};
use crate::store::{DynStore, StoreError, keys};
use crate::users::{self, Lookup, WriteError};

/// What the step needs besides its input.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// The data key (seals the ID number, keys its lookup).
    pub data: &'a DataKey,
    /// The configured verifier.
    pub verifier: &'a DynVerifier,
    /// The audit log.
    pub audit: &'a Audit,
    /// Verifications one person may start per day.
    pub attempts_per_day: u32,
    /// Session timeouts.
    pub timeouts: Timeouts,
    /// Current time.
    pub now: i64,
}

/// What the person typed.
pub struct Input<'a> {
    /// Name as on the document.
    pub name: &'a str,
    /// Document type (`resident_id_card`, `passport`, `hk_macao_permit`, `taiwan_permit`).
    pub id_type: &'a str,
    /// Document number.
    pub id_number: &'a str,
}

/// How the step ended.
#[derive(Debug)]
pub enum Done {
    /// Verified: the session, raised to the level reached.
    Verified(Box<Session>),
    /// The service said no (mismatch or no record), or the number is on another account or
    /// differs from the one on record.
    Refused(&'static str),
}

/// Why the step could not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The input is malformed; the person may correct it.
    #[error("{0}")]
    Malformed(&'static str),
    /// Too many verifications today.
    #[error("too many verification attempts today")]
    TooMany,
    /// The service is unavailable; try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The account or the session is gone.
    #[error("the account or the session has ended")]
    Gone,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<VerifyError> for StepError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Malformed(m) => Self::Malformed(m),
            VerifyError::Unavailable(u) => Self::Unavailable(u),
        }
    }
}

/// Parses an `id_type` form value.
pub fn parse_id_type(s: &str) -> Option<IdType> {
    [IdType::ResidentIdCard, IdType::Passport, IdType::HkMacaoPermit, IdType::TaiwanPermit]
        .into_iter()
        .find(|t| t.as_str() == s)
}

/// The audit record's reference to an ID number: a keyed hash, never the number.
fn id_ref(data: &DataKey, number: &str) -> String {
    data.derive(&format!("audit:idn:{number}")).chars().take(16).collect()
}

/// Raises `s` to the account's recorded level when that is higher (no verifier call): the
/// person is signed in to that account, and the account was verified already (by an admin, in
/// another browser, or by a step that crashed before its session write).
pub async fn from_record(ctx: Ctx<'_>, s: Session) -> Result<Session, StepError> {
    let user = users::get(ctx.store, &s.sub).await?.filter(|u| u.enabled).ok_or(StepError::Gone)?;
    let have = AssuranceLevel::parse(&s.acr).unwrap_or(AssuranceLevel::Visitor);
    if user.level() <= have {
        return Ok(s);
    }
    session::raise_acr(ctx.store, s, user.level().acr(), ctx.now, ctx.timeouts).await?.ok_or(StepError::Gone)
}

/// Verifies the signed-in person of session `s` with `input`, for `client_id`'s request if any.
pub async fn step_up(ctx: Ctx<'_>, s: Session, input: &Input<'_>, client_id: Option<&str>) -> Result<Done, StepError> {
    let name = check_name(input.name)?;
    let id_type = parse_id_type(input.id_type).ok_or(StepError::Malformed("choose a document type"))?;
    let number = builtin::check(id_type, input.id_number)?;
    let old = users::get(ctx.store, &s.sub).await?.filter(|u| u.enabled).ok_or(StepError::Gone)?;
    // Each try may be a billed call: a person gets `attempts_per_day` of them.
    let day = ctx.now.div_euclid(86_400);
    let n = ctx.store.incr(&keys::verify_attempts(&s.sub, day), 2 * 86_400).await?;
    if n > i64::from(ctx.attempts_per_day) {
        return Err(StepError::TooMany);
    }
    let rf = id_ref(ctx.data, &number);
    let record = |outcome: Outcome, detail: serde_json::Value| {
        let mut e = Event::new(Kind::IdentityVerification, outcome)
            .actor(format!("user:{}", s.sub))
            .subject(&s.sub)
            .detail(detail);
        if let Some(c) = client_id {
            e = e.client(c);
        }
        ctx.audit.record(e)
    };
    // A number already on record is the only one this account can be verified with.
    if old.id_number(ctx.data).is_some_and(|n| n != number) {
        let d = json!({"step": "result", "result": "refused", "reason": "not the ID number on record", "id_ref": rf});
        record(Outcome::Denied, d).await;
        return Ok(Done::Refused("the ID number differs from the one on record"));
    }
    let claim = Claim { name, id_type, id_number: &number, subject: &s.sub, id_ref: &rf, client_id };
    let checked = match ctx.verifier.verify(&claim).await {
        Ok(c) => c,
        Err(e) => {
            let d = json!({"step": "result", "verifier": ctx.verifier.name(), "result": "error", "reason": e.to_string(),
                           "id_type": id_type.as_str(), "id_ref": rf});
            record(Outcome::Failure, d).await;
            return Err(e.into());
        }
    };
    let Checked { verdict, billed, calls } = checked;
    let detail = |result: &str| {
        json!({"step": "result", "verifier": ctx.verifier.name(), "result": result, "billed": billed, "calls": calls,
               "id_type": id_type.as_str(), "id_ref": rf})
    };
    match verdict {
        Verdict::Match => {}
        Verdict::Mismatch => {
            record(Outcome::Denied, detail("mismatch")).await;
            return Ok(Done::Refused("the name and ID number do not match"));
        }
        Verdict::NoRecord => {
            record(Outcome::Denied, detail("no_record")).await;
            return Ok(Done::Refused("no record of this ID number"));
        }
    }
    let mut new = old.clone();
    new.name = name.to_owned();
    new.id_type = Some(id_type);
    new.set_id_number(ctx.data, Some(&number));
    // A verification never lowers a stronger one (face or in person, recorded by an admin).
    if old.level() < AssuranceLevel::RealName {
        new.verification = Some(Verification {
            level: AssuranceLevel::RealName,
            method: ctx.verifier.method(),
            by: ctx.verifier.name().to_owned(),
            at: ctx.now,
        });
    }
    new.updated_at = ctx.now;
    match users::update(ctx.store, ctx.data, &old, &mut new).await {
        Ok(_) => {}
        Err(WriteError::Duplicate(Lookup::IdNumber)) => {
            record(Outcome::Denied, detail("match_on_another_account")).await;
            return Ok(Done::Refused("this ID number belongs to another account"));
        }
        Err(WriteError::Duplicate(Lookup::Phone) | WriteError::UsernameTaken) => {
            return Err(StepError::Malformed("the account cannot be updated"));
        }
        Err(WriteError::Store(e)) => return Err(e.into()),
    }
    record(Outcome::Success, detail("match")).await;
    let level = new.level();
    let have = AssuranceLevel::parse(&s.acr).unwrap_or(AssuranceLevel::Visitor);
    if level <= have {
        return Ok(Done::Verified(Box::new(s)));
    }
    match session::raise_acr(ctx.store, s, level.acr(), ctx.now, ctx.timeouts).await? {
        Some(s) => Ok(Done::Verified(Box::new(s))),
        None => Err(StepError::Gone),
    }
}
