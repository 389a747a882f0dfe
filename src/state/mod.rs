//! `state`: the run directory of a lab (`/run/topo/LAB/`, or `$TOPO_RUN_DIR/LAB/`): a lock
//! that serialises `up` and `down` of one lab, the record of node processes, the lab's hosts
//! file and the logs. Ownership of kernel objects is never decided from here (markers on
//! the objects decide); this only remembers which processes are ours.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::node::ProcId;

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub proc: ProcId,
    pub command: String,
}

/// A lab's run directory, locked for the lifetime of this value.
pub struct RunDir {
    pub lab: String,
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl RunDir {
    /// Creates (if needed) and locks the lab's run directory. Waits for another `topo`
    /// working on the same lab unless `wait` is false, in which case that is an error.
    pub fn lock(lab: &str, wait: bool) -> Result<RunDir, StateError> {
        let path = root().join(lab);
        loop {
            std::fs::create_dir_all(path.join("logs"))
                .map_err(io(format!("create {}", path.display())))?;
            let lock_path = path.join("lock");
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io(format!("open {}", lock_path.display())))?;
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
            let same = match (lock.metadata(), std::fs::metadata(&lock_path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok(RunDir {
                    lab: lab.to_string(),
                    path,
                    _lock: lock,
                });
            }
        }
    }

    /// Locks the lab's run directory if it exists; `None` when the lab has none (it is not
    /// up), so read-only commands leave nothing behind.
    pub fn lock_existing(lab: &str) -> Result<Option<RunDir>, StateError> {
        if root().join(lab).is_dir() {
            RunDir::lock(lab, true).map(Some)
        } else {
            Ok(None)
        }
    }

    fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }

    pub fn hosts_path(&self) -> PathBuf {
        self.path.join("hosts")
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.path.join("logs").join(format!("{name}.log"))
    }

    pub fn open_log(&self, name: &str) -> Result<File, StateError> {
        let p = self.log_path(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io(format!("open {}", p.display())))
    }

    /// The recorded state; an unreadable or corrupt record counts as none (ownership is
    /// decided on the kernel objects, never from this file).
    pub fn load(&self) -> State {
        std::fs::read(self.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| State {
                lab: self.lab.clone(),
                ..State::default()
            })
    }

    /// Saves the state atomically: write a temporary file, rename it over the old one.
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
        write_atomic(&self.state_path(), &json)
    }

    /// Rewrites the hosts file in place when its content changed. In place, not by rename:
    /// nodes bind-mount this very inode on their `/etc/hosts`.
    pub fn write_hosts(&self, content: &str) -> Result<(), StateError> {
        let p = self.hosts_path();
        if std::fs::read_to_string(&p).is_ok_and(|old| old == content) {
            return Ok(());
        }
        std::fs::write(&p, content).map_err(io(format!("write {}", p.display())))
    }

    /// Removes the run directory (at the end of `down`, still holding the lock).
    pub fn remove(self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.path).map_err(io(format!("remove {}", self.path.display())))
    }
}

/// Labs that have a run directory.
pub fn labs() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(format!("create {}", tmp.display())))?;
    f.write_all(bytes)
        .map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("rename to {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_state_reads_as_empty() {
        let dir = std::env::temp_dir().join(format!("topo-state-test-{}", std::process::id()));
        std::env::set_var("TOPO_RUN_DIR", &dir);
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
        run.remove().expect("remove");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
