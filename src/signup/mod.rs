//! One registration page for every application (HL-5.2, GB-6.4a): a natural person registers
//! with a phone proven by a one-time code, a username, a name and a password; a legal person
//! with its company data, the registering person becoming its first agent (role admin). A
//! registration is queued for the upstream platforms (registration sync) and signs the person
//! in. Account recovery by phone code is in [`reset`]. No HTTP types here.

pub mod checks;
pub mod reset;

use tokio::sync::Notify;

use crate::crypto::Secret;
use crate::identity::legal::{self, Agent, AgentRole, LegalPerson, LegalWriteError, OrgKind};
use crate::identity::{AssuranceLevel, Verification, VerifyMethod};
use crate::logout;
use crate::otp::{self, OtpConfig, OtpError, Purpose};
use crate::sealing::DataKey;
use crate::session::{self, Established, Session, Timeouts};
use crate::sms::DynSms;
use crate::store::{DynStore, StoreError};
use crate::users::{self, Lookup, PasswordError, PasswordPool, User, WriteError};

/// Everything registration and recovery need, at one instant.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// The data key (sealed phones, blind indexes, code MACs).
    pub data: &'a DataKey,
    /// Password hashing.
    pub passwords: &'a PasswordPool,
    /// The SMS sender.
    pub sms: &'a DynSms,
    /// Code rules.
    pub otp: &'a OtpConfig,
    /// Ending sessions (a new sign-in, a reset) with the logout broadcast.
    pub logout: logout::Ctx<'a>,
    /// Session timeouts.
    pub timeouts: Timeouts,
    /// Wakes this instance's registration-sync worker.
    pub sync_wake: Option<&'a Notify>,
    /// Current time.
    pub now: i64,
}

impl<'a> Env<'a> {
    fn otp(&self) -> otp::Ctx<'a> {
        otp::Ctx { store: self.store, data: self.data, cfg: self.otp, now: self.now }
    }
}

/// A form field, named in errors so the page can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Username.
    Username,
    /// Person's name.
    Name,
    /// Phone.
    Phone,
    /// One-time code.
    Code,
    /// Password.
    Password,
    /// Organization name.
    OrgName,
    /// Unified social credit code.
    Uscc,
    /// Organization kind.
    OrgKind,
    /// Legal representative.
    LegalRepresentative,
}

/// Why a registration, a code or a reset was refused. Every variant is the person's to fix
/// or to wait out, except `Busy` and `Store` (503).
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// A field is missing or malformed.
    #[error("invalid {0:?}")]
    Invalid(Field),
    /// The username is taken.
    #[error("the username is taken")]
    UsernameTaken,
    /// Another account has this phone number.
    #[error("another account has this phone number")]
    PhoneTaken,
    /// Another legal person has this unified social credit code.
    #[error("the unified social credit code is registered")]
    UsccTaken,
    /// Registering a company without a person needs a signed-in person.
    #[error("sign in or register as a person first")]
    NoPerson,
    /// No account has this phone (recovery, after the code was proven).
    #[error("no account has this phone number")]
    NoAccount,
    /// The one-time code was refused, or could not be sent.
    #[error(transparent)]
    Code(#[from] OtpError),
    /// Password hashing is saturated; retry.
    #[error("busy")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PasswordError> for SignupError {
    fn from(e: PasswordError) -> Self {
        if let PasswordError::Hash(reason) = &e {
            tracing::error!(%reason, "password hashing failed");
        }
        Self::Busy
    }
}

/// The natural person of a registration form.
#[derive(Debug, Clone)]
pub struct PersonForm {
    /// Login name.
    pub username: String,
    /// Real name.
    pub name: String,
    /// Phone, as typed.
    pub phone: String,
    /// The one-time code sent to it.
    pub code: String,
    /// The chosen password.
    pub password: Secret,
}

/// The legal person of a registration form.
#[derive(Debug, Clone)]
pub struct CompanyForm {
    /// Organization name.
    pub name: String,
    /// Unified social credit code.
    pub uscc: String,
    /// Kind (`enterprise`, `public_institution`, ...).
    pub kind: String,
    /// Legal representative's name.
    pub legal_representative: String,
}

/// A registration: a person, a company, or both (the person becomes the company's agent).
#[derive(Debug, Clone)]
pub struct Registration {
    /// The person to create; `None`: the signed-in person registers a company.
    pub person: Option<PersonForm>,
    /// The company to create.
    pub company: Option<CompanyForm>,
}

/// What a registration created.
#[derive(Debug)]
pub struct Registered {
    /// The natural person (new, or the signed-in one who registered a company).
    pub user: User,
    /// The legal person, when one was registered.
    pub company: Option<LegalPerson>,
    /// The new session, when a person was created (they are signed in).
    pub established: Option<Established>,
}

/// Validated company data.
struct Company {
    name: String,
    uscc: String,
    kind: OrgKind,
    legal_representative: String,
}

fn company(f: &CompanyForm) -> Result<Company, SignupError> {
    Ok(Company {
        name: checks::name(&f.name, checks::MAX_ORG_NAME).ok_or(SignupError::Invalid(Field::OrgName))?,
        uscc: checks::uscc(&f.uscc).ok_or(SignupError::Invalid(Field::Uscc))?,
        kind: checks::org_kind(&f.kind).ok_or(SignupError::Invalid(Field::OrgKind))?,
        legal_representative: checks::name(&f.legal_representative, checks::MAX_NAME)
            .ok_or(SignupError::Invalid(Field::LegalRepresentative))?,
    })
}

/// Sends a registration code to `phone` (as typed), asked from `ip`; returns the normalised
/// phone. The code goes out whether or not an account has the phone already: the page never
/// tells who is registered before the code is proven.
pub async fn send_code(env: Env<'_>, phone: &str, ip: Option<&str>) -> Result<(String, otp::Sent), SignupError> {
    let phone = checks::phone(phone).ok_or(SignupError::Invalid(Field::Phone))?;
    let sent = otp::send(env.otp(), env.sms.as_ref(), Purpose::Signup, &phone, ip).await?;
    Ok((phone, sent))
}

/// Registers a person, a company, or both (HL-5.2, GB-6.4a). Every field is checked, and the
/// username and USCC looked up, before the code is used; the password is hashed before too (a
/// busy hasher then costs no code). The person's sync job is queued before the record exists
/// and falls due a little later, so a crash between the two leaves a job the worker drops
/// ("the user is gone"), never a registration that is not synced.
pub async fn register(env: Env<'_>, form: Registration, signed_in: Option<Session>) -> Result<Registered, SignupError> {
    let company = form.company.as_ref().map(company).transpose()?;
    let person = match &form.person {
        Some(p) => {
            let username = p.username.trim().to_owned();
            users::check_username(&username).map_err(|_| SignupError::Invalid(Field::Username))?;
            let name = checks::name(&p.name, checks::MAX_NAME).ok_or(SignupError::Invalid(Field::Name))?;
            let phone = checks::phone(&p.phone).ok_or(SignupError::Invalid(Field::Phone))?;
            if p.code.trim().is_empty() {
                return Err(SignupError::Invalid(Field::Code));
            }
            users::check_password_policy(p.password.expose()).map_err(|_| SignupError::Invalid(Field::Password))?;
            Some((username, name, phone))
        }
        None => None,
    };
    if let Some(c) = &company
        && legal::by_uscc(env.store, &c.uscc).await?.is_some()
    {
        return Err(SignupError::UsccTaken);
    }
    let user = match (person, &form.person) {
        (Some((username, name, phone)), Some(p)) => {
            if users::by_username(env.store, &username).await?.is_some() {
                return Err(SignupError::UsernameTaken);
            }
            // No hash for an entry that cannot succeed (no code sent, or expired).
            otp::live(env.otp(), Purpose::Signup, &phone).await?;
            let hash = env.passwords.hash(p.password.clone()).await?;
            otp::verify(env.otp(), Purpose::Signup, &phone, &p.code).await?;
            let mut user = User::new(username, name, hash, env.now);
            user.set_phone(env.data, Some(&phone));
            user.verification = Some(Verification {
                level: AssuranceLevel::Registered,
                method: VerifyMethod::OneTimeCode,
                by: "sms".into(),
                at: env.now,
            });
            crate::federation::sync::enqueue(env.store, &user.id, env.now + SYNC_DELAY, None).await?;
            match users::create(env.store, env.data, &user).await {
                Ok(()) => {}
                Err(WriteError::UsernameTaken) => return Err(SignupError::UsernameTaken),
                Err(WriteError::Duplicate(Lookup::Phone)) => return Err(SignupError::PhoneTaken),
                // Registration records no ID number (the verification step does): unreachable
                // in practice, and refused as the phone would be.
                Err(WriteError::Duplicate(Lookup::IdNumber)) => return Err(SignupError::PhoneTaken),
                Err(WriteError::Store(e)) => return Err(e.into()),
            }
            if let Some(w) = env.sync_wake {
                w.notify_one();
            }
            user
        }
        _ => {
            let s = signed_in.as_ref().ok_or(SignupError::NoPerson)?;
            users::get(env.store, &s.sub).await?.filter(|u| u.enabled).ok_or(SignupError::NoPerson)?
        }
    };
    let company = match company {
        Some(c) => Some(create_company(env, c, &user).await?),
        None => None,
    };
    let established = if form.person.is_some() {
        let login = session::Login {
            sub: user.id.clone(),
            generation: user.generation,
            acr: user.level().acr().into(),
            amr: vec!["pwd".into(), "sms".into()],
            upstream: None,
            acting: None,
        };
        Some(session::establish(env.logout, signed_in, login, env.timeouts).await?)
    } else {
        None
    };
    Ok(Registered { user, company, established })
}

/// Seconds after a registration its upstream sync falls due (the record exists by then).
const SYNC_DELAY: i64 = 2;

async fn create_company(env: Env<'_>, c: Company, agent: &User) -> Result<LegalPerson, SignupError> {
    let lp = LegalPerson {
        id: users::new_id(),
        name: c.name,
        uscc: c.uscc,
        kind: c.kind,
        legal_representative: c.legal_representative,
        agents: vec![Agent { user_id: agent.id.clone(), role: AgentRole::Admin, since: env.now }],
        verification: None,
        enabled: true,
        generation: 0,
        created_at: env.now,
        updated_at: env.now,
    };
    match legal::create(env.store, &lp).await {
        Ok(()) => Ok(lp),
        Err(LegalWriteError::UsccTaken) => Err(SignupError::UsccTaken),
        Err(LegalWriteError::Store(e)) => Err(e.into()),
    }
}
