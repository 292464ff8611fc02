use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::exposition::encode::{self, FamilyView, Format, Point};
use crate::model::{Batch, FamilyMetadata, Labels, MetricType, Symbol, intern, is_stale_nan};

struct Latest {
    timestamp_ms: i64,
    value: f64,
    updated: Instant,
}

#[derive(Default)]
struct Inner {
    /// Series by sample name (`__name__`), then labels.
    metrics: BTreeMap<Symbol, BTreeMap<Labels, Latest>>,
    /// Family metadata by family name.
    metadata: HashMap<Symbol, FamilyMetadata>,
    /// When series past the TTL were last removed.
    swept: Option<Instant>,
}

/// Latest value of every series the pipeline delivered.
#[derive(Default)]
pub struct SeriesStore {
    inner: RwLock<Inner>,
    ttl: Option<Duration>,
}

/// How often per TTL series past it are looked for (a series lives at most 1.25 TTL).
const SWEEPS_PER_TTL: u32 = 4;

/// Suffixes under which a family's samples appear, with the family types that use them.
const SUFFIXES: [(&str, &[MetricType]); 6] = [
    (
        "_bucket",
        &[MetricType::Histogram, MetricType::GaugeHistogram],
    ),
    ("_count", &[MetricType::Histogram, MetricType::Summary]),
    ("_sum", &[MetricType::Histogram, MetricType::Summary]),
    (
        "_created",
        &[
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Counter,
        ],
    ),
    ("_total", &[MetricType::Counter]),
    ("_info", &[MetricType::Info]),
];

impl SeriesStore {
    /// A store that forgets series not updated within `ttl`.
    pub fn new(ttl: Option<Duration>) -> Self {
        Self {
            inner: RwLock::default(),
            ttl,
        }
    }

    /// Applies a batch: metadata, new values, and removal of series marked stale.
    pub fn apply(&self, batch: &Batch) {
        let now = Instant::now();
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for m in &batch.metadata {
            inner.metadata.insert(m.name.clone(), m.clone());
        }
        for s in &batch.samples {
            let Some(name) = s.labels.metric_name() else {
                continue;
            };
            if is_stale_nan(s.value) {
                if let Some(series) = inner.metrics.get_mut(name) {
                    series.remove(&s.labels);
                    if series.is_empty() {
                        inner.metrics.remove(name);
                    }
                }
                continue;
            }
            let latest = Latest {
                timestamp_ms: s.timestamp_ms,
                value: s.value,
                updated: now,
            };
            match inner.metrics.get_mut(name) {
                Some(series) => {
                    series.insert(s.labels.clone(), latest);
                }
                None => {
                    inner
                        .metrics
                        .insert(intern(name), BTreeMap::from([(s.labels.clone(), latest)]));
                }
            }
        }
        // The sweep visits every series: a few times per TTL is enough for a safety net,
        // and keeps the cost per batch independent of how many series are held.
        if let Some(ttl) = self.ttl
            && inner
                .swept
                .is_none_or(|t| now.duration_since(t) >= ttl / SWEEPS_PER_TTL)
        {
            inner.swept = Some(now);
            inner.metrics.retain(|_, series| {
                series.retain(|_, l| now.duration_since(l.updated) < ttl);
                !series.is_empty()
            });
        }
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.read().metrics.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Current value of one series (tests and diagnostics).
    pub fn get(&self, labels: &Labels) -> Option<f64> {
        let name = labels.metric_name()?;
        self.read().metrics.get(name)?.get(labels).map(|l| l.value)
    }

    /// Every series of metric `name` with its value.
    pub fn series_of(&self, name: &str) -> Vec<(Labels, f64)> {
        self.read()
            .metrics
            .get(name)
            .map(|m| m.iter().map(|(l, v)| (l.clone(), v.value)).collect())
            .unwrap_or_default()
    }

    /// Encodes everything held, followed by `extra` (self-metrics taken at request time).
    pub fn render(&self, format: Format, timestamps: bool, extra: &Batch) -> String {
        let inner = self.read();
        let mut out = String::with_capacity(64 * 1024);
        let families = group(&inner, timestamps);
        encode::encode(&mut out, format, &families, false);
        drop(families);
        let mut side = Inner::default();
        for m in &extra.metadata {
            side.metadata.insert(m.name.clone(), m.clone());
        }
        for s in &extra.samples {
            if let Some(name) = s.labels.metric_name() {
                side.metrics.entry(intern(name)).or_default().insert(
                    s.labels.clone(),
                    Latest {
                        timestamp_ms: s.timestamp_ms,
                        value: s.value,
                        updated: Instant::now(),
                    },
                );
            }
        }
        // Self-metrics describe "now": no timestamps.
        encode::encode(&mut out, format, &group(&side, false), true);
        out
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Groups sample names into families (`x_bucket`, `x_sum`, `x_count` under histogram `x`),
/// families in name order.
fn group(inner: &Inner, timestamps: bool) -> Vec<FamilyView<'_>> {
    let mut families: BTreeMap<&str, FamilyView<'_>> = BTreeMap::new();
    for (name, series) in &inner.metrics {
        let (family, meta) = family_of(inner, name);
        let view = families.entry(family).or_insert_with(|| FamilyView {
            name: family,
            metadata: meta,
            points: Vec::new(),
        });
        let timestamps = timestamps && !meta.is_some_and(|m| m.exposed_without_timestamp);
        view.points.extend(series.iter().map(|(labels, l)| Point {
            labels,
            timestamp_ms: timestamps.then_some(l.timestamp_ms),
            value: l.value,
        }));
    }
    families.into_values().collect()
}

fn family_of<'a>(inner: &'a Inner, name: &'a str) -> (&'a str, Option<&'a FamilyMetadata>) {
    if let Some(m) = inner.metadata.get(name) {
        return (m.name.as_str(), Some(m));
    }
    for (suffix, kinds) in SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(m) = inner.metadata.get(base)
            && kinds.contains(&m.kind)
        {
            return (m.name.as_str(), Some(m));
        }
    }
    (name, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Sample, SourceId, stale_nan};

    fn sample(name: &str, labels: &[(&str, &str)], v: f64) -> Sample {
        let mut pairs = vec![("__name__", name)];
        pairs.extend_from_slice(labels);
        Sample {
            labels: Labels::from_pairs(pairs),
            timestamp_ms: 1000,
            value: v,
        }
    }

    #[test]
    fn histogram_samples_render_as_one_family() {
        let store = SeriesStore::new(None);
        let mut b = Batch::new(SourceId::new("t"));
        b.metadata
            .push(FamilyMetadata::new("lat", MetricType::Histogram, "latency"));
        b.samples.push(sample("lat_bucket", &[("le", "+Inf")], 3.0));
        b.samples.push(sample("lat_count", &[], 3.0));
        b.samples.push(sample("lat_sum", &[], 0.5));
        store.apply(&b);
        let text = store.render(
            Format::Text004,
            false,
            &Batch::new(SourceId::new("internal")),
        );
        assert_eq!(
            text,
            "# HELP lat latency\n# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 3\nlat_count 3\nlat_sum 0.5\n"
        );
    }

    #[test]
    fn families_marked_untimed_are_rendered_without_timestamps() {
        let store = SeriesStore::new(None);
        let mut b = Batch::new(SourceId::new("t"));
        b.metadata.push(
            FamilyMetadata::new("container_spec_cpu_shares", MetricType::Gauge, "shares")
                .without_timestamp(),
        );
        b.metadata.push(FamilyMetadata::new(
            "container_memory_rss",
            MetricType::Gauge,
            "rss",
        ));
        b.samples
            .push(sample("container_spec_cpu_shares", &[("id", "/a")], 2.0));
        b.samples
            .push(sample("container_memory_rss", &[("id", "/a")], 4096.0));
        store.apply(&b);
        let text = store.render(
            Format::Text004,
            true,
            &Batch::new(SourceId::new("internal")),
        );
        assert!(
            text.contains("container_memory_rss{id=\"/a\"} 4096 1000\n"),
            "{text}"
        );
        assert!(
            text.contains("container_spec_cpu_shares{id=\"/a\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn a_stale_marker_removes_the_series() {
        let store = SeriesStore::new(None);
        let mut b = Batch::new(SourceId::new("t"));
        b.samples.push(sample("up", &[("job", "a")], 1.0));
        b.samples.push(sample("up", &[("job", "b")], 1.0));
        store.apply(&b);
        assert_eq!(store.len(), 2);
        let mut b = Batch::new(SourceId::new("t"));
        b.samples.push(sample("up", &[("job", "a")], stale_nan()));
        store.apply(&b);
        assert_eq!(store.series_of("up").len(), 1);
    }
}
