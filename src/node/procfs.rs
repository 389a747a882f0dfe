//! Reading `/proc` about processes: identity (PID plus start time, so a reused PID is never
//! mistaken for ours), liveness and namespaces.

use std::os::unix::fs::MetadataExt;

pub use crate::plan::ProcId;

/// Start time and state letter of a process, from `/proc/PID/stat`. Reads into the stack:
/// the spawner calls this between forks, where each heap page written is copied.
pub fn stat(pid: i32) -> Option<(u64, char)> {
    stat_in(None, pid)
}

/// [`stat`] in the proc file system opened as `proc` (the host's, for a process that has
/// joined a node's mount namespace), or in `/proc`.
pub fn stat_in(proc: Option<&std::fs::File>, pid: i32) -> Option<(u64, char)> {
    stat_fields(proc, pid).map(|(start, state, _)| (start, state))
}

/// The kernel's flag of a process that has begun to exit (`PF_EXITING`, field 9 of
/// `/proc/PID/stat`): a node's init keeps its state letter while it waits for the rest of its
/// PID namespace to end.
const PF_EXITING: u64 = 0x4;

/// Start time, state letter and flags of a process (see [`stat_in`]).
fn stat_fields(proc: Option<&std::fs::File>, pid: i32) -> Option<(u64, char, u64)> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let mut path = [0u8; 32];
    let len = {
        let mut w = std::io::Cursor::new(&mut path[..]);
        match proc {
            Some(_) => write!(w, "{pid}/stat").ok()?,
            None => write!(w, "/proc/{pid}/stat").ok()?,
        }
        w.position() as usize
    };
    let path = std::str::from_utf8(&path[..len]).ok()?;
    read_stat(proc.map(|dir| dir.as_fd()), path)
}

/// Reads a `stat` file (at `path`, relative to `dir` when given) into the stack and parses
/// its start time, state letter and flags.
fn read_stat(dir: Option<std::os::fd::BorrowedFd<'_>>, path: &str) -> Option<(u64, char, u64)> {
    use std::io::Read;
    let mut buf = [0u8; 1024];
    let mut file = match dir {
        Some(dir) => std::fs::File::from(
            nix::fcntl::openat(
                dir,
                path,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()?,
        ),
        None => std::fs::File::open(path).ok()?,
    };
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (the state); field 9 is 6 further, field 22 13 after that.
    let flags = fields.nth(5)?.parse().ok()?;
    let start = fields.nth(12)?.parse().ok()?;
    Some((start, state, flags))
}

/// A process's `/proc/PID` directory, held open: what goes through it (files read relative
/// to it, signals sent with it as a pidfd) reaches that process or fails, never another one
/// that was given its PID later. Opening it costs one path walk; each use after that none.
#[derive(Debug)]
pub struct ProcDir {
    pub id: ProcId,
    dir: std::os::fd::OwnedFd,
}

impl ProcDir {
    /// Opens the directory of `id` if that process still runs (same PID and start time, not
    /// a zombie).
    pub fn open(id: ProcId) -> Option<ProcDir> {
        use std::os::fd::AsFd;
        let dir = nix::fcntl::open(
            format!("/proc/{}", id.pid).as_str(),
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        let (start, state, _) = read_stat(Some(dir.as_fd()), "stat")?;
        (start == id.start && state != 'Z' && state != 'X').then_some(ProcDir { id, dir })
    }

    /// Device and inode of the process's namespace of the given kind (`net`, `pid`, …).
    pub fn ns(&self, kind: &str) -> Option<(u64, u64)> {
        self.stat_at(&format!("ns/{kind}"))
    }

    /// Device and inode of the network namespace of the node whose init this process is:
    /// the one it holds open (see [`NODE_NET_FD`]), else the one it is in.
    pub fn node_net(&self) -> Option<(u64, u64)> {
        self.stat_at(NODE_NET_PATH)
            .filter(|(dev, _)| Some(*dev) == nsfs_dev())
            .or_else(|| self.ns("net"))
    }

    fn stat_at(&self, path: &str) -> Option<(u64, u64)> {
        let st = nix::sys::stat::fstatat(&self.dir, path, nix::fcntl::AtFlags::empty()).ok()?;
        Some((st.st_dev, st.st_ino))
    }

    /// Writes `value` to one of the process's files (`autogroup`, …).
    pub fn write(&self, file: &str, value: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let fd = nix::fcntl::openat(
            &self.dir,
            file,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        std::fs::File::from(fd).write_all(value)
    }

    /// Sends `signal` (`None`: only checks that the process exists, as a zombie too) to the
    /// process: `pidfd_send_signal`, which takes a `/proc/PID` directory as a pidfd.
    pub fn signal(&self, signal: Option<nix::sys::signal::Signal>) -> nix::Result<()> {
        use std::os::fd::AsRawFd;
        let sig = signal.map_or(0, |s| s as libc::c_int);
        // SAFETY: the descriptor is this process's open /proc/PID directory, owned by
        // `self` and valid for the call; no siginfo is passed (NULL) and no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.dir.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        nix::errno::Errno::result(rc).map(drop)
    }
}

impl ProcId {
    pub fn of(pid: i32) -> Option<ProcId> {
        stat(pid).map(|(start, _)| ProcId { pid, start })
    }

    /// The same process is still running (not a zombie, not a reused PID).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((start, state)) if start == self.start && state != 'Z' && state != 'X')
    }

    /// [`alive`](Self::alive) and not exiting: a process that has begun to exit (a node's
    /// init that was killed, waiting for its PID namespace to end) is alive but not running.
    pub fn running(&self) -> bool {
        matches!(stat_fields(None, self.pid), Some((start, state, flags))
            if start == self.start && state != 'Z' && state != 'X' && flags & PF_EXITING == 0)
    }
}

/// Inode of a process's namespace of the given kind (`net`, `pid`, `mnt`, …).
pub fn ns_inode(pid: i32, kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

/// The descriptor on which a node's init that lives outside its node's network namespace
/// holds that namespace open. Such an init lives in a namespace shared by the inits of its
/// `topo up`, which holds nothing but a loopback (see `init::Spawner`); the node's
/// processes are in the node's own.
pub const NODE_NET_FD: std::os::fd::RawFd = 3;

/// [`NODE_NET_FD`] below a `/proc/PID` directory.
const NODE_NET_PATH: &str = "fd/3";

/// The device of the kernel's namespace file system, on which every namespace file is.
fn nsfs_dev() -> Option<u64> {
    static DEV: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *DEV.get_or_init(|| std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.dev()))
}

/// Inode of the network namespace of the node whose init is `pid`: the one the init holds
/// open on [`NODE_NET_FD`], else the one it is in (an init in its node's namespace).
pub fn node_net_inode(pid: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/{NODE_NET_PATH}"))
        .ok()
        .filter(|m| Some(m.dev()) == nsfs_dev())
        .map(|m| m.ino())
        .or_else(|| ns_inode(pid, "net"))
}

/// Opens the network namespace of the node whose init is `pid` (see [`node_net_inode`]).
pub fn open_node_net(pid: i32) -> std::io::Result<std::fs::File> {
    if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/{NODE_NET_PATH}")) {
        if f.metadata().is_ok_and(|m| Some(m.dev()) == nsfs_dev()) {
            return Ok(f);
        }
    }
    std::fs::File::open(format!("/proc/{pid}/ns/net"))
}

/// Processes that are PID 1 of a nested PID namespace and hold one of the given network
/// namespaces: node inits, with the inode of their node's network namespace. One pass over
/// /proc.
pub fn inits_in(netns_inodes: &std::collections::BTreeSet<u64>) -> Vec<(ProcId, u64)> {
    if netns_inodes.is_empty() {
        return Vec::new();
    }
    nested_inits()
        .into_iter()
        .filter(|(_, ino)| netns_inodes.contains(ino))
        .collect()
}

/// Every process that is PID 1 of a PID namespace nested in this process's, with the inode
/// of its node's network namespace ([`node_net_inode`]). One pass over /proc; only processes
/// in another PID namespace have their status read.
pub fn nested_inits() -> Vec<(ProcId, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own_pid_ns = ns_inode(std::process::id() as i32, "pid");
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if ns_inode(pid, "pid") == own_pid_ns {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let nspid: Vec<&str> = status
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .map(|l| l.split_whitespace().skip(1).collect())
            .unwrap_or_default();
        if nspid.len() > 1 && nspid.last() == Some(&"1") {
            // Only an init's node namespace is looked up (a zombie has none: left out).
            if let Some((id, ino)) = ProcId::of(pid).zip(node_net_inode(pid)) {
                out.push((id, ino));
            }
        }
    }
    out
}

/// The process whose PID is `node_pid` in the PID namespace of the process `init` (a node's
/// init), as the host knows it. One pass over /proc; only processes in that namespace have
/// their status read, so a PID written by the node can name none but its own processes.
pub fn in_pid_ns_of(init: i32, node_pid: i32) -> Option<ProcId> {
    let ns = ns_inode(init, "pid")?;
    let want = node_pid.to_string();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if ns_inode(pid, "pid") != Some(ns) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let last = status
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .and_then(|l| l.split_whitespace().last());
        if last == Some(want.as_str()) {
            return ProcId::of(pid);
        }
    }
    None
}

/// The first bytes (at most 64) of the regular file `path` as the process `pid` sees its
/// file system: looked up below its root (`/proc/PID/root`) by the kernel, every symbolic link
/// resolved inside that root, so a link the node planted cannot lead to a host file.
pub fn read_in_root(pid: i32, path: &std::path::Path) -> Option<String> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::io::Read;
    let root = std::fs::File::open(format!("/proc/{pid}/root")).ok()?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let file = std::fs::File::from(openat2(&root, rel, how).ok()?);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = [0u8; 64];
    let mut n = 0;
    let mut f = &file;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_identified() {
        let me = ProcId::of(std::process::id() as i32).expect("own stat");
        assert!(me.alive());
        let other = ProcId {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(
            !other.alive(),
            "a different start time is a different process"
        );
        assert!(me.running());
        assert!(!other.running());
    }

    #[test]
    fn start_time_and_flags_are_fields_22_and_9() {
        let pid = std::process::id() as i32;
        let (start, state, flags) = stat_fields(None, pid).expect("own stat");
        let text = std::fs::read_to_string("/proc/self/stat").expect("read stat");
        let rest = &text[text.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        // `fields[0]` is field 3.
        assert_eq!(state.to_string(), fields[0]);
        assert_eq!(flags.to_string(), fields[9 - 3]);
        assert_eq!(start.to_string(), fields[22 - 3]);
    }

    #[test]
    fn a_zombie_is_neither_alive_nor_running() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 0"])
            .spawn()
            .expect("spawn");
        let id = ProcId::of(child.id() as i32).expect("child stat");
        // Not reaped yet: a zombie once it has exited.
        let zombie = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            stat(child.id() as i32).is_some_and(|(_, s)| s == 'Z')
        });
        assert!(zombie, "the child never became a zombie");
        assert!(!id.alive());
        assert!(!id.running());
        child.wait().expect("reap");
    }

    #[test]
    fn a_proc_dir_reaches_its_process_and_no_other() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let id = ProcId::of(pid).expect("child stat");
        // Another start time is another process: not opened.
        assert!(ProcDir::open(ProcId {
            pid,
            start: id.start + 1
        })
        .is_none());
        let dir = ProcDir::open(id).expect("open the child's directory");
        let net = std::fs::metadata(format!("/proc/{pid}/ns/net")).expect("ns/net");
        assert_eq!(dir.ns("net"), Some((net.dev(), net.ino())));
        assert!(dir.signal(None).is_ok());
        dir.signal(Some(nix::sys::signal::Signal::SIGKILL))
            .expect("kill through the directory");
        let status = child.wait().expect("reap");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: the directory reaches nothing, whoever gets the PID next.
        assert_eq!(dir.signal(None), Err(nix::errno::Errno::ESRCH));
        assert!(dir.write("comm", b"x").is_err());
    }
}
