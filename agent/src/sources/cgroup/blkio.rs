//! The `diskIO` set: block I/O per device.
//!
//! v1: the first of BFQ's `blkio.bfq.io_service{_bytes,d}_recursive` (only when a device uses
//! the bfq scheduler), CFQ's `blkio.io_service{_bytes,d}_recursive`, the throttle layer's
//! `blkio.throttle.io_service{_bytes,d}_recursive`, and its non-recursive files, that lists
//! any device (the choice cAdvisor makes). v2: `io.stat` (`rbytes`, `wbytes`, `rios`, `wios`,
//! and iocost's `cost.*` when that controller is active). Devices are named `/dev/<name>` from
//! /sys/dev/block, as cAdvisor names them.

use std::collections::HashMap;
use std::path::Path;

use super::CgroupDirs;
use super::emit::{Group, SeriesCache, SeriesEmitter};
use super::families::*;
use super::read::{FileReader, major_minor};

/// v1 file pairs (bytes, ops) in cAdvisor's order of preference.
const V1_FILES: [(&str, &str); 4] = [
    (
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.bfq.io_serviced_recursive",
    ),
    (
        "blkio.io_service_bytes_recursive",
        "blkio.io_serviced_recursive",
    ),
    (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ),
    (
        "blkio.throttle.io_service_bytes",
        "blkio.throttle.io_serviced",
    ),
];

const V1_OPS: [&str; 6] = ["Read", "Write", "Sync", "Async", "Discard", "Total"];

/// Label values of one block device, resolved once.
pub struct DeviceLabels {
    pub device: String,
    pub major: String,
    pub minor: String,
}

/// `major:minor` to device labels.
pub struct Devices {
    names: HashMap<(u32, u32), DeviceLabels>,
    /// Whether any block device uses the bfq scheduler (else BFQ's files only hold zeros).
    bfq: bool,
}

impl Devices {
    pub fn new() -> Self {
        let bfq = std::fs::read_dir("/sys/block").is_ok_and(|rd| {
            rd.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("queue/scheduler"))
                    .is_ok_and(|s| s.contains("[bfq]"))
            })
        });
        Self {
            names: HashMap::new(),
            bfq,
        }
    }

    pub fn labels(&mut self, major: u32, minor: u32) -> &DeviceLabels {
        self.names.entry((major, minor)).or_insert_with(|| {
            let link = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")).ok();
            let device = link
                .as_deref()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .map(|n| format!("/dev/{n}"))
                .unwrap_or_default();
            DeviceLabels {
                device,
                major: major.to_string(),
                minor: minor.to_string(),
            }
        })
    }
}

impl Default for Devices {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-device counters of one cgroup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceIo {
    pub major: u32,
    pub minor: u32,
    /// Bytes by v1 operation (`Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`); v2 fills
    /// only Read and Write.
    pub bytes: [Option<u64>; 6],
    pub reads: u64,
    pub writes: u64,
    /// iocost (µs): usage, wait, indebt, indelay.
    pub cost: Option<[u64; 4]>,
}

fn device(list: &mut Vec<DeviceIo>, major: u32, minor: u32) -> &mut DeviceIo {
    match list
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => &mut list[i],
        None => {
            list.push(DeviceIo {
                major,
                minor,
                ..Default::default()
            });
            let last = list.len() - 1;
            &mut list[last]
        }
    }
}

/// Parses v1 `MAJ:MIN Op value` lines into `out`; returns whether any device line was seen.
fn parse_v1(text: &str, out: &mut Vec<DeviceIo>, bytes: bool) -> bool {
    let mut any = false;
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace();
        let (Some(dev), Some(op), Some(v)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let (Some((major, minor)), Ok(v)) = (major_minor(dev), v.parse::<u64>()) else {
            continue;
        };
        any = true;
        let Some(op_i) = V1_OPS.iter().position(|o| *o == op) else {
            continue;
        };
        let d = device(out, major, minor);
        if bytes {
            d.bytes[op_i] = Some(v);
        } else if op_i == 0 {
            d.reads = v;
        } else if op_i == 1 {
            d.writes = v;
        }
    }
    any
}

/// Parses v2 `io.stat`.
pub fn parse_v2(text: &str, out: &mut Vec<DeviceIo>) {
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace();
        let Some((major, minor)) = w.next().and_then(major_minor) else {
            continue;
        };
        let d = device(out, major, minor);
        for kv in w {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => d.bytes[0] = Some(v),
                "wbytes" => d.bytes[1] = Some(v),
                "rios" => d.reads = v,
                "wios" => d.writes = v,
                "cost.usage" => d.cost.get_or_insert([0; 4])[0] = v,
                "cost.wait" => d.cost.get_or_insert([0; 4])[1] = v,
                "cost.indebt" => d.cost.get_or_insert([0; 4])[2] = v,
                "cost.indelay" => d.cost.get_or_insert([0; 4])[3] = v,
                _ => {}
            }
        }
    }
}

/// Reads a cgroup's per-device I/O into `out` (cleared first).
pub fn read(r: &mut FileReader, dirs: &CgroupDirs, devices: &Devices, out: &mut Vec<DeviceIo>) {
    out.clear();
    if let Some(d) = &dirs.blkio {
        for (i, (bytes_file, ops_file)) in V1_FILES.iter().enumerate() {
            if i == 0 && !devices.bfq {
                continue;
            }
            let Some(text) = r.read(d, bytes_file) else {
                continue;
            };
            if !parse_v1(text, out, true) {
                continue;
            }
            if let Some(text) = r.read(d, ops_file) {
                parse_v1(text, out, false);
            }
            return;
        }
    } else if let Some(d) = &dirs.unified
        && let Some(text) = r.read(d, "io.stat")
    {
        parse_v2(text, out);
    }
}

pub fn emit(
    io: &[DeviceIo],
    v2: bool,
    devices: &mut Devices,
    cache: &mut SeriesCache,
    e: &mut SeriesEmitter<'_>,
) {
    let g = Group::DiskIo;
    for d in io {
        let l = devices.labels(d.major, d.minor);
        let dev = [("device", l.device.as_str())];
        if let Some(b) = d.bytes[0] {
            e.emit(cache, g, &FS_READS_BYTES, &dev, b as f64);
        }
        if let Some(b) = d.bytes[1] {
            e.emit(cache, g, &FS_WRITES_BYTES, &dev, b as f64);
        }
        e.emit(cache, g, &FS_READS, &dev, d.reads as f64);
        e.emit(cache, g, &FS_WRITES, &dev, d.writes as f64);
        let ops: &[&str] = if v2 { &V1_OPS[..2] } else { &V1_OPS };
        for (i, op) in ops.iter().enumerate() {
            if let Some(b) = d.bytes[i] {
                e.emit(
                    cache,
                    g,
                    &BLKIO_DEVICE_USAGE,
                    &[
                        ("device", &l.device),
                        ("major", &l.major),
                        ("minor", &l.minor),
                        ("operation", op),
                    ],
                    b as f64,
                );
            }
        }
        if let Some(c) = d.cost {
            e.emit(cache, g, &FS_IO_COST_USAGE, &dev, c[0] as f64 / 1e6);
            e.emit(cache, g, &FS_IO_COST_WAIT, &dev, c[1] as f64 / 1e6);
            e.emit(cache, g, &FS_IO_COST_INDEBT, &dev, c[2] as f64 / 1e6);
            e.emit(cache, g, &FS_IO_COST_INDELAY, &dev, c[3] as f64 / 1e6);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn v2_io_stat_with_iocost() {
        let mut out = Vec::new();
        parse_v2(
            "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=1500 cost.wait=20 cost.indebt=0 cost.indelay=5\n7:0 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].bytes[..2], [Some(4096), Some(8192)]);
        assert_eq!((out[0].reads, out[0].writes), (1, 2));
        assert_eq!(out[0].cost, Some([1500, 20, 0, 5]));
        assert_eq!(out[1].cost, None);
    }

    #[test]
    fn v1_throttle_files_with_all_operations() {
        let mut out = Vec::new();
        let bytes = "254:0 Read 4096\n254:0 Write 1048576\n254:0 Sync 1048576\n254:0 Async 4096\n254:0 Discard 0\n254:0 Total 1052672\nTotal 1052672\n";
        assert!(parse_v1(bytes, &mut out, true));
        assert!(parse_v1(
            "254:0 Read 1\n254:0 Write 256\nTotal 257\n",
            &mut out,
            false
        ));
        assert!(!parse_v1("Total 0\n", &mut out, true));
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].bytes,
            [
                Some(4096),
                Some(1_048_576),
                Some(1_048_576),
                Some(4096),
                Some(0),
                Some(1_052_672)
            ]
        );
        assert_eq!((out[0].reads, out[0].writes), (1, 256));
    }
}
