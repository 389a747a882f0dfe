//! cgroup v2 (the unified hierarchy): one tree, and a controller works in a group only when
//! every ancestor lists it in `cgroup.subtree_control`. The root's list is the host's to set
//! (systemd's, or the container manager's): `topo` only reads it, and enables controllers in
//! its own `topo` and `topo/<lab>` groups.
//!
//! One function per control file (`pids.max`, the same on v1 and v2, is the parent module's);
//! each writes a limit when one is given, and when none is given puts back "unlimited" only
//! if the file says otherwise (so a fresh group is left untouched, and a limit removed from
//! the topology file is removed from the kernel).

use std::path::Path;

use super::fsio::{self, Fs, Group};
use super::{CgroupError, Controller, Usage, CPU_PERIOD_US};

/// The controllers the v2 root hands down to its children (its `cgroup.subtree_control`).
pub(super) fn delegated(mount: &Path) -> Vec<Controller> {
    fsio::read(&mount.join("cgroup.subtree_control"))
        .map(|s| s.split_whitespace().filter_map(Controller::parse).collect())
        .unwrap_or_default()
}

/// Enables controllers for the children of `dir`; equivalent to
/// `echo "+memory +pids" > DIR/cgroup.subtree_control`. Enabling one twice is harmless.
pub(super) fn enable(fs: Fs, dir: &Path, controllers: &[Controller]) -> Result<(), CgroupError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let line: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    fs.write(&dir.join("cgroup.subtree_control"), &line.join(" "))
}

/// `memory.max`: bytes, or `max`.
pub(super) fn memory_max(fs: Fs, dir: &Path, bytes: Option<u64>) -> Result<(), CgroupError> {
    fsio::write_max(fs, &dir.join("memory.max"), bytes)
}

/// `memory.swap.max`: 0 while memory is limited, so the limit is not escaped into swap (the
/// file exists only when the kernel accounts swap).
pub(super) fn memory_swap_max(fs: Fs, dir: &Path, limited: bool) -> Result<(), CgroupError> {
    let path = dir.join("memory.swap.max");
    if !path.exists() {
        return Ok(());
    }
    match (limited, fsio::read_max(&path)) {
        (true, _) => fs.write(&path, "0"),
        (false, Some(_)) => fs.write(&path, "max"),
        (false, None) => Ok(()),
    }
}

/// `cpu.max`: "QUOTA PERIOD" in microseconds, or "max PERIOD".
pub(super) fn cpu_max(fs: Fs, dir: &Path, cpu: Option<f64>) -> Result<(), CgroupError> {
    let path = dir.join("cpu.max");
    match cpu {
        Some(c) => fs.write(&path, &format!("{} {CPU_PERIOD_US}", super::quota_us(c))),
        None if read_cpu_max(&Group::Path(dir)).is_some() => {
            fs.write(&path, &format!("max {CPU_PERIOD_US}"))
        }
        None => Ok(()),
    }
}

/// Writes the limits of the controllers enabled in the group.
pub(super) fn write_limits(
    fs: Fs,
    dir: &Path,
    controllers: &[Controller],
    limits: &crate::spec::Limits,
) -> Result<(), CgroupError> {
    for c in controllers {
        match c {
            Controller::Memory => {
                memory_max(fs, dir, limits.memory)?;
                memory_swap_max(fs, dir, limits.memory.is_some())?;
            }
            Controller::Cpu => cpu_max(fs, dir, limits.cpu)?,
            Controller::Pids => super::pids_max(fs, dir, limits.pids)?,
        }
    }
    Ok(())
}

/// CPUs allowed by a `cpu.max` file; `None` when unlimited or unreadable.
fn read_cpu_max(group: &Group) -> Option<f64> {
    let text = group.read("cpu.max")?;
    let (quota, period) = text.split_once(' ')?;
    let quota: u64 = quota.parse().ok()?;
    let period: u64 = period.parse().ok()?;
    (period > 0).then(|| quota as f64 / period as f64)
}

/// What the group's control files say, for one controller.
pub(super) fn read_limit(group: &Group, c: Controller, limits: &mut crate::spec::Limits) {
    match c {
        Controller::Memory => limits.memory = group.read_max("memory.max"),
        Controller::Cpu => limits.cpu = read_cpu_max(group),
        Controller::Pids => limits.pids = group.read_max("pids.max"),
    }
}

/// Current use, for one controller.
pub(super) fn read_usage(group: &Group, c: Controller, usage: &mut Usage) {
    match c {
        Controller::Memory => usage.memory_bytes = group.read_u64("memory.current"),
        Controller::Pids => usage.pids = group.read_u64("pids.current"),
        Controller::Cpu => {}
    }
}
