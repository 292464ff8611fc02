//! nodemeter's kernel programs.
//!
//! Built only for `bpfel-unknown-none` by `cargo xtask build-ebpf`; on the host this crate is an
//! empty binary so that workspace-wide `cargo clippy` keeps working on stable.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

#[cfg(target_arch = "bpf")]
mod cgroup_events;
#[cfg(target_arch = "bpf")]
mod network;
#[cfg(target_arch = "bpf")]
mod oom;
#[cfg(target_arch = "bpf")]
mod process;
#[cfg(target_arch = "bpf")]
mod runqueue;
#[cfg(target_arch = "bpf")]
mod sched_switch;
#[cfg(target_arch = "bpf")]
mod tcp;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // The verifier rejects any program that could reach a panic, so this is never called.
    loop {}
}

/// The kernel only lets GPL-compatible programs call helpers such as
/// `bpf_probe_read_kernel` and `bpf_get_current_cgroup_id`.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}
