//! The online-guessing guard (RFC 6749 s10.10, NIST SP 800-63B s5.2.2): whether an (account,
//! address) may try a password or client secret now, and what a failure or success changes.
//! State is in the store, so every instance agrees; nothing sleeps: a refusal says when to retry.

// The design. Three counters, each over a sliding window (this and the previous `window`-long
// bucket, so a burst across a bucket boundary is not forgiven):
// - address (all accounts): past `ip_max_failures` the address is held for a delay that doubles
//   with each further failure, up to `window`. Checked first; it bounds one address's guessing
//   rate whatever accounts it spreads over.
// - account at address: past `delay_after` failures, delays of 1 s, 2 s, 4 s ... (at most
//   `max_delay`); at `lock_after`, a lockout of `lockout` seconds. This is what an attacker at
//   one address meets, and it holds only that address: the user elsewhere is judged apart.
// - account (all addresses): a lockout at `lock_after` failures, where each address counts for
//   at most `min(delay_after, lock_after - 1)` of them and an address over its own limit for
//   none. So one address can never lock the account for everyone; a distributed attack can,
//   `lockout` seconds at a time, which caps guesses per account as NIST asks.
// Every lockout ends on its own; a success resets the account's counters; an admin can unlock.
// Most attempts meet no failure at all: two marks (the address's, the account's) say whether any
// counter or hold may exist. A failure writes both before it counts (so a crash between the two
// leaves a mark without counters, never counters without a mark), each living as long as
// anything that failure can write; an attempt that finds neither skips the nine-key read. Marks
// are never deleted early: a success or an unlock racing a failure elsewhere could otherwise
// hide that failure's counters. (Failures counted by a version without marks are not seen
// until they expire: a rolling upgrade forgets them, at most `window` x 2 or one lockout.)
// Unknown usernames and client ids are counted exactly like known ones (no enumeration), under
// the SHA-256 of the name, so the name typed never becomes part of a key.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::GuardConfig;
use crate::crypto;
use crate::store::{self, DynStore, StoreError, keys};

/// Which credential is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// A user's password on the login form.
    Password,
    /// A client secret at the token-style endpoints.
    ClientSecret,
}

impl Realm {
    /// The wire value (keys, audit detail).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "login",
            Self::ClientSecret => "client",
        }
    }
}

/// Which counter refused or locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client address, across accounts.
    Address,
    /// The account, across addresses.
    Account,
    /// The account, from this address.
    AccountAtAddress,
}

impl Scope {
    /// The wire value (audit detail).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "ip",
            Self::Account => "account",
            Self::AccountAtAddress => "account_ip",
        }
    }
}

/// An attempt that must wait: nothing was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Whole seconds until the next attempt may be made (at least 1).
    pub retry_after: u64,
    /// Which counter holds it.
    pub scope: Scope,
    /// A lockout (rather than a growing delay).
    pub locked: bool,
}

/// Why [`admit`] did not admit.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Too many failures; try again later.
    #[error("too many failed attempts; retry after {} s", .0.retry_after)]
    Throttled(Refused),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is trying: the account named (username typed, client_id claimed) and the address.
#[derive(Debug, Clone)]
pub struct Attempt {
    realm: Realm,
    account: String,
    address: String,
}

impl Attempt {
    /// An attempt on `name` from `ip` (the socket peer or the trusted proxy's hop). Usernames
    /// are compared without case, like the directory does.
    pub fn new(realm: Realm, name: &str, ip: Option<&str>) -> Self {
        let name = match realm {
            Realm::Password => name.trim().to_lowercase(),
            Realm::ClientSecret => name.to_owned(),
        };
        Self { realm, account: crypto::token_key(&name), address: address(ip) }
    }

    fn subject(&self, scope: Scope) -> String {
        // Concatenated rather than formatted: two of these are made on every client
        // authentication (issue 13).
        let parts: &[&str] = match scope {
            Scope::Address => &["ip:", &self.address],
            Scope::Account => &["acct:", &self.account],
            Scope::AccountAtAddress => &["pair:", &self.account, ":", &self.address],
        };
        parts.concat()
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64 (one subscriber usually holds a whole
/// /64, so counting single addresses there would count nothing).
pub(crate) fn address(ip: Option<&str>) -> String {
    match ip.and_then(|i| i.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => crate::ip::text(IpAddr::V4(v4)),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => crate::ip::text(IpAddr::V4(v4)),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
        None => "unknown".to_owned(),
    }
}

/// A hold on one counter: no attempt before `until`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Hold {
    until: i64,
    lock: bool,
}

const SCOPES: [Scope; 3] = [Scope::Address, Scope::Account, Scope::AccountAtAddress];

/// How long the one-attempt-at-a-time marker of an account outlives a crashed request, seconds
/// (above the password queue's wait plus a hash).
const BUSY_TTL: u64 = 15;

/// What [`admit`] read of one counter.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// Failures in the previous bucket.
    prev: i64,
    /// Failures in the current bucket.
    cur: i64,
    /// Whether a hold record (even an expired one) exists.
    held: bool,
}

impl Seen {
    fn total(self) -> i64 {
        self.prev + self.cur
    }
}

/// An admitted attempt: what [`admit`] read, for [`failed`] and [`succeeded`]. End every one
/// with [`failed`], [`succeeded`] or [`release`] (a password attempt holds its account's marker).
#[derive(Debug)]
#[must_use = "end the attempt with failed, succeeded or release"]
pub struct Admitted {
    attempt: Attempt,
    bucket: i64,
    address: Seen,
    account: Seen,
    pair: Seen,
    busy: bool,
    active: bool,
}

impl Admitted {
    fn seen_mut(&mut self, scope: Scope) -> &mut Seen {
        match scope {
            Scope::Address => &mut self.address,
            Scope::Account => &mut self.account,
            Scope::AccountAtAddress => &mut self.pair,
        }
    }
}

fn bucket(now: i64, window: i64) -> i64 {
    now.div_euclid(window.max(1))
}

fn failures_key(a: &Attempt, scope: Scope, bucket: i64) -> String {
    keys::guard_failures(a.realm.as_str(), &a.subject(scope), bucket)
}

fn hold_key(a: &Attempt, scope: Scope) -> String {
    keys::guard_hold(a.realm.as_str(), &a.subject(scope))
}

fn count(v: Option<&Option<Vec<u8>>>) -> i64 {
    v.and_then(Option::as_ref).and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Checks the three holds (address first) in one store round trip. For passwords it also takes
/// the account's one-attempt-at-a-time marker, so a burst of parallel guesses cannot all pass
/// the check before the first failure is counted (a second one waits 1 s). Client secrets skip
/// the marker: they are machine-generated and long, and the token endpoint is a hot path.
pub async fn admit(store: &DynStore, cfg: &GuardConfig, a: &Attempt, now: i64) -> Result<Admitted, GuardError> {
    admit_with(store, cfg, a.clone(), now, Vec::new()).await.map(|(admitted, _)| admitted)
}

/// As [`admit`], and reads `extra` records in the same store round trip (the client record
/// on the token endpoint's hot path); their values come back in order.
pub async fn admit_with(
    store: &DynStore,
    cfg: &GuardConfig,
    attempt: Attempt,
    now: i64,
    extra: Vec<String>,
) -> Result<(Admitted, Vec<Option<Vec<u8>>>), GuardError> {
    let b = bucket(now, cfg.window);
    let mut out = Admitted {
        attempt,
        bucket: b,
        address: Seen::default(),
        account: Seen::default(),
        pair: Seen::default(),
        busy: false,
        active: cfg.enabled,
    };
    if !cfg.enabled {
        let values = if extra.is_empty() { Vec::new() } else { store.get_many(&extra).await? };
        return Ok((out, values));
    }
    // The marks and `extra` in one round trip; the counters only when a mark says so.
    let realm = out.attempt.realm.as_str();
    let mut first: Vec<String> = Vec::with_capacity(2 + extra.len());
    first.extend(marks(&out.attempt));
    first.extend(extra);
    let mut got = store.get_many(&first).await?;
    let values = got.split_off(2.min(got.len()));
    if got.iter().any(Option::is_some) {
        let subjects = SCOPES.map(|s| out.attempt.subject(s));
        let mut wanted: Vec<String> = Vec::with_capacity(9);
        wanted.extend(subjects.iter().map(|s| keys::guard_hold(realm, s)));
        for s in &subjects {
            wanted.push(keys::guard_failures(realm, s, b - 1));
            wanted.push(keys::guard_failures(realm, s, b));
        }
        let got = store.get_many(&wanted).await?;
        judge(&mut out, &wanted, &got, now)?;
    }
    if out.attempt.realm == Realm::Password {
        let busy = keys::guard_busy(realm, &out.attempt.account);
        if !store.put_new(&busy, b"1", Some(BUSY_TTL)).await? {
            return Err(GuardError::Throttled(Refused { retry_after: 1, scope: Scope::Account, locked: false }));
        }
        out.busy = true;
    }
    Ok((out, values))
}

/// The two marks of an attempt: its address's and its account's (the pair counter is the
/// account's too).
fn marks(a: &Attempt) -> [String; 2] {
    let realm = a.realm.as_str();
    [keys::guard_mark(realm, &a.subject(Scope::Address)), keys::guard_mark(realm, &a.subject(Scope::Account))]
}

/// How long a mark must live: as long as anything one failure writes (counters two windows,
/// holds at most a lockout, a growing delay or, for an address, one window).
fn mark_ttl(cfg: &GuardConfig) -> u64 {
    let longest = cfg.window.saturating_mul(2).max(cfg.lockout).max(cfg.client_lockout).max(cfg.max_delay);
    u64::try_from(longest).unwrap_or(u64::MAX).saturating_add(1)
}

/// Reads the three holds and six counters `wanted` names into `out`; a hold still in force
/// refuses (the longest wait wins).
fn judge(out: &mut Admitted, wanted: &[String], got: &[Option<Vec<u8>>], now: i64) -> Result<(), GuardError> {
    let mut worst: Option<Refused> = None;
    for (i, (scope, key)) in SCOPES.iter().zip(wanted).enumerate() {
        let raw = got.get(i).and_then(Option::as_ref);
        *out.seen_mut(*scope) =
            Seen { prev: count(got.get(3 + 2 * i)), cur: count(got.get(4 + 2 * i)), held: raw.is_some() };
        let Some(hold) = raw.and_then(|r| store::decode::<Hold>(key, r).ok()) else { continue };
        if hold.until > now {
            let retry_after = u64::try_from(hold.until - now).unwrap_or(1).max(1);
            if worst.is_none_or(|w| retry_after > w.retry_after) {
                worst = Some(Refused { retry_after, scope: *scope, locked: hold.lock });
            }
        }
    }
    match worst {
        Some(r) => Err(GuardError::Throttled(r)),
        None => Ok(()),
    }
}

/// What a failed attempt changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Failures left before a lockout (0: a lockout has started); `None` with the guard off.
    pub remaining: Option<u32>,
    /// The hold this failure set, if any: when the next attempt may come.
    pub hold: Option<Refused>,
    /// Lockouts this failure started (the account at this address, and/or the account).
    pub lockouts: Vec<Scope>,
}

/// `base * 2^steps`, at most `cap`.
fn doubled(base: i64, steps: i64, cap: i64) -> i64 {
    let shift = u32::try_from(steps.clamp(0, 32)).unwrap_or(32);
    base.saturating_mul(1_i64 << shift).min(cap).max(1)
}

/// Counts a failure: increments the counters, sets the holds they call for, and ends the
/// attempt (releases the account's marker).
pub async fn failed(store: &DynStore, cfg: &GuardConfig, adm: Admitted, now: i64) -> Result<Failed, StoreError> {
    let lock_after = i64::from(cfg.lock_after);
    if !adm.active {
        return Ok(Failed { remaining: None, hold: None, lockouts: Vec::new() });
    }
    let a = &adm.attempt;
    // The marks first: counters no mark points at would be skipped by every later attempt.
    let mark_ttl = mark_ttl(cfg);
    for mark in marks(a) {
        store.put(&mark, b"1", Some(mark_ttl)).await?;
    }
    let ttl = u64::try_from(cfg.window.saturating_mul(2)).unwrap_or(u64::MAX);
    let ip_total = store.incr(&failures_key(a, Scope::Address, adm.bucket), ttl).await? + adm.address.prev;
    let pair_total = store.incr(&failures_key(a, Scope::AccountAtAddress, adm.bucket), ttl).await? + adm.pair.prev;
    // Remembered so an unlock can find this address's counters for the account.
    let addresses = keys::guard_addresses(a.realm.as_str(), &a.account);
    store.set_add(&addresses, &a.address, Some(ttl.saturating_add(u64::try_from(cfg.lockout).unwrap_or(0)))).await?;
    let share = i64::from(cfg.delay_after.min(cfg.lock_after.saturating_sub(1)));
    let over_ip = ip_total > i64::from(cfg.ip_max_failures);
    let counted = !over_ip && pair_total <= share;
    let acct_total = if counted {
        store.incr(&failures_key(a, Scope::Account, adm.bucket), ttl).await? + adm.account.prev
    } else {
        adm.account.total()
    };
    let lockout = match a.realm {
        Realm::Password => cfg.lockout,
        Realm::ClientSecret => cfg.client_lockout,
    };
    let mut holds: Vec<(Scope, Hold)> = Vec::new();
    if ip_total >= i64::from(cfg.ip_max_failures) {
        let wait = doubled(cfg.ip_delay, ip_total - i64::from(cfg.ip_max_failures), cfg.window);
        holds.push((Scope::Address, Hold { until: now + wait, lock: false }));
    }
    if pair_total >= lock_after {
        holds.push((Scope::AccountAtAddress, Hold { until: now + lockout, lock: true }));
    } else if pair_total >= i64::from(cfg.delay_after) {
        let wait = doubled(1, pair_total - i64::from(cfg.delay_after), cfg.max_delay);
        holds.push((Scope::AccountAtAddress, Hold { until: now + wait, lock: false }));
    }
    if counted && acct_total >= lock_after {
        holds.push((Scope::Account, Hold { until: now + lockout, lock: true }));
    }
    let mut out = Failed {
        remaining: Some(u32::try_from((lock_after - pair_total.max(acct_total)).max(0)).unwrap_or(0)),
        hold: None,
        lockouts: Vec::new(),
    };
    for (scope, hold) in holds {
        store::put_json(store.as_ref(), &hold_key(a, scope), &hold, Some(store::ttl_until(hold.until, now))).await?;
        if hold.lock {
            out.lockouts.push(scope);
        }
        let retry_after = u64::try_from(hold.until - now).unwrap_or(1).max(1);
        if out.hold.is_none_or(|h| retry_after > h.retry_after) {
            out.hold = Some(Refused { retry_after, scope, locked: hold.lock });
        }
    }
    release(store, adm).await?;
    Ok(out)
}

/// A success: the account's counters (everywhere, and at this address) start over. The
/// address's own counter does not: an attacker's own account must not launder its guesses.
pub async fn succeeded(store: &DynStore, adm: Admitted) -> Result<(), StoreError> {
    if adm.active {
        let a = &adm.attempt;
        let mut stale = Vec::new();
        for (scope, seen) in [(Scope::Account, adm.account), (Scope::AccountAtAddress, adm.pair)] {
            if seen.total() > 0 || seen.held {
                stale.extend([
                    failures_key(a, scope, adm.bucket - 1),
                    failures_key(a, scope, adm.bucket),
                    hold_key(a, scope),
                ]);
            }
        }
        // One round trip: the deletes are independent.
        futures_util::future::try_join_all(stale.iter().map(|k| store.delete(k))).await?;
    }
    release(store, adm).await
}

/// Ends an attempt that was neither a success nor a failure (the check itself could not run).
pub async fn release(store: &DynStore, adm: Admitted) -> Result<(), StoreError> {
    if adm.busy {
        store.delete(&keys::guard_busy(adm.attempt.realm.as_str(), &adm.attempt.account)).await?;
    }
    Ok(())
}

/// What an unlock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unlocked {
    /// Whether a lockout or delay was in force anywhere.
    pub was_held: bool,
    /// Addresses whose counters for the account were cleared.
    pub addresses: usize,
}

/// Ends every lockout and delay of an account (everywhere, and at each address that failed on
/// it) and clears its counters. Holds of the addresses themselves stay: they are about the
/// address, not the account.
pub async fn unlock(
    store: &DynStore,
    cfg: &GuardConfig,
    realm: Realm,
    name: &str,
    now: i64,
) -> Result<Unlocked, StoreError> {
    let b = bucket(now, cfg.window);
    let base = Attempt::new(realm, name, None);
    let addresses_key = keys::guard_addresses(realm.as_str(), &base.account);
    let addresses = store.set_members(&addresses_key).await?;
    let mut was_held = false;
    let clear = |a: Attempt, scope: Scope| async move {
        let key = hold_key(&a, scope);
        let held: Option<Hold> = store::get_json(store.as_ref(), &key).await?;
        store.delete(&key).await?;
        store.delete(&failures_key(&a, scope, b - 1)).await?;
        store.delete(&failures_key(&a, scope, b)).await?;
        Ok::<bool, StoreError>(held.is_some_and(|h| h.until > now))
    };
    was_held |= clear(base.clone(), Scope::Account).await?;
    for ip in &addresses {
        let a = Attempt { address: ip.clone(), ..base.clone() };
        was_held |= clear(a, Scope::AccountAtAddress).await?;
    }
    store.delete(&addresses_key).await?;
    Ok(Unlocked { was_held, addresses: addresses.len() })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn cfg() -> GuardConfig {
        crate::config::Config::from_overlay("", true).unwrap().guard
    }

    #[test]
    fn addresses_are_keyed_by_ipv4_or_ipv6_slash_64() {
        assert_eq!(address(Some("198.51.100.7")), "198.51.100.7");
        assert_eq!(address(Some("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(address(Some("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(address(Some("2001:db8:1:2:ffff::1")), "2001:db8:1:2::/64");
        assert_eq!(address(Some("not an address")), "unknown");
        assert_eq!(address(None), "unknown");
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let d: Vec<i64> = (0..9).map(|n| doubled(1, n, 60)).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(doubled(60, 1000, 900), 900);
    }

    // The fast path: an attempt whose address and account carry no mark reads no counter. A
    // hold written without its marks (by a version before them) is not seen; with them it is.
    #[tokio::test]
    async fn counters_are_read_only_where_a_mark_points() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let c = cfg();
        let now = 3_000_000;
        let a = Attempt::new(Realm::ClientSecret, "backend", Some("198.51.100.9"));
        let hold = Hold { until: now + 60, lock: true };
        let key = hold_key(&a, Scope::Account);
        store::put_json(store.as_ref(), &key, &hold, Some(60)).await.unwrap();
        let adm = admit(&store, &c, &a, now).await.unwrap();
        succeeded(&store, adm).await.unwrap();
        store.put(&marks(&a)[1], b"1", Some(mark_ttl(&c))).await.unwrap();
        let refused = admit(&store, &c, &a, now).await.unwrap_err();
        assert!(matches!(refused, GuardError::Throttled(Refused { scope: Scope::Account, locked: true, .. })));
    }

    // What makes the fast path safe: while anything a failure wrote still counts, both marks
    // are there (a lockout longer than two windows included).
    #[tokio::test]
    async fn the_marks_outlive_everything_a_failure_writes() {
        let clock = crate::clock::Clock::manual(4_000_000);
        let store: DynStore = Arc::new(MemoryStore::with_clock(clock.clone()));
        let mut c = cfg();
        c.client_lockout = c.window * 3;
        let a = Attempt::new(Realm::ClientSecret, "backend", Some("198.51.100.9"));
        let start = clock.now();
        let mut last = None;
        for _ in 0..c.lock_after {
            let now = clock.now();
            let adm = admit(&store, &c, &a, now).await.unwrap();
            last = Some(failed(&store, &c, adm, now).await.unwrap());
            if let Some(h) = last.as_ref().and_then(|f| f.hold).filter(|h| !h.locked) {
                clock.advance(i64::try_from(h.retry_after).unwrap());
            }
        }
        assert_eq!(last.unwrap().lockouts, vec![Scope::AccountAtAddress]);
        let b = bucket(clock.now(), c.window);
        let mut written: Vec<String> = SCOPES.iter().map(|s| hold_key(&a, *s)).collect();
        for s in SCOPES {
            written.extend([failures_key(&a, s, b - 1), failures_key(&a, s, b)]);
        }
        let (mut seen_live, mut t) = (false, clock.now());
        while t <= start + c.client_lockout + c.window * 2 + 120 {
            let live = store.get_many(&written).await.unwrap().iter().any(Option::is_some);
            let marked = store.get_many(&marks(&a)).await.unwrap().iter().all(Option::is_some);
            assert!(!live || marked, "a counter or hold outlives a mark at +{} s", t - start);
            seen_live |= live;
            clock.advance(30);
            t = clock.now();
        }
        assert!(seen_live);
        assert!(store.get_many(&written).await.unwrap().iter().all(Option::is_none));
        assert!(store.get_many(&marks(&a)).await.unwrap().iter().all(Option::is_none), "marks end too");
    }

    // RFC 6749 s10.10: delays from delay_after, a lockout at lock_after, for this address only.
    #[tokio::test]
    async fn delays_then_lockout_then_success_resets() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let c = cfg();
        let mut now = 1_000_000;
        let a = Attempt::new(Realm::Password, " Demo ", Some("198.51.100.1"));
        let mut last = None;
        for i in 1..=c.lock_after {
            let adm = admit(&store, &c, &a, now).await.unwrap();
            let f = failed(&store, &c, adm, now).await.unwrap();
            assert_eq!(f.remaining, Some(c.lock_after - i));
            assert_eq!(f.hold.is_some(), i >= c.delay_after, "failure {i}");
            if let Some(h) = f.hold.filter(|_| i < c.lock_after) {
                // Refused until the hold ends, and not counted meanwhile.
                assert!(matches!(admit(&store, &c, &a, now).await, Err(GuardError::Throttled(_))));
                now += i64::try_from(h.retry_after).unwrap();
            }
            last = Some(f);
        }
        let last = last.unwrap();
        assert_eq!(last.lockouts, vec![Scope::AccountAtAddress]);
        // The same account from elsewhere is admitted; a success there resets the account.
        let elsewhere = Attempt::new(Realm::Password, "demo", Some("198.51.100.2"));
        let adm = admit(&store, &c, &elsewhere, now).await.unwrap();
        succeeded(&store, adm).await.unwrap();
        // The lockout at the first address ends on its own.
        assert!(admit(&store, &c, &a, now + c.lockout - 1).await.is_err());
        let adm = admit(&store, &c, &a, now + c.lockout).await.unwrap();
        release(&store, adm).await.unwrap();
    }

    // NIST SP 800-63B s5.2.2: several addresses together lock the account everywhere; an
    // unlock ends it.
    #[tokio::test]
    async fn many_addresses_lock_the_account_until_unlocked() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let c = cfg();
        let now = 2_000_000;
        for ip in ["198.51.100.1", "198.51.100.2"] {
            let a = Attempt::new(Realm::Password, "demo", Some(ip));
            for _ in 0..c.delay_after {
                let adm = admit(&store, &c, &a, now).await.unwrap();
                failed(&store, &c, adm, now).await.unwrap();
            }
        }
        let third = Attempt::new(Realm::Password, "demo", Some("198.51.100.3"));
        match admit(&store, &c, &third, now).await {
            Err(GuardError::Throttled(r)) => assert_eq!((r.scope, r.locked), (Scope::Account, true)),
            other => panic!("{other:?}"),
        }
        let u = unlock(&store, &c, Realm::Password, "DEMO", now).await.unwrap();
        assert_eq!(u, Unlocked { was_held: true, addresses: 2 });
        let adm = admit(&store, &c, &third, now).await.unwrap();
        release(&store, adm).await.unwrap();
    }

    // RFC 6749 s10.10: an address over its own limit is held across accounts, and its
    // failures no longer count against any account.
    #[tokio::test]
    async fn an_address_over_its_limit_is_held_and_does_not_count() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let c = cfg();
        let mut now = 3_000_000;
        let bot = |name: String| Attempt::new(Realm::Password, &name, Some("198.51.100.9"));
        for i in 0..c.ip_max_failures {
            let adm = admit(&store, &c, &bot(format!("user-{i}")), now).await.unwrap();
            failed(&store, &c, adm, now).await.unwrap();
        }
        let held = admit(&store, &c, &bot("demo".into()), now).await.unwrap_err();
        assert!(matches!(held, GuardError::Throttled(r) if r.scope == Scope::Address), "{held:?}");
        now += c.ip_delay;
        let adm = admit(&store, &c, &bot("demo".into()), now).await.unwrap();
        let f = failed(&store, &c, adm, now).await.unwrap();
        assert_eq!(f.hold.map(|h| h.retry_after), Some(u64::try_from(c.ip_delay * 2).unwrap()), "the delay doubles");
        let user = Attempt::new(Realm::Password, "demo", Some("198.51.100.10"));
        let adm = admit(&store, &c, &user, now).await.unwrap();
        let f = failed(&store, &c, adm, now).await.unwrap();
        assert_eq!(f.remaining, Some(c.lock_after - 1), "only the user's own failure counted");
    }

    // One attempt at a time per account: a parallel second one is told to wait.
    #[tokio::test]
    async fn parallel_attempts_on_one_account_are_serialized() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let c = cfg();
        let a = Attempt::new(Realm::Password, "demo", Some("198.51.100.1"));
        let first = admit(&store, &c, &a, 0).await.unwrap();
        assert!(matches!(admit(&store, &c, &a, 0).await, Err(GuardError::Throttled(r)) if r.retry_after == 1));
        release(&store, first).await.unwrap();
        let again = admit(&store, &c, &a, 0).await.unwrap();
        release(&store, again).await.unwrap();
    }
}
