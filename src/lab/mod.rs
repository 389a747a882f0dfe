//! `Lab`: the library API that the CLI and Rust tests share. `up` observes the kernel, plans
//! the difference and applies it; `down` removes everything of the lab; `exec` runs a
//! command in a node.

mod apply;
pub(crate) mod crossings;
pub mod dirs;
mod down;
mod drift;
pub(crate) mod foreground;
mod hosts;
pub(crate) mod list;
pub(crate) mod logs;
mod observe;
mod prescan;
mod services;
pub(crate) mod status;
pub(crate) mod testrun;
mod world;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::net::observe::Session;
use crate::net::NetError;
use crate::node::{NodeError, ProcId};
use crate::plan::{self, Desired, Observed, Plan};
use crate::spec::{Diagnostics, Topology};
use crate::state::{RunDir, State, StateError};

use observe::{observe_all, Scanned};
use prescan::Prescan;

pub use down::{down, down_with, reap_main, reserve_descriptors, DownOptions, DownReport};
pub(crate) use drift::{endpoint, set_impair, set_link};
pub(crate) use status::{node_status, status, Status};
pub use world::{load_topology, STDIN_NAME};

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
    /// A service exited during its start, failed, or was not ready in time.
    #[error("node {node}: service {service} {reason}\n{tail}")]
    ServiceFailed {
        node: String,
        service: String,
        reason: String,
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
    /// A node's cgroups could not be made, filled or removed.
    #[error("node {node}: cgroup: {source}")]
    Cgroup {
        node: String,
        source: crate::node::cgroup::CgroupError,
    },
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A thread or task of `topo`'s own failed (it panicked or was cancelled).
    #[error("{0}")]
    Internal(String),
    /// `topo` runs without root, which the command needs.
    #[error("must run as root: `topo {command}` works on the kernel's network namespaces (effective uid {uid})")]
    NotRoot { command: &'static str, uid: u32 },
}

impl LabError {
    /// The process exit status for this error: 2 for bad input, 77 without root (`EX_NOPERM`
    /// of sysexits.h), 1 for everything else.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            LabError::Spec(_) | LabError::Usage(_) => 2,
            LabError::NotRoot { .. } => 77,
            LabError::Interrupted {
                signal: "SIGINT", ..
            } => 130,
            LabError::Interrupted { .. } => 143,
            _ => 1,
        }
    }

    /// For `map_err`: a cgroup error of `node`.
    pub(crate) fn cgroup(node: &str) -> impl FnOnce(crate::node::cgroup::CgroupError) -> Self + '_ {
        move |source| LabError::Cgroup {
            node: node.to_string(),
            source,
        }
    }
}

/// A lab as a topology file describes it.
#[derive(Debug, Clone)]
pub struct Lab {
    pub(crate) topology: Topology,
    pub(crate) file: PathBuf,
    /// The name the file gives the lab (its `name:`), which `--name` overrides.
    pub(crate) file_name: String,
    /// What was read while the file was parsed (see [`Lab::load_prescanned`]).
    prescan: std::sync::Arc<std::sync::Mutex<Option<Prescan>>>,
    /// This machine's share of a lab that spans hosts, when chosen (`--host`); else the one
    /// the lab's record names is taken.
    pub(crate) host: Option<String>,
    /// The share to take when none is chosen and the record names none, and how it was
    /// given (`TOPO_HOST=left`).
    pub(crate) default_host: Option<(String, String)>,
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

/// Where a topology comes from: a file, or standard input (`-` on the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    /// The source a command-line argument names: `-` is standard input.
    pub fn from_arg(arg: &Path) -> Source {
        if arg == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Stdin => f.write_str(STDIN_NAME),
        }
    }
}

/// A host given on the command line (`--host`): one of the lab's `hosts:`, for a lab that
/// declares them.
pub fn check_host_arg(t: &Topology, host: &str) -> Result<(), LabError> {
    if t.hosts.is_empty() {
        return Err(LabError::Usage(format!(
            "--host {host}: lab {} declares no hosts and runs on one machine; leave --host out \
             (or add a 'hosts:' section to the file)",
            t.name
        )));
    }
    check_host(t, host, &format!("--host {host}"))
}

/// `host` is one of the lab's `hosts:`; `given` says how it was given, for the message.
fn check_host(t: &Topology, host: &str, given: &str) -> Result<(), LabError> {
    if t.hosts.contains_key(host) {
        return Ok(());
    }
    let names = t.hosts.keys().map(String::as_str);
    let near = crate::spec::did_you_mean(host, names.clone())
        .map(|h| format!("did you mean {h}? "))
        .unwrap_or_default();
    Err(LabError::Usage(format!(
        "{given}: lab {} has no host {host}; {near}(hosts: {})",
        t.name,
        names.collect::<Vec<_>>().join(", ")
    )))
}

/// A lab name given on the command line (`--name`), checked as the file's `name:` is: every
/// kernel object name of the lab is derived from it and must fit the kernel's limits.
pub fn check_name_arg(name: &str) -> Result<(), LabError> {
    match crate::spec::lab_name_problem(name) {
        None => Ok(()),
        Some((message, hint)) => Err(LabError::Usage(format!(
            "--name {name}: {message}; hint: {hint}"
        ))),
    }
}

impl Lab {
    /// Loads and validates a topology file (no kernel access).
    pub fn load(path: &Path) -> Result<Lab, LabError> {
        Lab::read(&Source::File(path.to_path_buf()), None, None)
    }

    /// Loads and validates a topology from `source`, as the lab `name` when given (instead of
    /// the file's `name:`, so that one file can run as several labs side by side).
    pub fn load_as(source: &Source, name: Option<&str>) -> Result<Lab, LabError> {
        Lab::read(source, name, None)
    }

    /// [`load_as`](Self::load_as) for `plan` and `up`: while the file is parsed (on one CPU, a
    /// large part of a no-op), the recorded inits and their cgroups are read on another thread,
    /// for the lab run (`name`, else the one the file's top-level `name:` line names), when it
    /// has a record. Reading only: nothing is locked or written, and `up` uses the result only
    /// if the record it reads under the lab's lock names the same inits.
    ///
    /// With `rt`, the lab's namespaces are also opened and dumped meanwhile, on that runtime,
    /// holding the lab's lock (taken before the parse, released if the file turns out to name
    /// another lab or to be invalid).
    pub(crate) fn load_prescanned_as(
        source: &Source,
        name: Option<&str>,
        rt: Option<&tokio::runtime::Handle>,
    ) -> Result<Lab, LabError> {
        Lab::read(source, name, Some(rt))
    }

    /// Reads `source`; with `scan`, prescans the lab meanwhile (on the runtime, when given).
    fn read(
        source: &Source,
        name: Option<&str>,
        scan: Option<Option<&tokio::runtime::Handle>>,
    ) -> Result<Lab, LabError> {
        if let Some(n) = name {
            check_name_arg(n)?;
        }
        let start = |guess: &dyn Fn() -> Option<String>| {
            let rt = scan?;
            prescan::start(name.map(str::to_string).or_else(guess), rt)
        };
        let (mut topology, file, prescan) = match source {
            Source::File(path) => {
                let prescan = start(&|| prescan::guess_name(path));
                let topology = load_topology(path)?;
                let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                (topology, file, prescan)
            }
            Source::Stdin => {
                let text = world::read_stdin()?;
                let prescan = start(&|| prescan::guess_name_in_text(&text));
                let topology = world::parse_stdin_text(&text)?;
                (topology, PathBuf::from(STDIN_NAME), prescan)
            }
        };
        let file_name = topology.name.clone();
        if let Some(n) = name {
            topology.name = n.to_string();
        }
        Ok(Lab {
            topology,
            file,
            file_name,
            prescan: std::sync::Arc::new(std::sync::Mutex::new(prescan)),
            host: None,
            default_host: None,
        })
    }

    /// Chooses this machine's share of a lab that spans hosts: the host `host` names (one of
    /// the file's `hosts:`). `None` leaves the choice to the lab's record (see
    /// [`share`](Self::share)). A host for a lab on one machine is refused.
    pub fn on_host(mut self, host: Option<&str>) -> Result<Lab, LabError> {
        if let Some(h) = host {
            check_host_arg(&self.topology, h)?;
        }
        self.host = host.map(str::to_string);
        Ok(self)
    }

    /// The share to run when none is chosen and the lab's record names none: a machine's
    /// usual host, given as `given` (`TOPO_HOST=left`, for messages). Ignored for a lab on
    /// one machine; when it is taken, it must be one of the file's hosts.
    pub fn default_host(mut self, host: Option<&str>, given: &str) -> Lab {
        if !self.topology.hosts.is_empty() {
            self.default_host = host.map(|h| (h.to_string(), given.to_string()));
        }
        self
    }

    /// The host chosen for this machine's share, or else its default (see
    /// [`default_host`](Self::default_host)), checked; the record is not read.
    pub fn chosen_host(&self) -> Result<Option<&str>, LabError> {
        if let Some(h) = &self.host {
            return Ok(Some(h));
        }
        match &self.default_host {
            Some((h, given)) => check_host(&self.topology, h, given).map(|()| Some(h.as_str())),
            None => Ok(None),
        }
    }

    /// The hosts the lab spans (its `hosts:`), in name order; empty for a lab on one machine.
    pub fn hosts(&self) -> Vec<&str> {
        self.topology.hosts.keys().map(String::as_str).collect()
    }

    /// The host whose share this machine runs: `None` for a lab on one machine; else the one
    /// chosen ([`on_host`](Self::on_host)), or the one the lab's record names when it runs
    /// here already, or the default ([`default_host`](Self::default_host)). None of them is
    /// an error: a lab on hosts needs a choice.
    pub fn share(&self) -> Result<Option<String>, LabError> {
        if self.topology.hosts.is_empty() {
            return Ok(None);
        }
        if let Some(h) = &self.host {
            return Ok(Some(h.clone()));
        }
        let recorded = crate::state::read_record(self.name()).and_then(|s| s.host);
        match recorded {
            Some(h) if self.topology.hosts.contains_key(&h) => Ok(Some(h)),
            None if self.default_host.is_some() => Ok(self.chosen_host()?.map(str::to_string)),
            Some(h) => Err(LabError::Usage(format!(
                "lab {} runs here as host {h}'s share, which the file no longer declares \
                 (hosts: {}); `topo down --lab {}` takes it down",
                self.name(),
                self.hosts().join(", "),
                self.name()
            ))),
            None => Err(LabError::Usage(format!(
                "lab {} spans hosts {}: choose this machine's share with --host NAME",
                self.name(),
                self.hosts().join(", ")
            ))),
        }
    }

    /// The desired kernel state of this machine's share of the lab.
    fn desired(&self) -> Result<Desired, LabError> {
        let host = self.share()?;
        Ok(plan::compile(&self.topology, host.as_deref()))
    }

    /// Refuses to run another host's share where one runs already (`recorded`, the host the
    /// lab's record names).
    fn same_share(&self, recorded: Option<&str>, desired: &Desired) -> Result<(), LabError> {
        match (recorded, desired.host.as_deref()) {
            (Some(r), Some(h)) if r != h => Err(LabError::Usage(format!(
                "lab {} runs here as host {r}'s share, not {h}'s: `topo down --lab {}` first to \
                 run another share on this machine",
                self.name(),
                self.name()
            ))),
            _ => Ok(()),
        }
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
                    Err(e) => return Err(LabError::Internal(format!("observation task: {e}"))),
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
        let desired = self.desired()?;
        let Opened {
            run: _run,
            mut session,
            state,
            early,
            processes,
        } = self.open(&desired, false).await?;
        self.same_share(state.host.as_deref(), &desired)?;
        let observed = observe_all(
            &mut session,
            &self.topology,
            &state,
            &desired,
            processes,
            early,
        )
        .await?;
        let mut plan = plan::diff(&self.topology, &desired, &observed);
        let far = crossings::probe_all(&session, &desired, &observed).await;
        plan.elsewhere = crossings::drift_lines(&far);
        Ok(plan)
    }

    /// Makes the kernel match the file: observe, plan, apply only the difference.
    pub async fn up(&self) -> Result<UpReport, LabError> {
        self.up_with_progress(None).await
    }

    /// `up`, telling `progress` each phase as it starts (phase name, changes done, total),
    /// counted as the report counts them: the plan's visible actions.
    pub async fn up_with_progress(
        &self,
        progress: Option<std::sync::Arc<Progress>>,
    ) -> Result<UpReport, LabError> {
        let started = Instant::now();
        preflight(&self.topology)?;
        let desired = self.desired()?;
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
        // Another host's share runs here: its run directory stays as it is.
        self.same_share(loaded.host.as_deref(), &desired)?;
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
        if !plan.actions.is_empty() {
            // Not ready while it changes: `topo wait` waits for the end of this `up`.
            run.clear_ready()?;
        }
        run.write_hosts(&hosts::render(&self.topology))?;
        let sysctl_keys = desired.sysctl_keys();
        let file = Some(self.file.clone());
        if plan.actions.is_empty()
            && loaded.lab == self.name()
            && loaded.file == file
            && loaded.sysctl_keys == sysctl_keys
            && loaded.host == desired.host
            && loaded.elsewhere == desired.elsewhere
        {
            // Nothing to change, in the kernel or in the record.
            run.mark_ready()?;
            return Ok(UpReport {
                plan,
                elapsed: started.elapsed(),
            });
        }
        // The record's small fields as loaded; its nodes as loaded are the run directory's
        // (see `RunDir::nodes_differ`), so the record is not copied.
        let before = header(&loaded);
        let file_before = loaded.file.clone();
        let mut state = loaded;
        state.lab = self.name().to_string();
        state.file = file;
        state.sysctl_keys = sysctl_keys;
        state.host = desired.host.clone();
        state.elsewhere = desired.elsewhere.clone();
        let counted = progress.map(|p| visible_progress(&plan, p));
        let result = apply::Applier::new(self, &desired, &mut session, &run, &mut state, &observed)
            .run(&plan, counted.as_ref().map(|f| f as &Progress))
            .await;
        // A no-op `up` leaves the record as it was (large to encode and write for a large
        // lab); one that changed only the file it was made from notes that file alone.
        if header(&state) != before || run.nodes_differ(&state.nodes) {
            run.save(&state)?;
        } else if state.file != file_before {
            run.save_file(state.file.as_deref())?;
        }
        result?;
        run.mark_ready()?;
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
        exec(self.name(), node, argv, false)
    }
}

/// Set when `topo` is asked to stop (SIGTERM, SIGINT) during an `up`: the blocking steps of
/// that `up` still under way (waits for services, the next `exec:` line or service of a node)
/// end at their next check, instead of running to their timeouts while the process waits
/// for them to end.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells the steps of an `up` under way to end at their next check (see [`STOPPING`]).
pub(crate) fn stop_waiting() {
    STOPPING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `topo` is stopping (see [`STOPPING`]).
pub(crate) fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::Relaxed)
}

/// A digest of what a node's processes are started with (binds, rootfs, environment and
/// security): when it changes, the node is restarted.
pub(crate) fn node_digest(n: &crate::spec::Node) -> String {
    let mut what = serde_json::json!({
        "binds": n.binds, "rootfs": n.rootfs, "env": n.env, "capabilities": n.capabilities,
        "seccomp": n.seccomp, "filesystem": n.filesystem, "apparmor": n.apparmor, "userns": n.has_userns(),
    });
    // Only when declared: a node that says nothing keeps the digest it had before `tmpfs`
    // existed (and is not restarted for it).
    if n.tmpfs != crate::spec::Tmpfs::default() {
        what["tmpfs"] = serde_json::json!(n.tmpfs);
    }
    if !n.dirs.is_empty() {
        what["dirs"] = serde_json::json!(n.dirs);
    }
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
pub type Progress = dyn Fn(&str, usize, usize) + Send + Sync;

/// `progress` counted in the plan's visible actions (those `up` prints and counts as
/// changes) rather than in all of its steps, so that a progress display ends at the count
/// of changes the summary gives.
fn visible_progress(
    plan: &Plan,
    progress: std::sync::Arc<Progress>,
) -> impl Fn(&str, usize, usize) + Send + Sync + 'static {
    let mut before = Vec::with_capacity(plan.actions.len() + 1);
    let mut n = 0;
    before.push(0);
    for a in &plan.actions {
        if !matches!(a, plan::Action::SetLink { implied: true, .. }) {
            n += 1;
        }
        before.push(n);
    }
    move |phase: &str, done: usize, _all: usize| {
        progress(phase, before.get(done).copied().unwrap_or(n), n)
    }
}

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

/// Runs `argv` inside a node of a lab that is up (blocking; standard streams inherited).
pub(crate) fn exec(lab: &str, node: &str, argv: &[String], tty: bool) -> Result<i32, LabError> {
    let status = exec_command(lab, node, argv, tty, &[])?
        .status()
        .map_err(|e| NodeError::sys("run the command", e))?;
    Ok(status.code().unwrap_or(128))
}

/// Runs `argv` inside a node of a lab that is up from this process when it is
/// single-threaded (`topo exec`: no second start of `topo`), else through
/// [`exec_replacing`]. Returns the program's exit status; signals sent to this process reach
/// the program. `env` is added to the node's environment (after it: it wins).
pub(crate) fn exec_here(
    lab: &str,
    node: &str,
    argv: &[String],
    tty: bool,
    env: &[(String, String)],
) -> Result<i32, LabError> {
    if !crate::node::enter::single_threaded() {
        return Err(exec_replacing(lab, node, argv, tty, env));
    }
    // Started by the node's init when it serves its exec socket (not on a terminal, which
    // takes a relay); else, or if nothing answers there, entered from here.
    if !tty {
        down::check_lab_name(lab)?;
        if let Some(code) = exec_through_channel(lab, node, argv, env) {
            return Ok(code);
        }
    }
    let (target, ctx) = exec_target(lab, node, tty, env)?;
    Ok(crate::node::enter::run_here(target, &ctx, tty, argv))
}

/// Runs `argv` in `node` of `lab` through the node's init ([`crate::node::channel`]): its exit
/// status, or `None` when the lab's name is not one, or the channel is not there, and nothing
/// was run. Standard streams are the caller's; `env` is added to the node's environment.
pub(crate) fn exec_through_channel(
    lab: &str,
    node: &str,
    argv: &[String],
    env: &[(String, String)],
) -> Option<i32> {
    down::check_lab_name(lab).ok()?;
    crate::node::channel::run(&crate::state::root().join(lab), node, argv, env)
}

/// The node's init and the context a command run by `topo exec` gets: the node's, then
/// `env`, then (on a terminal) the caller's `TERM`.
fn exec_target(
    lab: &str,
    node: &str,
    tty: bool,
    env: &[(String, String)],
) -> Result<(ProcId, crate::node::NodeContext), LabError> {
    let (target, mut ctx) = node_target(lab, node)?;
    ctx.env.extend(env.iter().cloned());
    if tty {
        if let Ok(term) = std::env::var("TERM") {
            ctx.env.push(("TERM".into(), term));
        }
    }
    Ok((target, ctx))
}

/// Replaces this process with the helper that runs `argv` inside a node, keeping its PID:
/// a signal sent to `topo exec` reaches the helper, which passes it on to the program, waits
/// for it and exits with its status. Returns only when that fails.
pub(crate) fn exec_replacing(
    lab: &str,
    node: &str,
    argv: &[String],
    tty: bool,
    env: &[(String, String)],
) -> LabError {
    match exec_command(lab, node, argv, tty, env) {
        Ok(mut command) => {
            let err = std::os::unix::process::CommandExt::exec(&mut command);
            NodeError::sys("run the command", err).into()
        }
        Err(e) => e,
    }
}

/// The helper command that runs `argv` inside a node. With `tty` (standard input is a
/// terminal), the program runs on a new terminal that the helper relays, with the caller's
/// `TERM`; it never gets the caller's terminal itself.
///
/// `env` is added to the node's environment (after it: it wins).
fn exec_command(
    lab: &str,
    node: &str,
    argv: &[String],
    tty: bool,
    env: &[(String, String)],
) -> Result<std::process::Command, LabError> {
    let (target, ctx) = exec_target(lab, node, tty, env)?;
    Ok(if tty {
        crate::node::spawn::enter_tty_command(target, &ctx, argv)?
    } else {
        crate::node::spawn::enter_command(target, &ctx, false, argv)?
    })
}

/// How many node names an error about a missing node lists.
const NAMES_LISTED: usize = 12;

/// `lab LAB has no node NODE; did you mean N? (nodes: a, b, …)`: the nearest name, and the
/// first names in natural order (all of them in a small lab, a count in a large one).
pub(crate) fn no_such_node<'a>(
    lab: &str,
    node: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_by(|a, b| crate::plan::names::natural_cmp(a, b));
    let mut msg = format!("lab {lab} has no node {node}");
    if let Some(near) = crate::spec::did_you_mean(node, names.iter().copied()) {
        msg.push_str(&format!("; did you mean {near}?"));
    }
    if names.len() > NAMES_LISTED {
        msg.push_str(&format!(
            " (nodes: {}, … {} in all)",
            names[..NAMES_LISTED].join(", "),
            names.len()
        ));
    } else {
        msg.push_str(&format!(" (nodes: {})", names.join(", ")));
    }
    msg
}

/// The init and environment of a running node, from the lab's record.
pub(crate) fn node_target(
    lab: &str,
    node: &str,
) -> Result<(ProcId, crate::node::NodeContext), LabError> {
    down::check_lab_name(lab)?;
    // The node's own record when it has one (the lab's grows with the lab); a name that is
    // no plain file name is never looked up as one.
    if crate::node::plain_name(node) {
        if let Some(rec) = crate::state::read_node_record(lab, node) {
            if rec.init.alive() {
                return Ok((rec.init, rec.ctx));
            }
        }
    }
    let path = crate::state::root().join(lab).join("state.json");
    // Read without following a symbolic link: the record says how the node's processes are
    // confined.
    let state: State = crate::state::read_record(lab)
        .ok_or_else(|| LabError::Usage(format!("lab {lab} is not up (no {})", path.display())))?;
    let rec = state.nodes.get(node).ok_or_else(|| {
        elsewhere(&state, node).unwrap_or_else(|| {
            LabError::Usage(no_such_node(
                lab,
                node,
                state.nodes.keys().map(String::as_str),
            ))
        })
    })?;
    if !rec.init.alive() {
        return Err(LabError::Usage(format!(
            "node {node} of lab {lab} is not running; run `topo up` to restart it"
        )));
    }
    Ok((rec.init, rec.ctx.clone()))
}

/// The error for a node of a lab that spans hosts that runs on another host than this
/// machine's share (`state`, the lab's record): nothing of it is here.
pub(crate) fn elsewhere(state: &State, node: &str) -> Option<LabError> {
    let host = state.elsewhere.get(node)?;
    let here = state
        .host
        .as_deref()
        .map(|h| format!(" (this machine runs host {h}'s share of lab {})", state.lab))
        .unwrap_or_default();
    Some(LabError::Usage(format!(
        "node {node} runs on host {host}{here}: run the command there"
    )))
}

/// The nodes of a lab that is up, from its record, in name order.
pub(crate) fn node_names(lab: &str) -> Result<Vec<String>, LabError> {
    down::check_lab_name(lab)?;
    let state: State = crate::state::read_record(lab)
        .ok_or_else(|| LabError::Usage(format!("lab {lab} is not up")))?;
    Ok(state.nodes.keys().cloned().collect())
}

/// The lab meant when a command names none: the only one that is up. `how` says how the
/// command names one (`--lab NAME`, `--lab NAME or -f FILE`). A lab taken down whose
/// processes are still ending (`ending` in `topo ls`) is not up.
pub(crate) fn only_lab(how: &str) -> Result<String, LabError> {
    let mut labs = crate::state::labs();
    labs.retain(|name| !list::is_ending(name));
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(LabError::Usage(format!(
            "no lab is up; name one with {how}"
        ))),
        many => Err(LabError::Usage(format!(
            "several labs are up ({}); name one with {how}",
            many.join(", ")
        ))),
    }
}

/// A record without its nodes and its file: what an `up` compares to tell whether the
/// record itself changed.
fn header(s: &State) -> State {
    State {
        lab: s.lab.clone(),
        file: None,
        nodes: std::collections::BTreeMap::new(),
        creating: s.creating.clone(),
        sysctl_keys: s.sysctl_keys.clone(),
        host: s.host.clone(),
        elsewhere: s.elsewhere.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::LabError;

    #[test]
    fn a_missing_node_is_named_with_the_nearest_and_a_short_list() {
        let small = super::no_such_node("lab", "r4", ["r10", "r2", "r1"]);
        assert_eq!(
            small,
            "lab lab has no node r4; did you mean r1? (nodes: r1, r2, r10)"
        );
        let many: Vec<String> = (0..5000).map(|i| format!("n{i}")).collect();
        let big = super::no_such_node("big", "m17", many.iter().map(String::as_str));
        assert!(
            big.starts_with("lab big has no node m17; did you mean n17?"),
            "{big}"
        );
        assert!(
            big.ends_with(
                "(nodes: n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11, … 5000 in all)"
            ),
            "{big}"
        );
    }

    #[test]
    fn only_bad_input_exits_2() {
        let usage = LabError::Usage("no lab is up".into());
        assert_eq!(usage.exit_code(), 2);
        let runtime = LabError::Runtime(std::io::Error::other("no threads"));
        assert_eq!(runtime.exit_code(), 1);
        assert_eq!(
            runtime.to_string(),
            "cannot start the async runtime: no threads"
        );
        assert_eq!(LabError::Internal("panicked".into()).exit_code(), 1);
    }
}
