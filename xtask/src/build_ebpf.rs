//! `cargo xtask build-ebpf [--check]`: the eBPF object, built reproducibly and committed.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::cmd;
use crate::toolchain::{self, Nightly};
use crate::workspace::{EBPF_OBJECT, EBPF_PACKAGE, EBPF_TARGET, EBPF_TOOLCHAIN, Workspace};

pub fn run(check: bool) -> anyhow::Result<()> {
    let ws = Workspace::locate()?;
    toolchain::ensure_rust_src()?;
    let nightly = Nightly::probe()?;
    toolchain::ensure_bpf_linker(&ws, &nightly)?;

    let started = Instant::now();
    let built = build(&ws, &nightly)?;
    let object = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let toolchain_record = toolchain_record(&nightly);
    println!(
        "xtask: built {} ({} bytes) in {:.1} s",
        built.display(),
        object.len(),
        started.elapsed().as_secs_f64()
    );

    let committed_path = ws.root.join(EBPF_OBJECT);
    let record_path = ws.root.join(EBPF_TOOLCHAIN);
    if check {
        return compare(&committed_path, &object, &record_path, &toolchain_record);
    }
    write_if_changed(&committed_path, &object)?;
    write_if_changed(&record_path, toolchain_record.as_bytes())?;
    println!("xtask: {EBPF_OBJECT} up to date");
    Ok(())
}

/// What produced the object: the nightly's `rustc -vV` and the bpf-linker version.
fn toolchain_record(nightly: &Nightly) -> String {
    format!(
        "# Toolchain that built nodemeter.bpf.o (written by `cargo xtask build-ebpf`).\n\
         {}bpf-linker: {}\n",
        nightly.version_verbose,
        toolchain::BPF_LINKER_VERSION
    )
}

fn build(ws: &Workspace, nightly: &Nightly) -> anyhow::Result<std::path::PathBuf> {
    let target_dir = ws.ebpf_target_dir();
    let mut c = cmd::cargo_nightly(ws);
    c.args([
        "build",
        "--package",
        EBPF_PACKAGE,
        "-Z",
        "build-std=core",
        "--target",
        EBPF_TARGET,
        "--release",
        "--target-dir",
    ])
    .arg(&target_dir)
    // `\x1f`-separated so that paths with spaces survive.
    .env("CARGO_ENCODED_RUSTFLAGS", rustflags(ws, nightly));
    cmd::run(&mut c)?;
    Ok(target_dir
        .join(EBPF_TARGET)
        .join("release")
        .join(EBPF_PACKAGE))
}

/// Debug info is what bpf-linker turns into BTF (`--btf`), and it carries source paths: remap
/// every machine-specific prefix so the object's bytes do not depend on where the repository,
/// the cargo registry or the toolchain live.
fn rustflags(ws: &Workspace, nightly: &Nightly) -> OsString {
    let mut flags: Vec<OsString> = vec!["-Cdebuginfo=2".into(), "-Clink-arg=--btf".into()];
    let mut remaps: [(&Path, &str); 5] = [
        (&ws.rustup_home, "/rustup"),
        (&nightly.sysroot, "/rustc-nightly"),
        (&ws.cargo_home, "/cargo"),
        (&ws.target_dir, "/target"),
        (&ws.root, "/nodemeter"),
    ];
    // rustc applies the last matching remap, so the most specific (longest) prefixes go last;
    // that keeps the result the same whether or not, say, the target dir is inside the repo.
    remaps.sort_by_key(|(from, _)| from.as_os_str().len());
    for (from, to) in remaps {
        let mut f = OsString::from("--remap-path-prefix=");
        f.push(from.as_os_str());
        f.push("=");
        f.push(to);
        flags.push(f);
    }
    flags.join(&OsString::from("\x1f"))
}

fn compare(
    committed_path: &Path,
    built: &[u8],
    record_path: &Path,
    record: &str,
) -> anyhow::Result<()> {
    let committed = std::fs::read(committed_path).with_context(|| {
        format!(
            "reading the committed object {}; run `cargo xtask build-ebpf` and commit it",
            committed_path.display()
        )
    })?;
    if committed == built {
        println!("xtask: {EBPF_OBJECT} matches its sources");
        return Ok(());
    }
    let committed_record = std::fs::read_to_string(record_path).unwrap_or_default();
    let hint = if committed_record == record {
        "the toolchain is the one recorded, so the sources changed".to_owned()
    } else {
        format!(
            "the toolchain differs from the recorded one ({EBPF_TOOLCHAIN}):\n--- recorded\n{committed_record}--- this machine\n{record}"
        )
    };
    bail!(
        "{EBPF_OBJECT} is stale: it differs from a fresh build ({} vs {} bytes); \
         run `cargo xtask build-ebpf` and commit the object. {hint}",
        committed.len(),
        built.len()
    )
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn flags(root: &str, target: &str) -> Vec<String> {
        let ws = Workspace {
            root: PathBuf::from(root),
            target_dir: PathBuf::from(target),
            cargo_home: PathBuf::from("/home/u/.cargo"),
            rustup_home: PathBuf::from("/home/u/.rustup"),
        };
        let nightly = Nightly {
            sysroot: PathBuf::from("/home/u/.rustup/toolchains/nightly-x86_64-unknown-linux-gnu"),
            version_verbose: String::new(),
            llvm_major: 22,
        };
        rustflags(&ws, &nightly)
            .to_str()
            .unwrap()
            .split('\x1f')
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn btf_and_debuginfo_come_first() {
        let f = flags("/src/nodemeter", "/src/nodemeter/target");
        assert_eq!(f[..2], ["-Cdebuginfo=2", "-Clink-arg=--btf"]);
    }

    #[test]
    fn more_specific_prefixes_are_remapped_last() {
        // rustc applies the last matching rule: a target dir inside the repository must still
        // map to /target, and the toolchain inside RUSTUP_HOME to /rustc-nightly.
        let f = flags("/src/nodemeter", "/src/nodemeter/target");
        let pos = |s: &str| f.iter().position(|x| x.ends_with(s)).unwrap();
        assert!(pos("=/nodemeter") < pos("=/target"));
        assert!(pos("=/rustup") < pos("=/rustc-nightly"));
        assert!(f.contains(&"--remap-path-prefix=/home/u/.cargo=/cargo".to_owned()));
    }
}
