//! `Lab`: the library API that the CLI and Rust tests share. `up` observes the kernel, plans
//! the difference and applies it; `down` removes everything of the lab; `exec` runs a
//! command in a node.

mod apply;
mod down;
mod drift;
mod hosts;
pub(crate) mod status;
mod world;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::net::observe::{observe, Depth, Session};
use crate::net::NetError;
use crate::node::{NodeError, ProcId};
use crate::plan::{self, names, Desired, NodeObs, Observed, Plan, ServiceObs};
use crate::spec::{Diagnostics, Topology};
use crate::state::{RunDir, State, StateError};

pub use down::{down, DownReport};
pub(crate) use drift::{endpoint, set_impair, set_link};
pub(crate) use status::{status, Status};
pub use world::load_topology;

#[derive(Debug, Error)]
pub enum LabError {
    #[error("{0}")]
    Spec(#[from] Diagnostics),
    #[error("{0}")]
    Net(#[from] NetError),
    #[error("{0}")]
    Node(#[from] NodeError),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("objects in the way that are not this lab's:\n  {}", .0.join("\n  "))]
    Conflicts(Vec<String>),
    #[error("node {node}: command `{command}` exited with status {code}\n{tail}")]
    ExecFailed {
        node: String,
        command: String,
        code: i32,
        tail: String,
    },
    #[error("{0}")]
    Usage(String),
    /// `up` was stopped by a signal between two steps: the lab is partly up.
    #[error("{signal}: stopped; lab {lab} is partly up. `topo up {file}` finishes it, `topo down --lab {lab}` removes it")]
    Interrupted {
        lab: String,
        signal: &'static str,
        file: String,
    },
    /// The kernel lacks something the file needs; nothing was changed.
    #[error("{0}")]
    Kernel(String),
}

impl LabError {
    /// The process exit status for this error: 2 for bad input, 1 for everything else.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            LabError::Spec(_) | LabError::Usage(_) => 2,
            LabError::Interrupted {
                signal: "SIGINT", ..
            } => 130,
            LabError::Interrupted { .. } => 143,
            _ => 1,
        }
    }
}

/// A lab as a topology file describes it.
#[derive(Debug, Clone)]
pub struct Lab {
    pub(crate) topology: Topology,
    pub(crate) file: PathBuf,
    /// What was read while the file was parsed (see [`Lab::load_prescanned`]).
    prescan: std::sync::Arc<std::sync::Mutex<Option<Prescan>>>,
}

/// What the processes thread of an observation finds.
#[derive(Default)]
struct Processes {
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
type Scanned = Option<(Vec<(String, ProcId, u64)>, Processes)>;

/// An observation started before the file is parsed, for the lab its `name:` line names.
#[derive(Debug)]
struct Prescan {
    lab: String,
    /// The processes half, from the record; used only if the record read under the lock
    /// names the same inits.
    processes: std::thread::JoinHandle<Scanned>,
    /// The namespaces half, when a runtime was given.
    net: Option<NetPrescan>,
}

/// The network half of an observation, made under the lab's lock (so no other `topo`
/// changes the lab meanwhile). Without the desired state it reads no sysctls and no host
/// links by name: the sysctls are read once the file is parsed.
struct NetPrescan {
    run: RunDir,
    state: State,
    task: tokio::task::JoinHandle<Result<(Session, Observed), crate::net::NetError>>,
}

impl std::fmt::Debug for NetPrescan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPrescan")
            .field("lab", &self.run.lab)
            .finish()
    }
}

/// A lab's run directory (locked, when it has one), a session, the record, and what of the
/// observation is already done or under way.
struct Opened {
    run: Option<RunDir>,
    session: Session,
    state: State,
    early: Option<Observed>,
    processes: Option<std::thread::JoinHandle<Scanned>>,
}

/// What `up` did.
#[derive(Debug, Clone)]
pub struct UpReport {
    pub plan: Plan,
    pub elapsed: Duration,
}

impl Lab {
    /// Loads and validates a topology file (no kernel access).
    pub fn load(path: &Path) -> Result<Lab, LabError> {
        let topology = load_topology(path)?;
        let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Lab {
            topology,
            file,
            prescan: Default::default(),
        })
    }

    /// [`load`](Self::load) for `plan` and `up`: while the file is parsed (on one CPU, a
    /// large part of a no-op), the recorded inits and their cgroups are read on another thread,
    /// for the lab the file's top-level `name:` line names, when it has a record. Reading
    /// only: nothing is locked or written, and `up` uses the result only if the record it
    /// reads under the lab's lock names the same inits.
    ///
    /// With `rt`, the lab's namespaces are also opened and dumped meanwhile, on that runtime,
    /// holding the lab's lock (taken before the parse, released if the file turns out to name
    /// another lab or to be invalid).
    pub(crate) fn load_prescanned(
        path: &Path,
        rt: Option<&tokio::runtime::Handle>,
    ) -> Result<Lab, LabError> {
        let prescan = guess_name(path)
            .filter(|lab| crate::state::root().join(lab).join("state.json").is_file())
            .map(|lab| {
                let net = rt.and_then(|rt| start_net_prescan(&lab, rt));
                // The record read under the lock, when there is one; else read it here.
                let locked = net.as_ref().map(|n| recorded_inits(&n.state));
                let name = lab.clone();
                let processes = processes_on_thread(lab.clone(), move || match locked {
                    Some(r) => Some(r),
                    None => {
                        let run = crate::state::root().join(&name).join("state.json");
                        let state: State =
                            serde_json::from_slice(&std::fs::read(run).ok()?).ok()?;
                        Some(recorded_inits(&state))
                    }
                });
                Prescan {
                    lab,
                    processes,
                    net,
                }
            });
        let mut lab = Lab::load(path)?;
        lab.prescan = std::sync::Arc::new(std::sync::Mutex::new(prescan));
        Ok(lab)
    }

    /// Locks the run directory (creating it with `create`, else only if it exists), opens a
    /// session and loads the record, or takes what the prescan did of that for this lab. Its
    /// namespaces half is left when the file names host links (it did not read them).
    async fn open(&self, desired: &Desired, create: bool) -> Result<Opened, LabError> {
        let prescan = self
            .prescan
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .filter(|p| p.lab == self.topology.name);
        let (processes, net) = match prescan {
            Some(p) => (Some(p.processes), p.net),
            None => (None, None),
        };
        match net {
            Some(np) if desired.host_ifaces.is_empty() => {
                let (session, observed) = match np.task.await {
                    Ok(r) => r.map_err(LabError::from)?,
                    Err(e) => return Err(LabError::Kernel(format!("observation task: {e}"))),
                };
                return Ok(Opened {
                    run: Some(np.run),
                    session,
                    state: np.state,
                    early: Some(observed),
                    processes,
                });
            }
            // Dropped: its lock is released before it is taken again below.
            Some(np) => np.task.abort(),
            None => {}
        }
        let run = if create {
            Some(RunDir::lock(self.name(), true)?)
        } else {
            RunDir::lock_existing(self.name())?
        };
        Ok(Opened {
            session: Session::new(tokio::runtime::Handle::current())?,
            state: run.as_ref().map(RunDir::load).unwrap_or_default(),
            run,
            early: None,
            processes,
        })
    }

    pub fn name(&self) -> &str {
        &self.topology.name
    }

    /// The difference between the file and the kernel, without changing anything.
    pub async fn plan(&self) -> Result<Plan, LabError> {
        // Read-only: locks the run directory if there is one, and creates none.
        let desired = plan::compile(&self.topology);
        let Opened {
            run: _run,
            mut session,
            state,
            early,
            processes,
        } = self.open(&desired, false).await?;
        let observed = observe_all(
            &mut session,
            &self.topology,
            &state,
            &desired,
            processes,
            early,
        )
        .await?;
        Ok(plan::diff(&self.topology, &desired, &observed))
    }

    /// Makes the kernel match the file: observe, plan, apply only the difference.
    pub async fn up(&self) -> Result<UpReport, LabError> {
        self.up_with_progress(None).await
    }

    /// `up`, telling `progress` each phase as it starts (phase name, actions done, total).
    pub(crate) async fn up_with_progress(
        &self,
        progress: Option<&Progress>,
    ) -> Result<UpReport, LabError> {
        let started = Instant::now();
        preflight(&self.topology)?;
        let desired = plan::compile(&self.topology);
        let t = Instant::now();
        let Opened {
            run,
            mut session,
            state: loaded,
            early,
            processes,
        } = self.open(&desired, true).await?;
        let Some(run) = run else {
            return Err(LabError::Kernel(format!(
                "lab {}: the run directory could not be locked",
                self.name()
            )));
        };
        let observed = observe_all(
            &mut session,
            &self.topology,
            &loaded,
            &desired,
            processes,
            early,
        )
        .await?;
        tracing::info!(ms = t.elapsed().as_secs_f64() * 1e3, "observed");
        let t = Instant::now();
        let plan = plan::diff(&self.topology, &desired, &observed);
        tracing::info!(
            ms = t.elapsed().as_secs_f64() * 1e3,
            actions = plan.actions.len(),
            "planned"
        );
        let refused = if plan.conflicts.is_empty() {
            kernel_support(&plan).err()
        } else {
            Some(LabError::Conflicts(plan.conflicts.clone()))
        };
        if let Some(err) = refused {
            // Nothing was made: leave no run directory behind either.
            let ours = observed
                .namespaces
                .values()
                .any(|o| matches!(o, plan::NsObserved::Ours(_)));
            if !ours && loaded.nodes.is_empty() {
                let _ = run.remove();
            }
            return Err(err);
        }
        run.write_hosts(&hosts::render(&self.topology))?;
        let sysctl_keys = desired.sysctl_keys();
        let file = Some(self.file.clone());
        if plan.actions.is_empty()
            && loaded.lab == self.name()
            && loaded.file == file
            && loaded.sysctl_keys == sysctl_keys
        {
            // Nothing to change, in the kernel or in the record.
            return Ok(UpReport {
                plan,
                elapsed: started.elapsed(),
            });
        }
        let mut state = loaded.clone();
        state.lab = self.name().to_string();
        state.file = file;
        state.sysctl_keys = sysctl_keys;
        let result = apply::Applier::new(self, &desired, &mut session, &run, &mut state, &observed)
            .run(&plan, progress)
            .await;
        // A no-op `up` leaves the record as it was (large to encode and write for a large lab).
        if state != loaded {
            run.save(&state)?;
        }
        result?;
        Ok(UpReport {
            plan,
            elapsed: started.elapsed(),
        })
    }

    /// Brings the lab up and returns a guard that brings it down when dropped (for tests).
    pub async fn up_guarded(&self) -> Result<(UpReport, LabGuard), LabError> {
        let guard = LabGuard {
            lab: self.name().to_string(),
        };
        let report = self.up().await?;
        Ok((report, guard))
    }

    /// Runs `argv` in a node and waits for it; its standard streams are this process's.
    pub fn exec(&self, node: &str, argv: &[String]) -> Result<i32, LabError> {
        exec(self.name(), node, argv)
    }
}

/// Starts observing the lab's namespaces on `rt`, holding its lock: only for a lab with a
/// record and nothing in creation (whose half-made namespaces the desired state decides).
fn start_net_prescan(lab: &str, rt: &tokio::runtime::Handle) -> Option<NetPrescan> {
    let run = RunDir::lock_existing(lab).ok()??;
    let state = run.load();
    if state.nodes.is_empty() || !state.creating.is_empty() {
        return None;
    }
    let name = lab.to_string();
    let handle = rt.clone();
    // The sysctls of the record's last file: after the parse, only new keys are read.
    let keys = state.sysctl_keys.clone();
    let procs = node_procs(lab, &state);
    let task = rt.spawn(async move {
        let mut session = Session::new(handle)?;
        session.procs = procs;
        let observed = observe(&mut session, &name, None, &keys, &[], Depth::Full).await?;
        Ok((session, observed))
    });
    Some(NetPrescan { run, state, task })
}

/// The procfs of each node's init, by namespace: sysctls are read through it (see
/// `net::sysctl`). Which netns the answer is for depends only on the reading thread, so a
/// stale PID costs speed, not truth (a dead one falls back to the host's procfs).
fn node_procs(lab: &str, state: &State) -> std::collections::BTreeMap<String, PathBuf> {
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
fn recorded_inits(state: &State) -> Vec<(String, ProcId, u64)> {
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
fn processes_on_thread(
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
            (id.alive() && procfs::ns_inode(id.pid, "net") == Some(*ino)).then_some((*id, *ino))
        })
        .collect();
    let (inits, scanned) = match own {
        Some(own) if !own.is_empty() => (own, false),
        // Every node init of the machine (zombies have no namespaces, so are not among
        // them): a recorded init is alive if it is one of these, same PID and start time.
        _ => (procfs::nested_inits(), true),
    };
    let running: std::collections::HashSet<ProcId> = inits.iter().map(|(id, _)| *id).collect();
    let mut alive = std::collections::HashMap::new();
    let mut limits = std::collections::HashMap::new();
    for (node, init, _) in recorded {
        if let Some(c) = &cgroups {
            limits.insert(node.clone(), c.limits_in_kernel(lab, &node));
        }
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

/// The lab name a topology file's top-level `name:` line gives, read without parsing the
/// file (a guess: the parsed name decides).
fn guess_name(path: &Path) -> Option<String> {
    use std::io::BufRead;
    // Line by line up to the first match (usually near the top): the parser reads the whole
    // file anyway.
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let line = file
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("name:"))?;
    let value = line["name:".len()..].split('#').next()?.trim();
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    down::check_lab_name(value).ok()?;
    Some(value.to_string())
}

/// A digest of what a node's processes are started with (binds, rootfs, environment and
/// security): when it changes, the node is restarted.
pub(crate) fn node_digest(n: &crate::spec::Node) -> String {
    let what = serde_json::json!({
        "binds": n.binds, "rootfs": n.rootfs, "env": n.env, "capabilities": n.capabilities,
        "seccomp": n.seccomp, "filesystem": n.filesystem, "apparmor": n.apparmor, "userns": n.userns,
    });
    format!("{:016x}", plan::names::fnv1a(what.to_string().as_bytes()))
}

/// What the kernel must offer for the file, checked before anything is changed.
fn preflight(t: &Topology) -> Result<(), LabError> {
    let missing = |what: String| Err(LabError::Kernel(what));
    for (name, node) in &t.nodes {
        if let Some(profile) = &node.apparmor {
            if !crate::node::security::apparmor_active() {
                return missing(format!(
                    "node {name} asks for AppArmor profile {profile}, but AppArmor is not active on this kernel"
                ));
            }
        }
    }
    Ok(())
}

/// Qdisc kinds the plan needs that the kernel lacks fail `up` before anything changes.
fn kernel_support(plan: &Plan) -> Result<(), LabError> {
    use crate::net::qdisc::{QdiscKind, QdiscType};
    let mut needed = std::collections::BTreeSet::new();
    for a in &plan.actions {
        if let plan::Action::SetImpair { impair, .. } = a {
            if let Some(kind) = QdiscKind::for_impair(impair) {
                needed.insert(match kind.qdisc_type() {
                    QdiscType::Netem => 0,
                    QdiscType::Tbf => 1,
                });
            }
        }
    }
    for n in needed {
        let ty = if n == 0 {
            QdiscType::Netem
        } else {
            QdiscType::Tbf
        };
        if !crate::net::kernel_has_qdisc(&tokio::runtime::Handle::current(), ty)? {
            return Err(LabError::Kernel(format!(
                "the kernel has no {} qdisc (module {}), which the file's impairments need; nothing was changed",
                ty.name(),
                ty.module()
            )));
        }
    }
    Ok(())
}

/// Told of each phase of an `up` as it starts: its name, the actions done so far, and the
/// plan's total.
pub(crate) type Progress = dyn Fn(&str, usize, usize) + Send + Sync;

/// Brings its lab down when dropped, even when a test fails.
pub struct LabGuard {
    lab: String,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let lab = self.lab.clone();
        // A fresh runtime on a fresh thread: drop may run inside another runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                if let Err(e) = rt.block_on(down(&lab)) {
                    eprintln!("topo: down {lab} failed: {e}");
                }
            }
        })
        .join();
    }
}

/// Observes the kernel and the recorded processes.
async fn observe_all(
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
        .map_err(|_| LabError::Kernel("process observation thread panicked".into()))?;
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
    let ns_inode: std::collections::BTreeMap<&String, u64> = session
        .ns
        .iter()
        .filter_map(|(ns, c)| Some((ns, crate::net::netns::inode(&c.file).ok()?)))
        .collect();
    // Every node init in the lab's namespaces, recorded or not (one pass over /proc).
    let mut inode_of = std::collections::BTreeMap::new();
    for (ns, o) in &observed.namespaces {
        if let (plan::NsObserved::Ours(_), Some(ino)) = (o, ns_inode.get(ns)) {
            inode_of.insert(*ino, ns.clone());
        }
    }
    // The recorded inits stand for all only if each of the lab's node namespaces (all but
    // the bridges') holds one.
    let held: std::collections::HashSet<u64> = nested.iter().map(|(_, ino)| *ino).collect();
    let bridges = names::bridge_netns(lab);
    let all_held = inode_of
        .iter()
        .all(|(ino, ns)| *ns == bridges || held.contains(ino));
    let nested = if inode_of.is_empty() || scanned || all_held {
        nested
    } else {
        crate::node::procfs::nested_inits()
    };
    let inits = nested
        .into_iter()
        .filter(|(_, ino)| inode_of.contains_key(ino));
    let prefix = names::netns_prefix(lab);
    for (name, rec) in &state.nodes {
        let ns = names::node_netns(lab, name);
        let current = ns_inode.get(&ns).copied();
        // A node whose process settings changed in the file is restarted (they apply from
        // its init on); its user namespace cannot change while its netns lives.
        let wanted = topology.nodes.get(name);
        if let Some(w) = wanted {
            if w.userns.unwrap_or(false) != rec.ctx.userns {
                return Err(LabError::Usage(format!(
                    "node {name}: `userns` changed; its network namespace is owned by its user namespace and cannot move: run `topo down --lab {lab}` first"
                )));
            }
        }
        let same_config = wanted.is_none_or(|w| rec.config == node_digest(w));
        let is_alive = alive.get(name).copied().unwrap_or(false);
        let init_alive = is_alive && current == Some(rec.netns_inode) && same_config;
        let services = rec
            .services
            .iter()
            .map(|(s, r)| {
                (
                    s.clone(),
                    ServiceObs {
                        pid: r.proc.pid,
                        command: r.command.clone(),
                        alive: init_alive && r.proc.alive(),
                    },
                )
            })
            .collect();
        observed.nodes.insert(
            name.clone(),
            NodeObs {
                init_alive,
                init: is_alive.then_some(rec.init),
                strays: Vec::new(),
                services,
                limits: limits.remove(name),
            },
        );
    }
    // Inits that no record knows: stopped by the plan.
    for (id, ino) in inits {
        let Some(node) = inode_of.get(&ino).and_then(|ns| ns.strip_prefix(&prefix)) else {
            continue;
        };
        let obs = observed.nodes.entry(node.to_string()).or_default();
        if obs.init != Some(id) {
            obs.strays.push(id);
        }
    }
    Ok(observed)
}

/// Runs `argv` inside a node of a lab that is up (blocking; standard streams inherited).
pub(crate) fn exec(lab: &str, node: &str, argv: &[String]) -> Result<i32, LabError> {
    let (target, ctx) = node_target(lab, node)?;
    let status = crate::node::spawn::enter_command(target, &ctx, false, argv)?
        .status()
        .map_err(|e| NodeError::sys("run the command", e))?;
    Ok(status.code().unwrap_or(128))
}

/// The init and environment of a running node, from the lab's record.
pub(crate) fn node_target(
    lab: &str,
    node: &str,
) -> Result<(ProcId, crate::node::NodeContext), LabError> {
    down::check_lab_name(lab)?;
    let path = crate::state::root().join(lab).join("state.json");
    let state: State = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| LabError::Usage(format!("lab {lab} is not up (no {})", path.display())))?;
    let rec = state.nodes.get(node).ok_or_else(|| {
        LabError::Usage(format!(
            "lab {lab} has no node {node}; nodes: {}",
            state.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    if !rec.init.alive() {
        return Err(LabError::Usage(format!(
            "node {node} of lab {lab} is not running; run `topo up` to restart it"
        )));
    }
    Ok((rec.init, rec.ctx.clone()))
}

/// The lab meant when a command names none: the only one that is up.
pub(crate) fn only_lab() -> Result<String, LabError> {
    let labs = crate::state::labs();
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(LabError::Usage(
            "no lab is up; name one with --lab NAME or -f FILE".into(),
        )),
        many => Err(LabError::Usage(format!(
            "several labs are up ({}); name one with --lab NAME or -f FILE",
            many.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::guess_name;

    fn guess(text: &str) -> Option<String> {
        let dir = std::env::temp_dir().join(format!("topo-guess-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let file = dir.join(format!("{}.yaml", text.len()));
        std::fs::write(&file, text).ok()?;
        let out = guess_name(&file);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn the_name_guess_reads_only_a_plain_top_level_name_line() {
        assert_eq!(
            guess("# lab\nname: lab1\nnodes: {}\n").as_deref(),
            Some("lab1")
        );
        assert_eq!(guess("name: \"q-2\"  # quoted\n").as_deref(), Some("q-2"));
        assert_eq!(guess("name: 'sq'\n").as_deref(), Some("sq"));
        // Indented (not top level), invalid as a lab name, or absent: no guess.
        assert_eq!(guess("nodes:\n  name: r1\n"), None);
        assert_eq!(guess("name: Not/A/Lab\n"), None);
        assert_eq!(guess("name: averyveryverylongname\n"), None);
        assert_eq!(guess("nodes: {}\n"), None);
    }
}
