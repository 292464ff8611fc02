//! One WAL record: a batch, framed and checksummed.
//!
//! Frame: `u32 LE payload length | u32 LE sample count | u32 LE crc32c(count bytes + payload)`
//! then the payload, a protobuf message with its own symbols table (label strings repeat a
//! lot within a batch). The sample count in the header lets the size/age bound count what it
//! drops without decoding payloads.

use prost::Message as _;

use std::collections::HashMap;

use crate::model::{
    Batch, FamilyMetadata, IdentityBuildHasher, Labels, LabelsBuilder, Sample, Symbol, intern,
};
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

/// The source of batches read back from disk.
pub const SOURCE: &str = "wal";

impl Decoded {
    pub fn into_batch(self) -> Batch {
        Batch {
            source: crate::model::SourceId::new(SOURCE),
            samples: self.samples,
            metadata: self.metadata,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record payload does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("record refers to symbol {0} beyond its table of {1}")]
    BadRef(u32, usize),
}

/// Deduplicates a batch's strings into the record's symbols table, keyed by the interned
/// address (equal strings share one; hashing an address is far cheaper than hashing text).
#[derive(Default)]
struct Table<'a> {
    refs: HashMap<usize, u32, IdentityBuildHasher>,
    symbols: Vec<&'a str>,
}

impl<'a> Table<'a> {
    fn add(&mut self, s: &'a Symbol) -> u32 {
        let next = self.symbols.len() as u32;
        let r = *self.refs.entry(s.address()).or_insert(next);
        if r == next {
            self.symbols.push(s.as_str());
        }
        r
    }
}

/// Frames `batch` as one record (header + payload). The payload is written field by field,
/// exactly as prost encodes the [`WalBatch`] it decodes back to (tests compare the two).
pub fn encode(batch: &Batch) -> Vec<u8> {
    use prost::encoding::{encode_varint, encoded_len_varint};
    let mut t = Table::default();
    // Every sample's label refs, flat; sample i's are refs[ends[i - 1]..ends[i]].
    let mut refs = Vec::with_capacity(batch.samples.iter().map(|s| 2 * s.labels.len()).sum());
    for s in &batch.samples {
        for l in s.labels.iter() {
            refs.push(t.add(&l.name));
            refs.push(t.add(&l.value));
        }
    }
    let metadata: Vec<[u32; 4]> = batch
        .metadata
        .iter()
        .map(|m| {
            [
                t.add(&m.name),
                metric_type_number(m.kind) as u32,
                t.add(&m.help),
                t.add(&m.unit),
            ]
        })
        .collect();
    let uint_len = |v: u64| if v == 0 { 0 } else { 1 + encoded_len_varint(v) };
    let mut payload = Vec::with_capacity(
        t.symbols.iter().map(|s| s.len() + 3).sum::<usize>()
            + refs.len() * 2
            + batch.samples.len() * 16,
    );
    let buf = &mut payload;
    let uint = |buf: &mut Vec<u8>, field: u8, v: u64| {
        if v != 0 {
            buf.push(field << 3);
            encode_varint(v, buf);
        }
    };
    for s in &t.symbols {
        buf.push((1 << 3) | 2);
        encode_varint(s.len() as u64, buf);
        buf.extend_from_slice(s.as_bytes());
    }
    let mut start = 0;
    for s in &batch.samples {
        let r = &refs[start..start + 2 * s.labels.len()];
        start += r.len();
        let refs_len: usize = r.iter().map(|&x| encoded_len_varint(x.into())).sum();
        let bits = s.value.to_bits();
        let len = (if r.is_empty() {
            0
        } else {
            1 + encoded_len_varint(refs_len as u64) + refs_len
        }) + uint_len(s.timestamp_ms as u64)
            + if bits == 0 { 0 } else { 9 };
        buf.push((2 << 3) | 2);
        encode_varint(len as u64, buf);
        if !r.is_empty() {
            buf.push((1 << 3) | 2);
            encode_varint(refs_len as u64, buf);
            for &x in r {
                encode_varint(x.into(), buf);
            }
        }
        uint(buf, 2, s.timestamp_ms as u64);
        if bits != 0 {
            buf.push((3 << 3) | 1);
            buf.extend_from_slice(&bits.to_le_bytes());
        }
    }
    for m in &metadata {
        // kind is an int32 enum: a negative one would be 10 bytes, but there are none.
        let len: usize = m.iter().map(|&v| uint_len(v.into())).sum();
        buf.push((3 << 3) | 2);
        encode_varint(len as u64, buf);
        for (field, &v) in (1u8..).zip(m) {
            uint(buf, field, v.into());
        }
    }
    let count = batch.samples.len() as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend((payload.len() as u32).to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(checksum(count, &payload).to_le_bytes());
    out.extend(payload);
    out
}

/// The payload as prost writes it from messages: the reference the direct encoder matches.
#[cfg(test)]
fn encode_via_messages(batch: &Batch) -> Vec<u8> {
    let mut symbols: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut add = |s: &str| -> u32 {
        *index.entry(s.to_string()).or_insert_with(|| {
            symbols.push(s.to_string());
            symbols.len() as u32 - 1
        })
    };
    let samples = batch
        .samples
        .iter()
        .map(|s| WalSample {
            labels_refs: s
                .labels
                .iter()
                .flat_map(|l| [add(l.name.as_str()), add(l.value.as_str())])
                .collect(),
            timestamp: s.timestamp_ms,
            value: s.value.to_bits(),
        })
        .collect();
    let metadata = batch
        .metadata
        .iter()
        .map(|m| WalMetadata {
            name_ref: add(m.name.as_str()),
            kind: metric_type_number(m.kind),
            help_ref: add(m.help.as_str()),
            unit_ref: add(m.unit.as_str()),
        })
        .collect();
    WalBatch {
        symbols,
        samples,
        metadata,
    }
    .encode_to_vec()
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
        for (i, v) in [1.5, stale_nan(), f64::NAN, -0.0, f64::INFINITY, 0.0, 2.0]
            .into_iter()
            .enumerate()
        {
            b.samples.push(Sample {
                labels: Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]),
                // Zero and negative timestamps: absent and ten-byte varints on the wire.
                timestamp_ms: [1000 + i as i64, 0, -7][i % 3],
                value: v,
            });
        }
        b.metadata
            .push(FamilyMetadata::new("m", MetricType::Gauge, "help"));
        let rec = encode(&b);
        assert_eq!(&rec[HEADER_LEN..], encode_via_messages(&b).as_slice());
        let (len, count, crc) = header(rec[..HEADER_LEN].try_into().unwrap());
        assert_eq!((len as usize, count), (rec.len() - HEADER_LEN, 7));
        assert_eq!(crc, checksum(count, &rec[HEADER_LEN..]));
        let d = decode(&rec[HEADER_LEN..]).unwrap();
        assert_eq!(d.samples.len(), 7);
        for (a, b) in d.samples.iter().zip(&b.samples) {
            assert_eq!(a.labels, b.labels);
            assert_eq!(a.timestamp_ms, b.timestamp_ms);
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        assert_eq!(d.metadata, b.metadata);
    }
}
