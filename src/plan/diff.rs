//! The diff: desired vs observed, to actions. Objects are matched by name and by the marker
//! they carry, never by position, so an unchanged object is never touched and keeps its
//! ifindex.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnetwork::IpNetwork;
use serde::Serialize;

use super::desired::{Desired, IfaceSpec, NsSpec, RouteSpec, VethSpec};
use super::names;
use super::observed::{LinkObs, NsObserved, NsState, Observed};
use crate::spec::Topology;

/// One step of a plan. `ns` is a network namespace name; `who` is how people know it (the
/// node's name, `host`, or `bridges`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    StopService {
        node: String,
        service: String,
        pid: i32,
    },
    StopNode {
        node: String,
        pid: i32,
        start: u64,
    },
    DeleteNetns {
        ns: String,
        who: String,
    },
    DeleteLink {
        ns: Option<String>,
        who: String,
        name: String,
        index: u32,
    },
    CreateNetns {
        ns: String,
        who: String,
    },
    StartNode {
        node: String,
    },
    /// Rewrites a running node's cgroup limits in place.
    SetLimits {
        node: String,
        limits: crate::spec::Limits,
    },
    CreateBridge {
        ns: String,
        name: String,
    },
    CreateVeth {
        veth: VethSpec,
    },
    /// Creates a VXLAN interface (`spec.vxlan` says its tunnel) in namespace `ns`: one end of
    /// a link to another host, or a bridge's port to its other hosts. It is created from the
    /// host's namespace, so that its UDP socket is the host's, with its name, MTU, MAC and
    /// the lab's device group; its marker, state and bridge membership follow in an implied
    /// `SetLink`, as for a veth.
    CreateVxlan {
        ns: String,
        who: String,
        name: String,
        spec: IfaceSpec,
    },
    /// `implied`: the second half of creating the interface (its marker, state and bridge
    /// membership), not a change of its own; `plan` does not list it.
    SetLink {
        ns: Option<String>,
        who: String,
        name: String,
        changes: Vec<String>,
        spec: IfaceSpec,
        implied: bool,
    },
    /// Puts (or changes in place) the impairment qdisc on what leaves an interface.
    SetImpair {
        ns: Option<String>,
        who: String,
        name: String,
        impair: crate::spec::Impair,
    },
    /// Removes the impairment qdisc of an interface.
    ClearImpair {
        ns: Option<String>,
        who: String,
        name: String,
    },
    SetSysctl {
        ns: String,
        who: String,
        key: String,
        from: Option<String>,
        to: String,
    },
    DelAddress {
        ns: Option<String>,
        who: String,
        iface: String,
        addr: IpNetwork,
    },
    AddAddress {
        ns: Option<String>,
        who: String,
        iface: String,
        addr: IpNetwork,
    },
    DelRoute {
        ns: String,
        who: String,
        route: RouteSpec,
    },
    AddRoute {
        ns: String,
        who: String,
        route: RouteSpec,
        replace: bool,
    },
    /// Runs the node's `exec:` lines that have not run in its current init, in the file's
    /// order.
    RunExec {
        node: String,
        commands: Vec<String>,
    },
    StartService {
        node: String,
        service: String,
        command: String,
    },
}

impl Action {
    /// The namespace whose netlink socket carries this action, for an action sent to a
    /// namespace's own socket (not the host's).
    pub fn netlink_ns(&self) -> Option<&str> {
        match self {
            Action::CreateBridge { ns, .. }
            | Action::AddRoute { ns, .. }
            | Action::DelRoute { ns, .. } => Some(ns),
            Action::DeleteLink { ns, .. }
            | Action::SetLink { ns, .. }
            | Action::AddAddress { ns, .. }
            | Action::DelAddress { ns, .. }
            | Action::SetImpair { ns, .. }
            | Action::ClearImpair { ns, .. } => ns.as_deref(),
            Action::StopService { .. }
            | Action::StopNode { .. }
            | Action::DeleteNetns { .. }
            | Action::CreateNetns { .. }
            | Action::StartNode { .. }
            | Action::SetLimits { .. }
            | Action::CreateVeth { .. }
            | Action::CreateVxlan { .. }
            | Action::SetSysctl { .. }
            | Action::RunExec { .. }
            | Action::StartService { .. } => None,
        }
    }

    /// `+` creates, `-` removes, `~` changes in place.
    pub fn sign(&self) -> char {
        match self {
            Action::StopService { .. }
            | Action::StopNode { .. }
            | Action::DeleteNetns { .. }
            | Action::DeleteLink { .. }
            | Action::DelAddress { .. }
            | Action::DelRoute { .. }
            | Action::ClearImpair { .. } => '-',
            Action::SetLink { .. }
            | Action::SetSysctl { .. }
            | Action::SetLimits { .. }
            | Action::SetImpair { .. }
            | Action::AddRoute { replace: true, .. } => '~',
            Action::CreateNetns { .. }
            | Action::StartNode { .. }
            | Action::CreateBridge { .. }
            | Action::CreateVeth { .. }
            | Action::CreateVxlan { .. }
            | Action::AddAddress { .. }
            | Action::AddRoute { replace: false, .. }
            | Action::RunExec { .. }
            | Action::StartService { .. } => '+',
        }
    }

    /// The phase this action runs in.
    pub fn phase(&self) -> Phase {
        match self {
            Action::StopService { .. } => Phase::StopServices,
            Action::StopNode { .. } => Phase::StopNodes,
            Action::DeleteNetns { .. } => Phase::DeleteNetns,
            Action::DeleteLink { .. } => Phase::DeleteLinks,
            Action::CreateNetns { .. } => Phase::CreateNetns,
            Action::StartNode { .. } => Phase::StartNodes,
            Action::SetLimits { .. } => Phase::SetLimits,
            Action::CreateBridge { .. } => Phase::CreateBridges,
            Action::CreateVeth { .. } => Phase::CreateVeths,
            Action::CreateVxlan { .. } => Phase::CreateVxlans,
            Action::SetLink { .. } => Phase::SetLinks,
            Action::SetImpair { .. } | Action::ClearImpair { .. } => Phase::Impairments,
            Action::SetSysctl { .. } => Phase::SetSysctls,
            Action::AddAddress { .. } => Phase::AddAddresses,
            Action::DelAddress { .. } => Phase::DelAddresses,
            Action::DelRoute { .. } => Phase::DelRoutes,
            Action::AddRoute { .. } => Phase::AddRoutes,
            Action::RunExec { .. } => Phase::RunExec,
            Action::StartService { .. } => Phase::StartServices,
        }
    }
}

/// The steps of a plan, in the order they run: removals first, then creation from the bottom
/// up. Every phase holds one kind of action, except `Impairments` (set and clear, one per
/// interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    StopServices,
    StopNodes,
    DeleteNetns,
    DeleteLinks,
    CreateNetns,
    StartNodes,
    SetLimits,
    CreateBridges,
    CreateVeths,
    CreateVxlans,
    SetLinks,
    Impairments,
    SetSysctls,
    /// New addresses before old ones go: a subnet never loses its last address on the way,
    /// so routes through it survive a renumbering.
    AddAddresses,
    DelAddresses,
    DelRoutes,
    AddRoutes,
    RunExec,
    StartServices,
}

impl Phase {
    /// What the phase does, for progress and logs (`TOPO_LOG=info`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::StopServices => "stop services",
            Phase::StopNodes => "stop nodes",
            Phase::DeleteNetns => "delete namespaces",
            Phase::DeleteLinks => "delete links",
            Phase::CreateNetns => "create namespaces",
            Phase::StartNodes => "start nodes",
            Phase::SetLimits => "set limits",
            Phase::CreateBridges => "create bridges",
            Phase::CreateVeths => "create veths",
            Phase::CreateVxlans => "create vxlan tunnels",
            Phase::SetLinks => "set links",
            Phase::Impairments => "set impairments",
            Phase::SetSysctls => "set sysctls",
            Phase::AddAddresses => "add addresses",
            Phase::DelAddresses => "delete addresses",
            Phase::DelRoutes => "delete routes",
            Phase::AddRoutes => "add routes",
            Phase::RunExec => "run exec",
            Phase::StartServices => "start services",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.sign())?;
        match self {
            Action::StopService { node, service, pid } => {
                write!(f, "service {node}/{service} (pid {pid})")
            }
            Action::StopNode { node, pid, .. } => write!(f, "node {node} init (pid {pid})"),
            Action::DeleteNetns { ns, who } => write!(f, "netns {ns} ({who})"),
            Action::DeleteLink { who, name, .. } => write!(f, "link {who}:{name}"),
            Action::CreateNetns { ns, who } => write!(f, "netns {ns} ({who})"),
            Action::StartNode { node } => write!(f, "node {node} init"),
            Action::SetLimits { node, limits } => write!(f, "limits {node} {}", fmt_limits(limits)),
            Action::SetImpair {
                who, name, impair, ..
            } => write!(f, "impair {who}:{name} {}", fmt_impair(impair)),
            Action::ClearImpair { who, name, .. } => write!(f, "impair {who}:{name}"),
            Action::CreateBridge { name, .. } => write!(f, "bridge {name}"),
            Action::CreateVeth { veth } => write!(f, "veth {}", veth.label),
            Action::CreateVxlan {
                who, name, spec, ..
            } => {
                write!(f, "vxlan {who}:{name}")?;
                match &spec.vxlan {
                    Some(v) => write!(f, " {}", fmt_vxlan(v)),
                    None => Ok(()),
                }
            }
            Action::SetLink {
                who, name, changes, ..
            } => write!(f, "link {who}:{name} {}", changes.join(", ")),
            Action::SetSysctl {
                who, key, from, to, ..
            } => match from {
                Some(from) => write!(f, "sysctl {who} {key} {from} -> {to}"),
                None => write!(f, "sysctl {who} {key} = {to}"),
            },
            Action::DelAddress {
                who, iface, addr, ..
            }
            | Action::AddAddress {
                who, iface, addr, ..
            } => {
                write!(f, "address {who}:{iface} {addr}")
            }
            Action::DelRoute { who, route, .. } | Action::AddRoute { who, route, .. } => {
                write!(f, "route {who} {route}")
            }
            Action::RunExec { node, commands } => match commands.as_slice() {
                [one] => write!(f, "exec {node}: {one}"),
                _ => write!(f, "exec {node} ({} commands)", commands.len()),
            },
            Action::StartService {
                node,
                service,
                command,
            } => write!(f, "service {node}/{service}: {command}"),
        }
    }
}

/// Ordered actions, and objects in the way that are not ours (nothing is done if any).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub conflicts: Vec<String>,
    /// Drift on other hosts, found by probing the far ends of this share's links to them
    /// (`plan` only): what `up` on this host does not repair.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.conflicts.is_empty() && self.elsewhere.is_empty()
    }

    /// The actions people see: all but the implied halves of creations.
    pub fn visible(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .filter(|a| !matches!(a, Action::SetLink { implied: true, .. }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.conflicts {
            writeln!(f, "! {c}")?;
        }
        for e in &self.elsewhere {
            writeln!(f, "? {e}")?;
        }
        for a in self.visible() {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Computes the actions that make `observed` match `desired`, in the order they must run.
pub fn diff(topology: &Topology, desired: &Desired, observed: &Observed) -> Plan {
    let empty = NsState::default();
    let mut p = Planner {
        d: desired,
        o: observed,
        plan: Plan::default(),
        fresh: BTreeSet::new(),
        empty: &empty,
    };
    p.namespaces();
    p.veths();
    p.vxlans();
    p.stale_links();
    p.interfaces();
    p.processes(topology);
    p.plan.actions.sort_by_key(Action::phase);
    p.plan
}

struct Planner<'a> {
    d: &'a Desired,
    o: &'a Observed,
    plan: Plan,
    /// Namespaces (or `host`) whose state is rebuilt from nothing in this plan.
    fresh: BTreeSet<String>,
    empty: &'a NsState,
}

impl<'a> Planner<'a> {
    fn who(&self, ns: Option<&str>) -> String {
        match ns {
            None => "host".into(),
            Some(ns) => match self.d.namespaces.get(ns).and_then(|s| s.node.clone()) {
                Some(node) => node,
                None if ns == names::bridge_netns(&self.d.lab) => "bridges".into(),
                None => ns.to_string(),
            },
        }
    }

    /// The observed state of a namespace that we may change (empty if it is created now).
    fn state(&self, ns: Option<&str>) -> Option<&'a NsState> {
        match ns {
            None => None,
            Some(ns) if self.fresh.contains(ns) => Some(self.empty),
            Some(ns) => match self.o.namespaces.get(ns) {
                Some(NsObserved::Ours(s)) => Some(s),
                _ => None,
            },
        }
    }

    fn links_in(&self, ns: Option<&str>) -> &[LinkObs] {
        match ns {
            None => &self.o.host_links,
            Some(_) => self.state(ns).map(|s| s.links.as_slice()).unwrap_or(&[]),
        }
    }

    fn namespaces(&mut self) {
        let prefix = names::marker_prefix(&self.d.lab);
        for (ns, spec) in &self.d.namespaces {
            let who = self.who(Some(ns));
            match self.o.namespaces.get(ns) {
                None => {
                    self.plan.actions.push(Action::CreateNetns {
                        ns: ns.clone(),
                        who,
                    });
                    self.fresh.insert(ns.clone());
                }
                Some(NsObserved::Foreign { marker }) => self.plan.conflicts.push(format!(
                    "network namespace {ns} exists but is not this lab's ({}); \
                     remove it or rename the lab or node {who}",
                    match marker {
                        Some(m) => format!("its loopback alias is '{m}'"),
                        None => "it carries no topo marker".into(),
                    }
                )),
                Some(NsObserved::Ours(_)) => {}
            }
            let _ = spec;
        }
        for (ns, o) in &self.o.namespaces {
            if self.d.namespaces.contains_key(ns) {
                continue;
            }
            if let NsObserved::Ours(_) = o {
                let who = ns
                    .strip_prefix(&names::netns_prefix(&self.d.lab))
                    .unwrap_or(ns)
                    .to_string();
                self.plan.actions.push(Action::DeleteNetns {
                    ns: ns.clone(),
                    who,
                });
            }
        }
        let _ = prefix;
    }

    /// Veth pairs: kept when both ends exist with the pair's marker, else (re)created.
    fn veths(&mut self) {
        for v in &self.d.veths {
            let ends = [&v.a, &v.b];
            let mut intact = true;
            for end in ends {
                match self.find(end.ns.as_deref(), &end.name) {
                    Some(l) if l.alias.as_deref() == Some(v.marker.as_str()) => {}
                    Some(l) if self.is_ours(l) => {
                        intact = false;
                        self.delete_link(end.ns.as_deref(), l.clone());
                    }
                    Some(l) => {
                        intact = false;
                        let who = self.who(end.ns.as_deref());
                        self.plan.conflicts.push(format!(
                            "interface {who}:{} exists but is not this lab's ({}); remove it or \
                             choose another interface name",
                            l.name,
                            l.alias
                                .as_deref()
                                .map(|a| format!("alias '{a}'"))
                                .unwrap_or_else(|| "no topo marker".into())
                        ));
                    }
                    None => intact = false,
                }
            }
            if !intact {
                // A surviving end of a broken pair goes first (deleting it frees its name).
                for end in ends {
                    if let Some(l) = self.find(end.ns.as_deref(), &end.name) {
                        if l.alias.as_deref() == Some(v.marker.as_str()) {
                            self.delete_link(end.ns.as_deref(), l.clone());
                        }
                    }
                }
                self.plan
                    .actions
                    .push(Action::CreateVeth { veth: v.clone() });
                for end in ends {
                    self.fresh.insert(iface_key(end.ns.as_deref(), &end.name));
                }
            }
        }
    }

    /// VXLAN interfaces: kept when one of that name is there with the marker, kind and
    /// tunnel attributes wanted, else (re)created; one in the way that is not the lab's is a
    /// conflict.
    fn vxlans(&mut self) {
        for (ns, spec) in &self.d.namespaces {
            if self.state(Some(ns)).is_none() {
                continue; // foreign namespace: reported as a conflict
            }
            for (name, want) in &spec.ifaces {
                if want.kind != super::IfaceKind::Vxlan {
                    continue;
                }
                let keep = match self.find(Some(ns), name) {
                    Some(l)
                        if l.alias.as_deref() == Some(want.marker.as_str())
                            && l.kind.as_deref() == Some("vxlan")
                            && same_vxlan(l.vxlan.as_ref(), want.vxlan.as_ref()) =>
                    {
                        true
                    }
                    Some(l) if self.is_ours(l) => {
                        self.delete_link(Some(ns), l.clone());
                        false
                    }
                    Some(l) => {
                        let who = self.who(Some(ns));
                        self.plan.conflicts.push(format!(
                            "interface {who}:{name} exists but is not this lab's ({}); remove \
                             it or choose another interface name",
                            l.alias
                                .as_deref()
                                .map(|a| format!("alias '{a}'"))
                                .unwrap_or_else(|| "no topo marker".into())
                        ));
                        true
                    }
                    None => false,
                };
                if !keep {
                    self.plan.actions.push(Action::CreateVxlan {
                        ns: ns.clone(),
                        who: self.who(Some(ns)),
                        name: name.clone(),
                        spec: want.clone(),
                    });
                    self.fresh.insert(iface_key(Some(ns), name));
                }
            }
        }
    }

    /// Links that carry this lab's marker but that the file no longer declares.
    fn stale_links(&mut self) {
        let mut doomed = Vec::new();
        let mut scopes: Vec<Option<&str>> = vec![None];
        scopes.extend(self.d.namespaces.keys().map(|k| Some(k.as_str())));
        for ns in scopes {
            for l in self.links_in(ns) {
                if !self.is_ours(l) || l.name == "lo" {
                    continue;
                }
                let wanted = self.iface_spec(ns, &l.name).map(|s| s.marker.as_str());
                if wanted != l.alias.as_deref() && !self.already_deleted(ns, l.index) {
                    doomed.push((ns.map(str::to_string), l.clone()));
                }
            }
        }
        for (ns, l) in doomed {
            self.delete_link(ns.as_deref(), l);
        }
    }

    fn interfaces(&mut self) {
        let mut scopes: Vec<(Option<String>, &BTreeMap<String, IfaceSpec>)> =
            vec![(None, &self.d.host_ifaces)];
        for (ns, spec) in &self.d.namespaces {
            scopes.push((Some(ns.clone()), &spec.ifaces));
        }
        for (ns, ifaces) in scopes {
            let ns = ns.as_deref();
            if ns.is_some() && self.state(ns).is_none() {
                continue; // foreign namespace: reported as a conflict
            }
            for (name, spec) in ifaces {
                if spec.kind == super::IfaceKind::Bridge {
                    self.bridge(ns, name, spec);
                }
                self.link_attrs(ns, name, spec);
                self.impair(ns, name, spec);
                if ns.is_some() {
                    self.addresses(ns, name, spec);
                }
            }
            if let Some(ns) = ns {
                if let Some(spec) = self.d.namespaces.get(ns) {
                    self.routes(ns, spec);
                    self.sysctls(ns, spec);
                }
            }
        }
    }

    fn bridge(&mut self, ns: Option<&str>, name: &str, spec: &IfaceSpec) {
        let Some(ns) = ns else { return };
        match self.find(Some(ns), name) {
            Some(l) if l.alias.as_deref() == Some(spec.marker.as_str()) => {}
            Some(l) if self.is_ours(l) => {
                self.delete_link(Some(ns), l.clone());
                self.create_bridge(ns, name);
            }
            Some(_) => self
                .plan
                .conflicts
                .push(format!("interface {name} in {ns} is not this lab's")),
            None => self.create_bridge(ns, name),
        }
    }

    fn create_bridge(&mut self, ns: &str, name: &str) {
        self.plan.actions.push(Action::CreateBridge {
            ns: ns.to_string(),
            name: name.to_string(),
        });
        self.fresh.insert(iface_key(Some(ns), name));
    }

    /// MTU, admin state, MAC, alias and bridge membership of an interface.
    fn link_attrs(&mut self, ns: Option<&str>, name: &str, spec: &IfaceSpec) {
        let fresh = self.fresh.contains(&iface_key(ns, name));
        let observed = if fresh { None } else { self.find(ns, name) };
        let mut changes = Vec::new();
        match observed {
            Some(l) => {
                if let Some(mtu) = spec.mtu.filter(|m| *m != l.mtu) {
                    changes.push(format!("mtu {} -> {mtu}", l.mtu));
                }
                if spec.up != l.up {
                    changes.push(if spec.up { "up".into() } else { "down".into() });
                }
                if let Some(mac) = spec.mac.filter(|m| Some(*m) != l.mac) {
                    changes.push(format!("mac {}", names::format_mac(&mac)));
                }
                if l.alias.as_deref() != Some(spec.marker.as_str()) {
                    changes.push("marker".into());
                }
                if let Some(ctrl) = &spec.controller {
                    let ctrl_index = self.find(ns, ctrl).map(|c| c.index);
                    if ctrl_index.is_none() || ctrl_index != l.controller {
                        changes.push(format!("master {ctrl}"));
                    }
                }
            }
            None if spec.kind == super::IfaceKind::Loopback => {
                // Only in a namespace this plan creates: creating it brings lo up and marks
                // it (the marker is what makes the namespace the lab's).
                if !spec.up {
                    changes.push("down".into());
                }
                if let Some(mtu) = spec.mtu {
                    changes.push(format!("mtu {mtu}"));
                }
            }
            None => {
                // Created by CreateVeth/CreateBridge with MTU, MAC and state; the marker and
                // the bridge membership need a second request.
                changes.push("marker".into());
                if let Some(ctrl) = &spec.controller {
                    changes.push(format!("master {ctrl}"));
                }
            }
        }
        if !changes.is_empty() {
            let who = self.who(ns);
            self.plan.actions.push(Action::SetLink {
                ns: ns.map(str::to_string),
                who,
                name: name.to_string(),
                changes,
                spec: spec.clone(),
                implied: observed.is_none(),
            });
        }
    }

    /// The root qdisc that impairs what leaves the interface: set, changed in place, or
    /// removed; a qdisc of another kind (not `topo`'s) is left alone.
    fn impair(&mut self, ns: Option<&str>, name: &str, spec: &IfaceSpec) {
        let fresh = self.fresh.contains(&iface_key(ns, name));
        let index = if fresh {
            None
        } else {
            self.find(ns, name).map(|l| l.index)
        };
        let qdiscs = match ns {
            None => &self.o.host_qdiscs,
            Some(_) => match self.state(ns) {
                Some(s) => &s.qdiscs,
                None => return,
            },
        };
        let have = index
            .and_then(|i| qdiscs.iter().find(|q| q.index == i))
            .map(|q| &q.impair);
        let who = self.who(ns);
        let action = match (&spec.impair, have) {
            (Some(want), Some(have)) if same_impair(want, have) => None,
            (Some(want), _) => Some(Action::SetImpair {
                ns: ns.map(str::to_string),
                who,
                name: name.to_string(),
                impair: want.clone(),
            }),
            (None, Some(_)) => Some(Action::ClearImpair {
                ns: ns.map(str::to_string),
                who,
                name: name.to_string(),
            }),
            (None, None) => None,
        };
        self.plan.actions.extend(action);
    }

    fn addresses(&mut self, ns: Option<&str>, name: &str, spec: &IfaceSpec) {
        let fresh = self.fresh.contains(&iface_key(ns, name));
        let state = self.state(ns).unwrap_or(self.empty);
        let index = if fresh {
            None
        } else {
            state.link(name).map(|l| l.index)
        };
        let on_iface: Vec<_> = state
            .addrs
            .iter()
            .filter(|a| Some(a.index) == index)
            .collect();
        let who = self.who(ns);
        for a in on_iface
            .iter()
            .filter(|a| a.ours && !spec.addresses.contains(&a.addr))
        {
            self.plan.actions.push(Action::DelAddress {
                ns: ns.map(str::to_string),
                who: who.clone(),
                iface: name.to_string(),
                addr: a.addr,
            });
        }
        for addr in &spec.addresses {
            if !on_iface.iter().any(|a| a.addr == *addr) {
                self.plan.actions.push(Action::AddAddress {
                    ns: ns.map(str::to_string),
                    who: who.clone(),
                    iface: name.to_string(),
                    addr: *addr,
                });
            }
        }
    }

    fn routes(&mut self, ns: &str, spec: &NsSpec) {
        let state = self.state(Some(ns)).unwrap_or(self.empty);
        let who = self.who(Some(ns));
        // A route through an interface that is recreated now disappears with it.
        let recreated: BTreeSet<u32> = state
            .links
            .iter()
            .filter(|l| {
                self.fresh.contains(&iface_key(Some(ns), &l.name))
                    || self.already_deleted(Some(ns), l.index)
            })
            .map(|l| l.index)
            .collect();
        let live: Vec<_> = state
            .routes
            .iter()
            .filter(|r| !r.oifs.iter().any(|i| recreated.contains(i)))
            .collect();
        for r in &live {
            if !spec
                .routes
                .iter()
                .any(|d| d.key() == (r.dst, r.metric) && live_route(d, spec).is_some())
            {
                let route = RouteSpec {
                    dst: r.dst,
                    via: r.via.clone(),
                    dev: None,
                    metric: r.metric,
                };
                self.plan.actions.push(Action::DelRoute {
                    ns: ns.to_string(),
                    who: who.clone(),
                    route,
                });
            }
        }
        let wanted: Vec<RouteSpec> = spec
            .routes
            .iter()
            .filter_map(|r| live_route(r, spec))
            .collect();
        for d in &wanted {
            match live.iter().find(|r| (r.dst, r.metric) == d.key()) {
                None => self.plan.actions.push(Action::AddRoute {
                    ns: ns.to_string(),
                    who: who.clone(),
                    route: d.clone(),
                    replace: false,
                }),
                Some(r) => {
                    let same_via = sorted(&r.via) == sorted(&d.via);
                    let same_dev = match &d.dev {
                        None => true,
                        Some(dev) => {
                            let idx = state.link(dev).map(|l| l.index);
                            idx.is_some() && r.oifs.iter().all(|o| Some(*o) == idx)
                        }
                    };
                    if !same_via || !same_dev {
                        self.plan.actions.push(Action::AddRoute {
                            ns: ns.to_string(),
                            who: who.clone(),
                            route: d.clone(),
                            replace: true,
                        });
                    }
                }
            }
        }
    }

    fn sysctls(&mut self, ns: &str, spec: &NsSpec) {
        let state = self.state(Some(ns)).unwrap_or(self.empty);
        let who = self.who(Some(ns));
        for (key, want) in &spec.sysctls {
            let have = state.sysctls.get(key);
            if have.map(|h| normalise(h)) != Some(normalise(want)) {
                self.plan.actions.push(Action::SetSysctl {
                    ns: ns.to_string(),
                    who: who.clone(),
                    key: key.clone(),
                    from: have.cloned(),
                    to: want.clone(),
                });
            }
        }
    }

    fn processes(&mut self, t: &Topology) {
        for (name, node) in &t.nodes {
            let ns = names::node_netns(&self.d.lab, name);
            // Nodes on other hosts have nothing here.
            if !self.d.namespaces.contains_key(&ns) || self.state(Some(&ns)).is_none() {
                continue;
            }
            let obs = self.o.nodes.get(name);
            let alive = !self.fresh.contains(&ns) && obs.is_some_and(|o| o.init_alive);
            // Inits nobody recorded (an `up` stopped half-way): they go.
            for s in obs.map(|o| o.strays.as_slice()).unwrap_or_default() {
                self.plan.actions.push(Action::StopNode {
                    node: name.clone(),
                    pid: s.pid,
                    start: s.start,
                });
            }
            if !alive {
                if let Some(i) = obs.and_then(|o| o.init) {
                    self.plan.actions.push(Action::StopNode {
                        node: name.clone(),
                        pid: i.pid,
                        start: i.start,
                    });
                }
                self.plan
                    .actions
                    .push(Action::StartNode { node: name.clone() });
                if !node.exec.is_empty() {
                    self.plan.actions.push(Action::RunExec {
                        node: name.clone(),
                        commands: node.exec.clone(),
                    });
                }
            }
            if alive {
                let done = obs.and_then(|o| o.exec_done.as_deref());
                let pending = pending_exec(&node.exec, done);
                if !pending.is_empty() {
                    self.plan.actions.push(Action::RunExec {
                        node: name.clone(),
                        commands: pending,
                    });
                }
                if let Some(have) = obs.and_then(|o| o.limits.as_ref()) {
                    if !same_limits(have, &node.limits) {
                        self.plan.actions.push(Action::SetLimits {
                            node: name.clone(),
                            limits: node.limits.clone(),
                        });
                    }
                }
            }
            let running = if alive {
                obs.map(|o| o.services.clone()).unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            for (svc, obs) in &running {
                let wanted = node.services.get(svc).map(|s| s.signature());
                if obs.alive && wanted.as_ref() != Some(&obs.command) {
                    self.plan.actions.push(Action::StopService {
                        node: name.clone(),
                        service: svc.clone(),
                        pid: obs.pid,
                    });
                }
            }
            for (svc, spec) in &node.services {
                let signature = spec.signature();
                let ok = running
                    .get(svc)
                    .is_some_and(|o| (o.alive || o.completed) && o.command == signature);
                if !ok {
                    self.plan.actions.push(Action::StartService {
                        node: name.clone(),
                        service: svc.clone(),
                        command: spec.command.clone(),
                    });
                }
            }
        }
        // Nodes that left the file, or this host's share.
        for (name, obs) in &self.o.nodes {
            if self.d.has_node(name) {
                continue;
            }
            for i in obs.init.iter().chain(&obs.strays) {
                self.plan.actions.push(Action::StopNode {
                    node: name.clone(),
                    pid: i.pid,
                    start: i.start,
                });
            }
        }
    }

    // --- helpers

    fn find(&self, ns: Option<&str>, name: &str) -> Option<&LinkObs> {
        self.links_in(ns).iter().find(|l| l.name == name)
    }

    /// Ours: it carries the lab's marker, or (created by an `up` stopped before it could
    /// mark it) no alias at all and the lab's device group.
    fn is_ours(&self, l: &LinkObs) -> bool {
        let lab = &self.d.lab;
        l.alias
            .as_deref()
            .is_some_and(|a| a.starts_with(&names::marker_prefix(lab)))
            || (l.alias.is_none() && l.group == names::lab_group(lab))
    }

    fn iface_spec(&self, ns: Option<&str>, name: &str) -> Option<&IfaceSpec> {
        match ns {
            None => self.d.host_ifaces.get(name),
            Some(ns) => self.d.namespaces.get(ns).and_then(|s| s.ifaces.get(name)),
        }
    }

    fn already_deleted(&self, ns: Option<&str>, index: u32) -> bool {
        self.plan.actions.iter().any(|a| {
            matches!(a, Action::DeleteLink { ns: n, index: i, .. } if n.as_deref() == ns && *i == index)
        })
    }

    fn delete_link(&mut self, ns: Option<&str>, l: LinkObs) {
        if self.already_deleted(ns, l.index) {
            return;
        }
        let who = self.who(ns);
        self.plan.actions.push(Action::DeleteLink {
            ns: ns.map(str::to_string),
            who,
            name: l.name,
            index: l.index,
        });
    }
}

/// The route as the kernel can hold it: none while every interface it could leave through
/// is administratively down (the kernel flushes such routes; they return with the link).
/// The `exec:` lines of `wanted` that have not run in the node's current init: each line
/// `done` holds stands for one equal line of the file, so a line added anywhere runs once, and
/// a line removed runs nothing. `done` is `None` for an init recorded without that list (by an
/// earlier `topo`), whose lines all ran when it started.
pub(crate) fn pending_exec(wanted: &[String], done: Option<&[String]>) -> Vec<String> {
    let Some(done) = done else {
        return Vec::new();
    };
    let mut ran: BTreeMap<&str, usize> = BTreeMap::new();
    for line in done {
        *ran.entry(line.as_str()).or_default() += 1;
    }
    wanted
        .iter()
        .filter(|line| match ran.get_mut(line.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

fn live_route(route: &RouteSpec, ns: &NsSpec) -> Option<RouteSpec> {
    let up = |i: &IfaceSpec| i.up;
    if let Some(dev) = &route.dev {
        return ns.ifaces.get(dev).is_some_and(up).then(|| route.clone());
    }
    if route.via.is_empty() {
        return Some(route.clone());
    }
    // Of several next hops (ECMP), those through a down link are left out until it is up:
    // the kernel refuses a next hop through a down interface.
    let via: Vec<_> = route
        .via
        .iter()
        .copied()
        .filter(|gw| {
            ns.ifaces
                .values()
                .any(|i| up(i) && i.addresses.iter().any(|a| a.contains(*gw)))
        })
        .collect();
    (!via.is_empty()).then(|| RouteSpec {
        via,
        ..route.clone()
    })
}

/// Limits as the kernel holds them: memory in whole pages (v1 rounds down), CPU as a quota
/// of a 100 ms period.
fn same_limits(have: &crate::spec::Limits, want: &crate::spec::Limits) -> bool {
    let page = |m: Option<u64>| m.map(|b| b / 4096);
    let quota = |c: Option<f64>| c.map(|c| (c * 100_000.0).round() as u64);
    // topo's default pids limit is not asked of a group without one: the kernel may lack
    // the controller, and a node started before the default keeps what it has.
    let pids = have.pids == want.pids || (want.pids_default && have.pids.is_none());
    page(have.memory) == page(want.memory) && pids && quota(have.cpu) == quota(want.cpu)
}

/// Tunnel attributes alike, the flood entries in any order (the kernel lists its FDB in its
/// own).
fn same_vxlan(have: Option<&super::VxlanSpec>, want: Option<&super::VxlanSpec>) -> bool {
    match (have, want) {
        (Some(h), Some(w)) => {
            let (hf, wf) = (sorted(&h.flood), sorted(&w.flood));
            h.vni == w.vni
                && h.port == w.port
                && h.local == w.local
                && h.remote == w.remote
                && h.learning == w.learning
                && hf == wf
        }
        (None, None) => true,
        _ => false,
    }
}

/// Impairments as the kernel holds them: what netem or tbf gives back for the settings
/// (delays to the microsecond, rates to the byte per second), unset and zero alike.
fn same_impair(a: &crate::spec::Impair, b: &crate::spec::Impair) -> bool {
    let n = |v: Option<u64>| v.unwrap_or(0);
    let p = |v: Option<u32>| v.unwrap_or(0);
    let close = |x: u64, y: u64, tol: u64| x.abs_diff(y) <= tol;
    close(n(a.delay_us), n(b.delay_us), 1)
        && close(n(a.jitter_us), n(b.jitter_us), 1)
        && close(n(a.rate_bps), n(b.rate_bps), 8)
        && p(a.loss_ppm) == p(b.loss_ppm)
        && p(a.corrupt_ppm) == p(b.corrupt_ppm)
        && p(a.duplicate_ppm) == p(b.duplicate_ppm)
        && p(a.reorder_ppm) == p(b.reorder_ppm)
}

/// `vni 5123, remote 198.51.100.2`, or for a bridge's port `vni 5123, flood 198.51.100.2,
/// 198.51.100.3`.
pub fn fmt_vxlan(v: &super::VxlanSpec) -> String {
    let to = match v.remote {
        Some(remote) => format!("remote {remote}"),
        None => {
            let flood: Vec<String> = v.flood.iter().map(ToString::to_string).collect();
            format!("flood {}", flood.join(", "))
        }
    };
    format!("vni {}, {to}", v.vni)
}

/// `delay 10ms, jitter 1ms, loss 0.5%, rate 100mbit`.
pub fn fmt_impair(i: &crate::spec::Impair) -> String {
    use crate::spec::{format_duration_us, format_ppm, format_rate};
    let mut parts = Vec::new();
    if let Some(v) = i.delay_us {
        parts.push(format!("delay {}", format_duration_us(v)));
    }
    if let Some(v) = i.jitter_us {
        parts.push(format!("jitter {}", format_duration_us(v)));
    }
    for (name, v) in [
        ("loss", i.loss_ppm),
        ("corrupt", i.corrupt_ppm),
        ("duplicate", i.duplicate_ppm),
        ("reorder", i.reorder_ppm),
    ] {
        if let Some(v) = v.filter(|v| *v > 0) {
            parts.push(format!("{name} {}", format_ppm(v)));
        }
    }
    if let Some(v) = i.rate_bps {
        parts.push(format!("rate {}", format_rate(v)));
    }
    parts.join(", ")
}

fn fmt_limits(l: &crate::spec::Limits) -> String {
    let mut parts = Vec::new();
    if let Some(m) = l.memory {
        parts.push(format!("memory {}", crate::spec::format_bytes(m)));
    }
    if let Some(p) = l.pids {
        parts.push(format!("pids {p}"));
    }
    if let Some(c) = l.cpu {
        parts.push(format!("cpu {c}"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn iface_key(ns: Option<&str>, name: &str) -> String {
    format!("{}\0{name}", ns.unwrap_or("host"))
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The kernel state a flawless `up` of `desired` leaves: what `observe` would then report.
/// Pure; used by the property tests (`diff` of a lab against its own result is empty) and
/// the fuzz target.
pub fn simulate(topology: &Topology, desired: &Desired) -> Observed {
    use super::observed::{AddrObs, NodeObs, ProcId, QdiscObs, RouteObs, ServiceObs};
    let group = names::lab_group(&desired.lab);
    let links_of = |ifaces: &BTreeMap<String, IfaceSpec>| -> Vec<LinkObs> {
        let names_: Vec<&String> = ifaces.keys().collect();
        ifaces
            .iter()
            .enumerate()
            .map(|(i, (name, s))| LinkObs {
                index: i as u32 + 1,
                name: name.clone(),
                alias: Some(s.marker.clone()),
                mtu: s.mtu.unwrap_or(if s.kind == super::IfaceKind::Loopback {
                    65536
                } else {
                    super::desired::DEFAULT_MTU
                }),
                up: s.up,
                mac: s.mac,
                controller: s
                    .controller
                    .as_ref()
                    .and_then(|c| names_.iter().position(|n| *n == c))
                    .map(|p| p as u32 + 1),
                kind: (s.kind == super::IfaceKind::Vxlan).then(|| "vxlan".to_string()),
                group,
                vxlan: s.vxlan.clone(),
            })
            .collect()
    };
    let qdiscs_of = |ifaces: &BTreeMap<String, IfaceSpec>| -> Vec<QdiscObs> {
        ifaces
            .values()
            .enumerate()
            .filter_map(|(i, s)| {
                s.impair.clone().map(|impair| QdiscObs {
                    index: i as u32 + 1,
                    kind: "netem".into(),
                    impair,
                })
            })
            .collect()
    };
    let mut out = Observed::default();
    for (ns, spec) in &desired.namespaces {
        let links = links_of(&spec.ifaces);
        let addrs = spec
            .ifaces
            .values()
            .enumerate()
            .flat_map(|(i, s)| {
                s.addresses.iter().map(move |a| AddrObs {
                    index: i as u32 + 1,
                    addr: *a,
                    ours: true,
                })
            })
            .collect();
        let routes = spec
            .routes
            .iter()
            .filter_map(|r| live_route(r, spec))
            .map(|r| RouteObs {
                dst: r.dst,
                oifs: r
                    .dev
                    .as_ref()
                    .and_then(|d| links.iter().find(|l| &l.name == d))
                    .map(|l| vec![l.index])
                    .unwrap_or_default(),
                via: r.via,
                metric: r.metric,
            })
            .collect();
        let state = NsState {
            links,
            addrs,
            routes,
            sysctls: spec.sysctls.clone(),
            qdiscs: qdiscs_of(&spec.ifaces),
        };
        out.namespaces.insert(ns.clone(), NsObserved::Ours(state));
    }
    out.host_links = links_of(&desired.host_ifaces);
    out.host_qdiscs = qdiscs_of(&desired.host_ifaces);
    for (i, (name, node)) in topology.nodes.iter().enumerate() {
        if !desired.has_node(name) {
            continue;
        }
        let init = ProcId {
            pid: i as i32 + 2,
            start: 1,
        };
        let services = node
            .services
            .iter()
            .map(|(s, c)| {
                (
                    s.clone(),
                    ServiceObs {
                        pid: 1,
                        command: c.signature(),
                        alive: c.kind != crate::spec::ServiceKind::Oneshot,
                        completed: c.kind == crate::spec::ServiceKind::Oneshot,
                    },
                )
            })
            .collect();
        out.nodes.insert(
            name.clone(),
            NodeObs {
                init_alive: true,
                init: Some(init),
                strays: Vec::new(),
                services,
                limits: Some(node.limits.clone()),
                exec_done: Some(node.exec.clone()),
            },
        );
    }
    out
}
