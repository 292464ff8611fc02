//! Turning readings into samples: identity labels plus target labels plus the family's own
//! labels, metadata once per family, stale markers for series that disappear.
//!
//! Building a label set costs interner lookups, a sort and an allocation, and the result is
//! the same every cycle for a given (cgroup, family, extra labels). So each cgroup keeps a
//! [`SeriesCache`] of finished (and relabeled) label sets, rebuilt only when the cgroup's
//! identity labels change; a steady-state cycle builds no labels at all. Each cached series
//! remembers the cycle it was last emitted in, which is all staleness needs: a series emitted
//! last cycle and not this one gets a stale marker, without hashing any label set.

use std::sync::Arc;

use crate::model::{
    Batch, Labels, LabelsBuilder, METRIC_NAME, Sample, SourceId, intern, stale_nan,
};

use super::families::Family;

/// Relabel rules applied to every series of this source; `None` drops the series. Applied
/// once per series when its labels are first built, not per sample.
pub type RelabelFn = Arc<dyn Fn(&Labels) -> Option<Labels> + Send + Sync>;

/// Which collector produced a series, so a collector that skips a cycle (its own interval is
/// longer) keeps its series alive instead of letting them go stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Group {
    Always,
    Spec,
    Cpu,
    CpuLoad,
    Memory,
    DiskIo,
    Disk,
    Network,
    Process,
    Oom,
    Pressure,
    Hugetlb,
    Machine,
}

struct Cached {
    /// [`series_key`] of the family and its own labels.
    key: u64,
    /// Finished labels; None when relabeling dropped the series.
    labels: Option<Labels>,
    /// Cycle in which the series was last emitted (wraps after 2^32 cycles, decades at any
    /// sane interval; a wrapped entry at worst misses one stale marker).
    cycle: u32,
    group: Group,
}

/// Finished label sets of one cgroup's (or the machine's) series.
///
/// A cgroup emits its series in the same order every cycle, so the cache is a list in that
/// order with a cursor: the next series is almost always the entry under the cursor, found
/// with one key comparison and no hashing, and the list costs a third of a hash map's memory.
pub struct SeriesCache {
    /// Identity labels the cache was built for.
    identity: Option<Labels>,
    /// Identity plus target labels.
    base: Labels,
    series: Vec<Cached>,
    /// Where the next emitted series is expected.
    cursor: usize,
}

impl Default for SeriesCache {
    fn default() -> Self {
        Self {
            identity: None,
            base: Labels::empty(),
            series: Vec::new(),
            cursor: 0,
        }
    }
}

impl SeriesCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

pub struct SeriesEmitter<'a> {
    batch: Batch,
    timestamp_ms: i64,
    cycle: u64,
    /// Families already described in this batch, by name pointer.
    described: Vec<*const Family>,
    target: &'a Labels,
    relabel: Option<&'a RelabelFn>,
}

impl<'a> SeriesEmitter<'a> {
    /// An emitter for one cycle (`cycle` counts up by one per collection).
    pub fn new(
        source: SourceId,
        timestamp_ms: i64,
        cycle: u64,
        target: &'a Labels,
        relabel: Option<&'a RelabelFn>,
    ) -> Self {
        Self {
            batch: Batch::new(source),
            timestamp_ms,
            cycle,
            described: Vec::with_capacity(128),
            target,
            relabel,
        }
    }

    /// Reserves room for `n` samples (last cycle's count): one allocation instead of a
    /// doubling series, and a steadier memory high-water mark.
    pub fn reserve(&mut self, n: usize) {
        self.batch.samples.reserve(n);
    }

    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// Points `cache` at `identity` labels; a change (metadata arrived, pod renamed) empties it.
    pub fn bind(&self, cache: &mut SeriesCache, identity: &Labels) {
        cache.cursor = 0;
        // The list grew by doubling while its series were first seen; they rarely change after.
        if cache.series.capacity() > cache.series.len() + cache.series.len() / 4 + 4 {
            cache.series.shrink_to_fit();
        }
        if cache.identity.as_ref() == Some(identity) {
            return;
        }
        let mut b = identity.builder();
        for l in self.target.iter() {
            // Exporter labels win over target labels, as with `honor_labels: true`.
            if identity.get(&l.name).is_none() {
                b.set_symbols(l.name.clone(), l.value.clone());
            }
        }
        cache.base = b.build();
        cache.identity = Some(identity.clone());
        cache.series.clear();
    }

    /// Emits one sample of `family` with the family's own `extra` labels, using (and filling)
    /// the cache bound with [`bind`](Self::bind).
    pub fn emit(
        &mut self,
        cache: &mut SeriesCache,
        group: Group,
        family: &'static Family,
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let key = series_key(family, extra);
        let idx = match cache.series.get(cache.cursor) {
            Some(c) if c.key == key => cache.cursor,
            _ => match cache.series.iter().position(|c| c.key == key) {
                Some(i) => i,
                None => {
                    let labels = series_labels(&cache.base, family, extra);
                    let labels = match self.relabel {
                        // Rules that keep a series unchanged keep it in the shared form.
                        Some(r) => r(&labels).map(|out| if out == labels { labels } else { out }),
                        None => Some(labels),
                    };
                    let at = cache.cursor.min(cache.series.len());
                    cache.series.insert(
                        at,
                        Cached {
                            key,
                            labels,
                            cycle: 0,
                            group,
                        },
                    );
                    at
                }
            },
        };
        cache.cursor = idx + 1;
        let cached = &mut cache.series[idx];
        cached.cycle = self.cycle as u32;
        let Some(labels) = &cached.labels else {
            return;
        };
        let fp: *const Family = family;
        if !self.described.contains(&fp) {
            self.described.push(fp);
            self.batch.metadata.push(family.metadata());
        }
        self.batch.samples.push(Sample {
            labels: labels.clone(),
            timestamp_ms: self.timestamp_ms,
            value,
        });
    }

    /// Keeps the series `group` emitted last time alive without new samples: that collector
    /// is not due this cycle.
    pub fn keep_alive(&mut self, cache: &mut SeriesCache, group: Group) {
        let previous = self.cycle.saturating_sub(1) as u32;
        for c in &mut cache.series {
            if c.group == group && c.cycle >= previous {
                c.cycle = self.cycle as u32;
            }
        }
    }

    /// Forgets series of `cache` not emitted for `max_age` cycles (a device or interface that
    /// went away), so caches do not grow with churn inside a long-lived cgroup.
    pub fn prune(&self, cache: &mut SeriesCache, max_age: u64) {
        let cycle = self.cycle as u32;
        cache
            .series
            .retain(|c| u64::from(cycle.wrapping_sub(c.cycle)) <= max_age);
    }

    /// Stale markers for the series of `cache` emitted last cycle and not this one (a device
    /// or interface that went away, a set that stopped). Call once per cache after emitting.
    pub fn end_cache(&mut self, cache: &SeriesCache) {
        let previous = self.cycle.saturating_sub(1) as u32;
        for c in &cache.series {
            if c.cycle == previous
                && let Some(l) = &c.labels
            {
                self.batch.samples.push(Sample {
                    labels: l.clone(),
                    timestamp_ms: self.timestamp_ms,
                    value: stale_nan(),
                });
            }
        }
    }

    /// Stale markers for every live series of a cgroup that is gone.
    pub fn retire(&mut self, cache: &SeriesCache) {
        let previous = self.cycle.saturating_sub(1) as u32;
        for c in &cache.series {
            if c.cycle >= previous
                && let Some(l) = &c.labels
            {
                self.batch.samples.push(Sample {
                    labels: l.clone(),
                    timestamp_ms: self.timestamp_ms,
                    value: stale_nan(),
                });
            }
        }
    }

    /// Ends the cycle: the batch.
    pub fn finish(self) -> Batch {
        self.batch
    }
}

/// The labels of one series: the cgroup's identity and target labels (`base`, shared by all
/// its series) plus the family name and the family's own labels.
fn series_labels(base: &Labels, family: &'static Family, extra: &[(&str, &str)]) -> Labels {
    let mut own = LabelsBuilder::with_capacity(1 + extra.len());
    own.set(METRIC_NAME, family.name);
    for (k, v) in extra {
        // An empty value removes a label; one `base` has cannot be removed by adding to it.
        if v.is_empty() && base.get(k).is_some() {
            let mut b = base.builder();
            b.set(METRIC_NAME, family.name);
            for (k, v) in extra {
                b.set(k, v);
            }
            return b.build();
        }
        own.set(k, v);
    }
    base.with_own(&own)
}

/// FNV-1a over the family and its extra labels: a 64-bit key is collision-free in practice
/// for the few hundred series of one cgroup.
fn series_key(family: &'static Family, extra: &[(&str, &str)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(family.name.as_bytes());
    for (k, v) in extra {
        eat(k.as_bytes());
        eat(v.as_bytes());
    }
    h
}

/// Target labels as a label set (interned once).
pub fn target_labels<'k>(pairs: impl IntoIterator<Item = (&'k str, &'k str)>) -> Labels {
    let mut b = crate::model::LabelsBuilder::new();
    for (k, v) in pairs {
        b.set_symbols(intern(k), intern(v));
    }
    b.build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::sources::cgroup::families::{CPU_USAGE, MEM_RSS};

    #[test]
    fn labels_are_built_once_and_target_labels_do_not_override_identity() {
        let target = target_labels([("job", "kubelet"), ("pod", "should-not-win")]);
        let mut cache = SeriesCache::new();
        let identity = Labels::from_pairs([("id", "/a"), ("pod", "web")]);
        let mut first = None;
        for cycle in 1..=2 {
            let mut e = SeriesEmitter::new(SourceId::new("t"), 1000, cycle, &target, None);
            e.bind(&mut cache, &identity);
            e.emit(&mut cache, Group::Cpu, &CPU_USAGE, &[("cpu", "total")], 1.0);
            e.end_cache(&cache);
            let b = e.finish();
            let l = b.samples[0].labels.clone();
            assert_eq!(l.get("pod"), Some("web"));
            assert_eq!(l.get("job"), Some("kubelet"));
            assert_eq!(l.get("cpu"), Some("total"));
            if let Some(f) = &first {
                assert!(std::ptr::eq(
                    Labels::as_slice(f).as_ptr(),
                    l.as_slice().as_ptr()
                ));
            }
            first = Some(l);
        }
    }

    #[test]
    fn relabel_drops_are_remembered_and_kept_alive_series_do_not_go_stale() {
        let target = Labels::empty();
        let drop_rss: RelabelFn = Arc::new(|l: &Labels| {
            (l.metric_name() != Some("container_memory_rss")).then(|| l.clone())
        });
        let mut cache = SeriesCache::new();
        let identity = Labels::from_pairs([("id", "/a")]);
        let mut e = SeriesEmitter::new(SourceId::new("t"), 1, 1, &target, Some(&drop_rss));
        e.bind(&mut cache, &identity);
        e.emit(&mut cache, Group::Memory, &MEM_RSS, &[], 1.0);
        e.emit(&mut cache, Group::Cpu, &CPU_USAGE, &[("cpu", "total")], 1.0);
        e.end_cache(&cache);
        let b = e.finish();
        assert_eq!(b.samples.len(), 1);
        let mut e = SeriesEmitter::new(SourceId::new("t"), 2, 2, &target, Some(&drop_rss));
        e.bind(&mut cache, &identity);
        e.keep_alive(&mut cache, Group::Cpu);
        e.end_cache(&cache);
        let b = e.finish();
        assert!(b.samples.is_empty(), "no new sample and no stale marker");
        let mut e = SeriesEmitter::new(SourceId::new("t"), 3, 3, &target, Some(&drop_rss));
        e.bind(&mut cache, &identity);
        e.end_cache(&cache);
        let b = e.finish();
        assert_eq!(
            b.samples.len(),
            1,
            "the CPU series stopped: one stale marker"
        );
        assert!(crate::model::is_stale_nan(b.samples[0].value));
        let mut e = SeriesEmitter::new(SourceId::new("t"), 4, 4, &target, Some(&drop_rss));
        e.end_cache(&cache);
        assert!(e.finish().samples.is_empty(), "once");
    }
}
