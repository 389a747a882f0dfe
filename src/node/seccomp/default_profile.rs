//! `seccomp: default`: allow everything except the calls below (the reasons are in the parent
//! module's documentation). Written as an [`OciProfile`] so that it goes through the same
//! builder as a user's profile and could be printed as one.

use seccompiler::{SeccompAction, SeccompCmpOp, TargetArch};

use super::build::unknown_syscalls;
use super::oci::{ArgCmp, OciProfile, Rule};
use super::SeccompError;

/// Refused with EPERM whatever their arguments. Names are for x86_64 and aarch64; the few that
/// one of them lacks are left out where they do not exist.
pub(super) const DENIED: &[&str] = &[
    // The kernel keyring is not namespaced: keys would be shared with the host.
    "keyctl",
    "add_key",
    "request_key",
    // Loading kernel code, rebooting (in a PID namespace, reboot would kill the node's init).
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    // Host-wide state that no namespace covers.
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",
    "lookup_dcookie",
    "nfsservctl",
    "_sysctl",
    "uselib",
    // The clock: nodes share the host's.
    "clock_settime",
    "clock_adjtime",
    "settimeofday",
    "adjtimex",
    // File handles bypass path lookup and so the node's mount namespace ("shocker").
    "open_by_handle_at",
    "name_to_handle_at",
    // Mounts: a node's mounts are set up by its init before any node process runs.
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    // Namespaces: a node process stays in its node.
    "setns",
    // Large kernel attack surface that labs do not need.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // Raw port I/O.
    "iopl",
    "ioperm",
    // Reading other processes' memory and kernel object identities (Docker allows these only
    // with CAP_SYS_PTRACE).
    "kcmp",
    "process_vm_readv",
    "process_vm_writev",
];

/// The namespace flags of `clone`. `CLONE_NEWTIME` (0x80) is left out: in `clone`'s flags that
/// bit is part of the exit signal, and the kernel accepts `CLONE_NEWTIME` only from `clone3`
/// and `unshare`.
const CLONE_NS_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The `personality` values a program may set: the Linux default, 32-bit `uname` (`setarch
/// linux32`), the 2.6-style version number (`UNAME26`), no address randomisation (`setarch -R`,
/// gdb), and 0xffffffff, which only reads the current value. Other values (for instance
/// `READ_IMPLIES_EXEC` or `MMAP_PAGE_ZERO`) weaken memory protections and are refused.
/// `PER_LINUX32` from <sys/personality.h> (not in the libc crate).
const PER_LINUX32: u64 = 0x0008;

const PERSONALITIES: &[u64] = &[
    0,
    PER_LINUX32,
    libc::UNAME26 as u64,
    PER_LINUX32 | libc::UNAME26 as u64,
    libc::ADDR_NO_RANDOMIZE as u64,
    0xffff_ffff,
];

/// The default profile for `arch`.
pub(super) fn profile(arch: TargetArch) -> Result<OciProfile, SeccompError> {
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let absent = unknown_syscalls(DENIED.iter().copied(), arch);
    let mut rules = vec![Rule {
        names: DENIED
            .iter()
            .filter(|n| !absent.iter().any(|a| a == *n))
            .map(|n| n.to_string())
            .collect(),
        action: eperm.clone(),
        args: Vec::new(),
    }];
    // New namespaces: one rule per flag, since a rule can only test that masked bits are equal.
    let ns_flag = |name: &str, flag: libc::c_int| Rule {
        names: vec![name.to_string()],
        action: eperm.clone(),
        args: vec![ArgCmp {
            index: 0,
            op: SeccompCmpOp::MaskedEq(flag as u64),
            value: flag as u64,
        }],
    };
    rules.extend(CLONE_NS_FLAGS.iter().map(|f| ns_flag("clone", *f)));
    rules.extend(CLONE_NS_FLAGS.iter().map(|f| ns_flag("unshare", *f)));
    rules.push(ns_flag("unshare", libc::CLONE_NEWTIME));
    rules.push(Rule {
        names: vec!["personality".into()],
        action: eperm,
        args: PERSONALITIES
            .iter()
            .map(|v| ArgCmp {
                index: 0,
                op: SeccompCmpOp::Ne,
                value: *v,
            })
            .collect(),
    });
    // clone3 passes its flags in memory, out of a filter's reach. ENOSYS (as Docker does) makes
    // glibc fall back to clone, where the flags are checked above; EPERM would break threads.
    rules.push(Rule {
        names: vec!["clone3".into()],
        action: SeccompAction::Errno(libc::ENOSYS as u32),
        args: Vec::new(),
    });
    Ok(OciProfile {
        default_action: SeccompAction::Allow,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denied_name_is_a_syscall_somewhere() {
        let x86 = unknown_syscalls(DENIED.iter().copied(), TargetArch::x86_64);
        let arm = unknown_syscalls(DENIED.iter().copied(), TargetArch::aarch64);
        let typos: Vec<_> = x86.iter().filter(|n| arm.contains(n)).collect();
        assert!(typos.is_empty(), "not a syscall on any arch: {typos:?}");
        assert!(x86.is_empty(), "missing on x86_64: {x86:?}");
    }

    #[test]
    fn default_profile_builds_for_both_arches() {
        for arch in [TargetArch::x86_64, TargetArch::aarch64] {
            let p = profile(arch).unwrap();
            super::super::build::build(&p, arch).unwrap();
        }
    }
}
