//! `seccomp: default`: allow everything except the calls below (the reasons are in the parent
//! module's documentation). Written as an [`OciProfile`] so that it goes through the same
//! builder as a user's profile and could be printed as one.

use seccompiler::{SeccompAction, SeccompCmpOp, TargetArch};

use super::build::{self, unknown_syscalls};
use super::numbers;
use super::oci::{ArgCmp, OciProfile, Rule};
use super::program::{
    arg_high, arg_low, audit_arch, Asm, Insn, To, ARCH, JEQ_K, JGE_K, JSET_K, LD_ABS_W, NR, RET_K,
    X32_SYSCALL_BIT,
};
use super::{Filter, SeccompError};

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
    // The node's name, which its init set from the file (node root holds SYS_ADMIN in its
    // own user namespace, enough to change it otherwise).
    "sethostname",
    "setdomainname",
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

/// Refused with EPERM like [`DENIED`], by number: calls newer than seccompiler's table, so
/// that its profiles cannot name them. Their numbers are the same on x86_64 and aarch64 (new
/// calls are numbered alike on every architecture since Linux 5.1).
///
/// `open_tree_attr` (Linux 6.15) copies a mount and changes its flags in one call: node root
/// holds SYS_ADMIN over its own mount namespace, whose read-only mounts the init made there
/// (they are not locked), and would otherwise copy a read-only bind or the host's tree as
/// writable and write through the copy.
pub(super) const DENIED_NEWER: &[(&str, u32)] = &[("open_tree_attr", 467)];

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

/// `ioctl` requests refused: TIOCSTI pushes characters into a terminal's input (and so into
/// the shell of whoever owns the terminal), TIOCLINUX does the same and more on a virtual
/// console. Compared on the low 32 bits, as the kernel reads the request (`unsigned int`):
/// a request with high bits set is the same request to the kernel.
const IOCTLS: &[u32] = &[libc::TIOCSTI as u32, libc::TIOCLINUX as u32];

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

/// The default profile as one short program, equivalent to [`profile`] built by seccompiler
/// (the tests run both on every system call number with telling arguments).
///
/// Built from the profile, seccompiler makes three programs (the x32 guard, the EPERM rules
/// and clone3's ENOSYS: 4 + 515 + 17 instructions on x86_64), and the kernel allocates each
/// program with vmalloc, converts it to eBPF and compiles it, in every init. This one has
/// about 110 instructions:
///
/// ```text
///   ld arch; jeq AUDIT_ARCH else kill      wrong architecture: kill the process
///   ld nr; jge 0x40000000 → enosys         x86_64 only: the x32 ABI
///   binary search over the named calls     each → deny, enosys, or its argument check
///   ret allow
/// clone:       ld arg0 (low word); jset namespace flags → deny, else allow
/// unshare:     the same, with CLONE_NEWTIME
/// ioctl:       arg1 low word one of IOCTLS → deny, else allow
/// personality: arg0 high word 0 and low word one of PERSONALITIES → allow, else deny
/// ```
///
/// Falls back to seccompiler's programs should the program not assemble.
pub(super) fn filter(arch: TargetArch) -> Result<Filter, SeccompError> {
    filter_but(arch, &[])
}

/// The calls of [`DENIED`] that a node's init that lives outside its node's network
/// namespace needs: it joins that namespace for its set-up, and each command's process joins
/// it before it stacks [`setns_denied`] (see `init::Spawner`).
pub(super) const OUTSIDE_INIT_NEEDS: [&str; 1] = ["setns"];

/// [`filter`] without the denials of `allowed`.
pub(super) fn filter_but(arch: TargetArch, allowed: &[&str]) -> Result<Filter, SeccompError> {
    match compact(arch, allowed) {
        Some(program) => Ok(Filter {
            programs: vec![program],
        }),
        None => {
            let mut stack = build::build(&profile_but(arch, allowed)?, arch)?;
            stack.programs.extend(newer(arch));
            Ok(stack)
        }
    }
}

/// A program that refuses `setns` and allows every other call: stacked on the filter of
/// [`filter_but`]`(arch, &OUTSIDE_INIT_NEEDS)`, the two answer as [`filter`] does.
pub(super) fn setns_denied(arch: TargetArch) -> Result<Filter, SeccompError> {
    let missing = || SeccompError::Unsupported {
        key: "setns".into(),
        reason: "no program refuses it on this architecture".into(),
    };
    let nr = numbers::resolve(&OUTSIDE_INIT_NEEDS, arch)
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(missing)?;
    let mut asm = Asm::default();
    let [deny, allow] = std::array::from_fn(|_| asm.label());
    // Another architecture's calls are the stacked filter's to answer (it kills them).
    asm.stmt(LD_ABS_W, ARCH);
    asm.jump(JEQ_K, audit_arch(arch), To::Next, To::Label(allow));
    asm.stmt(LD_ABS_W, NR);
    asm.jump(JEQ_K, nr, To::Label(deny), To::Next);
    asm.bind(allow);
    asm.stmt(RET_K, libc::SECCOMP_RET_ALLOW);
    asm.bind(deny);
    asm.stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    let program = asm.finish().ok_or_else(missing)?;
    Ok(Filter {
        programs: vec![program],
    })
}

/// A program that refuses [`DENIED_NEWER`], to stack on seccompiler's programs of
/// [`profile`], which cannot name them.
fn newer(arch: TargetArch) -> Option<Vec<Insn>> {
    let mut asm = Asm::default();
    let [deny, allow] = std::array::from_fn(|_| asm.label());
    asm.stmt(LD_ABS_W, ARCH);
    asm.jump(JEQ_K, audit_arch(arch), To::Next, To::Label(allow));
    asm.stmt(LD_ABS_W, NR);
    for (_, nr) in DENIED_NEWER {
        asm.jump(JEQ_K, *nr, To::Label(deny), To::Next);
    }
    asm.bind(allow);
    asm.stmt(RET_K, libc::SECCOMP_RET_ALLOW);
    asm.bind(deny);
    asm.stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    asm.finish()
}

fn compact(arch: TargetArch, allowed: &[&str]) -> Option<Vec<Insn>> {
    let mut asm = Asm::default();
    let [deny, enosys, allow, kill, clone_l, unshare_l, personality_l, ioctl_l] =
        std::array::from_fn(|_| asm.label());
    // Each named call with where it goes, sorted by number.
    let denied: Vec<&str> = DENIED
        .iter()
        .copied()
        .filter(|n| !allowed.contains(n))
        .collect();
    let mut calls: Vec<(u32, usize)> = numbers::resolve(&denied, arch)
        .into_iter()
        .flatten()
        .chain(DENIED_NEWER.iter().map(|(_, nr)| *nr))
        .map(|nr| (nr, deny))
        .collect();
    let specials = [
        ("clone", clone_l),
        ("unshare", unshare_l),
        ("personality", personality_l),
        ("ioctl", ioctl_l),
        ("clone3", enosys),
    ];
    let names: Vec<&str> = specials.iter().map(|(n, _)| *n).collect();
    for (nr, (_, to)) in numbers::resolve(&names, arch).into_iter().zip(specials) {
        calls.push((nr?, to));
    }
    calls.sort_unstable();
    calls.dedup_by_key(|(nr, _)| *nr);

    asm.stmt(LD_ABS_W, ARCH);
    asm.jump(JEQ_K, audit_arch(arch), To::Next, To::Label(kill));
    asm.stmt(LD_ABS_W, NR);
    if arch == TargetArch::x86_64 {
        asm.jump(JGE_K, X32_SYSCALL_BIT, To::Label(enosys), To::Next);
    }
    search(&mut asm, &calls);

    let ns_flags = |extra: libc::c_int| CLONE_NS_FLAGS.iter().fold(extra, |m, f| m | f) as u32;
    for (label, mask) in [
        (clone_l, ns_flags(0)),
        (unshare_l, ns_flags(libc::CLONE_NEWTIME)),
    ] {
        asm.bind(label);
        asm.stmt(LD_ABS_W, arg_low(0));
        asm.jump(JSET_K, mask, To::Label(deny), To::Label(allow));
    }
    asm.bind(ioctl_l);
    asm.stmt(LD_ABS_W, arg_low(1));
    for (i, request) in IOCTLS.iter().enumerate() {
        let otherwise = if i + 1 == IOCTLS.len() {
            To::Label(allow)
        } else {
            To::Next
        };
        asm.jump(JEQ_K, *request, To::Label(deny), otherwise);
    }
    asm.bind(personality_l);
    asm.stmt(LD_ABS_W, arg_high(0));
    asm.jump(JEQ_K, 0, To::Next, To::Label(deny));
    asm.stmt(LD_ABS_W, arg_low(0));
    for v in PERSONALITIES {
        asm.jump(JEQ_K, u32::try_from(*v).ok()?, To::Label(allow), To::Next);
    }
    asm.bind(deny);
    asm.stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    asm.bind(enosys);
    asm.stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    asm.bind(allow);
    asm.stmt(RET_K, libc::SECCOMP_RET_ALLOW);
    asm.bind(kill);
    asm.stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS);
    asm.finish()
}

/// A binary search over `calls` (number, label), sorted, with the call's number in the
/// accumulator: a named number jumps to its label, any other is allowed.
fn search(asm: &mut Asm, calls: &[(u32, usize)]) {
    if calls.len() <= 4 {
        for (nr, to) in calls {
            asm.jump(JEQ_K, *nr, To::Label(*to), To::Next);
        }
        asm.stmt(RET_K, libc::SECCOMP_RET_ALLOW);
        return;
    }
    let mid = calls.len() / 2;
    let right = asm.label();
    asm.jump(JGE_K, calls[mid].0, To::Label(right), To::Next);
    search(asm, &calls[..mid]);
    asm.bind(right);
    search(asm, &calls[mid..]);
}

/// The default profile for `arch`, as an OCI profile: what [`filter`] compiles by hand.
#[cfg(test)]
pub(super) fn profile(arch: TargetArch) -> Result<OciProfile, SeccompError> {
    profile_but(arch, &[])
}

/// [`profile`] without the denials of `allowed`.
fn profile_but(arch: TargetArch, allowed: &[&str]) -> Result<OciProfile, SeccompError> {
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let absent = unknown_syscalls(DENIED.iter().copied(), arch);
    let mut rules = vec![Rule {
        names: DENIED
            .iter()
            .filter(|n| !absent.iter().any(|a| a == *n) && !allowed.contains(n))
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
    rules.extend(IOCTLS.iter().map(|request| Rule {
        names: vec!["ioctl".into()],
        action: eperm.clone(),
        args: vec![ArgCmp {
            index: 1,
            op: SeccompCmpOp::MaskedEq(0xffff_ffff),
            value: u64::from(*request),
        }],
    }));
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

    /// The hand-written program answers every call as seccompiler's programs for the same
    /// profile do: every number (and x32 ones), the right and two wrong architectures, and
    /// first arguments that tell the rules apart (each namespace flag, other clone flags,
    /// every allowed personality and others, high words set) and second arguments that tell
    /// the ioctl rules apart (each refused request, with high bits set, others).
    #[test]
    fn one_program_answers_as_the_profile_does() {
        use super::super::program::interp::{run, run_stack};
        let mut args: Vec<u64> = vec![0, 1, 0x11, 0x0400_0000, 0x1_0000_0000, u64::MAX];
        args.extend(CLONE_NS_FLAGS.iter().map(|f| *f as u64));
        args.push(libc::CLONE_NEWTIME as u64);
        args.push((libc::CLONE_NEWNET | libc::CLONE_THREAD | libc::SIGCHLD) as u64);
        args.push((libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES) as u64);
        for v in PERSONALITIES {
            args.extend([*v, *v | 0x1_0000_0000, *v ^ 1]);
        }
        let mut ioctl_args: Vec<u64> = vec![1, u64::from(libc::TIOCGWINSZ as u32), u64::MAX];
        for r in IOCTLS {
            let r = u64::from(*r);
            ioctl_args.extend([r, r | 0x1_0000_0000, r | 0xffff_ffff_0000_0000, r ^ 1]);
        }
        for arch in [TargetArch::x86_64, TargetArch::aarch64] {
            let one = filter(arch).unwrap();
            assert_eq!(one.programs.len(), 1, "{arch:?}");
            assert!(one.programs[0].len() < 150, "{}", one.programs[0].len());
            let mut stack = build::build_plain(&profile(arch).unwrap(), arch).unwrap();
            stack.programs.extend(newer(arch));
            let native = super::super::program::audit_arch(arch);
            let numbers = (0..1100u32)
                .chain(0x4000_0000..0x4000_0200)
                .chain([u32::MAX]);
            // (arg0, arg1): every first argument with arg1 0, every second with arg0 0.
            let pairs: Vec<(u64, u64)> = args
                .iter()
                .map(|a| (*a, 0))
                .chain(ioctl_args.iter().map(|b| (0, *b)))
                .collect();
            for nr in numbers {
                for arch_word in [native, 0x4000_0003, 0] {
                    for (a, b) in &pairs {
                        let mut data = [0u32; 16];
                        data[0] = nr;
                        data[1] = arch_word;
                        data[4] = *a as u32;
                        data[5] = (*a >> 32) as u32;
                        data[6] = *b as u32;
                        data[7] = (*b >> 32) as u32;
                        assert_eq!(
                            run(&one.programs[0], &data),
                            run_stack(&stack.programs, &data),
                            "{arch:?} nr {nr} arch {arch_word:#x} arg0 {a:#x} arg1 {b:#x}"
                        );
                    }
                }
            }
        }
    }

    /// A command started by an init that lives outside its node's network namespace runs
    /// under the init's filter and the program it stacks after joining the namespace: every
    /// call, on every architecture word, is answered as the default filter answers it, and
    /// only `setns` differently by the init's filter alone.
    #[test]
    fn an_outside_inits_filter_and_its_commands_stack_answer_as_the_default() {
        use super::super::program::interp::{run, run_stack};
        for arch in [TargetArch::x86_64, TargetArch::aarch64] {
            let default = filter(arch).unwrap();
            let init = filter_but(arch, &OUTSIDE_INIT_NEEDS).unwrap();
            let commands = setns_denied(arch).unwrap();
            let stack: Vec<_> = init
                .programs
                .iter()
                .chain(&commands.programs)
                .cloned()
                .collect();
            let setns = numbers::resolve(&["setns"], arch)[0].unwrap();
            let native = super::super::program::audit_arch(arch);
            let mut differ = Vec::new();
            for nr in (0..1100u32).chain(0x4000_0000..0x4000_0200) {
                for arch_word in [native, 0x4000_0003, 0] {
                    for arg0 in [0u64, libc::CLONE_NEWNET as u64, u64::MAX] {
                        let mut data = [0u32; 16];
                        data[0] = nr;
                        data[1] = arch_word;
                        data[4] = arg0 as u32;
                        data[5] = (arg0 >> 32) as u32;
                        let want = run(&default.programs[0], &data);
                        assert_eq!(run_stack(&stack, &data), want, "{arch:?} nr {nr}");
                        if run_stack(&init.programs, &data) != want {
                            differ.push((nr, arch_word));
                        }
                    }
                }
            }
            differ.dedup();
            assert_eq!(differ, [(setns, native)], "{arch:?}");
        }
    }

    #[test]
    fn calls_newer_than_seccompilers_table_are_refused_and_unknown_to_it() {
        use super::super::program::interp::run;
        for arch in [TargetArch::x86_64, TargetArch::aarch64] {
            let one = filter(arch).unwrap();
            let native = super::super::program::audit_arch(arch);
            for (name, nr) in DENIED_NEWER {
                // Still unknown to seccompiler: else it belongs in DENIED.
                assert_eq!(numbers::resolve(&[*name], arch), [None], "{name}");
                let mut data = [0u32; 16];
                data[0] = *nr;
                data[1] = native;
                assert_eq!(
                    run(&one.programs[0], &data),
                    libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                    "{arch:?} {name}"
                );
            }
        }
    }

    #[test]
    fn default_profile_builds_for_both_arches() {
        for arch in [TargetArch::x86_64, TargetArch::aarch64] {
            let p = profile(arch).unwrap();
            super::super::build::build(&p, arch).unwrap();
        }
    }
}
