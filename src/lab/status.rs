//! `status`: the lab as the kernel has it — nodes, interfaces, addresses, routes, processes.

use serde::Serialize;

use super::down::check_lab_name;
use super::LabError;
use crate::net::observe::{observe, Depth, Session};
use crate::plan::{names, NsObserved};
use crate::state::RunDir;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub lab: String,
    pub file: Option<String>,
    pub nodes: Vec<NodeStatus>,
    /// Host-side interfaces of `host:` links.
    pub host_interfaces: Vec<IfaceStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub netns: String,
    pub init_pid: Option<i32>,
    pub running: bool,
    pub interfaces: Vec<IfaceStatus>,
    pub routes: Vec<String>,
    pub services: Vec<ServiceStatus>,
    /// Limits as the node's cgroup files hold them (absent: unlimited).
    pub limits: crate::spec::Limits,
    /// Current use, as the kernel accounts it.
    pub usage: crate::node::cgroup::Usage,
    /// The security profile its processes run under.
    pub security: Option<crate::node::security::Security>,
    pub userns: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IfaceStatus {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub mtu: u32,
    pub mac: Option<String>,
    pub addresses: Vec<String>,
    /// Impairment of what leaves the interface (its netem or tbf root qdisc), if any.
    pub impair: Option<crate::spec::Impair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `simple`, `forking` or `oneshot`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `running`, `done` (a oneshot service that exited 0), `restarting` (a supervised
    /// service waiting to be started again after a failure) or `dead`.
    pub state: &'static str,
    /// The service's process (for a forking service its daemon); 0 for a oneshot one.
    pub pid: i32,
    pub running: bool,
    /// Milliseconds from its start until its `ready:` check passed, as `up` saw it.
    pub ready_ms: Option<u64>,
    /// How often its supervisor started it again (`restart: on-failure`).
    pub restarts: u64,
    pub command: String,
    pub log: String,
}

pub async fn status(lab: &str) -> Result<Status, LabError> {
    check_lab_name(lab)?;
    let Some(run) = RunDir::lock_existing(lab)? else {
        return Err(LabError::Usage(format!(
            "lab {lab} is not up (no run directory)"
        )));
    };
    let state = run.load();
    let mut session = Session::new(tokio::runtime::Handle::current())?;
    let observed = observe(&mut session, lab, None, &[], &state.creating, Depth::Full).await?;
    let prefix = names::netns_prefix(lab);
    let cgroups = crate::node::cgroup::Cgroups::detect().ok();
    let mut nodes = Vec::new();
    for (ns, o) in &observed.namespaces {
        let NsObserved::Ours(st) = o else { continue };
        let name = if *ns == names::bridge_netns(lab) {
            "(bridges)".to_string()
        } else {
            ns.strip_prefix(&prefix).unwrap_or(ns).to_string()
        };
        let rec = state.nodes.get(&name);
        let interfaces = st
            .links
            .iter()
            .map(|l| IfaceStatus {
                name: l.name.clone(),
                index: l.index,
                up: l.up,
                mtu: l.mtu,
                mac: l.mac.as_ref().map(names::format_mac),
                impair: st
                    .qdiscs
                    .iter()
                    .find(|q| q.index == l.index)
                    .map(|q| q.impair.clone()),
                addresses: st
                    .addrs
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| a.addr.to_string())
                    .collect(),
            })
            .collect();
        let routes = st
            .routes
            .iter()
            .map(|r| {
                // The device the kernel sends through, when all of the route's next hops
                // use one (as `ip route` shows it).
                let dev = match r.oifs.split_first() {
                    Some((first, rest)) if rest.iter().all(|o| o == first) => st
                        .links
                        .iter()
                        .find(|l| l.index == *first)
                        .map(|l| l.name.clone()),
                    _ => None,
                };
                let spec = crate::plan::RouteSpec {
                    dst: r.dst,
                    via: r.via.clone(),
                    dev,
                    metric: r.metric,
                };
                spec.to_string()
            })
            .collect();
        let services = rec
            .map(|r| {
                r.services
                    .iter()
                    .map(|(s, sr)| {
                        let spec = crate::spec::Service::from_signature(&sr.command);
                        let running = !sr.completed && service_running(sr);
                        let waiting = !sr.completed && !running && sr.proc.alive();
                        ServiceStatus {
                            name: s.clone(),
                            kind: spec.kind.as_str(),
                            state: match (sr.completed, running, waiting) {
                                (true, _, _) => "done",
                                (false, true, _) => "running",
                                (false, false, true) => "restarting",
                                (false, false, false) => "dead",
                            },
                            pid: sr.proc.pid,
                            running,
                            ready_ms: sr.ready_ms,
                            restarts: restarts_of(sr),
                            command: spec.command,
                            log: run.log_path(&format!("{name}.{s}")).display().to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let limits = cgroups
            .as_ref()
            .map(|c| c.limits_in_kernel(lab, &name))
            .unwrap_or_default();
        let usage = cgroups
            .as_ref()
            .map(|c| c.usage(lab, &name))
            .unwrap_or_default();
        nodes.push(NodeStatus {
            name,
            netns: ns.clone(),
            init_pid: rec.map(|r| r.init.pid),
            running: rec.is_some_and(|r| r.init.alive()),
            interfaces,
            routes,
            services,
            limits,
            usage,
            security: rec.map(|r| r.ctx.security.clone()),
            userns: rec.is_some_and(|r| r.ctx.userns),
        });
    }
    let host_interfaces = observed
        .host_links
        .iter()
        .map(|l| IfaceStatus {
            name: l.name.clone(),
            index: l.index,
            up: l.up,
            mtu: l.mtu,
            mac: None,
            addresses: Vec::new(),
            impair: observed
                .host_qdiscs
                .iter()
                .find(|q| q.index == l.index)
                .map(|q| q.impair.clone()),
        })
        .collect();
    // As people count (n2 before n10), the bridges' namespace last.
    nodes.sort_by(|a, b| {
        let bridges = |n: &NodeStatus| n.netns == names::bridge_netns(lab);
        bridges(a)
            .cmp(&bridges(b))
            .then_with(|| names::natural_cmp(&a.name, &b.name))
    });
    Ok(Status {
        lab: lab.to_string(),
        file: state.file.map(|f| f.display().to_string()),
        nodes,
        host_interfaces,
    })
}

/// Whether a service was started under a supervisor (`restart: on-failure`), as recorded:
/// not from its process's name, which processes in the node can set.
fn supervised(sr: &crate::state::ServiceRecord) -> bool {
    crate::spec::Service::from_signature(&sr.command).restart == crate::spec::Restart::OnFailure
}

/// Whether a service's process runs: for a supervised service, that its supervisor has the
/// command running, not waiting to start it again after a failure.
pub(crate) fn service_running(sr: &crate::state::ServiceRecord) -> bool {
    let p = &sr.proc;
    if !p.alive() {
        return false;
    }
    if !supervised(sr) {
        return true;
    }
    // The supervisor's one thread's children: empty while it waits out a back-off.
    std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid))
        .map(|c| !c.trim().is_empty())
        .unwrap_or(true)
}

/// The restarts of a supervised service, from its supervisor's name (0 for any other
/// service, or one that is gone).
fn restarts_of(sr: &crate::state::ServiceRecord) -> u64 {
    let p = &sr.proc;
    if !supervised(sr) || !p.alive() {
        return 0;
    }
    std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
        .ok()
        .and_then(|c| {
            c.trim_end()
                .strip_prefix(crate::node::enter::SUPERVISOR_NAME.trim_end())
                .map(|n| n.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}
