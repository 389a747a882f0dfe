//! `status`: the lab as the kernel has it — nodes, interfaces, addresses, routes, processes.

use serde::Serialize;

use super::down::check_lab_name;
use super::LabError;
use crate::net::observe::{observe, observe_namespaces, Depth, Session};
use crate::plan::{names, NsObserved};
use crate::state::RunDir;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub lab: String,
    pub file: Option<String>,
    /// For a lab that spans hosts: the host whose share runs here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For a lab that spans hosts: its nodes on other hosts, with their host.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub elsewhere: std::collections::BTreeMap<String, String>,
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
    /// What is at the other end of the interface's veth, as the alias `topo` gave both ends
    /// names it; `None` for an interface that is not one end of a link of the lab.
    pub peer: Option<Peer>,
}

/// The other end of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Peer {
    /// A node's interface (`node` is `host` for the host's end of a `host:` link), or for a
    /// bridge's port the member interface it joins.
    Interface { node: String, interface: String },
    /// The bridge the interface is a member of.
    Bridge { bridge: String },
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Interface { node, interface } => write!(f, "{node}:{interface}"),
            Peer::Bridge { bridge } => write!(f, "bridge {bridge}"),
        }
    }
}

/// The peer of the interface that is `own` (`node:iface`, or `bridge:port` for a bridge's
/// port) from its alias, `topo/LAB veth X=Y` (see `names::veth_marker`), or `topo/LAB vxlan
/// X=Y` for an end of a link to another host (the peer is there). `bridges` are the
/// lab's bridges: an end `BRIDGE:PORT` whose port is the one `names::bridge_port` gives the
/// interface is that bridge.
pub(crate) fn peer_of(
    lab: &str,
    own: &str,
    alias: Option<&str>,
    bridges: &[String],
) -> Option<Peer> {
    let marked = alias?.strip_prefix(&names::marker_prefix(lab))?;
    let rest = (marked.strip_prefix("veth ")).or_else(|| marked.strip_prefix("vxlan "))?;
    let other = if let Some(o) = rest.strip_prefix(own).and_then(|r| r.strip_prefix('=')) {
        o
    } else {
        rest.strip_suffix(own).and_then(|r| r.strip_suffix('='))?
    };
    // Node, host and bridge names have no ':'; interface names neither.
    let (node, interface) = other.split_once(':')?;
    let (own_node, own_iface) = own.split_once(':')?;
    let is_bridge =
        bridges.iter().any(|b| b == node) && interface == names::bridge_port(own_node, own_iface);
    Some(if is_bridge {
        Peer::Bridge {
            bridge: node.to_string(),
        }
    } else {
        Peer::Interface {
            node: node.to_string(),
            interface: interface.to_string(),
        }
    })
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
    status_in(lab, None).await
}

/// The status of the lab with node `node` in it, read from that node's namespace and the
/// bridges' alone when the record names the node and its namespace exists (at 10 000 nodes
/// that is one namespace rather than all); else from the whole lab, so that a node the lab
/// lacks is reported as [`status`]'s reader would find it. The other nodes may be left out.
pub async fn node_status(lab: &str, node: &str) -> Result<Status, LabError> {
    status_in(lab, Some(node)).await
}

async fn status_in(lab: &str, only: Option<&str>) -> Result<Status, LabError> {
    check_lab_name(lab)?;
    let Some(run) = RunDir::lock_existing(lab)? else {
        return Err(LabError::Usage(format!(
            "lab {lab} is not up (no run directory)"
        )));
    };
    let state = run.load();
    let mut session = Session::new(tokio::runtime::Handle::current())?;
    let only = (only.filter(|n| state.nodes.contains_key(*n)))
        .map(|n| names::node_netns(lab, n))
        .filter(|ns| crate::net::netns::path(ns).exists());
    let observed = match only {
        Some(ns) => {
            let br = names::bridge_netns(lab);
            let mut these = vec![ns];
            if crate::net::netns::path(&br).exists() {
                these.push(br);
            }
            let adopt = &state.creating;
            observe_namespaces(&mut session, lab, these, None, &[], adopt, Depth::Full).await?
        }
        None => observe(&mut session, lab, None, &[], &state.creating, Depth::Full).await?,
    };
    let prefix = names::netns_prefix(lab);
    let cgroups = crate::node::cgroup::Cgroups::detect().ok();
    let brns = names::bridge_netns(lab);
    let bridges: Vec<String> = match observed.namespaces.get(&brns) {
        Some(NsObserved::Ours(st)) => st
            .links
            .iter()
            .filter(|l| l.kind.as_deref() == Some("bridge"))
            .map(|l| l.name.clone())
            .collect(),
        _ => Vec::new(),
    };
    let mut nodes = Vec::new();
    for (ns, o) in &observed.namespaces {
        let NsObserved::Ours(st) = o else { continue };
        let name = if *ns == names::bridge_netns(lab) {
            "(bridges)".to_string()
        } else {
            ns.strip_prefix(&prefix).unwrap_or(ns).to_string()
        };
        let rec = state.nodes.get(&name);
        let own = |l: &crate::plan::LinkObs| {
            if *ns == brns {
                // A bridge's port: `BRIDGE:PORT`, by the bridge it is attached to.
                let bridge = st.links.iter().find(|b| Some(b.index) == l.controller)?;
                Some(format!("{}:{}", bridge.name, l.name))
            } else {
                Some(format!("{name}:{}", l.name))
            }
        };
        let interfaces = st
            .links
            .iter()
            .map(|l| IfaceStatus {
                peer: own(l).and_then(|o| peer_of(lab, &o, l.alias.as_deref(), &bridges)),
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
            peer: peer_of(
                lab,
                &format!("{}:{}", crate::spec::HOST, l.name),
                l.alias.as_deref(),
                &bridges,
            ),
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
        host: state.host,
        elsewhere: state.elsewhere,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(node: &str, interface: &str) -> Option<Peer> {
        Some(Peer::Interface {
            node: node.into(),
            interface: interface.into(),
        })
    }

    #[test]
    fn peer_is_the_other_end_of_the_alias() {
        let alias = names::veth_marker("lab", "r1:eth1", "r2:eth1");
        let none: &[String] = &[];
        assert_eq!(
            peer_of("lab", "r1:eth1", Some(&alias), none),
            iface("r2", "eth1")
        );
        assert_eq!(
            peer_of("lab", "r2:eth1", Some(&alias), none),
            iface("r1", "eth1")
        );
        // Not this interface's alias, another lab's, no veth, none at all.
        assert_eq!(peer_of("lab", "r3:eth1", Some(&alias), none), None);
        assert_eq!(peer_of("other", "r1:eth1", Some(&alias), none), None);
        let ns = names::ns_marker("lab", "lab-r1");
        assert_eq!(peer_of("lab", "r1:lo", Some(&ns), none), None);
        assert_eq!(peer_of("lab", "r1:eth1", None, none), None);
        // Interface names may hold '='.
        let odd = names::veth_marker("lab", "a:x=y", "b:z");
        assert_eq!(peer_of("lab", "a:x=y", Some(&odd), none), iface("b", "z"));
        assert_eq!(peer_of("lab", "b:z", Some(&odd), none), iface("a", "x=y"));
        // The host's end of a host link.
        let host = names::veth_marker("lab", "host:vh1", "h1:eth0");
        assert_eq!(
            peer_of("lab", "h1:eth0", Some(&host), none),
            iface("host", "vh1")
        );
        assert_eq!(
            peer_of("lab", "host:vh1", Some(&host), none),
            iface("h1", "eth0")
        );
        // An end of a link to another host; a bridge's tunnel port has no one peer.
        let tunnel = names::vxlan_marker("lab", "r2:eth1", "r1:eth1");
        assert_eq!(
            peer_of("lab", "r1:eth1", Some(&tunnel), none),
            iface("r2", "eth1")
        );
        let port = names::bridge_vxlan_marker("lab", "lan");
        let lan = ["lan".to_string()];
        assert_eq!(peer_of("lab", "lan:vx-lan", Some(&port), &lan), None);
    }

    #[test]
    fn a_bridge_member_s_peer_is_the_bridge_and_the_port_s_the_member() {
        let port = names::bridge_port("n1", "eth0");
        let alias = names::veth_marker("lab", &format!("sw:{port}"), "n1:eth0");
        let bridges = ["sw".to_string()];
        assert_eq!(
            peer_of("lab", "n1:eth0", Some(&alias), &bridges),
            Some(Peer::Bridge {
                bridge: "sw".into()
            })
        );
        assert_eq!(
            peer_of("lab", &format!("sw:{port}"), Some(&alias), &bridges),
            iface("n1", "eth0")
        );
        assert_eq!(
            Peer::Bridge {
                bridge: "sw".into()
            }
            .to_string(),
            "bridge sw"
        );
        assert_eq!(
            iface("r2", "eth1").map(|p| p.to_string()).as_deref(),
            Some("r2:eth1")
        );
    }
}
