//! Starting and stopping node processes from `topo`'s side: the init, one-shot commands and
//! services, all through the hidden `__spawn` / `__enter` modes of the `topo` binary.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{InitConfig, NodeContext, NodeError, ProcId};

/// The program that provides the hidden helper modes, `topo-core`: `$TOPO_EXE`, else this
/// program (`/proc/self/exe`) if it is `topo-core` under whatever name, or a program named
/// `topo-core`, else a `topo-core` next to it or one directory up (how cargo lays out test
/// binaries), else `topo-core` on `PATH`.
pub fn helper_exe() -> Result<PathBuf, NodeError> {
    const CORE: &str = crate::cli::front::CORE;
    if let Some(p) = std::env::var_os("TOPO_EXE") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| NodeError::sys("find own executable", e))?;
    if crate::cli::is_topo() || me.file_name().is_some_and(|n| n == CORE) {
        return Ok(me);
    }
    let mut dirs: Vec<PathBuf> = me.ancestors().skip(1).take(2).map(PathBuf::from).collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(CORE))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            NodeError::sys(
                format!("find the {CORE} program (set TOPO_EXE)"),
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )
        })
}

/// The `topo` binary in a helper mode, with an empty environment: nothing of `topo`'s
/// caller reaches a node through a helper (the spawner's environment is every init's, and
/// what a node program gets is passed with `--env`).
fn helper_command() -> Result<Command, NodeError> {
    let mut c = Command::new(helper_exe()?);
    c.env_clear();
    Ok(c)
}

/// What a helper shares with the helpers of the same `topo up` before it (see
/// [`Helper::shared`]).
#[derive(Default)]
struct Shared {
    mounts: Option<std::os::fd::OwnedFd>,
    parking: Option<std::os::fd::OwnedFd>,
}

/// Makes `cmd`'s program get each `(fd, at)`'s `fd` (open in this process until `cmd` is
/// spawned) as descriptor `at`, without the close-on-exec flag. Each is first copied above
/// every `at`, so that no `at` replaces another's `fd` before it is given.
fn give_fds<const N: usize>(
    cmd: &mut Command,
    fds: [Option<(std::os::fd::RawFd, std::os::fd::RawFd)>; N],
) {
    use std::os::unix::process::CommandExt;
    if fds.iter().all(Option::is_none) {
        return;
    }
    let above = fds.iter().flatten().map(|(_, at)| *at).max().unwrap_or(0) + 1;
    // SAFETY: the closure runs between fork and exec and calls only fcntl and dup2, which
    // are async-signal-safe; it allocates nothing (the copies are an array on its stack).
    unsafe {
        cmd.pre_exec(move || {
            let mut copies = fds;
            for (fd, _) in copies.iter_mut().flatten() {
                // Close-on-exec: the copy itself is gone once the program runs.
                *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above);
                if *fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (fd, at) in copies.iter().flatten() {
                if libc::dup2(*fd, *at) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Makes `cmd`'s program get `fd` (open in this process until `cmd` is spawned) as
/// descriptor `at`, without the close-on-exec flag.
pub(super) fn give_fd(cmd: &mut Command, fd: std::os::fd::RawFd, at: std::os::fd::RawFd) {
    give_fds(cmd, [Some((fd, at))]);
}

/// One node's init as `topo __spawn` reports it: the node, and its init or why it failed.
pub type InitReport = (String, Result<ProcId, String>);

/// Starts the inits of many nodes through `topo __spawn` helpers (blocking). Returns, per
/// node, its init or why it did not start; once `stop` says so, the nodes not yet passed to a
/// helper are left out (see [`SpawnFeed::start`]).
pub fn start_inits(
    configs: &[InitConfig],
    stop: fn() -> bool,
) -> Result<Vec<InitReport>, NodeError> {
    let feed = SpawnFeed::start(configs, stop)?;
    let sender = feed.sender();
    for c in configs {
        sender.send(c)?;
    }
    drop(sender);
    feed.finish()
}

/// The most inits one `topo __spawn` helper starts; the next ones get a new helper.
///
/// Every init is a copy of its helper that never execs, so each page of the helper's that an
/// init does not write to (the binary's relocated read-only data, most of all) stays shared
/// by all the inits of that helper. The kernel finds a shared page's mappings by walking
/// every process made from the same one (`rmap_walk_anon`), whenever reclaim or a memory
/// monitor such as DAMON checks whether the page was used: with one helper for 10 000 nodes,
/// each such check walks 10 000 processes, and the checks took most of a CPU while the lab
/// merely ran. A helper per 256 inits bounds each walk to 256, for one more copy of the
/// helper's own memory (about 290 KiB) per 256 nodes.
const INITS_PER_HELPER: usize = 256;

/// The descriptor on which a helper gets the mount namespace to join (`--mounts-fd`); the
/// inits' network namespace comes on [`super::init::PARKING_FD`] (`--parking-fd`), and
/// [`super::procfs::NODE_NET_FD`] is the helper's own.
const MOUNTS_FD: std::os::fd::RawFd = 5;

/// Running `topo __spawn` helpers that take configurations as they become ready (a node's,
/// as soon as its network namespace exists), so that their work overlaps the caller's: one
/// at a time, each for [`INITS_PER_HELPER`] nodes.
pub struct SpawnFeed {
    tx: std::sync::mpsc::Sender<Feed>,
    writer: std::thread::JoinHandle<Fed>,
}

/// What the writer thread leaves: the helpers' reports, and why it stopped early, if it did.
type Fed = (Result<Vec<InitReport>, NodeError>, Option<String>);

/// One `topo __spawn` helper: the process, its input, and the thread reading its reports.
struct Helper {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    reader: std::thread::JoinHandle<Result<Vec<InitReport>, NodeError>>,
    /// Set once the helper has reported its first node: its mount namespace is ready then.
    reported: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Helper {
    /// Starts a helper that keeps the capabilities of `keep` in its bounding set, in the
    /// mount namespace `mounts` and with the inits' network namespace `parking` if given (see
    /// [`Helper::shared`]).
    fn start(keep: u64, shared: &Shared) -> Result<Self, NodeError> {
        use std::io::{BufRead, BufReader};
        let mut command = helper_command()?;
        command
            .arg("__spawn")
            .arg(format!("{keep:#x}"))
            .arg(super::caller_nofile().unwrap_or_else(|| "-".to_string()));
        if shared.mounts.is_some() {
            command.arg(format!("--mounts-fd={MOUNTS_FD}"));
        }
        if shared.parking.is_some() {
            command.arg(format!("--parking-fd={}", super::init::PARKING_FD));
        }
        give_fds(
            &mut command,
            [
                shared.mounts.as_ref().map(|fd| (fd.as_raw_fd(), MOUNTS_FD)),
                shared
                    .parking
                    .as_ref()
                    .map(|fd| (fd.as_raw_fd(), super::init::PARKING_FD)),
            ],
        );
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| NodeError::sys("start the node spawner", e))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NodeError::sys(
                "spawner",
                std::io::Error::other("no stdout"),
            ));
        };
        let reported = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first = reported.clone();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.map_err(|e| NodeError::sys("read the spawner", e))?;
                first.store(true, std::sync::atomic::Ordering::Release);
                let Some((node, rest)) = line.split_once(' ') else {
                    continue;
                };
                let result = match rest.strip_prefix("error: ") {
                    Some(err) => Err(err.to_string()),
                    None => parse_proc_id(rest).ok_or_else(|| format!("bad report: {rest}")),
                };
                out.push((node.to_string(), result));
            }
            Ok(out)
        });
        Ok(Helper {
            child,
            stdin,
            reader,
            reported,
        })
    }

    /// This helper's mount namespace and the inits' network namespace it holds, for the next
    /// helpers to use, once it has reported a node (it made both before that). Each helper
    /// would otherwise copy the host's mount namespace, which holds a mount per named
    /// network namespace, and remove those again: work that grows with the nodes already up,
    /// for every [`INITS_PER_HELPER`] nodes. And the inits of one `topo up` share one
    /// network namespace. The PID is this helper's while it is open: it is `topo`'s child,
    /// waited for only in [`Helper::finish`]. `None`s if it has not reported yet or has
    /// exited.
    fn shared(&self) -> Shared {
        if !self.reported.load(std::sync::atomic::Ordering::Acquire) {
            return Shared::default();
        }
        let open = |path: String| File::open(path).ok().map(std::os::fd::OwnedFd::from);
        let pid = self.child.id();
        Shared {
            mounts: open(format!("/proc/{pid}/ns/mnt")),
            parking: open(format!("/proc/{pid}/fd/{}", super::init::PARKING_FD)),
        }
    }

    /// Writes one configuration line to the helper.
    fn write(&mut self, line: &str) -> std::io::Result<()> {
        use std::io::Write;
        match &mut self.stdin {
            Some(s) => s.write_all(line.as_bytes()),
            None => Err(std::io::Error::from_raw_os_error(libc::EPIPE)),
        }
    }

    /// Ends the helper's input, waits for it, and returns its reports.
    fn finish(mut self) -> Result<Vec<InitReport>, NodeError> {
        drop(self.stdin.take());
        let out = self
            .reader
            .join()
            .map_err(|_| NodeError::sys("spawner", std::io::Error::other("reader panicked")));
        let _ = self.child.wait();
        out?
    }
}

/// Sends configurations to a [`SpawnFeed`]; never blocks (a thread writes them to the
/// helper), so a caller creating namespaces is never held up by the helper.
#[derive(Clone)]
pub struct SpawnSender(std::sync::mpsc::Sender<Feed>);

/// What the writer thread gets: a configuration to pass on now, or once its key (the node's
/// namespace) is released; or the release of a key.
enum Feed {
    Now(String),
    Held(String, String),
    Release(String),
}

impl SpawnSender {
    /// Passes `config` on now.
    pub fn send(&self, config: &InitConfig) -> Result<(), NodeError> {
        self.feed(Feed::Now(encode(config)?))
    }

    /// Passes `config` on once [`release`](Self::release) is called with the same key (in
    /// either order).
    pub fn send_after(&self, key: &str, config: &InitConfig) -> Result<(), NodeError> {
        self.feed(Feed::Held(key.to_string(), encode(config)?))
    }

    pub fn release(&self, key: &str) -> Result<(), NodeError> {
        self.feed(Feed::Release(key.to_string()))
    }

    fn feed(&self, f: Feed) -> Result<(), NodeError> {
        self.0
            .send(f)
            .map_err(|_| NodeError::sys("spawner", std::io::Error::other("it has stopped")))
    }
}

fn encode(config: &InitConfig) -> Result<String, NodeError> {
    let mut json = serde_json::to_string(config)
        .map_err(|e| NodeError::sys("encode init config", std::io::Error::other(e)))?;
    json.push('\n');
    Ok(json)
}

impl SpawnFeed {
    /// Starts the first helper for the nodes of `configs` (their configurations are sent
    /// later). Once `stop` says so, configurations are no longer passed to a helper: the
    /// nodes a helper already has still start, the others get no report.
    pub fn start<'a>(
        configs: impl IntoIterator<Item = &'a InitConfig>,
        stop: fn() -> bool,
    ) -> Result<Self, NodeError> {
        // Every capability some node keeps: the helper drops the others from its bounding
        // set once, so that the inits (which inherit it) need not drop them one by one.
        let keep = configs
            .into_iter()
            .fold(0u64, |m, c| m | c.ctx.security.cap_mask());
        let first = Helper::start(keep, &Shared::default())?;
        let (tx, rx) = std::sync::mpsc::channel::<Feed>();
        // The helpers it starts are waited for on this thread too: a helper dies with the
        // thread that started it (its parent-death signal), so that thread outlives them.
        let writer = std::thread::spawn(move || {
            let mut helpers = vec![first];
            let stopped = feed_helpers(rx, &mut helpers, keep, stop);
            (finish_all(helpers), stopped)
        });
        Ok(SpawnFeed { tx, writer })
    }

    pub fn sender(&self) -> SpawnSender {
        SpawnSender(self.tx.clone())
    }

    /// Ends the input (once every sender is dropped), waits for the helpers, and returns
    /// their reports. A node whose configuration no helper took has none.
    pub fn finish(self) -> Result<Vec<InitReport>, NodeError> {
        let SpawnFeed { tx, writer } = self;
        drop(tx);
        let (reports, stopped) = writer
            .join()
            .map_err(|_| NodeError::sys("spawner", std::io::Error::other("writer panicked")))?;
        if let Some(why) = stopped {
            tracing::warn!("{why}");
        }
        reports
    }
}

/// Writes each configuration from `rx` to the last of `helpers` as it becomes ready (see
/// [`Feed`]), starting a new helper after every [`INITS_PER_HELPER`], until `stop` says so;
/// returns why it stopped before the end of the input if a helper failed.
fn feed_helpers(
    rx: std::sync::mpsc::Receiver<Feed>,
    helpers: &mut Vec<Helper>,
    keep: u64,
    stop: fn() -> bool,
) -> Option<String> {
    let mut held = std::collections::HashMap::new();
    let mut released = std::collections::HashSet::new();
    let mut sent = 0;
    // The first helper's mount namespace and inits' network namespace, which every later
    // one uses.
    let mut shared = Shared::default();
    for f in rx {
        let line = match f {
            Feed::Now(line) => line,
            Feed::Held(key, line) if released.remove(&key) => line,
            Feed::Held(key, line) => {
                held.insert(key, line);
                continue;
            }
            Feed::Release(key) => match held.remove(&key) {
                Some(line) => line,
                None => {
                    released.insert(key);
                    continue;
                }
            },
        };
        if stop() {
            // `topo` is stopping: what is left of the input is dropped as it comes.
            continue;
        }
        if sent == INITS_PER_HELPER {
            // The full one finishes its inits and exits meanwhile.
            if shared.mounts.is_none() {
                shared = helpers.last().map(Helper::shared).unwrap_or_default();
            }
            let next = Helper::start(keep, &shared);
            if let Some(full) = helpers.last_mut() {
                drop(full.stdin.take());
            }
            match next {
                Ok(h) => helpers.push(h),
                Err(e) => return Some(e.to_string()),
            }
            sent = 0;
        }
        let written = match helpers.last_mut() {
            Some(h) => h.write(&line),
            None => Err(std::io::Error::from_raw_os_error(libc::EPIPE)),
        };
        if let Err(e) = written {
            // The helper stopped reading: its reports (if any) say why.
            return Some(format!("writing to the node spawner: {e}"));
        }
        sent += 1;
    }
    None
}

/// Ends the input of every helper, waits for each, and returns all their reports; an error
/// only when no helper reported anything (a helper's nodes without reports fail as such).
fn finish_all(helpers: Vec<Helper>) -> Result<Vec<InitReport>, NodeError> {
    let mut out = Vec::new();
    let mut failed = None;
    for h in helpers {
        match h.finish() {
            Ok(reports) => out.extend(reports),
            Err(e) => {
                tracing::warn!("{e}");
                failed = failed.or(Some(e));
            }
        }
    }
    match failed {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

fn parse_proc_id(text: &str) -> Option<ProcId> {
    let mut it = text.split_whitespace();
    Some(ProcId {
        pid: it.next()?.parse().ok()?,
        start: it.next()?.parse().ok()?,
    })
}

/// A command that runs `argv` inside the node whose init is `target`.
pub fn enter_command(
    target: ProcId,
    ctx: &NodeContext,
    detach: bool,
    argv: &[String],
) -> Result<Command, NodeError> {
    enter_command_as(target, ctx, if detach { "--detach" } else { "" }, argv)
}

/// A command that runs `argv` inside the node whose init is `target` on a new terminal that
/// it relays to its own standard streams (which must be a terminal): `topo exec` on a
/// terminal.
pub fn enter_tty_command(
    target: ProcId,
    ctx: &NodeContext,
    argv: &[String],
) -> Result<Command, NodeError> {
    enter_command_as(target, ctx, "--tty", argv)
}

fn enter_command_as(
    target: ProcId,
    ctx: &NodeContext,
    mode: &str,
    argv: &[String],
) -> Result<Command, NodeError> {
    let mut c = node_helper(ctx)?;
    c.arg("__enter")
        .arg(target.pid.to_string())
        .arg(target.start.to_string());
    if !mode.is_empty() {
        c.arg(mode);
    }
    node_args(&mut c, ctx)?;
    c.arg("--").args(argv);
    Ok(c)
}

/// The command of an enter server for the node whose init is `target` (see
/// [`super::serve`]): `topo __enter --serve PID START` with the node's options.
pub(crate) fn serve_command(target: ProcId, ctx: &NodeContext) -> Result<Command, NodeError> {
    let mut c = node_helper(ctx)?;
    c.arg("__enter")
        .arg("--serve")
        .arg(target.pid.to_string())
        .arg(target.start.to_string());
    node_args(&mut c, ctx)?;
    Ok(c)
}

/// The helper with the environment it enters a node with.
fn node_helper(ctx: &NodeContext) -> Result<Command, NodeError> {
    let mut c = helper_command()?;
    c.envs(super::helper_env());
    // The node's PATH, which `__enter` searches for the program (the last one given wins, as
    // in the program's environment).
    if let Some((_, path)) = ctx.env.iter().rev().find(|(k, _)| k == "PATH") {
        c.env("PATH", path);
    }
    Ok(c)
}

/// The options that describe the node: its environment, security profile, cgroups and user
/// namespace.
fn node_args(c: &mut Command, ctx: &NodeContext) -> Result<(), NodeError> {
    for (k, v) in &ctx.env {
        c.arg("--env").arg(format!("{k}={v}"));
    }
    let security = serde_json::to_string(&ctx.security)
        .map_err(|e| NodeError::sys("encode security profile", std::io::Error::other(e)))?;
    c.arg("--security").arg(security);
    for p in &ctx.cgroups {
        c.arg("--cgroup").arg(p);
    }
    if ctx.userns {
        c.arg("--userns");
    }
    Ok(())
}

/// Runs `/bin/sh -c COMMAND` in a node, its output appended to `log`, and returns its exit
/// status (blocking).
pub fn run_shell(
    target: ProcId,
    ctx: &NodeContext,
    command: &str,
    log: File,
) -> Result<i32, NodeError> {
    let argv = ["/bin/sh".to_string(), "-c".to_string(), command.to_string()];
    let err = log.try_clone().map_err(|e| NodeError::sys("dup log", e))?;
    let status = enter_command(target, ctx, false, &argv)?
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(|e| NodeError::sys("run a command in the node", e))?;
    Ok(status.code().unwrap_or(128))
}

/// Starts `/bin/sh -c COMMAND` in a node as a detached service writing to `log`; with
/// `restart`, under a supervisor that starts it again when it fails (its PID is returned).
pub fn start_service(
    target: ProcId,
    ctx: &NodeContext,
    command: &str,
    log: File,
    restart: bool,
) -> Result<ProcId, NodeError> {
    let argv = ["/bin/sh".to_string(), "-c".to_string(), command.to_string()];
    let err = log.try_clone().map_err(|e| NodeError::sys("dup log", e))?;
    let mode = if restart { "--restart" } else { "--detach" };
    let out = enter_command_as(target, ctx, mode, &argv)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .output()
        .map_err(|e| NodeError::sys("start a service in the node", e))?;
    let _ = log;
    parse_proc_id(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
        NodeError::sys(
            "start a service",
            std::io::Error::other(format!("helper exited with {}", out.status)),
        )
    })
}

/// Kills a process if it is still the one recorded, and waits (bounded) until it is gone.
/// Killing a node's init kills every process of the node with it.
pub fn kill_and_wait(id: ProcId, timeout: Duration) -> Result<(), NodeError> {
    if !id.alive() {
        return Ok(());
    }
    match kill(Pid::from_raw(id.pid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => return Err(NodeError::sys(format!("kill pid {}", id.pid), e)),
    }
    let deadline = Instant::now() + timeout;
    while id.alive() {
        if Instant::now() > deadline {
            return Err(NodeError::sys(
                format!("wait for pid {} to end", id.pid),
                std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
