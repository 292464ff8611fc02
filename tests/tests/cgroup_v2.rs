//! The cgroup source on cgroup v2: real cgroups in this host's unified tree (which carries no
//! controllers here, so CPU accounting, PSI and processes are real), and fixture trees in the
//! kernel's v2 file formats for the families only a v2 controller tree has.
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "tests")]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use nodemeter::config::Duration as ConfigDuration;
use nodemeter::identity::{Hierarchies, Inventory};
use nodemeter::sources::cgroup::{CgroupConfig, CgroupSource, MetricSets};
use nodemeter_tests::cgroups::{Layout, TestNode, container_id, is_root, kv, value};

const UID: &str = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a";

#[test]
fn real_unified_cgroups_cpu_pressure_and_processes() {
    if !is_root() {
        println!("skipped: needs root");
        return;
    }
    let mut node = TestNode::new("nm-v2", Layout::UnifiedOnly);
    let c = format!("/kubepods/besteffort/pod{UID}/{}", container_id(4));
    node.mkdir(&c);
    node.spawn(&c, None, "while :; do :; done");
    node.spawn(&c, None, "exec sleep 300");
    // Until the burner has had 0.1 s of CPU (on a loaded machine that can take a while).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while kv(&node.read("unified", &c, "cpu.stat"), "usage_usec") <= 100_000 {
        assert!(std::time::Instant::now() < deadline, "the burner never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    let inventory = Inventory::new();
    let src = CgroupSource::new(
        CgroupConfig {
            root: node.root.clone(),
            ..Default::default()
        },
        node.hierarchies(),
        inventory.clone(),
        "n",
    );
    let before = node.read("unified", &c, "cpu.stat");
    let psi_before = node.read("unified", &c, "cpu.pressure");
    let b = src.collect_now(5000);
    let after = node.read("unified", &c, "cpu.stat");
    let psi_after = node.read("unified", &c, "cpu.pressure");
    let c_id = node.id(&c);
    let id = [("id", c_id.as_str())];
    let v = |name: &str, extra: &[(&str, &str)]| {
        let mut l = id.to_vec();
        l.extend_from_slice(extra);
        value(&b, name, &l).unwrap_or_else(|| panic!("no {name}{l:?}"))
    };
    let within = |what: &str, v: f64, lo: f64, hi: f64| {
        assert!(v >= lo && v <= hi, "{what}: {v} not in [{lo}, {hi}]")
    };
    for (fam, key) in [
        ("container_cpu_usage_seconds_total", "usage_usec"),
        ("container_cpu_user_seconds_total", "user_usec"),
        ("container_cpu_system_seconds_total", "system_usec"),
    ] {
        let extra: &[(&str, &str)] = if key == "usage_usec" {
            &[("cpu", "total")]
        } else {
            &[]
        };
        within(
            fam,
            v(fam, extra),
            kv(&before, key) as f64 / 1e6,
            kv(&after, key) as f64 / 1e6,
        );
    }
    assert!(kv(&after, "usage_usec") > 100_000, "the burner ran");
    let total = |t: &str, which: &str| -> f64 {
        t.lines()
            .find(|l| l.starts_with(which))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("total=")))
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1e6
    };
    within(
        "cpu waiting",
        v("container_pressure_cpu_waiting_seconds_total", &[]),
        total(&psi_before, "some"),
        total(&psi_after, "some"),
    );
    within(
        "cpu stalled",
        v("container_pressure_cpu_stalled_seconds_total", &[]),
        total(&psi_before, "full"),
        total(&psi_after, "full"),
    );
    v("container_pressure_memory_waiting_seconds_total", &[]);
    v("container_pressure_io_waiting_seconds_total", &[]);
    assert_eq!(v("container_processes", &[]), 2.0);
    // No memory controller in this tree: no memory series rather than invented zeros.
    assert_eq!(value(&b, "container_memory_usage_bytes", &id), None);
    assert_eq!(value(&b, "container_spec_cpu_quota", &id), None);
    // v2 start time: the mtime of cgroup.events.
    let mtime = std::fs::metadata(node.dir("unified", &c).join("cgroup.events")).unwrap();
    let mtime = std::os::unix::fs::MetadataExt::mtime(&mtime) as f64;
    within(
        "start",
        v("container_start_time_seconds", &[]),
        mtime - 1.0,
        mtime + 1.0,
    );
    // The inventory knows the cgroup by its v2 id (what eBPF sees).
    let ino =
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(node.dir("unified", &c)).unwrap());
    assert_eq!(inventory.by_v2_id(ino).unwrap().path, c_id);
}

/// Writes `files` (name, content) into cgroup `path` of a fixture tree.
fn write(root: &Path, path: &str, files: &[(&str, &str)]) {
    let dir = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

#[test]
fn v2_only_families_from_a_fixture_tree_in_the_kernels_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let c = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{}.scope",
        UID.replace('-', "_"),
        container_id(5)
    );
    let me = std::process::id().to_string();
    write(
        root,
        "/",
        &[
            (
                "cpu.stat",
                "usage_usec 900000000\nuser_usec 600000000\nsystem_usec 300000000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
            ),
            (
                "memory.stat",
                "anon 1073741824\nfile 2147483648\nfile_mapped 104857600\ninactive_file 1073741824\nactive_file 1073741824\npgfault 1000\npgmajfault 10\n",
            ),
            (
                "io.stat",
                "254:0 rbytes=1000 wbytes=2000 rios=10 wios=20 dbytes=0 dios=0\n",
            ),
            ("cgroup.procs", ""),
        ],
    );
    write(
        root,
        &c,
        &[
            ("cgroup.procs", &format!("{me}\n")),
            ("cgroup.events", "populated 1\nfrozen 0\n"),
            (
                "cpu.stat",
                "usage_usec 12500000\nuser_usec 10000000\nsystem_usec 2500000\ncore_sched.force_idle_usec 0\nnr_periods 500\nnr_throttled 25\nthrottled_usec 1250000\nnr_bursts 3\nburst_usec 40000\n",
            ),
            ("cpu.max", "150000 100000\n"),
            ("cpu.weight", "79\n"),
            (
                "cpu.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
            ),
            (
                "memory.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=300000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=200000\n",
            ),
            (
                "io.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=50000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=40000\n",
            ),
            ("memory.current", "314572800\n"),
            ("memory.peak", "419430400\n"),
            ("memory.max", "536870912\n"),
            ("memory.min", "104857600\n"),
            ("memory.swap.current", "8192\n"),
            ("memory.swap.max", "max\n"),
            (
                "memory.events",
                "low 0\nhigh 7\nmax 11\noom 2\noom_kill 2\noom_group_kill 0\n",
            ),
            (
                "memory.stat",
                "anon 209715200\nfile 104857600\nkernel 8388608\nkernel_stack 131072\npagetables 262144\nsock 0\nshmem 0\nfile_mapped 52428800\nfile_dirty 12288\nfile_writeback 4096\nswapcached 0\nanon_thp 0\ninactive_anon 209715200\nactive_anon 0\ninactive_file 62914560\nactive_file 41943040\nunevictable 0\nslab_reclaimable 0\nslab_unreclaimable 0\nslab 0\nworkingset_refault_anon 5\nworkingset_refault_file 42\nworkingset_activate_anon 0\nworkingset_activate_file 0\nworkingset_restore_anon 0\nworkingset_restore_file 0\nworkingset_nodereclaim 0\npgscan 300\npgsteal 250\npgscan_kswapd 0\npgscan_direct 300\npgsteal_kswapd 0\npgsteal_direct 250\npgfault 77777\npgmajfault 33\npgrefill 0\npgactivate 0\npgdeactivate 0\npglazyfree 0\npglazyfreed 0\nthp_fault_alloc 0\nthp_collapse_alloc 0\n",
            ),
            (
                "io.stat",
                "254:0 rbytes=4096000 wbytes=8192000 rios=100 wios=200 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=2500000 cost.wait=100000 cost.indebt=0 cost.indelay=30000\n",
            ),
            ("pids.current", "17\n"),
            ("pids.max", "4096\n"),
            ("hugetlb.2MB.current", "4194304\n"),
            ("hugetlb.2MB.events", "max 3\n"),
        ],
    );
    let h = Hierarchies {
        unified: Some(root.to_path_buf()),
        v1: BTreeMap::new(),
    };
    let config = CgroupConfig {
        metrics: MetricSets {
            memory_events: true,
            memory_reclaim: true,
            hugetlb: true,
            creation_time: true,
            ..Default::default()
        },
        extra_cgroups: vec![],
        interval: ConfigDuration::from_secs(10),
        ..Default::default()
    };
    let src = CgroupSource::new(config, h, Inventory::new(), "n");
    let b = src.collect_now(7000);
    let id = [("id", c.as_str())];
    let v = |name: &str, extra: &[(&str, &str)]| {
        let mut l = id.to_vec();
        l.extend_from_slice(extra);
        value(&b, name, &l).unwrap_or_else(|| panic!("no {name}{l:?}"))
    };
    // cpu.stat, cpu.max, cpu.weight
    assert_eq!(
        v("container_cpu_usage_seconds_total", &[("cpu", "total")]),
        12.5
    );
    assert_eq!(v("container_cpu_user_seconds_total", &[]), 10.0);
    assert_eq!(v("container_cpu_system_seconds_total", &[]), 2.5);
    assert_eq!(v("container_cpu_cfs_periods_total", &[]), 500.0);
    assert_eq!(v("container_cpu_cfs_throttled_periods_total", &[]), 25.0);
    assert_eq!(v("container_cpu_cfs_throttled_seconds_total", &[]), 1.25);
    assert_eq!(v("container_cpu_cfs_burst_periods_total", &[]), 3.0);
    assert_eq!(v("container_cpu_cfs_burst_seconds_total", &[]), 0.04);
    assert_eq!(v("container_spec_cpu_quota", &[]), 150000.0);
    assert_eq!(v("container_spec_cpu_period", &[]), 100000.0);
    assert_eq!(
        v("container_spec_cpu_shares", &[]),
        2046.0,
        "2 + (79-1)*262142/9999 in integers"
    );
    // memory.*
    assert_eq!(v("container_memory_usage_bytes", &[]), 314572800.0);
    assert_eq!(v("container_memory_max_usage_bytes", &[]), 419430400.0);
    assert_eq!(
        v("container_memory_working_set_bytes", &[]),
        314572800.0 - 62914560.0
    );
    assert_eq!(v("container_memory_rss", &[]), 209715200.0);
    assert_eq!(v("container_memory_cache", &[]), 104857600.0);
    assert_eq!(v("container_memory_mapped_file", &[]), 52428800.0);
    assert_eq!(v("container_memory_swap", &[]), 8192.0);
    assert_eq!(
        v("container_memory_kernel_usage", &[]),
        0.0,
        "cAdvisor's v2 constant"
    );
    assert_eq!(
        v("container_memory_failcnt", &[]),
        0.0,
        "cAdvisor's v2 constant"
    );
    assert_eq!(
        v("container_memory_total_active_file_bytes", &[]),
        41943040.0
    );
    assert_eq!(
        v("container_memory_total_inactive_file_bytes", &[]),
        62914560.0
    );
    for scope in ["container", "hierarchy"] {
        assert_eq!(
            v(
                "container_memory_failures_total",
                &[("failure_type", "pgfault"), ("scope", scope)]
            ),
            77777.0
        );
        assert_eq!(
            v(
                "container_memory_failures_total",
                &[("failure_type", "pgmajfault"), ("scope", scope)]
            ),
            33.0
        );
    }
    assert_eq!(v("container_memory_events_high_total", &[]), 7.0);
    assert_eq!(v("container_memory_events_max_total", &[]), 11.0);
    assert_eq!(v("container_memory_file_dirty_bytes", &[]), 12288.0);
    assert_eq!(v("container_memory_file_writeback_bytes", &[]), 4096.0);
    assert_eq!(v("container_memory_pgscan_total", &[]), 300.0);
    assert_eq!(v("container_memory_pgsteal_total", &[]), 250.0);
    assert_eq!(
        v("container_memory_workingset_refault_file_total", &[]),
        42.0
    );
    assert_eq!(
        v("container_memory_workingset_refault_anon_total", &[]),
        5.0
    );
    assert_eq!(v("container_oom_events_total", &[]), 2.0);
    assert_eq!(v("container_spec_memory_limit_bytes", &[]), 536870912.0);
    assert_eq!(
        v("container_spec_memory_reservation_limit_bytes", &[]),
        104857600.0
    );
    assert_eq!(
        v("container_spec_memory_swap_limit_bytes", &[]),
        0.0,
        "max is 0"
    );
    // io.stat: bytes and ops per device, Read/Write operations only, iocost in seconds.
    let dev = std::fs::read_link("/sys/dev/block/254:0")
        .ok()
        .and_then(|p| {
            p.file_name()
                .map(|n| format!("/dev/{}", n.to_string_lossy()))
        })
        .unwrap_or_default();
    let d: Vec<(&str, &str)> = if dev.is_empty() {
        vec![]
    } else {
        vec![("device", dev.as_str())]
    };
    assert_eq!(v("container_fs_reads_bytes_total", &d), 4096000.0);
    assert_eq!(v("container_fs_writes_bytes_total", &d), 8192000.0);
    assert_eq!(v("container_fs_reads_total", &d), 100.0);
    assert_eq!(v("container_fs_writes_total", &d), 200.0);
    assert_eq!(v("container_fs_io_cost_usage_seconds_total", &d), 2.5);
    assert_eq!(v("container_fs_io_cost_wait_seconds_total", &d), 0.1);
    assert_eq!(v("container_fs_io_cost_indebt_seconds_total", &d), 0.0);
    assert_eq!(v("container_fs_io_cost_indelay_seconds_total", &d), 0.03);
    assert_eq!(
        v(
            "container_blkio_device_usage_total",
            &[("major", "254"), ("minor", "0"), ("operation", "Write")]
        ),
        8192000.0
    );
    assert_eq!(
        value(
            &b,
            "container_blkio_device_usage_total",
            &[("id", c.as_str()), ("operation", "Sync")]
        ),
        None,
        "v2 has Read and Write only"
    );
    assert_eq!(
        value(&b, "container_fs_sector_reads_total", &id),
        None,
        "no v2 cgroup source"
    );
    // PSI
    assert_eq!(v("container_pressure_cpu_waiting_seconds_total", &[]), 2.0);
    assert_eq!(v("container_pressure_cpu_stalled_seconds_total", &[]), 1.0);
    assert_eq!(
        v("container_pressure_memory_waiting_seconds_total", &[]),
        0.3
    );
    assert_eq!(
        v("container_pressure_memory_stalled_seconds_total", &[]),
        0.2
    );
    assert_eq!(v("container_pressure_io_waiting_seconds_total", &[]), 0.05);
    assert_eq!(v("container_pressure_io_stalled_seconds_total", &[]), 0.04);
    // pids, hugetlb
    assert_eq!(v("container_threads", &[]), 17.0);
    assert_eq!(v("container_threads_max", &[]), 4096.0);
    assert_eq!(v("container_processes", &[]), 1.0);
    assert_eq!(
        v("container_hugetlb_usage_bytes", &[("pagesize", "2MB")]),
        4194304.0
    );
    assert_eq!(v("container_hugetlb_failcnt", &[("pagesize", "2MB")]), 3.0);
    // start and creation time from cgroup.events' mtime.
    assert_eq!(
        v("container_start_time_seconds", &[]),
        v("container_creation_time_seconds", &[])
    );
    // The v2 root: usage is anon + file, max usage 0, limits from /proc/meminfo.
    let r = [("id", "/")];
    assert_eq!(
        value(&b, "container_memory_usage_bytes", &r),
        Some(3221225472.0)
    );
    assert_eq!(
        value(&b, "container_memory_working_set_bytes", &r),
        Some(2147483648.0)
    );
    assert_eq!(value(&b, "container_memory_max_usage_bytes", &r), Some(0.0));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let mem_total = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse::<f64>()
        .unwrap()
        * 1024.0;
    assert_eq!(
        value(&b, "container_spec_memory_limit_bytes", &r),
        Some(mem_total)
    );
    assert_eq!(
        value(&b, "container_cpu_usage_seconds_total", &r),
        Some(900.0)
    );
}

#[test]
fn per_set_intervals_keep_series_alive_between_collections() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "/",
        &[
            (
                "cpu.stat",
                "usage_usec 1000\nuser_usec 1000\nsystem_usec 0\n",
            ),
            ("cgroup.procs", ""),
        ],
    );
    let h = Hierarchies {
        unified: Some(root.to_path_buf()),
        v1: BTreeMap::new(),
    };
    let config = CgroupConfig {
        intervals: BTreeMap::from([("process".to_string(), ConfigDuration::from_secs(3600))]),
        extra_cgroups: vec![],
        ..Default::default()
    };
    let src = CgroupSource::new(config, h, Inventory::new(), "n");
    let b1 = src.collect_now(1000);
    assert!(value(&b1, "container_processes", &[("id", "/")]).is_some());
    let b2 = src.collect_now(2000);
    assert_eq!(
        value(&b2, "container_processes", &[("id", "/")]),
        None,
        "not due"
    );
    assert!(
        b2.samples
            .iter()
            .all(|s| !nodemeter::model::is_stale_nan(s.value)),
        "a set that is not due does not go stale"
    );
    assert!(value(&b2, "container_cpu_usage_seconds_total", &[("id", "/")]).is_some());
}

#[test]
fn the_kube_prometheus_stack_preset_drops_what_the_chart_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        root,
        "/",
        &[
            (
                "cpu.stat",
                "usage_usec 1000\nuser_usec 1000\nsystem_usec 0\n",
            ),
            ("cgroup.procs", ""),
        ],
    );
    let h = Hierarchies {
        unified: Some(root.to_path_buf()),
        v1: BTreeMap::new(),
    };
    let config: CgroupConfig = serde_yaml_from(
        "extra_cgroups: []\nrelabel_preset: kube-prometheus-stack\nmetric_relabel_configs:\n  - source_labels: [__name__]\n    regex: machine_swap_bytes\n    action: drop\n",
    );
    let src = CgroupSource::new(config, h, Inventory::new(), "n");
    let b = src.collect_now(1000);
    // Rule 8: the root cgroup has an id and no pod.
    assert_eq!(
        value(&b, "container_cpu_usage_seconds_total", &[("id", "/")]),
        None
    );
    assert!(
        value(&b, "machine_cpu_cores", &[]).is_some(),
        "machine_* have no id"
    );
    assert_eq!(
        value(&b, "machine_swap_bytes", &[]),
        None,
        "the user's rule runs after the preset"
    );
}

fn serde_yaml_from(text: &str) -> CgroupConfig {
    let full = format!(
        "cgroup:\n{}",
        text.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    nodemeter::config::Config::from_yaml(&full, "test.yaml")
        .unwrap()
        .cgroup
}
