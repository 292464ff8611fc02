//! Interned, sorted label sets.
//!
//! Label names and values repeat across series and cycles (`container_cpu_usage_seconds_total`
//! appears once per container, `namespace="kube-system"` on dozens of series), so every string
//! is interned once and series hold cheap reference-counted handles. A [`Labels`] is immutable
//! and sorted by name, which makes equality, hashing and the remote-write requirement "labels
//! sorted by name" free.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

/// The label that carries a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// An interned string. Cloning is a reference-count increment; equality compares pointers
/// first, then contents (two symbols from the same interner with equal text share a pointer).
#[derive(Clone)]
pub struct Symbol(Arc<str>);

impl Symbol {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address of the interned text. Every symbol comes from the interner, and a string
    /// stays interned while any symbol refers to it, so within one process equal texts have
    /// equal addresses: a key as good as the text and far cheaper to hash or compare.
    pub fn address(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl PartialEq for Symbol {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}
impl Eq for Symbol {}

impl Hash for Symbol {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Symbol {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl std::ops::Deref for Symbol {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Symbol {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        intern(s)
    }
}

const SHARDS: usize = 16;

/// Process-wide string interner, sharded so that concurrent sources rarely contend.
struct Interner {
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<HashSet<Arc<str>>>; SHARDS],
}

static INTERNER: LazyLock<Interner> = LazyLock::new(|| Interner {
    hasher: std::collections::hash_map::RandomState::new(),
    shards: std::array::from_fn(|_| Mutex::new(HashSet::new())),
});

/// Returns the interned handle for `s`, inserting it on first use.
pub fn intern(s: &str) -> Symbol {
    let interner = &*INTERNER;
    let shard = (interner.hasher.hash_one(s) as usize) % SHARDS;
    let mut set = interner.shards[shard]
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(existing) = set.get(s) {
        return Symbol(Arc::clone(existing));
    }
    let arc: Arc<str> = Arc::from(s);
    set.insert(Arc::clone(&arc));
    Symbol(arc)
}

/// Number of distinct strings currently interned (a self-metric: churn shows up here).
pub fn interned_count() -> usize {
    INTERNER
        .shards
        .iter()
        .map(|s| {
            s.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
        })
        .sum()
}

/// Forgets strings no series refers to any more. Run periodically; series churn (containers
/// coming and going) would otherwise grow the interner forever.
pub fn collect_unused_symbols() -> usize {
    let mut freed = 0;
    for shard in &INTERNER.shards {
        let mut set = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = set.len();
        set.retain(|s| Arc::strong_count(s) > 1);
        freed += before - set.len();
    }
    freed
}

/// One name/value pair.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Label {
    pub name: Symbol,
    pub value: Symbol,
}

/// An immutable label set, sorted by name, names unique, no empty values (Prometheus treats an
/// empty value as an absent label).
///
/// Most sets are one flat array. A set made with [`Labels::with_own`] instead shares the array
/// of another set (a container's identity and target labels) and keeps only its own few labels
/// (`__name__`, a device): the dozens of series of one container then cost one small
/// allocation each instead of a full copy of the labels they have in common. Both forms
/// compare, hash and order by content alike.
///
/// Hashing uses [`Labels::identity_hash`] (symbol addresses, not text): label sets are hashed
/// per sample on hot paths (staleness sets, series caches, request grouping), and hashing the
/// text there cost more than everything else those paths do. Hashes are therefore only
/// meaningful within one process.
#[derive(Clone)]
pub struct Labels(Repr);

#[derive(Clone)]
enum Repr {
    Flat(Arc<[Label]>),
    Layered(Arc<Layered>),
}

struct Layered {
    /// Sorted by name; no name in common with `own`.
    shared: Arc<[Label]>,
    /// Sorted by name.
    own: Own,
    /// Both merged into one array, made on the first [`Labels::as_slice`] call only.
    flat: OnceLock<Box<[Label]>>,
}

/// A layered set's own labels: most series have one (`__name__`), kept inline.
enum Own {
    One([Label; 1]),
    Many(Box<[Label]>),
}

impl Own {
    fn as_slice(&self) -> &[Label] {
        match self {
            Self::One(l) => l,
            Self::Many(l) => l,
        }
    }
}

fn find<'a>(labels: &'a [Label], name: &str) -> Option<&'a Label> {
    labels
        .binary_search_by(|l| l.name.as_str().cmp(name))
        .ok()
        .map(|i| &labels[i])
}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.identity_hash());
    }
}

impl Labels {
    /// The empty set.
    pub fn empty() -> Self {
        static EMPTY: LazyLock<Labels> =
            LazyLock::new(|| Labels(Repr::Flat(Arc::from(Vec::new()))));
        EMPTY.clone()
    }

    /// Builds a set from pairs in any order; later duplicates win, empty values are dropped.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// This set's labels plus those of `own`, which win over same-named ones; sharing this
    /// set's storage when the names do not overlap (the cheap form for many series over one
    /// common block of labels).
    pub fn with_own(&self, own: &LabelsBuilder) -> Labels {
        if own.labels.is_empty() {
            return self.clone();
        }
        let Repr::Flat(shared) = &self.0 else {
            return self.merged_flat(own);
        };
        if own.labels.iter().any(|l| find(shared, &l.name).is_some()) {
            return self.merged_flat(own);
        }
        let mut mine = own.labels.clone();
        mine.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let own = match <[Label; 1]>::try_from(mine) {
            Ok(one) => Own::One(one),
            Err(many) => Own::Many(many.into_boxed_slice()),
        };
        Labels(Repr::Layered(Arc::new(Layered {
            shared: Arc::clone(shared),
            own,
            flat: OnceLock::new(),
        })))
    }

    fn merged_flat(&self, own: &LabelsBuilder) -> Labels {
        let mut b = self.builder();
        for l in &own.labels {
            b.set_symbols(l.name.clone(), l.value.clone());
        }
        b.build()
    }

    /// The two sorted runs the set is made of (the second is empty for a flat set).
    fn parts(&self) -> (&[Label], &[Label]) {
        match &self.0 {
            Repr::Flat(a) => (a, &[]),
            Repr::Layered(l) => (&l.shared, l.own.as_slice()),
        }
    }

    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.iter().cloned().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let (shared, own) = self.parts();
        find(own, name)
            .or_else(|| find(shared, name))
            .map(|l| l.value.as_str())
    }

    /// The metric name (`__name__`), if set.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Label> {
        let (shared, own) = self.parts();
        LabelsIter {
            a: shared.iter(),
            b: own.iter(),
        }
    }

    pub fn len(&self) -> usize {
        let (shared, own) = self.parts();
        shared.len() + own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A hash of the set from its symbols' addresses (see [`Symbol::address`]): equal sets
    /// hash equally within this process, at a fraction of the cost of hashing their text. Not
    /// stable across processes.
    pub fn identity_hash(&self) -> u64 {
        // FxHash's step per word, then a final avalanche so low bits are usable as buckets.
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.len() as u64;
        for l in self.iter() {
            h = (h.rotate_left(5) ^ l.name.address() as u64).wrapping_mul(K);
            h = (h.rotate_left(5) ^ l.value.address() as u64).wrapping_mul(K);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }

    /// The labels as one array. A set made with [`with_own`](Self::with_own) merges its parts
    /// into a copy on the first call (and keeps it): prefer [`iter`](Self::iter).
    pub fn as_slice(&self) -> &[Label] {
        match &self.0 {
            Repr::Flat(a) => a,
            Repr::Layered(l) => l.flat.get_or_init(|| {
                LabelsIter {
                    a: l.shared.iter(),
                    b: l.own.as_slice().iter(),
                }
                .cloned()
                .collect()
            }),
        }
    }
}

/// Merges the two sorted runs of a set.
struct LabelsIter<'a> {
    a: std::slice::Iter<'a, Label>,
    b: std::slice::Iter<'a, Label>,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = &'a Label;

    fn next(&mut self) -> Option<&'a Label> {
        match (self.a.as_slice().first(), self.b.as_slice().first()) {
            (Some(x), Some(y)) if y.name.as_str() < x.name.as_str() => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.a.len() + self.b.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for LabelsIter<'_> {}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Flat(a), Repr::Flat(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
            (Repr::Layered(a), Repr::Layered(b)) if Arc::ptr_eq(a, b) => true,
            (Repr::Layered(a), Repr::Layered(b)) if Arc::ptr_eq(&a.shared, &b.shared) => {
                a.own.as_slice() == b.own.as_slice()
            }
            _ => self.len() == other.len() && self.iter().eq(other.iter()),
        }
    }
}

impl Eq for Labels {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic over the labels in order, as slices order.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (&self.0, &other.0) {
            (Repr::Flat(a), Repr::Flat(b)) => a[..].cmp(&b[..]),
            _ => self.iter().cmp(other.iter()),
        }
    }
}

/// A hasher for keys that already are good 64-bit hashes ([`Labels`], `u64` hashes): it
/// passes them through instead of hashing again; `usize` keys (addresses) get one multiply.
#[derive(Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached by keys other than u64/usize: fold them in, FxHash style.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_usize(&mut self, n: usize) {
        // Addresses ([`Symbol::address`]): aligned and clustered, so spread them over all bits.
        let h = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

/// Builds [`PassThroughHasher`]s.
pub type IdentityBuildHasher = std::hash::BuildHasherDefault<PassThroughHasher>;

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `name{a="b",c="d"}` in exposition style, for logs and test failures.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.iter().filter(|l| l.name.as_str() != METRIC_NAME) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value.as_str())?;
        }
        f.write_str("}")
    }
}

/// Mutable label set under construction (the relabel engine and sources use it).
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            labels: Vec::with_capacity(n),
        }
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.remove(name);
        }
        match self.labels.iter_mut().find(|l| l.name.as_str() == name) {
            Some(l) => {
                if l.value.as_str() != value {
                    l.value = intern(value);
                }
            }
            None => self.labels.push(Label {
                name: intern(name),
                value: intern(value),
            }),
        }
        self
    }

    /// Like [`set`](Self::set) with already interned symbols (no interner lookup).
    pub fn set_symbols(&mut self, name: Symbol, value: Symbol) -> &mut Self {
        if value.is_empty() {
            return self.remove(&name);
        }
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) => l.value = value,
            None => self.labels.push(Label { name, value }),
        }
        self
    }

    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name.as_str() != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name.as_str() == name)
            .map(|l| l.value.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    pub fn clear(&mut self) {
        self.labels.clear();
    }

    pub fn build(&self) -> Labels {
        let mut v = self.labels.clone();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels(Repr::Flat(Arc::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_built_apart_hash_alike_and_different_sets_do_not() {
        let a = Labels::from_pairs([("__name__", "m"), ("job", "a"), ("x", "1")]);
        let b = Labels::from_pairs([("x", "1"), ("job", "a"), ("__name__", "m")]);
        assert!(
            !std::ptr::eq(a.as_slice().as_ptr(), b.as_slice().as_ptr()),
            "two allocations"
        );
        assert_eq!(a, b);
        assert_eq!(a.identity_hash(), b.identity_hash());
        let h = |l: &Labels| IdentityBuildHasher::default().hash_one(l);
        assert_eq!(h(&a), h(&b));
        // The same strings as other names or values, or in another arrangement, differ.
        for other in [
            Labels::from_pairs([("__name__", "m"), ("job", "x"), ("x", "a")]),
            Labels::from_pairs([("__name__", "m"), ("job", "a")]),
            Labels::from_pairs([("__name__", "m"), ("job", "a"), ("x", "2")]),
        ] {
            assert_ne!(a.identity_hash(), other.identity_hash(), "{other}");
        }
    }

    #[test]
    fn labels_are_sorted_unique_and_drop_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn equal_sets_built_in_any_order_are_equal() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let b = Labels::from_pairs([("job", "x"), ("__name__", "up")]);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), r#"up{job="x"}"#);
    }

    #[test]
    fn a_set_sharing_a_block_equals_hashes_and_orders_like_the_flat_set() {
        use std::hash::BuildHasher as _;
        let block = Labels::from_pairs([("id", "/a"), ("job", "kubelet"), ("pod", "web")]);
        let mut own = LabelsBuilder::new();
        own.set(METRIC_NAME, "container_memory_rss")
            .set("zone", "z");
        let layered = block.with_own(&own);
        let flat = Labels::from_pairs([
            ("zone", "z"),
            ("id", "/a"),
            ("__name__", "container_memory_rss"),
            ("job", "kubelet"),
            ("pod", "web"),
        ]);
        assert!(matches!(layered.0, Repr::Layered(_)));
        assert_eq!(layered, flat);
        assert_eq!(flat, layered);
        let s = std::collections::hash_map::RandomState::new();
        assert_eq!(s.hash_one(&layered), s.hash_one(&flat));
        assert_eq!(layered.cmp(&flat), std::cmp::Ordering::Equal);
        let names: Vec<&str> = layered.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "id", "job", "pod", "zone"]);
        assert_eq!(layered.len(), 5);
        assert_eq!(layered.iter().len(), 5);
        assert_eq!(layered.get("pod"), Some("web"));
        assert_eq!(layered.metric_name(), Some("container_memory_rss"));
        assert_eq!(layered.as_slice(), flat.as_slice());
        assert_eq!(layered.to_string(), flat.to_string());
        assert_eq!(layered.builder().build(), flat);
        let other = Labels::from_pairs([("__name__", "container_memory_rss"), ("id", "/b")]);
        assert_eq!(layered.cmp(&other), flat.cmp(&other));
        assert_ne!(layered, other);
    }

    #[test]
    fn own_labels_win_over_the_block_and_the_result_is_then_flat() {
        let block = Labels::from_pairs([("id", "/a"), ("job", "kubelet")]);
        let mut own = LabelsBuilder::new();
        own.set("job", "other");
        let l = block.with_own(&own);
        assert!(matches!(l.0, Repr::Flat(_)));
        assert_eq!(l, Labels::from_pairs([("id", "/a"), ("job", "other")]));
        assert_eq!(block.with_own(&LabelsBuilder::new()), block);
    }

    #[test]
    fn interning_shares_storage_and_unused_symbols_are_collected() {
        let a = intern("nodemeter-test-unique-value");
        let b = intern("nodemeter-test-unique-value");
        assert!(Arc::ptr_eq(&a.0, &b.0));
        drop((a, b));
        collect_unused_symbols();
        let shard_has = INTERNER.shards.iter().any(|s| {
            s.lock()
                .map(|s| s.contains("nodemeter-test-unique-value"))
                .unwrap_or(false)
        });
        assert!(!shard_has);
    }
}
