//! A plain emitter for sources with few, dynamic series (the eBPF source): labels are built per
//! sample. The cgroup source itself uses the cached [`SeriesEmitter`](super::SeriesEmitter).

use std::collections::HashSet;

use crate::model::{
    Batch, FamilyMetadata, Labels, METRIC_NAME, MetricType, Sample, SourceId, StalenessTracker,
    Symbol, intern,
};

pub struct Emitter<'a> {
    batch: Batch,
    timestamp_ms: i64,
    staleness: &'a mut StalenessTracker,
    families: HashSet<Symbol>,
    metric_name: Symbol,
}

impl<'a> Emitter<'a> {
    pub fn new(source: SourceId, timestamp_ms: i64, staleness: &'a mut StalenessTracker) -> Self {
        Self {
            batch: Batch::new(source),
            timestamp_ms,
            staleness,
            families: HashSet::new(),
            metric_name: intern(METRIC_NAME),
        }
    }

    /// Emits one sample of family `name` for the cgroup identified by `identity`, with the
    /// family's own `extra` labels.
    pub fn emit(
        &mut self,
        name: &str,
        kind: MetricType,
        help: &str,
        identity: &Labels,
        extra: &[(&str, &str)],
        value: f64,
    ) {
        let name = intern(name);
        if self.families.insert(name.clone()) {
            self.batch
                .metadata
                .push(FamilyMetadata::new(&name, kind, help));
        }
        let mut b = identity.builder();
        b.set_symbols(self.metric_name.clone(), name);
        for (k, v) in extra {
            b.set(k, v);
        }
        let labels = b.build();
        self.staleness.observe(&labels);
        self.batch.samples.push(Sample {
            labels,
            timestamp_ms: self.timestamp_ms,
            value,
        });
    }

    /// Ends the cycle: stale markers for series that disappeared, then the batch.
    pub fn finish(mut self) -> Batch {
        self.staleness
            .finish_cycle(self.timestamp_ms, &mut self.batch.samples);
        self.batch
    }
}
