//! `nodemeter check` reports every probe and exits 0 only on a fully supported node.
//!
//! Needs root (the check loads and attaches the probes like the agent does).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::Command;

use nodemeter::sources::ebpf::{FORCE_FAIL_ENV, Probe};
use nodemeter_tests::agent::binary;

fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run this test as root");
}

fn check(force_fail: Option<&str>) -> (Option<i32>, String) {
    let mut command = Command::new(binary());
    command.arg("check").env_remove(FORCE_FAIL_ENV);
    if let Some(probes) = force_fail {
        command.env(FORCE_FAIL_ENV, probes);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line_of<'a>(report: &'a str, item: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.contains(&format!(" {item} ")))
        .unwrap_or_else(|| panic!("no line for {item:?} in\n{report}"))
}

#[test]
fn supported_node_exits_zero_and_lists_every_probe_attached() {
    assert_root();
    let (code, report) = check(None);
    eprintln!("{report}");
    assert_eq!(code, Some(0), "{report}");
    for item in ["kernel", "btf", "cgroup", "capabilities", "tracefs"] {
        assert!(line_of(&report, item).starts_with("ok "), "{report}");
    }
    for p in Probe::ALL {
        let line = line_of(&report, &format!("probe {}", p.name()));
        assert!(
            line.starts_with("ok ") && line.ends_with("loaded and attached"),
            "{line}"
        );
    }
    assert!(report.ends_with("node fully supported\n"), "{report}");
}

#[test]
fn failing_probe_exits_non_zero_with_the_reason() {
    assert_root();
    let (code, report) = check(Some("sched_switch"));
    eprintln!("{report}");
    assert_eq!(code, Some(1), "{report}");
    let line = line_of(&report, "probe sched_switch");
    assert!(line.starts_with("FAIL "), "{line}");
    assert!(
        line.contains("nodemeter_forced_failure:sched_switch"),
        "{line}"
    );
    // The other probes are unaffected.
    let line = line_of(&report, "probe process_events");
    assert!(line.starts_with("ok "), "{line}");
    assert!(report.contains("node NOT fully supported"), "{report}");
}
