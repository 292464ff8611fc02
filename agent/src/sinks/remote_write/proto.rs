//! The remote-write protobuf messages, declared by hand with prost's derive (no protoc).
//!
//! Field numbers follow `prompb/types.proto`, `prompb/remote.proto` (package `prometheus`,
//! remote write 1.0) and `prompb/io/prometheus/write/v2/types.proto` (2.0). The two versions
//! share no struct: their TimeSeries number exemplars and histograms differently, and only the
//! messages nodemeter produces are declared (no exemplars or native histograms yet).

/// Remote write 1.0 (`prometheus.*`).
pub mod v1 {
    /// `prometheus.WriteRequest`. Field 2 is reserved.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Sorted by name, names unique, `__name__` included.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Oldest first.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The `double` value as its IEEE-754 bits (see [`super::value_bits`]).
        #[prost(fixed64, tag = "1")]
        pub value: u64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        Unknown = 0,
        Counter = 1,
        Gauge = 2,
        Histogram = 3,
        Gaugehistogram = 4,
        Summary = 5,
        Info = 6,
        Stateset = 7,
    }
}

/// Remote write 2.0 (`io.prometheus.write.v2.*`).
pub mod v2 {
    /// `io.prometheus.write.v2.Request`. Fields 1-3 are reserved so that a 1.0 body never
    /// decodes as a valid 2.0 one.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// `symbols[0]` is always the empty string.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// (name ref, value ref) pairs into `symbols`, names sorted.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The `double` value as its IEEE-754 bits (see [`super::value_bits`]).
        #[prost(fixed64, tag = "1")]
        pub value: u64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
        /// 0: unset.
        #[prost(int64, tag = "3")]
        pub start_timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        Unspecified = 0,
        Counter = 1,
        Gauge = 2,
        Histogram = 3,
        Gaugehistogram = 4,
        Summary = 5,
        Info = 6,
        Stateset = 7,
    }
}

/// Sample values travel as `fixed64` fields holding the `double`'s bits. On the wire the two
/// are identical (wire type I64, 8 bytes little endian), but prost skips a `double` equal to
/// 0.0, and -0.0 == 0.0: declared as `double`, -0.0 would arrive as +0.0. The bits also make it
/// obvious that a stale marker's NaN payload is never touched.
pub fn value_bits(v: f64) -> u64 {
    v.to_bits()
}

/// The metric type number both versions share (1.0 calls 0 UNKNOWN, 2.0 UNSPECIFIED).
pub fn metric_type_number(kind: crate::model::MetricType) -> i32 {
    use crate::model::MetricType as M;
    match kind {
        M::Unknown => 0,
        M::Counter => 1,
        M::Gauge => 2,
        M::Histogram => 3,
        M::GaugeHistogram => 4,
        M::Summary => 5,
        M::Info => 6,
        M::StateSet => 7,
    }
}

/// The inverse of [`metric_type_number`]; unknown numbers are `Unknown`.
pub fn metric_type_from_number(n: i32) -> crate::model::MetricType {
    use crate::model::MetricType as M;
    match n {
        1 => M::Counter,
        2 => M::Gauge,
        3 => M::Histogram,
        4 => M::GaugeHistogram,
        5 => M::Summary,
        6 => M::Info,
        7 => M::StateSet,
        _ => M::Unknown,
    }
}
