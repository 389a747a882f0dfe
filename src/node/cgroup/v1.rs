//! cgroup v1: one hierarchy per controller (or per co-mounted set, such as `cpu,cpuacct`),
//! each with its own `topo/<lab>/<node>` group. No enabling step: a controller's files exist
//! in every group of its hierarchy.
//!
//! One function per control file (`pids.max`, the same on v1 and v2, is the parent module's);
//! each writes a limit when one is given, and when none is given puts back "unlimited" only
//! if the file says otherwise (so a fresh group is left untouched, and a limit removed from
//! the topology file is removed from the kernel).

use std::path::Path;

use super::fsio::{self, Fs, Group};
use super::{CgroupError, Controller, Usage, CPU_PERIOD_US};

/// v1 reports "no memory limit" as the largest page-aligned counter (9223372036854771712 with
/// 4 KiB pages); anything this large is no limit.
const MEMORY_UNLIMITED_FLOOR: u64 = 1 << 62;

/// A v1 memory file's limit in bytes; `None` when unlimited or unreadable.
fn read_memory_limit(path: &Path) -> Option<u64> {
    fsio::read_u64(path).filter(|&b| b < MEMORY_UNLIMITED_FLOOR)
}

/// `memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` (memory plus swap; present when
/// the kernel accounts swap) set to the same value so the limit is not escaped into swap.
///
/// The kernel keeps memsw >= memory at every moment, so raising the limit must write memsw
/// first and lowering it must write memory first: try memory first, and when the kernel
/// refuses (EINVAL), raise memsw and try again.
pub(super) fn memory_limit(fs: Fs, dir: &Path, bytes: Option<u64>) -> Result<(), CgroupError> {
    let mem = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let has_memsw = memsw.exists();
    let value = match bytes {
        Some(b) => b.to_string(),
        None if read_memory_limit(&mem).is_some()
            || (has_memsw && read_memory_limit(&memsw).is_some()) =>
        {
            "-1".to_string()
        }
        None => return Ok(()),
    };
    match fs.write(&mem, &value) {
        Err(e) if has_memsw && e.errno() == Some(libc::EINVAL) => {
            fs.write(&memsw, &value)?;
            fs.write(&mem, &value)
        }
        Err(e) => Err(e),
        Ok(()) if has_memsw => fs.write(&memsw, &value),
        Ok(()) => Ok(()),
    }
}

/// `cpu.cfs_period_us` and `cpu.cfs_quota_us` (-1: unlimited).
pub(super) fn cpu_quota(fs: Fs, dir: &Path, cpu: Option<f64>) -> Result<(), CgroupError> {
    let quota = dir.join("cpu.cfs_quota_us");
    match cpu {
        Some(c) => {
            fs.write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            fs.write(&quota, &super::quota_us(c).to_string())
        }
        None if read_cpu(&Group::Path(dir)).is_some() => fs.write(&quota, "-1"),
        None => Ok(()),
    }
}

/// Writes the limits of the controllers this hierarchy holds.
pub(super) fn write_limits(
    fs: Fs,
    dir: &Path,
    controllers: &[Controller],
    limits: &crate::spec::Limits,
) -> Result<(), CgroupError> {
    for c in controllers {
        match c {
            Controller::Memory => memory_limit(fs, dir, limits.memory)?,
            Controller::Cpu => cpu_quota(fs, dir, limits.cpu)?,
            Controller::Pids => super::pids_max(fs, dir, limits.pids)?,
        }
    }
    Ok(())
}

/// CPUs allowed by the CFS quota; `None` when unlimited (-1) or unreadable.
fn read_cpu(group: &Group) -> Option<f64> {
    let quota: i64 = group.read("cpu.cfs_quota_us")?.parse().ok()?;
    // Unlimited (-1, every group's default): the period does not matter, and is not read.
    if quota <= 0 {
        return None;
    }
    let period = group.read_u64("cpu.cfs_period_us")?;
    (period > 0).then(|| quota as f64 / period as f64)
}

/// What the group's control files say, for one controller.
pub(super) fn read_limit(group: &Group, c: Controller, limits: &mut crate::spec::Limits) {
    match c {
        Controller::Memory => {
            limits.memory = group
                .read_u64("memory.limit_in_bytes")
                .filter(|&b| b < MEMORY_UNLIMITED_FLOOR)
        }
        Controller::Cpu => limits.cpu = read_cpu(group),
        Controller::Pids => limits.pids = group.read_max("pids.max"),
    }
}

/// Current use, for one controller.
pub(super) fn read_usage(group: &Group, c: Controller, usage: &mut Usage) {
    match c {
        Controller::Memory => usage.memory_bytes = group.read_u64("memory.usage_in_bytes"),
        Controller::Pids => usage.pids = group.read_u64("pids.current"),
        Controller::Cpu => {}
    }
}
