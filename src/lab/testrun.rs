//! `topo test`: the steps of a file's `tests:`, run in order against the running lab. A
//! check step expands into one check per node (and per target, for `ping`), run in
//! parallel; inside a `wait` window only the checks not yet passing are run again. Action
//! steps change the lab as `topo link`, `topo impair` and `topo up` do.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::{Lab, LabError};
use crate::check::daemons::{self, Daemon};
use crate::check::report::{CheckReport, Outcome, Report, StepReport};
use crate::check::{icmp, routes};
use crate::node::serve::{EnterServer, Event};
use crate::plan::names;
use crate::spec::steps::{ExecExpect, Family, OspfVersion, RouteCheck, Step, StepKind};
use crate::spec::Topology;

/// How long one run of a command in a node may take when the step has no `wait` window.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon's own report (`vtysh`, `birdc`) may take.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` gives a service to end on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The gap between echo requests of one `ping` check, and how long the last reply may take.
const PING_INTERVAL: Duration = Duration::from_millis(200);
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Where `topo test` keeps what a failure leaves: each node's interfaces, addresses and
/// routes when a step failed (`failed/NN-name/NODE.json`).
pub struct TestOptions {
    pub artifacts: Option<PathBuf>,
}

/// Runs every step of `lab`'s file, telling `on_step` of each as it ends.
pub async fn run_steps(
    lab: &Lab,
    options: &TestOptions,
    on_step: &(dyn Fn(&StepReport) + Sync),
) -> Result<Report, LabError> {
    let started = Instant::now();
    let mut run = Runner {
        lab: lab.name().to_string(),
        file_name: lab.file_name.clone(),
        topology: lab.topology.clone(),
        file: lab.file.clone(),
        servers: Default::default(),
    };
    let mut steps = Vec::new();
    for (i, step) in lab.topology.tests.iter().enumerate() {
        let t = Instant::now();
        let mut report = run.step(step).await;
        report.index = i + 1;
        report.seconds = t.elapsed().as_secs_f64();
        if report.outcome == Outcome::Fail {
            if let Some(dir) = &options.artifacts {
                let dir = dir
                    .join("failed")
                    .join(format!("{:02}-{}", i + 1, slug(&step.name)));
                if let Err(e) = run.snapshot(&dir).await {
                    tracing::warn!("artifacts of step {}: {e}", i + 1);
                }
            }
        }
        on_step(&report);
        steps.push(report);
    }
    let passed = steps.iter().all(|s| s.outcome == Outcome::Pass);
    Ok(Report {
        lab: lab.name().to_string(),
        file: lab.file.display().to_string(),
        passed,
        seconds: started.elapsed().as_secs_f64(),
        steps,
    })
}

/// The lab under test, and the file in effect (an `up` step changes it).
struct Runner {
    lab: String,
    /// The name the lab's files give it: the lab runs under another with `--name`, and so do
    /// the files of its `up` steps.
    file_name: String,
    topology: Topology,
    file: PathBuf,
    /// Per node, the enter server that runs its commands (started on the first), used by one
    /// command at a time; all are ended with the runner.
    servers: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<EnterServer>>>>>,
}

/// One check of a step, on one node.
#[derive(Clone)]
enum Probe {
    Exec {
        command: String,
        expect: ExecExpect,
    },
    Ping {
        target: IpAddr,
        label: String,
        count: u32,
    },
    /// A target that cannot be pinged (a node without an address of the family).
    Unreachable {
        what: String,
        why: String,
    },
    Route(RouteCheck),
    /// OSPF neighbours or BGP peers in a state, as the node's daemon reports them.
    Peers {
        protocol: Protocol,
        daemon: Option<Daemon>,
        want: Vec<(String, BTreeSet<String>)>,
        state: String,
    },
    Service {
        names: Vec<String>,
    },
}

impl Runner {
    async fn step(&mut self, step: &Step) -> StepReport {
        let mut report = StepReport {
            index: 0,
            name: step.name.clone(),
            kind: step.kind.key(),
            outcome: Outcome::Pass,
            seconds: 0.0,
            attempts: 1,
            checks: Vec::new(),
            error: None,
        };
        if step.kind.is_check() {
            let (attempts, checks) = self.check(step).await;
            report.attempts = attempts;
            if checks.iter().any(|c| !c.passed) {
                report.outcome = Outcome::Fail;
            }
            report.checks = checks;
        } else if let Err(e) = self.act(step).await {
            report.outcome = Outcome::Fail;
            report.error = Some(e);
        }
        report
    }

    /// Runs a check step's checks until all pass or its window ends: how many attempts,
    /// and the last report of each check.
    async fn check(&self, step: &Step) -> (u32, Vec<CheckReport>) {
        let probes: Vec<(String, Probe)> = step
            .nodes
            .iter()
            .flat_map(|node| {
                self.probes(step, node)
                    .into_iter()
                    .map(move |p| (node.clone(), p))
            })
            .collect();
        let deadline = step
            .wait
            .map(|w| Instant::now() + Duration::from_micros(w.timeout_us));
        let interval = step
            .wait
            .map(|w| Duration::from_micros(w.interval_us))
            .unwrap_or_default();
        let mut results: Vec<Option<CheckReport>> = vec![None; probes.len()];
        let mut attempts = 0;
        loop {
            attempts += 1;
            let budget = deadline
                .map(|d| {
                    d.saturating_duration_since(Instant::now())
                        .max(Duration::from_secs(1))
                })
                .unwrap_or(COMMAND_TIMEOUT);
            let pending: Vec<usize> = (0..probes.len())
                .filter(|&i| !results[i].as_ref().is_some_and(|r| r.passed))
                .collect();
            let runs = pending.iter().map(|&i| {
                let (node, probe) = &probes[i];
                self.probe(node, probe, step.expect_fail, budget)
            });
            let done = futures::future::join_all(runs).await;
            for (i, r) in pending.iter().zip(done) {
                results[*i] = Some(r);
            }
            let all = results.iter().all(|r| r.as_ref().is_some_and(|r| r.passed));
            let more = deadline.is_some_and(|d| Instant::now() + interval < d);
            if all || !more {
                break;
            }
            tokio::time::sleep(interval).await;
        }
        (attempts, results.into_iter().flatten().collect())
    }

    /// The checks of `step` on `node`.
    fn probes(&self, step: &Step, node: &str) -> Vec<Probe> {
        let daemon = || {
            self.topology
                .nodes
                .get(node)
                .and_then(|n| daemons::daemon_of(n.services.values().map(|s| s.command.as_str())))
        };
        match &step.kind {
            StepKind::Exec { command, expect } => vec![Probe::Exec {
                command: command.clone(),
                expect: expect.clone(),
            }],
            StepKind::Ping {
                targets,
                family,
                count,
            } => targets
                .iter()
                .flat_map(|t| self.ping_targets(t, *family, *count))
                .collect(),
            StepKind::Route(r) => vec![Probe::Route(r.clone())],
            StepKind::Ospf {
                neighbors,
                state,
                version,
            } => vec![Probe::Peers {
                protocol: Protocol::Ospf(*version),
                daemon: daemon(),
                want: self.peers(neighbors, node),
                state: state.clone(),
            }],
            StepKind::Bgp { peers, state } => vec![Probe::Peers {
                protocol: Protocol::Bgp,
                daemon: daemon(),
                want: self.peers(peers, node),
                state: state.clone(),
            }],
            StepKind::Service { names } => vec![Probe::Service {
                names: names.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// The neighbours or peers `node` must have, each with its names; a node is not its own
    /// (so that a full mesh is one step: `nodes: [r1, r2, r3]`, `bgp: [r1, r2, r3]`).
    fn peers(&self, names: &[String], node: &str) -> Vec<(String, BTreeSet<String>)> {
        names
            .iter()
            .filter(|n| n.as_str() != node)
            .map(|n| (n.clone(), self.names_of(n)))
            .collect()
    }

    /// What a neighbour or peer may be called in a daemon's report: the name as written,
    /// and for a node of the lab each of its addresses.
    fn names_of(&self, name: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = [name.to_string()].into();
        if let Some(n) = self.topology.nodes.get(name) {
            for i in n.interfaces.values() {
                out.extend(i.addresses.iter().map(|a| a.ip().to_string()));
            }
        }
        out
    }

    /// A ping target: an address, or a node at its first address of each family (of its
    /// loopback first, then of its interfaces in name order).
    fn ping_targets(&self, target: &str, family: Option<Family>, count: u32) -> Vec<Probe> {
        if let Ok(addr) = target.parse::<IpAddr>() {
            return vec![Probe::Ping {
                target: addr,
                label: addr.to_string(),
                count,
            }];
        }
        let Some(node) = self.topology.nodes.get(target) else {
            return vec![Probe::Unreachable {
                what: format!("ping {target}"),
                why: format!("the file in effect has no node {target}"),
            }];
        };
        let lo = node.interfaces.get("lo").into_iter();
        let others = node
            .interfaces
            .iter()
            .filter(|(name, _)| name.as_str() != "lo")
            .map(|(_, i)| i);
        let addrs: Vec<IpAddr> = lo
            .chain(others)
            .flat_map(|i| i.addresses.iter().map(|a| a.ip()))
            .filter(|a| !a.is_loopback())
            .collect();
        let families = match family {
            Some(f) => vec![f],
            None => vec![Family::V4, Family::V6],
        };
        let mut out = Vec::new();
        for f in families {
            match addrs.iter().find(|a| Family::of(a) == f) {
                Some(a) => out.push(Probe::Ping {
                    target: *a,
                    label: format!("{a} ({target})"),
                    count,
                }),
                None if family.is_some() => out.push(Probe::Unreachable {
                    what: format!("ping {target}"),
                    why: format!(
                        "node {target} has no {} address in the file",
                        if f == Family::V4 { "IPv4" } else { "IPv6" }
                    ),
                }),
                None => {}
            }
        }
        if out.is_empty() {
            out.push(Probe::Unreachable {
                what: format!("ping {target}"),
                why: format!("node {target} has no address in the file"),
            });
        }
        out
    }

    async fn probe(
        &self,
        node: &str,
        probe: &Probe,
        expect_fail: bool,
        budget: Duration,
    ) -> CheckReport {
        let mut r = CheckReport {
            node: Some(node.to_string()),
            what: String::new(),
            passed: false,
            expected: String::new(),
            got: String::new(),
            output: None,
        };
        match probe {
            Probe::Exec { command, expect } => {
                r.what = command.clone();
                match self.node_sh(node, command, budget).await {
                    Ok(out) => {
                        let (ok, expected, got) = exec_verdict(expect, expect_fail, &out);
                        r.passed = ok;
                        r.expected = expected;
                        r.got = got;
                        r.output = Some(out.text());
                    }
                    // A command that cannot run at all (a node stopped) is not a success.
                    Err(e) => {
                        r.passed = expect_fail;
                        r.expected = if expect_fail {
                            "a status other than 0".into()
                        } else {
                            "the command to run".into()
                        };
                        r.got = e;
                    }
                }
            }
            Probe::Ping {
                target,
                label,
                count,
            } => {
                r.what = format!("ping {label}");
                let (seen, got) = self.ping(node, *target, *count).await;
                r.passed = seen != expect_fail;
                r.expected = if expect_fail {
                    "no reply".into()
                } else {
                    "a reply".into()
                };
                r.got = got;
            }
            Probe::Unreachable { what, why } => {
                r.what = what.clone();
                r.expected = "an address to ping".into();
                r.got = why.clone();
            }
            Probe::Route(check) => {
                r.what = format!("route {}", describe_route(check));
                r.expected = if expect_fail {
                    "no such route".into()
                } else {
                    "the route in the kernel's main table".into()
                };
                match self.routes(node).await {
                    Ok(table) => {
                        let q = routes::RouteQuery {
                            prefix: check.to,
                            via: check.via,
                            dev: check.dev.clone(),
                            protocol: check.protocol.clone(),
                        };
                        match routes::find(&table, &q) {
                            Ok(found) => {
                                r.passed = !expect_fail;
                                r.got = route_text(found);
                            }
                            Err(why) => {
                                r.passed = expect_fail;
                                r.got = why;
                            }
                        }
                    }
                    Err(e) => r.got = e,
                }
            }
            Probe::Peers {
                protocol,
                daemon,
                want,
                state,
            } => {
                let names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
                r.what = format!("{} {}", protocol.what(), names.join(", "));
                r.expected = expected_state(state, expect_fail);
                let Some(d) = daemon else {
                    r.got = no_daemon(node);
                    return r;
                };
                let timeout = DAEMON_TIMEOUT.min(budget.max(Duration::from_secs(2)));
                match self.peer_states(node, *protocol, *d, timeout).await {
                    Ok(seen) => {
                        (r.passed, r.got) =
                            states_verdict(want, &seen, state, expect_fail, protocol.plural());
                    }
                    Err((got, output)) => {
                        r.got = got;
                        r.output = output;
                    }
                }
            }
            Probe::Service { names } => {
                r.what = format!("services {}", names.join(", "));
                r.expected = if expect_fail {
                    "not running".into()
                } else {
                    "running and ready".into()
                };
                let (ok, got) = self.services_ready(node, names, budget).await;
                r.passed = ok != expect_fail;
                r.got = got;
            }
        }
        r
    }

    /// The neighbours or sessions `node`'s daemon reports; else what went wrong, with the
    /// daemon's answer when it could not be read.
    async fn peer_states(
        &self,
        node: &str,
        protocol: Protocol,
        daemon: Daemon,
        timeout: Duration,
    ) -> Result<Vec<Seen>, (String, Option<String>)> {
        let command = match protocol {
            Protocol::Ospf(v) => daemons::ospf_command(daemon, v.into()),
            Protocol::Bgp => daemons::bgp_command(daemon),
        };
        let out = self
            .node_sh(node, &command, timeout)
            .await
            .map_err(|e| (e, None))?;
        let unreadable = |e: String| (format!("`{command}`: {e}"), Some(out.text()));
        let seen = match protocol {
            Protocol::Ospf(v) => daemons::parse_ospf(daemon, v.into(), &out.stdout)
                .map_err(unreadable)?
                .into_iter()
                .map(|n| Seen::new(n.router_id, n.address, n.state))
                .collect(),
            Protocol::Bgp => daemons::parse_bgp(daemon, &out.stdout)
                .map_err(unreadable)?
                .into_iter()
                .map(|p| Seen::new(p.peer, p.address, p.state))
                .collect(),
        };
        Ok(seen)
    }

    async fn ping(&self, node: &str, target: IpAddr, count: u32) -> (bool, String) {
        let ns = match crate::net::netns::open(&names::node_netns(&self.lab, node)) {
            Ok(Some(f)) => f,
            Ok(None) => return (false, format!("node {node} has no network namespace")),
            Err(e) => return (false, e.to_string()),
        };
        let timeout = PING_TIMEOUT + PING_INTERVAL * count.saturating_sub(1);
        let echo = tokio::task::spawn_blocking(move || {
            icmp::ping(&ns, target, None, count, PING_INTERVAL, timeout)
        })
        .await;
        match echo {
            Ok(Ok(e)) => {
                let mut got = format!("{} of {} replies", e.received, e.sent);
                if let Some(rtt) = e.rtt {
                    got.push_str(&format!(", {:.2} ms", rtt.as_secs_f64() * 1e3));
                }
                if let Some(err) = &e.error {
                    got.push_str(&format!("; {err}"));
                }
                (e.received > 0, got)
            }
            Ok(Err(e)) => (false, format!("cannot ping: {e}")),
            Err(e) => (false, format!("ping task failed: {e}")),
        }
    }

    async fn routes(&self, node: &str) -> Result<Vec<routes::KernelRoute>, String> {
        let ns = match crate::net::netns::open(&names::node_netns(&self.lab, node)) {
            Ok(Some(f)) => f,
            Ok(None) => return Err(format!("node {node} has no network namespace")),
            Err(e) => return Err(e.to_string()),
        };
        tokio::task::spawn_blocking(move || routes::read(&ns).map_err(|e| e.to_string()))
            .await
            .map_err(|e| format!("route task failed: {e}"))?
    }

    /// Whether each service runs (a oneshot one: has completed) and passes its `ready`
    /// check now; what was found.
    async fn services_ready(
        &self,
        node: &str,
        services: &[String],
        budget: Duration,
    ) -> (bool, String) {
        let Some(state) = crate::state::read_record(&self.lab) else {
            return (false, format!("lab {} is not up", self.lab));
        };
        let Some(rec) = state.nodes.get(node) else {
            return (false, format!("node {node} is not up"));
        };
        let mut found = Vec::new();
        let mut all = true;
        for name in services {
            let Some(s) = rec.services.get(name) else {
                all = false;
                found.push(format!("{name} never started"));
                continue;
            };
            let oneshot = self
                .topology
                .nodes
                .get(node)
                .and_then(|n| n.services.get(name))
                .is_some_and(|s| s.kind == crate::spec::ServiceKind::Oneshot);
            if oneshot {
                if s.completed {
                    found.push(format!("{name} done"));
                } else {
                    all = false;
                    found.push(format!("{name} did not complete"));
                }
                continue;
            }
            if !rec.init.alive() || !super::status::service_running(s) {
                all = false;
                found.push(format!("{name} not running"));
                continue;
            }
            let ready = self
                .topology
                .nodes
                .get(node)
                .and_then(|n| n.services.get(name))
                .and_then(|s| s.ready.clone());
            match ready {
                None => found.push(format!("{name} running (pid {})", s.proc.pid)),
                Some(ready) => {
                    let timeout = Duration::from_micros(ready.timeout).min(budget);
                    match self.node_sh(node, &ready.command, timeout).await {
                        Ok(out) if out.status == 0 => {
                            found.push(format!("{name} running and ready"))
                        }
                        Ok(out) => {
                            all = false;
                            found.push(format!(
                                "{name} running, its ready check exited {}",
                                out.status
                            ));
                        }
                        Err(e) => {
                            all = false;
                            found.push(format!("{name} running, its ready check: {e}"));
                        }
                    }
                }
            }
        }
        (all, found.join("; "))
    }

    /// Runs an action step.
    async fn act(&mut self, step: &Step) -> Result<(), String> {
        match &step.kind {
            StepKind::Link { endpoint, up } => super::set_link(&self.lab, endpoint, *up)
                .await
                .map_err(|e| e.to_string()),
            StepKind::Impair { endpoint, impair } => {
                super::set_impair(&self.lab, endpoint, impair.as_ref())
                    .await
                    .map_err(|e| e.to_string())
            }
            StepKind::Stop { services } => {
                for node in &step.nodes {
                    self.stop(node, services).await?;
                }
                Ok(())
            }
            StepKind::Start { services } => {
                // The topology in effect, as it was read: its file may be standard input.
                let current = Lab {
                    topology: self.topology.clone(),
                    file: self.file.clone(),
                    file_name: self.file_name.clone(),
                    prescan: Default::default(),
                    host: None,
                    default_host: None,
                };
                current.up().await.map_err(|e| e.to_string())?;
                for node in &step.nodes {
                    let (ok, got) = self.services_ready(node, services, COMMAND_TIMEOUT).await;
                    if !ok {
                        return Err(format!("node {node}: {got}"));
                    }
                    if services.is_empty()
                        && crate::state::read_record(&self.lab)
                            .and_then(|s| s.nodes.get(node).map(|r| r.init.alive()))
                            != Some(true)
                    {
                        return Err(format!("node {node} did not start"));
                    }
                }
                Ok(())
            }
            StepKind::Up { file } => self.up(file).await,
            StepKind::Sleep { us } => {
                tokio::time::sleep(Duration::from_micros(*us)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `up` of `file`, which must describe the same lab; it becomes the file in effect.
    async fn up(&mut self, file: &Path) -> Result<(), String> {
        let mut variant = Lab::load(file).map_err(|e| match e {
            LabError::Spec(d) => d.to_string(),
            other => other.to_string(),
        })?;
        if variant.name() != self.file_name {
            return Err(format!(
                "{} describes lab {}, not {}",
                file.display(),
                variant.name(),
                self.file_name
            ));
        }
        // Run as the lab runs (`--name`).
        variant.topology.name = self.lab.clone();
        variant.up().await.map_err(|e| e.to_string())?;
        self.topology = variant.topology.clone();
        self.file = variant.file.clone();
        Ok(())
    }

    /// Stops services of a node (SIGTERM, then SIGKILL after a grace period), or with none
    /// named the whole node (its init is killed, and with it every process in the node).
    async fn stop(&self, node: &str, services: &[String]) -> Result<(), String> {
        let state = crate::state::read_record(&self.lab)
            .ok_or_else(|| format!("lab {} is not up", self.lab))?;
        let rec = state
            .nodes
            .get(node)
            .ok_or_else(|| format!("node {node} is not up"))?;
        let victims: Vec<crate::node::ProcId> = if services.is_empty() {
            vec![rec.init]
        } else {
            let mut out = Vec::new();
            for s in services {
                let r = rec
                    .services
                    .get(s)
                    .ok_or_else(|| format!("node {node}: service {s} never started"))?;
                out.push(r.proc);
            }
            out
        };
        let graceful = !services.is_empty();
        tokio::task::spawn_blocking(move || {
            for v in &victims {
                if graceful && v.alive() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(v.pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    let until = Instant::now() + STOP_GRACE;
                    while v.alive() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                crate::node::spawn::kill_and_wait(*v, STOP_GRACE).map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })
        .await
        .map_err(|e| format!("stop task failed: {e}"))?
    }

    /// Each node's interfaces, addresses, routes and services, as JSON files in `dir`.
    async fn snapshot(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let status = super::status(&self.lab).await.map_err(|e| e.to_string())?;
        for n in &status.nodes {
            let routes = self.routes(&n.name).await.unwrap_or_default();
            let doc = serde_json::json!({
                "node": n.name,
                "running": n.running,
                "interfaces": n.interfaces,
                "routes": routes,
                "services": n.services,
            });
            let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            let path = dir.join(format!("{}.json", n.name));
            std::fs::write(&path, text + "\n")
                .map_err(|e| format!("write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// A neighbour or session as a daemon reported it.
struct Seen {
    names: Vec<String>,
    text: String,
    state: String,
}

impl Seen {
    /// Known by `id` (router ID, peer) and its address: `ID (ADDRESS) STATE`.
    fn new(id: String, address: Option<IpAddr>, state: String) -> Seen {
        let addr = address.map(|a| a.to_string()).filter(|a| *a != id);
        let text = match &addr {
            Some(a) => format!("{id} ({a}) {state}"),
            None => format!("{id} {state}"),
        };
        Seen {
            names: [Some(id), addr].into_iter().flatten().collect(),
            text,
            state,
        }
    }
}

/// What a `Peers` probe asks about.
#[derive(Clone, Copy)]
enum Protocol {
    Ospf(OspfVersion),
    Bgp,
}

impl Protocol {
    fn what(self) -> &'static str {
        match self {
            Protocol::Ospf(OspfVersion::V2) => "OSPFv2 neighbours",
            Protocol::Ospf(OspfVersion::V3) => "OSPFv3 neighbours",
            Protocol::Bgp => "BGP sessions",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Protocol::Ospf(_) => "neighbours",
            Protocol::Bgp => "sessions",
        }
    }
}

impl From<OspfVersion> for daemons::Family {
    fn from(v: OspfVersion) -> Self {
        match v {
            OspfVersion::V2 => daemons::Family::V4,
            OspfVersion::V3 => daemons::Family::V6,
        }
    }
}

/// Whether every wanted neighbour (each known by several names) is in `state` (or, for
/// `expect: fail`, none is); and what was found.
fn states_verdict(
    want: &[(String, BTreeSet<String>)],
    seen: &[Seen],
    state: &str,
    expect_fail: bool,
    what: &str,
) -> (bool, String) {
    let mut ok = true;
    let mut missing = Vec::new();
    for (name, aliases) in want {
        // A peer may have several sessions (IPv4 and IPv6), a neighbour several interfaces:
        // all of them count.
        let hits: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.names.iter().any(|n| aliases.contains(n)))
            .collect();
        let passes = if expect_fail {
            !hits.iter().any(|s| s.state == state)
        } else {
            !hits.is_empty() && hits.iter().all(|s| s.state == state)
        };
        ok &= passes;
        if hits.is_empty() {
            missing.push(name.clone());
        }
    }
    let mut got = if seen.is_empty() {
        format!("no {what}")
    } else {
        seen.iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !missing.is_empty() {
        got.push_str(&format!(" (none for {})", missing.join(", ")));
    }
    (ok, got)
}

fn expected_state(state: &str, expect_fail: bool) -> String {
    if expect_fail {
        format!("none {state}")
    } else {
        format!("each {state}")
    }
}

fn no_daemon(node: &str) -> String {
    format!("node {node} runs neither FRR nor BIRD (no service command names one)")
}

/// What a command in a node gave.
pub(crate) struct CommandOutput {
    pub(crate) status: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl CommandOutput {
    fn text(&self) -> String {
        if self.stderr.trim().is_empty() {
            self.stdout.clone()
        } else {
            format!("{}\n[stderr]\n{}", self.stdout, self.stderr)
        }
    }
}

/// Whether an `exec` check passed, what it expected, and what it got.
fn exec_verdict(
    expect: &ExecExpect,
    expect_fail: bool,
    out: &CommandOutput,
) -> (bool, String, String) {
    if expect_fail {
        return (
            out.status != 0,
            "a status other than 0".into(),
            format!("status {}", out.status),
        );
    }
    let want_status = expect.status.unwrap_or(0);
    if out.status != want_status {
        return (
            false,
            format!("status {want_status}"),
            format!("status {}", out.status),
        );
    }
    if let Some(re) = &expect.output {
        let matched = regex::Regex::new(re).is_ok_and(|r| r.is_match(&out.stdout));
        if !matched {
            return (
                false,
                format!("output matching /{re}/"),
                format!("{} lines that do not match", out.stdout.lines().count()),
            );
        }
    }
    if let Some(want) = &expect.json {
        let doc: serde_json::Value = match serde_json::from_str(&out.stdout) {
            Ok(d) => d,
            Err(e) => {
                return (
                    false,
                    "JSON output".into(),
                    format!("output that is not JSON ({e})"),
                )
            }
        };
        if let Err(diff) = crate::check::json::contains(&doc, want) {
            return (false, format!("JSON containing {want}"), diff);
        }
    }
    (
        true,
        format!("status {want_status}"),
        format!("status {}", out.status),
    )
}

impl Runner {
    /// Runs `command` with `/bin/sh -c` in a node through its enter server, its output
    /// captured; ended (SIGTERM, then SIGKILL to its process group) when it outlives
    /// `timeout`.
    async fn node_sh(
        &self,
        node: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, String> {
        let (target, ctx) = super::node_target(&self.lab, node).map_err(|e| e.to_string())?;
        let argv = ["/bin/sh".to_string(), "-c".to_string(), command.to_string()];
        let slot = {
            let mut servers = self
                .servers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            servers.entry(node.to_string()).or_default().clone()
        };
        let mut held = slot.lock().await;
        // Taken out while in use: if this future is dropped half-way, so is the server.
        let server = match held.take() {
            Some(s) if s.serves(target, &ctx) => s,
            // A server of an init that has gone (the node restarted) ends here.
            _ => EnterServer::start(target, &ctx).map_err(|e| format!("node {node}: {e}"))?,
        };
        let (result, usable) = run_on(&server, node, &argv, timeout).await;
        if usable {
            *held = Some(server);
        }
        // The node's init ended while the command ran, or before it could start in the
        // node's ending PID namespace: that is the answer, not the command's status.
        if !target.running() {
            return Err(match super::node_target(&self.lab, node) {
                Err(e) => e.to_string(),
                Ok(_) => format!("node {node}: its init is ending"),
            });
        }
        result
    }
}

/// Runs `argv` through `server`, its output captured; whether the server can run another.
async fn run_on(
    server: &EnterServer,
    node: &str,
    argv: &[String],
    timeout: Duration,
) -> (Result<CommandOutput, String>, bool) {
    let pipes = (|| -> Result<_, String> {
        let flags = nix::fcntl::OFlag::O_CLOEXEC;
        let (out_r, out_w) = nix::unistd::pipe2(flags).map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = nix::unistd::pipe2(flags).map_err(|e| format!("pipe: {e}"))?;
        let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
        let out = tokio::net::unix::pipe::Receiver::from_owned_fd(out_r)
            .map_err(|e| format!("pipe: {e}"))?;
        let err = tokio::net::unix::pipe::Receiver::from_owned_fd(err_r)
            .map_err(|e| format!("pipe: {e}"))?;
        Ok((out, err, [null.into(), out_w, err_w]))
    })();
    let (mut out, mut err, stdio) = match pipes {
        Ok(p) => p,
        Err(e) => return (Err(e), true),
    };
    if let Err(e) = server.run(argv, stdio).await {
        return (Err(format!("node {node}: {e}")), false);
    }
    let started = std::cell::Cell::new(None);
    let exited = std::cell::Cell::new(None);
    let status = wait_exit(server, &started, &exited);
    let all = async {
        tokio::join!(
            read_capped(Some(&mut out), None),
            read_capped(Some(&mut err), None),
            status
        )
    };
    match tokio::time::timeout(timeout, all).await {
        Ok((o, e, Ok(status))) => (
            Ok(CommandOutput {
                status,
                stdout: String::from_utf8_lossy(&o).into_owned(),
                stderr: String::from_utf8_lossy(&e).into_owned(),
            }),
            true,
        ),
        Ok((_, _, Err(e))) => (Err(format!("node {node}: {e}")), false),
        Err(_) => {
            let late = Err(format!(
                "no answer within {:.1}s (ended)",
                timeout.as_secs_f64()
            ));
            // As `topo __enter` did: SIGTERM passed on to the program (if it still runs),
            // then, 2 s later, its process group killed, which ends what it left behind.
            if exited.get().is_none() {
                let _ = server.end(true).await;
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    wait_exit(server, &started, &exited),
                )
                .await;
            }
            if let Some(pid) = started.get() {
                // A group whose leader has gone keeps its ID while a member lives, so the
                // signal reaches the program's leftovers, or nobody.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(-pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if exited.get().is_none() {
                let _ = server.end(false).await;
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    wait_exit(server, &started, &exited),
                )
                .await;
            }
            (late, exited.get().is_some())
        }
    }
}

/// Reads what the server says until the program's end: its exit status. Notes its host PID
/// in `started` and its exit status in `exited` as they come.
async fn wait_exit(
    server: &EnterServer,
    started: &std::cell::Cell<Option<i32>>,
    exited: &std::cell::Cell<Option<i32>>,
) -> Result<i32, crate::node::NodeError> {
    if let Some(code) = exited.get() {
        return Ok(code);
    }
    loop {
        match server.next().await? {
            Event::Started(pid) => started.set(Some(pid)),
            Event::Exit(code) => {
                exited.set(Some(code));
                return Ok(code);
            }
        }
    }
}

/// Told of each line a command writes as it comes: whether it is on standard error, and the
/// line with its newline (the last one may have none).
pub(crate) type OnLine<'a> = &'a (dyn Fn(bool, &[u8]) + Sync);

/// Runs `argv` in a node with standard input empty, its output captured (the first
/// [`MAX_OUTPUT`] bytes of each stream) and, with `on_line`, passed on line by line as it
/// comes; ended (SIGTERM, then SIGKILL) when it outlives `timeout`.
pub(crate) async fn run_in_node(
    lab: &str,
    node: &str,
    argv: &[String],
    timeout: Option<Duration>,
    on_line: Option<OnLine<'_>>,
) -> Result<CommandOutput, String> {
    let (target, ctx) = super::node_target(lab, node).map_err(|e| e.to_string())?;
    let mut std_cmd =
        crate::node::spawn::enter_command(target, &ctx, false, argv).map_err(|e| e.to_string())?;
    std_cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("run the command: {e}"))?;
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let read_out = read_capped(stdout.as_mut(), on_line.map(|f| (false, f)));
    let read_err = read_capped(stderr.as_mut(), on_line.map(|f| (true, f)));
    let all = async {
        let (o, e, status) = tokio::join!(read_out, read_err, child.wait());
        (o, e, status)
    };
    let finished = match timeout {
        Some(t) => tokio::time::timeout(t, all).await,
        None => Ok(all.await),
    };
    match finished {
        Ok((o, e, status)) => {
            let status = status.map_err(|e| format!("wait for the command: {e}"))?;
            Ok(CommandOutput {
                status: status.code().unwrap_or(128),
                stdout: String::from_utf8_lossy(&o).into_owned(),
                stderr: String::from_utf8_lossy(&e).into_owned(),
            })
        }
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // The helper passes SIGTERM on to the command in the node.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(Duration::from_secs(2), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            Err(format!(
                "no answer within {:.1}s (ended)",
                timeout.unwrap_or_default().as_secs_f64()
            ))
        }
    }
}

/// How much of a command's standard output (and of its standard error) a check keeps: what
/// a node prints beyond it is read and dropped, so that a node cannot fill `topo`'s memory.
const MAX_OUTPUT: usize = 1 << 20;

/// The longest piece of a line that [`read_capped`] holds before passing it on unended.
const MAX_LINE: usize = 64 * 1024;

/// Reads `stream` to its end, keeping its first [`MAX_OUTPUT`] bytes (and a note of the cut);
/// with `on_line`, passes every line on as it comes, kept or not.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(
    stream: Option<&mut R>,
    on_line: Option<(bool, OnLine<'_>)>,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(stream) = stream else {
        return kept;
    };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut dropped = 0usize;
    // A line begun and not yet ended, for `on_line`.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
                dropped = dropped.saturating_add(n - room);
                if let Some((stderr, f)) = on_line {
                    partial.extend_from_slice(&chunk[..n]);
                    let mut start = 0;
                    while let Some(end) = partial[start..].iter().position(|&b| b == b'\n') {
                        f(stderr, &partial[start..start + end + 1]);
                        start += end + 1;
                    }
                    partial.drain(..start);
                    // A line that never ends is passed on in pieces.
                    if partial.len() >= MAX_LINE {
                        f(stderr, &partial);
                        partial.clear();
                    }
                }
            }
        }
    }
    if let (Some((stderr, f)), false) = (on_line, partial.is_empty()) {
        f(stderr, &partial);
    }
    if dropped > 0 {
        kept.extend_from_slice(format!("\n[{dropped} more bytes not kept]\n").as_bytes());
    }
    kept
}

fn describe_route(c: &RouteCheck) -> String {
    let mut out = c.to.to_string();
    if let Some(v) = c.via {
        out.push_str(&format!(" via {v}"));
    }
    if let Some(d) = &c.dev {
        out.push_str(&format!(" dev {d}"));
    }
    if let Some(p) = &c.protocol {
        out.push_str(&format!(" proto {p}"));
    }
    out
}

fn route_text(r: &routes::KernelRoute) -> String {
    let hops: Vec<String> = r
        .nexthops
        .iter()
        .map(|h| {
            let mut s = String::new();
            if let Some(v) = h.via {
                s.push_str(&format!("via {v}"));
            }
            if let Some(d) = &h.dev {
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(&format!("dev {d}"));
            }
            s
        })
        .collect();
    format!("{} {} proto {}", r.prefix, hops.join(", "), r.protocol)
}

/// A step's name as part of a file name.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    let mut out = String::new();
    for c in s.chars().take(40) {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    if out.is_empty() {
        "step".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stdout: &str) -> CommandOutput {
        CommandOutput {
            status,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn exec_checks_status_output_and_json() {
        let plain = ExecExpect::default();
        assert!(exec_verdict(&plain, false, &out(0, "")).0);
        assert!(!exec_verdict(&plain, false, &out(1, "")).0);
        assert!(exec_verdict(&plain, true, &out(1, "")).0);
        let re = ExecExpect {
            output: Some("Full/(DR|Backup)".into()),
            ..Default::default()
        };
        assert!(exec_verdict(&re, false, &out(0, "x Full/DR y")).0);
        let (ok, expected, _) = exec_verdict(&re, false, &out(0, "Init"));
        assert!(!ok);
        assert_eq!(expected, "output matching /Full/(DR|Backup)/");
        let json = ExecExpect {
            json: Some(serde_json::json!({"a": [{"b": 1}]})),
            ..Default::default()
        };
        assert!(exec_verdict(&json, false, &out(0, r#"{"a":[{"c":2},{"b":1}]}"#)).0);
        let (ok, _, got) = exec_verdict(&json, false, &out(0, r#"{"a":[]}"#));
        assert!(!ok);
        assert!(got.contains("$.a[0]"), "{got}");
        assert!(!exec_verdict(&json, false, &out(0, "not json")).0);
    }

    #[test]
    fn neighbours_match_by_any_name_and_state() {
        let want = vec![
            (
                "r2".to_string(),
                BTreeSet::from(["r2".to_string(), "10.0.12.2".to_string()]),
            ),
            (
                "10.255.0.3".to_string(),
                BTreeSet::from(["10.255.0.3".to_string()]),
            ),
        ];
        let seen = vec![
            Seen {
                names: vec!["10.255.0.2".into(), "10.0.12.2".into()],
                text: "10.255.0.2 (10.0.12.2) full".into(),
                state: "full".into(),
            },
            Seen {
                names: vec!["10.255.0.3".into()],
                text: "10.255.0.3 init".into(),
                state: "init".into(),
            },
        ];
        let (ok, got) = states_verdict(&want, &seen, "full", false, "neighbours");
        assert!(!ok);
        assert_eq!(got, "10.255.0.2 (10.0.12.2) full; 10.255.0.3 init");
        assert!(states_verdict(&want[..1], &seen, "full", false, "n").0);
        assert!(!states_verdict(&want[..1], &seen, "full", true, "n").0);
        assert!(states_verdict(&want[1..], &seen, "full", true, "n").0);
        let (ok, got) = states_verdict(&want, &[], "full", false, "neighbours");
        assert!(!ok);
        assert_eq!(got, "no neighbours (none for r2, 10.255.0.3)");
    }

    #[test]
    fn slugs_are_short_and_plain() {
        assert_eq!(slug("OSPF: r1 -> r2 (full)"), "ospf-r1-r2-full");
        assert_eq!(slug("///"), "step");
    }
}
