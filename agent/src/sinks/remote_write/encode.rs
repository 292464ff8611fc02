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
use crate::model::{FamilyMetadata, IdentityBuildHasher, Labels, Sample, Symbol};

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

/// The compressed body of a request for `samples` in `message` (a one-off [`Encoder`]).
pub fn body(
    message: ProtobufMessage,
    samples: &[Sample],
    metadata: &MetadataIndex,
) -> Result<Vec<u8>, snap::Error> {
    Encoder::default().body(message, samples, metadata)
}

/// The same body built the reference way: prost messages of owned strings, then
/// `encode_to_vec`. The direct encoder must produce exactly these bytes (tests), and the
/// benchmark shows what writing them directly saves.
pub fn body_via_messages(
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

/// Writes request bodies straight from samples into a reused buffer: no intermediate messages
/// or string copies, and no allocation per request besides the compressed body. One per shard.
pub struct Encoder {
    protobuf: Vec<u8>,
    snappy: snap::raw::Encoder,
    groups: SeriesGroups,
    symbols: SymbolRefs,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            protobuf: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            groups: SeriesGroups::default(),
            symbols: SymbolRefs::default(),
        }
    }
}

impl Encoder {
    /// The compressed body of a request for `samples` in `message`.
    pub fn body(
        &mut self,
        message: ProtobufMessage,
        samples: &[Sample],
        metadata: &MetadataIndex,
    ) -> Result<Vec<u8>, snap::Error> {
        self.protobuf(message, samples, metadata);
        let mut out = vec![0; snap::raw::max_compress_len(self.protobuf.len())];
        let n = self.snappy.compress(&self.protobuf, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// The uncompressed protobuf of a request (borrowed until the next call).
    pub fn protobuf(
        &mut self,
        message: ProtobufMessage,
        samples: &[Sample],
        metadata: &MetadataIndex,
    ) -> &[u8] {
        self.protobuf.clear();
        self.groups.build(samples);
        match message {
            ProtobufMessage::V1 => self.write_v1(samples),
            ProtobufMessage::V2 => self.write_v2(samples, metadata),
        }
        &self.protobuf
    }

    /// `WriteRequest { repeated TimeSeries timeseries = 1; }`, field by field as prost writes
    /// the messages of [`write_request_v1`].
    fn write_v1(&mut self, samples: &[Sample]) {
        let buf = &mut self.protobuf;
        for g in 0..self.groups.len() {
            let labels = &samples[self.groups.first(g)].labels;
            let labels_len: usize = labels.iter().map(|l| field_len(label_len(l))).sum();
            let samples_len: usize = self
                .groups
                .members(g)
                .map(|i| field_len(sample_len(&samples[i])))
                .sum();
            key(buf, 1, WIRE_LEN);
            varint(buf, (labels_len + samples_len) as u64);
            for l in labels.iter() {
                key(buf, 1, WIRE_LEN);
                varint(buf, label_len(l) as u64);
                string_field(buf, 1, l.name.as_str());
                string_field(buf, 2, l.value.as_str());
            }
            for i in self.groups.members(g) {
                key(buf, 2, WIRE_LEN);
                varint(buf, sample_len(&samples[i]) as u64);
                sample_fields(buf, &samples[i]);
            }
        }
    }

    /// `Request { repeated string symbols = 4; repeated TimeSeries timeseries = 5; }` as prost
    /// writes [`request_v2`]: the symbols come first on the wire, so the table is built in a
    /// first pass over the series.
    fn write_v2(&mut self, samples: &[Sample], metadata: &MetadataIndex) {
        let table = &mut self.symbols;
        table.clear();
        // Per series: its label refs, then (type, help, unit) when it has metadata.
        for g in 0..self.groups.len() {
            let labels = &samples[self.groups.first(g)].labels;
            for l in labels.iter() {
                let name = table.add(&l.name);
                let value = table.add(&l.value);
                table.refs.extend([name, value]);
            }
            let meta = labels.metric_name().and_then(|n| metadata.family_of(n));
            match meta {
                Some(m) => {
                    let help = table.add(&m.help);
                    let unit = table.add(&m.unit);
                    table
                        .meta
                        .push(Some((metric_type_number(m.kind), help, unit)));
                }
                None => table.meta.push(None),
            }
            table.series_end.push(table.refs.len());
        }
        let buf = &mut self.protobuf;
        for s in &table.symbols {
            key(buf, 4, WIRE_LEN);
            varint(buf, s.len() as u64);
            buf.extend_from_slice(s.as_bytes());
        }
        let mut start = 0;
        for g in 0..self.groups.len() {
            let refs = &table.refs[start..table.series_end[g]];
            start = table.series_end[g];
            let refs_len: usize = refs.iter().map(|&r| varint_len(u64::from(r))).sum();
            let meta_len = table.meta[g].map(|(kind, help, unit)| {
                uint_field_len(kind as u64)
                    + uint_field_len(help.into())
                    + uint_field_len(unit.into())
            });
            let samples_len: usize = self
                .groups
                .members(g)
                .map(|i| field_len(sample_len(&samples[i])))
                .sum();
            let ts_len = if refs.is_empty() {
                0
            } else {
                field_len(refs_len)
            } + samples_len
                + meta_len.map_or(0, field_len);
            key(buf, 5, WIRE_LEN);
            varint(buf, ts_len as u64);
            if !refs.is_empty() {
                key(buf, 1, WIRE_LEN);
                varint(buf, refs_len as u64);
                for &r in refs {
                    varint(buf, r.into());
                }
            }
            for i in self.groups.members(g) {
                key(buf, 2, WIRE_LEN);
                varint(buf, sample_len(&samples[i]) as u64);
                // start_timestamp (3) is always 0, the default, so never written.
                sample_fields(buf, &samples[i]);
            }
            if let (Some(len), Some((kind, help, unit))) = (meta_len, table.meta[g]) {
                key(buf, 5, WIRE_LEN);
                varint(buf, len as u64);
                uint_field(buf, 1, kind as u64);
                uint_field(buf, 3, help.into());
                uint_field(buf, 4, unit.into());
            }
        }
    }
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;

fn key(buf: &mut Vec<u8>, field: u8, wire: u8) {
    // Every field number here is below 16: the key is one byte.
    buf.push((field << 3) | wire);
}

fn varint(buf: &mut Vec<u8>, v: u64) {
    prost::encoding::encode_varint(v, buf);
}

fn varint_len(v: u64) -> usize {
    prost::encoding::encoded_len_varint(v)
}

/// Bytes of a length-delimited field whose payload is `len` bytes (one-byte key).
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A proto3 string field: absent when empty, as prost writes it.
fn string_field(buf: &mut Vec<u8>, field: u8, s: &str) {
    if !s.is_empty() {
        key(buf, field, WIRE_LEN);
        varint(buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    }
}

fn string_field_len(s: &str) -> usize {
    if s.is_empty() { 0 } else { field_len(s.len()) }
}

/// A proto3 varint field (uint32, int32 >= 0, enum): absent when 0.
fn uint_field(buf: &mut Vec<u8>, field: u8, v: u64) {
    if v != 0 {
        key(buf, field, WIRE_VARINT);
        varint(buf, v);
    }
}

fn uint_field_len(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}

/// `Label { string name = 1; string value = 2; }`.
fn label_len(l: &crate::model::Label) -> usize {
    string_field_len(l.name.as_str()) + string_field_len(l.value.as_str())
}

/// `Sample { fixed64 value = 1 (the f64's bits); int64 timestamp = 2; }`, the same two
/// fields in both versions; zero values are the proto3 default and not written.
fn sample_len(s: &Sample) -> usize {
    let bits = value_bits(s.value);
    (if bits == 0 { 0 } else { 9 }) + uint_field_len(s.timestamp_ms as u64)
}

fn sample_fields(buf: &mut Vec<u8>, s: &Sample) {
    let bits = value_bits(s.value);
    if bits != 0 {
        key(buf, 1, WIRE_FIXED64);
        buf.extend_from_slice(&bits.to_le_bytes());
    }
    // int64 on the wire is the two's-complement u64 as a varint (10 bytes when negative).
    uint_field(buf, 2, s.timestamp_ms as u64);
}

const NONE: u32 = u32::MAX;

/// The samples of a request grouped by series, series in first-seen order, samples in queue
/// order ([`group_by_series`] without its allocations, and hashing symbol addresses instead
/// of label text).
#[derive(Default)]
struct SeriesGroups {
    /// First group with a given [`Labels::identity_hash`].
    by_hash: HashMap<u64, u32, IdentityBuildHasher>,
    groups: Vec<Group>,
    /// Next sample of the same series, by sample index.
    next: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Group {
    first: u32,
    last: u32,
    /// Next group whose labels have the same hash (a collision chain).
    same_hash: u32,
}

impl SeriesGroups {
    fn build(&mut self, samples: &[Sample]) {
        self.by_hash.clear();
        self.groups.clear();
        self.next.clear();
        for (i, s) in samples.iter().enumerate() {
            let i = i as u32;
            self.next.push(NONE);
            let h = s.labels.identity_hash();
            let mut g = self.by_hash.get(&h).copied().unwrap_or(NONE);
            while g != NONE && samples[self.groups[g as usize].first as usize].labels != s.labels {
                g = self.groups[g as usize].same_hash;
            }
            if g == NONE {
                let new = self.groups.len() as u32;
                let same_hash = self.by_hash.insert(h, new).unwrap_or(NONE);
                self.groups.push(Group {
                    first: i,
                    last: i,
                    same_hash,
                });
            } else {
                let group = &mut self.groups[g as usize];
                self.next[group.last as usize] = i;
                group.last = i;
            }
        }
    }

    fn len(&self) -> usize {
        self.groups.len()
    }

    fn first(&self, g: usize) -> usize {
        self.groups[g].first as usize
    }

    fn members(&self, g: usize) -> impl Iterator<Item = usize> + '_ {
        let mut i = self.groups[g].first;
        std::iter::from_fn(move || {
            if i == NONE {
                return None;
            }
            let cur = i;
            i = self.next[i as usize];
            Some(cur as usize)
        })
    }
}

/// The 2.0 symbols table of one request, keyed by interned address, plus every series' refs.
#[derive(Default)]
struct SymbolRefs {
    index: HashMap<usize, u32, IdentityBuildHasher>,
    symbols: Vec<Symbol>,
    refs: Vec<u32>,
    series_end: Vec<usize>,
    meta: Vec<Option<(i32, u32, u32)>>,
}

impl SymbolRefs {
    fn clear(&mut self) {
        self.index.clear();
        self.symbols.clear();
        self.symbols.push(crate::model::intern(""));
        self.refs.clear();
        self.series_end.clear();
        self.meta.clear();
    }

    /// The ref of `s`, added to the table on first use (`""` is always ref 0).
    fn add(&mut self, s: &Symbol) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let next = self.symbols.len() as u32;
        let r = *self.index.entry(s.address()).or_insert(next);
        if r == next {
            self.symbols.push(s.clone());
        }
        r
    }
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

    /// Requests with what the wire must get right: repeated series (grouping), zero and
    /// negative-zero values, stale markers, zero and negative timestamps, long strings
    /// (multi-byte lengths), series with and without metadata.
    fn varied_samples() -> Vec<Sample> {
        let long = "x".repeat(300);
        let mut out = Vec::new();
        for round in 0..3i64 {
            for i in 0..40usize {
                let name = ["http_requests_total", "temp", "lat_bucket", "up"][i % 4];
                let i_s = i.to_string();
                let mut pairs = vec![("__name__", name), ("i", i_s.as_str())];
                if i % 7 == 0 {
                    pairs.push(("long", long.as_str()));
                }
                let v = match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => stale_nan(),
                    _ => i as f64 * 1.5,
                };
                let ts = match i % 6 {
                    0 => 0,
                    1 => -5,
                    _ => 1_700_000_000_000 + round * 5000,
                };
                out.push(sample(&pairs, ts, v));
            }
        }
        out
    }

    #[test]
    fn the_direct_encoder_writes_exactly_the_prost_encoding_of_both_messages() {
        let mut meta = MetadataIndex::default();
        meta.update(&[
            FamilyMetadata::new("http_requests", MetricType::Counter, "Requests."),
            FamilyMetadata::new("lat", MetricType::Histogram, ""),
            FamilyMetadata::new("temp", MetricType::Unknown, ""),
        ]);
        let samples = varied_samples();
        let mut enc = Encoder::default();
        for n in [0, 1, 2, 39, samples.len()] {
            let part = &samples[..n];
            assert_eq!(
                enc.protobuf(ProtobufMessage::V1, part, &meta),
                write_request_v1(part).encode_to_vec().as_slice(),
                "1.0, {n} samples"
            );
            for m in [&meta, &MetadataIndex::default()] {
                assert_eq!(
                    enc.protobuf(ProtobufMessage::V2, part, m),
                    request_v2(part, m).encode_to_vec().as_slice(),
                    "2.0, {n} samples"
                );
            }
            assert_eq!(
                decompress(&enc.body(ProtobufMessage::V2, part, &meta).unwrap()).unwrap(),
                request_v2(part, &meta).encode_to_vec()
            );
        }
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
