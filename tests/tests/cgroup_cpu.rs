//! The first vertical slice on the real kernel: a busy process in a real cgroup, and the
//! agent's CPU counter for that cgroup against what the kernel reports.

use std::time::Duration;

use nodemeter_tests::agent::AgentProcess;
use nodemeter_tests::cgroup::TestCgroup;
use nodemeter_tests::require_root;
use nodemeter_tests::workload::Workload;

#[test]
fn cpu_usage_of_a_busy_cgroup_matches_the_kernel() {
    require_root!();
    let cg = TestCgroup::unified("cpu").expect("create test cgroup");
    let mut w = Workload::attach(
        cg.spawn_inside(&mut Workload::command(&["burn", "400"]))
            .expect("spawn"),
    );
    w.wait_done();
    let process_cpu = w.cpu_seconds();

    let agent = AgentProcess::start(&format!("cgroup:\n  interval: 1s\n  root: {}\nebpf:\n  enabled: false\n", cg.path));
    // The workload is blocked on stdin (or about to be): once the kernel's counter stops
    // moving, the agent's next read must equal it.
    let (reported, kernel_usage) = agent.wait_for(Duration::from_secs(10), |m| {
        let reported = m.value("container_cpu_usage_seconds_total", &[("id", &cg.path), ("cpu", "total")])?;
        let kernel = cg.stat("cpu.stat", "usage_usec")? as f64 / 1e6;
        ((reported - kernel).abs() < 1e-6).then_some((reported, kernel))
    });
    assert!(kernel_usage >= 0.35, "the workload burned {kernel_usage}s");
    // Consistent with the process's own accounting (10 ms ticks, plus exec start-up).
    assert!((reported - process_cpu).abs() < 0.03 + 0.05 * process_cpu, "agent {reported} vs process {process_cpu}");
    let m = agent.scrape();
    let user = m
        .value("container_cpu_user_seconds_total", &[("id", &cg.path)])
        .expect("user");
    let system = m
        .value("container_cpu_system_seconds_total", &[("id", &cg.path)])
        .expect("system");
    assert!(
        (user + system - kernel_usage).abs() < 0.02 + 0.05 * kernel_usage,
        "user {user} + system {system} vs {kernel_usage}"
    );
    w.finish();
}

#[test]
fn a_removed_cgroup_disappears_from_metrics() {
    require_root!();
    let cg = TestCgroup::unified("churn").expect("create test cgroup");
    let mut w = Workload::attach(
        cg.spawn_inside(&mut Workload::command(&["burn", "50"]))
            .expect("spawn"),
    );
    w.wait_done();
    let agent = AgentProcess::start(&format!(
        "cgroup:\n  interval: 1s\n  root: {}\nebpf:\n  enabled: false\n",
        cg.path
    ));
    agent.wait_for(Duration::from_secs(10), |m| {
        m.value("container_cpu_user_seconds_total", &[("id", &cg.path)])
    });
    w.finish();
    drop(cg);
    agent.wait_for(Duration::from_secs(10), |m| {
        m.find("container_cpu_user_seconds_total", &[])
            .is_empty()
            .then_some(())
    });
}
