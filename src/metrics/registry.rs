//! Metric families keyed by label values: counters and fixed-bucket histograms. An existing
//! series is found under a read lock and updated with atomics; a family holds at most its cap
//! of series ([`MAX_SERIES`] by default) and folds any further label set into the values `other`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use super::text;
use crate::fastmap::Fast;
use crate::prehashed::BuildPrehashed;

/// Most series one family keeps; label sets beyond it are counted under [`OTHER`].
pub const MAX_SERIES: usize = 10_000;

/// Longest label value kept, in bytes; longer values are cut at a character boundary.
pub const MAX_LABEL_LEN: usize = 128;

/// The label value that absorbs label sets past the cardinality cap.
pub const OTHER: &str = "other";

/// Latency buckets in seconds, shared by every duration histogram.
pub const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One series: its label values and its value.
struct Series<T> {
    labels: Box<[Box<str>]>,
    value: T,
}

/// Series indexed by the hash of their label values (colliding label sets share a vector). The
/// keys are [`Family::hash`]es, keyed by a per-family random key, so the map does not hash them
/// again.
struct Table<T> {
    by_hash: HashMap<u64, Vec<Series<T>>, BuildPrehashed>,
    len: usize,
}

/// The series of one metric name: its label names, and a value per label set.
struct Family<T> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    hasher: Fast,
    cap: usize,
    table: RwLock<Table<T>>,
}

/// Cuts `v` to at most [`MAX_LABEL_LEN`] bytes without splitting a character.
fn clip(v: &str) -> &str {
    if v.len() <= MAX_LABEL_LEN {
        return v;
    }
    let end = (0..=MAX_LABEL_LEN).rev().find(|i| v.is_char_boundary(*i)).unwrap_or(0);
    v.get(..end).unwrap_or("")
}

fn same(labels: &[Box<str>], values: &[&str]) -> bool {
    labels.len() == values.len() && labels.iter().zip(values).all(|(l, v)| **l == **v)
}

impl<T> Family<T> {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str], cap: usize) -> Self {
        let table = Table { by_hash: HashMap::default(), len: 0 };
        Self { name, help, labels, hasher: Fast::default(), cap: cap.max(1), table: RwLock::new(table) }
    }

    fn hash(&self, values: &[&str]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for v in values {
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// Runs `f` on the series of `values`, creating it with `make` when new.
    fn with(&self, values: &[&str], make: impl FnOnce() -> T, f: impl FnOnce(&T)) {
        debug_assert_eq!(values.len(), self.labels.len(), "label count of {}", self.name);
        let clipped: Vec<&str>;
        let values = if values.iter().any(|v| v.len() > MAX_LABEL_LEN) {
            clipped = values.iter().map(|v| clip(v)).collect();
            clipped.as_slice()
        } else {
            values
        };
        let hash = self.hash(values);
        {
            let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = t.by_hash.get(&hash).and_then(|b| b.iter().find(|s| same(&s.labels, values))) {
                f(&s.value);
                return;
            }
        }
        // A new label set (or one another thread inserted meanwhile): the cold path.
        let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let known = t.by_hash.get(&hash).is_some_and(|b| b.iter().any(|s| same(&s.labels, values)));
        let folded: Vec<&str>;
        let (hash, values) = if !known && t.len >= self.cap {
            folded = vec![OTHER; values.len()];
            (self.hash(&folded), folded.as_slice())
        } else {
            (hash, values)
        };
        let table = &mut *t;
        let bucket = table.by_hash.entry(hash).or_default();
        if let Some(s) = bucket.iter().find(|s| same(&s.labels, values)) {
            f(&s.value);
            return;
        }
        let labels: Box<[Box<str>]> = values.iter().map(|v| Box::<str>::from(*v)).collect();
        let value = make();
        f(&value);
        bucket.push(Series { labels, value });
        table.len += 1;
    }

    /// Reads the series of `values` without creating it.
    fn peek<R>(&self, values: &[&str], f: impl FnOnce(&T) -> R) -> Option<R> {
        let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
        t.by_hash.get(&self.hash(values))?.iter().find(|s| same(&s.labels, values)).map(|s| f(&s.value))
    }

    /// Number of series held.
    fn len(&self) -> usize {
        self.table.read().unwrap_or_else(PoisonError::into_inner).len
    }

    /// Writes `# HELP`, `# TYPE` and, through `line`, every series sorted by label values.
    fn render(&self, kind: &str, out: &mut String, mut line: impl FnMut(&mut String, &[Box<str>], &T)) {
        text::header(out, self.name, self.help, kind);
        let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<&Series<T>> = t.by_hash.values().flatten().collect();
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        for s in all {
            line(out, &s.labels, &s.value);
        }
    }
}

/// A family of monotonically increasing counters.
pub struct CounterVec(Family<AtomicU64>);

impl CounterVec {
    /// A counter family named `name` with label names `labels`; a label-less one starts at 0.
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self::with_cap(name, help, labels, MAX_SERIES)
    }

    /// As [`CounterVec::new`] with a cap other than [`MAX_SERIES`].
    pub fn with_cap(name: &'static str, help: &'static str, labels: &'static [&'static str], cap: usize) -> Self {
        let family = Family::new(name, help, labels, cap);
        if labels.is_empty() {
            family.with(&[], || AtomicU64::new(0), |_| {});
        }
        Self(family)
    }

    /// Adds one to the series of `values` (one value per label name, in order).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// Adds `n` to the series of `values`.
    pub fn add(&self, values: &[&str], n: u64) {
        self.0.with(
            values,
            || AtomicU64::new(0),
            |c| {
                c.fetch_add(n, Ordering::Relaxed);
            },
        );
    }

    /// The current value of the series of `values`, 0 when it does not exist.
    pub fn get(&self, values: &[&str]) -> u64 {
        self.0.peek(values, |c| c.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no series exists yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the family in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let (name, labels) = (self.0.name, self.0.labels);
        self.0.render("counter", out, |out, values, c| {
            text::sample(out, name, "", labels, values, None, &text::uint(c.load(Ordering::Relaxed)));
        });
    }
}

/// The counts of one histogram series. Buckets are not cumulative here; the last one counts
/// observations above every bound, so the total count is the sum of all buckets.
pub struct Buckets {
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

impl Buckets {
    fn new(bounds: usize) -> Self {
        Self { counts: (0..=bounds).map(|_| AtomicU64::new(0)).collect(), sum_bits: AtomicU64::new(0f64.to_bits()) }
    }

    fn observe(&self, bounds: &[f64], v: f64) {
        let i = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
    }
}

/// A family of histograms with fixed bucket bounds (upper bounds, inclusive, ascending).
pub struct HistogramVec {
    family: Family<Buckets>,
    bounds: &'static [f64],
}

impl HistogramVec {
    /// A histogram family named `name` with label names `labels` and bucket `bounds`.
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Self {
        let family = Family::new(name, help, labels, MAX_SERIES);
        if labels.is_empty() {
            family.with(&[], || Buckets::new(bounds.len()), |_| {});
        }
        Self { family, bounds }
    }

    /// Records one observation of `v` in the series of `values`. NaN is ignored; a negative
    /// value lands in the first bucket.
    pub fn observe(&self, values: &[&str], v: f64) {
        if v.is_nan() {
            return;
        }
        let bounds = self.bounds;
        self.family.with(values, || Buckets::new(bounds.len()), |b| b.observe(bounds, v));
    }

    /// Number of observations in the series of `values`, 0 when it does not exist.
    pub fn count(&self, values: &[&str]) -> u64 {
        self.family.peek(values, |b| b.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()).unwrap_or(0)
    }

    /// Appends the family in the text exposition format: cumulative `_bucket` lines ending in
    /// `le="+Inf"`, then `_sum` and `_count`.
    pub fn render(&self, out: &mut String) {
        let (name, labels, bounds) = (self.family.name, self.family.labels, self.bounds);
        self.family.render("histogram", out, |out, values, b| {
            let mut cumulative = 0u64;
            let les = bounds.iter().map(|le| text::float(*le)).chain(std::iter::once("+Inf".to_owned()));
            for (count, le) in b.counts.iter().zip(les) {
                cumulative = cumulative.saturating_add(count.load(Ordering::Relaxed));
                text::sample(out, name, "_bucket", labels, values, Some(&le), &text::uint(cumulative));
            }
            let sum = f64::from_bits(b.sum_bits.load(Ordering::Relaxed));
            text::sample(out, name, "_sum", labels, values, None, &text::float(sum));
            text::sample(out, name, "_count", labels, values, None, &text::uint(cumulative));
        });
    }
}
