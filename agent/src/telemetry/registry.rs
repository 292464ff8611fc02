//! Self-metrics: counters and gauges registered by name and labels, plus collectors that
//! produce samples on demand (kernel program stats, process CPU and memory).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::model::{Batch, FamilyMetadata, Labels, METRIC_NAME, MetricType, Sample, SourceId};

/// A monotonically increasing integer count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

enum Value {
    Counter(Counter),
    Gauge(Gauge),
}

struct Series {
    name: String,
    help: String,
    labels: Labels,
    value: Value,
}

/// Emits samples at snapshot time: `(name, type, help, labels without __name__, value)`.
pub type CollectFn =
    dyn Fn(&mut dyn FnMut(&str, MetricType, &str, &[(&str, &str)], f64)) + Send + Sync;

#[derive(Default)]
pub struct Registry {
    series: Mutex<Vec<Series>>,
    collectors: Mutex<Vec<Box<CollectFn>>>,
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let r = Registry::default();
        super::process::register(&r);
        r
    })
}

impl Registry {
    /// The counter `name{labels}`, created on first use.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.get_or_insert(name, help, labels, || Value::Counter(Counter::default())) {
            Value::Counter(c) => c,
            Value::Gauge(_) => Counter::default(),
        }
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.get_or_insert(name, help, labels, || Value::Gauge(Gauge::default())) {
            Value::Gauge(g) => g,
            Value::Counter(_) => Gauge::default(),
        }
    }

    /// Adds a collector called at every snapshot.
    pub fn register_collector(&self, f: Box<CollectFn>) {
        self.collectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(f);
    }

    fn get_or_insert(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Value,
    ) -> Value {
        let labels = Labels::from_pairs(labels.iter().copied());
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = series.iter().find(|s| s.name == name && s.labels == labels) {
            return match &s.value {
                Value::Counter(c) => Value::Counter(c.clone()),
                Value::Gauge(g) => Value::Gauge(g.clone()),
            };
        }
        let value = make();
        let handle = match &value {
            Value::Counter(c) => Value::Counter(c.clone()),
            Value::Gauge(g) => Value::Gauge(g.clone()),
        };
        series.push(Series {
            name: name.to_string(),
            help: help.to_string(),
            labels,
            value,
        });
        handle
    }

    /// Every self-metric now, as a batch from source `internal`.
    pub fn snapshot(&self, timestamp_ms: i64) -> Batch {
        let mut batch = Batch::new(SourceId::new("internal"));
        let mut seen = std::collections::HashSet::new();
        let mut push = |batch: &mut Batch,
                        name: &str,
                        kind: MetricType,
                        help: &str,
                        labels: &Labels,
                        value: f64| {
            if seen.insert(name.to_string()) {
                batch.metadata.push(FamilyMetadata::new(name, kind, help));
            }
            let mut b = labels.builder();
            b.set(METRIC_NAME, name);
            batch.samples.push(Sample {
                labels: b.build(),
                timestamp_ms,
                value,
            });
        };
        for s in self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let (kind, v) = match &s.value {
                Value::Counter(c) => (MetricType::Counter, c.get() as f64),
                Value::Gauge(g) => (MetricType::Gauge, g.get()),
            };
            push(&mut batch, &s.name, kind, &s.help, &s.labels, v);
        }
        for c in self
            .collectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            c(&mut |name, kind, help, labels, value| {
                push(
                    &mut batch,
                    name,
                    kind,
                    help,
                    &Labels::from_pairs(labels.iter().copied()),
                    value,
                );
            });
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_shared_by_name_and_labels() {
        let r = Registry::default();
        r.counter("nodemeter_x_total", "x", &[("a", "1")]).inc();
        r.counter("nodemeter_x_total", "x", &[("a", "1")]).add(2);
        r.counter("nodemeter_x_total", "x", &[("a", "2")]).inc();
        r.gauge("nodemeter_g", "g", &[]).set(1.5);
        let b = r.snapshot(7);
        let v: Vec<(String, f64)> = b
            .samples
            .iter()
            .map(|s| (s.labels.to_string(), s.value))
            .collect();
        assert_eq!(
            v,
            [
                (r#"nodemeter_x_total{a="1"}"#.to_string(), 3.0),
                (r#"nodemeter_x_total{a="2"}"#.to_string(), 1.0),
                ("nodemeter_g{}".to_string(), 1.5)
            ]
        );
        assert_eq!(b.metadata.len(), 2);
    }
}
