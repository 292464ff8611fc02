//! The `network` set: interface counters from /proc/<pid>/net/dev of a process in the pod's
//! network namespace, attached to the sandbox row only (and host interfaces to the root).
//!
//! Each namespace is read once per cycle however many sandboxes share it (hostNetwork pods
//! all share the host's); namespaces are told apart by the inode of /proc/<pid>/ns/net.
//! Interfaces cAdvisor skips are skipped: names starting with `lo`, `veth`, `docker`,
//! `nerdctl`.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::emit::{Group, SeriesCache, SeriesEmitter};
use super::families::*;
use super::read::FileReader;

const SKIPPED_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

/// Counters of one interface: rx bytes, packets, errs, drop, tx bytes, packets, errs, drop.
#[derive(Clone, Debug, PartialEq)]
pub struct Interface {
    pub name: String,
    pub counters: [u64; 8],
    seen: bool,
}

struct Namespace {
    interfaces: Vec<Interface>,
    cycle: u64,
}

/// Parsed namespaces, kept across cycles so interface names are allocated once.
#[derive(Default)]
pub struct NetworkNamespaces {
    by_inode: HashMap<u64, Namespace>,
}

impl NetworkNamespaces {
    pub fn new() -> Self {
        Self::default()
    }

    /// Interfaces of the network namespace `pid` lives in, read at most once per `cycle`.
    pub fn interfaces(&mut self, r: &mut FileReader, pid: u32, cycle: u64) -> Option<&[Interface]> {
        let ino = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino();
        let ns = self.by_inode.entry(ino).or_insert_with(|| Namespace {
            interfaces: Vec::new(),
            cycle: 0,
        });
        if ns.cycle != cycle {
            let text = r.read_path(Path::new(&format!("/proc/{pid}/net/dev")))?;
            parse_net_dev(text, &mut ns.interfaces);
            ns.cycle = cycle;
        }
        Some(&ns.interfaces)
    }

    /// Whether the network namespace of `pid` can be inspected.
    pub fn readable(&self, pid: u32) -> bool {
        std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok()
    }

    /// Forgets namespaces not read this cycle.
    pub fn end_cycle(&mut self, cycle: u64) {
        self.by_inode.retain(|_, ns| ns.cycle == cycle);
    }
}

/// Updates `out` from /proc/net/dev text: interfaces keep their slot (and name allocation),
/// ones that disappeared are removed.
pub fn parse_net_dev(text: &str, out: &mut Vec<Interface>) {
    for i in out.iter_mut() {
        i.seen = false;
    }
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let lower_skip = SKIPPED_PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p));
        if lower_skip {
            continue;
        }
        let mut fields = [0u64; 16];
        let mut n = 0;
        for (slot, w) in fields.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = w.parse().unwrap_or(0);
            n += 1;
        }
        if n < 12 {
            continue;
        }
        let counters = [
            fields[0], fields[1], fields[2], fields[3], fields[8], fields[9], fields[10],
            fields[11],
        ];
        match out.iter_mut().find(|i| i.name == name) {
            Some(i) => {
                i.counters = counters;
                i.seen = true;
            }
            None => out.push(Interface {
                name: name.to_string(),
                counters,
                seen: true,
            }),
        }
    }
    out.retain(|i| i.seen);
}

const FAMILIES: [&Family; 8] = [
    &NET_RX_BYTES,
    &NET_RX_PACKETS,
    &NET_RX_ERRORS,
    &NET_RX_DROPPED,
    &NET_TX_BYTES,
    &NET_TX_PACKETS,
    &NET_TX_ERRORS,
    &NET_TX_DROPPED,
];

pub fn emit(interfaces: &[Interface], cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    for i in interfaces {
        for (f, v) in FAMILIES.iter().zip(i.counters) {
            e.emit(
                cache,
                Group::Network,
                f,
                &[("interface", &i.name)],
                v as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000000    4000    1    2    0     0          0         0  3000000    2500    3    4    0     0       0          0
vethab12:  77  1 0 0 0 0 0 0 77 1 0 0 0 0 0 0
docker0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0
";

    #[test]
    fn skips_interfaces_cadvisor_skips_and_reads_the_eight_counters() {
        let mut out = Vec::new();
        parse_net_dev(NET_DEV, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "eth0");
        assert_eq!(
            out[0].counters,
            [5_000_000, 4000, 1, 2, 3_000_000, 2500, 3, 4]
        );
        parse_net_dev(NET_DEV.replace("eth0", "eth1").as_str(), &mut out);
        assert_eq!(out.len(), 1, "eth0 went away");
        assert_eq!(out[0].name, "eth1");
    }
}
