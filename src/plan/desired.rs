//! The desired kernel state of a lab, compiled from the topology: namespaces, interfaces,
//! veth pairs, addresses, routes, sysctls and processes, all named as `names` says.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use serde::Serialize;

use super::names;
use crate::spec::{Endpoint, LinkState, RouteDest, Topology};

/// MTU of a veth or bridge when the file gives none (the kernel's default for both).
pub const DEFAULT_MTU: u32 = 1500;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub lab: String,
    /// Network namespaces by name: one per node, plus the bridge namespace if any bridge.
    pub namespaces: BTreeMap<String, NsSpec>,
    pub veths: Vec<VethSpec>,
    /// Host-side ends of `host:` links, by interface name.
    pub host_ifaces: BTreeMap<String, IfaceSpec>,
}

impl Desired {
    /// Every sysctl key set in some namespace, sorted.
    pub fn sysctl_keys(&self) -> Vec<String> {
        let keys: std::collections::BTreeSet<&String> = self
            .namespaces
            .values()
            .flat_map(|n| n.sysctls.keys())
            .collect();
        keys.into_iter().cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NsSpec {
    /// The node this namespace belongs to; `None` for the bridge namespace.
    pub node: Option<String>,
    pub ifaces: BTreeMap<String, IfaceSpec>,
    pub routes: Vec<RouteSpec>,
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IfaceKind {
    Loopback,
    Veth,
    Bridge,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IfaceSpec {
    pub kind: IfaceKind,
    /// The alias that marks it as ours and says what it implements.
    pub marker: String,
    /// `None`: the kernel's value is left as it is (loopback without a declared MTU).
    pub mtu: Option<u32>,
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    pub addresses: Vec<IpNetwork>,
    /// For a bridge port: the bridge (in the same namespace) it is enslaved to.
    pub controller: Option<String>,
    /// Impairment of what leaves this interface (netem / tbf as its root qdisc).
    pub impair: Option<crate::spec::Impair>,
}

/// One end of a veth pair: its namespace (`None`: the host's) and interface name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct End {
    pub ns: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VethSpec {
    pub marker: String,
    pub a: End,
    pub b: End,
    /// How the pair is shown to people: `r1:eth1 <-> r2:eth1`.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteSpec {
    pub dst: IpNetwork,
    pub via: Vec<IpAddr>,
    pub dev: Option<String>,
    pub metric: u32,
}

/// The metric the kernel gives a route added without one: 0 for IPv4, 1024 for IPv6
/// (`IP6_RT_PRIO_USER`). Desired routes use it too, so that they compare equal.
pub fn default_metric(dst: &IpNetwork) -> u32 {
    if dst.is_ipv6() {
        1024
    } else {
        0
    }
}

impl RouteSpec {
    pub fn key(&self) -> (IpNetwork, u32) {
        (self.dst, self.metric)
    }
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dst.prefix() == 0 {
            write!(f, "default")?;
            if self.dst.is_ipv6() {
                write!(f, " (ipv6)")?;
            }
        } else {
            write!(f, "{}", self.dst)?;
        }
        for v in &self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if self.metric != default_metric(&self.dst) {
            write!(f, " metric {}", self.metric)?;
        }
        Ok(())
    }
}

/// Compiles a validated topology into the kernel objects it stands for.
pub fn compile(t: &Topology) -> Desired {
    let lab = t.name.as_str();
    let mut namespaces = BTreeMap::new();
    for (name, node) in &t.nodes {
        let ns = names::node_netns(lab, name);
        let mut ifaces = BTreeMap::new();
        let lo_mtu = node.interfaces.get("lo").and_then(|i| i.mtu);
        ifaces.insert(
            "lo".to_string(),
            loopback(lab, &ns, lo_mtu, node_addrs(node, "lo")),
        );
        let routes = node.routes.iter().map(route_spec).collect();
        let sysctls = node
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        namespaces.insert(
            ns,
            NsSpec {
                node: Some(name.clone()),
                ifaces,
                routes,
                sysctls,
            },
        );
    }
    let mut d = Desired {
        lab: lab.to_string(),
        namespaces,
        veths: Vec::new(),
        host_ifaces: BTreeMap::new(),
    };
    for link in &t.links {
        add_link(&mut d, t, link);
    }
    if !t.bridges.is_empty() {
        add_bridges(&mut d, t);
    }
    d
}

fn node_addrs(node: &crate::spec::Node, iface: &str) -> Vec<IpNetwork> {
    node.interfaces
        .get(iface)
        .map(|i| i.addresses.clone())
        .unwrap_or_default()
}

fn loopback(lab: &str, ns: &str, mtu: Option<u32>, addresses: Vec<IpNetwork>) -> IfaceSpec {
    IfaceSpec {
        kind: IfaceKind::Loopback,
        marker: names::ns_marker(lab, ns),
        mtu,
        up: true,
        mac: None,
        addresses,
        controller: None,
        impair: None,
    }
}

fn route_spec(r: &crate::spec::Route) -> RouteSpec {
    let dst = match r.to {
        RouteDest::Prefix(p) => p,
        RouteDest::Default => {
            // A default route with only `dev` is IPv4 (the validator documents this).
            let any = match r.via.first() {
                Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            // Prefix 0 is valid for both families, so the fallback is never taken.
            IpNetwork::new(any, 0).unwrap_or(IpNetwork::from(any))
        }
    };
    // The kernel stores routes by network address; normalise so comparisons hold.
    let dst = IpNetwork::new(dst.network(), dst.prefix()).unwrap_or(dst);
    RouteSpec {
        dst,
        via: r.via.clone(),
        dev: r.dev.clone(),
        metric: r.metric.unwrap_or_else(|| default_metric(&dst)),
    }
}

/// The desired state of one node-side (or host-side) end of a link or bridge port.
fn end_iface(
    t: &Topology,
    ep: &Endpoint,
    marker: &str,
    mtu: Option<u32>,
    up: bool,
    mac: [u8; 6],
) -> IfaceSpec {
    let declared = t
        .nodes
        .get(&ep.node)
        .and_then(|n| n.interfaces.get(&ep.iface));
    IfaceSpec {
        kind: IfaceKind::Veth,
        marker: marker.to_string(),
        mtu: Some(declared.and_then(|i| i.mtu).or(mtu).unwrap_or(DEFAULT_MTU)),
        up,
        mac: Some(mac),
        addresses: declared.map(|i| i.addresses.clone()).unwrap_or_default(),
        controller: None,
        impair: None,
    }
}

/// Whether settings impair anything at all (all unset or zero: no qdisc).
pub fn impairs(i: &crate::spec::Impair) -> bool {
    let set = |v: Option<u64>| v.is_some_and(|v| v > 0);
    let pct = |v: Option<u32>| v.is_some_and(|v| v > 0);
    set(i.delay_us)
        || set(i.jitter_us)
        || set(i.rate_bps)
        || pct(i.loss_ppm)
        || pct(i.corrupt_ppm)
        || pct(i.duplicate_ppm)
        || pct(i.reorder_ppm)
}

fn end_ns(lab: &str, ep: &Endpoint) -> Option<String> {
    (!ep.is_host()).then(|| names::node_netns(lab, &ep.node))
}

fn add_link(d: &mut Desired, t: &Topology, link: &crate::spec::Link) {
    let lab = d.lab.clone();
    let [ea, eb] = &link.endpoints;
    let marker = names::veth_marker(&lab, &ea.to_string(), &eb.to_string());
    let up = link.state == LinkState::Up;
    let mut ends = Vec::with_capacity(2);
    for ep in [ea, eb] {
        let ns = end_ns(&lab, ep);
        let mac = names::mac(&lab, ns.as_deref().unwrap_or("host"), &ep.iface);
        let mut spec = end_iface(t, ep, &marker, link.mtu, up, mac);
        spec.impair = link
            .impair
            .as_ref()
            .and_then(|i| i.egress(ep))
            .filter(|i| impairs(i))
            .cloned();
        match &ns {
            Some(ns) => {
                if let Some(n) = d.namespaces.get_mut(ns) {
                    n.ifaces.insert(ep.iface.clone(), spec);
                }
            }
            None => {
                d.host_ifaces.insert(ep.iface.clone(), spec);
            }
        }
        ends.push(End {
            ns,
            name: ep.iface.clone(),
        });
    }
    let b = ends.pop();
    let a = ends.pop();
    if let (Some(a), Some(b)) = (a, b) {
        d.veths.push(VethSpec {
            marker,
            a,
            b,
            label: format!("{ea} <-> {eb}"),
        });
    }
}

fn add_bridges(d: &mut Desired, t: &Topology) {
    let lab = d.lab.clone();
    let brns = names::bridge_netns(&lab);
    let mut ifaces = BTreeMap::new();
    ifaces.insert("lo".to_string(), loopback(&lab, &brns, None, Vec::new()));
    for (bname, bridge) in &t.bridges {
        let mtu = bridge.mtu.unwrap_or(DEFAULT_MTU);
        ifaces.insert(
            bname.clone(),
            IfaceSpec {
                kind: IfaceKind::Bridge,
                marker: names::bridge_marker(&lab, bname),
                mtu: Some(mtu),
                up: true,
                mac: Some(names::mac(&lab, &brns, bname)),
                addresses: Vec::new(),
                controller: None,
                impair: None,
            },
        );
        for ep in &bridge.members {
            let port = names::bridge_port(&ep.node, &ep.iface);
            let node_ns = names::node_netns(&lab, &ep.node);
            let marker = names::veth_marker(&lab, &format!("{bname}:{port}"), &ep.to_string());
            let node_mac = names::mac(&lab, &node_ns, &ep.iface);
            let spec = end_iface(t, ep, &marker, Some(mtu), true, node_mac);
            if let Some(n) = d.namespaces.get_mut(&node_ns) {
                n.ifaces.insert(ep.iface.clone(), spec);
            }
            ifaces.insert(
                port.clone(),
                IfaceSpec {
                    kind: IfaceKind::Veth,
                    marker: marker.clone(),
                    mtu: Some(mtu),
                    up: true,
                    mac: Some(names::mac(&lab, &brns, &port)),
                    addresses: Vec::new(),
                    controller: Some(bname.clone()),
                    impair: None,
                },
            );
            d.veths.push(VethSpec {
                marker,
                a: End {
                    ns: Some(node_ns),
                    name: ep.iface.clone(),
                },
                b: End {
                    ns: Some(brns.clone()),
                    name: port,
                },
                label: format!("{ep} <-> bridge {bname}"),
            });
        }
    }
    d.namespaces.insert(
        brns,
        NsSpec {
            node: None,
            ifaces,
            routes: Vec::new(),
            sysctls: BTreeMap::new(),
        },
    );
}
