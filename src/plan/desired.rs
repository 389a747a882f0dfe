//! The desired kernel state of a lab, compiled from the topology: namespaces, interfaces,
//! veth pairs, VXLAN tunnels, addresses, routes, sysctls and processes, all named as `names`
//! says. A lab that spans hosts is compiled for one of them: its share.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::names;
use crate::spec::hosts::{self, Tunnels};
use crate::spec::{Endpoint, LinkState, RouteDest, Topology};

/// MTU of a veth or bridge when the file gives none (the kernel's default for both).
pub const DEFAULT_MTU: u32 = 1500;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub lab: String,
    /// The host whose share this is, for a lab that spans hosts; `None` for a lab on one
    /// machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Network namespaces by name: one per node (of this host, in a share), plus the bridge
    /// namespace if any bridge (with members here).
    pub namespaces: BTreeMap<String, NsSpec>,
    pub veths: Vec<VethSpec>,
    /// Host-side ends of `host:` links, by interface name.
    pub host_ifaces: BTreeMap<String, IfaceSpec>,
    /// This host's ends of the links to other hosts, with what is known of each far end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crossings: Vec<Crossing>,
    /// The nodes of the lab that run on other hosts, with their host.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub elsewhere: BTreeMap<String, String>,
}

impl Desired {
    /// Whether the node runs here (in this share of the lab).
    pub fn has_node(&self, node: &str) -> bool {
        self.namespaces
            .contains_key(&names::node_netns(&self.lab, node))
    }

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
    /// One end of a link between hosts, or a bridge's port to its parts on other hosts.
    Vxlan,
}

/// The tunnel attributes of a VXLAN interface (those `ip link add … type vxlan` takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanSpec {
    /// VXLAN network identifier.
    pub vni: u32,
    /// UDP destination port (the lab's `vxlan.port`).
    pub port: u16,
    /// This host's underlay address (`local`).
    pub local: IpAddr,
    /// The other host's underlay address, for a link's end; `None` for a bridge's port,
    /// which reaches the hosts of `flood`.
    pub remote: Option<IpAddr>,
    /// Whether the interface learns where MACs are (on for a bridge's port, off for a link's
    /// end, which has one peer).
    pub learning: bool,
    /// For a bridge's port: the other hosts with members, each an all-zeros FDB entry
    /// (`bridge fdb append 00:00:00:00:00:00 dst ADDR`), so broadcast and unknown unicast
    /// reach them all, in host name order (compared with the kernel's in any order). Empty
    /// for a link's end.
    pub flood: Vec<IpAddr>,
}

/// This host's end of a link to another host, and what is known of the far end (all from
/// the file): what a probe across the tunnel needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Crossing {
    /// This host's end.
    pub local: Endpoint,
    /// Its network namespace (its interface is `local.iface`).
    pub ns: String,
    /// The far end.
    pub peer: Endpoint,
    /// The host the far end is on.
    pub peer_host: String,
    /// The far end's addresses, as the file declares them.
    pub peer_addresses: Vec<IpNetwork>,
    /// The far end's MAC ([`names::mac`] of its namespace and interface).
    pub peer_mac: [u8; 6],
    /// The link's VNI.
    pub vni: u32,
    /// The file's state of the link (a link set down carries nothing to probe).
    pub up: bool,
}

impl Crossing {
    /// How people know the crossing: `r1:eth1 -> r2:eth1 on host right`.
    pub fn label(&self) -> String {
        format!("{} -> {} on host {}", self.local, self.peer, self.peer_host)
    }
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
    /// For a VXLAN interface: its tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanSpec>,
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

/// Compiles a validated topology into the kernel objects it stands for on one host: for a
/// lab that spans hosts, `host`'s share (its nodes, veth pairs between them, a VXLAN
/// interface for each end of a link to another host, and its part of each bridge); for a
/// lab on one machine (or with `host` `None`), the whole lab.
pub fn compile(t: &Topology, host: Option<&str>) -> Desired {
    let lab = t.name.as_str();
    let share = Share::new(t, host);
    let mut namespaces = BTreeMap::new();
    let mut elsewhere = BTreeMap::new();
    for (name, node) in &t.nodes {
        if !share.has_node(name) {
            if let Some(h) = &node.host {
                elsewhere.insert(name.clone(), h.clone());
            }
            continue;
        }
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
        host: share.host.map(str::to_string),
        namespaces,
        veths: Vec::new(),
        host_ifaces: BTreeMap::new(),
        crossings: Vec::new(),
        elsewhere,
    };
    for (i, link) in t.links.iter().enumerate() {
        let [a, b] = hosts::link_hosts(t, link).map(|h| share.has(h));
        match (a, b, share.tunnels.links.get(&i)) {
            (true, true, _) => add_link(&mut d, t, link),
            (true, false, Some(tunnel)) => add_vxlan_end(&mut d, t, &share, link, 0, tunnel),
            (false, true, Some(tunnel)) => add_vxlan_end(&mut d, t, &share, link, 1, tunnel),
            _ => {}
        }
    }
    if !t.bridges.is_empty() {
        add_bridges(&mut d, t, &share);
    }
    d
}

/// What of a lab is on the host being compiled.
struct Share<'t> {
    t: &'t Topology,
    /// The host, for a lab that spans hosts.
    host: Option<&'t str>,
    /// The lab's tunnels (none for a lab on one machine).
    tunnels: Tunnels,
}

impl<'t> Share<'t> {
    fn new(t: &'t Topology, host: Option<&'t str>) -> Share<'t> {
        let host = host.filter(|_| !t.hosts.is_empty());
        Share {
            t,
            host,
            tunnels: match host {
                Some(_) => hosts::tunnels(t),
                None => Tunnels::default(),
            },
        }
    }

    /// Whether something on host `on` (`None`: placed on none) is on this one.
    fn has(&self, on: Option<&str>) -> bool {
        self.host.is_none() || on == self.host
    }

    fn has_node(&self, node: &str) -> bool {
        self.has(hosts::node_host(self.t, node))
    }

    /// The underlay address of a host of the lab.
    fn address(&self, host: &str) -> Option<IpAddr> {
        self.t.hosts.get(host).map(|h| h.address)
    }
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
        vxlan: None,
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
        vxlan: None,
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
        spec.impair = egress(link, ep);
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

/// The impairment of what leaves `ep`, when it impairs anything.
fn egress(link: &crate::spec::Link, ep: &Endpoint) -> Option<crate::spec::Impair> {
    link.impair
        .as_ref()
        .and_then(|i| i.egress(ep))
        .filter(|i| impairs(i))
        .cloned()
}

/// This host's end (`link.endpoints[here]`) of a link to another host. The node gets a veth
/// end, named as the endpoint, whose MTU is the file's or else the most the tunnel carries;
/// its peer is a port of a bridge of its own in the lab's bridge namespace, beside the
/// link's VXLAN interface. The tunnel is thus out of the node's reach: a node that held it
/// could add forwarding entries to it, aiming what it sends from the host's namespace at
/// any address the host reaches.
fn add_vxlan_end(
    d: &mut Desired,
    t: &Topology,
    share: &Share<'_>,
    link: &crate::spec::Link,
    here: usize,
    tunnel: &hosts::Tunnel,
) {
    let lab = d.lab.clone();
    let ep = &link.endpoints[here];
    let peer = &link.endpoints[1 - here];
    let peer_host = hosts::link_hosts(t, link)[1 - here];
    let (Some(local), Some(peer_host)) = (share.host.and_then(|h| share.address(h)), peer_host)
    else {
        return;
    };
    let Some(remote) = share.address(peer_host) else {
        return;
    };
    let ns = names::node_netns(&lab, &ep.node);
    if !d.namespaces.contains_key(&ns) {
        return;
    }
    let brns = names::bridge_netns(&lab);
    let [ea, eb] = &link.endpoints;
    let (sa, sb) = (ea.to_string(), eb.to_string());
    let marker = names::vxlan_marker(&lab, &sa, &sb);
    let tunnel_marker = names::link_tunnel_marker(&lab, &sa, &sb);
    let up = link.state == LinkState::Up;
    let mtu = link.mtu.unwrap_or(tunnel.mtu);
    let mut spec = end_iface(
        t,
        ep,
        &marker,
        Some(mtu),
        up,
        names::mac(&lab, &ns, &ep.iface),
    );
    spec.impair = egress(link, ep);
    if let Some(n) = d.namespaces.get_mut(&ns) {
        n.ifaces.insert(ep.iface.clone(), spec);
    }
    let bridge = names::link_bridge(tunnel.vni);
    let port = names::bridge_port(&ep.node, &ep.iface);
    let vxlan = names::link_vxlan_port(tunnel.vni);
    let plain = |kind, marker: &str, name: &str, controller: Option<&str>| IfaceSpec {
        kind,
        marker: marker.to_string(),
        mtu: Some(mtu),
        up: true,
        mac: Some(names::mac(&lab, &brns, name)),
        addresses: Vec::new(),
        controller: controller.map(str::to_string),
        impair: None,
        vxlan: None,
    };
    let mut tunnel_port = plain(IfaceKind::Vxlan, &tunnel_marker, &vxlan, Some(&bridge));
    tunnel_port.vxlan = Some(VxlanSpec {
        vni: tunnel.vni,
        port: t.vxlan.port,
        local,
        remote: Some(remote),
        learning: false,
        flood: Vec::new(),
    });
    let stitch = bridge_ns(d, &lab);
    stitch.ifaces.insert(
        bridge.clone(),
        plain(IfaceKind::Bridge, &tunnel_marker, &bridge, None),
    );
    stitch.ifaces.insert(
        port.clone(),
        plain(IfaceKind::Veth, &marker, &port, Some(&bridge)),
    );
    stitch.ifaces.insert(vxlan, tunnel_port);
    d.veths.push(VethSpec {
        marker,
        a: End {
            ns: Some(ns.clone()),
            name: ep.iface.clone(),
        },
        b: End {
            ns: Some(brns),
            name: port,
        },
        label: format!("{ep} <-> tunnel to {peer} on {peer_host}"),
    });
    let peer_ns = names::node_netns(&lab, &peer.node);
    d.crossings.push(Crossing {
        local: ep.clone(),
        ns,
        peer: peer.clone(),
        peer_host: peer_host.to_string(),
        peer_addresses: node_addrs_of(t, peer),
        peer_mac: names::mac(&lab, &peer_ns, &peer.iface),
        vni: tunnel.vni,
        up,
    });
}

/// The lab's bridge namespace, made on first use with its loopback.
fn bridge_ns<'d>(d: &'d mut Desired, lab: &str) -> &'d mut NsSpec {
    let brns = names::bridge_netns(lab);
    d.namespaces.entry(brns.clone()).or_insert_with(|| {
        let mut ifaces = BTreeMap::new();
        ifaces.insert("lo".to_string(), loopback(lab, &brns, None, Vec::new()));
        NsSpec {
            node: None,
            ifaces,
            routes: Vec::new(),
            sysctls: BTreeMap::new(),
        }
    })
}

fn node_addrs_of(t: &Topology, ep: &Endpoint) -> Vec<IpNetwork> {
    t.nodes
        .get(&ep.node)
        .map(|n| node_addrs(n, &ep.iface))
        .unwrap_or_default()
}

/// The bridges with members on this host, in the lab's bridge namespace: each with its local
/// members' ports, and for one with members on other hosts too, a VXLAN port that floods
/// to those hosts.
fn add_bridges(d: &mut Desired, t: &Topology, share: &Share<'_>) {
    let lab = d.lab.clone();
    let brns = names::bridge_netns(&lab);
    // The namespace may hold cross-host links' bridges already.
    let mut ifaces = match d.namespaces.remove(&brns) {
        Some(ns) => ns.ifaces,
        None => {
            let mut ifaces = BTreeMap::new();
            ifaces.insert("lo".to_string(), loopback(&lab, &brns, None, Vec::new()));
            ifaces
        }
    };
    for (bname, bridge) in &t.bridges {
        let members: Vec<&Endpoint> = (bridge.members.iter())
            .filter(|ep| share.has_node(&ep.node))
            .collect();
        if share.host.is_some() && members.is_empty() {
            continue;
        }
        let tunnel = share.tunnels.bridges.get(bname);
        let mtu = (bridge.mtu)
            .or(tunnel.map(|t| t.mtu))
            .unwrap_or(DEFAULT_MTU);
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
                vxlan: None,
            },
        );
        if let Some(tunnel) = tunnel {
            add_bridge_tunnel(&mut ifaces, t, share, bname, mtu, tunnel);
        }
        for ep in members {
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
                    vxlan: None,
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
    // Only the loopback: no bridge has members on this host.
    if ifaces.len() == 1 {
        return;
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

/// The VXLAN port of a bridge with members on several hosts: enslaved to the bridge,
/// learning, with one flood entry per other host that has members.
fn add_bridge_tunnel(
    ifaces: &mut BTreeMap<String, IfaceSpec>,
    t: &Topology,
    share: &Share<'_>,
    bridge: &str,
    mtu: u32,
    tunnel: &hosts::Tunnel,
) {
    let Some(local) = share.host.and_then(|h| share.address(h)) else {
        return;
    };
    let lab = t.name.as_str();
    let port = names::bridge_vxlan_port(bridge);
    let flood = (tunnel.hosts.iter())
        .filter(|h| Some(h.as_str()) != share.host)
        .filter_map(|h| share.address(h))
        .collect();
    ifaces.insert(
        port.clone(),
        IfaceSpec {
            kind: IfaceKind::Vxlan,
            marker: names::bridge_vxlan_marker(lab, bridge),
            mtu: Some(mtu),
            up: true,
            mac: Some(names::mac(lab, &names::bridge_netns(lab), &port)),
            addresses: Vec::new(),
            controller: Some(bridge.to_string()),
            impair: None,
            vxlan: Some(VxlanSpec {
                vni: tunnel.vni,
                port: t.vxlan.port,
                local,
                remote: None,
                learning: true,
                flood,
            }),
        },
    );
}
