//! The `memory` set (with its newer cAdvisor families), memory spec gauges, OOM kills,
//! `memory_numa`, `hugetlb` and `cpuset`.
//!
//! v1 (`use_hierarchy` is always 1 on current kernels): `memory.usage_in_bytes`,
//! `memory.max_usage_in_bytes`, `memory.stat` `total_*` keys (plain keys as fallback;
//! `pgfault`/`pgmajfault` cgroup-local), `memory.kmem.usage_in_bytes`, `memory.failcnt`,
//! `memory.oom_control` `oom_kill`, limits from `memory.limit_in_bytes`,
//! `memory.soft_limit_in_bytes`, `memory.memsw.limit_in_bytes`.
//! v2: `memory.current`, `memory.peak`, `memory.stat`, `memory.swap.current`, `memory.events`,
//! limits from `memory.max`, `memory.min`, `memory.swap.max`. The v2 root has none of the
//! per-cgroup files: usage is `anon + file`, swap and limits come from /proc/meminfo.

use std::path::Path;
use std::sync::LazyLock;

use super::emit::{Group, SeriesCache, SeriesEmitter};
use super::families::*;
use super::read::{FileReader, Limit, for_each_kv, kv};
use super::{CgroupDirs, MetricSets};

/// Host memory facts (bytes) from /proc/meminfo.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HostMemory {
    pub mem_total: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl HostMemory {
    pub fn read(r: &mut FileReader) -> Self {
        let mut m = Self::default();
        if let Some(text) = r.read_path(Path::new("/proc/meminfo")) {
            for line in text.lines() {
                let mut w = line.split_ascii_whitespace();
                let (Some(k), Some(v)) = (w.next(), w.next()) else {
                    continue;
                };
                let Ok(kb) = v.parse::<u64>() else { continue };
                match k {
                    "MemTotal:" => m.mem_total = kb * 1024,
                    "SwapTotal:" => m.swap_total = kb * 1024,
                    "SwapFree:" => m.swap_free = kb * 1024,
                    _ => {}
                }
            }
        }
        m
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct MemoryReading {
    pub v2: bool,
    pub usage: u64,
    pub max_usage: u64,
    pub cache: u64,
    pub rss: u64,
    pub mapped_file: u64,
    pub swap: u64,
    pub kernel: u64,
    pub failcnt: u64,
    pub pgfault: u64,
    pub pgmajfault: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub limit: u64,
    pub reservation: u64,
    pub swap_limit: u64,
    pub oom_kills: Option<u64>,
    pub events_high: u64,
    pub events_max: u64,
    pub dirty: u64,
    pub writeback: u64,
    pub pgscan: u64,
    pub pgsteal: u64,
    pub refault_file: u64,
    pub refault_anon: u64,
}

impl MemoryReading {
    /// Usage minus inactive file pages, floored at 0: what kubelet evicts on.
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }
}

/// Reads the memory controller of a cgroup; None when no hierarchy has it.
pub fn read(
    r: &mut FileReader,
    dirs: &CgroupDirs,
    is_root: bool,
    host: &HostMemory,
) -> Option<MemoryReading> {
    let mut m = MemoryReading::default();
    let mut raw_limit = None;
    if let Some(d) = &dirs.memory {
        let stat = r.read(d, "memory.stat")?;
        let mut plain = MemoryReading::default();
        let mut has_total = false;
        for_each_kv(stat, |k, v| match k {
            "total_cache" => {
                has_total = true;
                m.cache = v;
            }
            "total_rss" => m.rss = v,
            "total_mapped_file" => m.mapped_file = v,
            "total_swap" => m.swap = v,
            "total_inactive_file" => m.inactive_file = v,
            "total_active_file" => m.active_file = v,
            "cache" => plain.cache = v,
            "rss" => plain.rss = v,
            "mapped_file" => plain.mapped_file = v,
            "swap" => plain.swap = v,
            "inactive_file" => plain.inactive_file = v,
            "active_file" => plain.active_file = v,
            "pgfault" => m.pgfault = v,
            "pgmajfault" => m.pgmajfault = v,
            _ => {}
        });
        if !has_total {
            m.cache = plain.cache;
            m.rss = plain.rss;
            m.mapped_file = plain.mapped_file;
            m.swap = plain.swap;
            m.inactive_file = plain.inactive_file;
            m.active_file = plain.active_file;
        }
        m.usage = r.u64(d, "memory.usage_in_bytes")?;
        m.max_usage = r.u64(d, "memory.max_usage_in_bytes").unwrap_or(0);
        m.kernel = r.u64(d, "memory.kmem.usage_in_bytes").unwrap_or(0);
        m.failcnt = r.u64(d, "memory.failcnt").unwrap_or(0);
        raw_limit = r.limit(d, "memory.limit_in_bytes");
        m.reservation = r
            .limit(d, "memory.soft_limit_in_bytes")
            .map_or(0, Limit::exported);
        m.swap_limit = r
            .limit(d, "memory.memsw.limit_in_bytes")
            .map_or(0, Limit::exported);
        m.oom_kills = r
            .read(d, "memory.oom_control")
            .and_then(|t| kv(t, "oom_kill"));
    } else if let Some(d) = &dirs.unified {
        let stat = r.read(d, "memory.stat")?;
        m.v2 = true;
        let (mut anon, mut file) = (0, 0);
        for_each_kv(stat, |k, v| match k {
            "anon" => anon = v,
            "file" => file = v,
            "file_mapped" => m.mapped_file = v,
            "inactive_file" => m.inactive_file = v,
            "active_file" => m.active_file = v,
            "pgfault" => m.pgfault = v,
            "pgmajfault" => m.pgmajfault = v,
            "file_dirty" => m.dirty = v,
            "file_writeback" => m.writeback = v,
            "pgscan" => m.pgscan = v,
            "pgsteal" => m.pgsteal = v,
            "workingset_refault_file" => m.refault_file = v,
            "workingset_refault_anon" => m.refault_anon = v,
            _ => {}
        });
        m.cache = file;
        m.rss = anon;
        match r.u64(d, "memory.current") {
            Some(current) => {
                m.usage = current;
                m.max_usage = r.u64(d, "memory.peak").unwrap_or(0);
                m.swap = r.u64(d, "memory.swap.current").unwrap_or(0);
                raw_limit = r.limit(d, "memory.max");
                m.reservation = r.limit(d, "memory.min").map_or(0, Limit::exported);
                m.swap_limit = r.limit(d, "memory.swap.max").map_or(0, Limit::exported);
                if let Some(events) = r.read(d, "memory.events") {
                    for_each_kv(events, |k, v| match k {
                        "oom_kill" => m.oom_kills = Some(v),
                        "high" => m.events_high = v,
                        "max" => m.events_max = v,
                        _ => {}
                    });
                }
            }
            None => {
                // The root cgroup (or a tree without the memory controller enabled).
                m.usage = anon + file;
                m.swap = host.swap_total.saturating_sub(host.swap_free);
            }
        }
    } else {
        return None;
    }
    m.limit = match raw_limit {
        // A limit of exactly 0 is reported as the machine's memory, as cAdvisor does.
        Some(Limit::Value(0)) => host.mem_total,
        l => l.map_or(0, Limit::exported),
    };
    if is_root {
        m.limit = host.mem_total;
        m.swap_limit = host.swap_total;
        if m.oom_kills.is_none() {
            m.oom_kills = r
                .read_path(Path::new("/proc/vmstat"))
                .and_then(|t| kv(t, "oom_kill"));
        }
    }
    Some(m)
}

pub fn emit_spec(m: &MemoryReading, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    let g = Group::Spec;
    e.emit(cache, g, &SPEC_MEMORY_LIMIT, &[], m.limit as f64);
    e.emit(
        cache,
        g,
        &SPEC_MEMORY_RESERVATION,
        &[],
        m.reservation as f64,
    );
    e.emit(cache, g, &SPEC_MEMORY_SWAP_LIMIT, &[], m.swap_limit as f64);
}

pub fn emit(
    m: &MemoryReading,
    sets: &MetricSets,
    cache: &mut SeriesCache,
    e: &mut SeriesEmitter<'_>,
) {
    let g = Group::Memory;
    e.emit(cache, g, &MEM_USAGE, &[], m.usage as f64);
    e.emit(cache, g, &MEM_MAX_USAGE, &[], m.max_usage as f64);
    e.emit(cache, g, &MEM_WORKING_SET, &[], m.working_set() as f64);
    e.emit(cache, g, &MEM_CACHE, &[], m.cache as f64);
    e.emit(cache, g, &MEM_RSS, &[], m.rss as f64);
    e.emit(cache, g, &MEM_MAPPED_FILE, &[], m.mapped_file as f64);
    e.emit(cache, g, &MEM_SWAP, &[], m.swap as f64);
    // v2 has no kernel-usage or failcnt file: cAdvisor serves constant zeros there.
    e.emit(cache, g, &MEM_KERNEL, &[], m.kernel as f64);
    e.emit(cache, g, &MEM_FAILCNT, &[], m.failcnt as f64);
    // Both scopes carry the same value, as in cAdvisor.
    for scope in ["container", "hierarchy"] {
        e.emit(
            cache,
            g,
            &MEM_FAILURES,
            &[("failure_type", "pgfault"), ("scope", scope)],
            m.pgfault as f64,
        );
        e.emit(
            cache,
            g,
            &MEM_FAILURES,
            &[("failure_type", "pgmajfault"), ("scope", scope)],
            m.pgmajfault as f64,
        );
    }
    e.emit(cache, g, &MEM_ACTIVE_FILE, &[], m.active_file as f64);
    e.emit(cache, g, &MEM_INACTIVE_FILE, &[], m.inactive_file as f64);
    if sets.memory_events {
        e.emit(cache, g, &MEM_EVENTS_HIGH, &[], m.events_high as f64);
        e.emit(cache, g, &MEM_EVENTS_MAX, &[], m.events_max as f64);
    }
    if sets.memory_reclaim {
        e.emit(cache, g, &MEM_FILE_DIRTY, &[], m.dirty as f64);
        e.emit(cache, g, &MEM_FILE_WRITEBACK, &[], m.writeback as f64);
        e.emit(cache, g, &MEM_PGSCAN, &[], m.pgscan as f64);
        e.emit(cache, g, &MEM_PGSTEAL, &[], m.pgsteal as f64);
        e.emit(cache, g, &MEM_REFAULT_FILE, &[], m.refault_file as f64);
        e.emit(cache, g, &MEM_REFAULT_ANON, &[], m.refault_anon as f64);
    }
}

pub fn emit_oom(m: &MemoryReading, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    if let Some(n) = m.oom_kills {
        e.emit(cache, Group::Oom, &OOM_EVENTS, &[], n as f64);
    }
}

/// NUMA node ids as label values.
static NODE_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..1024).map(|i| i.to_string()).collect());

/// v1 `memory.numa_stat`: `file=N N0=a N1=b` lines; `hierarchical_*` lines are the
/// hierarchy scope. v2 has no per-node page counts in cAdvisor.
pub fn emit_numa(
    r: &mut FileReader,
    dirs: &CgroupDirs,
    cache: &mut SeriesCache,
    e: &mut SeriesEmitter<'_>,
) {
    let Some(d) = &dirs.memory else { return };
    let Some(text) = r.read(d, "memory.numa_stat") else {
        return;
    };
    let mut rows: Vec<(&'static str, &'static str, usize, u64)> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some((key, _)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let (scope, kind) = match key {
            "file" => ("container", "file"),
            "anon" => ("container", "anon"),
            "unevictable" => ("container", "unevictable"),
            "hierarchical_file" => ("hierarchy", "file"),
            "hierarchical_anon" => ("hierarchy", "anon"),
            "hierarchical_unevictable" => ("hierarchy", "unevictable"),
            _ => continue,
        };
        for w in words {
            if let Some((n, v)) = w.split_once('=')
                && let (Some(node), Ok(v)) =
                    (n.strip_prefix('N').and_then(|n| n.parse().ok()), v.parse())
            {
                rows.push((scope, kind, node, v));
            }
        }
    }
    for (scope, kind, node, v) in rows {
        if let Some(name) = NODE_NAMES.get(node) {
            e.emit(
                cache,
                Group::Memory,
                &MEM_NUMA_PAGES,
                &[("node", name), ("scope", scope), ("type", kind)],
                v as f64,
            );
        }
    }
}

/// Hugepage sizes of this machine as cgroup file infixes (`2MB`, `1GB`).
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(u64, String)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, size_name(kb)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, n)| n).collect()
}

fn size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

pub fn emit_hugetlb(
    r: &mut FileReader,
    dirs: &CgroupDirs,
    sizes: &[String],
    cache: &mut SeriesCache,
    e: &mut SeriesEmitter<'_>,
) {
    let g = Group::Hugetlb;
    for size in sizes {
        if let Some(d) = &dirs.hugetlb {
            let usage = r
                .u64(d, &format!("hugetlb.{size}.rsvd.usage_in_bytes"))
                .or_else(|| r.u64(d, &format!("hugetlb.{size}.usage_in_bytes")));
            let Some(usage) = usage else { continue };
            let max = r
                .u64(d, &format!("hugetlb.{size}.max_usage_in_bytes"))
                .unwrap_or(0);
            let failcnt = r.u64(d, &format!("hugetlb.{size}.failcnt")).unwrap_or(0);
            e.emit(
                cache,
                g,
                &HUGETLB_USAGE,
                &[("pagesize", size)],
                usage as f64,
            );
            e.emit(
                cache,
                g,
                &HUGETLB_MAX_USAGE,
                &[("pagesize", size)],
                max as f64,
            );
            e.emit(
                cache,
                g,
                &HUGETLB_FAILCNT,
                &[("pagesize", size)],
                failcnt as f64,
            );
        } else if let Some(d) = &dirs.unified {
            let usage = r
                .u64(d, &format!("hugetlb.{size}.rsvd.current"))
                .or_else(|| r.u64(d, &format!("hugetlb.{size}.current")));
            let Some(usage) = usage else { continue };
            let failcnt = r
                .read(d, &format!("hugetlb.{size}.events"))
                .and_then(|t| kv(t, "max"))
                .unwrap_or(0);
            e.emit(
                cache,
                g,
                &HUGETLB_USAGE,
                &[("pagesize", size)],
                usage as f64,
            );
            // v2 keeps no maximum: cAdvisor serves 0.
            e.emit(cache, g, &HUGETLB_MAX_USAGE, &[("pagesize", size)], 0.0);
            e.emit(
                cache,
                g,
                &HUGETLB_FAILCNT,
                &[("pagesize", size)],
                failcnt as f64,
            );
        }
    }
}

/// `cpuset.memory_migrate` (v1); v2 has no such file and cAdvisor serves 0.
pub fn emit_cpuset(
    r: &mut FileReader,
    dirs: &CgroupDirs,
    cache: &mut SeriesCache,
    e: &mut SeriesEmitter<'_>,
) {
    let v = match &dirs.cpuset {
        Some(d) => match r.u64(d, "cpuset.memory_migrate") {
            Some(v) => v,
            None => return,
        },
        None if dirs.unified.is_some() => 0,
        None => return,
    };
    e.emit(cache, Group::Memory, &MEM_MIGRATE, &[], v as f64);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const HOST: HostMemory = HostMemory {
        mem_total: 8 << 30,
        swap_total: 1 << 30,
        swap_free: 1 << 29,
    };

    #[test]
    fn v2_memory_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // Excerpt of a real v2 memory.stat (keys cAdvisor reads plus neighbours).
        std::fs::write(d.join("memory.stat"), "anon 104857600\nfile 52428800\nkernel 4194304\nkernel_stack 65536\nsock 0\nshmem 0\nfile_mapped 10485760\nfile_dirty 4096\nfile_writeback 8192\nactive_anon 0\ninactive_anon 104857600\nactive_file 20971520\ninactive_file 31457280\nworkingset_refault_anon 3\nworkingset_refault_file 17\npgfault 123456\npgmajfault 12\npgscan 900\npgsteal 800\n").unwrap();
        std::fs::write(d.join("memory.current"), "167772160\n").unwrap();
        std::fs::write(d.join("memory.peak"), "209715200\n").unwrap();
        std::fs::write(d.join("memory.swap.current"), "4096\n").unwrap();
        std::fs::write(d.join("memory.max"), "536870912\n").unwrap();
        std::fs::write(d.join("memory.min"), "0\n").unwrap();
        std::fs::write(d.join("memory.swap.max"), "max\n").unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 5\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        let dirs = CgroupDirs {
            unified: crate::sources::cgroup::CgroupDir::open(d.to_path_buf()),
            ..Default::default()
        };
        let mut r = FileReader::new();
        let m = read(&mut r, &dirs, false, &HOST).unwrap();
        assert!(m.v2);
        assert_eq!((m.usage, m.max_usage), (167_772_160, 209_715_200));
        assert_eq!(m.working_set(), 167_772_160 - 31_457_280);
        assert_eq!(
            (m.rss, m.cache, m.mapped_file, m.swap),
            (104_857_600, 52_428_800, 10_485_760, 4096)
        );
        assert_eq!((m.kernel, m.failcnt), (0, 0));
        assert_eq!((m.limit, m.reservation, m.swap_limit), (536_870_912, 0, 0));
        assert_eq!((m.oom_kills, m.events_high, m.events_max), (Some(1), 5, 9));
        assert_eq!(
            (m.dirty, m.writeback, m.pgscan, m.pgsteal),
            (4096, 8192, 900, 800)
        );
        assert_eq!(
            (m.refault_file, m.refault_anon, m.pgfault, m.pgmajfault),
            (17, 3, 123_456, 12)
        );
    }

    #[test]
    fn v2_root_synthesizes_usage_and_takes_limits_from_meminfo() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(
            d.join("memory.stat"),
            "anon 100\nfile 50\ninactive_file 200\n",
        )
        .unwrap();
        let dirs = CgroupDirs {
            unified: crate::sources::cgroup::CgroupDir::open(d.to_path_buf()),
            ..Default::default()
        };
        let mut r = FileReader::new();
        let m = read(&mut r, &dirs, true, &HOST).unwrap();
        assert_eq!((m.usage, m.max_usage), (150, 0));
        assert_eq!(m.working_set(), 0, "floored at 0");
        assert_eq!(m.swap, 1 << 29);
        assert_eq!((m.limit, m.swap_limit), (8 << 30, 1 << 30));
    }

    #[test]
    fn v1_uses_total_keys_and_unlimited_is_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("memory.stat"), "cache 1\nrss 2\npgfault 30\npgmajfault 4\ninactive_file 1\ntotal_cache 100\ntotal_rss 200\ntotal_mapped_file 50\ntotal_swap 0\ntotal_inactive_file 60\ntotal_active_file 40\n").unwrap();
        std::fs::write(d.join("memory.usage_in_bytes"), "400\n").unwrap();
        std::fs::write(d.join("memory.max_usage_in_bytes"), "500\n").unwrap();
        std::fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        let dirs = CgroupDirs {
            memory: crate::sources::cgroup::CgroupDir::open(d.to_path_buf()),
            ..Default::default()
        };
        let mut r = FileReader::new();
        let m = read(&mut r, &dirs, false, &HOST).unwrap();
        assert_eq!(
            (m.cache, m.rss, m.mapped_file, m.working_set()),
            (100, 200, 50, 340)
        );
        assert_eq!((m.pgfault, m.pgmajfault), (30, 4));
        assert_eq!((m.limit, m.oom_kills), (0, Some(3)));
    }

    #[test]
    fn hugepage_size_names() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1 << 20), "1GB");
        assert_eq!(size_name(64), "64KB");
    }
}
