//! Webhook push of the change feed (issue 12, SH-6.3.5): an application that registered a
//! `directory_webhook` gets every change in its visible scope POSTed as a JWT signed with our
//! current key, one feed entry per event, in cursor order. Durability: the feed is the intent;
//! each event's record is written (under an id derived from the cursor, so writing it again is
//! a no-op) before it is sent, retried with backoff, marked failed after a horizon; the cursor
//! delivered up to is advanced only after the outcome is recorded. Delivery runs in
//! [`worker`]; a receiver that missed events resyncs from the feed after its last cursor.

pub mod worker;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::feed::{self, Seen};
use crate::apps::Application;
use crate::crypto;
use crate::store::{self, DynStore, StoreError, keys};

/// How long event records are kept for the admin API, seconds (7 days).
pub const RECORD_TTL: u64 = 7 * 24 * 3600;

/// The JWT `typ` of a directory event (RFC 8725 s3.11 explicit typing).
pub const TYP: &str = "directory-event+jwt";

/// Where an event's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet acknowledged; will be (re)tried.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Gave up after the retry horizon; the receiver resyncs from the feed.
    Failed,
}

/// One event to one application's webhook, with its delivery status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Event id, also the JWT's `jti` (stable across retries: a receiver drops duplicates).
    pub id: String,
    /// The application.
    pub app_id: String,
    /// The feed cursor of the entry: reading the feed after it continues after this event.
    pub cursor: String,
    /// The entry's changes as the application sees them (one, or a visible scope change's).
    pub changes: Vec<Seen>,
    /// The application fell behind the feed's retention: resync in full, then continue from
    /// `cursor`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resync: bool,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// When the next attempt is due, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
}

/// How far one application's webhook got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Changes up to this feed cursor are delivered (or failed).
    pub cursor: String,
    /// The event being delivered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Random per registration of a webhook: event ids of an earlier registration differ.
    pub generation: String,
}

/// The id of the event at `cursor` of `app`'s webhook registration `generation`.
pub fn event_id(app: &str, generation: &str, cursor: &str, resync: bool) -> String {
    let digest = crypto::sha256(format!("dirhook\n{app}\n{generation}\n{cursor}\n{resync}").as_bytes());
    crypto::b64(digest.get(..16).unwrap_or(&digest))
}

/// Reads an application's webhook progress.
pub async fn progress(store: &DynStore, app: &str) -> Result<Option<Progress>, StoreError> {
    store::get_json(store.as_ref(), &keys::dir_hook(app)).await
}

/// Writes it.
pub async fn save_progress(store: &DynStore, app: &str, p: &Progress) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::dir_hook(app), p, None).await
}

/// Reads an event.
pub async fn get(store: &DynStore, id: &str) -> Result<Option<Event>, StoreError> {
    store::get_json(store.as_ref(), &keys::dir_hook_event(id)).await
}

/// Writes an event's status.
pub async fn save(store: &DynStore, e: &Event) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::dir_hook_event(&e.id), e, Some(RECORD_TTL)).await
}

/// Records `fresh` unless an event of that id exists (then returns the existing one).
pub async fn record(store: &DynStore, fresh: Event) -> Result<Event, StoreError> {
    let e = if store.put_new(&keys::dir_hook_event(&fresh.id), &store::encode(&fresh), Some(RECORD_TTL)).await? {
        fresh
    } else {
        match get(store, &fresh.id).await? {
            Some(existing) => existing,
            None => {
                save(store, &fresh).await?;
                fresh
            }
        }
    };
    store.set_add(&keys::dir_hook_events(&e.app_id), &e.id, Some(RECORD_TTL)).await?;
    Ok(e)
}

/// The delivery status of an application's webhook.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Status {
    /// The registered webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Changes up to this feed cursor are delivered or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The feed's head now (the cursor equals it when nothing is waiting).
    pub head: String,
    /// Events of the last 7 days, newest first (at most 100).
    pub deliveries: Vec<Event>,
}

fn seq(cursor: &str) -> u64 {
    cursor.strip_prefix('c').and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// The webhook status of `app`.
pub async fn status(store: &DynStore, app: &Application) -> Result<Status, StoreError> {
    let ids = store.set_members(&keys::dir_hook_events(&app.id)).await?;
    let keys: Vec<String> = ids.iter().map(|id| keys::dir_hook_event(id)).collect();
    let mut deliveries: Vec<Event> = Vec::new();
    if !keys.is_empty() {
        for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
            if let Some(bytes) = v {
                deliveries.push(store::decode(k, &bytes)?);
            }
        }
    }
    deliveries.sort_by(|a, b| seq(&b.cursor).cmp(&seq(&a.cursor)).then_with(|| b.created_at.cmp(&a.created_at)));
    deliveries.truncate(100);
    let cursor = progress(store, &app.id).await?.map(|p| p.cursor);
    Ok(Status {
        webhook: app.registration.directory_webhook.clone(),
        cursor,
        head: feed::head(store).await?,
        deliveries,
    })
}

/// Before an application with `webhook` is stored: a webhook registered now starts at the
/// feed's head (changes from now on are pushed; the receiver loads the rest with SCIM).
pub async fn prepare(store: &DynStore, app_id: &str, webhook: Option<&str>) -> Result<(), StoreError> {
    if webhook.is_none() || progress(store, app_id).await?.is_some() {
        return Ok(());
    }
    let p = Progress { cursor: feed::head(store).await?, current: None, generation: crypto::random_token(9) };
    store.put_new(&keys::dir_hook(app_id), &store::encode(&p), None).await.map(|_| ())
}

/// After an application is stored: schedules its webhook, or forgets it when it has none.
pub async fn schedule(store: &DynStore, app: &Application, now: i64) -> Result<(), StoreError> {
    match &app.registration.directory_webhook {
        Some(_) => store.queue_put_new(keys::DIR_HOOK_QUEUE, &app.id, app.id.as_bytes(), now).await.map(|_| ()),
        None => forget(store, &app.id).await,
    }
}

/// Drops an application's webhook progress and schedule (its event records expire).
pub async fn forget(store: &DynStore, app_id: &str) -> Result<(), StoreError> {
    store.queue_remove(keys::DIR_HOOK_QUEUE, app_id).await?;
    store.delete(&keys::dir_hook(app_id)).await.map(|_| ())
}

/// The webhook status of application `id`, or `NotFound`.
pub async fn status_of(store: &DynStore, id: &str) -> Result<Status, crate::apps::AppError> {
    let app = crate::apps::must_get(store, id).await?;
    Ok(status(store, &app).await?)
}
