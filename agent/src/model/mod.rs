//! The data every stage exchanges: interned label sets, samples, batches and family metadata.
//!
//! A [`Batch`] is what a source hands to the pipeline. It carries its own [`FamilyMetadata`] so
//! that sinks never have to guess a family's type.

mod batch;
mod labels;
mod metadata;
mod staleness;

pub use batch::{Batch, STALE_NAN_BITS, Sample, SourceId, is_stale_nan, stale_nan};
pub use labels::{
    IdentityBuildHasher, Label, Labels, LabelsBuilder, METRIC_NAME, PassThroughHasher, Symbol,
    collect_unused_symbols, intern, interned_count,
};
pub use metadata::{FamilyMetadata, MetricType};
pub use staleness::StalenessTracker;
