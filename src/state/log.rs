//! The logs of services and `exec:` commands, and `topo __log`, the host-side process that
//! writes them.
//!
//! A node process never holds a descriptor of a log file: its standard output and error are
//! the write end of a pipe whose read end belongs to a `topo __log DIR NAME MAX_SIZE KEEP`
//! helper. The helper runs on the host (in `topo`'s namespaces and cgroup, not the node's),
//! opens `DIR` as the run directory is opened (no symbolic links, see `safe.rs`), appends
//! what it reads to `NAME.log` and rotates it before it would pass `MAX_SIZE` bytes
//! (`NAME.log` → `NAME.log.1` → … → `NAME.log.KEEP`, the oldest dropped), so one log takes
//! at most `MAX_SIZE × (KEEP + 1)` bytes. It exits when every writer has closed the pipe
//! (the service and everything it started have ended). It is started as a session of its
//! own, not a child of `topo`: it outlives `topo` as the service does, and a Ctrl-C at the
//! terminal does not reach it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::{safe, StateError};
use crate::node::ProcId;
use crate::spec::Logs;

/// One log file, capped and rotated, in a directory opened without following links.
pub struct LogWriter<'a> {
    dir: BorrowedFd<'a>,
    dir_path: &'a Path,
    name: String,
    max_size: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
}

impl<'a> LogWriter<'a> {
    /// A writer of `NAME.log` in `dir`, appending to what the log holds.
    pub fn new(dir: BorrowedFd<'a>, dir_path: &'a Path, name: &str, logs: Logs) -> Self {
        LogWriter {
            dir,
            dir_path,
            name: format!("{name}.log"),
            max_size: logs.max_size.max(1),
            keep: logs.keep,
            file: None,
            size: 0,
        }
    }

    fn rotated(&self, i: u32) -> String {
        format!("{}.{i}", self.name)
    }

    fn open(&mut self) -> Result<(), StateError> {
        let path = self.dir_path.join(&self.name);
        let f = safe::open_file(
            self.dir,
            &self.name,
            &path,
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
            0o644,
        )?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(f);
        Ok(())
    }

    /// `NAME.log.I` → `NAME.log.I+1`, …, `NAME.log` → `NAME.log.1`; with `keep: 0` the log is
    /// removed. Renames replace a symbolic link in the way, never follow it.
    fn rotate(&mut self) -> Result<(), StateError> {
        self.file = None;
        let rename = |from: &str, to: &str| -> Result<(), StateError> {
            match nix::fcntl::renameat(self.dir, from, self.dir, to) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(StateError::Io {
                    what: format!("rotate {}", self.dir_path.join(from).display()),
                    source: e.into(),
                }),
            }
        };
        if self.keep == 0 {
            match nix::unistd::unlinkat(
                self.dir,
                self.name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    return Err(StateError::Io {
                        what: format!("remove {}", self.dir_path.join(&self.name).display()),
                        source: e.into(),
                    })
                }
            }
        } else {
            for i in (1..self.keep).rev() {
                rename(&self.rotated(i), &self.rotated(i + 1))?;
            }
            rename(&self.name, &self.rotated(1))?;
        }
        let path = self.dir_path.join(&self.name);
        self.file = Some(safe::create_new(self.dir, &self.name, &path, 0o644)?);
        self.size = 0;
        Ok(())
    }

    /// Appends `buf`, rotating first whenever it would pass the cap.
    pub fn write(&mut self, mut buf: &[u8]) -> Result<(), StateError> {
        if self.file.is_none() {
            self.open()?;
        }
        while !buf.is_empty() {
            if self.size > 0 && self.size + buf.len() as u64 > self.max_size {
                self.rotate()?;
            }
            let room = usize::try_from(self.max_size - self.size.min(self.max_size))
                .unwrap_or(usize::MAX)
                .max(1);
            let n = buf.len().min(room);
            let Some(f) = self.file.as_mut() else {
                return Ok(());
            };
            f.write_all(&buf[..n]).map_err(|e| StateError::Io {
                what: format!("write {}", self.dir_path.join(&self.name).display()),
                source: e,
            })?;
            self.size += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }
}

/// Entry point of `topo __log DIR NAME MAX_SIZE KEEP`: reads standard input to its end into
/// the capped log `DIR/NAME.log`. Reports `PID START` (or `error: …`) on standard output and
/// goes on in a child of its own session, so that it is nobody's child in `topo`.
pub fn main(args: &[String]) -> i32 {
    let report = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    // What `topo`'s caller held without close-on-exec (a `flock` lock, a pipe) would stay
    // open, and held, for as long as the service runs.
    if let Err(e) = crate::node::security::close_extra_fds() {
        report(&format!("error: {e}"));
        return 1;
    }
    let (dir_path, name, logs) = match parse_args(args) {
        Some(a) => a,
        None => {
            report("error: usage: topo __log DIR NAME MAX_SIZE KEEP");
            return 2;
        }
    };
    let dir = match safe::open_dir(&dir_path, false) {
        Ok(Some(d)) => d,
        Ok(None) => {
            report(&format!("error: {} does not exist", dir_path.display()));
            return 1;
        }
        Err(e) => {
            report(&format!("error: {e}"));
            return 1;
        }
    };
    // The log is opened (and so checked) before the report, so that a refused file is an
    // error of `topo up` rather than a silent loss of output.
    let mut writer = LogWriter::new(dir.as_fd(), &dir_path, &name, logs);
    if let Err(e) = writer.open() {
        report(&format!("error: {e}"));
        return 1;
    }
    // SAFETY: `topo __log` is single-threaded (no runtime is started in this mode), so the
    // child may do anything after fork.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            report(&format!("error: fork: {e}"));
            1
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let id = ProcId::of(child.as_raw()).unwrap_or(ProcId {
                pid: child.as_raw(),
                start: 0,
            });
            report(&format!("{} {}", id.pid, id.start));
            0
        }
        Ok(nix::unistd::ForkResult::Child) => {
            let _ = nix::unistd::setsid();
            // Let go of `topo`'s pipe (its reader waits for the end of it) and its terminal.
            if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            let _ = nix::unistd::chdir("/");
            // It needs no privilege: the log directory is its owner's, whose bits allow
            // writing. Nothing it runs can gain one back.
            let _ = crate::node::security::no_new_privs();
            let _ = crate::node::security::set_caps(&Default::default());
            let _ = nix::sys::prctl::set_name(c"topo-log");
            copy(std::io::stdin().lock(), &mut writer);
            0
        }
    }
}

/// Copies `input` into the log until its end. A write error (the run directory removed by
/// `down`, a full file system) drops that output but keeps reading, so the writers never block
/// on a helper that stopped.
fn copy(mut input: impl Read, writer: &mut LogWriter<'_>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if writer.write(&buf[..n]).is_err() {
                    writer.file = None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn parse_args(args: &[String]) -> Option<(PathBuf, String, Logs)> {
    let [dir, name, max, keep] = args else {
        return None;
    };
    Some((
        PathBuf::from(dir),
        name.clone(),
        Logs {
            max_size: max.parse().ok()?,
            keep: keep.parse::<u32>().ok()?.min(Logs::MAX_KEEP),
        },
    ))
}

/// The write end of a log's pipe, to hand to node processes as their standard output and
/// error, and the helper that reads it.
pub struct LogPipe {
    pub write: OwnedFd,
    pub helper: ProcId,
}

impl LogPipe {
    /// Starts `topo __log` for the log `NAME.log` in the run directory's `logs/` (see
    /// [`RunDir::logs_dir`]) and returns the pipe's write end (blocking, a few milliseconds).
    pub fn start(logs_dir: &Path, name: &str, logs: Logs) -> Result<LogPipe, StateError> {
        let fail = |e: std::io::Error| StateError::Io {
            what: format!(
                "start the log writer of {}",
                logs_dir.join(format!("{name}.log")).display()
            ),
            source: e,
        };
        let exe = crate::node::spawn::helper_exe()
            .map_err(|e| fail(std::io::Error::other(e.to_string())))?;
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
        let out = Command::new(exe)
            .arg("__log")
            .arg(logs_dir)
            .arg(name)
            .arg(logs.max_size.to_string())
            .arg(logs.keep.to_string())
            .stdin(Stdio::from(rd))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .map_err(fail)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.trim();
        if let Some(err) = text.strip_prefix("error: ") {
            return Err(fail(std::io::Error::other(err.to_string())));
        }
        let mut it = text.split_whitespace();
        let helper = it
            .next()
            .and_then(|p| p.parse().ok())
            .zip(it.next().and_then(|s| s.parse().ok()))
            .map(|(pid, start)| ProcId { pid, start })
            .ok_or_else(|| {
                fail(std::io::Error::other(format!(
                    "it exited with {} without a report",
                    out.status
                )))
            })?;
        Ok(LogPipe { write: wr, helper })
    }

    /// A copy of the write end as a `File`.
    pub fn file(&self) -> Result<File, StateError> {
        self.write
            .try_clone()
            .map(File::from)
            .map_err(|e| StateError::Io {
                what: "duplicate a log pipe".into(),
                source: e,
            })
    }

    /// Closes this end and waits (at most `timeout`) until the helper has written everything
    /// and exited; it does not exit while a process of the node still holds the pipe.
    pub fn close_and_wait(self, timeout: Duration) {
        let helper = self.helper;
        drop(self.write);
        let deadline = Instant::now() + timeout;
        while helper.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The `topo __log` helpers still writing into `logs_dir` (found by their name and the
/// directory they hold open), so that `down` can let them finish before the logs are moved.
pub fn writers_of(logs_dir: &Path) -> Vec<ProcId> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let comm = std::fs::read(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm != b"topo-log\n" {
            continue;
        }
        let holds = std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|t| t == logs_dir || t.parent() == Some(logs_dir))
            })
        });
        if holds {
            out.extend(ProcId::of(pid));
        }
    }
    out
}

/// Waits (at most `timeout`) until `writers` have written what they read and exited.
pub fn wait_for(writers: &[ProcId], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while writers.iter().any(ProcId::alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_log_is_capped_and_rotated() {
        let d = std::env::temp_dir().join(format!("topo-log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let fd = safe::open_dir(&d, false).unwrap().unwrap();
        let logs = Logs {
            max_size: 1000,
            keep: 2,
        };
        let mut w = LogWriter::new(fd.as_fd(), &d, "a.svc", logs);
        for i in 0..100 {
            w.write(format!("line {i:04} {}\n", "x".repeat(40)).as_bytes())
                .unwrap();
        }
        w.write(&[b'y'; 2500]).unwrap();
        let size = |n: &str| std::fs::metadata(d.join(n)).map(|m| m.len()).ok();
        assert!(size("a.svc.log").unwrap() <= 1000);
        assert_eq!(size("a.svc.log.1"), Some(1000));
        assert_eq!(size("a.svc.log.2"), Some(1000));
        assert_eq!(size("a.svc.log.3"), None);
        // A symbolic link in the way of a rotation is replaced, not followed.
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::remove_file(d.join("a.svc.log.1")).unwrap();
        std::os::unix::fs::symlink(&victim, d.join("a.svc.log.1")).unwrap();
        w.write(&[b'z'; 1500]).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        // keep: 0 starts the log over.
        let mut w = LogWriter::new(
            fd.as_fd(),
            &d,
            "b",
            Logs {
                max_size: 100,
                keep: 0,
            },
        );
        w.write(&[b'a'; 250]).unwrap();
        assert_eq!(size("b.log"), Some(50));
        assert_eq!(size("b.log.1"), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
