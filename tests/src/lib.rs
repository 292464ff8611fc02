//! Fixtures for nodemeter's integration tests: real cgroups, real processes in them, and the
//! real agent binary started on a config and scraped over HTTP.

pub mod agent;
pub mod apiserver;
pub mod cgroup;
pub mod cgroups;
pub mod metrics;
pub mod pki;
pub mod receivers;
pub mod sink;
pub mod target;
pub mod workload;

/// Whether this process may create cgroups and load eBPF programs. The suite runs as root in
/// CI; a test that needs root says so and returns early elsewhere rather than failing.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Prints why a test did not run and returns from it.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root (cgroups, eBPF)");
            return;
        }
    };
}
