//! Samples to request bodies: protobuf (1.0 or 2.0), then snappy block compression, plus the
//! headers each version requires.
//!
//! Samples of one series that fall into the same request share one TimeSeries entry, in the
//! order they were queued (which is time order: a series always goes through one shard).
//! Label sets arrive sorted, unique and without empty values (a [`Labels`] guarantees it),
//! which is exactly what both versions require on the wire.

use std::collections::HashMap;

use prost::Message as _;

use super::config::ProtobufMessage;
use super::proto::{metric_type_number, v1, v2, value_bits};
use crate::model::{FamilyMetadata, Labels, Sample, Symbol};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("nodemeter/", env!("CARGO_PKG_VERSION"));

/// `Content-Type` for a message.
pub fn content_type(message: ProtobufMessage) -> &'static str {
    match message {
        // Prometheus sends the bare media type for 1.0, which every 1.x receiver understands.
        ProtobufMessage::V1 => "application/x-protobuf",
        // No space after ';': Thanos and client_golang compare the parameter exactly.
        ProtobufMessage::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    }
}

/// `X-Prometheus-Remote-Write-Version` for a message.
pub fn version_header(message: ProtobufMessage) -> &'static str {
    match message {
        ProtobufMessage::V1 => "0.1.0",
        ProtobufMessage::V2 => "2.0.0",
    }
}

/// Snappy block ("raw") format; the framed format is forbidden by the spec.
pub fn compress(protobuf: &[u8]) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(protobuf)
}

pub fn decompress(body: &[u8]) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Decoder::new().decompress_vec(body)
}

/// Groups sample indices by series, keeping first-seen order of series and queue order of
/// samples within a series.
fn group_by_series(samples: &[Sample]) -> Vec<(&Labels, Vec<usize>)> {
    let mut index: HashMap<&Labels, usize> = HashMap::with_capacity(samples.len());
    let mut groups: Vec<(&Labels, Vec<usize>)> = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        match index.get(&s.labels) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(&s.labels, groups.len());
                groups.push((&s.labels, vec![i]));
            }
        }
    }
    groups
}

/// A 1.0 `WriteRequest` with the samples (no metadata: 1.0 sends it in separate requests).
pub fn write_request_v1(samples: &[Sample]) -> v1::WriteRequest {
    let timeseries = group_by_series(samples)
        .into_iter()
        .map(|(labels, idx)| v1::TimeSeries {
            labels: labels
                .iter()
                .map(|l| v1::Label {
                    name: l.name.as_str().to_owned(),
                    value: l.value.as_str().to_owned(),
                })
                .collect(),
            samples: idx
                .into_iter()
                .map(|i| v1::Sample {
                    value: value_bits(samples[i].value),
                    timestamp: samples[i].timestamp_ms,
                })
                .collect(),
        })
        .collect();
    v1::WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

/// A metadata-only 1.0 request (what `metadata_config.send` posts).
pub fn metadata_request_v1<'a>(
    metadata: impl IntoIterator<Item = &'a FamilyMetadata>,
) -> v1::WriteRequest {
    v1::WriteRequest {
        timeseries: Vec::new(),
        metadata: metadata
            .into_iter()
            .map(|m| v1::MetricMetadata {
                r#type: metric_type_number(m.kind),
                metric_family_name: m.name.as_str().to_owned(),
                help: m.help.as_str().to_owned(),
                unit: m.unit.as_str().to_owned(),
            })
            .collect(),
    }
}

/// Family metadata by family name, and the lookup from a sample's metric name to its family.
#[derive(Debug, Default, Clone)]
pub struct MetadataIndex {
    families: HashMap<Symbol, FamilyMetadata>,
}

/// Suffixes a sample name may carry beyond its family name (histograms, summaries,
/// OpenMetrics counters and infos).
const FAMILY_SUFFIXES: [&str; 7] = [
    "_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount",
];

impl MetadataIndex {
    pub fn update<'a>(&mut self, metadata: impl IntoIterator<Item = &'a FamilyMetadata>) {
        for m in metadata {
            match self.families.get(&m.name) {
                Some(old) if old == m => {}
                _ => {
                    self.families.insert(m.name.clone(), m.clone());
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FamilyMetadata> {
        self.families.values()
    }

    /// The family a sample named `metric` belongs to.
    pub fn family_of(&self, metric: &str) -> Option<&FamilyMetadata> {
        if let Some(m) = self.families.get(metric) {
            return Some(m);
        }
        FAMILY_SUFFIXES
            .iter()
            .filter_map(|s| metric.strip_suffix(s))
            .find_map(|base| self.families.get(base))
    }
}

/// Interns strings into a 2.0 symbols table (`symbols[0]` = "").
struct SymbolTable<'a> {
    refs: HashMap<&'a str, u32>,
    symbols: Vec<String>,
}

impl<'a> SymbolTable<'a> {
    fn new() -> Self {
        let mut refs = HashMap::new();
        refs.insert("", 0);
        Self {
            refs,
            symbols: vec![String::new()],
        }
    }

    fn add(&mut self, s: &'a str) -> u32 {
        if let Some(&r) = self.refs.get(s) {
            return r;
        }
        let r = self.symbols.len() as u32;
        self.symbols.push(s.to_owned());
        self.refs.insert(s, r);
        r
    }
}

/// A 2.0 `Request`: one symbols table for the request, metadata inside each series.
pub fn request_v2(samples: &[Sample], metadata: &MetadataIndex) -> v2::Request {
    let mut table = SymbolTable::new();
    let mut timeseries = Vec::new();
    for (labels, idx) in group_by_series(samples) {
        let mut labels_refs = Vec::with_capacity(labels.len() * 2);
        for l in labels.iter() {
            labels_refs.push(table.add(l.name.as_str()));
            labels_refs.push(table.add(l.value.as_str()));
        }
        let meta = labels
            .metric_name()
            .and_then(|n| metadata.family_of(n))
            .map(|m| v2::Metadata {
                r#type: metric_type_number(m.kind),
                help_ref: table.add(m.help.as_str()),
                unit_ref: table.add(m.unit.as_str()),
            });
        timeseries.push(v2::TimeSeries {
            labels_refs,
            samples: idx
                .into_iter()
                .map(|i| v2::Sample {
                    value: value_bits(samples[i].value),
                    timestamp: samples[i].timestamp_ms,
                    start_timestamp: 0,
                })
                .collect(),
            metadata: meta,
        });
    }
    v2::Request {
        symbols: table.symbols,
        timeseries,
    }
}

/// The compressed body of a request for `samples` in `message`.
pub fn body(
    message: ProtobufMessage,
    samples: &[Sample],
    metadata: &MetadataIndex,
) -> Result<Vec<u8>, snap::Error> {
    let protobuf = match message {
        ProtobufMessage::V1 => write_request_v1(samples).encode_to_vec(),
        ProtobufMessage::V2 => request_v2(samples, metadata).encode_to_vec(),
    };
    compress(&protobuf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::model::{MetricType, STALE_NAN_BITS, is_stale_nan, stale_nan};

    fn sample(pairs: &[(&str, &str)], ts: i64, v: f64) -> Sample {
        Sample {
            labels: Labels::from_pairs(pairs.iter().copied()),
            timestamp_ms: ts,
            value: v,
        }
    }

    #[test]
    fn v1_bytes_are_exactly_the_protobuf_encoding() {
        let req = write_request_v1(&[sample(&[("__name__", "up"), ("job", "a")], 1000, 1.0)]);
        let bytes = req.encode_to_vec();
        // WriteRequest.timeseries (field 1, LEN)
        let mut expect = vec![0x0a, 0x28];
        // TimeSeries.labels (field 1): Label{name: "__name__", value: "up"}
        expect.extend([0x0a, 0x0e, 0x0a, 0x08]);
        expect.extend(b"__name__");
        expect.extend([0x12, 0x02]);
        expect.extend(b"up");
        // Label{name: "job", value: "a"}
        expect.extend([0x0a, 0x08, 0x0a, 0x03]);
        expect.extend(b"job");
        expect.extend([0x12, 0x01]);
        expect.extend(b"a");
        // TimeSeries.samples (field 2): Sample{value: 1.0 (fixed64), timestamp: 1000 (varint)}
        expect.extend([0x12, 0x0c, 0x09]);
        expect.extend(1.0f64.to_le_bytes());
        expect.extend([0x10, 0xe8, 0x07]);
        assert_eq!(bytes, expect);
    }

    #[test]
    fn stale_markers_keep_their_exact_bits_through_encode_compress_and_decode() {
        let samples = [sample(&[("__name__", "x")], 5, stale_nan())];
        let body = body(ProtobufMessage::V1, &samples, &MetadataIndex::default()).unwrap();
        let req = v1::WriteRequest::decode(decompress(&body).unwrap().as_slice()).unwrap();
        let v = f64::from_bits(req.timeseries[0].samples[0].value);
        assert_eq!(v.to_bits(), STALE_NAN_BITS);
        assert!(is_stale_nan(v));
    }

    #[test]
    fn negative_zero_is_sent_and_positive_zero_is_the_protobuf_default() {
        let req = write_request_v1(&[
            sample(&[("__name__", "a")], 1, -0.0),
            sample(&[("__name__", "b")], 1, 0.0),
        ]);
        let back = v1::WriteRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.timeseries[0].samples[0].value, (-0.0f64).to_bits());
        assert_eq!(back.timeseries[1].samples[0].value, 0);
    }

    #[test]
    fn body_is_snappy_block_format_not_framed() {
        let samples = [sample(&[("__name__", "x")], 5, 1.0)];
        let body = body(ProtobufMessage::V1, &samples, &MetadataIndex::default()).unwrap();
        assert_ne!(&body[..4], &[0xff, 0x06, 0x00, 0x00]);
        let protobuf = write_request_v1(&samples).encode_to_vec();
        // Block format starts with the uncompressed length as a varint.
        assert_eq!(body[0] as usize, protobuf.len());
    }

    #[test]
    fn samples_of_one_series_share_a_timeseries_in_queue_order() {
        let a = [("__name__", "a")];
        let b = [("__name__", "b"), ("x", "1")];
        let req = write_request_v1(&[sample(&a, 1, 1.0), sample(&b, 1, 2.0), sample(&a, 2, 3.0)]);
        assert_eq!(req.timeseries.len(), 2);
        let ts: Vec<i64> = req.timeseries[0]
            .samples
            .iter()
            .map(|s| s.timestamp)
            .collect();
        assert_eq!(ts, [1, 2]);
        let names: Vec<&str> = req.timeseries[1]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["__name__", "x"]);
    }

    #[test]
    fn v2_interns_every_string_once_and_carries_metadata_per_series() {
        let mut meta = MetadataIndex::default();
        meta.update(&[FamilyMetadata::new(
            "http_requests",
            MetricType::Counter,
            "Requests.",
        )]);
        let req = request_v2(
            &[
                sample(
                    &[("__name__", "http_requests_total"), ("code", "200")],
                    1,
                    1.0,
                ),
                sample(
                    &[("__name__", "http_requests_total"), ("code", "500")],
                    1,
                    2.0,
                ),
            ],
            &meta,
        );
        assert_eq!(req.symbols[0], "");
        assert_eq!(
            req.symbols,
            [
                "",
                "__name__",
                "http_requests_total",
                "code",
                "200",
                "Requests.",
                "500"
            ]
        );
        assert_eq!(req.timeseries[0].labels_refs, [1, 2, 3, 4]);
        assert_eq!(req.timeseries[1].labels_refs, [1, 2, 3, 6]);
        let m = req.timeseries[1].metadata.clone().unwrap();
        assert_eq!((m.r#type, m.help_ref, m.unit_ref), (1, 5, 0));
    }

    #[test]
    fn headers_match_the_spec() {
        assert_eq!(content_type(ProtobufMessage::V1), "application/x-protobuf");
        assert_eq!(
            content_type(ProtobufMessage::V2),
            "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        );
        assert_eq!(version_header(ProtobufMessage::V1), "0.1.0");
        assert_eq!(version_header(ProtobufMessage::V2), "2.0.0");
        assert!(USER_AGENT.starts_with("nodemeter/"));
    }
}
