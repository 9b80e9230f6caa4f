//! Keeps the bootstrap data of `[seed]` in the store: written at start, retried every second while
//! the store cannot take it (Redis may come up after us), and written again when the store comes
//! back empty (Redis restarted without persistence, FLUSHALL). A marker key says the data is
//! there; it is checked every `server.seed_check_secs`, and at once when readiness finds it gone.

use std::time::Duration;

use tokio::sync::watch;

use super::ServerError;
use crate::http::AppState;
use crate::store::keys;

/// Wait before another try while the store cannot be seeded.
const RETRY: Duration = Duration::from_secs(1);

/// Writes the seed data, then the marker that says it is there.
pub async fn seed_once(state: &AppState) -> Result<(), ServerError> {
    super::seed(state).await?;
    let now = state.clock.now().to_string();
    state.store.put(keys::SEED_MARKER, now.as_bytes(), None).await?;
    crate::directory::reindex::ensure(&state.store, state.clock.now()).await?;
    Ok(())
}

/// Finishes a directory reindex another instance left (it died while holding the lease):
/// one read of the version marker once done. Returns the wait before the next check.
async fn reindex(state: &AppState, every: Duration) -> Duration {
    match crate::directory::reindex::ensure(&state.store, state.clock.now()).await {
        Ok(_) => every,
        Err(e) => {
            tracing::warn!(error = %e, "directory reindex not done yet; retrying");
            RETRY
        }
    }
}

/// Checks the marker and seeds when it is missing, until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config.server.seed_check_secs);
    loop {
        let wait = match state.store.get(keys::SEED_MARKER).await {
            Ok(Some(_)) => reindex(&state, every).await,
            Ok(None) => match seed_once(&state).await {
                Ok(()) => {
                    tracing::info!("bootstrap data from [seed] written: the store had none");
                    every
                }
                Err(ServerError::Store(e)) => {
                    tracing::warn!(error = %e, "bootstrap data not written yet; retrying");
                    RETRY
                }
                Err(e) => {
                    tracing::error!(error = %e, "bootstrap data cannot be written");
                    every
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "seed marker not readable; retrying");
                RETRY
            }
        };
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
            () = state.instance.seeder_woken() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
