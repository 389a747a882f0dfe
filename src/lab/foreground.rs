//! What `topo up --foreground` watches while it holds a lab that is up: the node inits the
//! lab's record names, and the lab's run directory. Each init is watched through a pidfd, so
//! that a look at a lab of thousands of nodes is one `poll`; the record is read again only
//! when it changed (another `topo up` restarted or added nodes).
//!
//! A dead init is taken for a dead node only under the lab's lock, when no other `topo` is
//! changing the lab: an `up` that restarts a node records the new init before it lets go of
//! the lock, and a `down` removes the run directory before it does.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::node::ProcId;
use crate::state::{self, RunDir, State, StateError};

/// Refuses what cannot be a lab's name (`topo wait --lab NAME`), as every command does.
pub fn check_lab_name(lab: &str) -> Result<(), super::LabError> {
    super::down::check_lab_name(lab)
}

/// How often the foreground looks at its lab.
pub const WATCH_TICK: Duration = Duration::from_secs(1);

/// Why the foreground stopped watching its lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Inits of these nodes (name, PID) exited while no other `topo` was changing the lab.
    NodesDied(Vec<(String, i32)>),
    /// The lab's run directory is gone: another `topo down` took the lab down.
    LabGone,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::NodesDied(nodes) => {
                let list: Vec<String> = nodes
                    .iter()
                    .map(|(n, pid)| format!("node {n} (pid {pid})"))
                    .collect();
                write!(f, "the init of {} exited", list.join(", "))
            }
            Ended::LabGone => f.write_str("the lab was taken down by another topo"),
        }
    }
}

/// One init under watch: its identity and, when one could be opened, a pidfd that becomes
/// readable when it exits.
struct Watched {
    init: ProcId,
    fd: Option<OwnedFd>,
}

impl Watched {
    fn new(init: ProcId) -> Watched {
        // Opened, then checked: a pidfd of a reused PID would watch another process, and the
        // start time proves it is still the recorded one.
        let fd = crate::node::serve::pidfd_open(init.pid)
            .ok()
            .filter(|_| init.alive());
        Watched { init, fd }
    }
}

/// The watch over one lab.
pub struct Watch {
    lab: String,
    /// The record file the nodes were read from (`state::record_stamp`).
    stamp: Option<(u64, i64, i64, i64)>,
    nodes: BTreeMap<String, Watched>,
}

impl Watch {
    pub fn new(lab: &str) -> Watch {
        Watch {
            lab: lab.to_string(),
            stamp: None,
            nodes: BTreeMap::new(),
        }
    }

    /// One look (blocking: reads the run directory and `/proc`); `Some` when the lab is no
    /// longer up as `up` left it.
    pub fn check(&mut self) -> Option<Ended> {
        if !state::has_run_dir(&self.lab) {
            return Some(Ended::LabGone);
        }
        let stamp = state::record_stamp(&self.lab);
        if stamp.is_none() || stamp != self.stamp {
            // A record that cannot be read now (being replaced) is read at the next look.
            if let Some(record) = state::read_record(&self.lab) {
                self.follow(&record);
                self.stamp = stamp;
            }
        }
        let dead = self.dead();
        if dead.is_empty() {
            return None;
        }
        self.confirm(&dead)
    }

    /// Watches the inits `record` names: new ones added, restarted ones replaced, removed
    /// ones dropped.
    fn follow(&mut self, record: &State) {
        self.nodes
            .retain(|name, w| record.nodes.get(name).is_some_and(|n| n.init == w.init));
        for (name, n) in &record.nodes {
            if !self.nodes.contains_key(name) {
                self.nodes.insert(name.clone(), Watched::new(n.init));
            }
        }
    }

    /// The nodes whose init has exited: its pidfd is readable, or (without one) `/proc` no
    /// longer shows it.
    fn dead(&self) -> Vec<String> {
        let mut dead: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, w)| w.fd.is_none() && !w.init.alive())
            .map(|(n, _)| n.clone())
            .collect();
        let with_fd: Vec<(&String, &OwnedFd)> = self
            .nodes
            .iter()
            .filter_map(|(n, w)| w.fd.as_ref().map(|fd| (n, fd)))
            .collect();
        let mut fds: Vec<nix::poll::PollFd> = with_fd
            .iter()
            .map(|(_, fd)| nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN))
            .collect();
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0) {
            for ((name, _), p) in with_fd.iter().zip(&fds) {
                if p.revents().is_some_and(|r| !r.is_empty()) {
                    dead.push((*name).clone());
                }
            }
        }
        dead.sort();
        dead
    }

    /// Decides, under the lab's lock, whether the inits of `dead` are gone for good: the
    /// record still names them and they are not running. Another `topo` holding the lock is
    /// changing the lab: it is looked at again at the next look.
    fn confirm(&mut self, dead: &[String]) -> Option<Ended> {
        let run = match RunDir::try_lock_existing(&self.lab) {
            Ok(Some(run)) => run,
            Ok(None) => return Some(Ended::LabGone),
            Err(StateError::Busy { .. }) => {
                self.stamp = None;
                return None;
            }
            Err(e) => {
                tracing::warn!(lab = %self.lab, "watch: {e}");
                return None;
            }
        };
        let record = run.load();
        let gone: Vec<(String, i32)> = dead
            .iter()
            .filter_map(|name| record.nodes.get(name).map(|n| (name, n.init)))
            .filter(|(_, init)| !init.alive())
            .map(|(name, init)| (name.clone(), init.pid))
            .collect();
        if !gone.is_empty() {
            return Some(Ended::NodesDied(gone));
        }
        self.follow(&record);
        self.stamp = state::record_stamp(&self.lab);
        None
    }
}

/// Watches the lab until it is no longer up as `up` left it; runs on a multi-threaded
/// runtime (each look blocks its thread for a moment).
pub async fn watch(lab: &str) -> Ended {
    let mut w = Watch::new(lab);
    let mut tick = tokio::time::interval(WATCH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(ended) = tokio::task::block_in_place(|| w.check()) {
            return ended;
        }
    }
}
