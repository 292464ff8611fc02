//! Real cgroups for tests: a fake node root below the test process's own cgroup in every
//! hierarchy, processes moved into it, and cleanup (processes killed first, then directories
//! removed deepest first) when the guard drops.
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "test fixtures")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use nodemeter::identity::Hierarchies;
use nodemeter::model::{Batch, Labels, is_stale_nan};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Which hierarchies a [`TestNode`] lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// This host's v1 controllers (cpu, cpuacct, memory, blkio, pids) plus the unified tree.
    Hybrid,
    /// Only the unified (v2) tree.
    UnifiedOnly,
}

/// A fake node: `root` exists in every chosen hierarchy, below our own cgroup there.
pub struct TestNode {
    /// Node root, relative to each hierarchy's (overridden) mount.
    pub root: String,
    /// Hierarchy mounts as the agent must see them (`cgroup.mounts`).
    pub mounts: BTreeMap<String, PathBuf>,
    created: Vec<PathBuf>,
    children: Vec<Child>,
    netns: Vec<String>,
    cleanups: Vec<Box<dyn FnOnce()>>,
}

/// Our own cgroup per controller (`/proc/self/cgroup`), `unified` for the v2 line.
pub fn own_cgroups() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if ctrls.is_empty() {
            out.insert("unified".to_string(), path.to_string());
        }
        for c in ctrls.split(',').filter(|c| !c.is_empty()) {
            out.insert(c.to_string(), path.to_string());
        }
    }
    out
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl TestNode {
    /// Creates `/<name>-<pid>-<seq>` in each hierarchy of `layout`.
    pub fn new(name: &str, layout: Layout) -> Self {
        let detected = Hierarchies::detect(&BTreeMap::new()).unwrap();
        let own = own_cgroups();
        let mut mounts = BTreeMap::new();
        let join = |m: &Path, p: &str| {
            let p = p.trim_start_matches('/');
            if p.is_empty() {
                m.to_path_buf()
            } else {
                m.join(p)
            }
        };
        if layout == Layout::Hybrid {
            for c in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
                if let Some(m) = detected.v1.get(c) {
                    let own = own.get(c).map(String::as_str).unwrap_or("/");
                    mounts.insert(c.to_string(), join(m, own));
                }
            }
        }
        if let Some(u) = &detected.unified {
            let own = own.get("unified").map(String::as_str).unwrap_or("/");
            mounts.insert("unified".to_string(), join(u, own));
        }
        let root = format!(
            "/{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut node = Self {
            root,
            mounts,
            created: Vec::new(),
            children: Vec::new(),
            netns: Vec::new(),
            cleanups: Vec::new(),
        };
        node.mkdir("/");
        node
    }

    /// The hierarchies the agent should use: only those of this node.
    pub fn hierarchies(&self) -> Hierarchies {
        let mut h = Hierarchies::default();
        for (c, m) in &self.mounts {
            if c == "unified" {
                h.unified = Some(m.clone());
            } else {
                h.v1.insert(c.clone(), m.clone());
            }
        }
        h
    }

    /// The `id` label of cgroup `path` (relative to the node root).
    pub fn id(&self, path: &str) -> String {
        if path == "/" {
            self.root.clone()
        } else {
            format!("{}{}", self.root, path)
        }
    }

    /// Directory of cgroup `path` (relative to the node root) in `controller`'s hierarchy.
    pub fn dir(&self, controller: &str, path: &str) -> PathBuf {
        let m = &self.mounts[controller];
        let full = format!(
            "{}/{}",
            self.root.trim_start_matches('/'),
            path.trim_start_matches('/')
        );
        m.join(full.trim_end_matches('/'))
    }

    /// Creates cgroup `path` (and parents) in every hierarchy of the node.
    pub fn mkdir(&mut self, path: &str) {
        let controllers: Vec<String> = self.mounts.keys().cloned().collect();
        for c in controllers {
            let mut cur = self.mounts[&c].clone();
            let full = format!("{}/{}", self.root, path);
            for part in full.split('/').filter(|p| !p.is_empty()) {
                cur = cur.join(part);
                if !cur.exists() {
                    std::fs::create_dir(&cur)
                        .unwrap_or_else(|e| panic!("mkdir {}: {e}", cur.display()));
                    self.created.push(cur.clone());
                }
            }
        }
    }

    /// Writes `value` to `file` of cgroup `path` in `controller`'s hierarchy.
    pub fn write(&self, controller: &str, path: &str, file: &str, value: &str) {
        let p = self.dir(controller, path).join(file);
        std::fs::write(&p, value).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn read(&self, controller: &str, path: &str, file: &str) -> String {
        let p = self.dir(controller, path).join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Starts `script` (sh) as a process that first moves itself into cgroup `path` in every
    /// hierarchy of the node, optionally inside network namespace `netns`.
    pub fn spawn(&mut self, path: &str, netns: Option<&str>, script: &str) -> u32 {
        let procs: Vec<String> = self
            .mounts
            .keys()
            .map(|c| self.dir(c, path).join("cgroup.procs").display().to_string())
            .collect();
        let moves: String = procs
            .iter()
            .map(|p| format!("echo $$ > '{p}' || exit 97; "))
            .collect();
        // `ip netns exec` remounts /sys (and with it the cgroup mounts), so the process
        // joins its cgroups first and enters the namespace with nsenter afterwards.
        let full = match netns {
            Some(ns) => format!("{moves}exec nsenter --net=/run/netns/{ns} sh -c \"$0\""),
            None => format!("{moves}exec sh -c \"$0\""),
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &full, script]);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        // Wait until the process sits in the cgroup.
        let first = &procs[0];
        for _ in 0..200 {
            if std::fs::read_to_string(first)
                .unwrap_or_default()
                .lines()
                .any(|l| l.trim() == pid.to_string())
            {
                return pid;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("process {pid} did not reach {path}");
    }

    /// Creates network namespace `name` with a veth pair: `eth0` inside at 10.251.<n>.2/24,
    /// the host end at 10.251.<n>.1. Returns the host end's address.
    pub fn netns_with_veth(&mut self, name: &str, n: u8) -> String {
        let host_if = format!("vnm{}{n}", std::process::id() % 10000);
        run("ip", &["netns", "add", name]);
        self.netns.push(name.to_string());
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", name,
            ],
        );
        let host_addr = format!("10.251.{n}.1");
        run(
            "ip",
            &["addr", "add", &format!("{host_addr}/24"), "dev", &host_if],
        );
        run("ip", &["link", "set", &host_if, "up"]);
        run(
            "ip",
            &[
                "netns",
                "exec",
                name,
                "ip",
                "addr",
                "add",
                &format!("10.251.{n}.2/24"),
                "dev",
                "eth0",
            ],
        );
        run(
            "ip",
            &["netns", "exec", name, "ip", "link", "set", "eth0", "up"],
        );
        run(
            "ip",
            &["netns", "exec", name, "ip", "link", "set", "lo", "up"],
        );
        host_addr
    }

    /// Runs `f` when the node is torn down, before directories are removed.
    pub fn on_cleanup(&mut self, f: impl FnOnce() + 'static) {
        self.cleanups.push(Box::new(f));
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything else still in our cgroups (grandchildren) is killed too.
        for dir in self.created.iter().rev() {
            if let Ok(t) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in t.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for f in self.cleanups.drain(..) {
            f();
        }
        for ns in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for dir in self.created.iter().rev() {
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

pub fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?} failed: {st}");
}

pub fn output(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap();
    assert!(o.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(o.stdout).unwrap()
}

/// The samples of one batch, by series text (`name{a="b"}`), stale markers left out.
pub fn series(batch: &Batch) -> BTreeMap<String, f64> {
    batch
        .samples
        .iter()
        .filter(|s| !is_stale_nan(s.value))
        .map(|s| (s.labels.to_string(), s.value))
        .collect()
}

/// Value of the series `name` with exactly the given labels (besides target labels).
pub fn value(batch: &Batch, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    batch.samples.iter().find_map(|s| {
        let l: &Labels = &s.labels;
        (l.metric_name() == Some(name)
            && labels.iter().all(|(k, v)| l.get(k) == Some(*v))
            && !is_stale_nan(s.value))
        .then_some(s.value)
    })
}

/// A 64-character container id derived from `seed`.
pub fn container_id(seed: u8) -> String {
    format!("{:064x}", u128::from(seed) * 0x1111_1111_1111_1111_1111)
        .chars()
        .rev()
        .collect()
}

/// First value of `key` in a flat-keyed cgroup file.
pub fn kv(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Path of a python3 interpreter for workload scripts.
pub fn python() -> String {
    output("sh", &["-c", "command -v python3"])
        .trim()
        .to_string()
}
