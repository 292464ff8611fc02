//! Kernel probes: eBPF programs aggregating per-cgroup counters in maps, read once per cycle.

mod config;

pub use config::EbpfConfig;
