//! Who may log in to an application's clients, decided at the authorization endpoint once the
//! user is known: its test users while `approved` (AY-8.3), the grey-release audience while
//! `pre_release` (SH-6.2.7 b), and people of its visible scope once `released` (SH-6.2.2).

use super::{Application, Maintenance, State, get};
use crate::clients::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::store::{DynStore, StoreError};
use crate::users;

/// Why a client refuses to start a login at all, before anyone logs in: the application is
/// not in a state that admits logins.
pub fn refuses_logins(client: &Client) -> Option<OAuthError> {
    let state = client.lifecycle?;
    if state.admits_logins() {
        return None;
    }
    let code = if state == State::TemporarilyOffline {
        ErrorCode::TemporarilyUnavailable
    } else {
        ErrorCode::UnauthorizedClient
    };
    Some(OAuthError::new(code, state.refusal()))
}

/// An application that takes no logins now, as its citizens' page shows it.
#[derive(Debug, Clone)]
pub struct Closed {
    /// Its state.
    pub state: State,
    /// The application's name (the client's when it has none).
    pub name: String,
    /// The maintenance window, while `temporarily_offline` (reason, expected return, contact).
    pub maintenance: Option<Maintenance>,
    /// The OAuth error of the refusal (for the page's technical details and for operators).
    pub error: OAuthError,
}

/// [`refuses_logins`], with what the citizens' page needs: the application's name and its
/// maintenance window.
pub async fn closed(store: &DynStore, client: &Client) -> Result<Option<Closed>, StoreError> {
    let (Some(error), Some(state)) = (refuses_logins(client), client.lifecycle) else {
        return Ok(None);
    };
    let app = match &client.app_id {
        Some(id) => get(store, id).await?,
        None => None,
    };
    let name = app.as_ref().map_or_else(|| client.name.clone(), |a| a.registration.name.clone());
    let maintenance = app.and_then(|a| a.maintenance).filter(|_| state == State::TemporarilyOffline);
    Ok(Some(Closed { state, name, maintenance, error }))
}

/// Whether the application behind `client` admits user `sub`. `Ok(None)` admits; `Ok(Some)`
/// is the `access_denied` to send back to the client.
pub async fn admits(store: &DynStore, client: &Client, sub: &str) -> Result<Option<OAuthError>, StoreError> {
    let (Some(app_id), Some(_)) = (&client.app_id, client.lifecycle) else {
        return Ok(None);
    };
    let Some(app) = get(store, app_id).await? else {
        return Ok(Some(denied("the application no longer exists")));
    };
    let user = users::get(store, sub).await?;
    let (username, orgs) = user.as_ref().map_or(("", &[][..]), |u| (u.username.as_str(), u.orgs.as_slice()));
    Ok(verdict(&app, sub, username, orgs))
}

fn denied(why: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, why)
}

/// The admission rule itself, on records.
pub fn verdict(app: &Application, sub: &str, username: &str, orgs: &[String]) -> Option<OAuthError> {
    match app.state {
        State::Approved => {
            let tester = app.test_users.iter().any(|u| u == sub || u.eq_ignore_ascii_case(username));
            (!tester).then(|| denied("the application is being tested; only its test users may log in"))
        }
        State::PreRelease => (!app.pre_release.admits(sub, username, orgs))
            .then(|| denied("the application is in a grey release; you are not in its audience")),
        State::Released => {
            let scope = &app.registration.visible_scope;
            let visible = scope.is_empty() || scope.iter().any(|o| orgs.contains(o));
            (!visible).then(|| denied("the application is not available to your organization"))
        }
        State::Applied | State::Suspended | State::TemporarilyOffline | State::Offline => {
            Some(denied(app.state.refusal()))
        }
    }
}
