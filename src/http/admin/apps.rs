//! `/admin/v1/applications`: the lifecycle of the business systems that use the platform
//! (AY-8, SH-6.2, SH-7): apply, review (approval allocates credentials), grey release, release,
//! suspend at once, extend a rectification once, return, go temporarily or for good offline
//! (grants revoked, records archived).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::{Api, op};
use super::clients::{ClientView, ClientWithSecret, view as client_view};
use super::{Admin, Caller, Json, Params, json};
use crate::apps::ops::{self, ApplicationInput, ExtensionInput, Issued, ReviewInput, TransitionInput};
use crate::apps::{self, Application, Review, State as Lifecycle, Transition, archive};
use crate::audit::Kind;
use crate::calendar::rfc3339;
use crate::http::AppState;
use crate::http::error::Problem;
use crate::registration::Metadata;

/// An application as the admin API shows it: contact phone masked (SH-8.2), its clients, and
/// its deadlines in local time.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplicationView {
    /// The record.
    #[serde(flatten)]
    pub app: Application,
    /// Its clients.
    pub client_details: Vec<ClientView>,
    /// The rectification deadline in force while suspended (AY-8.5.4), RFC 3339 local time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rectification_due: Option<String>,
    /// Whether that deadline has passed.
    pub rectification_overdue: bool,
    /// The review deadline while applied (AY-8.2.2), RFC 3339 local time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_due: Option<String>,
}

/// A list of applications.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApplicationList {
    /// The applications, by id.
    pub applications: Vec<ApplicationView>,
}

/// The outcome of a review: the record, the application, and on approval the first client's
/// credentials (the secret is shown this once).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewResult {
    /// The review record.
    pub review: Review,
    /// The application after the review.
    pub application: ApplicationView,
    /// The allocated client, on approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ClientWithSecret>,
}

/// Reviews of an application.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewList {
    /// Oldest first.
    pub reviews: Vec<Review>,
}

/// Transitions of an application.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TransitionList {
    /// Oldest first.
    pub transitions: Vec<Transition>,
}

/// Filter of the application list.
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    state: Option<String>,
}

/// Body of `POST .../clients`: RFC 7591 metadata bounded by the application's grant.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewClient {
    /// Wanted id; `<application id>.<random>` when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The client's metadata.
    #[serde(flatten)]
    pub metadata: Metadata,
}

async fn view(state: &AppState, mut app: Application) -> Result<ApplicationView, Problem> {
    let now = state.clock.now();
    let data = state.keys.data();
    app.registration.contact.phone = app
        .registration
        .contact
        .phone
        .as_deref()
        .and_then(|p| data.open(p, &ops::contact_context(&app.id)))
        .map(|p| crate::sealing::mask_phone(&p));
    let mut client_details = Vec::with_capacity(app.clients.len());
    for cid in &app.clients {
        if let Some(c) = crate::clients::get(&state.store, cid).await? {
            client_details.push(client_view(&c, now));
        }
    }
    let offset = state.calendar.offset();
    let deadline = app.suspension.as_ref().map(apps::Suspension::effective_deadline);
    Ok(ApplicationView {
        rectification_due: deadline.map(|d| rfc3339(d, offset)),
        rectification_overdue: deadline.is_some_and(|d| now > d),
        review_due: app.review_due_at.filter(|_| app.state == Lifecycle::Applied).map(|d| rfc3339(d, offset)),
        client_details,
        app,
    })
}

fn credentials(issued: Issued, now: i64) -> ClientWithSecret {
    ClientWithSecret {
        client: client_view(&issued.client, now),
        client_secret: issued.secret.map(|s| s.expose().to_owned()),
    }
}

async fn list(State(state): State<AppState>, _: Admin, Params(q): Params<ListQuery>) -> Result<Response, Problem> {
    let filter = match q.state.as_deref() {
        Some(s) => Some(Lifecycle::parse(s).ok_or_else(|| Problem::bad_request(format!("no state '{s}'")))?),
        None => None,
    };
    let mut applications = Vec::new();
    for app in apps::list(&state.store, filter).await? {
        applications.push(view(&state, app).await?);
    }
    Ok(json(StatusCode::OK, &ApplicationList { applications }))
}

async fn create(
    State(state): State<AppState>,
    Admin(who): Admin,
    Json(input): Json<ApplicationInput>,
) -> Result<Response, Problem> {
    let app = ops::apply(who.apps_ctx(&state), input).await?;
    who.about_app(&app.id);
    Ok(json(StatusCode::CREATED, &view(&state, app).await?))
}

async fn read(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_app(&id);
    let app = apps::must_get(&state.store, &id).await?;
    Ok(json(StatusCode::OK, &view(&state, app).await?))
}

async fn update(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(input): Json<ApplicationInput>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    let app = ops::update(who.apps_ctx(&state), &id, input).await?;
    Ok(json(StatusCode::OK, &view(&state, app).await?))
}

async fn review(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(input): Json<ReviewInput>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    let done = ops::review(who.apps_ctx(&state), &id, input).await?;
    let now = state.clock.now();
    if let Some(i) = &done.issued {
        who.about_client(&i.client.client_id);
        who.record_as(
            Kind::AppTransition,
            json!({"from": "applied", "to": "approved", "review": done.review.id, "reviewer": done.review.reviewer}),
        );
    }
    let body = ReviewResult {
        credentials: done.issued.map(|i| credentials(i, now)),
        review: done.review,
        application: view(&state, done.app).await?,
    };
    Ok(json(StatusCode::CREATED, &body))
}

async fn reviews(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    apps::must_get(&state.store, &id).await?;
    Ok(json(StatusCode::OK, &ReviewList { reviews: apps::reviews(&state.store, &id).await? }))
}

async fn transition(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(input): Json<TransitionInput>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    let to = input.to;
    let reason = input.reason.clone();
    let app = ops::transition(who.apps_ctx(&state), &id, input).await?;
    let last = apps::transitions(&state.store, &id).await?.pop();
    who.record_as(
        Kind::AppTransition,
        json!({"from": last.map(|t| t.from.as_str()), "to": to.as_str(), "reason": reason}),
    );
    let app = if to == Lifecycle::Offline { archive_now(&state, &who, app).await? } else { app };
    Ok(json(StatusCode::OK, &view(&state, app).await?))
}

async fn transitions(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    apps::must_get(&state.store, &id).await?;
    Ok(json(StatusCode::OK, &TransitionList { transitions: apps::transitions(&state.store, &id).await? }))
}

async fn extend(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(input): Json<ExtensionInput>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    let app = ops::extend(who.apps_ctx(&state), &id, input).await?;
    Ok(json(StatusCode::OK, &view(&state, app).await?))
}

async fn add_client(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(body): Json<NewClient>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    let ctx = who.apps_ctx(&state);
    let issued = ops::add_client(ctx, &id, body.metadata, body.client_id).await?;
    who.about_client(&issued.client.client_id);
    Ok(json(StatusCode::CREATED, &credentials(issued, state.clock.now())))
}

/// AY-8.6.4: writes the archive of an application that just went offline and records where.
async fn archive_now(state: &AppState, who: &Caller, app: Application) -> Result<Application, Problem> {
    let dir = std::path::PathBuf::from(&state.config.apps.archive_dir);
    let (app, failed) = archive::archive_offline(who.apps_ctx(state), &state.audit, &dir, app).await?;
    // The failure is in the log and in this call's audit record; the archive can be fetched live.
    if let Some(e) = failed {
        who.record_as(Kind::AppTransition, json!({"to": "offline", "archive_error": e.to_string()}));
    }
    Ok(app)
}

/// The archive: the one written when the application went offline, else built now.
async fn get_archive(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    who.about_app(&id);
    let app = apps::must_get(&state.store, &id).await?;
    Ok(axum::Json(archive::current(who.apps_ctx(&state), &state.audit, &app).await?).into_response())
}

/// Issue 12: the delivery status of the application's directory webhook.
async fn webhook_deliveries(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let status = crate::directory::webhook::status_of(&state.store, &id).await?;
    Ok(json(StatusCode::OK, &status))
}

/// This module's routes.
pub fn api() -> Api {
    let tag = "applications";
    Api::new()
        .get(
            "/admin/v1/applications",
            list,
            op("listApplications", "List applications", tag)
                .query("state", "only applications in this state")
                .ok::<ApplicationList>(200),
        )
        .post(
            "/admin/v1/applications",
            create,
            op("applyApplication", "Register an application (SH-6.2.2); it starts in 'applied'", tag)
                .body::<ApplicationInput>()
                .ok::<ApplicationView>(201)
                .errors(&[409, 413]),
        )
        .get(
            "/admin/v1/applications/{id}",
            read,
            op("getApplication", "Read an application", tag).ok::<ApplicationView>(200).errors(&[404]),
        )
        .put(
            "/admin/v1/applications/{id}",
            update,
            op("updateApplication", "Replace registration, grant and test users; clients follow at once", tag)
                .body::<ApplicationInput>()
                .ok::<ApplicationView>(200)
                .errors(&[404, 409, 413]),
        )
        .post(
            "/admin/v1/applications/{id}/reviews",
            review,
            op("reviewApplication", "Record a review (SH-6.2.3); approval allocates the first client", tag)
                .body::<ReviewInput>()
                .ok::<ReviewResult>(201)
                .errors(&[404, 409, 422]),
        )
        .get(
            "/admin/v1/applications/{id}/reviews",
            reviews,
            op("listReviews", "Review records", tag).ok::<ReviewList>(200).errors(&[404]),
        )
        .post(
            "/admin/v1/applications/{id}/transitions",
            transition,
            op("transitionApplication", "Move through the lifecycle; 409 on an illegal move", tag)
                .body::<TransitionInput>()
                .ok::<ApplicationView>(200)
                .errors(&[404, 409]),
        )
        .get(
            "/admin/v1/applications/{id}/transitions",
            transitions,
            op("listTransitions", "Lifecycle history", tag).ok::<TransitionList>(200).errors(&[404]),
        )
        .post(
            "/admin/v1/applications/{id}/suspension/extension",
            extend,
            op("extendRectification", "Extend a suspension's rectification once (AY-8.5.4)", tag)
                .body::<ExtensionInput>()
                .ok::<ApplicationView>(200)
                .errors(&[404, 409]),
        )
        .post(
            "/admin/v1/applications/{id}/clients",
            add_client,
            op("addApplicationClient", "Add a client within the application's grant", tag)
                .body::<NewClient>()
                .ok::<ClientWithSecret>(201)
                .errors(&[404, 409]),
        )
        .get(
            "/admin/v1/applications/{id}/archive",
            get_archive,
            op(
                "getApplicationArchive",
                "The archive (AY-8.6.4): registration, reviews, transitions, clients, calls",
                tag,
            )
            .ok::<Value>(200)
            .errors(&[404]),
        )
        .get(
            "/admin/v1/applications/{id}/webhook/deliveries",
            webhook_deliveries,
            op(
                "listWebhookDeliveries",
                "Directory webhook events of the last 7 days (pending, delivered, failed), newest first",
                tag,
            )
            .ok::<crate::directory::webhook::Status>(200)
            .errors(&[404]),
        )
}
