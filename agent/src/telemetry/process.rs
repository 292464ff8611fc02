//! The agent process's own CPU, memory and file descriptors.

use crate::model::MetricType;

use super::Registry;

/// Clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

pub fn register(r: &Registry) {
    r.register_collector(Box::new(|emit| {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            emit(
                "nodemeter_process_cpu_seconds_total",
                MetricType::Counter,
                "User and system CPU time spent by the agent, in seconds.",
                &[],
                (ticks(11) + ticks(12)) / USER_HZ,
            );
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for (key, name, help) in [
                (
                    "VmRSS:",
                    "nodemeter_process_resident_memory_bytes",
                    "Resident memory of the agent, in bytes.",
                ),
                (
                    "VmHWM:",
                    "nodemeter_process_resident_memory_peak_bytes",
                    "Peak resident memory of the agent, in bytes.",
                ),
            ] {
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
                {
                    emit(name, MetricType::Gauge, help, &[], kib * 1024.0);
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            emit(
                "nodemeter_process_open_fds",
                MetricType::Gauge,
                "Open file descriptors of the agent.",
                &[],
                fds.count() as f64,
            );
        }
        emit(
            "nodemeter_build_info",
            MetricType::Gauge,
            "Version of the running agent (always 1).",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        emit(
            "nodemeter_interned_strings",
            MetricType::Gauge,
            "Distinct label names and values held by the agent.",
            &[],
            crate::model::interned_count() as f64,
        );
    }));
}
