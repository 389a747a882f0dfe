//! Seccomp filters for node processes: `seccomp: default | unconfined | PROFILE.json`.
//!
//! [`compile`] turns the topology's choice into a [`Filter`] (a stack of BPF programs, built with
//! seccompiler) before any fork; [`install`] loads it into the calling thread as the last step
//! before `exec`, after capabilities are dropped. The filter then holds for the program and
//! everything it starts. `unconfined` installs nothing.
//!
//! # The default profile
//!
//! Like systemd-nspawn's filter, and unlike Docker's allow list, it allows every system call
//! except a deny list, so that routing daemons (FRR, BIRD), ping, tcpdump (`AF_PACKET`, classic
//! BPF through `setsockopt(SO_ATTACH_FILTER)`), iperf3, Python servers and new system calls
//! keep working. Capabilities remain the first line of defence; the list removes kernel
//! interfaces that a node never needs, even with capabilities, because they reach beyond the
//! node or are a large attack surface. Denied calls fail with EPERM, as in Docker:
//!
//! - kernel keyring, not namespaced: `keyctl`, `add_key`, `request_key`;
//! - kernel code and power: `kexec_load`, `kexec_file_load`, `init_module`, `finit_module`,
//!   `delete_module`, `reboot` (in a PID namespace, reboot kills the node's init);
//! - host-wide state without a namespace: `swapon`, `swapoff`, `acct`, `quotactl`,
//!   `quotactl_fd`, `syslog`, `vhangup`, `lookup_dcookie`, `nfsservctl`, `_sysctl`, `uselib`;
//! - the clock, which nodes share with the host: `clock_settime`, `clock_adjtime`,
//!   `settimeofday`, `adjtimex` (so an NTP daemon in a node needs `unconfined`; `stime` exists
//!   on neither x86_64 nor aarch64);
//! - the node's name, set by its init from the file: `sethostname`, `setdomainname`;
//! - file handles, which bypass the mount namespace: `open_by_handle_at`, `name_to_handle_at`;
//! - mounts, which the node's init has already made: `mount`, `umount2`, `pivot_root`,
//!   `move_mount`, `open_tree`, `fsopen`, `fsconfig`, `fsmount`, `fspick`, `mount_setattr`
//!   (so `ip netns add` inside a node fails);
//! - leaving or making namespaces: `setns`; `unshare` and `clone` when their flags ask for a
//!   new namespace (`CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP`, plus
//!   `CLONE_NEWTIME` for `unshare`; other `unshare` flags such as `CLONE_FILES` stay allowed);
//!   `clone3` fails with ENOSYS, as in Docker, because its flags are in memory where a filter
//!   cannot read them, and glibc then falls back to `clone`;
//! - attack surface: `bpf` (so `ip vrf exec` and bpftrace need `unconfined`; tcpdump's
//!   filters do not use it), `perf_event_open`, `userfaultfd`, `io_uring_setup`,
//!   `io_uring_enter`, `io_uring_register` (Docker dropped io_uring too);
//! - raw port I/O: `iopl`, `ioperm`;
//! - other processes' memory and kernel pointers: `process_vm_readv`, `process_vm_writev`,
//!   `kcmp` (Docker allows them only with CAP_SYS_PTRACE);
//! - typing into a terminal: `ioctl` with `TIOCSTI` or `TIOCLINUX` (compared on the request's
//!   low 32 bits, as the kernel reads it), so that no node program can push commands into the
//!   input of a terminal it holds;
//! - `personality` except the harmless values: 0, `PER_LINUX32`, `UNAME26`, both together,
//!   `ADDR_NO_RANDOMIZE` (gdb, `setarch -R`) and 0xffffffff (a query).
//!
//! Allowed on purpose: `ptrace`, so that strace and gdb work inside a node. Since Linux 4.8
//! the kernel re-checks seccomp after a tracer changes a call, the PID namespace keeps the
//! tracees inside the node, and tracing other users' processes still needs CAP_SYS_PTRACE.
//! `mbind`, `set_mempolicy` and friends are allowed (NUMA placement is harmless).
//!
//! Only the native ABI is filtered: on x86_64, an i386 (`int 0x80`) call kills the process
//! (seccompiler's architecture check) and an x32 call fails with ENOSYS; without that, an x32
//! `keyctl` would slip past a deny list written in x86_64 numbers. 32-bit programs therefore
//! do not run under a filter. Calls newer than seccompiler's table (Linux 6.12) that matter
//! are refused by number (`default_profile::DENIED_NEWER`: `open_tree_attr`, which would copy
//! a read-only mount as writable for node root, who holds SYS_ADMIN over its own mount
//! namespace in its user namespace).
//!
//! # Profiles
//!
//! A file in the OCI runtime / Docker format. Supported: `defaultAction`, `defaultErrnoRet`,
//! `architectures`, `archMap` (for this machine only), and `syscalls` entries with `names`
//! (or Docker's older `name`), `action`, `errnoRet`, `comment` and `args` (`index`, `value`,
//! `valueTwo`, `op`). Actions: `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO` (EPERM unless `errnoRet`),
//! `SCMP_ACT_KILL` (= `SCMP_ACT_KILL_THREAD`, as in libseccomp), `SCMP_ACT_KILL_THREAD`,
//! `SCMP_ACT_KILL_PROCESS`, `SCMP_ACT_TRAP`, `SCMP_ACT_LOG`. Comparisons: `SCMP_CMP_EQ`, `NE`,
//! `LT`, `LE`, `GT`, `GE`, and `MASKED_EQ` (`arg & value == valueTwo`), all on 64 bits like
//! libseccomp. The arguments of one entry must all match; when several entries match one
//! call, the strictest action wins (the kernel's order: kill process, kill thread, trap,
//! errno, log, allow), and among errno entries the errno value that the profile uses first
//! latest (filters are stacked per action, in the order the profile first uses each).
//!
//! Refused, with an error that names the key, rather than silently ignored: non-empty
//! `includes`/`excludes` (capability, kernel-version or arch conditions: Docker's own
//! `default.json` uses them, so it must be trimmed first), `flags`, `listenerPath`,
//! `listenerMetadata`, `SCMP_ACT_TRACE` (no tracer), `SCMP_ACT_NOTIFY` (no agent), an
//! `archMap` entry for another machine, an `architectures` list without this machine, an
//! unknown architecture name, and any key the format does not have.
//!
//! A name that is not a system call on this machine is an error too, even in an allow rule:
//! a misspelt name in a deny rule would otherwise let the call through unnoticed, and the
//! names of other architectures (`chown32`, `_llseek`) are simple to delete from a profile
//! meant for this one.

mod build;
mod default_profile;
mod numbers;
mod oci;
mod program;
mod shortcut;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use seccompiler::TargetArch;
use thiserror::Error;

use crate::spec::Seccomp;

#[derive(Debug, Error)]
pub enum SeccompError {
    #[error("not an OCI seccomp profile: {0}")]
    Json(#[source] serde_json::Error),
    #[error("{key}: {reason}")]
    Unsupported { key: String, reason: String },
    #[error("{key}: '{name}' is not a system call on {arch}")]
    UnknownSyscall {
        key: String,
        name: String,
        arch: String,
    },
    #[error("build the seccomp filter: {0}")]
    Build(#[source] seccompiler::Error),
    #[error("seccomp filters are not supported on {0}")]
    Arch(String),
    #[error("read seccomp profile {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("seccomp profile {path}: {source}")]
    Profile {
        path: PathBuf,
        #[source]
        source: Box<SeccompError>,
    },
    #[error("set no_new_privs: {0}")]
    NoNewPrivs(#[source] io::Error),
    #[error("install seccomp filter {index} of {count}: {source}")]
    Install {
        index: usize,
        count: usize,
        #[source]
        source: io::Error,
    },
}

/// BPF programs to load in order; the kernel runs all of them on every system call.
#[derive(Clone)]
pub struct Filter {
    programs: Vec<Vec<libc::sock_filter>>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lens: Vec<usize> = self.programs.iter().map(Vec::len).collect();
        write!(f, "Filter {{ program lengths: {lens:?} }}")
    }
}

/// The filter for a node's `seccomp` choice; `None` for `unconfined`. Reads the profile file,
/// so call it before forking.
pub fn compile(choice: &Seccomp) -> Result<Option<Filter>, SeccompError> {
    match choice {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => default_profile::filter(host_arch()?).map(Some),
        Seccomp::Profile(path) => compile_file(path, host_arch()?).map(Some),
    }
}

/// The filters of a node whose init lives outside the node's network namespace and starts
/// commands in it: the init's, and what each command's process stacks on it once it has
/// joined the namespace. Together they hold a command to what [`compile`]'s filter holds it
/// to. `None` for `unconfined`.
pub struct Outside {
    pub init: Filter,
    pub commands: Option<Filter>,
}

/// [`compile`] for a node whose init lives outside the node's network namespace. A profile of
/// the user's is the init's as it is; such a node's commands are not started by its init.
pub fn compile_outside(choice: &Seccomp) -> Result<Option<Outside>, SeccompError> {
    match choice {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => {
            let arch = host_arch()?;
            Ok(Some(Outside {
                init: default_profile::filter_but(arch, &default_profile::OUTSIDE_INIT_NEEDS)?,
                commands: Some(default_profile::setns_denied(arch)?),
            }))
        }
        Seccomp::Profile(path) => Ok(Some(Outside {
            init: compile_file(path, host_arch()?)?,
            commands: None,
        })),
    }
}

/// Checks a profile file the way [`compile`] would use it; the message names the file and
/// the offending key.
pub fn check_profile_file(path: &Path) -> Result<(), String> {
    host_arch()
        .and_then(|arch| compile_file(path, arch))
        .map(drop)
        .map_err(|e| e.to_string())
}

fn compile_file(path: &Path, arch: TargetArch) -> Result<Filter, SeccompError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    oci::parse_oci_for(&text, arch)
        .and_then(|profile| build::build(&profile, arch))
        .map_err(|e| SeccompError::Profile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
}

/// Loads `filter` into the calling thread (and so into whatever it executes), after setting
/// no_new_privs, which an unprivileged filter needs. Does not allocate, so a child forked from
/// a multi-threaded process may call it before `exec`. Programs are loaded one by one: a
/// profile that denies `seccomp(2)` itself fails here unless that rule is in its last filter.
pub fn install(filter: &Filter) -> Result<(), SeccompError> {
    // SAFETY: prctl with integer arguments only; it changes a flag of the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(SeccompError::NoNewPrivs(io::Error::last_os_error()));
    }
    let count = filter.programs.len();
    for (i, prog) in filter.programs.iter().enumerate() {
        load(prog).map_err(|source| SeccompError::Install {
            index: i + 1,
            count,
            source,
        })?;
    }
    Ok(())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)` for the calling thread.
fn load(prog: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads the instructions.
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` initialised instructions that outlive the call; the
    // kernel copies them (copy_from_user) and keeps no reference.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The architecture filters are built for: the one this program runs as.
fn host_arch() -> Result<TargetArch, SeccompError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SeccompError::Arch(std::env::consts::ARCH.to_string()))
}

#[cfg(test)]
mod tests;
