//! What the process needs from the kernel before any program loads: capabilities, the memlock
//! limit (older kernels), pseudo filesystems.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use super::EbpfError;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Where bpffs is mounted when the agent mounts it.
pub const BPFFS: &str = "/sys/fs/bpf";

/// Checks the effective capabilities (`CapEff` in /proc/self/status) for loading and attaching
/// tracing programs: CAP_BPF and CAP_PERFMON (Linux 5.8+), or CAP_SYS_ADMIN, which covers both.
/// The error names what is missing.
pub fn check_privileges() -> Result<(), EbpfError> {
    let path = Path::new("/proc/self/status");
    let status = std::fs::read_to_string(path).map_err(|source| EbpfError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let cap_eff = parse_cap_eff(&status).ok_or_else(|| EbpfError::ProcStatus {
        path: path.to_path_buf(),
        expected: "a `CapEff:` line with a hexadecimal mask",
    })?;
    missing_capabilities(cap_eff).map_or(Ok(()), |missing| {
        Err(EbpfError::MissingCapability { missing })
    })
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `None` when the mask is enough; otherwise the missing capabilities, spelled for a human.
fn missing_capabilities(cap_eff: u64) -> Option<String> {
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return None;
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap))
        .map(|(_, name)| name)
        .collect();
    Some(format!(
        "{} (or CAP_SYS_ADMIN, which kernels before 5.8 require)",
        missing.join(" and ")
    ))
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; newer ones use memory cgroups. Raising
/// the limit is attempted and its failure ignored: a container without CAP_SYS_RESOURCE gets
/// EPERM, and on a current kernel that costs nothing.
pub fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "cannot raise RLIMIT_MEMLOCK; fine on Linux 5.11+ (maps are charged to the memory cgroup)"
        );
    }
}

/// Mounts bpffs at [`BPFFS`] unless it is there already. Nothing is pinned today; the mount is
/// there for the tools (bpftool) an operator uses to inspect the agent's maps. Best effort.
pub fn ensure_bpffs() {
    if is_mount_of(Path::new(BPFFS), "bpf") {
        return;
    }
    if let Err(e) = mount_pseudo_fs("bpf", Path::new(BPFFS)) {
        tracing::info!(error = %e, "bpffs not mounted and cannot mount it; nothing depends on it");
    }
}

/// True when /proc/self/mounts lists a filesystem of type `fstype` at `dir`.
fn is_mount_of(dir: &Path, fstype: &str) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    mounts.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_, Some(mountpoint), Some(t)) = (f.next(), f.next(), f.next()) else {
            return false;
        };
        Path::new(mountpoint) == dir && t == fstype
    })
}

/// `mount -t <fstype> <fstype> <dir>`, creating `dir` when needed.
pub fn mount_pseudo_fs(fstype: &'static str, dir: &Path) -> Result<(), EbpfError> {
    let mount_err = |source| EbpfError::Mount {
        fstype,
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(mount_err)?;
    let target = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        mount_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path contains a NUL byte",
        ))
    })?;
    let source = CString::new(fstype).map_err(|_| {
        mount_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "fstype contains a NUL byte",
        ))
    })?;
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call; the
    // data argument may be null for these filesystems.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(mount_err(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn root_capabilities_are_enough() {
        assert_eq!(missing_capabilities(0x0000_01ff_ffff_ffff), None);
    }

    #[test]
    fn bpf_and_perfmon_without_sys_admin_are_enough() {
        assert_eq!(
            missing_capabilities((1 << CAP_BPF) | (1 << CAP_PERFMON)),
            None
        );
    }

    #[test]
    fn names_what_is_missing() {
        let m = missing_capabilities(1 << CAP_BPF).unwrap();
        assert!(m.starts_with("CAP_PERFMON ("), "{m}");
        let m = missing_capabilities(0).unwrap();
        assert!(m.starts_with("CAP_BPF and CAP_PERFMON"), "{m}");
        assert!(m.contains("CAP_SYS_ADMIN"), "{m}");
    }

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x01ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }
}
