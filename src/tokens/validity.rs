//! The one authority on whether a token is alive, for whom and with what scope. Every path
//! that accepts a token asks here: the refresh grant, `/introspect`, `/revoke`, `/userinfo`,
//! token exchange, the admin API and every other bearer-protected endpoint.
//!
//! A token is alive only while every record it depends on is present and in good standing,
//! read in one store round trip: its client (enabled, application neither suspended nor
//! offline, AY-8.5.3.2), its grant family (present, not revoked, [`crate::grant::family`]),
//! its SSO session unless the family is `offline_access` (present and within its timeouts),
//! and its user (present, enabled, same token generation: a password change or a disabled
//! account kills everything issued before, offline tokens included). Nothing here is a
//! revocation marker that could expire before what it revokes, except the per-token `jti`
//! marker of RFC 7009, which lives exactly as long as the access token it names.

use crate::clients::Client;
use crate::clients::cache::ClientCache;
use crate::crypto;
use crate::grant::RefreshRecord;
use crate::grant::family::Family;
use crate::identity::PrincipalKind;
use crate::identity::acting::{self, Acting};
use crate::identity::claims::Principal;
use crate::identity::legal::LegalPerson;
use crate::identity::subject;
use crate::keys::Keys;
use crate::session::{Session, Timeouts};
use crate::store::{self, DynStore, StoreError, keys};
use crate::users::User;

use super::{AT_TYP, AccessClaims, IdClaims};

/// Why a token is not alive. Callers answer every one of these the same way on the wire
/// (`invalid_token`, `invalid_grant`, `active: false`); the reason is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    /// Not a token of ours: malformed, unknown, bad signature, wrong `typ` or issuer.
    Unknown,
    /// Past its `exp` (or its family's end, for refresh tokens).
    Expired,
    /// A refresh token that was already rotated (RFC 9700 s4.14.2), first used at `at`.
    Rotated {
        /// When it was first used.
        at: i64,
    },
    /// Revoked: the token itself (RFC 7009) or its grant family.
    Revoked,
    /// Its SSO session ended (logout, expiry) and it is not an `offline_access` token.
    SessionEnded,
    /// Its user was deleted or disabled, or changed their password since it was issued.
    UserGone,
    /// Its client is gone or disabled, or the client's application is suspended or offline.
    ClientBlocked,
    /// It was issued to an agent acting for a legal person (HL-5.1), and the agent was removed
    /// from the legal person, or the legal person was disabled or deleted.
    ActingEnded,
}

impl Dead {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Rotated { .. } => "rotated",
            Self::Revoked => "revoked",
            Self::SessionEnded => "session_ended",
            Self::UserGone => "user_gone",
            Self::ClientBlocked => "client_blocked",
            Self::ActingEnded => "acting_ended",
        }
    }
}

/// The records a live token stands on, as read while deciding.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The token's client (shared with the decoded-record cache).
    pub client: std::sync::Arc<Client>,
    /// Its user, when it has one.
    pub user: Option<User>,
    /// Its grant family, when it has one.
    pub family: Option<Family>,
    /// Its SSO session, when it is bound to one (not for `offline_access` families).
    pub session: Option<Session>,
    /// The legal person its user acts for (HL-5.1), as its family or session records it.
    pub acting: Option<Acting>,
    /// That legal person's record, as read while deciding.
    pub legal: Option<LegalPerson>,
}

/// A live access token.
#[derive(Debug, Clone)]
pub struct LiveAccess {
    /// Its verified claims.
    pub claims: AccessClaims,
    /// What it stands on.
    pub standing: Standing,
}

impl LiveAccess {
    /// Whom the token is about, for the claims table.
    pub fn principal(&self) -> Principal<'_> {
        let acting = self.standing.acting.is_some();
        Principal {
            sub: &self.claims.sub,
            agent_sub: self.claims.act.as_ref().and_then(|a| a.get("sub")).and_then(|s| s.as_str()).filter(|_| acting),
            acr: self.claims.acr.as_deref(),
            person: self.standing.user.as_ref(),
            legal: self.standing.legal.as_ref(),
        }
    }
}

/// A refresh token found in the store, its family and user in good standing. It may have been
/// rotated already: only the refresh grant may do anything with such a token (reuse handling).
#[derive(Debug, Clone)]
pub struct RefreshState {
    /// The stored record.
    pub record: RefreshRecord,
    /// Its store key.
    pub key: String,
    /// When it was first used, if it was (then it is no longer alive).
    pub rotated_at: Option<i64>,
    /// The sealed answer its first use left for retries ([`crate::grant::retry`]), if kept.
    pub successor: Option<Vec<u8>>,
    /// What it stands on.
    pub standing: Standing,
}

impl RefreshState {
    /// The subject and acting agent as the token's client sees them (OIDC Core s8.1).
    pub fn public_subjects(&self, data: &crate::sealing::DataKey) -> (String, Option<String>) {
        let (u, c) = (&self.record.user, &self.standing.client);
        let agent = u.acting.as_ref().map(|_| subject::for_client(data, c, &u.sub));
        (subject::for_client(data, c, u.principal()), agent)
    }
}

/// A live ID token of ours (a token exchange subject).
#[derive(Debug, Clone)]
pub struct LiveId {
    /// Its verified claims.
    pub claims: IdClaims,
    /// What it stands on.
    pub standing: Standing,
}

/// What a token depends on: the keys of the records that decide whether it is alive.
#[derive(Debug, Clone, Copy, Default)]
struct Binding<'a> {
    client_id: &'a str,
    /// The natural person, when the token names one: its subject, or the agent acting for a
    /// legal person when known up front.
    user: Option<&'a str>,
    /// The legal person an agent acts for, when the token is about one (its internal id).
    legal: Option<&'a str>,
    sid: Option<&'a str>,
    gid: Option<&'a str>,
    jti: Option<&'a str>,
}

/// Decides validity. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Authority<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// Our signing keys (active and retired ones still published).
    pub keys: &'a Keys,
    /// Our issuer identifier.
    pub issuer: &'a str,
    /// SSO session timeouts.
    pub timeouts: Timeouts,
    /// Decoded client records (reused only while the stored bytes are unchanged).
    pub clients: &'a ClientCache,
}

/// Records read from the store, in the order of the keys asked for (`None`: absent).
pub type Records = Vec<Option<Vec<u8>>>;

/// The outcome of a check: a store failure, or the verdict.
pub type Verdict<T> = Result<Result<T, Dead>, StoreError>;

/// Longest opaque token accepted (ours are 43 characters).
const MAX_OPAQUE: usize = 128;

impl Authority<'_> {
    /// Whether a bearer access token (RFC 9068 JWT) is alive at `now`. `aud` is not checked
    /// here: each resource checks it is named ([`AccessClaims::is_for`]).
    pub async fn access(&self, token: &str, now: i64) -> Verdict<LiveAccess> {
        let Ok((claims, typ)) = self.keys.verify_fresh::<AccessClaims>(token, now).await else {
            return Ok(Err(Dead::Unknown));
        };
        self.access_of(claims, typ, now).await
    }

    /// An access token this instance verified before (found in its verified-token cache, no
    /// signature checked), with the store keys of the records its standing depends on, so a
    /// caller can read them in a round trip it makes anyway; `None` for any other token (then
    /// [`Authority::access`] decides as usual). Nothing is decided here.
    pub fn prefetch(&self, token: &str, now: i64) -> Option<Prefetch> {
        let (claims, typ) = self.keys.cached::<AccessClaims>(token, now)?;
        let subjects = Subjects::of(self, &claims);
        let lookups = lookups(&subjects.binding(&claims));
        Some(Prefetch { claims, typ, subjects, lookups })
    }

    /// [`Authority::access`] of a prefetched token, over the records read with its keys
    /// (`found`, in their order): the same rules, with no store call of its own. `None` when
    /// they need a record the prefetch could not name (an agent's user, named only by the
    /// token's family or session): then [`Authority::access`] decides. Synchronous, so the
    /// hot path's future holds none of it (issue 13).
    pub fn access_prefetched(
        &self,
        p: Prefetch,
        found: &[Option<Vec<u8>>],
        now: i64,
    ) -> Result<Option<Result<LiveAccess, Dead>>, StoreError> {
        let Prefetch { claims, typ, subjects, lookups } = p;
        if let Some(dead) = self.unusable(&claims, typ.as_deref(), now) {
            return Ok(Some(Err(dead)));
        }
        if found.len() != lookups.keys.len() {
            return Ok(None);
        }
        match self.rules(subjects.binding(&claims), &lookups, found, now, None)? {
            Judged::Done(verdict) => Ok(Some(verdict.map(|standing| LiveAccess { claims, standing }))),
            Judged::ReadUser(_) => Ok(None),
        }
    }

    /// Why a verified access token cannot be alive whatever the store says: not an access
    /// token of ours (RFC 9068 s2.1 `typ`, our issuer), or expired.
    fn unusable(&self, claims: &AccessClaims, typ: Option<&str>, now: i64) -> Option<Dead> {
        if typ != Some(AT_TYP) || claims.iss != self.issuer {
            return Some(Dead::Unknown);
        }
        (claims.exp <= now).then_some(Dead::Expired)
    }

    /// The rules of [`Authority::access`] after the signature.
    async fn access_of(&self, claims: AccessClaims, typ: Option<String>, now: i64) -> Verdict<LiveAccess> {
        if let Some(dead) = self.unusable(&claims, typ.as_deref(), now) {
            return Ok(Err(dead));
        }
        let subjects = Subjects::of(self, &claims);
        let l = lookups(&subjects.binding(&claims));
        let found = self.store.get_many(&l.keys).await?;
        let binding = subjects.binding(&claims);
        Ok(self.judge(binding, &l, &found, now).await?.map(|standing| LiveAccess { claims, standing }))
    }

    /// Reads a refresh token and the standing of everything it depends on. A rotated token is
    /// returned with `rotated_at` set as long as its family is still in good standing, so the
    /// refresh grant can tell a retry from a reuse; everyone else uses [`Authority::refresh`].
    pub async fn refresh_state(&self, token: &str, now: i64) -> Verdict<RefreshState> {
        if token.is_empty() || token.len() > MAX_OPAQUE {
            return Ok(Err(Dead::Unknown));
        }
        let key = keys::refresh_token(&crypto::token_key(token));
        let Some(found) = self.store.peek(&key).await? else {
            return Ok(Err(Dead::Unknown));
        };
        let record: RefreshRecord = store::decode(&key, &found.value)?;
        if record.family_exp <= now {
            return Ok(Err(Dead::Expired));
        }
        let binding = Binding {
            client_id: &record.client_id,
            user: Some(&record.user.sub),
            legal: record.user.acting.as_ref().map(|a| a.lp.as_str()),
            sid: Some(&record.user.sid),
            gid: Some(&record.gid),
            jti: None,
        };
        let standing = match self.standing(binding, now).await? {
            Ok(s) => s,
            Err(dead) => return Ok(Err(dead)),
        };
        Ok(Ok(RefreshState { record, key, rotated_at: found.first_redeemed_at, successor: found.successor, standing }))
    }

    /// Whether a refresh token is alive: found, not rotated, and in good standing.
    pub async fn refresh(&self, token: &str, now: i64) -> Verdict<RefreshState> {
        Ok(self.refresh_state(token, now).await?.and_then(|s| match s.rotated_at {
            Some(at) => Err(Dead::Rotated { at }),
            None => Ok(s),
        }))
    }

    /// Whether an ID token of ours is alive: signed by us, unexpired, its session live and its
    /// user and client in good standing. A logout token is not an ID token.
    pub async fn id_token(&self, token: &str, now: i64) -> Verdict<LiveId> {
        let Ok((claims, typ)) = self.keys.verify_fresh::<IdClaims>(token, now).await else {
            return Ok(Err(Dead::Unknown));
        };
        if typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) || claims.iss != self.issuer {
            return Ok(Err(Dead::Unknown));
        }
        if claims.exp <= now {
            return Ok(Err(Dead::Expired));
        }
        let principal = subject::internal(self.keys.data(), &claims.sub);
        let legal = claims.extra.get("user_type").and_then(serde_json::Value::as_str)
            == Some(PrincipalKind::LegalPerson.as_str());
        let binding = Binding {
            client_id: &claims.aud,
            // An agent acting for a legal person: the session names the agent.
            user: (!legal).then_some(principal.as_str()),
            legal: legal.then_some(principal.as_str()),
            sid: Some(&claims.sid),
            gid: None,
            jti: None,
        };
        Ok(self.standing(binding, now).await?.map(|standing| LiveId { claims, standing }))
    }

    /// The rules, over the records read in one round trip.
    async fn standing(&self, b: Binding<'_>, now: i64) -> Verdict<Standing> {
        let l = lookups(&b);
        let found = self.store.get_many(&l.keys).await?;
        self.judge(b, &l, &found, now).await
    }

    /// The rules, over the records `found` under `l`'s keys, reading the user's record when
    /// only the records found name them (an agent acting for a legal person). The rules
    /// themselves are [`Authority::rules`], synchronous, so none of their records is held across
    /// a store call in every caller's future (issue 13).
    async fn judge(&self, b: Binding<'_>, l: &Lookups, found: &[Option<Vec<u8>>], now: i64) -> Verdict<Standing> {
        let key = match self.rules(b, l, found, now, None)? {
            Judged::Done(verdict) => return Ok(verdict),
            Judged::ReadUser(key) => key,
        };
        let late = self.store.get(&key).await?;
        match self.rules(b, l, found, now, Some(late.as_deref()))? {
            Judged::Done(verdict) => Ok(verdict),
            // Not asked twice: the second pass has the user's record.
            Judged::ReadUser(_) => Ok(Err(Dead::UserGone)),
        }
    }

    /// [`Authority::judge`]'s rules; `late`, once read, is the user's record that the records
    /// found named (`Some(None)`: absent).
    fn rules(
        &self,
        b: Binding<'_>,
        l: &Lookups,
        found: &[Option<Vec<u8>>],
        now: i64,
        late: Option<Option<&[u8]>>,
    ) -> Result<Judged, StoreError> {
        let &Lookups { keys: ref lookups, jti_at, family_at, session_at, user_at, legal_at } = l;
        let read = |at: Option<usize>| at.and_then(|i| found.get(i)).and_then(Option::as_deref);
        let decode = |at: Option<usize>| read(at).zip(at.and_then(|i| lookups.get(i)));

        let Some((bytes, key)) = decode(Some(0)) else {
            return Ok(Judged::Done(Err(Dead::ClientBlocked)));
        };
        let client = self.clients.decode(key, bytes)?;
        if !client.tokens_valid() {
            return Ok(Judged::Done(Err(Dead::ClientBlocked)));
        }
        if read(jti_at).is_some() {
            return Ok(Judged::Done(Err(Dead::Revoked)));
        }
        let family = match decode(family_at) {
            Some((bytes, key)) => Some(store::decode::<Family>(key, bytes)?),
            None if b.gid.is_some() => return Ok(Judged::Done(Err(Dead::Revoked))),
            None => None,
        };
        if let Some(f) = &family
            && (!f.live(now) || b.user.is_some_and(|u| u != f.sub) || lp_of(f.acting.as_ref()) != b.legal)
        {
            return Ok(Judged::Done(Err(Dead::Revoked)));
        }
        // OIDC Core s11: an offline_access family outlives the session it came from.
        let offline = family.as_ref().is_some_and(|f| f.offline);
        let session = if offline || session_at.is_none() {
            None
        } else {
            let Some((bytes, key)) = decode(session_at) else {
                return Ok(Judged::Done(Err(Dead::SessionEnded)));
            };
            let s: Session = store::decode(key, bytes)?;
            let same = b.user.is_none_or(|u| u == s.sub) && family.as_ref().is_none_or(|f| f.sub == s.sub);
            if !s.live(now, self.timeouts) || !same || lp_of(s.acting.as_deref()) != b.legal {
                return Ok(Judged::Done(Err(Dead::SessionEnded)));
            }
            Some(s)
        };
        // The natural person: named by the token, else (an agent acting for a legal person)
        // recorded by its family or session, then read in a second round trip.
        let recorded = family.as_ref().map(|f| f.sub.as_str()).or(session.as_ref().map(|s| s.sub.as_str()));
        let who = b.user.or(b.legal.and(recorded));
        if b.legal.is_some() && who.is_none() {
            return Ok(Judged::Done(Err(Dead::Revoked)));
        }
        let user_bytes = match (user_at, who, late) {
            (Some(_), _, _) => decode(user_at).map(|(bytes, _)| bytes),
            (None, Some(_), Some(late)) => late,
            (None, Some(w), None) => return Ok(Judged::ReadUser(keys::user(w))),
            (None, None, _) => None,
        };
        let user = match (user_bytes, who) {
            (Some(bytes), Some(w)) => {
                let u: User = store::decode(&keys::user(w), bytes)?;
                // The generation the token was issued under: its family's, else its session's.
                let issued_under = family.as_ref().map(|f| f.generation).or(session.as_ref().map(|s| s.generation));
                if !u.enabled || issued_under.is_some_and(|g| g != u.generation) {
                    return Ok(Judged::Done(Err(Dead::UserGone)));
                }
                Some(u)
            }
            (None, Some(_)) => return Ok(Judged::Done(Err(Dead::UserGone))),
            _ => None,
        };
        // HL-5.1: an agent's tokens live only while the legal person exists, is enabled (and
        // was not disabled since) and still lists the agent.
        let acting = family
            .as_ref()
            .and_then(|f| f.acting.clone())
            .or(session.as_ref().and_then(|s| s.acting.as_deref().cloned()));
        let legal = match (b.legal, &acting, who) {
            (Some(_), Some(a), Some(w)) => {
                let Some((bytes, key)) = decode(legal_at) else {
                    return Ok(Judged::Done(Err(Dead::ActingEnded)));
                };
                let lp: LegalPerson = store::decode(key, bytes)?;
                if !acting::still_allowed(&lp, w, a) {
                    return Ok(Judged::Done(Err(Dead::ActingEnded)));
                }
                Some(lp)
            }
            (Some(_), _, _) => return Ok(Judged::Done(Err(Dead::Revoked))),
            (None, _, _) => None,
        };
        Ok(Judged::Done(Ok(Standing { client, user, family, session, acting, legal })))
    }
}

/// What [`Authority::rules`] came to. Only ever returned, never kept: boxing the verdict
/// would cost an allocation on every token check to save a copy.
#[allow(clippy::large_enum_variant)]
enum Judged {
    /// The verdict.
    Done(Result<Standing, Dead>),
    /// The user's record (at this key) is needed first.
    ReadUser(String),
}

/// The legal person's id of an acting record.
fn lp_of(a: Option<&Acting>) -> Option<&str> {
    a.map(|a| a.lp.as_str())
}

/// The agent named by an agent's own `act` claim (`{"sub": ...}` with no prior actor); `None`
/// for a delegation chain (then its family or session names the agent).
fn agent_of(act: Option<&serde_json::Value>) -> Option<&str> {
    let obj = act?.as_object()?;
    if obj.contains_key("act") || obj.contains_key("iss") {
        return None;
    }
    obj.get("sub")?.as_str()
}

fn push(lookups: &mut Vec<String>, key: String) -> usize {
    lookups.push(key);
    lookups.len() - 1
}

/// The store keys a token's standing is read from, and where each record sits among them.
struct Lookups {
    keys: Vec<String>,
    jti_at: Option<usize>,
    family_at: Option<usize>,
    session_at: Option<usize>,
    user_at: Option<usize>,
    legal_at: Option<usize>,
}

/// The keys of the records `b` depends on: its client's first.
fn lookups(b: &Binding<'_>) -> Lookups {
    let mut keys = vec![keys::client(b.client_id)];
    let jti_at = b.jti.map(|j| push(&mut keys, keys::revoked_jti(j)));
    let family_at = b.gid.map(|g| push(&mut keys, keys::family(g)));
    let session_at = b.sid.filter(|s| !s.is_empty()).map(|s| push(&mut keys, keys::session(s)));
    let user_at = b.user.map(|u| push(&mut keys, keys::user(u)));
    let legal_at = b.legal.map(|l| push(&mut keys, keys::legal_person(l)));
    Lookups { keys, jti_at, family_at, session_at, user_at, legal_at }
}

/// The internal ids behind an access token's subject (OIDC Core s8.1), and behind `act` for an
/// agent acting for a legal person (a hint, which its family or session must confirm; without
/// one, they name the agent).
struct Subjects {
    principal: Option<String>,
    agent_hint: Option<String>,
    legal: bool,
}

impl Subjects {
    fn of(auth: &Authority<'_>, claims: &AccessClaims) -> Self {
        let data = auth.keys.data();
        let principal = claims.has_user().then(|| subject::internal(data, &claims.sub));
        let legal = claims.user_type == Some(PrincipalKind::LegalPerson);
        let agent_hint = legal.then(|| agent_of(claims.act.as_ref())).flatten().map(|a| subject::internal(data, a));
        Self { principal, agent_hint, legal }
    }

    /// What the token depends on.
    fn binding<'a>(&'a self, claims: &'a AccessClaims) -> Binding<'a> {
        Binding {
            client_id: &claims.client_id,
            user: if self.legal { self.agent_hint.as_deref() } else { self.principal.as_deref() },
            legal: self.principal.as_deref().filter(|_| self.legal),
            sid: claims.sid.as_deref(),
            gid: claims.gid.as_deref(),
            jti: Some(&claims.jti),
        }
    }
}

/// An access token found in the verified-token cache ([`Authority::prefetch`]), and the keys
/// of the records its standing depends on.
pub struct Prefetch {
    claims: AccessClaims,
    typ: Option<String>,
    subjects: Subjects,
    lookups: Lookups,
}

impl Prefetch {
    /// The store keys to read with the caller's own round trip, in order.
    pub fn keys(&self) -> &[String] {
        &self.lookups.keys
    }
}
