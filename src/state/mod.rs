//! `state`: the run directory of a lab (`/run/topo/LAB/`, or `$TOPO_RUN_DIR/LAB/`): a lock
//! that serialises `up` and `down` of one lab, the record of node processes, the lab's hosts
//! file and the logs. Ownership of kernel objects is never decided from here (markers on
//! the objects decide); this only remembers which processes are ours.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::node::ProcId;

pub mod archive;
pub mod log;
pub mod logread;
mod safe;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab {lab} is busy: another topo holds its lock ({path})")]
    Busy { lab: String, path: PathBuf },
    #[error("refusing the run directory path {path}: {why} (the run directory, set with TOPO_RUN_DIR, must be a real directory of root, writable by nobody else, reached without symbolic links)")]
    Unsafe { path: PathBuf, why: String },
    #[error("refusing the log archive path {path}: {why} (the archive, set with TOPO_LOG_DIR, must be a real directory of root, writable by nobody else, reached without symbolic links)")]
    UnsafeArchive { path: PathBuf, why: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StateError {
    let what = what.into();
    move |source| StateError::Io { what, source }
}

/// The directory that holds every lab's run directory.
pub fn root() -> PathBuf {
    std::env::var_os("TOPO_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/topo"))
}

/// What `topo` remembers about a lab between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub lab: String,
    /// The topology file the lab was last brought up from.
    pub file: Option<PathBuf>,
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Namespaces an `up` is creating: recorded before, cleared after. One that `up` was
    /// stopped in before it could mark it is then recognised as the lab's.
    #[serde(default)]
    pub creating: Vec<String>,
    /// The sysctl keys the file of the last `up` sets (in any namespace): the next `up`
    /// reads them while it parses the file, and after only keys that are new.
    #[serde(default)]
    pub sysctl_keys: Vec<String>,
    /// For a lab that spans hosts: the host whose share runs here (`up --host`), which later
    /// commands on the lab take without being told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For a lab that spans hosts: its nodes that run on other hosts, with their host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub elsewhere: BTreeMap<String, String>,
}

/// The part of a lab's record that `down` reads: each node's init and network namespace,
/// and the namespaces an `up` was creating. Parsed without the rest of each node's record
/// (its context, services and lines run), most of the record's bytes.
#[derive(Debug, Default, Deserialize)]
pub struct Brief {
    pub nodes: BTreeMap<String, BriefNode>,
    #[serde(default)]
    pub creating: Vec<String>,
}

/// A node in a [`Brief`].
#[derive(Debug, Deserialize)]
pub struct BriefNode {
    pub init: ProcId,
    pub netns_inode: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub init: ProcId,
    /// Inode of the network namespace the init was started in.
    pub netns_inode: u64,
    /// What processes started in the node get (`topo exec` needs it without the file).
    #[serde(default)]
    pub ctx: crate::node::NodeContext,
    /// Digest of the node's process settings when its init started (`lab::node_digest`).
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceRecord>,
    /// The `exec:` lines that have run in this init, in order (`None` in a record written
    /// without it, whose lines all ran).
    #[serde(default)]
    pub exec_done: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service's process: for a forking service the daemon its PID file named, for a
    /// oneshot service the command's.
    pub proc: ProcId,
    /// What it was started as (`Service::signature`: its command, or all its settings).
    pub command: String,
    /// A oneshot service whose command exited 0.
    #[serde(default)]
    pub completed: bool,
    /// Milliseconds from its start until its `ready:` check passed.
    #[serde(default)]
    pub ready_ms: Option<u64>,
}

/// A lab's run directory, locked for the lifetime of this value. Everything in it is opened
/// through `dir`, without following symbolic links (see `safe.rs`).
pub struct RunDir {
    pub lab: String,
    pub path: PathBuf,
    dir: OwnedFd,
    _lock: Flock<File>,
    /// The node records as the node record files hold them, as far as this process knows:
    /// from the record it loaded, then from each save. A save writes only the files that hold
    /// a node whose record differs.
    written: std::sync::Mutex<BTreeMap<String, NodeRecord>>,
}

/// The run directory of every lab, opened and checked; created if `create`.
fn open_root(create: bool) -> Result<Option<OwnedFd>, StateError> {
    safe::open_dir(&root(), create)
}

impl RunDir {
    /// Creates (if needed) and locks the lab's run directory. Waits for another `topo`
    /// working on the same lab unless `wait` is false, in which case that is an error.
    pub fn lock(lab: &str, wait: bool) -> Result<RunDir, StateError> {
        RunDir::lock_as(lab, wait, true)?.ok_or_else(|| {
            let path = root().join(lab);
            io(format!("open {}", path.display()))(std::io::Error::from_raw_os_error(libc::ENOENT))
        })
    }

    /// Locks the lab's run directory without waiting and without creating anything in it:
    /// `None` when it does not exist (or is being removed: its lock file is gone),
    /// [`StateError::Busy`] when another `topo` holds it.
    pub fn try_lock_existing(lab: &str) -> Result<Option<RunDir>, StateError> {
        RunDir::lock_as(lab, false, false)
    }

    /// Locks the lab's run directory, creating it and what it holds first if `create`; else
    /// `None` when it (or its lock file) does not exist.
    fn lock_as(lab: &str, wait: bool, create: bool) -> Result<Option<RunDir>, StateError> {
        let top = root();
        let path = top.join(lab);
        let Some(root_fd) = open_root(create)? else {
            return Ok(None);
        };
        let mut tries = 0;
        loop {
            // Nothing can be made in a directory a `down` removed after it was opened here
            // (ENOENT), and one removed between its creation and its opening is not there:
            // then the lab's name is looked up again, a bounded number of times.
            tries += 1;
            let removed = |e: &StateError| {
                create
                    && tries < LOCK_TRIES
                    && matches!(e, StateError::Io { source, .. }
                        if source.raw_os_error() == Some(libc::ENOENT))
            };
            let dir = match safe::open_subdir(root_fd.as_fd(), lab, &path, create) {
                Ok(Some(dir)) => dir,
                Ok(None) if create && tries < LOCK_TRIES => continue,
                Ok(None) => return Ok(None),
                Err(e) => return Err(e),
            };
            if create {
                let logs = path.join("logs");
                match safe::open_subdir(dir.as_fd(), "logs", &logs, true).and_then(|d| {
                    d.ok_or_else(|| {
                        io(format!("open {}", logs.display()))(std::io::Error::from_raw_os_error(
                            libc::ENOENT,
                        ))
                    })
                }) {
                    Ok(_) => {}
                    Err(e) if removed(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
            let lock_path = path.join(LOCK_FILE);
            let flags = if create {
                OFlag::O_WRONLY | OFlag::O_CREAT
            } else {
                OFlag::O_WRONLY
            };
            let file = match safe::open_file(dir.as_fd(), LOCK_FILE, &lock_path, flags, 0o600) {
                Ok(f) => f,
                Err(StateError::Io { source, .. })
                    if !create && source.raw_os_error() == Some(libc::ENOENT) =>
                {
                    return Ok(None);
                }
                Err(e) if removed(&e) => continue,
                Err(e) => return Err(e),
            };
            let arg = if wait {
                FlockArg::LockExclusive
            } else {
                FlockArg::LockExclusiveNonblock
            };
            let lock = match Flock::lock(file, arg) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(StateError::Busy {
                        lab: lab.to_string(),
                        path: lock_path,
                    });
                }
                Err((_, e)) => return Err(io(format!("lock {}", lock_path.display()))(e.into())),
            };
            // `down` removes the directory while holding the lock: if the file we locked is
            // no longer the one at the path, we waited on a removed lab; start again.
            let same = match (
                nix::sys::stat::fstat(&*lock),
                nix::fcntl::openat(
                    root_fd.as_fd(),
                    lab,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .and_then(|d| {
                    nix::sys::stat::fstatat(&d, LOCK_FILE, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                }),
            ) {
                (Ok(a), Ok(b)) => a.st_ino == b.st_ino && a.st_dev == b.st_dev,
                _ => false,
            };
            if same {
                return Ok(Some(RunDir {
                    lab: lab.to_string(),
                    path,
                    dir,
                    _lock: lock,
                    written: std::sync::Mutex::new(BTreeMap::new()),
                }));
            }
        }
    }

    /// Locks the lab's run directory if it exists; `None` when the lab has none (it is not
    /// up), so read-only commands leave nothing behind.
    pub fn lock_existing(lab: &str) -> Result<Option<RunDir>, StateError> {
        let Some(root_fd) = open_root(false)? else {
            return Ok(None);
        };
        if safe::open_subdir(root_fd.as_fd(), lab, &root().join(lab), false)?.is_some() {
            RunDir::lock(lab, true).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The directory `area/node` of the run directory (`dirs/r1`, `kept/r1`), made if missing,
    /// opened without following a link, with its path.
    pub fn node_area(&self, area: &str, node: &str) -> Result<(OwnedFd, PathBuf), StateError> {
        let top = self.path.join(area);
        let missing = |p: &Path| {
            io(format!("open {}", p.display()))(std::io::Error::from_raw_os_error(libc::ENOENT))
        };
        let a =
            safe::open_subdir(self.dir.as_fd(), area, &top, true)?.ok_or_else(|| missing(&top))?;
        let path = top.join(node);
        let n = safe::open_subdir(a.as_fd(), node, &path, true)?.ok_or_else(|| missing(&path))?;
        Ok((n, path))
    }

    /// The device and inode of the lab's lock file, which only its owner (root, or the user
    /// running `topo`) may open for reading: what a client of a node's exec socket shows
    /// (see `node::channel`).
    pub fn lock_id(&self) -> Option<(u64, u64)> {
        nix::sys::stat::fstat(self._lock.as_fd())
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    }

    pub fn hosts_path(&self) -> PathBuf {
        self.path.join("hosts")
    }

    /// The directory of the logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }

    /// The last `n` lines of a log (read without following a symbolic link), indented, for an
    /// error message.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let path = self.log_path(name);
        let text = safe::open_subdir(self.dir.as_fd(), "logs", &self.logs_dir(), false)
            .ok()
            .flatten()
            .and_then(|logs| {
                safe::open_file(
                    logs.as_fd(),
                    &format!("{name}.log"),
                    &path,
                    OFlag::O_RDONLY,
                    0,
                )
                .ok()
            })
            .and_then(|f| {
                let mut b = Vec::new();
                f.take(16 << 20).read_to_end(&mut b).ok()?;
                Some(String::from_utf8_lossy(&b).into_owned())
            })
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        let mut out = format!("  last output ({}):", path.display());
        for l in &lines[start..] {
            out.push_str("\n    ");
            out.push_str(l);
        }
        out
    }

    /// The recorded state; an unreadable or corrupt record counts as none (ownership is
    /// decided on the kernel objects, never from this file).
    pub fn load(&self) -> State {
        let state = read_state(self.dir.as_fd(), &self.path).unwrap_or_else(|| State {
            lab: self.lab.clone(),
            ..State::default()
        });
        // What the node files hold, if they were written with this record (a node whose
        // file is missing or differs is written again only when its record changes: a
        // reader falls back to `state.json` for a node without a file, and checks the init
        // of any record it reads).
        if let Ok(mut w) = self.written.lock() {
            *w = state.nodes.clone();
        }
        state
    }

    /// What `down` needs of the record ([`Brief`]); empty when there is none or it cannot be
    /// read, as [`load`](Self::load) is.
    pub fn load_brief(&self) -> Brief {
        read_json(self.dir.as_fd(), &self.path).unwrap_or_default()
    }

    /// Saves the state atomically: write a new temporary file, rename it over the old one.
    ///
    /// Not fsync'ed: the record describes namespaces and processes, which do not outlive the
    /// machine, and the rename alone is atomic for every reader and for a `topo` killed
    /// half-way. After a crash of the machine the record may be old or empty, as the lab is
    /// gone; an unreadable record reads as empty (see [`load`](Self::load)). Where `/run` is
    /// on a disk, an fsync would stall each of an `up`'s four saves.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        // Compact: about half the bytes of the pretty form to write and to read.
        let json =
            serde_json::to_vec(state).map_err(|e| io("encode state")(std::io::Error::other(e)))?;
        self.save_file(state.file.as_deref())?;
        replace_file(self.dir.as_fd(), &self.path, "state.json", &json)?;
        self.save_nodes(state)
    }

    /// Notes the topology file of the lab's last `up` apart from the record (see
    /// [`FILE_NOTE`]); [`save`](Self::save) does it too.
    pub fn save_file(&self, file: Option<&Path>) -> Result<(), StateError> {
        match file {
            Some(f) => {
                use std::os::unix::ffi::OsStrExt;
                replace_file(
                    self.dir.as_fd(),
                    &self.path,
                    FILE_NOTE,
                    f.as_os_str().as_bytes(),
                )
            }
            None => match nix::unistd::unlinkat(
                self.dir.as_fd(),
                FILE_NOTE,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            ) {
                Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
                Err(e) => Err(io(format!(
                    "remove {}",
                    self.path.join(FILE_NOTE).display()
                ))(e.into())),
            },
        }
    }

    /// Whether `nodes` differ from the node records last loaded or saved.
    pub fn nodes_differ(&self, nodes: &BTreeMap<String, NodeRecord>) -> bool {
        let written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *written != *nodes
    }

    /// Writes the node record files (see [`node_file`]) that hold a node whose record changed
    /// or that is no longer recorded: what `topo exec` and `topo test` read to enter one
    /// node, without reading the whole lab's record, which grows with the lab. A file left
    /// without a node is removed.
    fn save_nodes(&self, state: &State) -> Result<(), StateError> {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut touched: std::collections::BTreeSet<String> = state
            .nodes
            .iter()
            .filter(|(name, rec)| written.get(*name) != Some(*rec))
            .map(|(name, _)| node_file(name))
            .collect();
        touched.extend(
            written
                .keys()
                .filter(|name| !state.nodes.contains_key(*name))
                .map(|name| node_file(name)),
        );
        if touched.is_empty() {
            return Ok(());
        }
        let mut files: BTreeMap<String, BTreeMap<&String, &NodeRecord>> =
            touched.into_iter().map(|f| (f, BTreeMap::new())).collect();
        for (name, rec) in &state.nodes {
            if let Some(file) = files.get_mut(&node_file(name)) {
                file.insert(name, rec);
            }
        }
        let path = self.path.join(NODES_DIR);
        let dir =
            safe::open_subdir(self.dir.as_fd(), NODES_DIR, &path, true)?.ok_or_else(|| {
                io(format!("open {}", path.display()))(std::io::Error::from_raw_os_error(
                    libc::ENOENT,
                ))
            })?;
        for (file, records) in &files {
            if records.is_empty() {
                match nix::unistd::unlinkat(
                    dir.as_fd(),
                    file.as_str(),
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                ) {
                    Ok(()) | Err(nix::errno::Errno::ENOENT) => continue,
                    Err(e) => {
                        return Err(io(format!("remove {}", path.join(file).display()))(
                            e.into(),
                        ))
                    }
                }
            }
            let json = serde_json::to_vec(records)
                .map_err(|e| io("encode node records")(std::io::Error::other(e)))?;
            replace_file(dir.as_fd(), &path, file, &json)?;
        }
        // Only now: a failed write leaves the nodes it would have written to the next save.
        written.retain(|name, _| state.nodes.contains_key(name));
        for (name, rec) in &state.nodes {
            if written.get(name) != Some(rec) {
                written.insert(name.clone(), rec.clone());
            }
        }
        Ok(())
    }

    /// Rewrites the hosts file in place when its content changed. In place, not by rename:
    /// nodes bind-mount this very inode on their `/etc/hosts`. A symbolic link (or a file
    /// with other hard links) in its place is refused.
    pub fn write_hosts(&self, content: &str) -> Result<(), StateError> {
        let p = self.hosts_path();
        let mut f = safe::open_file(
            self.dir.as_fd(),
            "hosts",
            &p,
            OFlag::O_RDWR | OFlag::O_CREAT,
            0o644,
        )?;
        let mut old = Vec::new();
        let _ = (&f).take(content.len() as u64 + 1).read_to_end(&mut old);
        if old == content.as_bytes() {
            return Ok(());
        }
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| f.write_all(content.as_bytes()))
            .map_err(io(format!("write {}", p.display())))
    }

    /// Marks the lab up and ready (`READY_FILE`, holding the lab's name): what `topo wait`
    /// waits for. Written by every `up` that succeeds.
    /// Replaced atomically (written aside, then renamed): a reader never finds it missing
    /// while a no-op `up` writes it again.
    pub fn mark_ready(&self) -> Result<(), StateError> {
        let content = format!("{}\n", self.lab);
        replace_file(self.dir.as_fd(), &self.path, READY_FILE, content.as_bytes())
    }

    /// Removes the ready marker: an `up` is about to change the lab.
    pub fn clear_ready(&self) -> Result<(), StateError> {
        unlink_ready(self.dir.as_fd(), &self.path)
    }

    /// Marks the lab as ending (`ENDING_FILE`): `down` has removed it from the kernel's view
    /// and handed the rest (waiting for its processes' exits, its cgroups, its logs, this
    /// directory) to `topo __reap`, which holds the lock until it is done.
    /// `content` is the marker's text: what the reaper is to wait for.
    pub fn mark_ending(&self, content: &str) -> Result<(), StateError> {
        let p = self.path.join(ENDING_FILE);
        let mut f = safe::create_new(self.dir.as_fd(), ENDING_FILE, &p, 0o600)?;
        f.write_all(content.as_bytes())
            .map_err(io(format!("write {}", p.display())))
    }

    /// The text of `name` in the run directory, such as the ending marker or
    /// [`REAP_ERROR_FILE`] (empty when there is none or it cannot be read).
    pub fn read_note(&self, name: &str) -> String {
        let p = self.path.join(name);
        let mut out = String::new();
        if let Ok(f) = safe::open_file(self.dir.as_fd(), name, &p, OFlag::O_RDONLY, 0) {
            let _ = f.take(64 << 20).read_to_string(&mut out);
        }
        out
    }

    /// Replaces the ending marker by [`REAP_ERROR_FILE`] with `error`: the reaper could not
    /// finish, and the lab's run directory stays for the next `down`.
    pub fn reap_failed(&self, error: &str) {
        let p = self.path.join(REAP_ERROR_FILE);
        if let Ok(mut f) = safe::create_new(self.dir.as_fd(), REAP_ERROR_FILE, &p, 0o600) {
            let _ = f.write_all(error.as_bytes());
        }
        let _ = nix::unistd::unlinkat(
            self.dir.as_fd(),
            ENDING_FILE,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }

    /// Ends this process's hold on the run directory without unlocking it: the lock belongs
    /// to the open file, and stays with the process that inherited that file to finish the
    /// work (see [`RunDir::adopt`]). Dropping the `RunDir` instead would unlock the file for
    /// both.
    pub fn leave_locked(self) {
        use std::os::fd::{AsRawFd, FromRawFd};
        let RunDir { _lock: lock, .. } = self;
        let raw = lock.as_raw_fd();
        std::mem::forget(lock);
        // SAFETY: `raw` was owned by the forgotten `lock`, which is never dropped: this takes
        // that ownership back, to close the descriptor without the unlock of `Flock`'s drop.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
    }

    /// The descriptor that holds the lock, for a process that takes the lock over
    /// ([`RunDir::adopt`]): a `flock` belongs to the open file, so it holds while any process
    /// has that file open.
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._lock.as_fd()
    }

    /// The lab's run directory, locked through `lock`: a descriptor of its lock file that
    /// holds the lock already, inherited from the `topo` that handed the work over. An
    /// error if `lock` is not the lab's lock file or does not hold the lock.
    pub fn adopt(lab: &str, lock: OwnedFd) -> Result<RunDir, StateError> {
        let path = root().join(lab);
        let missing = || {
            io(format!("open {}", path.display()))(std::io::Error::from_raw_os_error(libc::ENOENT))
        };
        let root_fd = open_root(false)?.ok_or_else(missing)?;
        let dir = safe::open_subdir(root_fd.as_fd(), lab, &path, false)?.ok_or_else(missing)?;
        let here =
            nix::sys::stat::fstatat(&dir, LOCK_FILE, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
        let given = nix::sys::stat::fstat(&lock);
        let lock_path = path.join(LOCK_FILE);
        match (here, given) {
            (Ok(a), Ok(b)) if a.st_ino == b.st_ino && a.st_dev == b.st_dev => {}
            _ => {
                return Err(io(format!("take over the lock {}", lock_path.display()))(
                    std::io::Error::other("the descriptor is not this lab's lock file"),
                ))
            }
        }
        // Locking again through the same open file is no conflict; another holder is.
        let lock = match Flock::lock(File::from(lock), FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, e)) => {
                return Err(io(format!("take over the lock {}", lock_path.display()))(
                    e.into(),
                ))
            }
        };
        Ok(RunDir {
            lab: lab.to_string(),
            path,
            dir,
            _lock: lock,
            written: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Removes the run directory (at the end of `down`, still holding the lock). Symbolic
    /// links in it are removed, never followed.
    ///
    /// The directory first leaves its name, in one rename, for a hidden one (`.LAB.PID`, no
    /// lab's name): an `up` of the lab that opened it by its name meanwhile and waits for
    /// its lock, or that comes while it is being emptied (after a `down` that left this to
    /// its reaper), finds no lock file at the name once it holds the lock and starts again
    /// with a new directory, instead of writing into one that is being removed. What such an
    /// `up` made in the old one before it noticed is removed with it (a few tries).
    pub fn remove(self) -> Result<(), StateError> {
        let hidden = root().join(format!(".{}.{}", self.lab, std::process::id()));
        std::fs::rename(&self.path, &hidden).map_err(io(format!(
            "move {} to {}",
            self.path.display(),
            hidden.display()
        )))?;
        let mut tries = 0;
        loop {
            match std::fs::remove_dir_all(&hidden) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(_) if tries < REMOVE_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(io(format!("remove {}", hidden.display()))(e)),
            }
        }
    }
}

/// How many times [`RunDir::lock`] looks the lab's directory up again after finding the one it
/// opened removed.
const LOCK_TRIES: u32 = 100;

/// How many times [`RunDir::remove`] tries again to remove the renamed directory, in which a
/// concurrent `up` may just have made its lock file before it saw the directory renamed.
const REMOVE_TRIES: u32 = 10;

fn read_state(dir: std::os::fd::BorrowedFd<'_>, path: &Path) -> Option<State> {
    let mut state: State = read_json(dir, path)?;
    // The topology file, when noted apart (see [`FILE_NOTE`]), is the newer.
    if let Ok(f) = safe::open_file(dir, FILE_NOTE, &path.join(FILE_NOTE), OFlag::O_RDONLY, 0) {
        let mut b = Vec::new();
        if f.take(64 << 10).read_to_end(&mut b).is_ok() && !b.is_empty() {
            use std::os::unix::ffi::OsStringExt;
            state.file = Some(PathBuf::from(std::ffi::OsString::from_vec(b)));
        }
    }
    Some(state)
}

/// `state.json` of the run directory at `path` (open as `dir`), read as a `T`.
fn read_json<T: serde::de::DeserializeOwned>(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &Path,
) -> Option<T> {
    let f = safe::open_file(
        dir,
        "state.json",
        &path.join("state.json"),
        OFlag::O_RDONLY,
        0,
    )
    .ok()?;
    let mut b = Vec::new();
    f.take(256 << 20).read_to_end(&mut b).ok()?;
    serde_json::from_slice(&b).ok()
}

/// A lab's record read without its lock (for `topo exec` and the prescan), through the same
/// checks as the locked run directory: `None` when there is none or it cannot be trusted.
pub fn read_record(lab: &str) -> Option<State> {
    let root_fd = open_root(false).ok()??;
    let path = root().join(lab);
    let dir = safe::open_subdir(root_fd.as_fd(), lab, &path, false).ok()??;
    read_state(dir.as_fd(), &path)
}

/// The record of one node of a lab, from its node record file (see [`node_file`]), read
/// without the lab's lock and through the same checks as [`read_record`]; `None` when there
/// is none (a node without a record there, or a lab recorded before node record files
/// existed: read the lab's record then).
pub fn read_node_record(lab: &str, node: &str) -> Option<NodeRecord> {
    let root_fd = open_root(false).ok()??;
    let path = root().join(lab);
    let dir = safe::open_subdir(root_fd.as_fd(), lab, &path, false).ok()??;
    let nodes = path.join(NODES_DIR);
    let dir = safe::open_subdir(dir.as_fd(), NODES_DIR, &nodes, false).ok()??;
    let file = node_file(node);
    let f = safe::open_file(dir.as_fd(), &file, &nodes.join(&file), OFlag::O_RDONLY, 0).ok()?;
    let mut b = Vec::new();
    f.take(64 << 20).read_to_end(&mut b).ok()?;
    let mut de = serde_json::Deserializer::from_slice(&b);
    serde::de::DeserializeSeed::deserialize(OneRecord(node), &mut de).ok()?
}

/// Reads the record of one node from a node record file, skipping the others unparsed.
struct OneRecord<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for OneRecord<'_> {
    type Value = Option<NodeRecord>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OneRecord<'_> {
    type Value = Option<NodeRecord>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("node records by node name")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.0 {
                found = Some(map.next_value::<NodeRecord>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Replaces the file `name` of the directory `dir` (at `dir_path`, for messages) by one
/// holding `bytes`, atomically: written aside (`NAME.tmp`, without a `.json` suffix; made
/// new, never through a link), then renamed over it, so that a reader finds the old content
/// or the new, never a part.
fn replace_file(
    dir: std::os::fd::BorrowedFd<'_>,
    dir_path: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), StateError> {
    let tmp_name = format!("{}.tmp", name.strip_suffix(".json").unwrap_or(name));
    let tmp = dir_path.join(&tmp_name);
    let mut f = safe::create_new(dir, &tmp_name, &tmp, 0o644)?;
    f.write_all(bytes)
        .map_err(io(format!("write {}", tmp.display())))?;
    drop(f);
    nix::fcntl::renameat(dir, tmp_name.as_str(), dir, name)
        .map_err(|e| io(format!("rename to {}", dir_path.join(name).display()))(e.into()))
}

/// The file of a lab's run directory that holds the path of the topology file of its last
/// `up` (as bytes), which overrides the record's `file`: an `up` from another file that
/// changes nothing else of the record rewrites this alone, not the whole record (megabytes
/// for a large lab).
const FILE_NOTE: &str = "file";

/// How many node record files a lab's records are spread over, at most.
const NODE_FILES: u64 = 256;

/// The file of `nodes/` that holds a node's record, with those of the other nodes whose
/// names hash alike (`HH.json`, HH the FNV-1a hash of the name modulo [`NODE_FILES`] in
/// hex): at most 256 files whatever the lab's size, as each new file costs an inode, and a
/// file system without a journal (ext4 as `/run` may be where it is not a tmpfs) scans the
/// inodes freed in the last half minute before it reuses one, so that one file per node
/// made an `up` right after a `down` grow with the square of the nodes.
pub fn node_file(node: &str) -> String {
    format!(
        "{:02x}.json",
        crate::plan::names::fnv1a(node.as_bytes()) % NODE_FILES
    )
}

/// The file of a lab's run directory that says the lab is up and ready: the last `up` of it
/// succeeded and no `up` is changing it (see [`RunDir::mark_ready`]).
pub const READY_FILE: &str = "ready";

/// The marker of a lab whose `down` has returned while its processes still end (see
/// [`RunDir::mark_ending`]).
pub const ENDING_FILE: &str = "ending";

/// What a reaper that could not finish left in the run directory (see
/// [`RunDir::reap_failed`]).
pub const REAP_ERROR_FILE: &str = "reap-error";

/// Whether the lab's run directory holds the ending marker (read without the lock).
pub fn is_ending(lab: &str) -> bool {
    root().join(lab).join(ENDING_FILE).is_file()
}

fn unlink_ready(dir: std::os::fd::BorrowedFd<'_>, path: &Path) -> Result<(), StateError> {
    match nix::unistd::unlinkat(dir, READY_FILE, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(io(format!("remove {}", path.join(READY_FILE).display()))(
            e.into(),
        )),
    }
}

/// Whether the lab is up and ready: its run directory holds the ready marker, a regular file
/// (read without the lab's lock, through the same checks as [`read_record`]).
pub fn is_ready(lab: &str) -> bool {
    let Ok(Some(root_fd)) = open_root(false) else {
        return false;
    };
    let path = root().join(lab);
    let Ok(Some(dir)) = safe::open_subdir(root_fd.as_fd(), lab, &path, false) else {
        return false;
    };
    nix::sys::stat::fstatat(&dir, READY_FILE, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Removes the lab's ready marker without its lock (the foreground, before it takes the lab
/// down); a lab without a run directory has none.
pub fn clear_ready(lab: &str) -> Result<(), StateError> {
    let Some(root_fd) = open_root(false)? else {
        return Ok(());
    };
    let path = root().join(lab);
    match safe::open_subdir(root_fd.as_fd(), lab, &path, false)? {
        Some(dir) => unlink_ready(dir.as_fd(), &path),
        None => Ok(()),
    }
}

/// The directory of a lab's run directory that holds the node record files (see
/// [`node_file`]).
const NODES_DIR: &str = "nodes";

/// The lab's lock file in its run directory (mode 0600); a request to a node's exec socket
/// shows it, open for reading (`node::channel`).
pub const LOCK_FILE: &str = "lock";

/// Whether the lab has a record (a `state.json` that is a regular file, not a link).
pub fn has_record(lab: &str) -> bool {
    let Ok(Some(root_fd)) = open_root(false) else {
        return false;
    };
    let path = root().join(lab);
    let Ok(Some(dir)) = safe::open_subdir(root_fd.as_fd(), lab, &path, false) else {
        return false;
    };
    nix::sys::stat::fstatat(&dir, "state.json", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Whether the lab has a run directory (a real directory, not a link).
pub fn has_run_dir(lab: &str) -> bool {
    let Ok(Some(root_fd)) = open_root(false) else {
        return false;
    };
    matches!(
        safe::open_subdir(root_fd.as_fd(), lab, &root().join(lab), false),
        Ok(Some(_))
    )
}

/// The identity of the lab's record file (inode, size, modification time): it changes with
/// every save, which writes a new file. `None` when there is none.
pub fn record_stamp(lab: &str) -> Option<(u64, i64, i64, i64)> {
    let root_fd = open_root(false).ok()??;
    let dir = safe::open_subdir(root_fd.as_fd(), lab, &root().join(lab), false).ok()??;
    let st = nix::sys::stat::fstatat(&dir, "state.json", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .ok()?;
    Some((st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec))
}

/// Labs that have a run directory (symbolic links in the run directory are not labs).
pub fn labs() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                // A run directory being removed ([`RunDir::remove`]) is no lab.
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by each test of this module: they share `TOPO_RUN_DIR` (a variable of the
    /// process) and each removes the directory at its end.
    static RUN_DIR: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn own_run_dir() -> (std::sync::MutexGuard<'static, ()>, PathBuf) {
        let guard = RUN_DIR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = std::env::temp_dir().join(format!("topo-state-test-{}", std::process::id()));
        std::env::set_var("TOPO_RUN_DIR", &dir);
        (guard, dir)
    }

    #[test]
    fn a_lock_taken_while_the_directory_is_removed_gets_a_whole_new_one() {
        let (_guard, dir) = own_run_dir();
        for round in 0..100 {
            let old = RunDir::lock("t2", true).expect("lock");
            std::fs::write(old.path.join("state.json"), b"{}").expect("write");
            let next = std::thread::spawn(|| RunDir::lock("t2", true));
            // Now and then the new lock comes while the old directory is being emptied.
            if round % 2 == 0 {
                std::thread::yield_now();
            }
            old.remove().expect("remove");
            let new = next.join().expect("join").expect("lock again");
            // Its own directory, with what `lock` makes in it, at the lab's name.
            let log = new.path.join("logs").join("init.log");
            std::fs::write(&log, b"x").unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(!new.path.join("state.json").exists(), "round {round}");
            new.remove().expect("remove");
        }
        let hidden: Vec<_> = std::fs::read_dir(&dir)
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().starts_with(".t2"))
            .collect();
        assert!(hidden.is_empty(), "left: {hidden:?}");
        assert!(!labs().contains(&"t2".to_string()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn node_records_are_read_one_by_one_from_at_most_256_files() {
        let (_guard, dir) = own_run_dir();
        let run = RunDir::lock("t3", true).expect("lock");
        let record = |pid: i32| NodeRecord {
            init: crate::node::ProcId { pid, start: 7 },
            netns_inode: 4,
            ctx: crate::node::NodeContext::default(),
            config: String::new(),
            services: BTreeMap::new(),
            exec_done: None,
        };
        let mut s = State {
            lab: "t3".into(),
            ..State::default()
        };
        for i in 0..1000 {
            s.nodes.insert(format!("n{i}"), record(i));
        }
        run.save(&s).expect("save");
        let files = || {
            std::fs::read_dir(run.path.join(NODES_DIR))
                .expect("read")
                .count()
        };
        assert!(files() <= 256, "{} files", files());
        for i in [0, 1, 499, 999] {
            let got = read_node_record("t3", &format!("n{i}")).expect("record");
            assert_eq!(got, record(i));
        }
        assert_eq!(read_node_record("t3", "n1000"), None);
        // One node changes, one goes: its file is rewritten without it.
        s.nodes.insert("n5".into(), record(5000));
        s.nodes.remove("n6");
        run.save(&s).expect("save");
        assert_eq!(read_node_record("t3", "n5"), Some(record(5000)));
        assert_eq!(read_node_record("t3", "n6"), None);
        assert_eq!(read_node_record("t3", "n7"), Some(record(7)));
        // A file left with no node is removed; the others stay readable.
        let alone = node_file("n0");
        let sharing: Vec<String> = s
            .nodes
            .keys()
            .filter(|n| node_file(n) == alone)
            .cloned()
            .collect();
        for n in &sharing {
            s.nodes.remove(n);
        }
        run.save(&s).expect("save");
        assert!(!run.path.join(NODES_DIR).join(&alone).exists());
        assert_eq!(read_node_record("t3", "n0"), None);
        assert_eq!(read_node_record("t3", "n999"), Some(record(999)));
        // A new process that loaded the record writes nothing for an unchanged one.
        drop(run);
        let run = RunDir::lock("t3", false).expect("lock");
        let loaded = run.load();
        let stamp = |p: &Path| {
            std::fs::metadata(p)
                .expect("stat")
                .modified()
                .expect("mtime")
        };
        let one = run.path.join(NODES_DIR).join(node_file("n999"));
        let before = stamp(&one);
        std::thread::sleep(std::time::Duration::from_millis(20));
        run.save(&loaded).expect("save");
        assert_eq!(stamp(&one), before);
        run.remove().expect("remove");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_noted_apart_is_the_one_read_and_the_record_stays() {
        let (_guard, dir) = own_run_dir();
        let run = RunDir::lock("t11", false).expect("lock");
        let s = State {
            lab: "t11".into(),
            file: Some("/a.yaml".into()),
            ..State::default()
        };
        run.save(&s).expect("save");
        let record = std::fs::read(run.path.join("state.json")).expect("record");
        assert_eq!(run.load().file, Some(PathBuf::from("/a.yaml")));
        run.save_file(Some(Path::new("/b c.yaml"))).expect("note");
        assert_eq!(run.load().file, Some(PathBuf::from("/b c.yaml")));
        assert_eq!(
            read_record("t11").and_then(|r| r.file),
            Some(PathBuf::from("/b c.yaml"))
        );
        assert_eq!(
            std::fs::read(run.path.join("state.json")).expect("record"),
            record,
            "noting the file leaves the record as it was"
        );
        // Without the note, the record's own file.
        run.save_file(None).expect("remove the note");
        assert_eq!(run.load().file, Some(PathBuf::from("/a.yaml")));
        run.remove().expect("remove");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nodes_differ_from_those_last_loaded_or_saved() {
        let (_guard, dir) = own_run_dir();
        let run = RunDir::lock("t10", false).expect("lock");
        let mut s = run.load();
        assert!(!run.nodes_differ(&s.nodes));
        s.nodes.insert(
            "r1".into(),
            NodeRecord {
                init: crate::node::ProcId { pid: 9, start: 7 },
                netns_inode: 4,
                ctx: crate::node::NodeContext::default(),
                config: String::new(),
                services: BTreeMap::new(),
                exec_done: None,
            },
        );
        assert!(run.nodes_differ(&s.nodes));
        run.save(&s).expect("save");
        assert!(!run.nodes_differ(&s.nodes));
        let loaded = run.load();
        assert!(!run.nodes_differ(&loaded.nodes));
        s.nodes.clear();
        assert!(run.nodes_differ(&s.nodes));
        run.remove().expect("remove");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_state_reads_as_empty() {
        let (_guard, dir) = own_run_dir();
        let run = RunDir::lock("t1", false).expect("lock");
        std::fs::write(run.path.join("state.json"), b"{ truncated").expect("write");
        assert_eq!(
            run.load(),
            State {
                lab: "t1".into(),
                ..State::default()
            }
        );
        let mut s = State {
            lab: "t1".into(),
            ..State::default()
        };
        s.file = Some("/x.yaml".into());
        run.save(&s).expect("save");
        assert_eq!(run.load(), s);
        assert!(
            matches!(RunDir::lock("t1", false), Err(StateError::Busy { .. })),
            "second lock must fail"
        );
        assert!(matches!(
            RunDir::try_lock_existing("t1"),
            Err(StateError::Busy { .. })
        ));
        // The ready marker: written, read without the lock, removed.
        assert!(!is_ready("t1"));
        run.mark_ready().expect("mark ready");
        assert!(is_ready("t1"));
        assert_eq!(
            std::fs::read_to_string(run.path.join(READY_FILE)).expect("read marker"),
            "t1\n"
        );
        run.mark_ready().expect("mark ready again");
        run.clear_ready().expect("clear");
        assert!(!is_ready("t1"));
        run.mark_ready().expect("mark ready");
        clear_ready("t1").expect("clear without the lock");
        assert!(!is_ready("t1"));
        clear_ready("t9").expect("a lab without a run directory has no marker");
        run.remove().expect("remove");
        // Not there: nothing is created by looking.
        assert!(matches!(RunDir::try_lock_existing("t1"), Ok(None)));
        assert!(!has_run_dir("t1"));
        assert!(!dir.join("t1").exists());
        let again = RunDir::lock("t1", false).expect("lock again");
        assert!(has_run_dir("t1"));
        let held = RunDir::try_lock_existing("t1");
        assert!(matches!(held, Err(StateError::Busy { .. })));
        drop(again);
        let taken = RunDir::try_lock_existing("t1").expect("try lock");
        assert!(taken.is_some(), "an existing, free run directory is locked");
        taken.expect("locked").remove().expect("remove");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
