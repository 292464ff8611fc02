//! `machine_*` families, `cadvisor_version_info`, and the node root's filesystem usage.
//!
//! Machine facts change rarely: they are read once and refreshed every few minutes (cAdvisor
//! refreshes machine info every 5 minutes). Filesystem usage is statfs of the block-device
//! filesystems mounted in the host's mount namespace; never a directory walk.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::emit::{Group, SeriesCache, SeriesEmitter};
use super::families::*;
use crate::model::{Labels, LabelsBuilder};

/// Facts about the machine, as cAdvisor's machine collector reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineInfo {
    pub labels: Labels,
    pub cpu_cores: u64,
    pub physical_cores: u64,
    pub sockets: u64,
    pub books: u64,
    pub drawers: u64,
    pub memory_bytes: u64,
    pub swap_bytes: u64,
    /// DIMM count and capacity by memory type, from EDAC (absent on most VMs).
    pub dimms: BTreeMap<String, (u64, u64)>,
    /// Per NUMA node: memory bytes, hugepages by page size, distances.
    pub numa: Vec<NumaNode>,
    pub kernel_version: String,
    pub os_version: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NumaNode {
    pub id: String,
    pub memory_bytes: u64,
    pub hugepages: Vec<(String, u64)>,
    pub distances: Vec<u64>,
}

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

impl MachineInfo {
    pub fn read() -> Self {
        let mut m = Self {
            labels: Labels::empty(),
            cpu_cores: 0,
            physical_cores: 0,
            sockets: 0,
            books: 0,
            drawers: 0,
            memory_bytes: 0,
            swap_bytes: 0,
            dimms: BTreeMap::new(),
            numa: Vec::new(),
            kernel_version: String::new(),
            os_version: String::new(),
        };
        let machine_id = read_trim("/etc/machine-id")
            .or_else(|| read_trim("/var/lib/dbus/machine-id"))
            .unwrap_or_default();
        let uuid = read_trim("/sys/class/dmi/id/product_uuid").unwrap_or_default();
        let boot_id = read_trim("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let mut b = LabelsBuilder::new();
        b.set("machine_id", &machine_id);
        b.set("system_uuid", &uuid);
        b.set("boot_id", &boot_id);
        m.labels = b.build();
        m.cpu_cores = std::fs::read_to_string("/proc/cpuinfo")
            .map(|t| t.lines().filter(|l| l.starts_with("processor")).count() as u64)
            .unwrap_or(0);
        let mut cores = BTreeSet::new();
        let mut packages = BTreeSet::new();
        let mut books = BTreeSet::new();
        let mut drawers = BTreeSet::new();
        if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if !name
                    .strip_prefix("cpu")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                {
                    continue;
                }
                let t = e.path().join("topology");
                let pkg = read_trim(t.join("physical_package_id")).unwrap_or_default();
                let core = read_trim(t.join("core_id")).unwrap_or_default();
                if let Some(b) = read_trim(t.join("book_id")) {
                    books.insert(b);
                }
                if let Some(d) = read_trim(t.join("drawer_id")) {
                    drawers.insert(d);
                }
                cores.insert((pkg.clone(), core));
                packages.insert(pkg);
            }
        }
        m.physical_cores = cores.len() as u64;
        m.sockets = packages.len() as u64;
        m.books = books.len() as u64;
        m.drawers = drawers.len() as u64;
        if let Ok(t) = std::fs::read_to_string("/proc/meminfo") {
            for line in t.lines() {
                let mut w = line.split_ascii_whitespace();
                match (w.next(), w.next().and_then(|v| v.parse::<u64>().ok())) {
                    (Some("MemTotal:"), Some(kb)) => m.memory_bytes = kb * 1024,
                    (Some("SwapTotal:"), Some(kb)) => m.swap_bytes = kb * 1024,
                    _ => {}
                }
            }
        }
        m.dimms = read_dimms();
        m.numa = read_numa();
        m.kernel_version = read_trim("/proc/sys/kernel/osrelease").unwrap_or_default();
        m.os_version = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| "Linux".into());
        m
    }
}

fn read_dimms() -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let Ok(mcs) = std::fs::read_dir("/sys/devices/system/edac/mc") else {
        return out;
    };
    for mc in mcs.flatten() {
        let Ok(dimms) = std::fs::read_dir(mc.path()) else {
            continue;
        };
        for d in dimms.flatten() {
            let name = d.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("dimm") || name.starts_with("rank")) {
                continue;
            }
            let kind =
                read_trim(d.path().join("dimm_mem_type")).unwrap_or_else(|| "Unknown".into());
            let mb: u64 = read_trim(d.path().join("size"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let e = out.entry(kind).or_insert((0, 0));
            e.0 += 1;
            e.1 += mb * 1024 * 1024;
        }
    }
    out
}

fn read_numa() -> Vec<NumaNode> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/devices/system/node") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix("node")
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
        else {
            continue;
        };
        let memory_bytes = std::fs::read_to_string(e.path().join("meminfo"))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let mut w = l.split_ascii_whitespace().skip(2);
                    (w.next() == Some("MemTotal:"))
                        .then(|| w.next()?.parse::<u64>().ok())
                        .flatten()
                })
            })
            .unwrap_or(0)
            * 1024;
        let mut hugepages = Vec::new();
        if let Ok(hp) = std::fs::read_dir(e.path().join("hugepages")) {
            for h in hp.flatten() {
                let n = h.file_name().to_string_lossy().into_owned();
                if let Some(size) = n
                    .strip_prefix("hugepages-")
                    .and_then(|s| s.strip_suffix("kB"))
                {
                    let count = read_trim(h.path().join("nr_hugepages"))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    hugepages.push((size.to_string(), count));
                }
            }
        }
        hugepages.sort();
        let distances = read_trim(e.path().join("distance"))
            .map(|s| {
                s.split_ascii_whitespace()
                    .filter_map(|d| d.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        out.push(NumaNode {
            id: id.to_string(),
            memory_bytes,
            hugepages,
            distances,
        });
    }
    out.sort_by(|a, b| a.id.len().cmp(&b.id.len()).then(a.id.cmp(&b.id)));
    out
}

pub fn emit(m: &MachineInfo, topology: bool, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    let g = Group::Machine;
    e.emit(cache, g, &MACHINE_CPU_CORES, &[], m.cpu_cores as f64);
    e.emit(
        cache,
        g,
        &MACHINE_CPU_PHYSICAL_CORES,
        &[],
        m.physical_cores as f64,
    );
    e.emit(cache, g, &MACHINE_CPU_SOCKETS, &[], m.sockets as f64);
    e.emit(cache, g, &MACHINE_CPU_BOOKS, &[], m.books as f64);
    e.emit(cache, g, &MACHINE_CPU_DRAWERS, &[], m.drawers as f64);
    e.emit(cache, g, &MACHINE_MEMORY, &[], m.memory_bytes as f64);
    e.emit(cache, g, &MACHINE_SWAP, &[], m.swap_bytes as f64);
    for (kind, (count, bytes)) in &m.dimms {
        e.emit(
            cache,
            g,
            &MACHINE_DIMM_COUNT,
            &[("type", kind)],
            *count as f64,
        );
        e.emit(
            cache,
            g,
            &MACHINE_DIMM_CAPACITY,
            &[("type", kind)],
            *bytes as f64,
        );
    }
    // cAdvisor without libipmctl serves these as zeros.
    e.emit(
        cache,
        g,
        &MACHINE_NVM_CAPACITY,
        &[("mode", "memory_mode")],
        0.0,
    );
    e.emit(
        cache,
        g,
        &MACHINE_NVM_CAPACITY,
        &[("mode", "app_direct_mode")],
        0.0,
    );
    e.emit(cache, g, &MACHINE_NVM_POWER_BUDGET, &[], 0.0);
    if topology {
        for n in &m.numa {
            e.emit(
                cache,
                g,
                &MACHINE_NODE_MEMORY,
                &[("node_id", &n.id)],
                n.memory_bytes as f64,
            );
            for (size, count) in &n.hugepages {
                e.emit(
                    cache,
                    g,
                    &MACHINE_NODE_HUGEPAGES,
                    &[("node_id", &n.id), ("page_size", size)],
                    *count as f64,
                );
            }
            for (target, d) in m.numa.iter().zip(&n.distances) {
                e.emit(
                    cache,
                    g,
                    &MACHINE_NODE_DISTANCE,
                    &[("node_id", &n.id), ("target_node_id", &target.id)],
                    *d as f64,
                );
            }
        }
    }
    e.emit(cache, g, &MACHINE_SCRAPE_ERROR, &[], 0.0);
}

/// `cadvisor_version_info` and `container_scrape_error`: series without container labels.
pub fn emit_info(m: &MachineInfo, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    e.emit(
        cache,
        Group::Always,
        &VERSION_INFO,
        &[
            ("kernelVersion", &m.kernel_version),
            ("osVersion", &m.os_version),
            (
                "cadvisorVersion",
                concat!("nodemeter-", env!("CARGO_PKG_VERSION")),
            ),
        ],
        1.0,
    );
    e.emit(cache, Group::Always, &SCRAPE_ERROR, &[], 0.0);
}

/// A block-device filesystem of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filesystem {
    /// `/dev/vda1`.
    pub device: String,
    /// Where it is reachable through the host's root (/proc/1/root/...).
    pub path: PathBuf,
    /// The mount point itself, used when /proc/1/root is not accessible (same mount
    /// namespace, or a hostPath mount of the same place).
    pub mount_point: PathBuf,
}

/// Block-device filesystems of the host mount namespace (PID 1's), one per device.
pub fn filesystems() -> Vec<Filesystem> {
    let (mountinfo, prefix) = match std::fs::read_to_string("/proc/1/mountinfo") {
        Ok(t) => (t, Some(PathBuf::from("/proc/1/root"))),
        Err(_) => match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(t) => (t, None),
            Err(_) => return Vec::new(),
        },
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let Some(source) = right.split(' ').nth(1) else {
            continue;
        };
        if !source.starts_with("/dev/") || !seen.insert(source.to_string()) {
            continue;
        }
        let path = match &prefix {
            Some(p) => p.join(mount_point.trim_start_matches('/')),
            None => PathBuf::from(mount_point),
        };
        out.push(Filesystem {
            device: source.to_string(),
            path,
            mount_point: PathBuf::from(mount_point),
        });
    }
    out
}

/// statfs of one filesystem: (capacity, used, inodes, free inodes).
pub fn statfs(path: &Path) -> Option<(u64, u64, u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frsize = s.f_frsize as u64;
    let capacity = s.f_blocks as u64 * frsize;
    let used = (s.f_blocks as u64).saturating_sub(s.f_bfree as u64) * frsize;
    Some((capacity, used, s.f_files as u64, s.f_ffree as u64))
}

pub fn emit_filesystems(fs: &[Filesystem], cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    for f in fs {
        let Some((capacity, used, inodes, free_inodes)) =
            statfs(&f.path).or_else(|| statfs(&f.mount_point))
        else {
            continue;
        };
        let dev = [("device", f.device.as_str())];
        e.emit(cache, Group::Disk, &FS_USAGE, &dev, used as f64);
        e.emit(cache, Group::Disk, &FS_LIMIT, &dev, capacity as f64);
        e.emit(cache, Group::Disk, &FS_INODES_TOTAL, &dev, inodes as f64);
        e.emit(
            cache,
            Group::Disk,
            &FS_INODES_FREE,
            &dev,
            free_inodes as f64,
        );
    }
}
