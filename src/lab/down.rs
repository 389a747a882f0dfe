//! `down`: removes everything of a lab, and nothing else. What is removed is decided on the
//! kernel objects themselves (the lab's marker on each namespace's loopback and on host
//! links), so a lost or corrupt run directory never makes `down` touch a foreign object.
//! The lab's logs are moved to the archive first (see `state::archive`), unless discarded.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::LabError;
use crate::net::observe::{observe, Depth, Session};
use crate::net::{link, netns};
use crate::node::procfs::ProcDir;
use crate::node::ProcId;
use crate::plan::{names, NsObserved};
use crate::state::{archive, log, Brief, RunDir};

#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub namespaces: Vec<String>,
    pub host_links: Vec<String>,
    pub processes: usize,
    /// Namespaces with the lab's prefix that are not the lab's, left alone.
    pub foreign: Vec<String>,
    /// The archive the lab's logs were moved to, when they were.
    pub logs: Option<PathBuf>,
    /// What went wrong with the logs; `down` removed the lab all the same.
    pub warnings: Vec<String>,
}

/// What `down` does besides removing the lab.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownOptions {
    /// Remove the lab's logs with its run directory instead of archiving them.
    pub discard_logs: bool,
    /// Return only once the lab's processes have ended and its cgroups, logs and run
    /// directory are dealt with (without it, that is left to `topo __reap` when the lab
    /// has no logs to keep).
    pub wait: bool,
    /// The caller exits once `down` returns, so `down` may leave this process at real-time
    /// priority (see `run_ahead_of_exits`).
    pub then_exit: bool,
}

/// How long `down` waits for the log writers to write what the lab's processes left in their
/// pipes before it moves the logs.
const WRITERS_GRACE: Duration = Duration::from_secs(2);

/// How long the lab's killed processes may take to end before that is an error: 10 s, and
/// 10 ms more per process. Their exits are the kernel's work at the lowest priority (see
/// `kill_all`), and 10 000 of them on a busy 2-CPU machine took more than 10 s.
fn exit_timeout(processes: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(10).saturating_mul(processes as u32)
}

/// Removes the lab and archives its logs (see [`down_with`]).
pub async fn down(lab: &str) -> Result<DownReport, LabError> {
    down_with(lab, DownOptions::default()).await
}

/// Removes everything of the lab: its host links and namespace names go, and every process
/// of it is killed. Then, once those processes have ended, its cgroups go, its logs go to
/// the archive (or, with `discard_logs`, with the run directory) and its run directory is
/// removed: here when `wait` is set or there are logs to keep (whose archive `down`
/// reports), else in a `topo __reap` process that takes the lab's lock over, so that `down`
/// returns when the lab is out of the kernel's view, as `ip netns del` returns before the
/// kernel has freed the namespace. An `up`, `down` or `status` of the lab waits for the lock.
pub async fn down_with(lab: &str, options: DownOptions) -> Result<DownReport, LabError> {
    check_lab_name(lab)?;
    let t0 = Instant::now();
    let run = RunDir::lock(lab, true)?;
    let state = run.load_brief();
    tracing::debug!(ms = t0.elapsed().as_secs_f64() * 1e3, "locked and loaded");
    let mut report = DownReport::default();
    let earlier = run.read_note(crate::state::REAP_ERROR_FILE);
    if !earlier.trim().is_empty() {
        report.warnings.push(format!(
            "an earlier down of lab {lab} could not finish ({}); finished now",
            earlier.trim()
        ));
    }
    let mut session = Session::new(tokio::runtime::Handle::current())?;
    let t = Instant::now();
    let (proven, proven_inits) = proven_ours(lab, &state);
    session.proven = proven;
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "proven");
    let observed = observe(
        &mut session,
        lab,
        None,
        &[],
        &state.creating,
        Depth::Ownership,
    )
    .await?;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        proven = session.proven.len(),
        "observed"
    );
    let mut lab_netns = BTreeMap::new();
    for (name, o) in &observed.namespaces {
        match o {
            NsObserved::Ours(_) => {
                report.namespaces.push(name.clone());
                if let Some(c) = session.ns.get(name) {
                    lab_netns.insert(c.id.inode, name.clone());
                }
            }
            NsObserved::Foreign { .. } => report.foreign.push(name.clone()),
        }
    }
    // The node inits: those recorded, and any init of a PID namespace whose network
    // namespace is one of ours (found even when the record is lost). A node's init is
    // started only once its previous one is gone, so when each node namespace holds its
    // recorded init, those are all; else all of /proc is read. Killing an init kills every
    // process of its node.
    let held: Vec<(ProcId, u64)> = session
        .proven
        .iter()
        .filter_map(|(name, ino)| proven_inits.get(name).map(|d| (d.id, *ino)))
        .collect();
    let mut victims: Vec<ProcId> = proven_inits.values().map(|d| d.id).collect();
    let dirs: HashMap<i32, ProcDir> = proven_inits.into_values().map(|d| (d.id.pid, d)).collect();
    for (node, rec) in &state.nodes {
        if !session.proven.contains_key(&names::node_netns(lab, node)) && rec.init.alive() {
            victims.push(rec.init);
        }
    }
    if !crate::plan::inits_cover_lab(lab, &lab_netns, &held, false) {
        let inodes = lab_netns.keys().copied().collect();
        for (id, _) in crate::node::procfs::inits_in(&inodes) {
            if !victims.iter().any(|v| v.pid == id.pid) {
                victims.push(id);
            }
        }
    }
    report.processes = victims.len();
    let prefix = names::marker_prefix(lab);
    for l in &observed.host_links {
        let half_made = l.alias.is_none() && l.group == names::lab_group(lab);
        if half_made || l.alias.as_deref().is_some_and(|a| a.starts_with(&prefix)) {
            link::del(&session.host, l.index, &format!("host:{}", l.name)).await?;
            report.host_links.push(l.name.clone());
        }
    }
    // The lab's tunnels to other hosts end now, not when the kernel gets to free the bridge
    // namespace they are in (after `down` has returned): until then they would carry the
    // lab's traffic on the underlay, and answer the other hosts' shares.
    let bridges = names::bridge_netns(lab);
    if matches!(observed.namespaces.get(&bridges), Some(NsObserved::Ours(_))) {
        session.connect([bridges.as_str()])?;
        let h = session.handle(Some(&bridges))?;
        for l in link::dump(h).await?.iter().map(crate::net::observe::to_obs) {
            if l.kind.as_deref() == Some("vxlan") {
                link::del(h, l.index, &format!("{bridges}:{}", l.name)).await?;
            }
        }
    }
    // Close our handles first so nothing of ours holds a namespace. The names go before the
    // processes are killed: their exits, the kernel's work, would take the CPUs meanwhile.
    session.ns.clear();
    let names = report.namespaces.clone();
    tokio::task::spawn_blocking(move || delete_all(&names))
        .await
        .map_err(|e| LabError::Kernel(format!("namespace removal: {e}")))??;
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "names");
    let discard = options.discard_logs;
    if !options.wait && !victims.is_empty() && (discard || !run.has_logs_to_keep()) {
        run.clear_ready()?;
        let handed = hand_over(run, &victims, discard);
        tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "handed over");
        if options.then_exit && handed.is_ok() {
            run_ahead_of_exits();
        }
        // Killed whether or not the reaper started: without it, the next `down` finishes.
        kill_all(&victims, &dirs);
        tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "processes killed");
        handed?;
        return Ok(report);
    }
    kill_all(&victims, &dirs);
    drop(dirs);
    let lab_name = lab.to_string();
    let (logs, warnings) =
        tokio::task::spawn_blocking(move || finish(run, &lab_name, victims, discard, false))
            .await
            .map_err(|e| LabError::Internal(format!("finish the down of lab {lab}: {e}")))??;
    report.logs = logs;
    report.warnings.extend(warnings);
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "done");
    Ok(report)
}

/// The namespaces of the record's nodes that are proven the lab's without entering them,
/// by name and inode, with each one's init, its `/proc` directory held open: a node's init
/// that still runs (the same PID and start time) is the lab's, so is its network namespace,
/// and so is a name that holds that namespace (the same device and inode: namespaces that
/// exist at one time never share one). Other namespaces are left to the marker on their
/// loopback.
fn proven_ours(lab: &str, state: &Brief) -> (BTreeMap<String, u64>, BTreeMap<String, ProcDir>) {
    use nix::sys::stat::stat;
    let nodes: Vec<_> = state.nodes.iter().collect();
    let found =
        in_parallel(&nodes, per_cpu(nodes.len()), |(node, rec)| {
            let name = names::node_netns(lab, node);
            let named = stat(&netns::path(&name)).ok()?;
            // Opened, and its start time checked, before its namespace is read: what is read
            // through the open directory is that process's, whatever its PID becomes.
            let init = ProcDir::open(rec.init)?;
            let (dev, ino) = init.node_net()?;
            (named.st_ino == ino && named.st_dev == dev && named.st_ino == rec.netns_inode)
                .then_some((name, named.st_ino, init))
        });
    let mut proven = BTreeMap::new();
    let mut inits = BTreeMap::new();
    for (name, ino, init) in found.into_iter().flatten() {
        proven.insert(name.clone(), ino);
        inits.insert(name, init);
    }
    (proven, inits)
}

/// Makes room in this process's descriptor table for the `/proc` directories that `down`
/// holds open, one per node of the lab (at most one per name with the lab's prefix), before
/// the process has other threads. The kernel grows the table by doubling it as descriptors
/// are opened, and in a process with more than one thread each growth first waits for an RCU
/// grace period (10–20 ms each on a busy machine, five of them for a thousand nodes).
pub fn reserve_descriptors(lab: &str) {
    // Beyond those, room for what the command opens besides: the runtime's, the lock, the
    // sockets of the host and of the lab's bridge namespace.
    const BESIDES: usize = 64;
    if let Ok(names) = netns::list_with_prefix(&names::netns_prefix(lab)) {
        crate::fds::reserve(names.len() + BESIDES);
    }
}

/// Below this many items, [`per_cpu`] keeps the work on the calling thread.
const PARALLEL_FROM: usize = 64;

/// The threads for `items` pieces of per-process work that is all system calls (`/proc`
/// reads, signals), which the kernel does on the calling thread's CPU: one per CPU, up to 4,
/// from [`PARALLEL_FROM`] items on; else 1.
fn per_cpu(items: usize) -> usize {
    if items < PARALLEL_FROM {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// `f` of each of `items`, shared among `threads` threads (the calling one alone when
/// `threads` < 2). The results in no particular order; a share whose thread cannot be started
/// is done on the calling thread, one whose thread panicked has no results.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads < 2 || items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let mut out = Vec::with_capacity(items.len());
        let mut workers = Vec::new();
        for part in items.chunks(items.len().div_ceil(threads)) {
            let work = move || part.iter().map(f).collect::<Vec<R>>();
            match std::thread::Builder::new().spawn_scoped(s, work) {
                Ok(w) => workers.push(w),
                Err(_) => out.extend(part.iter().map(f)),
            }
        }
        for w in workers {
            out.extend(w.join().unwrap_or_default());
        }
        out
    })
}

/// The end of a `down`, once the lab is out of the kernel's view and its processes are
/// killed: waits until they have ended, removes the lab's cgroups, moves its logs to the
/// archive (after the log writers have written what was left in their pipes) and removes the
/// run directory. Returns the archive and what went wrong with the logs; with `note_failure`
/// (the reaper), a failure before the logs is noted in the run directory for the next `down`.
fn finish(
    run: RunDir,
    lab: &str,
    victims: Vec<ProcId>,
    discard: bool,
    note_failure: bool,
) -> Result<(Option<PathBuf>, Vec<String>), LabError> {
    let timeout = exit_timeout(victims.len());
    let gone = wait_gone(victims, timeout).and_then(|()| {
        // The lab's cgroups (only ever under topo/LAB), once their processes are gone.
        match crate::node::cgroup::Cgroups::detect() {
            Ok(cg) => cg
                .remove_lab(lab)
                .map_err(|e| LabError::Kernel(format!("cgroups of lab {lab}: {e}"))),
            Err(_) => Ok(()),
        }
    });
    if let Err(e) = gone {
        if note_failure {
            run.reap_failed(&format!("{e}\n"));
        }
        return Err(e);
    }
    let (keep, warning) =
        archive::archives_to_keep(std::env::var_os("TOPO_LOG_ARCHIVES").as_deref());
    let mut warnings: Vec<String> = warning.into_iter().collect();
    if !discard && keep > 0 {
        log::wait_for(&log::writers_of(&run.logs_dir()), WRITERS_GRACE);
    }
    let archived = run.archive_logs(discard, keep);
    warnings.extend(archived.warnings);
    run.remove()?;
    Ok((archived.path, warnings))
}

/// How long [`wait_gone`] waits before it kills what has not begun to end: the `down` that
/// handed the processes over kills them a moment after the reaper starts, or not at all when
/// it was itself stopped in between.
const KILL_AGAIN: Duration = Duration::from_secs(1);

/// Waits until every process of `victims` has ended, at most `timeout`, after [`KILL_AGAIN`]
/// killing once each one still there that has not begun to exit. The processes are waited
/// for one after another, so that each wait reads one process's `/proc` entry and not every
/// one's: their exits are the kernel's work, and reading thousands of `/proc/PID/stat`
/// files every few milliseconds would take a CPU from them.
fn wait_gone(victims: Vec<ProcId>, timeout: Duration) -> Result<(), LabError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut killed = false;
    for (i, v) in victims.iter().enumerate() {
        while v.alive() {
            let now = Instant::now();
            if now > deadline {
                let left: Vec<&ProcId> = victims[i..].iter().filter(|v| v.alive()).collect();
                return Err(LabError::Kernel(format!(
                    "{} processes of the lab still run {} s after they were killed (pid {} first)",
                    left.len(),
                    timeout.as_secs(),
                    left.first().map_or(v.pid, |f| f.pid)
                )));
            }
            if !killed && now >= start + KILL_AGAIN {
                let running: Vec<ProcId> = victims[i..]
                    .iter()
                    .filter(|v| v.running())
                    .copied()
                    .collect();
                kill_all(&running, &HashMap::new());
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(())
}

/// Hands the end of the `down` ([`finish`]) to a `topo __reap` process, before the lab's
/// processes are killed: the lab is marked ending, with the processes to wait for in the
/// marker, and the lock's descriptor is inherited by the reaper, so that the lock holds,
/// without a moment free, until the reaper is done.
fn hand_over(run: RunDir, victims: &[ProcId], discard: bool) -> Result<(), LabError> {
    let mut list = String::with_capacity(victims.len() * 20);
    for v in victims {
        list.push_str(&format!("{} {}\n", v.pid, v.start));
    }
    run.mark_ending(&list)?;
    start_reaper(&run, discard)?;
    run.leave_locked();
    Ok(())
}

/// Starts `topo __reap` for `run`'s lab with the lab's lock on descriptor 3 (4 if the lock is
/// on 3 here), standard streams on `/dev/null`, in a session of its own (a terminal's hangup
/// or Ctrl-C does not reach it) and with this process's environment. `posix_spawn`: the child
/// shares this process's memory until it executes, so nothing of it is copied; this process
/// waits only for that.
fn start_reaper(run: &RunDir, discard: bool) -> Result<(), LabError> {
    use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
    let err = |e: nix::errno::Errno| LabError::Kernel(format!("start topo __reap: {e}"));
    let exe = crate::node::spawn::helper_exe()?;
    let lock = run.lock_fd().as_raw_fd();
    let target = if lock == 3 { 4 } else { 3 };
    let mut args = vec![crate::cli::front::CORE, "__reap", &run.lab, "--lock-fd"];
    let target_arg = target.to_string();
    args.push(&target_arg);
    if discard {
        args.push("--discard-logs");
    }
    let args = crate::node::enter::cstrings(args.iter().copied())
        .map_err(|e| LabError::Kernel(e.to_string()))?;
    // This process's environment as it is (a variable that is not UTF-8 included); no
    // variable holds a NUL byte.
    let env: Vec<std::ffi::CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            use std::os::unix::ffi::OsStrExt;
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            std::ffi::CString::new(kv).ok()
        })
        .collect();
    let mut actions = PosixSpawnFileActions::init().map_err(err)?;
    for fd in 0..3 {
        actions
            .add_open(
                fd,
                c"/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(err)?;
    }
    // A descriptor duplicated to another number is inherited (close-on-exec is cleared).
    actions.add_dup2(lock, target).map_err(err)?;
    let mut attr = PosixSpawnAttr::init().map_err(err)?;
    attr.set_flags(
        PosixSpawnFlags::from_bits_retain(i32::from(libc::POSIX_SPAWN_SETSID))
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK,
    )
    .map_err(err)?;
    attr.set_sigmask(&nix::sys::signal::SigSet::empty())
        .map_err(err)?;
    // The reaper is nobody's to wait for: it outlives this process, and ends reparented.
    posix_spawn(exe.as_path(), &actions, &attr, &args, &env).map_err(err)?;
    Ok(())
}

/// Sends SIGKILL to every victim still running, each first set to the lowest priority: a
/// killed node's exit is the kernel's work, done on the CPUs in the node's process, and
/// hundreds of them at normal priority would keep every other process of the machine
/// waiting until they were all done, `down` itself and the shell that started it among
/// them. A node's init leads a session of its own, so where the kernel groups scheduling by
/// session (autogroup), the group's nice value is what counts, not the process's.
/// A victim whose `/proc` directory is in `dirs` is reached through it (no second read of
/// its identity, and no other process if its PID is reused); the others by PID, once their
/// identity is checked. The victims are shared among threads ([`in_parallel`]), which run as
/// this process does.
fn kill_all(victims: &[ProcId], dirs: &HashMap<i32, ProcDir>) {
    use nix::sys::signal::{kill, Signal};
    let autogroups = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .is_ok_and(|v| v.trim() == "1");
    let lower = |pid: i32| {
        // SAFETY: a plain system call on one process of the lab (checked by the caller to
        // be the one recorded, just before); no memory is passed.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, 19) };
    };
    in_parallel(victims, per_cpu(victims.len()), |v| {
        if let Some(d) = dirs.get(&v.pid).filter(|d| d.id == *v) {
            // Still there (a zombie too), so the PID is still its own.
            if d.signal(None).is_ok() {
                lower(v.pid);
                if autogroups {
                    let _ = d.write("autogroup", b"19");
                }
                let _ = d.signal(Some(Signal::SIGKILL));
            }
        } else if v.alive() {
            lower(v.pid);
            if autogroups {
                let _ = std::fs::write(format!("/proc/{}/autogroup", v.pid), b"19");
            }
            let _ = kill(nix::unistd::Pid::from_raw(v.pid), Signal::SIGKILL);
        }
    });
}

/// Puts every thread of this process under `SCHED_FIFO` (lowest real-time priority), where
/// the process may: from the kills on, hundreds of node exits, the kernel's work done in
/// each node's process at normal priority, would otherwise take the CPUs from this process
/// (it would wait behind each of them) until they were all done. For a process that exits
/// once `down` returns (`topo down`): it stays so.
fn run_ahead_of_exits() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let param = libc::sched_param { sched_priority: 1 };
    for tid in tasks.flatten() {
        if let Some(tid) = tid.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) {
            // SAFETY: changes the policy of one of this process's threads, from a valid
            // parameter; when it fails (no CAP_SYS_NICE) the thread stays as it was.
            unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) };
        }
    }
}

/// Entry point of `topo __reap LAB --lock-fd FD [--discard-logs]`, started by [`hand_over`]:
/// takes over the lab's lock (inherited as FD), reads the killed processes (`PID START`
/// per line) from the lab's ending marker and finishes the `down`. When that fails, the lab's run
/// directory stays, with the error in its ending marker, for the next `down` to finish.
pub fn reap_main(args: &[String]) -> i32 {
    let (Some(lab), Some("--lock-fd"), Some(fd)) = (
        args.first(),
        args.get(1).map(String::as_str),
        args.get(2).and_then(|f| f.parse::<i32>().ok()),
    ) else {
        return 2;
    };
    let discard = args.get(3).is_some_and(|a| a == "--discard-logs");
    if check_lab_name(lab).is_err() || fd < 3 {
        return 2;
    }
    // SAFETY: the descriptor was handed over by `down` for this process alone (made
    // inheritable for it only); nothing else here owns it. `adopt` checks that it is the
    // lab's lock file and holds the lock.
    let lock = unsafe { OwnedFd::from_raw_fd(fd) };
    let run = match RunDir::adopt(lab, lock) {
        Ok(r) => r,
        Err(_) => return 1,
    };
    let mut victims = Vec::new();
    for line in run.read_note(crate::state::ENDING_FILE).lines() {
        let mut words = line.split_whitespace();
        let pid = words.next().and_then(|w| w.parse::<i32>().ok());
        let start = words.next().and_then(|w| w.parse::<u64>().ok());
        if let (Some(pid), Some(start)) = (pid, start) {
            victims.push(ProcId { pid, start });
        }
    }
    match finish(run, lab, victims, discard, true) {
        Ok(_) => 0,
        Err(_) => 1,
    }
}

/// At most this many threads remove namespace names at once. Each removal's `umount` waits
/// for an expedited RCU grace period after the kernel's mount lock is released, and removals
/// waiting at the same time share one grace period; beyond 32 threads the removal was no
/// faster (docs/performance.md, on `down` at 1000 nodes).
const REMOVERS: usize = 32;

/// Each removal thread has at least this many names: below that, starting a thread costs
/// more than the wait it shares.
const NAMES_PER_REMOVER: usize = 8;

/// Removes the named namespaces (`ip netns del`), on up to [`REMOVERS`] threads; the first
/// error.
fn delete_all(names: &[String]) -> Result<(), LabError> {
    let threads = (names.len() / NAMES_PER_REMOVER).clamp(1, REMOVERS);
    let done = in_parallel(names, threads, |n| netns::delete(n));
    if done.len() < names.len() {
        return Err(
            crate::net::NetError::io("netns removal", std::io::Error::other("panicked")).into(),
        );
    }
    done.into_iter()
        .collect::<Result<(), _>>()
        .map_err(LabError::from)
}

/// Refuses lab names that could escape the run directory or match other labs' objects.
pub(super) fn check_lab_name(lab: &str) -> Result<(), LabError> {
    let ok = !lab.is_empty()
        && lab.len() <= 12
        && lab
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LabError::Usage(format!(
            "'{lab}' is not a lab name (1 to 12 characters of a-z, 0-9 and -)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_parallel_answers_every_item_once_below_and_above_the_threshold() {
        for n in [0, 1, PARALLEL_FROM - 1, PARALLEL_FROM, 1001] {
            let items: Vec<usize> = (0..n).collect();
            for threads in [1, 2, 4, per_cpu(n)] {
                let mut got = in_parallel(&items, threads, |i| i * 2);
                got.sort_unstable();
                let want: Vec<usize> = items.iter().map(|i| i * 2).collect();
                assert_eq!(got, want, "{n} items on {threads} threads");
            }
        }
        assert_eq!(per_cpu(PARALLEL_FROM - 1), 1);
    }

    /// A child of this test that sleeps, with its identity (PID and start time). It leads a
    /// session of its own, as a node's init does: `kill_all` lowers the nice value of the
    /// victim's session (its autogroup), which must not be the test's.
    fn sleeper() -> (std::process::Child, ProcId) {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("60");
        // SAFETY: runs in the forked child before exec, and calls only setsid, which is
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            })
        };
        let child = cmd.spawn().expect("start sleep");
        let pid = i32::try_from(child.id()).expect("pid");
        let id = ProcId::of(pid).expect("the sleeper's /proc/PID/stat");
        (child, id)
    }

    #[test]
    fn wait_gone_kills_what_nobody_killed_and_returns_once_it_has_ended() {
        let (mut a, id_a) = sleeper();
        let (mut b, id_b) = sleeper();
        // The first has ended already (as most victims have by the time the reaper looks);
        // the second was never killed, as when `down` stops between hand-over and kills.
        a.kill().expect("kill the first");
        a.wait().expect("reap the first");
        let t = Instant::now();
        let waited = wait_gone(vec![id_a, id_b], Duration::from_secs(10));
        let took = t.elapsed();
        assert!(waited.is_ok(), "{waited:?}");
        assert!(
            took >= KILL_AGAIN && took < KILL_AGAIN + Duration::from_secs(5),
            "took {took:?}"
        );
        let status = b.wait().expect("reap the second");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }

    #[test]
    fn wait_gone_names_what_still_runs_when_its_time_is_up() {
        let (mut child, id) = sleeper();
        let waited = wait_gone(vec![id], Duration::from_millis(100));
        let alive = id.alive();
        let _ = child.kill();
        let _ = child.wait();
        let err = waited.expect_err("the sleeper outlived the timeout");
        let text = err.to_string();
        assert!(
            text.contains("1 processes") && text.contains(&format!("pid {}", id.pid)),
            "{text}"
        );
        assert!(alive, "killed before its time");
    }
}
