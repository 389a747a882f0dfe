//! The processes half of an observation: which recorded inits are alive, their nodes'
//! cgroup limits, and the node inits of the machine; and [`observe_all`], which joins it to
//! the namespaces half.

use std::path::PathBuf;
use std::time::Instant;

use crate::net::observe::{observe, Depth, Session};
use crate::node::ProcId;
use crate::plan::{self, names, Desired, NodeObs, Observed, ServiceObs};
use crate::spec::Topology;
use crate::state::State;

use super::{node_digest, LabError};

/// What the processes thread of an observation finds.
#[derive(Default)]
pub(super) struct Processes {
    /// Whether each recorded init is alive, by node.
    alive: std::collections::HashMap<String, bool>,
    /// The limits each recorded node's cgroups hold.
    limits: std::collections::HashMap<String, crate::spec::Limits>,
    /// Node inits with the inode of their network namespace: every one of the machine if
    /// `scanned` (/proc was read), else the recorded ones (all alive, each in its recorded
    /// namespace).
    inits: Vec<(ProcId, u64)>,
    scanned: bool,
}

/// The inits a record names (node, init, its netns inode), and what was found about them.
pub(super) type Scanned = Option<(Vec<(String, ProcId, u64)>, Processes)>;

/// The procfs of each node's init, by namespace: sysctls are read through it (see
/// `net::sysctl`). Which netns the answer is for depends only on the reading thread, so a
/// stale PID costs speed, not truth (a dead one falls back to the host's procfs).
pub(super) fn node_procs(lab: &str, state: &State) -> std::collections::BTreeMap<String, PathBuf> {
    state
        .nodes
        .iter()
        .map(|(name, rec)| {
            (
                names::node_netns(lab, name),
                crate::net::sysctl::node_proc(rec.init.pid),
            )
        })
        .collect()
}

/// The recorded init of each node, with the inode of the netns it was started in.
pub(super) fn recorded_inits(state: &State) -> Vec<(String, ProcId, u64)> {
    state
        .nodes
        .iter()
        .map(|(n, r)| (n.clone(), r.init, r.netns_inode))
        .collect()
}

/// Reads the processes of the inits `recorded` names ([`scan_processes`]) on a thread of its
/// own. Without a record (a new lab, or one whose record was lost), nothing is read here:
/// /proc is scanned only if the observation finds namespaces of the lab (a first `up` skips
/// it).
pub(super) fn processes_on_thread(
    lab: String,
    recorded: impl FnOnce() -> Option<Vec<(String, ProcId, u64)>> + Send + 'static,
) -> std::thread::JoinHandle<Scanned> {
    std::thread::spawn(move || {
        let recorded = recorded()?;
        let found = if recorded.is_empty() {
            Processes::default()
        } else {
            scan_processes(&lab, recorded.clone())
        };
        Some((recorded, found))
    })
}

/// Reads which recorded inits are alive, their nodes' cgroup limits, and the node inits to
/// look among for ones the record does not name (see [`Processes`]).
fn scan_processes(lab: &str, recorded: Vec<(String, ProcId, u64)>) -> Processes {
    use crate::node::procfs;
    let t = Instant::now();
    let cgroups = crate::node::cgroup::Cgroups::detect().ok();
    // Each recorded init alive (same PID and start time) in its recorded namespace: then
    // no other init of `topo`'s can be in those namespaces (a node's init is started only
    // after its previous one was stopped), and the record's are the lab's, without reading
    // all of /proc (much of this thread's time). Namespaces of the lab that
    // no recorded init holds are then scanned for after the observation.
    let own: Option<Vec<(ProcId, u64)>> = recorded
        .iter()
        .map(|(_, id, ino)| {
            (id.alive() && procfs::node_net_inode(id.pid) == Some(*ino)).then_some((*id, *ino))
        })
        .collect();
    let (inits, scanned) = match own {
        Some(own) if !own.is_empty() => (own, false),
        // Every node init of the machine (zombies have no namespaces, so are not among
        // them): a recorded init is alive if it is one of these, same PID and start time.
        _ => (procfs::nested_inits(), true),
    };
    let running: std::collections::HashSet<ProcId> = inits.iter().map(|(id, _)| *id).collect();
    let mut limits = std::collections::HashMap::new();
    if let Some(c) = &cgroups {
        let nodes: Vec<&str> = recorded.iter().map(|(n, ..)| n.as_str()).collect();
        for (node, l) in nodes.iter().zip(c.limits_in_kernel_of(lab, &nodes)) {
            limits.insert(node.to_string(), l);
        }
    }
    let mut alive = std::collections::HashMap::new();
    for (node, init, _) in recorded {
        alive.insert(node, running.contains(&init));
    }
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        scanned,
        "read processes and cgroups"
    );
    Processes {
        alive,
        limits,
        inits,
        scanned,
    }
}

/// Observes the kernel and the recorded processes.
pub(super) async fn observe_all(
    session: &mut Session,
    topology: &Topology,
    state: &State,
    desired: &Desired,
    processes: Option<std::thread::JoinHandle<Scanned>>,
    early: Option<Observed>,
) -> Result<Observed, LabError> {
    let lab = topology.name.as_str();
    if session.procs.is_empty() {
        // (Set already where the namespaces were observed before the parse.)
        session.procs = node_procs(lab, state);
    }
    // The processes and cgroups are read on a thread of their own while the namespaces are
    // dumped (at 1000 nodes, some 4000 files of /proc and the cgroup trees), or were read
    // while the file was parsed.
    let recorded = recorded_inits(state);
    let processes = match processes {
        Some(p) => p,
        None => {
            let recorded = recorded.clone();
            processes_on_thread(lab.to_string(), move || Some(recorded))
        }
    };
    let t = std::time::Instant::now();
    let observed = match early {
        // Observed before the file was parsed, with the sysctls of the record's last file:
        // only keys new in this one are left to read.
        Some(mut o) => crate::net::observe::read_sysctls(session, desired, &state.sysctl_keys)
            .await
            .map(|values| {
                for (name, more) in values {
                    if let Some(plan::NsObserved::Ours(st)) = o.namespaces.get_mut(&name) {
                        st.sysctls.extend(more);
                    }
                }
                o
            }),
        None => {
            observe(
                session,
                lab,
                Some(desired),
                &[],
                &state.creating,
                Depth::Full,
            )
            .await
        }
    };
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "observed the network");
    let found = processes
        .join()
        .map_err(|_| LabError::Internal("process observation thread panicked".into()))?;
    let Processes {
        alive,
        mut limits,
        inits: nested,
        scanned,
    } = match found {
        Some((seen, found)) if seen == recorded => found,
        // The prescan read another record (changed since, or unreadable): read again.
        _ if !recorded.is_empty() => scan_processes(lab, recorded.clone()),
        _ => Default::default(),
    };
    let mut observed = observed?;
    // The inode of each open namespace (the same inode is the same namespace).
    let ns_inode: std::collections::BTreeMap<&String, u64> =
        session.ns.iter().map(|(ns, c)| (ns, c.id.inode)).collect();
    // The lab's namespaces, by inode.
    let mut inode_of = std::collections::BTreeMap::new();
    for (ns, o) in &observed.namespaces {
        if let (plan::NsObserved::Ours(_), Some(ino)) = (o, ns_inode.get(ns)) {
            inode_of.insert(*ino, ns.clone());
        }
    }
    // Every node init in the lab's namespaces, recorded or not (one pass over /proc).
    let nested = if plan::inits_cover_lab(lab, &inode_of, &nested, scanned) {
        nested
    } else {
        crate::node::procfs::nested_inits()
    };
    let mut records = Vec::with_capacity(state.nodes.len());
    for (name, rec) in &state.nodes {
        // A node whose process settings changed in the file is restarted (they apply from
        // its init on); its user namespace cannot change while its netns lives.
        let wanted = topology.nodes.get(name);
        if let Some(w) = wanted {
            if w.has_userns() != rec.ctx.userns {
                return Err(LabError::Usage(format!(
                    "node {name}: `userns` changed; its network namespace is owned by its user namespace and cannot move: run `topo down --lab {lab}` first"
                )));
            }
        }
        records.push(plan::RecordedInit {
            node: name.clone(),
            init: rec.init,
            netns_inode: rec.netns_inode,
            current_netns: ns_inode.get(&names::node_netns(lab, name)).copied(),
            alive: alive.get(name).copied().unwrap_or(false),
            same_config: wanted.is_none_or(|w| rec.config == node_digest(w)),
        });
    }
    // The recorded inits that live on, and the inits no record knows (stopped by the plan).
    for (name, found) in plan::node_inits(lab, &records, &inode_of, &nested) {
        let services = state
            .nodes
            .get(&name)
            .map(|rec| {
                rec.services
                    .iter()
                    .map(|(s, r)| {
                        (
                            s.clone(),
                            ServiceObs {
                                pid: r.proc.pid,
                                command: r.command.clone(),
                                alive: found.init_alive && !r.completed && r.proc.alive(),
                                completed: found.init_alive && r.completed,
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let limits = limits.remove(&name);
        let exec_done = state.nodes.get(&name).and_then(|r| r.exec_done.clone());
        observed.nodes.insert(
            name,
            NodeObs {
                init_alive: found.init_alive,
                init: found.init,
                strays: found.strays,
                services,
                limits,
                exec_done,
            },
        );
    }
    Ok(observed)
}
