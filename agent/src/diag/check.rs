//! `nodemeter check`: whether this host supports everything the agent does, and if not, why.
//!
//! It checks what the kernel probes depend on (kernel version, BTF, cgroup mode, capabilities,
//! tracefs, bpffs) and then does what the agent does at start-up: loads the embedded object
//! with every probe and attaches each one, reporting per probe whether it attached and the
//! kernel's reason when not. Nothing stays loaded: the probes detach when the check ends.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::identity::{CgroupMode, Hierarchies};
use crate::sources::ebpf::{self, KernelProbes, Probe, ProbeSelection};

/// Where the kernel exposes its own BTF (type information), needed by BTF-based programs.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Where bpffs is expected.
const BPFFS: &str = "/sys/fs/bpf";

/// How one finding bears on support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Present and working.
    Ok,
    /// Worth knowing; nothing the agent does depends on it today.
    Note,
    /// Something the agent needs is missing: the node is not fully supported.
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Note => "note",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was checked: `kernel`, `btf`, `cgroup`, `capabilities`, `tracefs`, `bpffs`, or
    /// `probe <name>`.
    pub item: String,
    pub verdict: Verdict,
    /// The value found, or why it failed.
    pub detail: String,
}

/// Everything `nodemeter check` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when nothing failed: every probe attached and everything it needs is there.
    pub fn fully_supported(&self) -> bool {
        self.findings.iter().all(|f| f.verdict != Verdict::Fail)
    }

    /// One line per finding (`<verdict> <item>: <detail>`), then a summary line.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let width = self
            .findings
            .iter()
            .map(|f| f.item.len())
            .max()
            .unwrap_or(0);
        for f in &self.findings {
            writeln!(
                out,
                "{:<4} {:<width$}  {}",
                f.verdict.label(),
                f.item,
                f.detail
            )?;
        }
        let failed = self
            .findings
            .iter()
            .filter(|f| f.verdict == Verdict::Fail)
            .count();
        if failed == 0 {
            writeln!(out, "node fully supported")
        } else {
            writeln!(
                out,
                "node NOT fully supported: {failed} check(s) failed (see FAIL lines)"
            )
        }
    }

    fn push(&mut self, item: impl Into<String>, verdict: Verdict, detail: impl Into<String>) {
        self.findings.push(Finding {
            item: item.into(),
            verdict,
            detail: detail.into(),
        });
    }
}

/// Runs every check on this host. Probes to fail on purpose come from
/// [`ebpf::FORCE_FAIL_ENV`], as for the agent.
#[tracing::instrument(name = "nodemeter_check", skip_all)]
pub fn run() -> Report {
    let mut report = Report::default();
    check_kernel(&mut report);
    check_btf(&mut report);
    check_cgroups(&mut report);
    let privileged = check_capabilities(&mut report);
    if privileged {
        check_tracefs(&mut report);
    } else {
        report.push(
            "tracefs",
            Verdict::Fail,
            "not checked: mounting it needs the capabilities above",
        );
    }
    check_probes(&mut report, privileged);
    // After the load, which mounts bpffs when it can.
    check_bpffs(&mut report);
    report
}

fn check_kernel(report: &mut Report) {
    let path = "/proc/sys/kernel/osrelease";
    match std::fs::read_to_string(path) {
        Ok(release) => report.push("kernel", Verdict::Ok, release.trim()),
        Err(e) => report.push("kernel", Verdict::Note, format!("{path}: {e}")),
    }
}

fn check_btf(report: &mut Report) {
    if Path::new(VMLINUX_BTF).is_file() {
        report.push("btf", Verdict::Ok, format!("{VMLINUX_BTF} present"));
    } else {
        report.push(
            "btf",
            Verdict::Note,
            format!(
                "{VMLINUX_BTF} missing (kernel without CONFIG_DEBUG_INFO_BTF); today's probes \
                 use tracefs record layouts and do not need it"
            ),
        );
    }
}

fn check_cgroups(report: &mut Report) {
    match Hierarchies::detect(&BTreeMap::new()) {
        Ok(h) => {
            let mode = h.mode();
            let unified = h
                .unified
                .as_deref()
                .map_or_else(|| "none".to_owned(), |p| p.display().to_string());
            let detail = format!(
                "{} (v2 mount: {unified}; v1 controllers: {})",
                mode.as_str(),
                if h.v1.is_empty() {
                    "none".to_owned()
                } else {
                    h.v1.keys().cloned().collect::<Vec<_>>().join(",")
                }
            );
            if mode == CgroupMode::V1 {
                report.push(
                    "cgroup",
                    Verdict::Fail,
                    format!(
                        "{detail}: probe counts are keyed by cgroup v2 id and cannot be \
                         attributed to containers without a v2 mount"
                    ),
                );
            } else {
                report.push("cgroup", Verdict::Ok, detail);
            }
        }
        Err(e) => report.push("cgroup", Verdict::Fail, e.to_string()),
    }
}

fn check_capabilities(report: &mut Report) -> bool {
    match ebpf::check_privileges() {
        Ok(()) => {
            report.push(
                "capabilities",
                Verdict::Ok,
                "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)",
            );
            true
        }
        Err(e) => {
            report.push("capabilities", Verdict::Fail, e.to_string());
            false
        }
    }
}

fn check_tracefs(report: &mut Report) {
    match ebpf::tracefs::ensure_tracefs() {
        Ok(dir) => report.push("tracefs", Verdict::Ok, dir.display().to_string()),
        Err(e) => report.push("tracefs", Verdict::Fail, e.to_string()),
    }
}

fn check_bpffs(report: &mut Report) {
    let mounted = std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.nth(1) == Some(BPFFS) && f.next() == Some("bpf")
        })
    });
    if mounted {
        report.push("bpffs", Verdict::Ok, format!("mounted at {BPFFS}"));
    } else {
        report.push(
            "bpffs",
            Verdict::Note,
            format!("not mounted at {BPFFS}; nothing is pinned, only bpftool users miss it"),
        );
    }
}

fn check_probes(report: &mut Report, privileged: bool) {
    let all_failed = |report: &mut Report, reason: &str| {
        for p in Probe::ALL {
            report.push(format!("probe {}", p.name()), Verdict::Fail, reason);
        }
    };
    if !privileged {
        all_failed(report, "not loaded: missing capabilities (see above)");
        return;
    }
    let selection = ProbeSelection::all().with_forced_failures_from_env();
    match KernelProbes::load(&selection) {
        Ok(probes) => {
            for s in probes.statuses() {
                if s.attached {
                    report.push(
                        format!("probe {}", s.name),
                        Verdict::Ok,
                        "loaded and attached",
                    );
                } else {
                    report.push(
                        format!("probe {}", s.name),
                        Verdict::Fail,
                        s.reason.clone().unwrap_or_else(|| "not attached".into()),
                    );
                }
            }
        }
        Err(e) => all_failed(report, &format!("the eBPF object did not load: {e}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn one_failure_means_not_supported_and_is_printed() {
        let mut r = Report::default();
        r.push("kernel", Verdict::Ok, "6.1.0");
        r.push("btf", Verdict::Note, "missing");
        assert!(r.fully_supported());
        r.push("probe sched_switch", Verdict::Fail, "attaching: ENOENT");
        assert!(!r.fully_supported());
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("FAIL probe sched_switch  attaching: ENOENT"),
            "{text}"
        );
        assert!(text.ends_with("node NOT fully supported: 1 check(s) failed (see FAIL lines)\n"));
    }
}
