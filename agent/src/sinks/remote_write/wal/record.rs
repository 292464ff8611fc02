//! One WAL record: a batch, framed and checksummed.
//!
//! Frame: `u32 LE payload length | u32 LE sample count | u32 LE crc32c(count bytes + payload)`
//! then the payload, a protobuf message with its own symbols table (label strings repeat a
//! lot within a batch). The sample count in the header lets the size/age bound count what it
//! drops without decoding payloads.

use prost::Message as _;

use crate::model::{Batch, FamilyMetadata, Labels, LabelsBuilder, Sample, Symbol, intern};
use crate::sinks::remote_write::proto::{metric_type_from_number, metric_type_number};

pub const HEADER_LEN: usize = 12;

/// Largest payload a reader accepts: a length beyond it is corruption, not a huge batch.
pub const MAX_PAYLOAD: u32 = 256 << 20;

#[derive(Clone, PartialEq, prost::Message)]
struct WalBatch {
    #[prost(string, repeated, tag = "1")]
    symbols: Vec<String>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<WalSample>,
    #[prost(message, repeated, tag = "3")]
    metadata: Vec<WalMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WalSample {
    #[prost(uint32, repeated, tag = "1")]
    labels_refs: Vec<u32>,
    #[prost(int64, tag = "2")]
    timestamp: i64,
    /// The f64's bits: -0.0 and NaN payloads (stale markers) survive exactly.
    #[prost(fixed64, tag = "3")]
    value: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WalMetadata {
    #[prost(uint32, tag = "1")]
    name_ref: u32,
    #[prost(int32, tag = "2")]
    kind: i32,
    #[prost(uint32, tag = "3")]
    help_ref: u32,
    #[prost(uint32, tag = "4")]
    unit_ref: u32,
}

/// What a record holds once decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    pub samples: Vec<Sample>,
    pub metadata: Vec<FamilyMetadata>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record payload does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("record refers to symbol {0} beyond its table of {1}")]
    BadRef(u32, usize),
}

/// Deduplicates a batch's strings into the record's symbols table.
struct Table<'a> {
    refs: std::collections::HashMap<&'a str, u32>,
    symbols: Vec<String>,
}

impl<'a> Table<'a> {
    fn add(&mut self, s: &'a Symbol) -> u32 {
        let s: &'a str = s.as_str();
        if let Some(&r) = self.refs.get(s) {
            return r;
        }
        let r = self.symbols.len() as u32;
        self.symbols.push(s.to_owned());
        self.refs.insert(s, r);
        r
    }
}

/// Frames `batch` as one record (header + payload).
pub fn encode(batch: &Batch) -> Vec<u8> {
    let mut t = Table {
        refs: std::collections::HashMap::new(),
        symbols: Vec::new(),
    };
    let mut samples = Vec::with_capacity(batch.samples.len());
    for s in &batch.samples {
        let mut labels_refs = Vec::with_capacity(s.labels.len() * 2);
        for l in s.labels.iter() {
            labels_refs.push(t.add(&l.name));
            labels_refs.push(t.add(&l.value));
        }
        samples.push(WalSample {
            labels_refs,
            timestamp: s.timestamp_ms,
            value: s.value.to_bits(),
        });
    }
    let mut metadata = Vec::with_capacity(batch.metadata.len());
    for m in &batch.metadata {
        metadata.push(WalMetadata {
            name_ref: t.add(&m.name),
            kind: metric_type_number(m.kind),
            help_ref: t.add(&m.help),
            unit_ref: t.add(&m.unit),
        });
    }
    let payload = WalBatch {
        symbols: t.symbols,
        samples,
        metadata,
    }
    .encode_to_vec();
    let count = batch.samples.len() as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend((payload.len() as u32).to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(checksum(count, &payload).to_le_bytes());
    out.extend(payload);
    out
}

pub fn checksum(count: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&count.to_le_bytes()), payload)
}

/// Parses a header: (payload length, sample count, crc).
pub fn header(h: &[u8; HEADER_LEN]) -> (u32, u32, u32) {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (word(0), word(4), word(8))
}

/// Decodes a payload whose checksum already matched.
pub fn decode(payload: &[u8]) -> Result<Decoded, RecordError> {
    let b = WalBatch::decode(payload)?;
    let symbols: Vec<Symbol> = b.symbols.iter().map(|s| intern(s)).collect();
    let sym = |r: u32| -> Result<Symbol, RecordError> {
        symbols
            .get(r as usize)
            .cloned()
            .ok_or(RecordError::BadRef(r, symbols.len()))
    };
    let mut samples = Vec::with_capacity(b.samples.len());
    let mut builder = LabelsBuilder::new();
    // Consecutive samples of a batch often share their label set (one family, many cycles
    // rarely; but re-used refs are cheap to compare).
    let mut last: Option<(Vec<u32>, Labels)> = None;
    for s in b.samples {
        let labels = match &last {
            Some((refs, labels)) if *refs == s.labels_refs => labels.clone(),
            _ => {
                builder.clear();
                for pair in s.labels_refs.chunks_exact(2) {
                    builder.set_symbols(sym(pair[0])?, sym(pair[1])?);
                }
                let labels = builder.build();
                last = Some((s.labels_refs, labels.clone()));
                labels
            }
        };
        samples.push(Sample {
            labels,
            timestamp_ms: s.timestamp,
            value: f64::from_bits(s.value),
        });
    }
    let mut metadata = Vec::with_capacity(b.metadata.len());
    for m in b.metadata {
        metadata.push(FamilyMetadata {
            name: sym(m.name_ref)?,
            kind: metric_type_from_number(m.kind),
            help: sym(m.help_ref)?,
            unit: sym(m.unit_ref)?,
            // An exposition property; remote write stamps every sample.
            exposed_without_timestamp: false,
        });
    }
    Ok(Decoded { samples, metadata })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::model::{MetricType, SourceId, stale_nan};

    #[test]
    fn a_batch_round_trips_with_exact_value_bits() {
        let mut b = Batch::new(SourceId::new("t"));
        for (i, v) in [1.5, stale_nan(), f64::NAN, -0.0, f64::INFINITY]
            .into_iter()
            .enumerate()
        {
            b.samples.push(Sample {
                labels: Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]),
                timestamp_ms: 1000 + i as i64,
                value: v,
            });
        }
        b.metadata
            .push(FamilyMetadata::new("m", MetricType::Gauge, "help"));
        let rec = encode(&b);
        let (len, count, crc) = header(rec[..HEADER_LEN].try_into().unwrap());
        assert_eq!((len as usize, count), (rec.len() - HEADER_LEN, 5));
        assert_eq!(crc, checksum(count, &rec[HEADER_LEN..]));
        let d = decode(&rec[HEADER_LEN..]).unwrap();
        assert_eq!(d.samples.len(), 5);
        for (a, b) in d.samples.iter().zip(&b.samples) {
            assert_eq!(a.labels, b.labels);
            assert_eq!(a.timestamp_ms, b.timestamp_ms);
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        assert_eq!(d.metadata, b.metadata);
    }
}
