//! `topo __enter PID START [--detach] [--env K=V]… -- PROGRAM ARG…`: runs a program inside a
//! node, like `nsenter`: join the init's IPC, UTS, network and PID namespaces, fork (the PID
//! namespace applies to children only), join its mount namespace in the child, and exec.
//!
//! Without `--detach` the parent waits and exits with the program's status (128 + signal
//! when it was killed), passing SIGTERM and SIGHUP on; SIGINT and SIGQUIT from a terminal
//! reach the program directly (same process group), so the parent ignores them. With
//! `--detach` the parent prints the program's host PID and start time and exits at once
//! (services).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execvpe, fork, ForkResult, Pid};

use super::security::{self, Security, Steps};
use super::{NodeError, ProcId};

pub struct EnterArgs {
    pub target: ProcId,
    pub detach: bool,
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
        env: Vec::new(),
        security: Security::default(),
        cgroups: Vec::new(),
        userns: false,
        argv: Vec::new(),
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--detach" => out.detach = true,
            "--env" => {
                let kv = it.next().ok_or("--env needs K=V")?;
                let (k, v) = kv.split_once('=').ok_or("--env needs K=V")?;
                // A later value replaces an earlier one (the node's `env` overrides the
                // fixed set): a program's getenv would otherwise see the first.
                match out.env.iter_mut().find(|(key, _)| key == k) {
                    Some(e) => e.1 = v.to_string(),
                    None => out.env.push((k.to_string(), v.to_string())),
                }
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
            "--" => {
                out.argv = it.cloned().collect();
                break;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if out.argv.is_empty() {
        return Err("missing program".into());
    }
    Ok(out)
}

/// Entry point of `topo __enter`. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    super::restore_nofile_limit();
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("topo __enter: {e}");
            return 2;
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("topo: {e}");
            126
        }
    }
}

/// The namespaces joined before the fork, in this order; the mount namespace comes last, in
/// the child, after which paths resolve in the node.
const BEFORE_FORK: [(&str, CloneFlags); 4] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
];

fn open_ns(pid: i32, kind: &str) -> Result<File, NodeError> {
    File::open(format!("/proc/{pid}/ns/{kind}"))
        .map_err(|e| NodeError::sys(format!("open the node's {kind} namespace"), e))
}

fn run(args: &EnterArgs) -> Result<i32, NodeError> {
    // Before anything of the node is joined, and inherited by the child, which stays out of
    // the node's reach until it is the program.
    security::not_dumpable()?;
    let pid = args.target.pid;
    let mnt = open_ns(pid, "mnt")?;
    let mut others = Vec::new();
    for (kind, flag) in BEFORE_FORK {
        others.push((open_ns(pid, kind)?, flag, kind));
    }
    // Checked after opening: the files now pin these namespaces, whatever happens to the PID.
    if !args.target.alive() {
        return Err(NodeError::Failed {
            node: format!("pid {pid}"),
            message: "the node's init is not running".into(),
        });
    }
    for (file, flag, kind) in &others {
        setns(file.as_fd(), *flag)
            .map_err(|e| NodeError::sys(format!("join the node's {kind} namespace"), e))?;
    }
    let mut steps = ChildSteps::prepare(args, mnt)?;
    let argv = cstrings(args.argv.iter().map(String::as_str))?;
    let env = cstrings(
        args.env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    )?;
    // SAFETY: `topo __enter` is single-threaded (no runtime is started in this mode), so the
    // child may do anything after fork.
    match unsafe { fork() }.map_err(|e| NodeError::sys("fork", e))? {
        ForkResult::Child => {
            let err = child(&mut steps, &args.security, args.detach, &argv, &env);
            eprintln!("topo: {err}");
            std::process::exit(127)
        }
        ForkResult::Parent { child } => {
            if args.detach {
                let id = ProcId::of(child.as_raw()).unwrap_or(ProcId {
                    pid: child.as_raw(),
                    start: 0,
                });
                println!("{} {}", id.pid, id.start);
                return Ok(0);
            }
            Ok(wait_forwarding(child))
        }
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
}

fn child(
    steps: &mut ChildSteps,
    sec: &Security,
    detach: bool,
    argv: &[CString],
    env: &[CString],
) -> NodeError {
    if let Err(e) = security::harden(steps, sec) {
        return e;
    }
    if detach {
        // A service: its own session, and its standard output goes where its errors go (the
        // log), not to the pipe on which the parent reports its PID.
        let _ = nix::unistd::setsid();
        let _ = nix::unistd::dup2_stdout(std::io::stderr());
    }
    if let Err(e) = security::close_extra_fds() {
        return e;
    }
    match execvpe(&argv[0], argv, env) {
        Ok(never) => match never {},
        Err(e) => NodeError::sys(format!("exec {}", argv[0].to_string_lossy()), e),
    }
}

fn wait_forwarding(child: Pid) -> i32 {
    // SAFETY: installing SIG_IGN, or a handler that only calls the async-signal-safe kill(2)
    // with a PID stored before the handler could run, is sound.
    unsafe {
        CHILD.store(child.as_raw(), std::sync::atomic::Ordering::SeqCst);
        let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGQUIT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGTERM, SigHandler::Handler(forward));
        let _ = signal(Signal::SIGHUP, SigHandler::Handler(forward));
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 126,
        }
    }
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

fn cstrings<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<CString>, NodeError> {
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
