//! The exec channel: `topo exec NODE COMMAND` asks the node's init to start the command, so
//! that it starts as a child of a process that is in the node and held to the node's
//! restrictions already, and no process has to join the node and restrict itself first.
//!
//! The spawner makes a listening `SOCK_SEQPACKET` socket for each node, bound to an abstract
//! name (`<run directory>/<lab>/exec/<node>`, no file) in the host's network namespace, and
//! the init inherits it. Abstract names exist per network namespace: no node process, which
//! stays in its node's, can connect. A client connects, checks that the socket's owner is
//! root (or the user running `topo`), and sends one request: the command's argument vector,
//! environment additions, resource limits and umask, with its standard input, output and
//! error and a descriptor of the lab's lock file open for reading (which only that owner may
//! open) as `SCM_RIGHTS`. The init serves a request only with that descriptor, and only once
//! the node has its own sysfs. It then starts a child; the child takes a session of its own,
//! the three streams, the limits (a hard limit above the init's stays the init's) and the
//! umask, closes every other descriptor and executes the command with the node's environment,
//! in `/`. The init answers `started`, and `exit` with the command's status once it has
//! reaped it (128 + signal when it was killed). While it runs, the client passes SIGTERM,
//! SIGHUP, SIGINT and SIGQUIT on.
//!
//! A client that finds no socket, cannot connect, or loses the connection before `started`
//! runs the command the other way ([`super::enter`]); nothing has run then. The init serves
//! the channel only with the default seccomp profile or none: a profile of the user's may
//! deny what the loop below calls, and a denied call must not end a node's init.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    accept4, bind, connect, getsockopt, listen, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::serve::{recv_message, recv_message_within, send, send_message};
use super::NodeError;

/// The (file-less) directory of the sockets' names in a lab's run directory.
pub const DIR: &str = "exec";

/// How many requests an init serves at once; more wait in the socket's backlog.
const MAX_CLIENTS: usize = 256;

/// The longest reply the client reads (an error message included).
const MAX_REPLY: usize = 16 * 1024;

/// The longest abstract name a Unix socket address holds (`sun_path` after its leading NUL).
const MAX_NAME: usize = 107;

/// The resource limits a command gets from its caller.
const LIMITS: [Resource; 16] = [
    Resource::RLIMIT_AS,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_LOCKS,
    Resource::RLIMIT_MEMLOCK,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_RSS,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_RTTIME,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_STACK,
];

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    /// Start a command; its standard input, output and error come with the message.
    Run {
        argv: Vec<String>,
        /// Added to the node's environment (a later value of a name wins).
        env: Vec<(String, String)>,
        /// `(resource, soft, hard)`, by the C library's resource number.
        limits: Vec<(i64, u64, u64)>,
        umask: u32,
    },
    /// Pass this signal on to the command.
    Signal { number: i32 },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Started,
    Exit { code: i32 },
    Error { message: String },
}

/// The abstract name of the exec socket of `node` in the lab whose run directory is
/// `lab_dir`: `<lab_dir>/exec/<node>.<hash>`; `None` when the node's name is not a plain
/// file name or the name is too long for a socket address.
///
/// The hash (FNV-1a of the rest, 16 hex digits) is there for the kernel's table of abstract
/// names, whose bucket is a checksum of the name's bytes: names that differ only in a node
/// number fill few of its 256 buckets (10 000 such nodes, about 100), and every `bind` walks
/// its bucket's chain. With the hash they fill all of them about evenly.
pub fn socket_name(lab_dir: &Path, node: &str) -> Option<String> {
    if !super::plain_name(node) {
        return None;
    }
    let mut name = lab_dir
        .join(DIR)
        .join(node)
        .into_os_string()
        .into_string()
        .ok()?;
    let hash = crate::plan::names::fnv1a(name.as_bytes());
    name.push_str(&format!(".{hash:016x}"));
    (name.len() <= MAX_NAME).then_some(name)
}

/// A new socket listening on the abstract name `name`, in this process's network namespace.
/// The spawner's side.
pub fn listen_on(name: &str) -> Result<OwnedFd, NodeError> {
    let err = |e: nix::errno::Errno| NodeError::sys(format!("exec socket @{name}"), e);
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(err)?;
    let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(err)?;
    bind(sock.as_raw_fd(), &addr).map_err(err)?;
    listen(&sock, Backlog::new(64).map_err(err)?).map_err(err)?;
    Ok(sock)
}

// ---------------------------------------------------------------------------------------
// The init's side.

/// One connected client.
struct Client {
    sock: OwnedFd,
    /// The command it started, until the init has reaped it.
    command: Option<Pid>,
}

/// Serves the channel on `listener` and reaps the node's processes until the init is told to
/// stop (SIGTERM, SIGINT or SIGHUP from outside the node: every process of the node is asked
/// to stop, and the init exits; see [`super::init::stop_request`]). `signals` are blocked already. Returns `Err` with nothing done when no signalfd
/// can be made: the caller then only reaps.
///
/// A request is served only when it carries a descriptor of `token`, the lab's lock file
/// (device and inode), open for reading: only the lab's owner may open it so, and no node
/// process sees it. And a command is started only once the node has its own sysfs (a process
/// entering from outside mounts it, `host_sys` being the device of the host's). A request that
/// is not served is let go unanswered; its client enters the node from outside.
///
/// An init that lives outside its node's network namespace passes `join`: each command's
/// process joins the namespace first, then stacks the filter that `join` names.
pub fn serve(
    listener: OwnedFd,
    signals: &SigSet,
    env: &[(String, String)],
    host_sys: Option<u64>,
    token: (u64, u64),
    join: Option<Join>,
) -> Result<i32, NodeError> {
    let sigfd = SignalFd::with_flags(signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| NodeError::sys("signalfd", e))?;
    let mut clients: Vec<Client> = Vec::new();
    // The stack of the children that become commands, made on the first.
    let mut stack = None;
    loop {
        let accepting = clients.len() < MAX_CLIENTS;
        let mut fds = Vec::with_capacity(2 + clients.len());
        fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(
            listener.as_fd(),
            if accepting {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            },
        ));
        for c in &clients {
            fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // Not expected with valid descriptors; wait for signals alone from now on.
            Err(_) => return Ok(super::init::reap_loop(signals)),
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let signalled = ready(0);
        let incoming = ready(1);
        let readable: Vec<usize> = (0..clients.len()).filter(|i| ready(i + 2)).collect();
        drop(fds);
        // First, while `readable` still holds the clients' places: back to front, so that
        // letting one go (the last takes its place) keeps the others' where they were.
        for i in readable.into_iter().rev() {
            if !handle(&mut clients[i], env, host_sys, token, join, &mut stack) {
                clients.swap_remove(i);
            }
        }
        if signalled {
            let mut child_ended = false;
            while let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => child_ended = true,
                    Ok(_) if super::init::stop_request(info.ssi_pid as libc::pid_t) => {
                        let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                        return Ok(0);
                    }
                    Ok(_) | Err(_) => {}
                }
            }
            if child_ended {
                reap(&mut clients);
            }
        }
        if incoming {
            while clients.len() < MAX_CLIENTS {
                match accept4(
                    listener.as_raw_fd(),
                    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                ) {
                    Ok(fd) => clients.push(Client {
                        // SAFETY: accept4 has just returned this new descriptor, owned by
                        // nobody else.
                        sock: unsafe { OwnedFd::from_raw_fd(fd) },
                        command: None,
                    }),
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
        }
    }
}

/// Reaps every ended child; a client whose command it was gets its exit status and is let go.
fn reap(clients: &mut Vec<Client>) {
    loop {
        let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return,
            Ok(status) => status,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        };
        let (Some(pid), Some(code)) = (status.pid(), super::enter::exit_code(status)) else {
            continue;
        };
        if let Some(i) = clients.iter().position(|c| c.command == Some(pid)) {
            let c = clients.swap_remove(i);
            send(c.sock.as_fd(), &Reply::Exit { code });
        }
    }
}

/// Reads what a client sent; false when it is to be let go (its end, a bad request, or a
/// command that could not start). A command it started runs on either way.
fn handle(
    client: &mut Client,
    env: &[(String, String)],
    host_sys: Option<u64>,
    token: (u64, u64),
    join: Option<Join>,
    stack: &mut Option<super::vfork::Stack>,
) -> bool {
    let (bytes, fds) = match recv_message(client.sock.as_raw_fd()) {
        Ok(Some(m)) => m,
        Err(nix::errno::Errno::EAGAIN) => return true,
        Ok(None) | Err(_) => return false,
    };
    match (serde_json::from_slice::<Request>(&bytes), client.command) {
        (Ok(Request::Signal { number }), Some(pid)) => {
            if let Ok(sig) = Signal::try_from(number) {
                if super::enter::FORWARDED.contains(&sig) {
                    let _ = kill(pid, sig);
                }
            }
            true
        }
        (Ok(Request::Signal { .. }), None) => true,
        (
            Ok(Request::Run {
                argv,
                env: added,
                limits,
                umask,
            }),
            None,
        ) => {
            let Ok([stdin, stdout, stderr, shown]) = <[OwnedFd; 4]>::try_from(fds) else {
                return false;
            };
            if !shows_token(&shown, token) || !super::mounts::has_own_sysfs(host_sys) {
                return false;
            }
            drop(shown);
            let stdio = [stdin, stdout, stderr];
            match start(stack, &argv, env, &added, &limits, umask, &stdio, join) {
                Ok(pid) => {
                    client.command = Some(pid);
                    send(client.sock.as_fd(), &Reply::Started);
                    true
                }
                Err(message) => {
                    send(client.sock.as_fd(), &Reply::Error { message });
                    false
                }
            }
        }
        // A second command on one connection, or a request this init does not know (from a
        // newer `topo`): let go, and a client that has not started anything runs its
        // command the other way.
        (Ok(Request::Run { .. }), Some(_)) | (Err(_), _) => false,
    }
}

/// Whether `fd` is the lab's lock file (`token`: device and inode), open for reading (not
/// merely `O_PATH`, which needs no permission on the file itself).
fn shows_token(fd: &OwnedFd, token: (u64, u64)) -> bool {
    let readable = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).is_ok_and(|flags| {
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        !flags.contains(nix::fcntl::OFlag::O_PATH)
            && (flags & nix::fcntl::OFlag::O_ACCMODE) != nix::fcntl::OFlag::O_WRONLY
    });
    readable && nix::sys::stat::fstat(fd).is_ok_and(|st| (st.st_dev, st.st_ino) == token)
}

/// Starts the command's process: a child that shares the init's memory until it executes
/// the command (as `posix_spawn` makes one), so that nothing of the init is copied for it.
/// Everything the child needs is made here first; it allocates nothing.
#[allow(clippy::too_many_arguments)]
fn start(
    stack: &mut Option<super::vfork::Stack>,
    argv: &[String],
    node_env: &[(String, String)],
    added: &[(String, String)],
    limits: &[(i64, u64, u64)],
    umask: u32,
    stdio: &[OwnedFd; 3],
    join: Option<Join>,
) -> Result<Pid, String> {
    let Some(program) = argv.first() else {
        return Err("empty command".into());
    };
    let mut env = Vec::new();
    for (k, v) in node_env.iter().chain(added) {
        super::enter::set_env(&mut env, k, v);
    }
    let cstrings = |items: &[String]| {
        super::enter::cstrings(items.iter().map(String::as_str)).map_err(|e| e.to_string())
    };
    let c_argv = cstrings(argv)?;
    let c_env = cstrings(
        &env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
    )?;
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let candidates = cstrings(&candidates(program, path))?;
    let mut argv_ptrs: Vec<*const libc::c_char> = c_argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let limits: Vec<(Resource, u64, u64)> = limits
        .iter()
        .filter_map(|(n, soft, hard)| {
            LIMITS
                .iter()
                .find(|r| **r as i64 == *n)
                .map(|r| (*r, *soft, *hard))
        })
        .collect();
    let stdio = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    let stack = match stack {
        Some(s) => s,
        None => stack.insert(super::vfork::Stack::new().map_err(|e| e.to_string())?),
    };
    let mut body = || {
        let failed = match join.map(Join::join).unwrap_or(Ok(())) {
            Ok(()) => be_command(&candidates, &argv_ptrs, &env_ptrs, &limits, umask, stdio),
            Err(step) => step,
        };
        // Written from a buffer on the stack: the child allocates nothing.
        let mut buf = [0u8; 512];
        let mut out = std::io::Cursor::new(&mut buf[..]);
        let _ = match failed {
            Failure::Step(what) => writeln!(out, "topo: error: {what}"),
            Failure::Exec(e) => writeln!(out, "topo: error: exec {program}: {e}"),
        };
        let len = usize::try_from(out.position()).unwrap_or(0);
        // SAFETY: writes bytes of `buf`, which lives until the call returns.
        let _ = unsafe { libc::write(2, buf.as_ptr().cast(), len.min(buf.len())) };
        // SAFETY: ends the child at once, without running the init's exit handlers.
        unsafe { libc::_exit(127) }
    };
    super::vfork::spawn(stack, &mut body).map_err(|e| e.to_string())
}

/// Where the command may be: itself if it names a path, else each directory of `path` (the
/// node's `PATH`; the C library's default without one), in order, as `execvp` looks.
fn candidates(program: &str, path: Option<&str>) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    path.unwrap_or("/bin:/usr/bin")
        .split(':')
        .map(|dir| match dir {
            // An empty entry is the working directory, `/` here.
            "" => format!("./{program}"),
            dir => format!("{}/{program}", dir.trim_end_matches('/')),
        })
        .collect()
}

/// What a command's process of an init that holds its node's network namespace from outside
/// it (on [`super::procfs::NODE_NET_FD`]) takes after joining that namespace: the filter it
/// stacks.
#[derive(Clone, Copy)]
pub struct Join<'a> {
    pub filter: Option<&'a super::seccomp::Filter>,
}

impl Join<'_> {
    /// In a command's process: joins the node's network namespace, then stacks the filter,
    /// after which it can join no other. Allocates nothing.
    fn join(self) -> Result<(), Failure> {
        // SAFETY: the init's descriptor of the namespace, open while the init runs.
        let netns = unsafe { BorrowedFd::borrow_raw(super::procfs::NODE_NET_FD) };
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|_| Failure::Step("join the node's network namespace"))?;
        if let Some(filter) = self.filter {
            super::seccomp::install(filter).map_err(|_| Failure::Step("seccomp filter"))?;
        }
        Ok(())
    }
}

/// Why a command's process did not become the command.
enum Failure {
    Step(&'static str),
    Exec(nix::errno::Errno),
}

/// The command's process, in a child sharing the init's memory: returns only if it could
/// not become the command. Allocates nothing.
fn be_command(
    candidates: &[CString],
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    limits: &[(Resource, u64, u64)],
    umask: u32,
    stdio: [RawFd; 3],
) -> Failure {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // A session of its own: it never has the caller's terminal as its controlling terminal.
    if nix::unistd::setsid().is_err() {
        return Failure::Step("setsid");
    }
    for (from, to) in stdio.into_iter().zip(0..) {
        // SAFETY: dup2 on descriptors of this child's own table (a copy of the init's).
        if unsafe { libc::dup2(from, to) } < 0 {
            return Failure::Step("take the standard streams");
        }
    }
    // SAFETY: closes descriptors of this child's own table only; it executes next.
    if unsafe { libc::close_range(3, libc::c_uint::MAX, 0) } != 0 {
        return Failure::Step("close the init's descriptors");
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    for (resource, soft, hard) in limits {
        apply_limit(*resource, *soft, *hard);
    }
    // As execvp: on to the next directory when the program is not in one; a program found
    // but not executable is reported only if none is found later.
    let mut denied = false;
    let mut last = nix::errno::Errno::ENOENT;
    for candidate in candidates {
        // SAFETY: the pointers are to NUL-terminated strings and NULL-terminated arrays
        // made before the child started, alive until it executes or ends.
        unsafe { libc::execve(candidate.as_ptr(), argv.as_ptr(), env.as_ptr()) };
        last = nix::errno::Errno::last();
        match last {
            nix::errno::Errno::EACCES => denied = true,
            nix::errno::Errno::ENOENT
            | nix::errno::Errno::ENOTDIR
            | nix::errno::Errno::ESTALE
            | nix::errno::Errno::ENODEV
            | nix::errno::Errno::ETIMEDOUT => {}
            _ => break,
        }
    }
    if denied && last == nix::errno::Errno::ENOENT {
        last = nix::errno::Errno::EACCES;
    }
    Failure::Exec(last)
}

/// Sets a limit to the caller's; a hard limit above this process's (raising one needs a
/// privilege the node's processes may not have) stays where it is.
fn apply_limit(resource: Resource, soft: u64, hard: u64) {
    let Ok((cur_soft, cur_hard)) = getrlimit(resource) else {
        return;
    };
    if (cur_soft, cur_hard) == (soft, hard) {
        return;
    }
    if setrlimit(resource, soft, hard).is_err() {
        let hard = hard.min(cur_hard);
        let _ = setrlimit(resource, soft.min(hard), hard);
    }
}

// ---------------------------------------------------------------------------------------
// The client's side.

/// Runs `argv` in `node` of the lab whose run directory is `lab_dir`, through the node's
/// init, with `env` added to the node's environment; the command's exit status, or `None`
/// when the channel is not there and nothing was run. Blocks the signals it passes on while
/// the command runs.
pub fn run(lab_dir: &Path, node: &str, argv: &[String], env: &[(String, String)]) -> Option<i32> {
    let name = socket_name(lab_dir, node)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    let addr = UnixAddr::new_abstract(name.as_bytes()).ok()?;
    loop {
        match connect(sock.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
    // The listener was made by the spawner, root or the user running `topo` (who owns the
    // run directory): anyone else's is not a node's init.
    let cred = getsockopt(&sock, sockopt::PeerCredentials).ok()?;
    if cred.uid() != 0 && cred.uid() != nix::unistd::geteuid().as_raw() {
        return None;
    }
    let forwarded = super::enter::forwarded();
    // What only the lab's owner can show: its lock file, open for reading.
    let token = nix::fcntl::open(
        &lab_dir.join(crate::state::LOCK_FILE),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let held = super::enter::block(&forwarded).ok()?;
    let outcome = talk(sock.as_fd(), &forwarded, token.as_fd(), argv, env);
    super::enter::restore_mask(Some(&held));
    outcome
}

fn talk(
    sock: BorrowedFd,
    forwarded: &SigSet,
    token: BorrowedFd,
    argv: &[String],
    env: &[(String, String)],
) -> Option<i32> {
    let sigfd = SignalFd::with_flags(forwarded, SfdFlags::SFD_CLOEXEC).ok()?;
    let limits = LIMITS
        .iter()
        .filter_map(|r| getrlimit(*r).ok().map(|(s, h)| (*r as i64, s, h)))
        .collect();
    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::stat::umask(mask);
    let request = Request::Run {
        argv: argv.to_vec(),
        env: env.to_vec(),
        limits,
        umask: mask.bits(),
    };
    let bytes = serde_json::to_vec(&request).ok()?;
    send_message(sock.as_raw_fd(), &bytes, &[0, 1, 2, token.as_raw_fd()]).ok()?;
    let mut started = false;
    loop {
        let mut fds = [
            PollFd::new(sock, PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return lost(started),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let signalled = fds[1].revents().is_some_and(|r| !r.is_empty());
        if signalled {
            if let Ok(Some(info)) = sigfd.read_signal() {
                let number = info.ssi_signo as i32;
                send(sock, &Request::Signal { number });
            }
        }
        if !sock_ready {
            continue;
        }
        let reply = match recv_message_within(sock.as_raw_fd(), MAX_REPLY) {
            Ok(Some((bytes, _))) => serde_json::from_slice::<Reply>(&bytes).ok(),
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(None) | Err(_) => None,
        };
        match reply {
            Some(Reply::Started) => started = true,
            Some(Reply::Exit { code }) => return Some(code),
            Some(Reply::Error { message }) => {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("topo: error: {message}\n").as_bytes(),
                );
                return Some(126);
            }
            None => return lost(started),
        }
    }
}

/// The connection ended without an exit status: before the command started, the caller
/// runs it the other way; after, the node's init has gone, and the command with it.
fn lost(started: bool) -> Option<i32> {
    if !started {
        return None;
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"topo: error: the node's init ended while the command ran\n",
    );
    Some(128 + Signal::SIGKILL as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_name_needs_a_plain_node_name_and_fits_an_address() {
        let lab = Path::new("/run/topo/lab");
        let r1 = socket_name(lab, "r1").unwrap_or_default();
        assert!(r1.starts_with("/run/topo/lab/exec/r1."), "{r1}");
        assert_eq!(r1.len(), "/run/topo/lab/exec/r1.".len() + 16, "{r1}");
        assert_ne!(socket_name(lab, "r2"), Some(r1));
        assert_eq!(socket_name(lab, "../x"), None);
        assert_eq!(socket_name(lab, "-x"), None);
        assert_eq!(socket_name(lab, ""), None);
        assert_eq!(socket_name(lab, "R1"), None);
        let fits = "n".repeat(MAX_NAME - "/run/topo/lab/exec/.0123456789abcdef".len());
        assert!(socket_name(lab, &fits).is_some());
        assert_eq!(socket_name(lab, &format!("{fits}n")), None);
    }

    /// The kernel's bucket of an abstract name (`unix_abstract_hash`, little-endian): the
    /// folded ones' complement sum of the address, family and leading NUL included.
    fn kernel_bucket(name: &str) -> u32 {
        let mut addr = vec![1u8, 0, 0]; // AF_UNIX, then the NUL of an abstract name
        addr.extend_from_slice(name.as_bytes());
        if addr.len() % 2 == 1 {
            addr.push(0);
        }
        let mut sum: u32 = addr
            .chunks(2)
            .map(|w| u32::from(w[0]) | (u32::from(w[1]) << 8))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let mut hash = !sum & 0xffff;
        hash ^= hash >> 8;
        hash ^= libc::SOCK_SEQPACKET as u32;
        hash & 255
    }

    #[test]
    fn socket_names_spread_over_the_kernels_buckets() {
        let lab = Path::new("/run/topo/big");
        let mut buckets = [0u32; 256];
        for i in 0..10_000 {
            if let Some(name) = socket_name(lab, &format!("n{i}")) {
                buckets[kernel_bucket(&name) as usize] += 1;
            }
        }
        assert_eq!(buckets.iter().sum::<u32>(), 10_000);
        // The chain a `bind` walks, on average: 39 if the names filled the buckets evenly;
        // without the hash, 100 buckets held them and the average was 245.
        let walked = buckets.iter().map(|b| b * b).sum::<u32>() / 10_000;
        assert!(walked < 50, "{walked} names in the average bind's bucket");
    }

    #[test]
    fn the_program_is_looked_for_along_path_as_execvp_does() {
        assert_eq!(
            candidates("ip", Some("/usr/sbin:/bin/")),
            ["/usr/sbin/ip", "/bin/ip"]
        );
        // A name with a slash is taken as it is; an empty entry is the working directory.
        assert_eq!(candidates("./x", Some("/bin")), ["./x"]);
        assert_eq!(candidates("/bin/true", None), ["/bin/true"]);
        assert_eq!(candidates("sh", Some(":/bin")), ["./sh", "/bin/sh"]);
        // Without PATH, the C library's default.
        assert_eq!(candidates("sh", None), ["/bin/sh", "/usr/bin/sh"]);
    }

    #[test]
    fn every_limit_travels_by_its_number() {
        let numbers: Vec<i64> = LIMITS.iter().map(|r| *r as i64).collect();
        let mut unique = numbers.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), LIMITS.len());
        assert!(numbers.contains(&(libc::RLIMIT_NOFILE as i64)));
        assert!(numbers.contains(&(libc::RLIMIT_CORE as i64)));
    }

    #[test]
    fn a_request_reads_back_and_one_of_an_unknown_kind_is_refused() {
        let r = Request::Run {
            argv: vec!["sh".into(), "-c".into(), "echo 'a b'".into()],
            env: vec![("K".into(), "v=w".into())],
            limits: vec![(7, 1024, 4096)],
            umask: 0o022,
        };
        let bytes = serde_json::to_vec(&r).expect("encode");
        match serde_json::from_slice::<Request>(&bytes).expect("decode") {
            Request::Run {
                argv,
                env,
                limits,
                umask,
            } => {
                assert_eq!(argv, ["sh", "-c", "echo 'a b'"]);
                assert_eq!(env, [("K".to_string(), "v=w".to_string())]);
                assert_eq!(limits, [(7, 1024, 4096)]);
                assert_eq!(umask, 0o022);
            }
            other => panic!("read back as {other:?}"),
        }
        assert!(serde_json::from_slice::<Request>(br#"{"future":{}}"#).is_err());
    }
}
