//! Starting a node's services: in the order their `after:` lists give, each one known to be
//! running (a forking service through the PID file its daemon writes), ready (its `ready:`
//! check passed) or failed, with the reason and the tail of its log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use super::LabError;
use crate::node::{self, NodeContext, ProcId};
use crate::spec::{Logs, Ready, Service, ServiceKind};
use crate::state::log::LogPipe;
use crate::state::ServiceRecord;

/// How long a service without a `ready:` check must stay up after `up` started it to count
/// as started; a daemon that rejects its configuration exits well within it.
pub(super) const SETTLE: Duration = Duration::from_millis(300);

/// How long a forking service's start command may run, and its daemon take to write its PID
/// file, when it has no `ready:` check giving a timeout.
const FORK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a forking service's start command and PID file are looked at.
const POLL: Duration = Duration::from_millis(10);

/// The order to start `wanted` (services of `services`) in: each after the services its
/// `after:` names, ties by name. Services outside `wanted` are running already; a cycle
/// (`validate` refuses them) puts the rest at the end by name.
pub(super) fn start_order(services: &BTreeMap<String, Service>, wanted: &[String]) -> Vec<String> {
    let wanted: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(wanted.len());
    while order.len() < wanted.len() {
        let next = wanted.iter().copied().find(|s| {
            !done.contains(s)
                && services.get(*s).is_none_or(|spec| {
                    spec.after
                        .iter()
                        .all(|d| done.contains(d.as_str()) || !wanted.contains(d.as_str()))
                })
        });
        let Some(next) = next.or_else(|| wanted.iter().copied().find(|s| !done.contains(s))) else {
            break;
        };
        done.insert(next);
        order.push(next.to_string());
    }
    order
}

/// A service this run started, and when.
pub(super) struct Started {
    pub service: String,
    pub record: ServiceRecord,
    pub at: Instant,
    /// Started without a readiness check: `up` looks once more after [`SETTLE`].
    pub settle: bool,
}

/// Where a service's start went wrong.
pub(super) struct Failed {
    pub service: String,
    pub reason: String,
}

/// What [`start_node`] needs of the node.
pub(super) struct NodeJob {
    pub node: String,
    pub init: ProcId,
    pub ctx: NodeContext,
    /// In start order.
    pub services: Vec<(String, Service)>,
}

/// Starts a node's services one after the other (blocking). Stops at the first that fails:
/// the services started before it are returned with the failure.
pub(super) fn start_node(
    job: &NodeJob,
    logs_dir: &Path,
    logs: Logs,
) -> (Vec<Started>, Option<Failed>) {
    let mut started = Vec::new();
    for (name, spec) in &job.services {
        if super::stopping() {
            return (
                started,
                Some(Failed {
                    service: name.clone(),
                    reason: STOPPED.into(),
                }),
            );
        }
        match start_one(job, name, spec, logs_dir, logs) {
            Ok(s) => started.push(s),
            Err(reason) => {
                return (
                    started,
                    Some(Failed {
                        service: name.clone(),
                        reason,
                    }),
                )
            }
        }
    }
    (started, None)
}

fn start_one(
    job: &NodeJob,
    name: &str,
    spec: &Service,
    logs_dir: &Path,
    logs: Logs,
) -> Result<Started, String> {
    let log_name = format!("{}.{name}", job.node);
    // The service's output goes to a pipe that the host-side log writer reads; this end is
    // closed once the service holds it.
    let log = LogPipe::start(logs_dir, &log_name, logs).map_err(|e| format!("log: {e}"))?;
    let file = log.file().map_err(|e| format!("log: {e}"))?;
    let at = Instant::now();
    let signature = spec.signature();
    let record = |proc: ProcId, completed: bool, ready: Option<Duration>| ServiceRecord {
        proc,
        command: signature.clone(),
        completed,
        ready_ms: ready.map(|d| d.as_millis() as u64),
    };
    match spec.kind {
        ServiceKind::Oneshot => {
            let code = node::spawn::run_shell(job.init, &job.ctx, &spec.command, file)
                .map_err(|e| format!("could not run: {e}"))?;
            if code != 0 {
                log.close_and_wait(Duration::from_secs(1));
                return Err(format!("exited with status {code}"));
            }
            Ok(Started {
                service: name.to_string(),
                record: record(ProcId { pid: 0, start: 0 }, true, None),
                at,
                settle: false,
            })
        }
        ServiceKind::Simple | ServiceKind::Forking => {
            let restart = spec.restart == crate::spec::Restart::OnFailure;
            let started =
                node::spawn::start_service(job.init, &job.ctx, &spec.command, file, restart)
                    .map_err(|e| format!("could not start: {e}"))?;
            // A forking service is the daemon its start command leaves behind.
            let proc = match spec.kind {
                ServiceKind::Forking => {
                    let timeout = spec
                        .ready
                        .as_ref()
                        .map(|r| Duration::from_micros(r.timeout))
                        .unwrap_or(FORK_TIMEOUT);
                    let pid_file = spec.pid_file.clone().unwrap_or_default();
                    wait_forked(job.init, started, &pid_file, at + timeout)?
                }
                _ => started,
            };
            let ready = match &spec.ready {
                Some(r) => Some(wait_ready(job, r, Some(proc), at)?),
                None => None,
            };
            Ok(Started {
                service: name.to_string(),
                record: record(proc, false, ready),
                at,
                settle: spec.ready.is_none(),
            })
        }
    }
}

/// Why a service was not started or waited for: `topo` is stopping (see
/// `lab::stop_waiting`).
const STOPPED: &str = "not waited for: topo is stopping";

/// Waits for a forking service's start command to end and its daemon's PID file to name a
/// live process of the node; that process is the service.
fn wait_forked(
    init: ProcId,
    starter: ProcId,
    pid_file: &Path,
    deadline: Instant,
) -> Result<ProcId, String> {
    while starter.alive() {
        if super::stopping() {
            return Err(STOPPED.into());
        }
        if Instant::now() >= deadline {
            return Err("did not finish starting in time: its start command still runs".into());
        }
        std::thread::sleep(POLL);
    }
    loop {
        if super::stopping() {
            return Err(STOPPED.into());
        }
        let named = node::procfs::read_in_root(init.pid, pid_file)
            .and_then(|text| text.trim().parse::<i32>().ok())
            .filter(|pid| *pid > 0);
        if let Some(pid) = named {
            if let Some(p) = node::procfs::in_pid_ns_of(init.pid, pid).filter(ProcId::alive) {
                return Ok(p);
            }
        }
        if Instant::now() >= deadline {
            return Err(match named {
                Some(pid) => format!(
                    "exited: its PID file {} names PID {pid}, which is not running",
                    pid_file.display()
                ),
                None => format!("exited without writing its PID file {}", pid_file.display()),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Runs the readiness check until it passes (the time since `at`), the service ends, or the
/// timeout passes.
fn wait_ready(
    job: &NodeJob,
    ready: &Ready,
    proc: Option<ProcId>,
    at: Instant,
) -> Result<Duration, String> {
    let timeout = Duration::from_micros(ready.timeout);
    let interval = Duration::from_micros(ready.interval);
    let deadline = at + timeout;
    loop {
        if super::stopping() {
            return Err(STOPPED.into());
        }
        if proc.is_some_and(|p| !p.alive()) {
            return Err("exited during start".into());
        }
        let sink = File::options()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("open /dev/null: {e}"))?;
        let code = node::spawn::run_shell(job.init, &job.ctx, &ready.command, sink)
            .map_err(|e| format!("readiness check could not run: {e}"))?;
        if code == 0 {
            return Ok(at.elapsed());
        }
        if Instant::now() >= deadline {
            if proc.is_some_and(|p| !p.alive()) {
                return Err("exited during start".into());
            }
            return Err(format!(
                "was not ready within {}: `{}` still exits with status {code}",
                crate::spec::format_duration_us(ready.timeout),
                ready.command
            ));
        }
        std::thread::sleep(interval);
    }
}

/// The error for a service that failed to start, with the tail of its log.
pub(super) fn failure(run: &crate::state::RunDir, node: &str, f: Failed) -> LabError {
    // The writer may still be copying the service's last words.
    std::thread::sleep(Duration::from_millis(100));
    LabError::ServiceFailed {
        node: node.to_string(),
        tail: run.log_tail(&format!("{node}.{}", f.service), 20),
        service: f.service,
        reason: f.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(after: &[&str]) -> Service {
        Service {
            after: after.iter().map(|s| s.to_string()).collect(),
            ..Service::command("true")
        }
    }

    #[test]
    fn order_follows_after_then_names() {
        let mut s = BTreeMap::new();
        s.insert("bgpd".to_string(), svc(&["zebra"]));
        s.insert("ospfd".to_string(), svc(&["zebra"]));
        s.insert("zebra".to_string(), svc(&[]));
        s.insert("watch".to_string(), svc(&["bgpd", "ospfd"]));
        let all: Vec<String> = s.keys().cloned().collect();
        assert_eq!(start_order(&s, &all), ["zebra", "bgpd", "ospfd", "watch"]);
        // A dependency that is running already does not hold the others back.
        let some = vec!["bgpd".to_string(), "watch".to_string()];
        assert_eq!(start_order(&s, &some), ["bgpd", "watch"]);
    }

    #[test]
    fn a_cycle_still_orders_every_service() {
        let mut s = BTreeMap::new();
        s.insert("a".to_string(), svc(&["b"]));
        s.insert("b".to_string(), svc(&["a"]));
        s.insert("c".to_string(), svc(&[]));
        let all: Vec<String> = s.keys().cloned().collect();
        assert_eq!(start_order(&s, &all), ["c", "a", "b"]);
    }
}
