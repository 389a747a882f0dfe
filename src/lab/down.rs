//! `down`: removes everything of a lab, and nothing else. What is removed is decided on the
//! kernel objects themselves (the lab's marker on each namespace's loopback and on host
//! links), so a lost or corrupt run directory never makes `down` touch a foreign object.
//! The lab's logs are moved to the archive first (see `state::archive`), unless discarded.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::apply::{signal_all, wait_all};
use super::LabError;
use crate::net::observe::{observe, Depth, Session};
use crate::net::{link, netns};
use crate::node::ProcId;
use crate::plan::{names, NsObserved};
use crate::state::{archive, log, RunDir};

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
}

/// How long `down` waits for the log writers to write what the lab's processes left in their
/// pipes before it moves the logs.
const WRITERS_GRACE: Duration = Duration::from_secs(2);

/// Removes the lab and archives its logs (see [`down_with`]).
pub async fn down(lab: &str) -> Result<DownReport, LabError> {
    down_with(lab, DownOptions::default()).await
}

/// Removes everything of the lab; then its logs go to the archive (or, with
/// `discard_logs`, with the run directory) and the lab's run directory is removed.
pub async fn down_with(lab: &str, options: DownOptions) -> Result<DownReport, LabError> {
    check_lab_name(lab)?;
    let run = RunDir::lock(lab, true)?;
    let state = run.load();
    let mut session = Session::new(tokio::runtime::Handle::current())?;
    let t = std::time::Instant::now();
    let observed = observe(
        &mut session,
        lab,
        None,
        &[],
        &state.creating,
        Depth::Ownership,
    )
    .await?;
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "observed");
    let mut report = DownReport::default();
    let mut inodes = BTreeSet::new();
    for (name, o) in &observed.namespaces {
        match o {
            NsObserved::Ours(_) => {
                report.namespaces.push(name.clone());
                if let Some(c) = session.ns.get(name) {
                    inodes.insert(c.id.inode);
                }
            }
            NsObserved::Foreign { .. } => report.foreign.push(name.clone()),
        }
    }
    // The node inits: those recorded, and any init of a PID namespace whose network
    // namespace is one of ours (found even when the record is lost). Killing an init kills
    // every process of its node.
    let mut victims: Vec<ProcId> = state
        .nodes
        .values()
        .map(|n| n.init)
        .filter(ProcId::alive)
        .collect();
    for (id, _) in crate::node::procfs::inits_in(&inodes) {
        if !victims.iter().any(|v| v.pid == id.pid) {
            victims.push(id);
        }
    }
    report.processes = victims.len();
    // The inits take their nodes' mounts and processes down as they exit; meanwhile the
    // namespaces' names are removed (the kernel frees a namespace once neither a name nor a
    // process holds it).
    signal_all(&victims);
    let prefix = names::marker_prefix(lab);
    for l in &observed.host_links {
        let half_made = l.alias.is_none() && l.group == names::lab_group(lab);
        if half_made || l.alias.as_deref().is_some_and(|a| a.starts_with(&prefix)) {
            link::del(&session.host, l.index, &format!("host:{}", l.name)).await?;
            report.host_links.push(l.name.clone());
        }
    }
    // Close our handles first so nothing of ours holds a namespace.
    session.ns.clear();
    let names = report.namespaces.clone();
    let removed = tokio::task::spawn_blocking(move || delete_all(&names));
    let gone = wait_all(victims).await;
    removed
        .await
        .map_err(|e| LabError::Kernel(format!("namespace removal: {e}")))??;
    gone?;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        "processes and namespaces gone"
    );
    // The lab's cgroups (only ever under topo/LAB), once their processes are gone.
    if let Ok(cg) = crate::node::cgroup::Cgroups::detect() {
        cg.remove_lab(lab)
            .map_err(|e| LabError::Kernel(format!("cgroups of lab {lab}: {e}")))?;
    }
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "cgroups removed");
    let (keep, warning) =
        archive::archives_to_keep(std::env::var_os("TOPO_LOG_ARCHIVES").as_deref());
    report.warnings.extend(warning);
    let discard = options.discard_logs;
    let (run, archived) = tokio::task::spawn_blocking(move || {
        if !discard && keep > 0 {
            log::wait_for(&log::writers_of(&run.logs_dir()), WRITERS_GRACE);
        }
        let archived = run.archive_logs(discard, keep);
        (run, archived)
    })
    .await
    .map_err(|e| LabError::Internal(format!("archive the logs of lab {lab}: {e}")))?;
    report.logs = archived.path;
    report.warnings.extend(archived.warnings);
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "logs archived");
    run.remove()?;
    Ok(report)
}

/// Threads removing namespace names at once: each removal waits for an RCU grace period
/// after the kernel's mount lock is released, so several overlap.
const REMOVERS: usize = 4;

/// Removes the named namespaces (`ip netns del`), on [`REMOVERS`] threads; the first error.
fn delete_all(names: &[String]) -> Result<(), LabError> {
    let share = names.len().div_ceil(REMOVERS).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = names
            .chunks(share)
            .map(|part| s.spawn(move || part.iter().try_for_each(|n| netns::delete(n))))
            .collect();
        let mut first = Ok(());
        for w in workers {
            let r = w.join().unwrap_or_else(|_| {
                Err(crate::net::NetError::io(
                    "netns removal",
                    std::io::Error::other("panicked"),
                ))
            });
            if first.is_ok() {
                first = r;
            }
        }
        first.map_err(LabError::from)
    })
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
