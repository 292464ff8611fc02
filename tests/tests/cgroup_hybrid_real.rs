//! The cgroup source on this host's real cgroups (v1 controllers plus the unified tree), with
//! real processes that burn CPU, allocate memory, write to disk, send traffic in their own
//! network namespace and get OOM-killed. Each family is checked against the kernel's own file
//! or counter, read right before and after the collection (the agent's value must lie between
//! them unless a tolerance is stated).
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "tests")]

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use nodemeter::identity::Inventory;
use nodemeter::sources::cgroup::{CgroupConfig, CgroupSource};
use nodemeter_tests::cgroups::{
    Layout, TestNode, container_id, is_root, kv, output, python, run, value,
};

const UID: &str = "3f2a1c9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b";
const MIB: f64 = 1024.0 * 1024.0;

fn within(what: &str, v: f64, lo: f64, hi: f64) {
    assert!(v >= lo && v <= hi, "{what}: {v} not in [{lo}, {hi}]");
}

fn source(node: &TestNode, inventory: &Inventory) -> CgroupSource {
    let config = CgroupConfig {
        root: node.root.clone(),
        ..Default::default()
    };
    CgroupSource::new(config, node.hierarchies(), inventory.clone(), "test-node")
}

fn netns_counter(ns: &str, counter: &str) -> f64 {
    output(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "cat",
            &format!("/sys/class/net/eth0/statistics/{counter}"),
        ],
    )
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn a_pod_on_real_v1_cgroups_matches_the_kernels_counters() {
    if !is_root() {
        println!("skipped: needs root");
        return;
    }
    let mut node = TestNode::new("nm-hybrid", Layout::Hybrid);
    let pod = format!("/kubepods/burstable/pod{UID}");
    let (sandbox, app, oom) = (
        format!("{pod}/{}", container_id(1)),
        format!("{pod}/{}", container_id(2)),
        format!("{pod}/{}", container_id(3)),
    );
    for p in [&sandbox, &app, &oom] {
        node.mkdir(p);
    }
    // Limits: a CPU quota and a memory limit on the app, a tight memory limit on `oom`.
    node.write("cpu", &app, "cpu.cfs_quota_us", "50000");
    node.write("memory", &app, "memory.limit_in_bytes", "268435456");
    node.write("memory", &oom, "memory.limit_in_bytes", "16777216");

    // The disk our temp files live on; a no-op throttle rule makes v1 count its I/O.
    let tmp = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let dev = std::fs::metadata(tmp.path()).unwrap().dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    let whole = format!("{maj}:{min}");
    let limit = format!("{whole} 1099511627776");
    node.write("blkio", &app, "blkio.throttle.write_bps_device", &limit);
    node.write("blkio", &app, "blkio.throttle.read_bps_device", &limit);

    // Sandbox: a `pause` process in its own network namespace with a veth pair.
    let ns = format!("nmtest{}", std::process::id());
    let host_addr = node.netns_with_veth(&ns, 7);
    let pause = tmp.path().join("pause");
    std::fs::copy("/bin/sleep", &pause).unwrap();
    node.spawn(
        &sandbox,
        Some(&ns),
        &format!("exec '{}' 300", pause.display()),
    );

    // App: one process holding 64 MiB, one burning CPU, one dd writing 16 MiB with O_DIRECT.
    let py = python();
    node.spawn(
        &app,
        None,
        &format!("exec {py} -c 'import time\nb=bytearray(64<<20)\nfor i in range(0,len(b),4096): b[i]=1\ntime.sleep(300)'"),
    );
    node.spawn(&app, None, "while :; do :; done");
    let out = tmp.path().join("dd.out");
    node.spawn(
        &app,
        None,
        &format!(
            "dd if=/dev/zero of='{}' bs=1M count=16 oflag=direct 2>/dev/null; exec sleep 300",
            out.display()
        ),
    );
    // OOM: allocate past the limit and get killed.
    node.spawn(
        &oom,
        None,
        &format!("exec {py} -c 'b=bytearray(64<<20)\nfor i in range(0,len(b),4096): b[i]=1'"),
    );
    // Traffic from inside the pod's namespace to the host end (which answers with ICMP).
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            &py,
            "-c",
            &format!(
                "import socket\ns=socket.socket(2,2)\nfor _ in range(200): s.sendto(b'x'*1000,('{host_addr}',9))"
            ),
        ],
    );
    // Let the memory settle, dd finish and the OOM kill happen.
    for _ in 0..100 {
        let oom_kills = kv(&node.read("memory", &oom, "memory.oom_control"), "oom_kill");
        let written = node.read("blkio", &app, "blkio.throttle.io_service_bytes_recursive");
        if oom_kills > 0 && written.contains(&format!("{whole} Write 16777216")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));

    let (pod_id, sandbox_id, app_id, oom_id) = (
        node.id(&pod),
        node.id(&sandbox),
        node.id(&app),
        node.id(&oom),
    );
    let inventory = Inventory::new();
    let src = source(&node, &inventory);
    let cpu_before = node
        .read("cpuacct", &app, "cpuacct.usage")
        .trim()
        .parse::<f64>()
        .unwrap()
        / 1e9;
    let stat_before = node.read("cpuacct", &app, "cpuacct.stat");
    let psi_before = psi_some(&node.read("unified", &app, "cpu.pressure"));
    let periods_before = kv(&node.read("cpu", &app, "cpu.stat"), "nr_periods") as f64;
    let rx_before = netns_counter(&ns, "rx_bytes");
    let tx_before = netns_counter(&ns, "tx_bytes");
    let batch = src.collect_now(1_700_000_000_000);
    let cpu_after = node
        .read("cpuacct", &app, "cpuacct.usage")
        .trim()
        .parse::<f64>()
        .unwrap()
        / 1e9;
    let stat_after = node.read("cpuacct", &app, "cpuacct.stat");
    let psi_after = psi_some(&node.read("unified", &app, "cpu.pressure"));
    let periods_after = kv(&node.read("cpu", &app, "cpu.stat"), "nr_periods") as f64;
    let rx_after = netns_counter(&ns, "rx_bytes");
    let tx_after = netns_counter(&ns, "tx_bytes");

    // Identity: every level of the pod is tracked, named from the path.
    let ids: Vec<String> = inventory.entries().iter().map(|e| e.path.clone()).collect();
    for p in [
        "/",
        "/kubepods",
        "/kubepods/burstable",
        &pod,
        &sandbox,
        &app,
        &oom,
    ] {
        let id = node.id(p);
        assert!(ids.contains(&id), "{id} not tracked: {ids:?}");
    }
    let a = [("id", app_id.as_str())];
    let v = |name: &str, extra: &[(&str, &str)]| {
        let mut l = a.to_vec();
        l.extend_from_slice(extra);
        value(&batch, name, &l).unwrap_or_else(|| panic!("no {name}{l:?}"))
    };
    assert_eq!(
        batch
            .samples
            .iter()
            .find(|s| s.labels.get("id") == Some(&app_id))
            .unwrap()
            .labels
            .get("name"),
        Some(container_id(2).as_str())
    );
    assert_eq!(
        value(&batch, "container_cpu_usage_seconds_total", &a[..]).map(|_| ()),
        Some(())
    );
    for s in &batch.samples {
        assert_eq!(s.labels.get("job"), Some("kubelet"), "{}", s.labels);
        assert_eq!(s.labels.get("node"), Some("test-node"));
        assert_eq!(s.labels.get("metrics_path"), Some("/metrics/cadvisor"));
        assert_eq!(s.timestamp_ms, 1_700_000_000_000);
    }

    // cpu: exact bracketing by the kernel's counters.
    within(
        "usage",
        v("container_cpu_usage_seconds_total", &[("cpu", "total")]),
        cpu_before,
        cpu_after,
    );
    within(
        "user",
        v("container_cpu_user_seconds_total", &[]),
        kv(&stat_before, "user") as f64 / 100.0,
        kv(&stat_after, "user") as f64 / 100.0,
    );
    within(
        "system",
        v("container_cpu_system_seconds_total", &[]),
        kv(&stat_before, "system") as f64 / 100.0,
        kv(&stat_after, "system") as f64 / 100.0,
    );
    assert!(cpu_after > 0.05, "the burner ran");
    within(
        "cfs periods",
        v("container_cpu_cfs_periods_total", &[]),
        periods_before,
        periods_after,
    );
    v("container_cpu_cfs_throttled_periods_total", &[]);
    v("container_cpu_cfs_throttled_seconds_total", &[]);
    assert_eq!(
        v("container_cpu_cfs_burst_periods_total", &[]),
        0.0,
        "cAdvisor's v1 constant"
    );
    let s = [("id", sandbox_id.as_str())];
    assert_eq!(
        value(&batch, "container_cpu_cfs_periods_total", &s),
        None,
        "no quota, no CFS series"
    );

    // spec
    assert_eq!(v("container_spec_cpu_quota", &[]), 50000.0);
    assert_eq!(v("container_spec_cpu_period", &[]), 100000.0);
    assert_eq!(v("container_spec_cpu_shares", &[]), 1024.0);
    assert_eq!(v("container_spec_memory_limit_bytes", &[]), 268435456.0);
    assert_eq!(value(&batch, "container_spec_cpu_quota", &s), None);
    assert_eq!(
        value(&batch, "container_spec_memory_limit_bytes", &s),
        Some(0.0),
        "unlimited is 0"
    );
    assert_eq!(
        value(&batch, "container_spec_memory_swap_limit_bytes", &s),
        Some(0.0)
    );

    // memory: stable after the allocation; 2 MiB tolerance for the interpreter's churn.
    let mstat = node.read("memory", &app, "memory.stat");
    let usage: f64 = node
        .read("memory", &app, "memory.usage_in_bytes")
        .trim()
        .parse()
        .unwrap();
    within(
        "usage",
        v("container_memory_usage_bytes", &[]),
        usage - 2.0 * MIB,
        usage + 2.0 * MIB,
    );
    let ws = usage - kv(&mstat, "total_inactive_file") as f64;
    within(
        "working set",
        v("container_memory_working_set_bytes", &[]),
        ws - 2.0 * MIB,
        ws + 2.0 * MIB,
    );
    let rss = kv(&mstat, "total_rss") as f64;
    within(
        "rss",
        v("container_memory_rss", &[]),
        rss - 2.0 * MIB,
        rss + 2.0 * MIB,
    );
    assert!(rss >= 64.0 * MIB, "the allocation is resident: {rss}");
    let cache = kv(&mstat, "total_cache") as f64;
    within(
        "cache",
        v("container_memory_cache", &[]),
        cache - 2.0 * MIB,
        cache + 2.0 * MIB,
    );
    let pgfault = kv(&mstat, "pgfault") as f64;
    let pf = v(
        "container_memory_failures_total",
        &[("failure_type", "pgfault"), ("scope", "container")],
    );
    within("pgfault", pf, pgfault * 0.9, pgfault);
    assert_eq!(
        pf,
        v(
            "container_memory_failures_total",
            &[("failure_type", "pgfault"), ("scope", "hierarchy")]
        )
    );
    assert_eq!(v("container_memory_swap", &[]), 0.0);
    let max_usage: f64 = node
        .read("memory", &app, "memory.max_usage_in_bytes")
        .trim()
        .parse()
        .unwrap();
    within(
        "max usage",
        v("container_memory_max_usage_bytes", &[]),
        max_usage - 2.0 * MIB,
        max_usage,
    );
    v("container_memory_kernel_usage", &[]);
    v("container_memory_failcnt", &[]);

    // OOM kill counted from memory.oom_control.
    let oom_kills = kv(&node.read("memory", &oom, "memory.oom_control"), "oom_kill") as f64;
    assert!(oom_kills >= 1.0, "the allocation was OOM-killed");
    assert_eq!(
        value(
            &batch,
            "container_oom_events_total",
            &[("id", oom_id.as_str())]
        ),
        Some(oom_kills)
    );
    assert_eq!(v("container_oom_events_total", &[]), 0.0);

    // diskIO: the throttle layer's counters for the disk, named /dev/<name>.
    let name = std::fs::read_link(format!("/sys/dev/block/{whole}")).unwrap();
    let device = format!("/dev/{}", name.file_name().unwrap().to_str().unwrap());
    let bytes = node.read("blkio", &app, "blkio.throttle.io_service_bytes_recursive");
    let ops = node.read("blkio", &app, "blkio.throttle.io_serviced_recursive");
    let kernel = |text: &str, op: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{whole} {op} ")))
            .unwrap()
            .parse()
            .unwrap()
    };
    let d = [("device", device.as_str())];
    assert_eq!(
        v("container_fs_writes_bytes_total", &d),
        kernel(&bytes, "Write")
    );
    assert!(kernel(&bytes, "Write") >= 16.0 * MIB);
    assert_eq!(v("container_fs_writes_total", &d), kernel(&ops, "Write"));
    assert_eq!(
        v("container_fs_reads_bytes_total", &d),
        kernel(&bytes, "Read")
    );
    assert_eq!(v("container_fs_reads_total", &d), kernel(&ops, "Read"));
    for op in ["Read", "Write", "Sync", "Async", "Discard", "Total"] {
        assert_eq!(
            v(
                "container_blkio_device_usage_total",
                &[
                    ("device", &device),
                    ("major", &maj.to_string()),
                    ("minor", &min.to_string()),
                    ("operation", op)
                ]
            ),
            kernel(&bytes, op)
        );
    }

    // network: only on the sandbox row, from the pod's namespace.
    let rx = value(
        &batch,
        "container_network_receive_bytes_total",
        &[("id", sandbox_id.as_str()), ("interface", "eth0")],
    )
    .unwrap();
    let tx = value(
        &batch,
        "container_network_transmit_bytes_total",
        &[("id", sandbox_id.as_str()), ("interface", "eth0")],
    )
    .unwrap();
    within("rx bytes", rx, rx_before, rx_after);
    within("tx bytes", tx, tx_before, tx_after);
    assert!(tx >= 200_000.0, "the datagrams went out: {tx}");
    assert!(
        value(
            &batch,
            "container_network_transmit_packets_total",
            &[("id", sandbox_id.as_str()), ("interface", "eth0")]
        )
        .unwrap()
            >= 200.0
    );
    for other in [&app_id, &pod_id, &oom_id] {
        assert_eq!(
            value(
                &batch,
                "container_network_receive_bytes_total",
                &[("id", other.as_str())]
            ),
            None,
            "{other}"
        );
    }
    assert_eq!(
        value(
            &batch,
            "container_network_receive_bytes_total",
            &[("id", sandbox_id.as_str()), ("interface", "lo")]
        ),
        None
    );

    // process
    let pids: Vec<u32> = node
        .read("cpu", &app, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(v("container_processes", &[]), pids.len() as f64);
    assert_eq!(pids.len(), 3);
    let fds: usize = pids
        .iter()
        .map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).unwrap().count())
        .sum();
    assert_eq!(v("container_file_descriptors", &[]), fds as f64);
    assert_eq!(v("container_sockets", &[]), 0.0);
    let threads: f64 = node
        .read("pids", &app, "pids.current")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(v("container_threads", &[]), threads);
    assert_eq!(v("container_threads_max", &[]), 0.0, "pids.max is max");
    let min_pid = pids.iter().min().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{min_pid}/limits")).unwrap();
    let soft: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()["Max open files".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        v("container_ulimits_soft", &[("ulimit", "max_open_files")]),
        soft
    );

    // pressure from the unified tree's PSI files (µs → s).
    within(
        "cpu waiting",
        v("container_pressure_cpu_waiting_seconds_total", &[]),
        psi_before / 1e6,
        psi_after / 1e6,
    );

    // start time: the cgroup directories' creation.
    let mtime = std::fs::metadata(node.dir("cpu", &app)).unwrap().mtime() as f64;
    within(
        "start time",
        v("container_start_time_seconds", &[]),
        mtime - 1.0,
        mtime + 1.0,
    );
    assert_eq!(v("container_last_seen", &[]), 1_700_000_000.0);
    assert_eq!(v("container_tasks_state", &[("state", "running")]), 0.0);

    // The root row: host interfaces from PID 1's namespace, filesystems by statfs.
    assert!(
        value(
            &batch,
            "container_memory_usage_bytes",
            &[("id", node.root.as_str())]
        )
        .is_some()
    );
    assert!(
        value(
            &batch,
            "container_fs_limit_bytes",
            &[("id", node.root.as_str())]
        )
        .is_some()
    );
    assert!(value(&batch, "machine_cpu_cores", &[]).unwrap() >= 1.0);
    assert_eq!(
        value(
            &batch,
            "container_fs_usage_bytes",
            &[("id", app_id.as_str())]
        ),
        None,
        "no walks"
    );
}

fn psi_some(text: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with("some"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("total=")))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn containers_appear_within_one_cycle_and_removed_ones_go_stale() {
    if !is_root() {
        println!("skipped: needs root");
        return;
    }
    let mut node = TestNode::new("nm-churn", Layout::Hybrid);
    let pod = format!("/kubepods/pod{UID}");
    node.mkdir(&pod);
    let inventory = Inventory::new();
    let src = source(&node, &inventory);
    let b1 = src.collect_now(1000);
    let c = format!("{pod}/{}", container_id(9));
    let c_id = node.id(&c);
    assert_eq!(
        value(
            &b1,
            "container_memory_usage_bytes",
            &[("id", c_id.as_str())]
        ),
        None
    );
    node.mkdir(&c);
    let b2 = src.collect_now(2000);
    assert!(
        value(
            &b2,
            "container_memory_usage_bytes",
            &[("id", c_id.as_str())]
        )
        .is_some(),
        "new cgroup in the next cycle"
    );
    let before = b2
        .samples
        .iter()
        .filter(|s| s.labels.get("id") == Some(&c_id))
        .count();
    // Remove it in every hierarchy.
    for ctrl in node.mounts.keys() {
        std::fs::remove_dir(node.dir(ctrl, &c)).unwrap();
    }
    let b3 = src.collect_now(3000);
    let stale: Vec<_> = b3
        .samples
        .iter()
        .filter(|s| s.labels.get("id") == Some(&c_id))
        .collect();
    assert_eq!(
        stale.len(),
        before,
        "every series of the removed cgroup gets one stale marker"
    );
    assert!(
        stale
            .iter()
            .all(|s| nodemeter::model::is_stale_nan(s.value) && s.timestamp_ms == 3000)
    );
    let b4 = src.collect_now(4000);
    assert!(b4.samples.iter().all(|s| s.labels.get("id") != Some(&c_id)));
}

#[test]
fn cgroups_vanishing_while_being_read_are_skipped_silently() {
    if !is_root() {
        println!("skipped: needs root");
        return;
    }
    let mut node = TestNode::new("nm-vanish", Layout::Hybrid);
    let pod = format!("/kubepods/pod{UID}");
    node.mkdir(&pod);
    let inventory = Inventory::new();
    let src = source(&node, &inventory);
    let dirs: Vec<std::path::PathBuf> = node.mounts.keys().map(|c| node.dir(c, &pod)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = container_id((n % 50) as u8 + 100);
                for d in &dirs {
                    let _ = std::fs::create_dir(d.join(&name));
                }
                for d in &dirs {
                    let _ = std::fs::remove_dir(d.join(&name));
                }
                n += 1;
            }
        })
    };
    let pod_id = node.id(&pod);
    for i in 0..200 {
        let b = src.collect_now(i);
        assert!(
            value(
                &b,
                "container_memory_usage_bytes",
                &[("id", pod_id.as_str())]
            )
            .is_some()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
}
