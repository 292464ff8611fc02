//! Golden exposition layout of one pod as kubelet serves it: the pod-level row, the sandbox
//! row (the only one with network series), the app containers and the node root, for
//! containerd (systemd driver) and CRI-O (cgroupfs driver) path shapes. Fixture trees in v2
//! formats plus a fake metadata provider; the golden files list series (name and labels),
//! not values. `UPDATE_GOLDEN=1` rewrites them.
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;

use nodemeter::identity::{ContainerMetadata, Hierarchies, Inventory, MetadataProvider};
use nodemeter::model::{Batch, is_stale_nan};
use nodemeter::sources::cgroup::{CgroupConfig, CgroupSource, MetricSets};
use nodemeter_tests::cgroups::{container_id, is_root};

const UID: &str = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d";

struct FakeProvider {
    containers: HashMap<String, ContainerMetadata>,
    pods: HashMap<String, ContainerMetadata>,
}

impl MetadataProvider for FakeProvider {
    fn container(&self, id: &str) -> Option<ContainerMetadata> {
        self.containers.get(id).cloned()
    }
    fn pod(&self, uid: &str) -> Option<ContainerMetadata> {
        self.pods.get(uid).cloned()
    }
}

fn md(container: &str, image: &str, name: &str) -> ContainerMetadata {
    ContainerMetadata {
        namespace: "default".into(),
        pod: "web".into(),
        container: container.into(),
        image: image.into(),
        name: name.into(),
    }
}

/// A process in a fresh network namespace with a veth pair `eth0`/`eth1`: the pod sandbox.
struct Sandbox(Child);

impl Sandbox {
    fn start() -> Self {
        let child = Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link add eth0 type veth peer name eth1 && ip link set eth0 up && exec sleep 120"])
            .spawn()
            .unwrap();
        let pid = child.id();
        for _ in 0..100 {
            let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if dev.contains("eth0") && comm.trim() == "sleep" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The v2 files of an ordinary cgroup (contents are realistic, values do not matter here).
fn v2_cgroup(root: &Path, path: &str, procs: &str, cpu_max: &str) {
    let dir = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        ("cgroup.procs", procs.to_string()),
        ("cgroup.events", "populated 1\nfrozen 0\n".into()),
        ("cpu.stat", "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\nnr_periods 10\nnr_throttled 1\nthrottled_usec 5000\nnr_bursts 0\nburst_usec 0\n".into()),
        ("cpu.max", format!("{cpu_max}\n")),
        ("cpu.weight", "100\n".into()),
        ("cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n".into()),
        ("memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n".into()),
        ("io.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n".into()),
        ("memory.current", "10485760\n".into()),
        ("memory.peak", "20971520\n".into()),
        ("memory.max", "max\n".into()),
        ("memory.min", "0\n".into()),
        ("memory.swap.current", "0\n".into()),
        ("memory.swap.max", "max\n".into()),
        ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n".into()),
        ("memory.stat", "anon 6291456\nfile 4194304\nfile_mapped 1048576\ninactive_file 2097152\nactive_file 2097152\npgfault 100\npgmajfault 1\n".into()),
        ("io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n".into()),
        ("pids.current", "1\n".into()),
        ("pids.max", "max\n".into()),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn root_files(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for (name, content) in [
        ("cgroup.procs", ""),
        (
            "cpu.stat",
            "usage_usec 9000000\nuser_usec 6000000\nsystem_usec 3000000\n",
        ),
        (
            "cpu.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n",
        ),
        (
            "memory.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n",
        ),
        (
            "io.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n",
        ),
        (
            "memory.stat",
            "anon 6291456\nfile 4194304\nfile_mapped 1048576\ninactive_file 2097152\nactive_file 2097152\npgfault 100\npgmajfault 1\n",
        ),
        (
            "io.stat",
            "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        ),
    ] {
        std::fs::write(root.join(name), content).unwrap();
    }
}

/// Series of `batch` as golden lines; host-dependent label values are masked.
fn layout(batch: &Batch) -> String {
    let mut lines = BTreeSet::new();
    for s in batch.samples.iter().filter(|s| !is_stale_nan(s.value)) {
        let name = s.labels.metric_name().unwrap_or("");
        if name.starts_with("machine_") {
            continue;
        }
        let mut b = s.labels.builder();
        if s.labels.get("device").is_some() {
            b.set("device", "<dev>");
        }
        if s.labels.get("id") == Some("/") && s.labels.get("interface").is_some() {
            b.set("interface", "<host>");
        }
        for k in ["kernelVersion", "osVersion"] {
            if s.labels.get(k).is_some() {
                b.set(k, "<host>");
            }
        }
        lines.insert(b.build().to_string());
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let exp: BTreeSet<&str> = expected.lines().collect();
        let act: BTreeSet<&str> = actual.lines().collect();
        let missing: Vec<_> = exp.difference(&act).collect();
        let extra: Vec<_> = act.difference(&exp).collect();
        panic!("{name} differs\nmissing: {missing:#?}\nextra: {extra:#?}");
    }
}

fn collect(root: &Path, provider: FakeProvider) -> Batch {
    let h = Hierarchies {
        unified: Some(root.to_path_buf()),
        v1: BTreeMap::new(),
    };
    let config = CgroupConfig {
        extra_cgroups: vec![],
        target_labels: BTreeMap::new(),
        metrics: MetricSets {
            disk: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let inventory = Inventory::new();
    inventory.set_metadata_provider(Arc::new(provider));
    let src = CgroupSource::new(config, h, inventory, "n");
    src.collect_now(1_700_000_000_000)
}

/// The layout rules consumers rely on (consumer-queries §2.3), checked directly.
fn check_layout_rules(batch: &Batch, pod: &str, sandbox: &str, apps: &[&str]) {
    let ids_with = |name: &str| -> BTreeSet<String> {
        batch
            .samples
            .iter()
            .filter(|s| s.labels.metric_name() == Some(name))
            .filter_map(|s| s.labels.get("id").map(str::to_string))
            .collect()
    };
    let net = ids_with("container_network_receive_bytes_total");
    assert_eq!(
        net,
        BTreeSet::from(["/".to_string(), sandbox.to_string()]),
        "network only on the sandbox and the root"
    );
    let row = |id: &str| {
        batch
            .samples
            .iter()
            .find(|s| s.labels.get("id") == Some(id))
            .unwrap()
            .labels
            .clone()
    };
    let p = row(pod);
    assert_eq!(
        (
            p.get("pod"),
            p.get("namespace"),
            p.get("container"),
            p.get("image"),
            p.get("name")
        ),
        (Some("web"), Some("default"), None, None, None)
    );
    let s = row(sandbox);
    assert!(s.get("image").is_some_and(|i| i.contains("pause")));
    for a in apps {
        let l = row(a);
        assert!(l.get("container").is_some_and(|c| c != "POD") && l.get("image").is_some());
    }
    assert!(
        ids_with("container_cpu_cfs_periods_total").contains(apps[0]),
        "the limited app has CFS series"
    );
    assert!(
        !ids_with("container_cpu_cfs_periods_total").contains(apps[1]),
        "the unlimited one has none"
    );
    let r = row("/");
    assert_eq!(r.len(), 2, "root: id and the name only: {r}");
}

#[test]
fn containerd_systemd_pod_layout() {
    if !is_root() {
        println!("skipped: needs root (network namespace for the sandbox)");
        return;
    }
    let sandbox_proc = Sandbox::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    root_files(root);
    let (s, a, b) = (container_id(11), container_id(12), container_id(13));
    let pod = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );
    let sandbox = format!("{pod}/cri-containerd-{s}.scope");
    let app = format!("{pod}/cri-containerd-{a}.scope");
    let app2 = format!("{pod}/cri-containerd-{b}.scope");
    for p in [
        "/kubepods.slice",
        "/kubepods.slice/kubepods-burstable.slice",
        &pod,
    ] {
        v2_cgroup(root, p, "", "max 100000");
    }
    v2_cgroup(
        root,
        &sandbox,
        &format!("{}\n", sandbox_proc.0.id()),
        "max 100000",
    );
    v2_cgroup(root, &app, "", "50000 100000");
    v2_cgroup(root, &app2, "", "max 100000");
    let provider = FakeProvider {
        containers: HashMap::from([
            (s.clone(), md("", "registry.k8s.io/pause:3.9", &s)),
            (a.clone(), md("nginx", "docker.io/library/nginx:1.25", &a)),
            (
                b.clone(),
                md("sidecar", "docker.io/library/busybox:1.36", &b),
            ),
        ]),
        pods: HashMap::from([(UID.to_string(), md("", "", ""))]),
    };
    let batch = collect(root, provider);
    check_layout_rules(&batch, &pod, &sandbox, &[&app, &app2]);
    check_golden("cgroup_pod_containerd_systemd.txt", &layout(&batch));
}

#[test]
fn crio_cgroupfs_pod_layout() {
    if !is_root() {
        println!("skipped: needs root (network namespace for the sandbox)");
        return;
    }
    let sandbox_proc = Sandbox::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    root_files(root);
    let (s, a, b) = (container_id(21), container_id(22), container_id(23));
    let pod = format!("/kubepods/burstable/pod{UID}");
    let sandbox = format!("{pod}/crio-{s}");
    let conmon = format!("{pod}/crio-conmon-{s}");
    let app = format!("{pod}/crio-{a}");
    let app2 = format!("{pod}/crio-{b}");
    for p in ["/kubepods", "/kubepods/burstable", &pod, &conmon] {
        v2_cgroup(root, p, "", "max 100000");
    }
    v2_cgroup(
        root,
        &sandbox,
        &format!("{}\n", sandbox_proc.0.id()),
        "max 100000",
    );
    v2_cgroup(root, &app, "", "50000 100000");
    v2_cgroup(root, &app2, "", "max 100000");
    let crio_name = |c: &str| format!("k8s_{c}_web_default_{UID}_0");
    let provider = FakeProvider {
        containers: HashMap::from([
            (
                s.clone(),
                md("POD", "registry.k8s.io/pause:3.9", &crio_name("POD")),
            ),
            (
                a.clone(),
                md("app", "quay.io/example/app:1.0", &crio_name("app")),
            ),
            (
                b.clone(),
                md(
                    "sidecar",
                    "quay.io/example/sidecar:2.0",
                    &crio_name("sidecar"),
                ),
            ),
        ]),
        pods: HashMap::from([(UID.to_string(), md("", "", ""))]),
    };
    let batch = collect(root, provider);
    check_layout_rules(&batch, &pod, &sandbox, &[&app, &app2]);
    // The conmon cgroup is a plain cgroup: its id and nothing else.
    let c = batch
        .samples
        .iter()
        .find(|x| x.labels.get("id") == Some(&conmon))
        .unwrap();
    assert_eq!(c.labels.get("pod"), None);
    check_golden("cgroup_pod_crio_cgroupfs.txt", &layout(&batch));
}
