//! Family metadata: what a metric name means.

use super::Symbol;

/// The type of a metric family, as the exposition formats and remote write name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

impl MetricType {
    /// The word used in `# TYPE` lines of the text format 0.0.4 (which knows fewer types than
    /// OpenMetrics: the others are `untyped` there).
    pub fn text_0_0_4(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::GaugeHistogram | Self::Info | Self::StateSet | Self::Unknown => "untyped",
        }
    }

    /// The word used in OpenMetrics `# TYPE` lines.
    pub fn openmetrics(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::Unknown => "unknown",
        }
    }
}

/// Type, help and unit of one metric family (the name without `_total`/`_bucket`/... suffixes
/// for OpenMetrics families; the sample name for plain gauges and 0.0.4 counters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FamilyMetadata {
    pub name: Symbol,
    pub kind: MetricType,
    pub help: Symbol,
    pub unit: Symbol,
    /// The family's samples are exposed without a timestamp, as cAdvisor exposes its spec,
    /// start-time and (in kubelet) machine families: their value is a property, not an
    /// observation at the time a read started. Remote write has no such notion and stamps
    /// them with the collection time, as Prometheus stamps a timestamp-less sample with the
    /// scrape time.
    pub exposed_without_timestamp: bool,
}

impl FamilyMetadata {
    pub fn new(name: &str, kind: MetricType, help: &str) -> Self {
        Self {
            name: super::intern(name),
            kind,
            help: super::intern(help),
            unit: super::intern(""),
            exposed_without_timestamp: false,
        }
    }

    /// The same metadata for a family exposed without sample timestamps.
    pub fn without_timestamp(mut self) -> Self {
        self.exposed_without_timestamp = true;
        self
    }
}
