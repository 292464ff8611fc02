//! The first vertical slice end to end: a real process in a real cgroup, the agent's eBPF
//! context-switch counters and cgroupfs CPU counters for that cgroup on one `/metrics`, joined
//! by cgroup id, against what the kernel reports. And degradation: without privileges, or with
//! a probe that fails, cgroup metrics are still served and the failure is visible.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use nodemeter_tests::agent::AgentProcess;
use nodemeter_tests::cgroup::TestCgroup;
use nodemeter_tests::require_root;
use nodemeter_tests::workload::Workload;

/// Switches a task may make before it has moved itself into the test cgroup (fork, the
/// write to cgroup.procs): /proc counts them, the cgroup's counters do not.
const PRE_JOIN_SWITCHES: u64 = 3;

fn config(root: &str) -> String {
    format!("cgroup:\n  interval: 1s\n  root: {root}\nebpf:\n  interval: 1s\n")
}

#[test]
fn context_switches_and_cpu_of_a_cgroup_appear_together_and_match_the_kernel() {
    require_root!();
    let cg = TestCgroup::unified("slice").expect("create test cgroup");
    let agent = AgentProcess::start(&config(&cg.path));
    agent.wait_for(Duration::from_secs(10), |m| {
        (m.value("nodemeter_probe_attached", &[("probe", "sched_switch")]) == Some(1.0))
            .then_some(())
    });

    let mut w = Workload::attach(
        cg.spawn_inside(&mut Workload::command(&["switch", "800"]))
            .expect("spawn"),
    );
    w.wait_done();
    // Let the workload reach its blocking read; from then on its counters are frozen.
    std::thread::sleep(Duration::from_millis(200));
    let (voluntary, involuntary) = w.context_switches();
    let kernel_cpu = cg.stat("cpu.stat", "usage_usec").expect("usage_usec") as f64 / 1e6;
    assert!(
        voluntary >= 100,
        "the workload slept only {voluntary} times"
    );

    let id = cg.path.as_str();
    let (v, i, cpu) = agent.wait_for(Duration::from_secs(10), |m| {
        let v = m.value(
            "nodemeter_container_context_switches_total",
            &[("id", id), ("kind", "voluntary")],
        )?;
        let i = m.value(
            "nodemeter_container_context_switches_total",
            &[("id", id), ("kind", "involuntary")],
        )?;
        let cpu = m.value(
            "container_cpu_usage_seconds_total",
            &[("id", id), ("cpu", "total")],
        )?;
        // Both sources must have read after the workload went quiet.
        (v as u64 + PRE_JOIN_SWITCHES >= voluntary && (cpu - kernel_cpu).abs() < 1e-6)
            .then_some((v as u64, i as u64, cpu))
    });
    eprintln!(
        "kernel: voluntary={voluntary} involuntary={involuntary} cpu={kernel_cpu}s; agent: {v} {i} {cpu}s"
    );
    for (kind, kernel_n, agent_n) in [("voluntary", voluntary, v), ("involuntary", involuntary, i)]
    {
        assert!(
            agent_n <= kernel_n && kernel_n - agent_n <= PRE_JOIN_SWITCHES,
            "{kind}: agent {agent_n}, /proc/PID/status {kernel_n}"
        );
    }
    let m = agent.scrape();
    assert_eq!(
        m.type_of("nodemeter_container_context_switches_total"),
        Some("counter")
    );
    assert!(
        m.value(
            "nodemeter_ebpf_program_runs_total",
            &[("probe", "sched_switch")]
        )
        .is_some_and(|n| n > 0.0)
    );
    assert_eq!(
        m.value("nodemeter_ebpf_map_overflows_total", &[]),
        Some(0.0)
    );
    w.finish();
    assert!(agent.terminate().success());
}

#[test]
fn network_and_tcp_families_of_a_cgroup_carry_its_identity() {
    require_root!();
    let cg = TestCgroup::unified("net").expect("create test cgroup");
    let agent = AgentProcess::start(&config(&cg.path));
    agent.wait_for(Duration::from_secs(10), |m| {
        (m.value("nodemeter_probe_attached", &[("probe", "network")]) == Some(1.0)
            && m.value("nodemeter_probe_attached", &[("probe", "tcp")]) == Some(1.0))
        .then_some(())
    });
    // One process of the cgroup talks to itself over loopback: 1 MiB each way round.
    let status = cg
        .spawn_inside(
            std::process::Command::new("/usr/bin/python3")
                .arg("-c")
                .arg(
                    "import socket\n\
                 l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n\
                 c = socket.create_connection(l.getsockname()); s, _ = l.accept()\n\
                 c.sendall(b'x' * (1 << 20)); c.shutdown(socket.SHUT_WR); n = 0\n\
                 while True:\n\
                 \x20   b = s.recv(1 << 16)\n\
                 \x20   if not b: break\n\
                 \x20   n += len(b)\n\
                 assert n == 1 << 20\n",
                ),
        )
        .expect("spawn")
        .wait()
        .expect("wait");
    assert!(status.success());
    let id = cg.path.as_str();
    let (tx, rx, connects, accepts) = agent.wait_for(Duration::from_secs(10), |m| {
        let tx = m.value(
            "nodemeter_container_network_transmit_bytes_total",
            &[("id", id)],
        )?;
        let rx = m.value(
            "nodemeter_container_network_receive_bytes_total",
            &[("id", id)],
        )?;
        let connects = m.value("nodemeter_container_tcp_connects_total", &[("id", id)])?;
        let accepts = m.value("nodemeter_container_tcp_accepts_total", &[("id", id)])?;
        (tx >= f64::from(1 << 20)).then_some((tx, rx, connects, accepts))
    });
    eprintln!("tx={tx} rx={rx} connects={connects} accepts={accepts}");
    assert!(rx >= f64::from(1 << 20), "received {rx}");
    assert_eq!((connects, accepts), (1.0, 1.0));
    let m = agent.scrape();
    for family in [
        "nodemeter_container_network_receive_bytes_total",
        "nodemeter_container_network_transmit_packets_total",
        "nodemeter_container_tcp_connect_failures_total",
        "nodemeter_container_tcp_retransmits_total",
    ] {
        assert_eq!(m.type_of(family), Some("counter"), "{family}");
    }
    assert_eq!(
        m.type_of("nodemeter_container_tcp_open_connections"),
        Some("gauge")
    );
    assert!(agent.terminate().success());
}

#[test]
fn without_privileges_cgroup_metrics_are_served_and_the_missing_capability_is_named() {
    require_root!();
    let cg = TestCgroup::unified("unpriv").expect("create test cgroup");
    let mut w = Workload::attach(
        cg.spawn_inside(&mut Workload::command(&["burn", "50"]))
            .expect("spawn"),
    );
    w.wait_done();
    // `nobody`, no capabilities: cgroupfs stays readable, eBPF does not load.
    let agent = AgentProcess::start_with(&config(&cg.path), |cmd| {
        cmd.uid(65534).gid(65534);
    });
    let m = agent.wait_for(Duration::from_secs(10), |m| {
        m.value("container_cpu_usage_seconds_total", &[("id", &cg.path)])
            .map(|_| ())?;
        Some(agent.scrape())
    });
    assert_eq!(
        m.value("nodemeter_probe_attached", &[("probe", "sched_switch")]),
        Some(0.0)
    );
    assert!(
        m.find("nodemeter_container_context_switches_total", &[])
            .is_empty()
    );
    let log = agent.log_text();
    assert!(log.contains("missing CAP_BPF and CAP_PERFMON"), "{log}");
    w.finish();
}

#[test]
fn a_probe_that_fails_to_attach_leaves_everything_else_running() {
    require_root!();
    let cg = TestCgroup::unified("forced").expect("create test cgroup");
    let mut w = Workload::attach(
        cg.spawn_inside(&mut Workload::command(&["burn", "50"]))
            .expect("spawn"),
    );
    w.wait_done();
    let agent = AgentProcess::start_with(&config(&cg.path), |cmd| {
        cmd.env("NODEMETER_EBPF_FORCE_FAIL", "sched_switch");
    });
    agent.wait_for(Duration::from_secs(10), |m| {
        m.value("container_cpu_usage_seconds_total", &[("id", &cg.path)])
    });
    let m = agent.scrape();
    assert_eq!(
        m.value("nodemeter_probe_attached", &[("probe", "sched_switch")]),
        Some(0.0)
    );
    assert!(
        agent.log_text().contains("probe not attached"),
        "{}",
        agent.log_text()
    );
    assert_eq!(agent.get("/readyz").map(|r| r.0), Some(200));
    w.finish();
}

#[test]
fn a_cgroup_created_between_cycles_is_named_by_the_kernel_event_not_the_next_walk() {
    require_root!();
    let node = TestCgroup::unified("events").expect("create test cgroup");
    // cgroupfs is read every 60 s: only the cgroup_mkdir event can make the inventory know
    // the new cgroup in time for the eBPF source's 1 s cycles.
    let agent = AgentProcess::start(&format!(
        "cgroup:\n  interval: 60s\n  rescan_interval: 10m\n  root: {}\nebpf:\n  interval: 1s\n",
        node.path
    ));
    agent.wait_for(Duration::from_secs(10), |m| {
        (m.value("nodemeter_probe_attached", &[("probe", "cgroup_events")]) == Some(1.0)
            && m.value("container_last_seen", &[("id", &node.path)])
                .is_some())
        .then_some(())
    });
    let log = agent.log_text();
    assert!(
        log.contains("container inventory follows cgroup events"),
        "{log}"
    );

    let pods = node.child("kubepods").expect("create kubepods");
    let mut w = Workload::attach(
        pods.spawn_inside(&mut Workload::command(&["switch", "200"]))
            .expect("spawn"),
    );
    w.wait_done();
    let id = pods.path.as_str();
    agent.wait_for(Duration::from_secs(15), |m| {
        m.value(
            "nodemeter_container_context_switches_total",
            &[("id", id), ("kind", "voluntary")],
        )
        .filter(|n| *n > 0.0)
    });
    // The cgroupfs families only follow at the next 60 s cycle: the walk, not a cycle, ran.
    assert!(
        agent
            .scrape()
            .value("container_last_seen", &[("id", id)])
            .is_none()
    );
    w.finish();
    drop(pods);
    assert!(agent.terminate().success());
}
