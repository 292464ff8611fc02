//! Running child processes with their command line echoed, and failing with it named.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::workspace::Workspace;

/// Variables an outer `cargo run` (or the caller's shell) sets that would leak into nested
/// cargo invocations and change what they build or with which compiler.
const LEAKY_ENV: &[&str] = &[
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTUP_TOOLCHAIN",
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
];

/// `cargo` on the default (stable) toolchain, with the environment of the outer cargo removed.
pub fn cargo(ws: &Workspace) -> Command {
    let mut c = Command::new("cargo");
    clean_env(&mut c);
    c.current_dir(&ws.root);
    c
}

/// `cargo +nightly`, environment cleaned like [`cargo`].
pub fn cargo_nightly(ws: &Workspace) -> Command {
    let mut c = cargo(ws);
    c.arg("+nightly");
    c
}

pub fn clean_env(c: &mut Command) {
    for var in LEAKY_ENV {
        c.env_remove(var);
    }
}

pub fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs to completion, inheriting stdio; a non-zero exit is an error naming the command.
pub fn run(c: &mut Command) -> anyhow::Result<()> {
    let line = describe(c);
    println!("+ {line}");
    let status = c
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed: {status}");
    }
    Ok(())
}

/// Runs and captures stdout; `None` when the program cannot start or exits non-zero.
pub fn output(c: &mut Command) -> Option<String> {
    let out = c.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Effective uid 0, from /proc/self/status (no libc dependency for one number).
pub fn is_root() -> anyhow::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status to find the effective uid")?;
    let uid_line = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("/proc/self/status has no Uid: line")?;
    let euid = uid_line
        .split_whitespace()
        .nth(1)
        .context("/proc/self/status Uid: line has no effective uid")?;
    Ok(euid == "0")
}
