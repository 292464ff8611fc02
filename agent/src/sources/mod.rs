//! sources

pub mod ebpf;
