//! What admins do to an application: apply (SH-6.2.2), change its registration and grant,
//! review it (SH-6.2.3; approval allocates credentials, AY-8.2.3), move it through the state
//! machine, extend a rectification once (AY-8.5.4), and add clients. Each change holds the
//! application's lock, writes its clients before the application itself (so a failure half-way
//! leaves the clients stricter, never laxer, and a retry converges), and appends a transition.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    AppError, Application, Audience, Category, Ctx, Decision, Evidence, EvidenceKind, Extension, Grants, Lock,
    Maintenance, Registration, Retest, Review, State, Suspension, Transition, get, must_get, put, reviews, transitions,
    valid_id,
};
use crate::clients::{self, Client};
use crate::crypto::{self, Secret};
use crate::directory::{scope_change, webhook};
use crate::registration::{Metadata, Registrar};
use crate::store::{self, keys};

/// An application as submitted (create) or replaced (update).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    /// Wanted id (3-64 of letters, digits, '-', '_', '.'); generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// SH-6.2.2 registration fields.
    #[serde(flatten)]
    pub registration: Registration,
    /// The grant its clients get.
    pub grants: Grants,
    /// Users allowed to log in while it is tested (`approved`).
    #[serde(default)]
    pub test_users: Vec<String>,
}

/// A reviewer's record (SH-6.2.3).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// Reviewer's name or id.
    pub reviewer: String,
    /// The decision.
    pub decision: Decision,
    /// Evidence checked.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Comment.
    #[serde(default)]
    pub comment: String,
}

/// A requested move of the state machine.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionInput {
    /// The target state.
    pub to: State,
    /// Why (required for suspended, temporarily_offline and offline).
    #[serde(default)]
    pub reason: String,
    /// Who may log in during the grey release (required for pre_release from approved).
    #[serde(default)]
    pub audience: Option<Audience>,
    /// The re-test after rectification (required to leave suspended for a live state).
    #[serde(default)]
    pub retest: Option<Retest>,
    /// When the application is expected back (Unix seconds, in the future); only when moving
    /// to temporarily_offline. Shown on the citizens' maintenance page.
    #[serde(default)]
    pub until: Option<i64>,
    /// Whom citizens may contact during the maintenance (at most 200 characters); only when
    /// moving to temporarily_offline. Shown on the citizens' maintenance page.
    #[serde(default)]
    pub contact: Option<String>,
}

/// A request to extend the rectification of a suspension (AY-8.5.4).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionInput {
    /// Working days to add (1 ..= `apps.max_extension_days`).
    pub working_days: u32,
    /// Why.
    pub reason: String,
}

/// Credentials allocated to a new client; the secret is shown once.
#[derive(Debug)]
pub struct Issued {
    /// The client.
    pub client: Client,
    /// Its secret, when it authenticates with one.
    pub secret: Option<Secret>,
}

/// What a review did.
#[derive(Debug)]
pub struct Reviewed {
    /// The application after the review.
    pub app: Application,
    /// The review record.
    pub review: Review,
    /// Credentials, when the review approved.
    pub issued: Option<Issued>,
}

fn invalid(msg: impl Into<String>) -> AppError {
    AppError::Invalid(msg.into())
}

fn check_text(field: &str, value: &str, required: bool, max: usize) -> Result<(), AppError> {
    if required && value.trim().is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(format!("{field}: at most {max} characters, no control characters")));
    }
    Ok(())
}

fn check_ids(field: &str, list: &[String]) -> Result<(), AppError> {
    if list.len() > 10_000 {
        return Err(invalid(format!("{field}: at most 10000 entries")));
    }
    match list.iter().find(|s| s.is_empty() || s.len() > 128 || s.chars().any(char::is_control)) {
        Some(bad) => Err(invalid(format!("{field}: '{bad}' is not a valid id (1-128 characters)"))),
        None => Ok(()),
    }
}

/// Validates the registration and grant, and returns the client template they describe.
async fn validate(ctx: Ctx<'_>, id: &str, reg: &Registration, grants: &Grants) -> Result<Client, AppError> {
    check_text("name", &reg.name, true, 200)?;
    check_text("description", &reg.description, false, 2000)?;
    check_text("industry_theme", &reg.industry_theme, false, 200)?;
    check_text("developer", &reg.developer, true, 200)?;
    check_text("owning_unit", &reg.owning_unit, true, 200)?;
    check_text("contact.name", &reg.contact.name, true, 100)?;
    check_ids("visible_scope", &reg.visible_scope)?;
    if let Some(hook) = &reg.directory_webhook {
        // Issue 12: the server posts to it, so the SSRF rules apply (https; http on loopback
        // in dev mode).
        check_text("directory_webhook", hook, true, 2000)?;
        crate::registration::check_uri(hook, ctx.dev).map_err(|e| invalid(format!("directory_webhook: {e}")))?;
        ctx.outbound.check_url(hook).map_err(|e| invalid(format!("directory_webhook: {e}")))?;
    }
    if let Some(uri) = &reg.policy_uri {
        // Shown to people as a link: a web page, never `javascript:` or `data:`.
        crate::registration::check_uri(uri, ctx.dev).map_err(|e| invalid(format!("policy_uri: {e}")))?;
    }
    // A stored registration carries the phone sealed; a submitted one in clear.
    if let Some(p) = reg.contact.phone.as_deref().filter(|p| !crate::sealing::DataKey::is_sealed(p)) {
        check_text("contact.phone", p, false, 40)?;
    }
    let requested: Vec<String> = grants.scopes.clone();
    if let Some(bad) = requested.iter().find(|s| !crate::scopes::valid_name(s)) {
        return Err(invalid(format!("scope '{bad}' is not a valid scope token (RFC 6749 s3.3)")));
    }
    clients::managed_by_admin(None, &requested, ctx.audit_scope)?;
    let unknown = crate::scopes::unknown(ctx.store, ctx.builtin_scopes, &requested).await?;
    if !unknown.is_empty() {
        // AY-7.1: only catalogue scopes can be granted.
        return Err(invalid(format!("scopes not in the catalogue: {}", unknown.join(", "))));
    }
    if let Some(ttl) = grants.access_token_ttl
        && !(60..=86_400).contains(&ttl)
    {
        return Err(invalid("grants.access_token_ttl must be 60..=86400 seconds"));
    }
    if let Some(ttl) = grants.refresh_token_ttl
        && !(60..=31_536_000).contains(&ttl)
    {
        return Err(invalid("grants.refresh_token_ttl must be 60..=31536000 seconds"));
    }
    if let Some(rl) = &grants.rate_limit {
        rl.validate().map_err(invalid)?;
    }
    if reg.app_type == super::AppType::Service && grants.grant_types.iter().any(|g| g != "client_credentials") {
        return Err(invalid("a service application has no users: client_credentials only"));
    }
    let meta = Metadata {
        redirect_uris: grants.redirect_uris.clone(),
        grant_types: Some(grants.grant_types.clone()),
        client_name: Some(reg.name.clone()),
        scope: Some(requested.join(" ")),
        post_logout_redirect_uris: grants.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: grants.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: grants.backchannel_logout_uri.is_some(),
        frontchannel_logout_uri: grants.frontchannel_logout_uri.clone(),
        frontchannel_logout_session_required: grants.frontchannel_logout_uri.is_some(),
        ..Metadata::default()
    };
    let mut client = meta
        .into_client(id.to_owned(), Registrar::Admin, ctx.dev, ctx.now)
        .and_then(|c| crate::outbound::check_client(ctx.outbound, &c).map(|()| c))
        .map_err(|e| invalid(format!("grants: {}", e.description)))?;
    client.consent_required = false;
    Ok(client)
}

fn seal_contact(ctx: Ctx<'_>, id: &str, reg: &mut Registration) {
    if let Some(p) = reg.contact.phone.take().filter(|p| !p.is_empty()) {
        reg.contact.phone = Some(ctx.keys.data().seal(&p, &contact_context(id)));
    }
}

/// The sealing context of an application's contact phone.
pub fn contact_context(id: &str) -> String {
    format!("app:{id}:contact")
}

/// SH-6.2.2 / AY-8.2.1: registers an application in `applied`.
pub async fn apply(ctx: Ctx<'_>, input: ApplicationInput) -> Result<Application, AppError> {
    let id = match input.id {
        Some(id) if valid_id(&id) => id,
        Some(_) => return Err(invalid("id must be 3-64 characters of letters, digits, '-', '_' or '.'")),
        None => format!("app-{}", crypto::random_token(9).to_lowercase().replace(['-', '_'], "x")),
    };
    validate(ctx, &id, &input.registration, &input.grants).await?;
    check_ids("test_users", &input.test_users)?;
    if clients::get(ctx.store, &id).await?.is_some() {
        return Err(AppError::Conflict(format!("a client '{id}' already exists; choose another id")));
    }
    let mut registration = input.registration;
    seal_contact(ctx, &id, &mut registration);
    let app = Application {
        id: id.clone(),
        registration,
        grants: input.grants,
        state: State::Applied,
        state_since: ctx.now,
        clients: Vec::new(),
        test_users: input.test_users,
        pre_release: Audience::default(),
        suspension: None,
        maintenance: None,
        review_due_at: Some(ctx.calendar.deadline(ctx.now, ctx.config.review_days)),
        archive: None,
        created_by: ctx.actor.to_owned(),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    webhook::prepare(ctx.store, &id, app.registration.directory_webhook.as_deref()).await?;
    if !ctx.store.put_new(&keys::app(&id), &store::encode(&app), None).await? {
        return Err(AppError::Conflict(format!("application '{id}' already exists")));
    }
    ctx.store.set_add(keys::APP_INDEX, &id, None).await?;
    webhook::schedule(ctx.store, &app, ctx.now).await?;
    Ok(app)
}

/// Replaces the registration, grant and test users of an application that is not offline,
/// and brings its clients in line (scopes, grant types, lifetimes, limits at once: AY-7.1).
pub async fn update(ctx: Ctx<'_>, id: &str, input: ApplicationInput) -> Result<Application, AppError> {
    if input.id.as_deref().is_some_and(|i| i != id) {
        return Err(invalid("id cannot be changed"));
    }
    locked(ctx, id, async {
        let mut app = must_get(ctx.store, id).await?;
        if app.state == State::Offline {
            return Err(AppError::Conflict("an offline application cannot be changed".into()));
        }
        validate(ctx, id, &input.registration, &input.grants).await?;
        check_ids("test_users", &input.test_users)?;
        let mut registration = input.registration;
        seal_contact(ctx, id, &mut registration);
        // SH-6.2.4a: a change of the visible scope is announced in the directory feed; its
        // intent is written before the application and finished after it.
        let before = app.registration.visible_scope.clone();
        scope_change::settle(ctx.store, id, &before).await?;
        webhook::prepare(ctx.store, id, registration.directory_webhook.as_deref()).await?;
        let intent = scope_change::begin(ctx.store, id, &before, &registration.visible_scope, ctx.now).await?;
        app.registration = registration;
        app.grants = input.grants;
        app.test_users = input.test_users;
        app.updated_at = ctx.now;
        sync_clients(ctx, &app).await?;
        put(ctx.store, &app).await?;
        if let Some(intent) = intent {
            scope_change::finish(ctx.store, &intent, &app.registration.visible_scope).await?;
        }
        webhook::schedule(ctx.store, &app, ctx.now).await?;
        Ok(app)
    })
    .await
}

/// Evidence a category needs that the review does not show as checked and passed.
pub fn missing_evidence(category: Category, evidence: &[Evidence]) -> Vec<&'static str> {
    let has = |k: EvidenceKind| evidence.iter().any(|e| e.kind == k && e.passed);
    let mlps3 = evidence.iter().any(|e| e.kind == EvidenceKind::MlpsAssessment && e.passed && e.level >= Some(3));
    let mut missing = Vec::new();
    if !has(EvidenceKind::SoftwareTestReport) {
        missing.push("software_test_report");
    }
    match category {
        Category::Business | Category::Office => {
            if !has(EvidenceKind::MlpsAssessment) && !has(EvidenceKind::SecurityTestReport) {
                missing.push("mlps_assessment or security_test_report");
            }
        }
        Category::WorkSecret => {
            if !mlps3 {
                missing.push("mlps_assessment at level 3 or above");
            }
        }
    }
    if matches!(category, Category::Office | Category::WorkSecret) && !has(EvidenceKind::CryptoAssessment) {
        missing.push("crypto_assessment");
    }
    missing
}

/// SH-6.2.3 / AY-8.2.2: records a review; an approval moves `applied -> approved` and
/// allocates the first client's credentials (AY-8.2.3).
pub async fn review(ctx: Ctx<'_>, id: &str, input: ReviewInput) -> Result<Reviewed, AppError> {
    check_text("reviewer", &input.reviewer, true, 100)?;
    check_text("comment", &input.comment, false, 2000)?;
    if input.evidence.len() > 50 || input.evidence.iter().any(|e| e.reference.trim().is_empty()) {
        return Err(invalid("evidence: at most 50 entries, each with a reference"));
    }
    locked(ctx, id, async {
        let mut app = must_get(ctx.store, id).await?;
        if app.state != State::Applied {
            return Err(AppError::Conflict(format!(
                "only an application in 'applied' is reviewed; this one is '{}'",
                app.state.as_str()
            )));
        }
        if input.decision == Decision::Approve {
            let missing = missing_evidence(app.registration.category, &input.evidence);
            if !missing.is_empty() {
                return Err(AppError::MissingEvidence(format!(
                    "approving a {:?} application needs passed evidence: {}",
                    app.registration.category,
                    missing.join("; ")
                )));
            }
        }
        let review = Review {
            id: crypto::random_token(9),
            reviewer: input.reviewer,
            recorded_by: ctx.actor.to_owned(),
            at: ctx.now,
            decision: input.decision,
            evidence: input.evidence,
            comment: input.comment,
        };
        let issued = if review.decision == Decision::Approve {
            let template = validate(ctx, id, &app.registration, &app.grants).await?;
            let issued = new_client(ctx, &app, template, State::Approved).await?;
            app.clients.push(issued.client.client_id.clone());
            Some((issued, move_to(ctx, &mut app, State::Approved, &format!("review {} approved", review.id), None)))
        } else {
            None
        };
        app.updated_at = ctx.now;
        put(ctx.store, &app).await?;
        let issued = match issued {
            Some((issued, t)) => {
                append_transition(ctx, id, t).await?;
                Some(issued)
            }
            None => None,
        };
        let mut list = reviews(ctx.store, id).await?;
        list.push(review.clone());
        store::put_json(ctx.store.as_ref(), &keys::app_reviews(id), &list, None).await?;
        Ok(Reviewed { app, review, issued })
    })
    .await
}

/// Creates a client from `template` for `app`, with a secret when its method uses one.
async fn new_client(ctx: Ctx<'_>, app: &Application, mut template: Client, state: State) -> Result<Issued, AppError> {
    template.app_id = Some(app.id.clone());
    template.lifecycle = Some(state);
    template.access_token_ttl = app.grants.access_token_ttl;
    template.refresh_token_ttl = app.grants.refresh_token_ttl;
    template.rate_limit = app.grants.rate_limit;
    template.min_level = app.grants.min_level;
    let secret = clients::secrets::issue_first(&mut template);
    if !clients::create(ctx.store, &template).await? {
        return Err(AppError::Conflict(format!("a client '{}' already exists", template.client_id)));
    }
    Ok(Issued { client: template, secret })
}

/// Adds another client to a live or tested application (e.g. a public mobile client beside
/// the website). Its scopes and grant types are bounded by the application's grant.
pub async fn add_client(ctx: Ctx<'_>, id: &str, meta: Metadata, client_id: Option<String>) -> Result<Issued, AppError> {
    locked(ctx, id, async {
        let mut app = must_get(ctx.store, id).await?;
        if matches!(app.state, State::Applied | State::Offline) {
            return Err(AppError::Conflict(format!("an application in '{}' cannot get clients", app.state.as_str())));
        }
        let client_id = client_id.unwrap_or_else(|| format!("{id}.{}", crypto::random_token(6).to_lowercase()));
        if !valid_id(&client_id) {
            return Err(invalid("client_id must be 3-64 characters of letters, digits, '-', '_' or '.'"));
        }
        let mut client = meta
            .into_client(client_id, Registrar::Admin, ctx.dev, ctx.now)
            .and_then(|c| crate::outbound::check_client(ctx.outbound, &c).map(|()| c))
            .map_err(|e| invalid(format!("client: {}", e.description)))?;
        clients::managed_by_admin(None, &client.scopes, ctx.audit_scope)?;
        if let Some(s) = client.scopes.iter().find(|s| !app.grants.scopes.contains(s)) {
            return Err(invalid(format!("scope '{s}' is not in the application's grant (AY-7.1)")));
        }
        if let Some(g) = client.grant_types.iter().find(|g| !app.grants.grant_types.iter().any(|a| a == g.as_str())) {
            return Err(invalid(format!("grant type '{}' is not in the application's grant", g.as_str())));
        }
        client.consent_required = false;
        let issued = new_client(ctx, &app, client, app.state).await?;
        app.clients.push(issued.client.client_id.clone());
        app.updated_at = ctx.now;
        put(ctx.store, &app).await?;
        Ok(issued)
    })
    .await
}

/// Applies the application's grant and state to every one of its clients. The first client
/// (whose id is the application's) also takes the URIs; the others keep their own.
async fn sync_clients(ctx: Ctx<'_>, app: &Application) -> Result<(), AppError> {
    let template = if app.state == State::Offline { None } else { Some(validate_quiet(ctx, app).await?) };
    for cid in &app.clients {
        let Some(mut c) = clients::get(ctx.store, cid).await? else { continue };
        c.lifecycle = Some(app.state);
        c.rate_limit = app.grants.rate_limit;
        c.min_level = app.grants.min_level;
        c.access_token_ttl = app.grants.access_token_ttl;
        c.refresh_token_ttl = app.grants.refresh_token_ttl;
        match &template {
            Some(t) if c.client_id == app.id => {
                c.scopes.clone_from(&t.scopes);
                c.grant_types.clone_from(&t.grant_types);
                c.redirect_uris.clone_from(&t.redirect_uris);
                c.post_logout_redirect_uris.clone_from(&t.post_logout_redirect_uris);
                c.backchannel_logout_uri.clone_from(&t.backchannel_logout_uri);
                c.backchannel_logout_session_required = t.backchannel_logout_session_required;
                c.frontchannel_logout_uri.clone_from(&t.frontchannel_logout_uri);
                c.frontchannel_logout_session_required = t.frontchannel_logout_session_required;
                c.name.clone_from(&t.name);
            }
            Some(t) => {
                c.scopes.retain(|s| t.scopes.contains(s));
                c.grant_types.retain(|g| t.grant_types.contains(g));
            }
            None => {
                // AY-8.6.3: offline revokes the grant: no scopes, no secrets, no consents,
                // no registration token. The record stays so its id is never reused.
                c.scopes.clear();
                c.secrets.clear();
                c.registration_token_sealed = None;
                c.jwks = None;
                c.jwks_uri = None;
                crate::authorize::revoke_consents(ctx.store, &c.client_id).await?;
            }
        }
        clients::put(ctx.store, &c).await?;
    }
    Ok(())
}

async fn validate_quiet(ctx: Ctx<'_>, app: &Application) -> Result<Client, AppError> {
    validate(ctx, &app.id, &app.registration, &app.grants).await
}

/// Moves `app` to `to` in memory and returns the transition to append once it is stored.
fn move_to(ctx: Ctx<'_>, app: &mut Application, to: State, reason: &str, closed: Option<&Suspension>) -> Transition {
    let t = Transition {
        from: app.state,
        to,
        at: ctx.now,
        by: ctx.actor.to_owned(),
        reason: match closed {
            Some(s) => format!("{reason} (suspended {} for: {})", s.at, s.reason),
            None => reason.to_owned(),
        },
        request_id: ctx.request_id.map(str::to_owned),
    };
    app.state = to;
    app.state_since = ctx.now;
    t
}

/// Appends a transition to the application's history, after the move itself is stored (a
/// failed move is retried and recorded once).
async fn append_transition(ctx: Ctx<'_>, id: &str, t: Transition) -> Result<(), AppError> {
    let mut list = transitions(ctx.store, id).await?;
    list.push(t);
    store::put_json(ctx.store.as_ref(), &keys::app_transitions(id), &list, None).await?;
    Ok(())
}

/// Runs `op` holding the application's change lock, releasing it whatever the outcome.
async fn locked<T>(ctx: Ctx<'_>, id: &str, op: impl Future<Output = Result<T, AppError>>) -> Result<T, AppError> {
    let lock = Lock::take(ctx.store, id).await?;
    let result = op.await;
    lock.release().await?;
    result
}

/// Moves an application through the state machine, enforcing each move's rules.
pub async fn transition(ctx: Ctx<'_>, id: &str, input: TransitionInput) -> Result<Application, AppError> {
    check_text("reason", &input.reason, false, 2000)?;
    locked(ctx, id, async {
        let mut app = must_get(ctx.store, id).await?;
        let from = app.state;
        let to = input.to;
        if !from.can_move_to(to) {
            return Err(AppError::IllegalTransition { from, to });
        }
        let needs_reason = matches!(to, State::Suspended | State::TemporarilyOffline | State::Offline);
        if needs_reason && input.reason.trim().is_empty() {
            return Err(invalid(format!("moving to {} needs a reason", to.as_str())));
        }
        let mut closed = None;
        match (from, to) {
            (State::Applied, State::Approved) => {
                return Err(AppError::Conflict(
                    "an application is approved through a review (POST .../reviews)".into(),
                ));
            }
            (State::Approved, State::PreRelease) => {
                let audience = input.audience.clone().unwrap_or_default();
                if audience.users.is_empty() && audience.orgs.is_empty() {
                    return Err(invalid("a grey release (SH-6.2.7 b) needs an audience: users or orgs"));
                }
                check_ids("audience.users", &audience.users)?;
                check_ids("audience.orgs", &audience.orgs)?;
                app.pre_release = audience;
            }
            (State::Suspended, State::PreRelease | State::Released) => {
                let s = app.suspension.clone().ok_or_else(|| AppError::Conflict("no suspension on record".into()))?;
                if s.from != to {
                    return Err(AppError::Conflict(format!(
                        "it was suspended from {}; a passed re-test returns it there",
                        s.from.as_str()
                    )));
                }
                match &input.retest {
                    Some(r) if r.passed && !r.report.trim().is_empty() => {}
                    Some(r) if !r.passed => {
                        return Err(AppError::Conflict(
                            "the re-test failed: the application goes offline (AY-8.5.5)".into(),
                        ));
                    }
                    _ => return Err(invalid("leaving a suspension needs a passed re-test with its report (AY-8.5.5)")),
                }
                closed = app.suspension.take();
            }
            (_, State::Suspended) => {
                app.suspension = Some(Suspension {
                    reason: input.reason.clone(),
                    at: ctx.now,
                    by: ctx.actor.to_owned(),
                    from,
                    deadline: ctx.calendar.deadline(ctx.now, ctx.config.rectification_days),
                    extension: None,
                });
            }
            (State::Suspended, State::Offline) => closed = app.suspension.take(),
            _ => {}
        }
        app.maintenance = maintenance(ctx.now, to, &input)?;
        if input.audience.is_some() && !(from == State::Approved && to == State::PreRelease) {
            return Err(invalid("audience is only given when moving from approved to pre_release"));
        }
        let reason = match &input.retest {
            Some(r) => format!("{} (re-test {}: {})", input.reason, r.report, r.comment),
            None => input.reason.clone(),
        };
        let t = move_to(ctx, &mut app, to, reason.trim(), closed.as_ref());
        app.updated_at = ctx.now;
        // Clients first: a failure here leaves the application in its old state, and a retry
        // of the same move converges; the history records the move once it is stored.
        sync_clients(ctx, &app).await?;
        put(ctx.store, &app).await?;
        append_transition(ctx, id, t).await?;
        Ok(app)
    })
    .await
}

/// The maintenance window a move to `temporarily_offline` records (none for other states):
/// the reason, and the optional expected return and contact, checked.
fn maintenance(now: i64, to: State, input: &TransitionInput) -> Result<Option<Maintenance>, AppError> {
    if to != State::TemporarilyOffline {
        if input.until.is_some() || input.contact.is_some() {
            return Err(invalid("until and contact are only given when moving to temporarily_offline"));
        }
        return Ok(None);
    }
    if let Some(until) = input.until
        && (until <= now || until > now + 366 * 86_400)
    {
        return Err(invalid("until: a Unix time in the future, within a year"));
    }
    let contact = input.contact.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = contact {
        check_text("contact", c, true, 200)?;
    }
    Ok(Some(Maintenance {
        reason: input.reason.trim().to_owned(),
        since: now,
        until: input.until,
        contact: contact.map(str::to_owned),
    }))
}

/// AY-8.5.4: one extension of the rectification, of at most `max_extension_days` working days.
pub async fn extend(ctx: Ctx<'_>, id: &str, input: ExtensionInput) -> Result<Application, AppError> {
    check_text("reason", &input.reason, true, 2000)?;
    if input.working_days == 0 || input.working_days > ctx.config.max_extension_days {
        return Err(invalid(format!("an extension is 1..={} working days (AY-8.5.4)", ctx.config.max_extension_days)));
    }
    locked(ctx, id, async {
        let mut app = must_get(ctx.store, id).await?;
        let Some(s) = app.suspension.as_mut().filter(|_| app.state == State::Suspended) else {
            return Err(AppError::Conflict("only a suspended application's rectification can be extended".into()));
        };
        if s.extension.is_some() {
            return Err(AppError::Conflict(
                "this suspension was already extended once; AY-8.5.4 allows one extension per problem".into(),
            ));
        }
        s.extension = Some(Extension {
            working_days: input.working_days,
            reason: input.reason,
            at: ctx.now,
            by: ctx.actor.to_owned(),
            deadline: ctx.calendar.deadline(s.deadline, input.working_days),
        });
        app.updated_at = ctx.now;
        put(ctx.store, &app).await?;
        Ok(app)
    })
    .await
}

/// Reads an application and its clients.
pub async fn with_clients(ctx: Ctx<'_>, id: &str) -> Result<(Application, Vec<Client>), AppError> {
    let app = get(ctx.store, id).await?.ok_or_else(|| AppError::NotFound(format!("no application '{id}'")))?;
    let mut out = Vec::with_capacity(app.clients.len());
    for cid in &app.clients {
        if let Some(c) = clients::get(ctx.store, cid).await? {
            out.push(c);
        }
    }
    Ok((app, out))
}
