//! The signed-in person's own account (`/account`): their profile with sensitive fields
//! masked (SH-8.2), their SSO sessions (each can be ended, with the logout broadcast), the
//! legal persons they act for, their consents per client (revocable), and a password change.
//! No HTTP types here.

use crate::crypto::Secret;
use crate::identity::legal::{self, AgentRole};
use crate::logout::{self, Reason};
use crate::sealing::DataKey;
use crate::session::{self, Established, Session, Timeouts};
use crate::store::{DynStore, StoreError};
use crate::users::{self, PasswordError, PasswordPool, User, WriteError};

/// One SSO session of the person.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// Session id.
    pub sid: String,
    /// When they signed in.
    pub auth_time: i64,
    /// Last activity.
    pub last_seen: i64,
    /// Names of the applications it reached.
    pub clients: Vec<String>,
    /// This browser's session.
    pub current: bool,
}

/// A legal person the person acts for.
#[derive(Debug, Clone)]
pub struct CompanyView {
    /// Organization name.
    pub name: String,
    /// Unified social credit code (public register data).
    pub uscc: String,
    /// The person's role.
    pub role: AgentRole,
}

/// A client the person consented to.
#[derive(Debug, Clone)]
pub struct ConsentView {
    /// The client.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// The scopes allowed, as the catalogue describes them (the page shows the description in
    /// the person's language, never the scope token).
    pub scopes: Vec<crate::scopes::ScopeDef>,
    /// When.
    pub at: i64,
}

/// What the account page shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The person.
    pub user: User,
    /// Phone, masked (`138****5678`).
    pub phone: Option<String>,
    /// ID number, masked (`110***********1234`).
    pub id_number: Option<String>,
    /// Live sessions, newest first.
    pub sessions: Vec<SessionView>,
    /// Legal persons acted for.
    pub companies: Vec<CompanyView>,
    /// Consents, by client name.
    pub consents: Vec<ConsentView>,
}

/// A phone number masked for display (SH-8.2): `138****5678` ([`crate::identity::phone::mask`]).
pub fn mask_mobile(phone: &str) -> String {
    crate::identity::phone::mask(phone)
}

/// An ID number masked for display (SH-8.2): `110***********1234` ([`crate::identity::idnum::mask`]).
pub fn mask_id_number(n: &str) -> String {
    crate::identity::idnum::mask(n)
}

/// Reads everything the account page shows for the person of session `current`; `builtins`
/// are the scope catalogue's built-in entries.
pub async fn overview(
    store: &DynStore,
    builtins: &[crate::scopes::ScopeDef],
    data: &DataKey,
    current: &Session,
    now: i64,
    t: Timeouts,
) -> Result<Option<Overview>, StoreError> {
    let Some(user) = users::get(store, &current.sub).await?.filter(|u| u.enabled) else {
        return Ok(None);
    };
    let clients = crate::clients::list(store).await?;
    let name_of =
        |id: &str| clients.iter().find(|c| c.client_id == id).map_or_else(|| id.to_owned(), |c| c.name.clone());
    let mut sessions = Vec::new();
    for sid in session::of_user(store, &user.id).await? {
        if let Some(s) = session::get(store, &sid).await?.filter(|s| s.live(now, t) && s.sub == user.id) {
            let reached = session::clients(store, &sid).await?;
            sessions.push(SessionView {
                current: s.sid == current.sid,
                sid: s.sid,
                auth_time: s.auth_time,
                last_seen: s.last_seen,
                clients: reached.iter().map(|c| name_of(c)).collect(),
            });
        }
    }
    sessions.sort_by_key(|s| std::cmp::Reverse(s.auth_time));
    let companies = legal::acting_for(store, &user.id)
        .await?
        .into_iter()
        .filter_map(|lp| {
            let role = lp.agent(&user.id)?.role;
            Some(CompanyView { name: lp.name, uscc: lp.uscc, role })
        })
        .collect();
    // Every consented scope described at once (one store read), then handed out per client.
    let given = crate::authorize::consents_of(store, &user.id).await?;
    let mut names: Vec<String> = given.iter().flat_map(|(_, c)| c.scopes.iter().cloned()).collect();
    names.sort();
    names.dedup();
    let described = crate::scopes::describe(store, builtins, &names).await?;
    let describe = |n: &String| described.iter().find(|d| d.name == *n).cloned();
    let mut consents = Vec::new();
    for (client_id, consent) in given {
        consents.push(ConsentView {
            client_name: name_of(&client_id),
            client_id,
            scopes: consent.scopes.iter().filter_map(describe).collect(),
            at: consent.at,
        });
    }
    consents.sort_by(|a, b| a.client_name.cmp(&b.client_name));
    Ok(Some(Overview {
        phone: user.phone(data).map(|p| mask_mobile(&p)),
        id_number: user.id_number(data).map(|n| mask_id_number(&n)),
        user,
        sessions,
        companies,
        consents,
    }))
}

/// Ends the person's session `sid` (one of theirs only) with the logout broadcast; false when
/// it is not theirs or already over.
pub async fn end_session(ctx: logout::Ctx<'_>, sub: &str, sid: &str) -> Result<bool, StoreError> {
    if sid.is_empty() || sid.len() > 64 {
        return Ok(false);
    }
    match session::get(ctx.store, sid).await? {
        Some(s) if s.sub == sub => Ok(logout::end_session(ctx, sid, Reason::User, None).await?.is_some()),
        _ => Ok(false),
    }
}

/// Revokes the person's consent to `client_id`: the tokens the client holds for them die
/// (their grants there are revoked, SH-8.2), and the next authorization asks again. The grants
/// go first: a crash before the consent is gone leaves it listed, to be revoked again.
pub async fn revoke_consent(store: &DynStore, sub: &str, client_id: &str, now: i64) -> Result<bool, StoreError> {
    if client_id.is_empty() || client_id.len() > 256 {
        return Ok(false);
    }
    crate::grant::family::revoke_of_user_at_client(store, sub, client_id, now).await?;
    crate::authorize::revoke_consent(store, sub, client_id).await
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The current password is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The new password breaks the policy.
    #[error("{0}")]
    Policy(&'static str),
    /// The account is gone or disabled.
    #[error("the account is not available")]
    Gone,
    /// Password hashing is saturated; retry.
    #[error("busy")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PasswordError> for ChangeError {
    fn from(e: PasswordError) -> Self {
        if let PasswordError::Hash(reason) = &e {
            tracing::error!(%reason, "password hashing failed");
        }
        Self::Busy
    }
}

/// Changes the password of the person of session `current` after checking the current one:
/// the generation moves on (every token dies), every session ends with the logout broadcast,
/// and this browser gets a fresh session under the new generation (returned).
pub async fn change_password(
    ctx: logout::Ctx<'_>,
    passwords: &PasswordPool,
    data: &DataKey,
    current: &Session,
    old_password: Secret,
    new_password: Secret,
    t: Timeouts,
) -> Result<Established, ChangeError> {
    users::check_password_policy(new_password.expose()).map_err(ChangeError::Policy)?;
    let old = users::get(ctx.store, &current.sub).await?.filter(|u| u.enabled).ok_or(ChangeError::Gone)?;
    if !passwords.verify(old_password, Some(old.password_hash.clone())).await? {
        return Err(ChangeError::WrongPassword);
    }
    let mut user = old.clone();
    user.password_hash = passwords.hash(new_password).await?;
    user.updated_at = ctx.now;
    users::update(ctx.store, data, &old, &mut user).await.map_err(|e| match e {
        WriteError::Store(e) => ChangeError::Store(e),
        WriteError::UsernameTaken | WriteError::Duplicate(_) => ChangeError::Gone,
    })?;
    logout::end_user_sessions(ctx, &user.id, Reason::AccountChanged, None, None).await?;
    let login = session::Login {
        sub: user.id.clone(),
        generation: user.generation,
        acr: current.acr.clone(),
        amr: vec!["pwd".into()],
        upstream: None,
        // Still acting for the legal person this browser acted for (HL-5.1).
        acting: current.acting.as_deref().cloned(),
    };
    Ok(session::establish(ctx, None, login, t).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        // SH-8.2: masked when shown.
        assert_eq!(mask_mobile("+8613812345678"), "138****5678");
        assert_eq!(mask_mobile("13812345678"), "138****5678");
        assert_eq!(mask_id_number("110101199003071234"), "110***********1234");
        assert_eq!(mask_id_number("E12345678"), "E******78");
        assert_eq!(mask_id_number(""), "");
    }
}
