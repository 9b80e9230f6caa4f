//! One-time code rules on the memory store, time moved by hand (SH-8.2, GB-6.4a).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::store::memory::MemoryStore;

/// Records what would have been sent (a real sender stands in the integration tests).
#[derive(Default)]
struct Captured(Mutex<Vec<Message>>);

#[async_trait]
impl SmsSender for Captured {
    async fn send(&self, msg: &Message) -> Result<(), SmsError> {
        self.0.lock().unwrap().push(msg.clone());
        Ok(())
    }
}

impl Captured {
    fn last_code(&self) -> String {
        let all = self.0.lock().unwrap();
        all.last().unwrap().params.iter().find(|(k, _)| k == "code").unwrap().1.clone()
    }
}

fn cfg() -> OtpConfig {
    OtpConfig { length: 6, ttl: 300, max_tries: 3, resend_after: 60, per_phone: 3, per_ip: 6, window: 3600 }
}

struct Fixture {
    store: DynStore,
    data: DataKey,
    cfg: OtpConfig,
}

impl Fixture {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            data: DataKey::from_bytes(&DataKey::generate()).unwrap(),
            cfg: cfg(),
        }
    }
    fn at(&self, now: i64) -> Ctx<'_> {
        Ctx { store: &self.store, data: &self.data, cfg: &self.cfg, now }
    }
}

const PHONE: &str = "+8613800138000";

#[tokio::test]
async fn a_code_works_once_and_only_for_its_purpose() {
    let f = Fixture::new();
    let sms = Captured::default();
    send(f.at(1000), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap();
    let code = sms.last_code();
    assert_eq!(code.len(), 6);
    assert!(matches!(verify(f.at(1001), Purpose::Reset, PHONE, &code).await, Err(OtpError::NoCode)));
    assert!(matches!(verify(f.at(1001), Purpose::Signup, "+8613900139000", &code).await, Err(OtpError::NoCode)));
    verify(f.at(1001), Purpose::Signup, PHONE, &code).await.unwrap();
    // Replayed.
    assert!(matches!(verify(f.at(1002), Purpose::Signup, PHONE, &code).await, Err(OtpError::NoCode)));
}

#[tokio::test]
async fn expired_codes_and_too_many_tries_are_refused() {
    let f = Fixture::new();
    let sms = Captured::default();
    send(f.at(1000), &sms, Purpose::Signup, PHONE, None).await.unwrap();
    let code = sms.last_code();
    assert!(matches!(verify(f.at(1300), Purpose::Signup, PHONE, &code).await, Err(OtpError::Expired)));

    send(f.at(2000), &sms, Purpose::Signup, PHONE, None).await.unwrap();
    let code = sms.last_code();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(verify(f.at(2001), Purpose::Signup, PHONE, "12ab56").await, Err(OtpError::Malformed(6))));
    assert!(matches!(verify(f.at(2001), Purpose::Signup, PHONE, wrong).await, Err(OtpError::Wrong { remaining: 2 })));
    assert!(matches!(verify(f.at(2001), Purpose::Signup, PHONE, wrong).await, Err(OtpError::Wrong { remaining: 1 })));
    assert!(matches!(verify(f.at(2001), Purpose::Signup, PHONE, wrong).await, Err(OtpError::Wrong { remaining: 0 })));
    // The right code after the last wrong one: void.
    assert!(verify(f.at(2002), Purpose::Signup, PHONE, &code).await.is_err());
}

#[tokio::test]
async fn sends_are_paused_and_counted_per_phone_and_address() {
    let f = Fixture::new();
    let sms = Captured::default();
    send(f.at(0), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap();
    let e = send(f.at(10), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap_err();
    assert!(matches!(e, OtpError::TooSoon { retry_after: 50 }), "{e:?}");
    // A resend voids the older code.
    let first = sms.last_code();
    send(f.at(60), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap();
    let second = sms.last_code();
    if first != second {
        assert!(verify(f.at(61), Purpose::Signup, PHONE, &first).await.is_err());
    }
    send(f.at(120), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap();
    let e = send(f.at(180), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap_err();
    assert!(matches!(e, OtpError::RateLimited { .. }), "per phone: {e:?}");
    // Per address: other phones from the same address (refused asks counted too: 6 so far).
    send(f.at(200), &sms, Purpose::Signup, "+8613700137000", Some("10.0.0.1")).await.unwrap();
    let e = send(f.at(200), &sms, Purpose::Signup, "+8613600136000", Some("10.0.0.1")).await.unwrap_err();
    assert!(matches!(e, OtpError::RateLimited { .. }), "per address: {e:?}");
    // Another address is judged apart.
    send(f.at(200), &sms, Purpose::Signup, "+8613600136000", Some("10.0.0.2")).await.unwrap();
}

struct Failing;

#[async_trait]
impl SmsSender for Failing {
    async fn send(&self, _msg: &Message) -> Result<(), SmsError> {
        Err(SmsError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_failed_send_leaves_no_code_and_no_pause() {
    let f = Fixture::new();
    assert!(matches!(send(f.at(0), &Failing, Purpose::Reset, PHONE, None).await, Err(OtpError::Sms(_))));
    let sms = Captured::default();
    send(f.at(1), &sms, Purpose::Reset, PHONE, None).await.unwrap();
    verify(f.at(2), Purpose::Reset, PHONE, &sms.last_code()).await.unwrap();
}

#[test]
fn codes_are_digits_of_the_length_and_debug_hides_them() {
    for len in 6..=8 {
        let c = random_code(len);
        assert_eq!(c.expose().len(), len as usize);
        assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        assert!(!format!("{c:?}").contains(c.expose()));
    }
    let m = Message { template: Template::Signup, phone: PHONE.into(), params: vec![("code".into(), "123456".into())] };
    let d = format!("{m:?}");
    assert!(!d.contains("123456") && !d.contains("13800138000"), "{d}");
}

// SH-8.2: the counts slide. Three codes (per_phone) just before a bucket boundary still count
// just after it: fixed hourly buckets let a phone get three more at once, six in a few minutes.
#[tokio::test]
async fn a_burst_before_a_bucket_boundary_still_counts_after_it() {
    let f = Fixture::new();
    let sms = Captured::default();
    let w = f.cfg.window;
    for t in [w - 200, w - 140, w - 80] {
        send(f.at(t), &sms, Purpose::Signup, PHONE, Some("10.0.0.1")).await.unwrap();
    }
    let e = send(f.at(w + 10), &sms, Purpose::Signup, PHONE, Some("10.0.0.2")).await.unwrap_err();
    let OtpError::RateLimited { retry_after } = e else { unreachable!("{e:?}") };
    // Counted now: 3 before the boundary and this refused ask after it. One more fits once
    // the three have slid out far enough: 2 + 3 * (w - e) / w <= 3, at e = 2w / 3.
    assert_eq!(retry_after, u64::try_from(2 * w / 3 - 10).unwrap());
    send(f.at(w + 2 * w / 3), &sms, Purpose::Signup, PHONE, Some("10.0.0.3")).await.unwrap();
    assert_eq!(sms.0.lock().unwrap().len(), 4, "refused asks send nothing");
}

#[test]
fn sliding_wait_is_exact_at_its_edges() {
    const W: i64 = 3600;
    // Nothing before: the bucket alone decides.
    assert_eq!(sliding_wait(3, 0, 0, W, 3), None);
    // Over with nothing before: the next bucket, once these four weigh 2 or less (e = W / 2).
    assert_eq!(sliding_wait(4, 0, 100, W, 3), Some((W - 100 + W / 2) as u64));
    // Half the previous bucket still weighs: 1 + 4 * 1/2 = 3 fits, 2 + 4 * 1/2 does not.
    assert_eq!(sliding_wait(1, 4, W / 2, W, 3), None);
    let wait = sliding_wait(2, 4, W / 2, W, 3).unwrap();
    // The next one (the third here) fits when 3 + 4 * (W - e) / W <= 3: at the boundary.
    assert_eq!(wait, (W / 2) as u64);
    // The wait found is the first second that fits, never one too early.
    for (n, prev, e, limit) in [(2, 5, 600, 4), (3, 1, 0, 3), (5, 9, 3599, 5), (1, 7, 1, 2), (9, 0, 10, 3)] {
        let wait = sliding_wait(n, prev, e, W, limit).unwrap() as i64;
        let fits = |at: i64| {
            if at < W { (n + 1) * W + prev * (W - at) <= limit * W } else { W + n * (W - (at - W)) <= limit * W }
        };
        assert!(fits(e + wait), "{n} {prev} {e} {limit}: {wait}");
        assert!(wait == 1 || !fits(e + wait - 1), "{n} {prev} {e} {limit}: {wait} is not the first");
    }
}
