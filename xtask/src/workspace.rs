//! Where things are: workspace root, target dirs, the committed eBPF object.

use std::path::PathBuf;

use anyhow::Context as _;

/// Path of the committed eBPF object, relative to the workspace root. The agent embeds it with
/// `include_bytes_aligned!`, so stable cargo alone builds the agent.
pub const EBPF_OBJECT: &str = "agent/src/sources/ebpf/nodemeter.bpf.o";
/// The toolchain that produced the committed object, beside it, so a `--check` failure can say
/// whether the toolchain or the source changed.
pub const EBPF_TOOLCHAIN: &str = "agent/src/sources/ebpf/nodemeter.bpf.toolchain";
/// Package name of the eBPF crate.
pub const EBPF_PACKAGE: &str = "nodemeter-ebpf";
/// Target triple of the eBPF build (little-endian: x86_64 and arm64 nodes).
pub const EBPF_TARGET: &str = "bpfel-unknown-none";

pub struct Workspace {
    pub root: PathBuf,
    /// Host target dir (`CARGO_TARGET_DIR` or `<root>/target`).
    pub target_dir: PathBuf,
    pub cargo_home: PathBuf,
    pub rustup_home: PathBuf,
}

impl Workspace {
    pub fn locate() -> anyhow::Result<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest dir has no parent")?
            .to_path_buf();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".cargo")))
            .context("neither CARGO_HOME nor HOME is set")?;
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".rustup")))
            .context("neither RUSTUP_HOME nor HOME is set")?;
        Ok(Self {
            root,
            target_dir,
            cargo_home,
            rustup_home,
        })
    }

    /// The eBPF build has its own target dir: different toolchain, target and flags, so sharing
    /// the host one would only cause rebuilds in both directions.
    pub fn ebpf_target_dir(&self) -> PathBuf {
        self.target_dir.join("ebpf")
    }
}
