//! `node::cgroup`: one cgroup per node, `topo/<lab>/<node>` in every hierarchy that holds a
//! controller `topo` uses (memory, cpu, pids), on cgroup v1, hybrid and v2 hosts.
//!
//! Detection follows systemd and runc: `statfs` on the cgroup root. cgroup2 there is the
//! unified layout (v2). A tmpfs there holds one mount per v1 hierarchy (`memory`, `cpu` or
//! `cpu,cpuacct`, `pids`, …) and, on a hybrid host, a cgroup2 mount at `unified`. A controller
//! is used on v1 when a v1 hierarchy holds it, else on the unified hierarchy when that offers
//! it; a controller the kernel has in neither place is only an error when a limit needs it.
//!
//! `topo` creates groups only below a `topo` group and writes control files only in groups
//! below it: never in the root, never in a foreign group. The `topo/<lab>/<node>` path is the
//! ownership marker.
//!
//! [`classify`] is the pure part of detection; [`Cgroups::detect`] feeds it the real
//! `statfs`, and unit tests feed it a fake tree (see `tests.rs`).

mod fsio;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode as FileMode;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::spec::Limits;
use fsio::Fs;

/// Where the cgroup file systems are mounted on a normal host.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// The group every `topo` group lives under, in each hierarchy.
pub const TOPO_GROUP: &str = "topo";
/// The CFS period `topo` uses for CPU limits (100 ms, the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts (1 ms).
const MIN_QUOTA_US: u64 = 1_000;

// File system magic numbers (statfs f_type), from <linux/magic.h>.
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no cgroup file system at {root}: cannot read its file system type")]
    NoCgroupFs { root: PathBuf },
    #[error(
        "{root} is not a cgroup file system (file system type {magic:#x}; expected cgroup2, \
         or a tmpfs holding cgroup v1 hierarchies)"
    )]
    NotCgroupFs { root: PathBuf, magic: i64 },
    #[error("a {controller} limit needs the {controller} cgroup controller, which this kernel does not offer")]
    ControllerMissing { controller: Controller },
    #[error(
        "a {controller} limit needs the {controller} cgroup controller, but the cgroup v2 root \
         {root} does not delegate it to its children (it is not in {root}/cgroup.subtree_control)"
    )]
    NotDelegated {
        controller: Controller,
        root: PathBuf,
    },
    #[error(
        "{name:?} cannot name a cgroup: it must be non-empty, without '/', and not '.' or '..'"
    )]
    InvalidName { name: String },
}

impl CgroupError {
    fn io(path: &Path, source: io::Error) -> Self {
        CgroupError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The kernel's errno, when the error is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CgroupError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The controllers `topo` sets limits with or reads usage from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }

    fn parse(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Directory names a v1 hierarchy holding this controller is mounted at, under the root.
    fn v1_mounts(self) -> &'static [&'static str] {
        match self {
            Controller::Memory => &["memory"],
            Controller::Cpu => &["cpu", "cpu,cpuacct", "cpuacct,cpu"],
            Controller::Pids => &["pids"],
        }
    }

    /// A limit the file declares in `limits` needs this controller (topo's default pids
    /// limit is written only where the controller is available).
    fn limited_in(self, limits: &Limits) -> bool {
        match self {
            Controller::Memory => limits.memory.is_some(),
            Controller::Cpu => limits.cpu.is_some(),
            Controller::Pids => limits.pids.is_some() && !limits.pids_default,
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// v1 hierarchies only.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount at `<root>/unified`.
    Hybrid,
    /// cgroup2 at the root.
    Unified,
}

/// Where one controller lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In the v1 hierarchy mounted here.
    V1(PathBuf),
    /// In the unified (v2) hierarchy.
    V2,
    /// Nowhere: the kernel lacks it, or the host did not mount it.
    Absent,
}

/// The host's cgroup layout, as detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub root: PathBuf,
    pub mode: Mode,
    /// The cgroup2 mount: the root itself, or `<root>/unified` on a hybrid host.
    pub unified: Option<PathBuf>,
    pub memory: Placement,
    pub cpu: Placement,
    pub pids: Placement,
}

impl Layout {
    pub fn placement(&self, c: Controller) -> &Placement {
        match c {
            Controller::Memory => &self.memory,
            Controller::Cpu => &self.cpu,
            Controller::Pids => &self.pids,
        }
    }
}

/// Classifies a cgroup root. `fs_type_of` gives a path's `statfs` f_type (`None` when it
/// cannot be read); `controllers_of` gives the controllers a cgroup2 mount offers (its
/// `cgroup.controllers`). Pure, so that every layout is unit-tested.
pub fn classify(
    root: &Path,
    fs_type_of: impl Fn(&Path) -> Option<i64>,
    controllers_of: impl Fn(&Path) -> Vec<String>,
) -> Result<Layout, CgroupError> {
    let offers = |mount: &Path, c: Controller| controllers_of(mount).iter().any(|n| n == c.name());
    match fs_type_of(root) {
        Some(CGROUP2_SUPER_MAGIC) => {
            let v2 = |c| {
                if offers(root, c) {
                    Placement::V2
                } else {
                    Placement::Absent
                }
            };
            Ok(Layout {
                root: root.to_path_buf(),
                mode: Mode::Unified,
                unified: Some(root.to_path_buf()),
                memory: v2(Controller::Memory),
                cpu: v2(Controller::Cpu),
                pids: v2(Controller::Pids),
            })
        }
        Some(TMPFS_MAGIC) => {
            let unified =
                Some(root.join("unified")).filter(|u| fs_type_of(u) == Some(CGROUP2_SUPER_MAGIC));
            let place = |c: Controller| {
                let v1 = c
                    .v1_mounts()
                    .iter()
                    .map(|name| root.join(name))
                    .find(|m| fs_type_of(m) == Some(CGROUP_SUPER_MAGIC));
                match (v1, &unified) {
                    (Some(mount), _) => Placement::V1(mount),
                    (None, Some(u)) if offers(u, c) => Placement::V2,
                    (None, _) => Placement::Absent,
                }
            };
            Ok(Layout {
                root: root.to_path_buf(),
                mode: if unified.is_some() {
                    Mode::Hybrid
                } else {
                    Mode::Legacy
                },
                memory: place(Controller::Memory),
                cpu: place(Controller::Cpu),
                pids: place(Controller::Pids),
                unified,
            })
        }
        Some(magic) => Err(CgroupError::NotCgroupFs {
            root: root.to_path_buf(),
            magic,
        }),
        None => Err(CgroupError::NoCgroupFs {
            root: root.to_path_buf(),
        }),
    }
}

/// `statfs(2)` f_type of a path; equivalent to `stat -f -c %t PATH`.
// f_type is i64 on 64-bit glibc but narrower on other targets: keep the conversion.
#[allow(clippy::useless_conversion)]
fn statfs_type(path: &Path) -> Option<i64> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| i64::from(s.filesystem_type().0))
}

/// The controllers listed in a cgroup2 group's `cgroup.controllers`.
fn read_controllers(dir: &Path) -> Vec<String> {
    fsio::read(&dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// One hierarchy `topo` makes node groups in, and the controllers it uses there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    mount: PathBuf,
    v2: bool,
    controllers: Vec<Controller>,
}

/// Current use of a node's group; `None` where the kernel does not account it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
}

/// The host's cgroups, detected once; creates, reads and removes node groups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    layout: Layout,
    fs: Fs,
}

impl Cgroups {
    /// Detects the layout under [`DEFAULT_ROOT`].
    pub fn detect() -> Result<Cgroups, CgroupError> {
        Cgroups::at(Path::new(DEFAULT_ROOT))
    }

    /// Detects the layout of the cgroup file systems under `root`.
    pub fn at(root: &Path) -> Result<Cgroups, CgroupError> {
        Ok(Cgroups {
            layout: classify(root, statfs_type, read_controllers)?,
            fs: Fs::Kernel,
        })
    }

    /// A plain directory tree standing in for cgroupfs (tests): `fs_type_of` plays `statfs`.
    #[cfg(test)]
    fn fake(
        root: &Path,
        fs_type_of: impl Fn(&Path) -> Option<i64>,
    ) -> Result<Cgroups, CgroupError> {
        Ok(Cgroups {
            layout: classify(root, fs_type_of, read_controllers)?,
            fs: Fs::Plain,
        })
    }

    #[cfg(test)]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The hierarchies node groups are made in: each v1 hierarchy holding a controller, and
    /// the unified one when it holds a controller (always on a v2 host, where it is the only
    /// one and still counts the node's processes).
    fn hierarchies(&self) -> Vec<Hierarchy> {
        let mut out: Vec<Hierarchy> = Vec::new();
        if let (Mode::Unified, Some(u)) = (self.layout.mode, &self.layout.unified) {
            out.push(Hierarchy {
                mount: u.clone(),
                v2: true,
                controllers: Vec::new(),
            });
        }
        for c in Controller::ALL {
            let (mount, v2) = match (self.layout.placement(c), &self.layout.unified) {
                (Placement::V1(m), _) => (m, false),
                (Placement::V2, Some(u)) => (u, true),
                _ => continue,
            };
            match out.iter_mut().find(|h| &h.mount == mount) {
                Some(h) => h.controllers.push(c),
                None => out.push(Hierarchy {
                    mount: mount.clone(),
                    v2,
                    controllers: vec![c],
                }),
            }
        }
        out
    }

    /// Creates (or, when it exists, updates) the node's group in every hierarchy and writes
    /// its limits; a limit left out is no limit. Equivalent to `mkdir -p
    /// /sys/fs/cgroup/<hierarchy>/topo/LAB/NODE` plus the control-file writes.
    pub fn create(
        &self,
        lab: &str,
        node: &str,
        limits: &Limits,
    ) -> Result<NodeCgroup, CgroupError> {
        check_name(lab)?;
        check_name(node)?;
        if let Some(c) = Controller::ALL
            .into_iter()
            .find(|&c| c.limited_in(limits) && *self.layout.placement(c) == Placement::Absent)
        {
            return Err(CgroupError::ControllerMissing { controller: c });
        }
        let mut paths = Vec::new();
        for mut h in self.hierarchies() {
            // Memory, and the CPU controller on v1, only where limited (see `needs_group`).
            let (mount, v2) = (h.mount.clone(), h.v2);
            h.controllers
                .retain(|&c| Self::needs_group(c, &mount, v2, lab, node, limits));
            if h.controllers.is_empty() && !h.v2 {
                continue;
            }
            // `remove_lab` of another lab may remove an empty `topo` group between our
            // mkdir and our writes (ENOENT): make it again, once.
            let dir = match self.create_in(&h, lab, node, limits) {
                Err(e) if e.errno() == Some(libc::ENOENT) => self.create_in(&h, lab, node, limits),
                other => other,
            }?;
            paths.push(dir);
        }
        NodeCgroup::from_paths(paths)
    }

    /// Whether the node's group in a hierarchy (at `mount`, v2 or not) serves
    /// controller `c`. Always, except for two controllers that are made only where limited:
    ///
    /// - memory, when the node (v1) or a node of its lab (v2, where controllers are enabled
    ///   for a lab's groups together) limits memory. Making a memory cgroup costs the kernel
    ///   an allocation per memory-aware shrinker of the machine, and every superblock (each
    ///   node's proc, tmpfs, devpts, mqueue) is one: O(N) per node, O(N²) per lab.
    /// - cpu on v1, when the node limits CPU time. Nothing reads a v1 cpu group's accounts,
    ///   and its own hierarchy's group (a scheduling group per CPU, made, joined and removed)
    ///   is work for every node; the pids group holds the node.
    ///
    /// A group made once stays (a removed limit becomes "unlimited").
    fn needs_group(
        c: Controller,
        mount: &Path,
        v2: bool,
        lab: &str,
        node: &str,
        limits: &Limits,
    ) -> bool {
        let lazy = match c {
            Controller::Memory => true,
            Controller::Cpu => !v2,
            Controller::Pids => false,
        };
        if !lazy || c.limited_in(limits) {
            return true;
        }
        if v2 {
            fsio::read(&group_dir(mount, lab, None).join("cgroup.subtree_control")).is_some_and(
                |s| {
                    s.split_whitespace()
                        .any(|e| e.trim_start_matches('+') == c.name())
                },
            )
        } else {
            group_dir(mount, lab, Some(node)).is_dir()
        }
    }

    /// Puts every process of the node in all of its groups: after a memory or CPU limit was
    /// added to a running node on cgroup v1, its new group starts empty. Moves what its other
    /// groups hold, a few rounds so that children forked meanwhile follow (a process that
    /// exits meanwhile is no error). Nothing to do on v2, where a node has one group.
    pub fn gather(&self, lab: &str, node: &str) -> Result<(), CgroupError> {
        check_name(lab)?;
        check_name(node)?;
        let dirs: Vec<PathBuf> = self
            .hierarchies()
            .into_iter()
            .filter(|h| !h.v2)
            .map(|h| group_dir(&h.mount, lab, Some(node)))
            .filter(|d| d.is_dir())
            .collect();
        let procs = |d: &Path| -> BTreeSet<u32> {
            fsio::read(&d.join("cgroup.procs"))
                .map(|s| {
                    s.split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        for _ in 0..4 {
            let held: Vec<BTreeSet<u32>> = dirs.iter().map(|d| procs(d)).collect();
            let all: BTreeSet<u32> = held.iter().flatten().copied().collect();
            let mut moved = false;
            for (dir, has) in dirs.iter().zip(&held) {
                for pid in all.difference(has) {
                    match self.fs.write(&dir.join("cgroup.procs"), &pid.to_string()) {
                        Err(e) if e.errno() == Some(libc::ESRCH) => {}
                        other => other?,
                    }
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    /// The node's group in one hierarchy, with its limits written.
    fn create_in(
        &self,
        h: &Hierarchy,
        lab: &str,
        node: &str,
        limits: &Limits,
    ) -> Result<PathBuf, CgroupError> {
        if h.v2 {
            return self.create_v2(h, lab, node, limits);
        }
        let dir = group_dir(&h.mount, lab, Some(node));
        self.fs.mkdir_p(&dir)?;
        v1::write_limits(self.fs, &dir, &h.controllers, limits)?;
        Ok(dir)
    }

    /// v2: enable what the root delegates (refusing when a limit needs what it does not) in
    /// `topo` and `topo/<lab>`, then make the node group and write its limits.
    fn create_v2(
        &self,
        h: &Hierarchy,
        lab: &str,
        node: &str,
        limits: &Limits,
    ) -> Result<PathBuf, CgroupError> {
        let delegated = v2::delegated(&h.mount);
        let mut enabled = Vec::new();
        for &c in &h.controllers {
            if delegated.contains(&c) {
                enabled.push(c);
            } else if c.limited_in(limits) {
                return Err(CgroupError::NotDelegated {
                    controller: c,
                    root: h.mount.clone(),
                });
            }
        }
        for dir in [h.mount.join(TOPO_GROUP), group_dir(&h.mount, lab, None)] {
            self.fs.mkdir_p(&dir)?;
            v2::enable(self.fs, &dir, &enabled)?;
        }
        let dir = group_dir(&h.mount, lab, Some(node));
        self.fs.mkdir_p(&dir)?;
        v2::write_limits(self.fs, &dir, &enabled, limits)?;
        Ok(dir)
    }

    /// The node's group in the hierarchy holding controller `c`, with that hierarchy's kind.
    fn controller_dir(&self, c: Controller, lab: &str, node: &str) -> Option<(PathBuf, bool)> {
        match (self.layout.placement(c), &self.layout.unified) {
            (Placement::V1(m), _) => Some((group_dir(m, lab, Some(node)), false)),
            (Placement::V2, Some(u)) => Some((group_dir(u, lab, Some(node)), true)),
            _ => None,
        }
    }

    /// Memory and task counts of the node's group, as the kernel accounts them.
    pub fn usage(&self, lab: &str, node: &str) -> Usage {
        self.read_each(lab, node, v1::read_usage, v2::read_usage)
    }

    /// The limits the node's control files hold (what the kernel enforces, not what the
    /// topology asks for); unlimited, missing or unreadable reads as `None`.
    pub fn limits_in_kernel(&self, lab: &str, node: &str) -> Limits {
        self.read_each(lab, node, v1::read_limit, v2::read_limit)
    }

    /// [`limits_in_kernel`](Self::limits_in_kernel) of each of `nodes` of the lab, in their
    /// order: the lab's group is opened once per hierarchy, and each file read from there.
    pub fn limits_in_kernel_of(&self, lab: &str, nodes: &[&str]) -> Vec<Limits> {
        let mut out = vec![Limits::default(); nodes.len()];
        if check_name(lab).is_err() {
            return out;
        }
        for c in Controller::ALL {
            let (mount, unified) = match (self.layout.placement(c), &self.layout.unified) {
                (Placement::V1(m), _) => (m, false),
                (Placement::V2, Some(u)) => (u, true),
                _ => continue,
            };
            // A lab without a group in this hierarchy has no limit there.
            let Ok(dir) = std::fs::File::open(group_dir(mount, lab, None)) else {
                continue;
            };
            for (node, limits) in nodes.iter().zip(out.iter_mut()) {
                if check_name(node).is_err() {
                    continue;
                }
                let group = fsio::Group::At(std::os::fd::AsFd::as_fd(&dir), node);
                if unified {
                    v2::read_limit(&group, c, limits);
                } else {
                    v1::read_limit(&group, c, limits);
                }
            }
        }
        out
    }

    /// What `v1` or `v2` (by the hierarchy that holds each controller) reads from the node's
    /// group, for every controller.
    fn read_each<T: Default>(
        &self,
        lab: &str,
        node: &str,
        v1: fn(&fsio::Group, Controller, &mut T),
        v2: fn(&fsio::Group, Controller, &mut T),
    ) -> T {
        let mut out = T::default();
        for c in Controller::ALL {
            match self.controller_dir(c, lab, node) {
                Some((dir, true)) => v2(&fsio::Group::Path(&dir), c, &mut out),
                Some((dir, false)) => v1(&fsio::Group::Path(&dir), c, &mut out),
                None => {}
            }
        }
        out
    }

    /// Removes the node's group from every hierarchy; equivalent to `rmdir` of each. Waits a
    /// little while a group is busy (its processes still exiting); a missing group is fine.
    /// Tries every hierarchy and reports the first failure.
    pub fn remove(&self, lab: &str, node: &str) -> Result<(), CgroupError> {
        check_name(lab)?;
        check_name(node)?;
        let mut first = Ok(());
        for h in self.hierarchies() {
            let r = self.fs.rmdir(&group_dir(&h.mount, lab, Some(node)));
            first = first.and(r);
        }
        first
    }

    /// Removes every node group of the lab, the lab's group, and the `topo` group when no
    /// other lab uses it.
    pub fn remove_lab(&self, lab: &str) -> Result<(), CgroupError> {
        check_name(lab)?;
        let mut first = Ok(());
        for h in self.hierarchies() {
            let lab_dir = group_dir(&h.mount, lab, None);
            for node in fsio::child_groups(&lab_dir) {
                first = first.and(self.fs.rmdir(&lab_dir.join(node)));
            }
            first = first.and(self.fs.rmdir(&lab_dir));
            first = first.and(self.fs.rmdir_if_unused(&h.mount.join(TOPO_GROUP)));
        }
        first
    }

    /// The nodes of the lab that have a group in some hierarchy, sorted.
    #[cfg(test)]
    pub fn labs_nodes(&self, lab: &str) -> Vec<String> {
        if check_name(lab).is_err() {
            return Vec::new();
        }
        let nodes: BTreeSet<String> = self
            .hierarchies()
            .iter()
            .flat_map(|h| fsio::child_groups(&group_dir(&h.mount, lab, None)))
            .collect();
        nodes.into_iter().collect()
    }
}

/// `<mount>/topo/<lab>[/<node>]`.
fn group_dir(mount: &Path, lab: &str, node: Option<&str>) -> PathBuf {
    let dir = mount.join(TOPO_GROUP).join(lab);
    match node {
        Some(n) => dir.join(n),
        None => dir,
    }
}

/// Lab and node names become path components: refuse anything that would leave `topo/`.
fn check_name(name: &str) -> Result<(), CgroupError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(CgroupError::InvalidName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// `pids.max`, the same file on v1 and v2: a number of tasks, or `max`.
fn pids_max(fs: Fs, dir: &Path, pids: Option<u64>) -> Result<(), CgroupError> {
    fsio::write_max(fs, &dir.join("pids.max"), pids)
}

/// The CFS quota for `cpu` CPUs at [`CPU_PERIOD_US`], at least the kernel's minimum.
fn quota_us(cpu: f64) -> u64 {
    ((cpu * CPU_PERIOD_US as f64).round() as u64).max(MIN_QUOTA_US)
}

/// A node's groups, one per hierarchy; serialized as the list of their directories so the
/// node init can be told where to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<PathBuf>", into = "Vec<PathBuf>")]
pub struct NodeCgroup {
    paths: Vec<PathBuf>,
    /// `<path>/cgroup.procs` of each, ready for `open(2)` without allocating.
    procs: Vec<CString>,
}

impl NodeCgroup {
    pub fn from_paths(paths: Vec<PathBuf>) -> Result<NodeCgroup, CgroupError> {
        let procs = paths
            .iter()
            .map(|p| {
                CString::new(p.join("cgroup.procs").as_os_str().as_bytes())
                    .map_err(|e| CgroupError::io(p, io::Error::new(io::ErrorKind::InvalidInput, e)))
            })
            .collect::<Result<_, _>>()?;
        Ok(NodeCgroup { paths, procs })
    }

    /// The group directories, one per hierarchy.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Moves a process (all its threads) into the node's groups; equivalent to
    /// `echo PID > cgroup.procs` in each.
    pub fn add(&self, pid: i32) -> io::Result<()> {
        let pid = u32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut buf = [0u8; 10];
        self.write_procs(decimal(pid, &mut buf))
    }

    /// Moves the calling process into the node's groups. Allocates nothing, so it is safe
    /// in a forked child of a multi-threaded parent before exec. Writes "0", which the kernel
    /// reads as "the writer" — right even inside a new PID namespace, where our own PID would
    /// name another process.
    pub fn add_self(&self) -> io::Result<()> {
        self.write_procs(b"0")
    }

    fn write_procs(&self, text: &[u8]) -> io::Result<()> {
        for path in &self.procs {
            let fd = open(
                path.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
                FileMode::empty(),
            )?;
            let n = nix::unistd::write(&fd, text)?;
            if n != text.len() {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
        }
        Ok(())
    }
}

impl TryFrom<Vec<PathBuf>> for NodeCgroup {
    type Error = CgroupError;
    fn try_from(paths: Vec<PathBuf>) -> Result<Self, Self::Error> {
        NodeCgroup::from_paths(paths)
    }
}

impl From<NodeCgroup> for Vec<PathBuf> {
    fn from(cg: NodeCgroup) -> Self {
        cg.paths
    }
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
