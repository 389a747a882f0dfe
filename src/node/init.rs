//! `topo __spawn`: starts node inits; each becomes PID 1 of its node.
//!
//! The process joins the node's network namespace, unshares a PID namespace and forks: the
//! child is PID 1 of the new PID namespace. The child unshares mount, UTS and IPC namespaces,
//! sets the node up (mounts, hostname), reports on a pipe, and then only reaps zombies until it is
//! told to stop; when it exits the kernel kills everything else in the node. The parent
//! prints the child's host PID and start time and exits, so the init is nobody's child in
//! `topo` and outlives it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, setsid, ForkResult, Pid};

use super::security::{self, Steps};
use super::{mounts, InitConfig, NodeError, ProcId};

/// Entry point of `topo __spawn`: starts many node inits without an exec each. Reads one
/// JSON [`InitConfig`] per line on stdin and forks, for each, a child that starts that
/// node's init and reports `NODE PID START` or `NODE error: …` on one
/// stdout line. Forking from this small single-threaded process costs far less than
/// executing the `topo` binary once per node.
pub fn spawn_main() -> i32 {
    // If `topo up` dies (killed), so does this helper, and so does every node set-up under
    // way: nothing keeps making inits that the next `down` or `up` would not know of.
    die_with_parent();
    // All configurations stay in the one buffer they were read into, and each child parses
    // its own: the inits are forks of this process, and a heap full of parsed structures
    // would be copied page by page into every one of them as they allocate (1.4 MiB per
    // node at 1000 nodes, measured).
    let mut all = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut all) {
        println!("? error: read configurations: {e}");
        return 1;
    }
    let mut jobs = Vec::new();
    let mut at = 0;
    for line in all.split_inclusive('\n') {
        let range = at..at + line.len();
        at += line.len();
        match serde_json::from_str::<InitConfig>(line) {
            // Each namespace is opened now, before the mount table is pruned below.
            Ok(config) => match File::open(&config.netns) {
                Ok(netns) => jobs.push((range, netns)),
                Err(e) => println!(
                    "{} error: open {}: {e}",
                    config.node,
                    config.netns.display()
                ),
            },
            Err(e) => println!("? error: bad configuration: {e}"),
        }
    }
    // Every node's mount namespace is a copy of this one. The host's holds a bind mount per
    // named network namespace, so copying it N times would cost O(N²); a private copy
    // without /run/netns, made once here, keeps each node's copy small.
    if unshare(CloneFlags::CLONE_NEWNS).is_ok() {
        let _ = nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
            None::<&str>,
        );
        let _ = nix::mount::umount2("/run/netns", nix::mount::MntFlags::MNT_DETACH);
    }
    let mut running = 0;
    for (range, netns) in jobs {
        // A few at a time: node set-up is mostly mount work under one kernel lock, and a
        // thousand processes contending for it are slower than a short queue.
        if running >= SPAWN_PARALLEL {
            let _ = waitpid(Pid::from_raw(-1), None);
            running -= 1;
        }
        // SAFETY: `topo __spawn` is single-threaded (no runtime exists in this mode).
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                die_with_parent();
                let Ok(config) = serde_json::from_str::<InitConfig>(&all[range]) else {
                    std::process::exit(1)
                };
                redirect_stderr(&config);
                let line = match start_in(&config, netns) {
                    Ok(id) => format!("{} {} {}\n", config.node, id.pid, id.start),
                    Err(e) => format!(
                        "{} error: {}\n",
                        config.node,
                        e.to_string().replace('\n', " ")
                    ),
                };
                // One write: lines of several children never interleave (below PIPE_BUF).
                let _ = std::io::stdout().write_all(line.as_bytes());
                std::process::exit(0)
            }
            Ok(ForkResult::Parent { .. }) => running += 1,
            Err(e) => println!("? error: fork: {e}"),
        }
    }
    while running > 0 && waitpid(Pid::from_raw(-1), None).is_ok() {
        running -= 1;
    }
    0
}

/// How many node inits `topo __spawn` sets up at once.
const SPAWN_PARALLEL: usize = 4;

/// Asks the kernel to kill this process when its parent ends, and covers the case where
/// the parent ended already.
fn die_with_parent() {
    let parent = nix::unistd::getppid();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(1);
    }
}

/// The node's init log becomes standard error of everything the node's init does.
fn redirect_stderr(config: &InitConfig) {
    if let Some(log) = &config.log {
        if let Ok(f) = File::options().create(true).append(true).open(log) {
            let _ = nix::unistd::dup2_stderr(&f);
        }
    }
}

/// Starts the init in the given (opened) network namespace.
fn start_in(config: &InitConfig, netns: File) -> Result<ProcId, NodeError> {
    // Opened now, while we are still root of the host: the cgroup files are checked against
    // the credentials they were opened with.
    let mut cgroups = Vec::new();
    for p in &config.ctx.cgroups {
        let f = File::options().write(true).open(p);
        cgroups.push(f.map_err(|e| NodeError::sys(format!("open {}", p.display()), e))?);
    }
    if config.ctx.userns {
        // The user namespace comes first: the PID, mount, UTS and IPC namespaces made next
        // are then owned by it, and node root may mount /proc and set the hostname.
        let user = super::userns::owner(&netns)?;
        setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| NodeError::sys("join the node's user namespace", e))?;
        super::userns::become_root()?;
    }
    setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NodeError::sys("join the node's netns", e))?;
    drop(netns);
    // The PID namespace applies to the children of the caller; the others are unshared by
    // the child itself, so that its fresh /proc never replaces the one this parent reads.
    unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| NodeError::sys("unshare the pid namespace", e))?;
    let filter = super::seccomp::compile(&config.ctx.security.seccomp)
        .map_err(|e| NodeError::sys("seccomp profile", std::io::Error::other(e.to_string())))?;
    let (rd, wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| NodeError::sys("pipe", e))?;
    // SAFETY: `topo __spawn` runs before any thread is started (no tokio runtime exists in
    // this mode), so the child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| NodeError::sys("fork the node init", e))? {
        ForkResult::Child => {
            drop(rd);
            // Until it reports ready, the init dies with the process that waits for it.
            die_with_parent();
            let code = be_init(config, cgroups, filter, wr);
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(wr);
            wait_ready(config, rd, child)
        }
    }
}

fn wait_ready(config: &InitConfig, rd: OwnedFd, child: Pid) -> Result<ProcId, NodeError> {
    let mut report = String::new();
    File::from(rd)
        .read_to_string(&mut report)
        .map_err(|e| NodeError::sys("read the init's report", e))?;
    if report.trim() == "ok" {
        if let Some(id) = ProcId::of(child.as_raw()) {
            return Ok(id);
        }
    }
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    Err(NodeError::Failed {
        node: config.node.clone(),
        message: if report.is_empty() {
            "init exited during set-up".into()
        } else {
            report.trim().to_string()
        },
    })
}

/// PID 1 of the node. Sets the node up, reports, then reaps until told to stop.
fn be_init(
    config: &InitConfig,
    cgroups: Vec<File>,
    filter: Option<super::seccomp::Filter>,
    report: OwnedFd,
) -> i32 {
    // Standard output is `topo`'s pipe: let go of it, or `topo` would wait for our EOF.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stdin(&null);
    }
    let _ = setsid();
    // What `ps` shows for PID 1 inside the node.
    let _ = nix::sys::prctl::set_name(c"topo-init");
    let mut report = File::from(report);
    let signals = init_signals();
    let ready = security::harden(
        &mut InitSteps {
            config,
            cgroups,
            filter,
        },
        &config.ctx.security,
    )
    .and_then(|()| {
        signals
            .thread_block()
            .map_err(|e| NodeError::sys("block signals", e))
    });
    match ready {
        Ok(()) => {
            let _ = report.write_all(b"ok\n");
            // Ready: from now on the init outlives whoever started it. The report pipe is
            // closed only after this, and the parent waits for that close.
            let _ = nix::sys::prctl::set_pdeathsig(None);
        }
        Err(e) => {
            let _ = writeln!(report, "{e}");
            return 1;
        }
    }
    drop(report);
    let _ = nix::unistd::chdir("/");
    reap_loop(&signals)
}

/// The init's own [`Steps`]: it joins the node's cgroups, makes the node's mount, UTS and
/// IPC namespaces, and is then held to the node's capabilities and seccomp filter.
struct InitSteps<'a> {
    config: &'a InitConfig,
    cgroups: Vec<File>,
    /// Compiled before the mounts: a profile file may live where the node's own /tmp or
    /// root then covers it.
    filter: Option<super::seccomp::Filter>,
}

impl Steps for InitSteps<'_> {
    fn join_cgroup(&mut self) -> Result<(), NodeError> {
        security::join_cgroups(&mut self.cgroups)
    }
    /// Joined before the fork already (see `start`): the PID namespace must be owned by it.
    fn enter_userns(&mut self) -> Result<(), NodeError> {
        Ok(())
    }
    fn enter_mounts(&mut self) -> Result<(), NodeError> {
        let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
        unshare(flags).map_err(|e| NodeError::sys("unshare mount, uts and ipc namespaces", e))?;
        mounts::set_up(self.config)?;
        nix::unistd::sethostname(&self.config.node).map_err(|e| NodeError::sys("sethostname", e))
    }
    fn filter(&self) -> Option<&super::seccomp::Filter> {
        self.filter.as_ref()
    }
}

fn init_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Waits for signals: reaps children on SIGCHLD; on SIGTERM, SIGINT or SIGHUP, asks every
/// process of the node to stop and exits (the kernel then kills what is left).
fn reap_loop(signals: &SigSet) -> i32 {
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap_all(),
            Ok(_) => {
                let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                return 0;
            }
            Err(_) => reap_all(),
        }
    }
}

fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
