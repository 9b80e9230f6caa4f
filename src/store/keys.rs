//! Every stored type's key, in one place. Backends add their own prefix (Redis: `tz:` by
//! default). Secrets are never part of a key: codes and tokens are keyed by their SHA-256.
//!
//! Redis Cluster: a key's slot is the hash of its first `{...}` (its hash tag), else of the whole
//! key, and one script or transaction (MULTI) may only touch keys of one slot. So:
//! - a store call on one key (get, put, take, redeem, a compare-and-set...) needs no tag;
//! - keys that ONE script or transaction touches together share a tag made by [`tag`] from the
//!   entity they belong to (a queue's two keys: `{queue:NAME}`, `{queue:NAME}:data`; a session's:
//!   `session:{SID}`, `session:{SID}:clients`); add new keys of such an entity the same way;
//! - reads of several keys in one round trip (`get_many`) need no tag: the cluster client splits
//!   them by slot. Keys of different entities can never be changed atomically together.
//!
//! The prefix may not contain braces (config validation refuses it). The memory backend treats
//! keys as opaque strings, so the tags change nothing there.

/// The pieces of a key, joined: what `format!` makes of them, without its formatting
/// machinery (keys are built on every request's hot path; issue 13).
fn join<const N: usize>(parts: [&str; N]) -> String {
    parts.concat()
}

/// The hash tag of one entity: every key containing it lands in the same Redis Cluster slot.
/// `entity` must not be empty (Redis ignores an empty tag).
pub fn tag(entity: &str) -> String {
    join(["{", entity, "}"])
}

/// A registered client, by client_id.
pub fn client(client_id: &str) -> String {
    join(["client:", client_id])
}
/// The set of all client ids.
pub const CLIENT_INDEX: &str = "clients";
/// A user, by user id.
pub fn user(user_id: &str) -> String {
    join(["user:", user_id])
}
/// Username -> user id (unique).
pub fn username(name: &str) -> String {
    format!("username:{}", name.to_lowercase())
}
/// The set of all user ids.
pub const USER_INDEX: &str = "users";
/// A legal person (HL-5.1), by id.
pub fn legal_person(id: &str) -> String {
    join(["legal:", id])
}
/// Unified social credit code (upper-cased) -> legal person id (unique; empty once freed).
pub fn legal_uscc(uscc: &str) -> String {
    format!("legal:uscc:{}", uscc.to_uppercase())
}
/// The set of all legal person ids.
pub const LEGAL_INDEX: &str = "legals";
/// The legal persons a natural person is an agent of (a hint; each record's agents decide).
pub fn acting_for(user_id: &str) -> String {
    join(["user:", user_id, ":actingfor"])
}
/// A blind index of users (SH-8.2): `kind` (`phone`, `idn`) and the keyed hash of the value ->
/// user id (unique).
pub fn user_lookup(kind: &str, hash: &str) -> String {
    join(["userlookup:", kind, ":", hash])
}
/// An SSO session, by sid (tagged by the sid, like every key of the session).
pub fn session(sid: &str) -> String {
    join(["session:{", sid, "}"])
}
/// The clients an SSO session issued tokens to.
pub fn session_clients(sid: &str) -> String {
    join(["session:{", sid, "}:clients"])
}
/// A pending authorization request waiting for login or consent.
pub fn auth_request(id: &str) -> String {
    join(["authreq:", id])
}
/// The pending requests of one browser, by the SHA-256 of its binding cookie.
pub fn browser_auth_requests(browser_hash: &str) -> String {
    join(["authreq:browser:", browser_hash])
}
/// A queue's schedule (the backend's sorted set of item ids by due time), tagged by the queue's
/// name so the queue's scripts touch one slot.
pub fn queue_schedule(queue: &str) -> String {
    tag(queue)
}
/// A queue's payloads (the backend's hash of item id -> payload), beside its schedule.
pub fn queue_payloads(queue: &str) -> String {
    join(["{", queue, "}:data"])
}
/// Queue of all pending requests, by creation time (the global cap evicts the oldest).
pub const AUTH_REQUEST_QUEUE: &str = "queue:authreq";
/// An authorization code, by the SHA-256 of the code.
pub fn code(code_hash: &str) -> String {
    join(["code:", code_hash])
}
/// A refresh token, by the SHA-256 of the token.
pub fn refresh_token(token_hash: &str) -> String {
    join(["rt:", token_hash])
}
/// A grant (token family), by its id (`gid`): its tokens are alive only while it is.
pub fn family(grant_id: &str) -> String {
    join(["grant:", grant_id])
}
/// The successor a refresh token's first use issued, sealed under the token itself, kept for
/// the reuse grace window so a client's retry gets the same answer (RFC 9700 s4.14.2).
pub fn refresh_successor(token_hash: &str) -> String {
    join(["rt:", token_hash, ":next"])
}
/// Marker: one access token (by jti) is revoked.
pub fn revoked_jti(jti: &str) -> String {
    join(["revoked:jti:", jti])
}
/// A user's consent to a client (the scopes granted).
pub fn consent(subject: &str, client_id: &str) -> String {
    join(["consent:", subject, ":", client_id])
}
/// A private_key_jwt assertion id already used (replay guard, RFC 7523 s3).
pub fn assertion_jti(client_id: &str, jti: &str) -> String {
    join(["assertion:", client_id, ":", jti])
}
/// The sessions of a user (for "log out everywhere").
pub fn user_sessions(sub: &str) -> String {
    join(["user:", sub, ":sessions"])
}
/// Queue of session expiry times (for the expiry logout broadcast).
pub const SESSION_EXPIRY_QUEUE: &str = "queue:session-expiry";
/// Queue of back-channel logout deliveries (the durable outbox).
pub const OUTBOX_QUEUE: &str = "queue:logout-outbox";
/// Queue of logout intents, by `sid:<sid>` or `user:<id>`: written before a session is
/// removed, dropped once its deliveries are queued (see `logout::intent`).
pub const LOGOUT_INTENT_QUEUE: &str = "queue:logout-intents";
/// A back-channel delivery's status record.
pub fn delivery(id: &str) -> String {
    join(["delivery:", id])
}
/// Deliveries made for one session.
pub fn session_deliveries(sid: &str) -> String {
    join(["deliveries:sid:", sid])
}
/// Deliveries made to one client.
pub fn client_deliveries(client_id: &str) -> String {
    join(["deliveries:client:", client_id])
}
/// A pending RP-initiated logout waiting for the user's confirmation.
pub fn logout_request(id: &str) -> String {
    join(["logoutreq:", id])
}
/// An application, by id.
pub fn app(id: &str) -> String {
    join(["app:", id])
}
/// The set of all application ids.
pub const APP_INDEX: &str = "apps";
/// An application's review records (a JSON list).
pub fn app_reviews(id: &str) -> String {
    join(["app:", id, ":reviews"])
}
/// An application's transitions (a JSON list, append-only).
pub fn app_transitions(id: &str) -> String {
    join(["app:", id, ":transitions"])
}
/// Held while one admin request changes an application, so two cannot interleave.
pub fn app_lock(id: &str) -> String {
    join(["lock:app:", id])
}
/// A scope of the catalogue, by name.
pub fn scope(name: &str) -> String {
    join(["scope:", name])
}
/// The set of catalogue scope names.
pub const SCOPE_INDEX: &str = "scopes";
/// The users who consented to a client (so its consents can be revoked).
pub fn client_consents(client_id: &str) -> String {
    join(["client:", client_id, ":consents"])
}
/// The clients a user consented to (so the account page can list and revoke them, SH-8.2).
pub fn user_consents(sub: &str) -> String {
    join(["user:", sub, ":consents"])
}
/// A trusted platform, by id.
pub fn trust(id: &str) -> String {
    join(["trust:", id])
}
/// The set of trust ids.
pub const TRUST_INDEX: &str = "trusts";
/// A login sent to an upstream platform, by its `state`.
pub fn fed_state(state: &str) -> String {
    join(["fedstate:", state])
}
/// The local account linked to an upstream subject.
pub fn fed_link(trust: &str, upstream_sub: &str) -> String {
    join(["fedlink:", trust, ":", upstream_sub])
}
/// The upstream subjects linked to a local account (trust:sub members).
pub fn fed_links_of(local_sub: &str) -> String {
    join(["user:", local_sub, ":fedlinks"])
}
/// Local sessions that came from one upstream session.
pub fn fed_sessions_by_sid(trust: &str, upstream_sid: &str) -> String {
    join(["fedsid:", trust, ":", upstream_sid])
}
/// Local sessions that came from one upstream subject.
pub fn fed_sessions_by_sub(trust: &str, upstream_sub: &str) -> String {
    join(["fedsub:", trust, ":", upstream_sub])
}
/// Marker: a logout token from a peer (by issuer and jti) was already acted on.
pub fn fed_logout_jti(issuer_hash: &str, jti: &str) -> String {
    join(["fedjti:", issuer_hash, ":", jti])
}
/// Guessing guard: failures of one subject (`ip:..`, `acct:..`, `pair:..`) in one window bucket.
pub fn guard_failures(realm: &str, subject: &str, bucket: i64) -> String {
    format!("guard:{realm}:n:{subject}:{bucket}")
}
/// Guessing guard: a delay or lockout of one subject (no attempt before its `until`).
pub fn guard_hold(realm: &str, subject: &str) -> String {
    join(["guard:", realm, ":hold:", subject])
}
/// Guessing guard: an attempt on the account is being checked (one at a time).
pub fn guard_busy(realm: &str, account: &str) -> String {
    join(["guard:", realm, ":busy:", account])
}
/// Guessing guard: some failure of one subject (`ip:..`, `acct:..`) may still count, so its
/// counters and holds must be read; absent, the subject has none (the token endpoint's fast path).
pub fn guard_mark(realm: &str, subject: &str) -> String {
    join(["guard:", realm, ":mark:", subject])
}
/// Guessing guard: the addresses that failed on an account (so an unlock can clear them).
pub fn guard_addresses(realm: &str, account: &str) -> String {
    join(["guard:", realm, ":ips:", account])
}
/// Written once the bootstrap data from `[seed]` is in the store; its absence means the store
/// came back empty (a Redis restart without persistence, FLUSHALL) and must be seeded again.
pub const SEED_MARKER: &str = "seed:done";
/// Readiness: the key one instance writes to prove the store takes writes.
pub fn write_probe(instance: &str) -> String {
    join(["probe:", instance])
}
/// The shared key set: signing keys and the data key, sealed under the key-encryption key.
pub const KEYSET: &str = "keyset";
/// A one-time code (GB-6.4a) for `purpose` (`signup`, `reset`), by the keyed hash of the phone.
pub fn otp_code(purpose: &str, phone_hash: &str) -> String {
    join(["otp:", purpose, ":", phone_hash])
}
/// Wrong entries of one one-time code, by the code's id.
pub fn otp_tries(id: &str) -> String {
    join(["otp:tries:", id])
}
/// The pause before another code for `purpose` may be sent to a phone (its keyed hash).
pub fn otp_pause(purpose: &str, phone_hash: &str) -> String {
    join(["otp:", purpose, ":", phone_hash, ":pause"])
}
/// Codes sent to one subject (`phone:<hash>`, `ip:<address>`) in one window bucket.
pub fn otp_sent(subject: &str, bucket: i64) -> String {
    format!("otp:n:{subject}:{bucket}")
}
/// Name search index (HL-5.1 admin search): `realm` (`user`, `legal`) and the hash of one
/// normalised name prefix -> the set of ids whose name starts with it (a hint: the records
/// decide).
pub fn name_index(realm: &str, hash: &str) -> String {
    join(["nameidx:", realm, ":", hash])
}
/// The agent who authenticated for pending request `req_id` and has yet to pick the legal
/// person they act for (HL-5.1); lives no longer than the pending request.
pub fn acting_choice(req_id: &str) -> String {
    join(["authreq:", req_id, ":acting"])
}

/// An append-only log's entries (the backend's sorted set by sequence number), tagged by the
/// log's name so its append script touches one slot.
pub fn log_entries(log: &str) -> String {
    join(["log:{", log, "}"])
}
/// An append-only log's sequence counter, beside its entries.
pub fn log_counter(log: &str) -> String {
    join(["log:{", log, "}:seq"])
}
/// An organization of the directory (issue 12), by id.
pub fn dir_org(id: &str) -> String {
    join(["dir:org:", id])
}
/// The directory's record of a person (membership titles and order, SCIM attributes), by user id.
pub fn dir_person(user_id: &str) -> String {
    join(["dir:person:", user_id])
}
/// A lexicographic index of the directory, by name (`orgs`, `users:name`, ...: see
/// `directory::index`).
pub fn dir_index(name: &str) -> String {
    join(["dir:ix:", name])
}
/// The people of one organization (direct members): an index of user ids.
pub fn dir_org_members(org_id: &str) -> String {
    join(["dir:org:", org_id, ":members"])
}
/// A unique directory value (`kind`: `org-ext`, `org-code`, `user-ext`) -> the id holding it.
pub fn dir_claim(kind: &str, value: &str) -> String {
    join(["dir:claim:", kind, ":", value])
}
/// Held while one request moves or deletes a part of the organization tree.
pub const DIR_TREE_LOCK: &str = "lock:dir:tree";
/// The directory's change feed (an append-only log).
pub const DIR_FEED: &str = "dir:feed";
/// The last sequence number trimmed from the change feed (older cursors must resync).
pub const DIR_FEED_TRIMMED: &str = "dir:feed:trimmed";
/// Real-name verifications a person started in one day (UTC day number): a counter with a TTL.
pub fn verify_attempts(user_id: &str, day: i64) -> String {
    format!("verify:n:{user_id}:{day}")
}
/// The intent of a change of one application's visible scope (issue 12), written before the
/// application is, until the feed entry that announces it is appended.
pub fn dir_scope_intent(app_id: &str) -> String {
    join(["dir:scopechg:", app_id])
}
/// Applications with a visible scope change intent outstanding (for recovery).
pub const DIR_SCOPE_INTENTS: &str = "dir:scopechg:pending";
/// How far an application's directory webhook got (issue 12): the feed cursor delivered up to
/// and the event in delivery.
pub fn dir_hook(app_id: &str) -> String {
    join(["dir:hook:", app_id])
}
/// One directory webhook event and its delivery status, by event id (its `jti`).
pub fn dir_hook_event(id: &str) -> String {
    join(["dir:hookev:", id])
}
/// The ids of one application's webhook events (for the admin API).
pub fn dir_hook_events(app_id: &str) -> String {
    join(["dir:hook:", app_id, ":events"])
}
/// Applications with a directory webhook, leased by the instance pushing their events.
pub const DIR_HOOK_QUEUE: &str = "queue:dir-hooks";
/// The layout version of the directory's people indexes the store holds (absent: built before
/// the directory, see `directory::reindex`).
pub const DIR_INDEX_VERSION: &str = "dir:ix:version";
/// Held (value: when it runs out) while one instance rebuilds the directory's people indexes.
pub const DIR_REINDEX_LOCK: &str = "lock:dir:reindex";
/// The grants (token families, by `gid`) of one user at one client, so that withdrawing the
/// consent to that client from the account page ends them (SH-8.2).
pub fn user_client_families(sub: &str, client_id: &str) -> String {
    join(["families:", sub, ":", client_id])
}
/// Present (with a short TTL) while the record `id` is being created: its unique-value claims
/// are not taken over meanwhile (`store::claim`).
pub fn in_flight(id: &str) -> String {
    join(["wip:", id])
}
