//! Placeholder until the sched_switch program lands (owned by the eBPF build-chain work).
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(not(target_arch = "bpf"))]
fn main() {}
