//! The enter server, `topo __enter --serve PID START [OPTION]…`: runs many programs in one
//! node without starting `topo` for each. `topo test` starts one per node on the first
//! command it runs there and ends it with the run.
//!
//! The server is single-threaded and stays on the host. It opens the node's namespaces and
//! cgroups and compiles its seccomp filter once ([`Prepared`]), then takes requests on the
//! socket it inherits as descriptor 3 (one end of a socket pair made by its caller: nothing
//! in a node, nor anything else, can connect to it). A request carries a program's argument
//! vector and, as `SCM_RIGHTS`, its standard input, output and error. For each, the server
//! forks a child that takes these as its own and does what `topo __enter` does
//! ([`Prepared::enter`]): join the namespaces, fork into the PID namespace, restrict the
//! grandchild as the node's processes are restricted, exec, and wait. The child reports the
//! program's host PID, the server its exit status (128 + signal when it was killed).
//!
//! While a program runs, its caller may ask for it to be ended: `term` sends the waiting
//! child SIGTERM, which it passes on to the program; `kill` kills the child, and with it the
//! program (its parent-death signal). The server ends when its socket reaches its end (the
//! caller closed it or died), killing a program still running, and when the node's init ends.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::enter::{self, EnterArgs, Prepared};
use super::{NodeContext, NodeError, ProcId};

/// The descriptor on which the server finds its socket.
const SERVER_FD: RawFd = 3;
/// The largest message either side sends (a request's argument vector, encoded).
pub const MAX_MESSAGE: usize = 128 * 1024;

/// A message to the server.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Request {
    /// Run a program; its standard input, output and error come with the message.
    Run { argv: Vec<String> },
    /// Pass SIGTERM on to the running program.
    Term,
    /// Kill the running program.
    Kill,
}

/// A message from the server (or, `Started`, from its child).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Started { pid: i32 },
    Exit { code: i32 },
    Error { message: String },
}

/// Entry point of `topo __enter --serve`. Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    super::restore_nofile_limit();
    let args = match enter::parse_node_args(args, false) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("topo __enter --serve: {e}");
            return 2;
        }
    };
    let sock = match take_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("topo __enter --serve: {e}");
            return 2;
        }
    };
    match serve(&args, sock.as_fd()) {
        Ok(()) => 0,
        Err(e) => {
            send(
                sock.as_fd(),
                &Reply::Error {
                    message: e.to_string(),
                },
            );
            1
        }
    }
}

/// The socket inherited as [`SERVER_FD`], made close-on-exec.
fn take_socket() -> Result<OwnedFd, NodeError> {
    let st = nix::sys::stat::fstat(
        // SAFETY: only borrowed for fstat; an fd that is not open gives EBADF.
        unsafe { BorrowedFd::borrow_raw(SERVER_FD) },
    )
    .map_err(|e| NodeError::sys("the server's socket (fd 3)", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(NodeError::sys(
            "the server's socket (fd 3)",
            std::io::Error::other("not a socket"),
        ));
    }
    // SAFETY: fd 3 is open (fstat succeeded) and nothing else in this process owns it: the
    // caller passed it for this use, and this is its only taker.
    let sock = unsafe { OwnedFd::from_raw_fd(SERVER_FD) };
    nix::fcntl::fcntl(
        sock.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| NodeError::sys("the server's socket (fd 3)", e))?;
    Ok(sock)
}

fn serve(args: &EnterArgs, sock: BorrowedFd) -> Result<(), NodeError> {
    // As a helper entering a node: its children are within the node's reach before they exec.
    super::security::not_dumpable()?;
    let mut prepared = Prepared::open(args)?;
    let init = pidfd_open(args.target.pid)?;
    if !args.target.alive() {
        return Err(init_gone(args));
    }
    loop {
        let mut fds = [
            PollFd::new(sock, PollFlags::POLLIN),
            PollFd::new(init.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(NodeError::sys("poll", e)),
        }
        let init_ended = fds[1].revents().is_some_and(|r| !r.is_empty());
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        if init_ended {
            return Err(init_gone(args));
        }
        if !sock_ready {
            continue;
        }
        let Some((req, stdio)) = recv(sock)? else {
            return Ok(());
        };
        let argv = match req {
            Request::Run { argv } if !argv.is_empty() => argv,
            // Late: the program it was meant for has ended.
            Request::Term | Request::Kill => continue,
            Request::Run { .. } => {
                send(
                    sock,
                    &Reply::Error {
                        message: "empty command".into(),
                    },
                );
                continue;
            }
        };
        let Ok(stdio) = <[OwnedFd; 3]>::try_from(stdio) else {
            send(
                sock,
                &Reply::Error {
                    message: "a request without its standard streams".into(),
                },
            );
            continue;
        };
        if !args.target.alive() {
            return Err(init_gone(args));
        }
        match run_one(&mut prepared, args, argv, stdio, sock)? {
            Some(code) => send(sock, &Reply::Exit { code }),
            // The caller has gone.
            None => return Ok(()),
        }
    }
}

fn init_gone(args: &EnterArgs) -> NodeError {
    NodeError::Failed {
        node: format!("pid {}", args.target.pid),
        message: "the node's init is not running".into(),
    }
}

/// Runs one program from a child of the server; its exit code, or `None` if the socket
/// ended meanwhile (the program is then killed).
fn run_one(
    prepared: &mut Prepared,
    args: &EnterArgs,
    argv: Vec<String>,
    stdio: [OwnedFd; 3],
    sock: BorrowedFd,
) -> Result<Option<i32>, NodeError> {
    let server = nix::unistd::getpid();
    // SAFETY: the server is single-threaded (no runtime is started in this mode), so the
    // child may do anything after fork.
    match unsafe { fork() }.map_err(|e| NodeError::sys("fork", e))? {
        ForkResult::Child => {
            // Killed with the server: nothing it started outlives it.
            if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err()
                || nix::unistd::getppid() != server
            {
                std::process::exit(126);
            }
            let [stdin, stdout, stderr] = stdio;
            if nix::unistd::dup2_stdin(&stdin).is_err()
                || nix::unistd::dup2_stdout(&stdout).is_err()
                || nix::unistd::dup2_stderr(&stderr).is_err()
            {
                std::process::exit(126);
            }
            drop((stdin, stdout, stderr));
            let mut one = args.clone();
            one.argv = argv;
            let code = match prepared.enter(&one, Some(sock)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("topo: error: {e}");
                    126
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(stdio);
            let done = match pidfd_open(child.as_raw()) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = kill(child, Signal::SIGKILL);
                    let _ = reap(child);
                    return Err(e);
                }
            };
            loop {
                let mut fds = [
                    PollFd::new(sock, PollFlags::POLLIN),
                    PollFd::new(done.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        let _ = kill(child, Signal::SIGKILL);
                        let _ = reap(child);
                        return Err(NodeError::sys("poll", e));
                    }
                }
                if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                    return Ok(Some(reap(child)));
                }
                if fds[0].revents().is_none_or(|r| r.is_empty()) {
                    continue;
                }
                // The child is ours and not yet waited for: its PID is still its own.
                match recv(sock) {
                    Ok(Some((Request::Term, _))) => {
                        let _ = kill(child, Signal::SIGTERM);
                    }
                    Ok(Some((Request::Kill, _))) => {
                        let _ = kill(child, Signal::SIGKILL);
                    }
                    // One request at a time: another before the end of this one is dropped.
                    Ok(Some((Request::Run { .. }, _))) => {}
                    Ok(None) | Err(_) => {
                        let _ = kill(child, Signal::SIGKILL);
                        reap(child);
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Waits for the server's child; its exit code (128 + signal when killed).
fn reap(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 126,
        }
    }
}

/// A descriptor that becomes readable when process `pid` ends (`pidfd_open`, Linux 5.3).
pub(crate) fn pidfd_open(pid: i32) -> Result<OwnedFd, NodeError> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(NodeError::sys(
            format!("pidfd_open {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    let fd = RawFd::try_from(fd)
        .map_err(|_| NodeError::sys("pidfd_open", std::io::Error::other("bad descriptor")))?;
    // SAFETY: the kernel has just returned this new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reports the program's host PID (from the server's child, before it waits).
pub(crate) fn report_started(sock: BorrowedFd, pid: i32) {
    send(sock, &Reply::Started { pid });
}

/// Sends one message (a reply here, or the exec channel's), as JSON.
pub(super) fn send(sock: BorrowedFd, reply: &impl Serialize) {
    if let Ok(bytes) = serde_json::to_vec(reply) {
        let _ = send_message(sock.as_raw_fd(), &bytes, &[]);
    }
}

pub(super) fn send_message(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> nix::Result<usize> {
    let iov = [std::io::IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// Receives one message and the descriptors that came with it; `None` at the socket's end.
pub(super) fn recv_message(fd: RawFd) -> nix::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    recv_message_within(fd, MAX_MESSAGE)
}

/// [`recv_message`] of a message of at most `max` bytes (a longer one is an error).
pub(super) fn recv_message_within(
    fd: RawFd,
    max: usize,
) -> nix::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; max];
    // Room for the most any request carries: the channel's four.
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let (n, fds, truncated) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = loop {
            match recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r?,
            }
        };
        let mut fds = Vec::new();
        let truncated = msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(list) = c {
                for raw in list {
                    // SAFETY: SCM_RIGHTS installed these descriptors in this process for
                    // this message; nothing else owns them.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        (msg.bytes, fds, truncated)
    };
    if truncated {
        return Err(nix::errno::Errno::EMSGSIZE);
    }
    if n == 0 {
        return Ok(None);
    }
    buf.truncate(n);
    Ok(Some((buf, fds)))
}

fn recv(sock: BorrowedFd) -> Result<Option<(Request, Vec<OwnedFd>)>, NodeError> {
    let Some((bytes, fds)) =
        recv_message(sock.as_raw_fd()).map_err(|e| NodeError::sys("read a request", e))?
    else {
        return Ok(None);
    };
    let req = serde_json::from_slice(&bytes)
        .map_err(|e| NodeError::sys("read a request", std::io::Error::other(e)))?;
    Ok(Some((req, fds)))
}

/// What the server said of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// It runs, with this host PID (its process group's too).
    Started(i32),
    /// It ended with this exit code.
    Exit(i32),
}

/// The caller's side of an enter server: started for one node, it runs programs there one at
/// a time. Dropping it closes the socket, which ends the server, and reaps it (killing it if
/// it does not end at once).
pub struct EnterServer {
    /// The node it serves: its init and settings.
    key: String,
    sock: Option<tokio::io::unix::AsyncFd<OwnedFd>>,
    child: std::process::Child,
}

fn server_key(target: ProcId, ctx: &NodeContext) -> String {
    format!(
        "{} {} {}",
        target.pid,
        target.start,
        serde_json::to_string(ctx).unwrap_or_default()
    )
}

impl EnterServer {
    /// Starts a server for the node whose init is `target` (within a tokio runtime).
    pub fn start(target: ProcId, ctx: &NodeContext) -> Result<EnterServer, NodeError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| NodeError::sys("socketpair", e))?;
        let flags = nix::fcntl::fcntl(ours.as_fd(), nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| NodeError::sys("fcntl", e))?;
        nix::fcntl::fcntl(
            ours.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(
                nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK,
            ),
        )
        .map_err(|e| NodeError::sys("fcntl", e))?;
        let mut cmd = super::spawn::serve_command(target, ctx)?;
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        super::spawn::give_fd(&mut cmd, theirs.as_raw_fd(), SERVER_FD);
        let child = cmd
            .spawn()
            .map_err(|e| NodeError::sys("start the enter server", e))?;
        drop(theirs);
        let mut server = EnterServer {
            key: server_key(target, ctx),
            sock: None,
            child,
        };
        // SAFETY: `ours` is an open descriptor that the AsyncFd owns from here on; an OwnedFd
        // always returns the same descriptor.
        let sock = unsafe { tokio::io::unix::AsyncFd::register(ours) }
            .map_err(|e| NodeError::sys("watch the enter server", e.into_parts().1))?;
        server.sock = Some(sock);
        Ok(server)
    }

    /// Whether it serves the node whose init is `target`, with these settings.
    pub fn serves(&self, target: ProcId, ctx: &NodeContext) -> bool {
        self.key == server_key(target, ctx)
    }

    fn sock(&self) -> Result<&tokio::io::unix::AsyncFd<OwnedFd>, NodeError> {
        self.sock.as_ref().ok_or_else(ended)
    }

    /// Starts `argv` with these standard input, output and error (passed to the server and
    /// closed here).
    pub async fn run(&self, argv: &[String], stdio: [OwnedFd; 3]) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec(&Request::Run {
            argv: argv.to_vec(),
        })
        .map_err(|e| NodeError::sys("encode a request", std::io::Error::other(e)))?;
        if bytes.len() > MAX_MESSAGE {
            return Err(NodeError::sys(
                "send a command",
                std::io::Error::other(format!("longer than {MAX_MESSAGE} bytes")),
            ));
        }
        let fds = stdio.each_ref().map(|f| f.as_raw_fd());
        self.send_raw(&bytes, &fds).await
    }

    /// Asks for the running program to get SIGTERM (`false`: to be killed).
    pub async fn end(&self, term: bool) -> Result<(), NodeError> {
        let req = if term { Request::Term } else { Request::Kill };
        let bytes = serde_json::to_vec(&req)
            .map_err(|e| NodeError::sys("encode a request", std::io::Error::other(e)))?;
        self.send_raw(&bytes, &[]).await
    }

    async fn send_raw(&self, bytes: &[u8], fds: &[RawFd]) -> Result<(), NodeError> {
        let sock = self.sock()?;
        loop {
            let mut ready = sock
                .writable()
                .await
                .map_err(|e| NodeError::sys("write to the enter server", e))?;
            match ready
                .try_io(|s| send_message(s.as_raw_fd(), bytes, fds).map_err(std::io::Error::from))
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => return Err(NodeError::sys("write to the enter server", e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// The next thing the server says; an error when it reports one or has ended.
    pub async fn next(&self) -> Result<Event, NodeError> {
        let sock = self.sock()?;
        let bytes = loop {
            let mut ready = sock
                .readable()
                .await
                .map_err(|e| NodeError::sys("read the enter server", e))?;
            match ready.try_io(|s| recv_message(s.as_raw_fd()).map_err(std::io::Error::from)) {
                Ok(Ok(Some((bytes, _)))) => break bytes,
                Ok(Ok(None)) => return Err(ended()),
                Ok(Err(e)) => return Err(NodeError::sys("read the enter server", e)),
                Err(_would_block) => continue,
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(Reply::Started { pid }) => Ok(Event::Started(pid)),
            Ok(Reply::Exit { code }) => Ok(Event::Exit(code)),
            Ok(Reply::Error { message }) => Err(NodeError::sys(
                "enter the node",
                std::io::Error::other(message),
            )),
            Err(e) => Err(NodeError::sys(
                "read the enter server",
                std::io::Error::other(e),
            )),
        }
    }
}

fn ended() -> NodeError {
    NodeError::sys(
        "enter the node",
        std::io::Error::other("the enter server has ended"),
    )
}

impl Drop for EnterServer {
    fn drop(&mut self) {
        // Its end of the socket pair now reaches its end: the server kills a program still
        // running and exits.
        drop(self.sock.take());
        for _ in 0..50 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Not yet reaped, so the PID is still the server's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
