//! The eBPF toolchain: nightly rustc with `rust-src` (for `-Z build-std=core`) and bpf-linker
//! built against the same LLVM as that nightly.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// bpf-linker is pinned: its output (and so the committed object's bytes) depends on its
/// version, and 0.13.0 is the release with an `llvm-22` feature matching nightly 1.97's LLVM.
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// Facts about the nightly toolchain the eBPF crate is built with.
pub struct Nightly {
    pub sysroot: PathBuf,
    /// `rustc +nightly -vV`, verbatim: recorded beside the object.
    pub version_verbose: String,
    pub llvm_major: u32,
}

impl Nightly {
    pub fn probe() -> anyhow::Result<Self> {
        let sysroot = cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
            .context(
                "`rustc +nightly --print sysroot` failed: install it with `rustup toolchain install nightly`",
            )?;
        let version_verbose = cmd::output(Command::new("rustc").args(["+nightly", "-vV"]))
            .context("`rustc +nightly -vV` failed")?;
        let llvm = version_verbose
            .lines()
            .find_map(|l| l.strip_prefix("LLVM version: "))
            .context("`rustc +nightly -vV` prints no `LLVM version:` line")?;
        let llvm_major = llvm
            .split('.')
            .next()
            .and_then(|m| m.trim().parse().ok())
            .with_context(|| format!("cannot parse LLVM version {llvm:?}"))?;
        Ok(Self {
            sysroot: PathBuf::from(sysroot.trim()),
            version_verbose,
            llvm_major,
        })
    }
}

/// `rustup component add rust-src --toolchain nightly` when the component is missing.
pub fn ensure_rust_src() -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))
    .context("`rustup component list --installed --toolchain nightly` failed")?;
    if installed.lines().any(|l| l.trim().starts_with("rust-src")) {
        println!("xtask: rust-src (nightly) present");
        return Ok(());
    }
    println!("xtask: installing rust-src for the nightly toolchain");
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// The version bpf-linker reports when run the way rustc runs it (`rustup run nightly`, which
/// puts the nightly's `lib/` with libLLVM on the library path); `None` when missing or broken.
pub fn installed_bpf_linker() -> Option<String> {
    let out =
        cmd::output(Command::new("rustup").args(["run", "nightly", "bpf-linker", "--version"]))?;
    out.split_whitespace().nth(1).map(str::to_owned)
}

/// Installs bpf-linker [`BPF_LINKER_VERSION`] linked dynamically against the nightly's own
/// libLLVM, unless that exact version already runs.
pub fn ensure_bpf_linker(ws: &Workspace, nightly: &Nightly) -> anyhow::Result<()> {
    match installed_bpf_linker() {
        Some(v) if v == BPF_LINKER_VERSION => {
            println!("xtask: bpf-linker {v} present");
            return Ok(());
        }
        Some(v) => {
            println!("xtask: bpf-linker {v} found, {BPF_LINKER_VERSION} is pinned: reinstalling")
        }
        None => println!(
            "xtask: bpf-linker missing or cannot load its LLVM: installing {BPF_LINKER_VERSION}"
        ),
    }
    let libllvm = find_libllvm(&nightly.sysroot.join("lib"))?;
    // bpf-linker's build looks for `$LLVM_PREFIX/lib/libLLVM.so`; the nightly ships the library
    // under a versioned name only, so a throwaway prefix with one symlink is enough. At run time
    // rustup puts the nightly's lib/ on the library path, which is how the linker finds it again.
    let prefix = ws.target_dir.join("xtask-llvm-prefix");
    let lib = prefix.join("lib");
    if prefix.exists() {
        std::fs::remove_dir_all(&prefix)
            .with_context(|| format!("removing {}", prefix.display()))?;
    }
    std::fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    std::os::unix::fs::symlink(&libllvm, lib.join("libLLVM.so"))
        .with_context(|| format!("symlinking {} into {}", libllvm.display(), lib.display()))?;
    println!(
        "xtask: LLVM_PREFIX={} (lib/libLLVM.so -> {})",
        prefix.display(),
        libllvm.display()
    );
    let feature = format!("llvm-{}", nightly.llvm_major);
    let result = cmd::run(
        cmd::cargo(ws)
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &feature,
            ])
            .env("LLVM_PREFIX", &prefix),
    );
    let _ = std::fs::remove_dir_all(&prefix);
    result?;
    match installed_bpf_linker() {
        Some(v) if v == BPF_LINKER_VERSION => {
            println!("xtask: installed bpf-linker {v}");
            Ok(())
        }
        other => bail!(
            "bpf-linker still not usable after installing {BPF_LINKER_VERSION} (reports {other:?})"
        ),
    }
}

fn find_libllvm(libdir: &Path) -> anyhow::Result<PathBuf> {
    let entries =
        std::fs::read_dir(libdir).with_context(|| format!("listing {}", libdir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", libdir.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("libLLVM.so.") {
            return Ok(entry.path());
        }
    }
    bail!(
        "no libLLVM.so.* in {}: the nightly toolchain ships LLVM as a shared library on Linux; \
         is this toolchain complete?",
        libdir.display()
    )
}
