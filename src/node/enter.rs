//! `topo __enter PID START [--detach] [--env K=V]… -- PROGRAM ARG…`: runs a program inside a
//! node, like `nsenter`: join the init's IPC, UTS, network and PID namespaces, fork (the PID
//! namespace applies to children only), join its mount namespace in the child, and exec.
//!
//! The program always starts in a session of its own: it never has the caller's terminal as
//! its controlling terminal, through which it could push input into the caller's shell
//! (TIOCSTI) or be handed signals meant for it.
//!
//! Without `--detach` the parent waits and exits with the program's status (128 + signal
//! when it was killed), passing SIGTERM, SIGHUP, SIGINT and SIGQUIT on. With `--tty` (`topo
//! exec` on a terminal) the program runs on a new pseudo-terminal that the parent relays:
//! the caller's terminal is put in raw mode, input and output are copied both ways, window
//! size changes are passed on, and the terminal is restored at the end (as `docker exec -t`).
//! With `--detach` the parent prints the program's host PID and start time and exits at once
//! (services). `--restart` is `--detach` with a supervisor: the child, once in the node and
//! held to its restrictions, stays as the service's process and runs the program in a child
//! of its own, again (after 0.1 s, doubling up to 10 s, back to 0.1 s after a run of 10 s or
//! more) each time it ends with a failure, until it exits 0.
//!
//! `topo __enter --serve PID START [OPTION]…` (no program) is the enter server of
//! [`super::serve`], which runs many programs through the same [`Prepared`].

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
use nix::sys::termios::SetArg;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvpe, fork, ForkResult, Pid};

use super::security::{self, Security, Steps};
use super::{NodeError, ProcId};

#[derive(Clone)]
pub struct EnterArgs {
    pub target: ProcId,
    pub detach: bool,
    /// Supervise the program, starting it again when it fails (implies `detach`).
    pub restart: bool,
    /// Run the program on a new pseudo-terminal relayed to this process's (`topo exec` on a
    /// terminal).
    pub tty: bool,
    pub env: Vec<(String, String)>,
    /// The node's security profile (JSON of [`Security`]); the default profile if absent.
    pub security: Security,
    /// `cgroup.procs` files of the node's cgroups, joined before anything else.
    pub cgroups: Vec<String>,
    /// Join the init's user namespace too (after the cgroup, before the mounts).
    pub userns: bool,
    pub argv: Vec<String>,
}

/// Parses the hidden subcommand's arguments (everything after `__enter`).
pub fn parse_args(args: &[String]) -> Result<EnterArgs, String> {
    parse_node_args(args, true)
}

/// Parses `PID START [OPTION]…`, and `-- PROGRAM ARG…` when `program` (the enter server
/// takes its programs from its socket).
pub(crate) fn parse_node_args(args: &[String], program: bool) -> Result<EnterArgs, String> {
    let mut it = args.iter();
    let pid = it
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("missing PID")?;
    let start = it
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("missing start time")?;
    let mut out = EnterArgs {
        target: ProcId { pid, start },
        detach: false,
        restart: false,
        tty: false,
        env: Vec::new(),
        security: Security::default(),
        cgroups: Vec::new(),
        userns: false,
        argv: Vec::new(),
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--detach" => out.detach = true,
            "--restart" => {
                out.detach = true;
                out.restart = true;
            }
            "--tty" => out.tty = true,
            "--env" => {
                let kv = it.next().ok_or("--env needs K=V")?;
                let (k, v) = kv.split_once('=').ok_or("--env needs K=V")?;
                set_env(&mut out.env, k, v);
            }
            "--security" => {
                let json = it.next().ok_or("--security needs a JSON value")?;
                out.security =
                    serde_json::from_str(json).map_err(|e| format!("bad --security: {e}"))?;
            }
            "--userns" => out.userns = true,
            "--cgroup" => out
                .cgroups
                .push(it.next().ok_or("--cgroup needs a path")?.clone()),
            "--" if program => {
                out.argv = it.cloned().collect();
                break;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if program && out.argv.is_empty() {
        return Err("missing program".into());
    }
    Ok(out)
}

/// Sets `k` in an environment list: a later value replaces an earlier one (the node's `env`
/// overrides the fixed set), as a program's getenv would otherwise see the first.
pub(super) fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    match env.iter_mut().find(|(key, _)| key == k) {
        Some(e) => e.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    }
}

/// Runs `argv` in the node whose init is `target` from this process, as `topo __enter` run
/// by [`super::spawn::enter_command`] would, without starting `topo` a second time: `topo
/// exec`. Returns the exit code (126 when entering fails, the error printed as the helper
/// prints it).
///
/// The process must be single-threaded (joining a user or mount namespace needs that, and the
/// child does everything after the fork) and must not need its own state afterwards: it has
/// joined the node's namespaces, its open-file limit is the caller's and its `PATH` the
/// node's when this returns.
pub fn run_here(target: ProcId, ctx: &super::NodeContext, tty: bool, argv: &[String]) -> i32 {
    super::restore_nofile_limit();
    let mut env = Vec::new();
    for (k, v) in &ctx.env {
        set_env(&mut env, k, v);
    }
    // The program is searched for on the node's PATH, as the helper (started with only that
    // variable) searches it; without one, the C library's default.
    match env.iter().find(|(k, _)| k == "PATH") {
        Some((_, path)) => std::env::set_var("PATH", path),
        None => std::env::remove_var("PATH"),
    }
    let args = EnterArgs {
        target,
        detach: false,
        restart: false,
        tty,
        env,
        security: ctx.security.clone(),
        cgroups: ctx
            .cgroups
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        userns: ctx.userns,
        argv: argv.to_vec(),
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "topo: error: {e}");
            126
        }
    }
}

/// Whether this process has one thread only (from `/proc/self/task`); false when that
/// cannot be read.
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.take(2).count() == 1)
}

/// Entry point of `topo __enter`. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    if args.first().is_some_and(|a| a == "--serve") {
        return super::serve::main(&args[1..]);
    }
    super::restore_nofile_limit();
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "topo __enter: {e}");
            return 2;
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "topo: error: {e}");
            126
        }
    }
}

/// The namespaces joined first, in this order. The mount and PID namespaces follow right
/// before the fork, once everything is opened that must be found on the host.
const BEFORE_FORK: [(&str, CloneFlags); 3] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
];

/// Opens the node's namespace of `kind`: the init's own, but for the network namespace, which
/// the init may hold open from outside it (see [`super::procfs::NODE_NET_FD`]).
fn open_ns(pid: i32, kind: &str) -> Result<File, NodeError> {
    let opened = match kind {
        "net" => super::procfs::open_node_net(pid),
        _ => File::open(format!("/proc/{pid}/ns/{kind}")),
    };
    opened.map_err(|e| NodeError::sys(format!("open the node's {kind} namespace"), e))
}

fn run(args: &EnterArgs) -> Result<i32, NodeError> {
    // Before anything of the node is joined, and inherited by the child, which stays out of
    // the node's reach until it is the program.
    security::not_dumpable()?;
    Prepared::open(args)?.enter(args, None)
}

/// What entering a node takes that can be had before entering it: its namespaces opened
/// (which pins them), its cgroups opened, its seccomp filter compiled. `topo __enter` opens
/// it and enters once; the enter server (`super::serve`) opens it once and enters from a
/// fresh child of its own per command, each inheriting these descriptors.
pub(crate) struct Prepared {
    pid_ns: File,
    /// The namespaces of [`BEFORE_FORK`].
    others: Vec<(File, CloneFlags, &'static str)>,
    steps: ChildSteps,
}

impl Prepared {
    /// Opens what entering the node of `args` needs; fails if its init is not running.
    pub(crate) fn open(args: &EnterArgs) -> Result<Prepared, NodeError> {
        let pid = args.target.pid;
        let mnt = open_ns(pid, "mnt")?;
        let pid_ns = open_ns(pid, "pid")?;
        let mut others = Vec::new();
        for (kind, flag) in BEFORE_FORK {
            others.push((open_ns(pid, kind)?, flag, kind));
        }
        // Checked after opening: the files now pin these namespaces, whatever happens to the
        // PID.
        if !args.target.alive() {
            return Err(not_running(pid));
        }
        let steps = ChildSteps::prepare(args, mnt)?;
        Ok(Prepared {
            pid_ns,
            others,
            steps,
        })
    }

    /// Joins the node's namespaces, forks into its PID namespace, and runs `args.argv` there
    /// in a child held to the node's restrictions; returns, without `--detach`, the program's
    /// exit code once it has ended. The calling process stays in the node's namespaces
    /// (except its PID namespace) afterwards: a helper that exits, or a child of the enter
    /// server. With `served` (the enter server's socket), the program's host PID is reported
    /// on it before the wait, and the program is killed when this process dies.
    pub(crate) fn enter(
        &mut self,
        args: &EnterArgs,
        served: Option<BorrowedFd>,
    ) -> Result<i32, NodeError> {
        for (file, flag, kind) in &self.others {
            setns(file.as_fd(), *flag)
                .map_err(|e| NodeError::sys(format!("join the node's {kind} namespace"), e))?;
        }
        let argv = cstrings(args.argv.iter().map(String::as_str))?;
        let env = cstrings(
            args.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )?;
        let tty = if args.tty && !args.detach {
            Some(Tty::open()?)
        } else {
            None
        };
        // Held from before the fork until the parent's handlers pass them on, so that none
        // that arrives in between ends the parent and leaves the program running.
        let held = if tty.is_none() && !args.detach {
            Some(block(&forwarded())?)
        } else {
            None
        };
        // The host's /proc, where the parent finds a detached child once it is in the node's
        // mounts.
        let host_proc = if args.detach {
            Some(File::open("/proc").map_err(|e| NodeError::sys("open the host's /proc", e))?)
        } else {
            None
        };
        // The mount namespace before the PID namespace: from the moment the child can be seen
        // in the node, its /proc/PID/mountinfo shows the node's mounts, never the host's.
        // (The child joins it once more as the node's root, which changes nothing.)
        setns(self.steps.mnt.as_fd(), CloneFlags::CLONE_NEWNS)
            .map_err(|e| NodeError::sys("join the node's mount namespace", e))?;
        nix::unistd::chdir("/").map_err(|e| NodeError::sys("chdir /", e))?;
        setns(self.pid_ns.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| NodeError::sys("join the node's pid namespace", e))?;
        if tty.is_none() && !args.detach && served.is_none() {
            // The common case (`topo exec`, `topo __enter`): the child shares this process's
            // memory until it is the program, so that nothing of this process is copied for
            // it (the page tables of a large binary) or torn down when it executes.
            let mut stack = super::vfork::Stack::new()?;
            let steps = &mut self.steps;
            let mut body = || {
                restore_mask(held.as_ref());
                let err = child(steps, args, None, &argv, &env);
                let _ = writeln!(std::io::stderr(), "topo: error: {err}");
                // SAFETY: ends the child at once, without running this process's exit
                // handlers or flushing its buffers (which are this process's own).
                unsafe { libc::_exit(127) }
            };
            let child = super::vfork::spawn(&mut stack, &mut body)?;
            return Ok(wait_forwarding(child, held));
        }
        // SAFETY: the caller is single-threaded (`topo __enter`, `topo exec` once it has
        // checked, a child of the single-threaded enter server), so the child may do anything
        // after fork.
        match unsafe { fork() }.map_err(|e| NodeError::sys("fork", e))? {
            ForkResult::Child => {
                if served.is_some() {
                    // Killed with the server's child that waits for it (whose parent, outside
                    // this PID namespace, shows as 0 until it is gone).
                    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err()
                        || nix::unistd::getppid().as_raw() != 0
                    {
                        std::process::exit(126);
                    }
                }
                restore_mask(held.as_ref());
                let slave = tty.map(|t| {
                    t.restore_child_signals();
                    t.slave
                });
                let err = child(&mut self.steps, args, slave, &argv, &env);
                let _ = writeln!(std::io::stderr(), "topo: error: {err}");
                std::process::exit(127)
            }
            ForkResult::Parent { child } => {
                if let Some(tty) = tty {
                    return Ok(tty.relay(child));
                }
                if args.detach {
                    let pid = child.as_raw();
                    let start =
                        super::procfs::stat_in(host_proc.as_ref(), pid).map_or(0, |(s, _)| s);
                    let id = ProcId { pid, start };
                    let _ = writeln!(std::io::stdout(), "{} {}", id.pid, id.start);
                    return Ok(0);
                }
                if let Some(sock) = served {
                    super::serve::report_started(sock, child.as_raw());
                }
                Ok(wait_forwarding(child, held))
            }
        }
    }
}

fn not_running(pid: i32) -> NodeError {
    NodeError::Failed {
        node: format!("pid {pid}"),
        message: "the node's init is not running".into(),
    }
}

/// The real [`Steps`] of a process entering a node: everything that allocates or opens files
/// is prepared before the fork.
struct ChildSteps {
    cgroups: Vec<File>,
    user: Option<File>,
    mnt: File,
    /// The device of our `/sys` before entering (see `mounts::ensure_sysfs`).
    host_sys: Option<u64>,
    seccomp: Option<super::seccomp::Filter>,
}

impl ChildSteps {
    fn prepare(args: &EnterArgs, mnt: File) -> Result<ChildSteps, NodeError> {
        let mut cgroups = Vec::new();
        for p in &args.cgroups {
            cgroups.push(super::security::open_cgroup(std::path::Path::new(p))?);
        }
        let user = if args.userns {
            Some(open_ns(args.target.pid, "user")?)
        } else {
            None
        };
        let seccomp = super::seccomp::compile(&args.security.seccomp)
            .map_err(|e| NodeError::sys("seccomp profile", std::io::Error::other(e.to_string())))?;
        Ok(ChildSteps {
            cgroups,
            user,
            mnt,
            host_sys: super::mounts::host_sys_dev(),
            seccomp,
        })
    }
}

impl Steps for ChildSteps {
    fn join_cgroup(&mut self) -> Result<(), NodeError> {
        security::join_cgroups(&mut self.cgroups)
    }
    fn enter_userns(&mut self) -> Result<(), NodeError> {
        match &self.user {
            Some(u) => {
                setns(u.as_fd(), CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| NodeError::sys("join the node's user namespace", e))?;
                super::userns::become_root()
            }
            None => Ok(()),
        }
    }
    fn enter_mounts(&mut self) -> Result<(), NodeError> {
        setns(self.mnt.as_fd(), CloneFlags::CLONE_NEWNS)
            .map_err(|e| NodeError::sys("join the node's mount namespace", e))?;
        nix::unistd::chdir("/").map_err(|e| NodeError::sys("chdir /", e))?;
        super::mounts::ensure_sysfs(self.host_sys)
    }
    fn filter(&self) -> Option<&super::seccomp::Filter> {
        self.seccomp.as_ref()
    }
    /// After joining the node's user namespace the set is full: nothing to read first.
    fn limit_bounding(&mut self, keep: &caps::CapsHashSet) -> Result<(), NodeError> {
        security::limit_bounding(keep, self.user.is_some())
    }
}

fn child(
    steps: &mut ChildSteps,
    args: &EnterArgs,
    tty: Option<OwnedFd>,
    argv: &[CString],
    env: &[CString],
) -> NodeError {
    // A session of its own, without the caller's terminal; with `--tty`, the new terminal.
    if let Err(e) = nix::unistd::setsid() {
        return NodeError::sys("setsid", e);
    }
    if let Some(slave) = tty {
        if let Err(e) = take_terminal(&slave) {
            return e;
        }
    }
    if let Err(e) = security::harden(steps, &args.security) {
        return e;
    }
    if args.detach {
        // A service: its standard output goes where its errors go (the log), not to the pipe
        // on which the parent reports its PID.
        let _ = nix::unistd::dup2_stdout(std::io::stderr());
    }
    if let Err(e) = security::close_extra_fds() {
        return e;
    }
    if args.restart {
        supervise(argv, env);
    }
    match execvpe(&argv[0], argv, env) {
        Ok(never) => match never {},
        Err(e) => NodeError::sys(format!("exec {}", argv[0].to_string_lossy()), e),
    }
}

/// The name (`comm`) a supervisor takes once it has restarted its program, followed by the
/// number of restarts (`comm` holds 15 bytes: up to 8 digits).
pub const SUPERVISOR_NAME: &str = "topo-r ";

/// Runs the program in a child, again after a back-off each time it ends with a failure;
/// exits 0 once it exits 0. Ended by SIGKILL (`down`, a stop of the service), its child is
/// killed with it (parent-death signal).
fn supervise(argv: &[CString], env: &[CString]) -> ! {
    use std::time::{Duration, Instant};
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(10);
    let me = nix::unistd::getpid();
    let mut delay = FIRST;
    let mut restarts: u64 = 0;
    loop {
        let started = Instant::now();
        // SAFETY: `topo __enter` is single-threaded, so the child may do anything after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                // The supervisor may have died between the fork and the prctl.
                if nix::unistd::getppid() != me {
                    std::process::exit(137);
                }
                let err = match execvpe(&argv[0], argv, env) {
                    Ok(never) => match never {},
                    Err(e) => e,
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "topo: error: exec {}: {err}",
                    argv[0].to_string_lossy()
                );
                std::process::exit(127)
            }
            Ok(ForkResult::Parent { child }) => {
                let status = loop {
                    match waitpid(child, None) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        other => break other,
                    }
                };
                let how = match status {
                    Ok(WaitStatus::Exited(_, 0)) => std::process::exit(0),
                    Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
                    Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
                    Ok(other) => format!("ended ({other:?})"),
                    Err(e) => format!("could not be waited for ({e})"),
                };
                if started.elapsed() >= MOST {
                    delay = FIRST;
                }
                restarts += 1;
                // How `status` counts the restarts: the supervisor's name (`comm`).
                if let Ok(name) = CString::new(format!("{SUPERVISOR_NAME}{restarts}")) {
                    let _ = nix::sys::prctl::set_name(&name);
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "topo: the service {how}; start {restarts} again in {:.1}s",
                    delay.as_secs_f64()
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(MOST);
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "topo: error: fork: {e}");
                std::thread::sleep(MOST);
            }
        }
    }
}

/// The slave of a new pseudo-terminal becomes the controlling terminal of the calling
/// process (a session leader without one) and its standard input, output and error.
fn take_terminal(slave: &OwnedFd) -> Result<(), NodeError> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal a terminal in use).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(NodeError::sys(
            "take the terminal",
            std::io::Error::last_os_error(),
        ));
    }
    nix::unistd::dup2_stdin(slave).map_err(|e| NodeError::sys("dup2 the terminal", e))?;
    nix::unistd::dup2_stdout(slave).map_err(|e| NodeError::sys("dup2 the terminal", e))?;
    nix::unistd::dup2_stderr(slave).map_err(|e| NodeError::sys("dup2 the terminal", e))
}

/// The signals the parent passes on to the program.
pub(super) const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
];

/// The signals of [`FORWARDED`] as a set.
pub(super) fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set
}

/// Blocks `signals`; returns the mask before.
pub(super) fn block(signals: &SigSet) -> Result<SigSet, NodeError> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(signals),
        Some(&mut old),
    )
    .map_err(|e| NodeError::sys("block signals", e))?;
    Ok(old)
}

/// Sets the signal mask back to `held`, the one that [`block`] returned, if signals were held.
pub(super) fn restore_mask(held: Option<&SigSet>) {
    if let Some(old) = held {
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(old),
            None,
        );
    }
}

/// Waits for the program, passing the signals of [`FORWARDED`] on; `held`: the mask to
/// restore once the handlers are in place (those signals were blocked before the fork).
fn wait_forwarding(child: Pid, held: Option<SigSet>) -> i32 {
    // SAFETY: installing a handler that only calls the async-signal-safe kill(2) with a PID
    // stored before the handler could run is sound.
    unsafe {
        CHILD.store(child.as_raw(), std::sync::atomic::Ordering::SeqCst);
        for sig in FORWARDED {
            let _ = signal(sig, SigHandler::Handler(forward));
        }
    }
    restore_mask(held.as_ref());
    loop {
        match waitpid(child, None) {
            Ok(status) => match exit_code(status) {
                Some(code) => return code,
                None => continue,
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 126,
        }
    }
}

/// The exit code for a child's end (128 + signal when killed); `None` if it has not ended.
pub(super) fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// A new pseudo-terminal for the program, and what the parent needs to relay it.
struct Tty {
    master: OwnedFd,
    slave: OwnedFd,
    /// The signals the parent reads from a signalfd, blocked before the fork.
    signals: SigSet,
    /// The signal mask before they were blocked, for the child.
    old_mask: SigSet,
}

impl Tty {
    /// Opens a pseudo-terminal the size of the caller's, and blocks the signals the relay
    /// reads (before the fork, so that none is lost; the child unblocks them).
    fn open() -> Result<Tty, NodeError> {
        let size = window_size(std::io::stdin().as_fd());
        let pty = nix::pty::openpty(size.as_ref(), None)
            .map_err(|e| NodeError::sys("open a pseudo-terminal", e))?;
        let mut signals = SigSet::empty();
        for sig in FORWARDED {
            signals.add(sig);
        }
        signals.add(Signal::SIGCHLD);
        signals.add(Signal::SIGWINCH);
        let mut old_mask = SigSet::empty();
        nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&signals),
            Some(&mut old_mask),
        )
        .map_err(|e| NodeError::sys("block signals", e))?;
        Ok(Tty {
            master: pty.master,
            slave: pty.slave,
            signals,
            old_mask,
        })
    }

    /// In the child: the signal mask it was started with.
    fn restore_child_signals(&self) {
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&self.old_mask),
            None,
        );
    }

    /// In the parent: relays until the program ends, then restores the caller's terminal and
    /// returns the program's exit code.
    fn relay(self, child: Pid) -> i32 {
        let Tty {
            master,
            slave,
            signals,
            ..
        } = self;
        drop(slave);
        let stdin = std::io::stdin();
        let stdin = stdin.as_fd();
        let saved = nix::sys::termios::tcgetattr(stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(stdin, SetArg::TCSANOW, &raw);
        }
        let code = Relay {
            stdin,
            master: master.as_fd(),
            child,
            pending: Vec::new(),
        }
        .run(&signals);
        if let Some(t) = &saved {
            let _ = nix::sys::termios::tcsetattr(stdin, SetArg::TCSANOW, t);
        }
        code
    }
}

/// The caller's window size, if its standard input is a terminal.
fn window_size(fd: BorrowedFd) -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into `ws`, which lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some(ws)
}

/// Copies the caller's window size to the program's terminal (whose foreground process
/// group the kernel then sends SIGWINCH).
fn pass_window_size(from: BorrowedFd, to: BorrowedFd) {
    if let Some(ws) = window_size(from) {
        // SAFETY: TIOCSWINSZ reads one `winsize` from `ws`, which lives across the call.
        unsafe {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

struct Relay<'a> {
    stdin: BorrowedFd<'a>,
    master: BorrowedFd<'a>,
    child: Pid,
    /// Input read from the caller, not yet taken by the program's terminal.
    pending: Vec<u8>,
}

impl Relay<'_> {
    fn run(&mut self, signals: &SigSet) -> i32 {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let Ok(sfd) = SignalFd::with_flags(signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        else {
            // Cannot relay: wait for the program as without a terminal.
            return self.wait();
        };
        if set_nonblocking(self.master).is_err() {
            return self.wait();
        }
        let mut stdin_open = true;
        let mut master_open = true;
        loop {
            let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let stdin_at = (stdin_open && self.pending.is_empty()).then(|| {
                fds.push(PollFd::new(self.stdin, PollFlags::POLLIN));
                fds.len() - 1
            });
            let master_at = master_open.then(|| {
                let mut ev = PollFlags::POLLIN;
                if !self.pending.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(self.master, ev));
                fds.len() - 1
            });
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return self.wait(),
            }
            let ready = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
            let (sig_ready, stdin_ready, master_ready) = (
                !ready(0).is_empty(),
                stdin_at.map(ready).unwrap_or(PollFlags::empty()),
                master_at.map(ready).unwrap_or(PollFlags::empty()),
            );
            drop(fds);
            if !stdin_ready.is_empty() && !self.read_input() {
                stdin_open = false;
            }
            if master_ready.contains(PollFlags::POLLOUT) {
                self.write_input();
            }
            if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                && !self.copy_output()
            {
                master_open = false;
            }
            if sig_ready {
                while let Ok(Some(info)) = sfd.read_signal() {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGWINCH) => pass_window_size(self.stdin, self.master),
                        Ok(Signal::SIGCHLD) => {}
                        Ok(sig) => {
                            let _ = nix::sys::signal::kill(self.child, sig);
                        }
                        Err(_) => {}
                    }
                }
                match waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(status) => {
                        if let Some(code) = exit_code(status) {
                            // What the program wrote last is still in the terminal (up to
                            // 1 MiB: a process left behind may keep writing).
                            for _ in 0..256 {
                                if !master_open || !self.copy_output() {
                                    break;
                                }
                            }
                            return code;
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return 126,
                }
            }
        }
    }

    /// Reads what the caller typed; `false` at its end.
    fn read_input(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(self.stdin, &mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.write_input();
                true
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Passes pending input on, as much as the program's terminal takes now.
    fn write_input(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                // Full (EAGAIN), or gone: the rest waits, or is dropped with the terminal.
                Err(_) => return,
            }
        }
    }

    /// Copies what the program wrote to the caller's standard output; `false` once the
    /// terminal has nothing more to give (every slave closed, EIO) or has nothing now
    /// (EAGAIN, which ends the draining loop only).
    fn copy_output(&mut self) -> bool {
        use std::io::Write;
        let mut buf = [0u8; 4096];
        match nix::unistd::read(self.master, &mut buf) {
            Ok(0) => false,
            Ok(n) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                true
            }
            Err(nix::errno::Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    /// Waits for the program without relaying.
    fn wait(&self) -> i32 {
        loop {
            match waitpid(self.child, None) {
                Ok(status) => {
                    if let Some(code) = exit_code(status) {
                        return code;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return 126,
            }
        }
    }
}

fn set_nonblocking(fd: BorrowedFd) -> Result<(), nix::errno::Errno> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; pid is a child of ours.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

pub(crate) fn cstrings<'a>(
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<CString>, NodeError> {
    items
        .map(|s| {
            CString::new(s).map_err(|_| {
                NodeError::sys(
                    "argument with a NUL byte",
                    std::io::Error::from_raw_os_error(libc::EINVAL),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_later_env_value_replaces_an_earlier_one() {
        let a = parse_args(&args(&[
            "1",
            "2",
            "--env",
            "PATH=/bin",
            "--env",
            "A=1",
            "--env",
            "PATH=/opt/bin",
            "--",
            "sh",
        ]))
        .unwrap();
        assert_eq!(
            a.env,
            [("PATH".into(), "/opt/bin".into()), ("A".into(), "1".into())]
        );
        assert_eq!(a.argv, ["sh"]);
    }
}
