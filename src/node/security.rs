//! What a node's processes may do, and the order in which it is imposed.
//!
//! Every process of a node (its init, `exec:` commands, services, `topo exec`) goes through
//! the same steps, in the order runc, youki and crun use: join the node's cgroup,
//! its user namespace, its mounts; AppArmor (before no_new_privs, which restricts profile
//! changes); set `no_new_privs`; drop capabilities (bounding set, then effective, permitted
//! and inheritable, then ambient); Landlock; the seccomp filter last; then exec.
//! The steps go through the [`Steps`] seam, so the order is unit-tested without root; the
//! real implementation lives where the process is (`init`, `enter`).

use std::collections::BTreeSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use serde::{Deserialize, Serialize};

use super::NodeError;
use crate::spec::{Capabilities, Filesystem, Seccomp};

/// The capabilities a node without a user namespace of its own (`userns: false`) keeps when
/// its file says nothing: what a routing daemon, ping, tcpdump and a server on a privileged
/// port need, and the ordinary root-in-a-container set (Docker's default, less MKNOD),
/// nothing that reaches beyond the node (no SYS_ADMIN, SYS_MODULE, SYS_BOOT, SYS_TIME,
/// SYS_PTRACE, SYS_RAWIO, …). `docs/security.md` explains each.
pub const DEFAULT_CAPS: [Capability; 15] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_NET_BROADCAST,
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETPCAP,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_AUDIT_WRITE,
    Capability::CAP_SETFCAP,
];

/// Added to [`DEFAULT_CAPS`] for a node with its own user namespace (the default), where they
/// act only on what that user namespace owns. Routing daemons ask for SYS_ADMIN (FRR's
/// zebra, ospfd and bgpd refuse to start without it); what it would allow beyond the node's
/// own namespaces (mounts, `setns`, new namespaces, the hostname) the seccomp filter refuses.
pub const USERNS_CAPS: [Capability; 1] = [Capability::CAP_SYS_ADMIN];

/// The capability names a node keeps when its file says nothing.
pub fn default_capabilities(userns: bool) -> BTreeSet<String> {
    let extra: &[Capability] = if userns { &USERNS_CAPS } else { &[] };
    DEFAULT_CAPS.iter().chain(extra).map(cap_name).collect()
}

/// A node's security profile, resolved from its file keys; recorded in the run directory so
/// `topo exec` applies it without the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Security {
    /// Capability names without `CAP_`, sorted.
    pub capabilities: BTreeSet<String>,
    pub seccomp: Seccomp,
    pub no_new_privs: bool,
    /// Landlock policy (`filesystem:`), if any.
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    /// AppArmor profile the node's programs are confined to at exec, if any.
    #[serde(default)]
    pub apparmor: Option<String>,
}

/// The profile of a node whose file says nothing (it has a user namespace).
impl Default for Security {
    fn default() -> Self {
        Security {
            capabilities: default_capabilities(true),
            seccomp: Seccomp::Default,
            no_new_privs: true,
            filesystem: None,
            apparmor: None,
        }
    }
}

fn cap_name(c: &Capability) -> String {
    c.to_string().trim_start_matches("CAP_").to_string()
}

impl Security {
    /// Resolves a node's keys: the default set (which depends on whether the node has a user
    /// namespace), less `drop` (`ALL` drops everything), plus `add` (`ALL` adds everything).
    pub fn resolve(
        caps: Option<&Capabilities>,
        seccomp: Option<&Seccomp>,
        filesystem: Option<&Filesystem>,
        userns: bool,
    ) -> Security {
        let mut s = Security {
            capabilities: default_capabilities(userns),
            ..Security::default()
        };
        if let Some(c) = caps {
            for d in &c.drop {
                if d == "ALL" {
                    s.capabilities.clear();
                } else {
                    s.capabilities.remove(d);
                }
            }
            for a in &c.add {
                if a == "ALL" {
                    s.capabilities.extend(caps::all().iter().map(cap_name));
                } else {
                    s.capabilities.insert(a.clone());
                }
            }
        }
        if let Some(sc) = seccomp {
            s.seccomp = sc.clone();
        }
        s.filesystem = filesystem.cloned();
        s
    }

    /// The capability set as the kernel names it; unknown names (validated earlier) are
    /// skipped.
    pub fn cap_set(&self) -> CapsHashSet {
        self.capabilities
            .iter()
            .filter_map(|n| Capability::from_str(&format!("CAP_{n}")).ok())
            .collect()
    }

    /// Bit mask as `/proc/PID/status` shows it (`CapEff` etc.), for status and tests.
    pub fn cap_mask(&self) -> u64 {
        self.cap_set().iter().fold(0, |m, c| m | c.bitmask())
    }
}

/// The capabilities of a mask made by [`Security::cap_mask`].
pub fn caps_of_mask(mask: u64) -> CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect()
}

/// The privileged steps a node process takes before exec, one method each.
///
/// The steps that act on the calling thread alone have their real implementation here, as
/// default methods; a process kind implements where it joins (cgroup, user namespace,
/// mounts) and which seccomp filter it holds. The recording test implementation overrides
/// every method.
pub trait Steps {
    fn join_cgroup(&mut self) -> Result<(), NodeError>;
    fn enter_userns(&mut self) -> Result<(), NodeError>;
    fn enter_mounts(&mut self) -> Result<(), NodeError>;
    /// The compiled filter (compiled before the mounts: its file may be covered after).
    fn filter(&self) -> Option<&super::seccomp::Filter>;
    fn no_new_privs(&mut self) -> Result<(), NodeError> {
        no_new_privs()
    }
    fn limit_bounding(&mut self, keep: &CapsHashSet) -> Result<(), NodeError> {
        limit_bounding(keep, false)
    }
    fn set_caps(&mut self, keep: &CapsHashSet) -> Result<(), NodeError> {
        set_caps(keep)
    }
    fn set_ambient(&mut self, keep: &CapsHashSet) -> Result<(), NodeError> {
        set_ambient(keep)
    }
    fn apparmor(&mut self, profile: &str) -> Result<(), NodeError> {
        apparmor_on_exec(profile)
    }
    fn landlock(&mut self, policy: &Filesystem) -> Result<(), NodeError> {
        super::landlock::restrict(policy)
    }
    fn seccomp(&mut self) -> Result<(), NodeError> {
        match self.filter() {
            Some(f) => super::seccomp::install(f).map_err(|e| {
                NodeError::sys(
                    "install the seccomp filter",
                    std::io::Error::other(e.to_string()),
                )
            }),
            None => Ok(()),
        }
    }
}

/// Takes the steps in the one right order. Each step may need what the one before still
/// allows: mounts need CAP_SYS_ADMIN (so they come before capabilities are dropped), and
/// the seccomp filter would block the capability calls (so it comes last).
pub fn harden(steps: &mut impl Steps, security: &Security) -> Result<(), NodeError> {
    steps.join_cgroup()?;
    steps.enter_userns()?;
    steps.enter_mounts()?;
    // Before no_new_privs, which restricts AppArmor profile transitions.
    if let Some(profile) = &security.apparmor {
        steps.apparmor(profile)?;
    }
    if security.no_new_privs {
        steps.no_new_privs()?;
    }
    let keep = security.cap_set();
    steps.limit_bounding(&keep)?;
    steps.set_caps(&keep)?;
    steps.set_ambient(&keep)?;
    if let Some(fs) = &security.filesystem {
        steps.landlock(fs)?;
    }
    steps.seccomp()
}

/// The capability steps on the calling thread (a single-threaded process about to exec).
/// Each drop commits new credentials and a read does not, so a capability is read before it
/// is dropped, unless the set is `full`: just after joining a user namespace, the kernel has
/// made it so. A drop that fails is checked by a read: a capability this kernel does not know
/// is not in the set.
pub fn limit_bounding(keep: &CapsHashSet, full: bool) -> Result<(), NodeError> {
    let has = |c| caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false);
    for c in caps::all() {
        if keep.contains(&c) || !(full || has(c)) {
            continue;
        }
        if let Err(e) = caps::drop(None, CapSet::Bounding, c) {
            if has(c) {
                return Err(cap_err("drop from the bounding set", e));
            }
        }
    }
    Ok(())
}

pub fn set_caps(keep: &CapsHashSet) -> Result<(), NodeError> {
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, keep)
        .map_err(|e| cap_err("set effective capabilities", e))?;
    caps::set(None, CapSet::Inheritable, keep)
        .map_err(|e| cap_err("set inheritable capabilities", e))?;
    caps::set(None, CapSet::Permitted, keep).map_err(|e| cap_err("set permitted capabilities", e))
}

/// Cleared, then each kept capability raised. (`caps::set` would instead lower every other
/// capability one by one, and each such prctl commits a new copy of the process's
/// credentials: 41 per node process, where this takes one plus one per kept capability.)
pub fn set_ambient(keep: &CapsHashSet) -> Result<(), NodeError> {
    caps::clear(None, CapSet::Ambient).map_err(|e| cap_err("clear ambient capabilities", e))?;
    for c in keep {
        caps::raise(None, CapSet::Ambient, *c)
            .map_err(|e| cap_err("set ambient capabilities", e))?;
    }
    Ok(())
}

/// Whether AppArmor is active on this kernel (a node with `apparmor:` is refused otherwise).
pub fn apparmor_active() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
        && std::path::Path::new("/sys/kernel/security/apparmor").exists()
}

/// Asks AppArmor to confine the next exec of this thread to `profile` (`aa_change_onexec`).
pub fn apparmor_on_exec(profile: &str) -> Result<(), NodeError> {
    let attr = [
        "/proc/thread-self/attr/apparmor/exec",
        "/proc/thread-self/attr/exec",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .ok_or_else(|| {
        NodeError::sys(
            "apparmor",
            std::io::Error::other("the kernel has no AppArmor"),
        )
    })?;
    std::fs::write(attr, format!("exec {profile}"))
        .map_err(|e| NodeError::sys(format!("confine to AppArmor profile {profile}"), e))
}

/// Opens the file through which a single-threaded process joins a cgroup, given the group's
/// `cgroup.procs`. On a cgroup v1 hierarchy that is `tasks`: moving the writing thread itself
/// (`0`) through `tasks` skips the kernel's global threadgroup lock, whose every write waits
/// for its readers (every fork on the machine) and an RCU grace period. The process is
/// single-threaded, so its thread is all of it.
pub fn open_cgroup(procs: &std::path::Path) -> Result<std::fs::File, NodeError> {
    let tasks = procs.with_file_name("tasks");
    let path = if procs.ends_with("cgroup.procs") && tasks.exists() {
        tasks
    } else {
        procs.to_path_buf()
    };
    std::fs::File::options()
        .write(true)
        .open(&path)
        .map_err(|e| NodeError::sys(format!("open {}", path.display()), e))
}

/// Moves the calling (single-threaded) process into the node's cgroups: writes `0` (the
/// writer itself) to each file from [`open_cgroup`], opened earlier (their permission is
/// checked with the opener's credentials).
pub fn join_cgroups(procs: &mut [std::fs::File]) -> Result<(), NodeError> {
    use std::io::Write;
    for f in procs {
        f.write_all(b"0")
            .map_err(|e| NodeError::sys("join the node's cgroup", e))?;
    }
    Ok(())
}

/// Makes the calling process not dumpable (`PR_SET_DUMPABLE` 0) until its next exec. A
/// process entering a node is, once its capabilities are cut, within the reach of the node's
/// processes: a tracer there could attach to it (`ptrace`) and, before its seccomp filter is
/// installed, skip the installation. The kernel lets nobody without `CAP_SYS_PTRACE` in the
/// host's user namespace attach to a process that is not dumpable, nor read its `/proc`
/// files. Exec makes the program dumpable again, as any program, under its filter. (The fix
/// of runc's CVE-2016-9962.)
pub fn not_dumpable() -> Result<(), NodeError> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| NodeError::sys("set not dumpable", e))
}

/// Closes every descriptor above standard error: called right before a node program is
/// executed, and by the init after its set-up. Whatever `topo`'s caller (or `topo` itself)
/// held without close-on-exec would otherwise reach the node, for instance a descriptor of a
/// host directory, through which a node could write on the host. `close_range` (Linux 5.9)
/// does it in one call; without it (or where a profile denies it), each descriptor listed in
/// `/proc/self/fd` is closed.
pub fn close_extra_fds() -> Result<(), NodeError> {
    // SAFETY: closes descriptors only; the caller is about to exec (or, the init, keeps no
    // descriptor above 2 in use), so nothing still uses them.
    if unsafe { libc::close_range(3, libc::c_uint::MAX, 0) } == 0 {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| NodeError::sys("list /proc/self/fd", e))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // The listing's own descriptor is closed already (EBADF, ignored).
    for fd in fds {
        // SAFETY: as above.
        unsafe {
            libc::close(fd);
        }
    }
    Ok(())
}

pub fn no_new_privs() -> Result<(), NodeError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| NodeError::sys("set no_new_privs", e))
}

fn cap_err(what: &str, e: caps::errors::CapsError) -> NodeError {
    NodeError::sys(what, std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl Steps for Recorder {
        fn join_cgroup(&mut self) -> Result<(), NodeError> {
            self.0.push("cgroup".into());
            Ok(())
        }
        fn enter_userns(&mut self) -> Result<(), NodeError> {
            self.0.push("userns".into());
            Ok(())
        }
        fn filter(&self) -> Option<&crate::node::seccomp::Filter> {
            None
        }
        fn enter_mounts(&mut self) -> Result<(), NodeError> {
            self.0.push("mounts".into());
            Ok(())
        }
        fn no_new_privs(&mut self) -> Result<(), NodeError> {
            self.0.push("no_new_privs".into());
            Ok(())
        }
        fn limit_bounding(&mut self, keep: &CapsHashSet) -> Result<(), NodeError> {
            self.0.push(format!("bounding {}", keep.len()));
            Ok(())
        }
        fn set_caps(&mut self, keep: &CapsHashSet) -> Result<(), NodeError> {
            self.0.push(format!("caps {}", keep.len()));
            Ok(())
        }
        fn set_ambient(&mut self, keep: &CapsHashSet) -> Result<(), NodeError> {
            self.0.push(format!("ambient {}", keep.len()));
            Ok(())
        }
        fn apparmor(&mut self, _: &str) -> Result<(), NodeError> {
            self.0.push("apparmor".into());
            Ok(())
        }
        fn landlock(&mut self, _: &Filesystem) -> Result<(), NodeError> {
            self.0.push("landlock".into());
            Ok(())
        }
        fn seccomp(&mut self) -> Result<(), NodeError> {
            self.0.push("seccomp".into());
            Ok(())
        }
    }

    #[test]
    fn steps_run_in_the_documented_order() {
        let mut r = Recorder::default();
        let sec = Security {
            filesystem: Some(Filesystem::default()),
            ..Security::default()
        };
        harden(&mut r, &sec).expect("harden");
        let want = [
            "cgroup",
            "userns",
            "mounts",
            "no_new_privs",
            "bounding 16",
            "caps 16",
            "ambient 16",
            "landlock",
            "seccomp",
        ];
        assert_eq!(r.0, want);
    }

    #[test]
    fn drop_all_then_add_keeps_exactly_the_added() {
        let c = Capabilities {
            drop: vec!["ALL".into()],
            add: vec!["NET_ADMIN".into(), "NET_RAW".into()],
        };
        let s = Security::resolve(Some(&c), None, None, true);
        assert_eq!(
            s.capabilities.iter().cloned().collect::<Vec<_>>(),
            ["NET_ADMIN", "NET_RAW"]
        );
        assert_eq!(s.cap_mask(), (1 << 12) | (1 << 13));
    }

    #[test]
    fn add_sys_admin_to_the_default_set_without_userns() {
        let c = Capabilities {
            drop: vec![],
            add: vec!["SYS_ADMIN".into()],
        };
        let plain = Security::resolve(None, None, None, false);
        assert!(!plain.capabilities.contains("SYS_ADMIN"));
        let s = Security::resolve(Some(&c), Some(&Seccomp::Unconfined), None, false);
        assert!(s.capabilities.contains("SYS_ADMIN") && s.capabilities.contains("NET_ADMIN"));
        assert_eq!(s.seccomp, Seccomp::Unconfined);
    }

    #[test]
    fn a_node_with_a_user_namespace_also_keeps_sys_admin() {
        let own = Security::resolve(None, None, None, true);
        let plain = Security::resolve(None, None, None, false);
        let extra: Vec<&String> = own.capabilities.difference(&plain.capabilities).collect();
        assert_eq!(extra, ["SYS_ADMIN"]);
    }
}
