//! Samples and the batches sources emit.

use std::sync::Arc;

use super::{FamilyMetadata, Labels};

/// Prometheus' staleness marker: a NaN with this exact bit pattern means "the series ended".
/// Any other NaN is an ordinary value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One observation of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The series, `__name__` included.
    pub labels: Labels,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// Which source produced a batch; the pipeline picks per-source relabel rules by it and the
/// exposition sink scopes staleness by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub Arc<str>);

impl SourceId {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a source hands to the pipeline after one collection: samples plus the metadata of the
/// families they belong to.
#[derive(Clone, Debug)]
pub struct Batch {
    pub source: SourceId,
    pub samples: Vec<Sample>,
    pub metadata: Vec<FamilyMetadata>,
}

impl Batch {
    pub fn new(source: SourceId) -> Self {
        Self {
            source,
            samples: Vec::new(),
            metadata: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.metadata.is_empty()
    }
}
