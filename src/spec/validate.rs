//! Checks across the whole topology, after parsing: endpoints and wiring, addresses, routes
//! against the node's subnets, and host paths (binds, rootfs, seccomp profiles).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;

use super::diag::{Diagnostic, Diagnostics};
use super::hosts;
use super::model::{Endpoint, Node, Restart, Route, RouteDest, Seccomp, ServiceKind, Topology};
use super::parse::{did_you_mean, ifname_problem, Spans};
use super::world::World;
use super::yaml::Pos;

/// Adds a diagnostic for every cross-reference problem of `topo`; `world` answers for the
/// host paths it names.
pub fn validate(
    topo: &Topology,
    spans: &Spans,
    file: &Path,
    world: &dyn World,
    diags: &mut Diagnostics,
) {
    let mut v = Validator {
        topo,
        spans,
        file,
        world,
        diags,
        profiles: HashMap::new(),
    };
    let wired = v.wiring();
    for (name, node) in &topo.nodes {
        v.unwired(name, node, &wired);
        v.duplicate_addresses(name, node);
        v.routes(name, node, &wired);
        v.host_paths(name, node);
        v.services(name, node);
        v.dirs(name, node);
    }
    v.shared_segment_addresses();
    v.hosts();
    v.placement();
    v.vnis();
    v.tunnel_mtus();
    if let Some(Seccomp::Profile(p)) = &topo.defaults.seccomp {
        v.seccomp_profile(p, "defaults.seccomp");
    }
}

/// A cycle in the `after:` lists of a node's services (names in order, the first repeated
/// at the end), if there is one.
pub(crate) fn after_cycle(node: &Node) -> Option<Vec<String>> {
    // 0: not visited, 1: on the current path, 2: done.
    let mut mark: HashMap<&str, u8> = HashMap::new();
    for start in node.services.keys() {
        if mark.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        // Iterative depth-first search: (service, index of the next dependency to visit).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        mark.insert(start, 1);
        while let Some((svc, next)) = stack.last().copied() {
            let deps = node
                .services
                .get(svc)
                .map(|s| s.after.as_slice())
                .unwrap_or(&[]);
            match deps.get(next) {
                None => {
                    mark.insert(svc, 2);
                    stack.pop();
                }
                Some(dep) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    if dep == svc || !node.services.contains_key(dep) {
                        continue;
                    }
                    match mark.get(dep.as_str()).copied().unwrap_or(0) {
                        0 => {
                            mark.insert(dep, 1);
                            stack.push((dep, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(s, _)| *s == dep).unwrap_or(0);
                            let mut cycle: Vec<String> =
                                stack[from..].iter().map(|(s, _)| s.to_string()).collect();
                            cycle.push(dep.clone());
                            return Some(cycle);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    None
}

struct Validator<'a> {
    topo: &'a Topology,
    spans: &'a Spans,
    file: &'a Path,
    world: &'a dyn World,
    diags: &'a mut Diagnostics,
    /// Each seccomp profile file's check, done once: a profile in `defaults` is every node's,
    /// and compiling it per node would repeat the same work for every node.
    profiles: HashMap<std::path::PathBuf, Result<(), String>>,
}

/// Where an endpoint is used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Link,
    Bridge,
}

impl Validator<'_> {
    fn error(&mut self, pos: Pos, message: String, hint: String) {
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message,
            hint: Some(hint),
        });
    }

    // ---- wiring ------------------------------------------------------------------------

    /// Checks every endpoint of links and bridges; returns the wired interfaces.
    fn wiring(&mut self) -> BTreeSet<Endpoint> {
        let mut uses: Vec<(&Endpoint, String, Use)> = Vec::new();
        for (i, link) in self.topo.links.iter().enumerate() {
            let [a, b] = &link.endpoints;
            let path = format!("links[{i}].endpoints");
            if a.is_host() && b.is_host() {
                self.error(
                    self.spans.value(&format!("{path}[0]")),
                    format!("link {} has 'host' at both ends", i + 1),
                    "one end of a link must be a node of the lab".to_string(),
                );
                continue;
            }
            if a == b {
                self.error(
                    self.spans.value(&format!("{path}[1]")),
                    format!("link {} joins {a} to itself", i + 1),
                    "a link's two ends must be different interfaces".to_string(),
                );
                uses.push((a, format!("{path}[0]"), Use::Link));
                continue;
            }
            uses.push((a, format!("{path}[0]"), Use::Link));
            uses.push((b, format!("{path}[1]"), Use::Link));
        }
        for (ep, path) in &self.spans.orphan_endpoints {
            uses.push((ep, path.clone(), Use::Link));
        }
        for (name, bridge) in &self.topo.bridges {
            for (j, ep) in bridge.members.iter().enumerate() {
                uses.push((ep, format!("bridges.{name}.members[{j}]"), Use::Bridge));
            }
        }
        // File order, so that "wired twice" points at the second use (each position looked up
        // once: a walk of the file's tree per use).
        let mut uses: Vec<(Pos, &Endpoint, Use)> = uses
            .into_iter()
            .map(|(ep, path, kind)| (self.spans.value(&path), ep, kind))
            .collect();
        uses.sort_by_key(|(pos, ..)| *pos);
        let mut first: HashMap<&Endpoint, Pos> = HashMap::new();
        for (pos, ep, kind) in uses {
            if !self.endpoint(ep, pos, kind) {
                continue;
            }
            match first.get(ep) {
                Some(at) => self.error(
                    pos,
                    format!("interface {ep} is wired twice"),
                    format!(
                        "it is already wired at line {}, column {}; an interface belongs to \
                         one link or bridge only",
                        at.line, at.column
                    ),
                ),
                None => {
                    first.insert(ep, pos);
                }
            }
        }
        first.into_keys().cloned().collect()
    }

    /// Checks one endpoint on its own; false when it names nothing that can be wired.
    fn endpoint(&mut self, ep: &Endpoint, pos: Pos, kind: Use) -> bool {
        if ep.iface == "lo" {
            self.error(
                pos,
                format!("endpoint {ep} is a loopback interface"),
                "'lo' exists in every node and cannot be wired; use another interface name"
                    .to_string(),
            );
            return false;
        }
        if ep.is_host() {
            if kind == Use::Bridge {
                self.error(
                    pos,
                    format!("bridge member {ep} is in the host namespace"),
                    "bridges join lab nodes; connect the host to a node with a link".to_string(),
                );
                return false;
            }
            return true;
        }
        if !self.topo.nodes.contains_key(&ep.node) {
            let known = self.topo.nodes.keys().map(String::as_str);
            let hint = match did_you_mean(&ep.node, known) {
                Some(s) => format!("did you mean '{s}'? declare the node under 'nodes:'"),
                None => "declare the node under 'nodes:', or fix the name".to_string(),
            };
            self.error(
                pos,
                format!("endpoint {ep} names unknown node '{}'", ep.node),
                hint,
            );
            return false;
        }
        true
    }

    fn unwired(&mut self, name: &str, node: &Node, wired: &BTreeSet<Endpoint>) {
        for iface in node.interfaces.keys() {
            let ep = Endpoint {
                node: name.to_string(),
                iface: iface.clone(),
            };
            // A badly named interface already has its diagnostic.
            let bad_name = ifname_problem("interface", iface).is_some();
            if iface == "lo" || bad_name || wired.contains(&ep) {
                continue;
            }
            self.error(
                self.spans.key(&format!("nodes.{name}.interfaces.{iface}")),
                format!("interface {ep} is configured but not wired"),
                format!("add a link or a bridge member '{ep}', or remove the interface"),
            );
        }
    }

    // ---- hosts -------------------------------------------------------------------------

    /// The hosts' addresses: one each, all of one family; an IPv6 underlay carries 1280
    /// bytes at least.
    fn hosts(&mut self) {
        let mut hosts: Vec<(Pos, &str, &crate::spec::Host)> = (self.topo.hosts.iter())
            .map(|(name, h)| {
                (
                    self.spans.value(&format!("hosts.{name}.address")),
                    name.as_str(),
                    h,
                )
            })
            .collect();
        hosts.sort_by_key(|(pos, ..)| *pos);
        let mut seen: HashMap<IpAddr, (Pos, &str)> = HashMap::new();
        let mut first: Option<(&str, IpAddr)> = None;
        for (pos, name, host) in hosts {
            let ip = host.address;
            if let Some((at, other)) = seen.get(&ip) {
                self.error(
                    pos,
                    format!("host {name} has the address {ip} of host {other}"),
                    format!(
                        "it is already given at line {}, column {}; every host has an address \
                         of its own",
                        at.line, at.column
                    ),
                );
                continue;
            }
            seen.insert(ip, (pos, name));
            match first {
                None => first = Some((name, ip)),
                Some((other, theirs)) if theirs.is_ipv4() != ip.is_ipv4() => self.error(
                    pos,
                    format!(
                        "host {name}'s address {ip} is {}, host {other}'s is {}",
                        family_name(ip.is_ipv4()),
                        family_name(theirs.is_ipv4())
                    ),
                    "the hosts of a lab reach each other over one IP family: give every host \
                     an IPv4 address, or every host an IPv6 one"
                        .to_string(),
                ),
                Some(_) => {}
            }
            if ip.is_ipv6() && host.mtu < 1280 {
                self.error(
                    self.spans.value(&format!("hosts.{name}.mtu")),
                    format!("host {name}'s mtu {} is below 1280", host.mtu),
                    "an IPv6 network carries at least 1280 bytes: give 1280 or more".to_string(),
                );
            }
        }
    }

    /// With `hosts:`, every node is on one of them; without, no node names one.
    fn placement(&mut self) {
        let t = self.topo;
        let declared = || {
            t.hosts
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, node) in &t.nodes {
            match &node.host {
                // The messages name no node: a `host:` of a group is reported once.
                Some(host) if t.hosts.is_empty() => self.error(
                    self.spans.value(&format!("nodes.{name}.host")),
                    format!("'host: {host}' in a lab without 'hosts:'"),
                    "declare the machines the lab spans under 'hosts:' at the top level \
                     (e.g. 'hosts: {left: {address: 198.51.100.1}}'), or remove 'host:'"
                        .to_string(),
                ),
                Some(host) if !t.hosts.contains_key(host) => {
                    let near = did_you_mean(host, t.hosts.keys().map(String::as_str))
                        .map(|h| format!("did you mean '{h}'? "))
                        .unwrap_or_default();
                    self.error(
                        self.spans.value(&format!("nodes.{name}.host")),
                        format!("host '{host}' is not declared under 'hosts:'"),
                        format!("{near}hosts: {}", declared()),
                    );
                }
                None if !t.hosts.is_empty() => self.error(
                    self.spans.key(&format!("nodes.{name}")),
                    format!("node {name} is on no host"),
                    format!(
                        "the lab spans hosts {}: add 'host: NAME' to the node or to its group",
                        declared()
                    ),
                ),
                _ => {}
            }
        }
        // A bridge across hosts has a VXLAN port in the bridge namespace, beside the bridges.
        let tunnels = hosts::tunnels(t);
        for name in tunnels.bridges.keys() {
            let port = crate::plan::names::bridge_vxlan_port(name);
            if t.bridges.contains_key(&port) {
                self.error(
                    self.spans.key(&format!("bridges.{port}")),
                    format!("bridge {port} has the name of bridge {name}'s tunnel port"),
                    format!(
                        "bridge {name} spans hosts, and its VXLAN port beside the bridges is \
                         named {port}: rename bridge {port}"
                    ),
                );
            }
        }
    }

    /// A VNI names one tunnel: declared once, and only on a link or bridge between hosts.
    fn vnis(&mut self) {
        let t = self.topo;
        let mut declared: Vec<(Pos, u32, String)> = Vec::new();
        for (i, link) in t.links.iter().enumerate() {
            let Some(vni) = link.vni else { continue };
            let pos = self.spans.value(&format!("links[{i}].vni"));
            declared.push((pos, vni, format!("link {}", i + 1)));
            if hosts::crossing(t, link).is_none() {
                let why = if t.hosts.is_empty() {
                    "the lab has no 'hosts:'"
                } else {
                    "both its ends are on one host"
                };
                self.error(
                    pos,
                    format!("link {} has a vni, but {why}", i + 1),
                    "a vni names the tunnel of a link between two hosts; a link on one host is \
                     a veth pair: remove 'vni'"
                        .to_string(),
                );
            }
        }
        for (name, bridge) in &t.bridges {
            let Some(vni) = bridge.vni else { continue };
            let pos = self.spans.value(&format!("bridges.{name}.vni"));
            declared.push((pos, vni, format!("bridge {name}")));
            if hosts::bridge_hosts(t, bridge).len() < 2 {
                let why = if t.hosts.is_empty() {
                    "the lab has no 'hosts:'"
                } else {
                    "all its members are on one host"
                };
                self.error(
                    pos,
                    format!("bridge {name} has a vni, but {why}"),
                    "a vni names the tunnel of a bridge with members on several hosts: remove \
                     'vni'"
                        .to_string(),
                );
            }
        }
        declared.sort_by_key(|(pos, ..)| *pos);
        let mut seen: HashMap<u32, (Pos, String)> = HashMap::new();
        for (pos, vni, what) in declared {
            match seen.get(&vni) {
                Some((at, first)) => self.error(
                    pos,
                    format!("vni {vni} of {what} is also the vni of {first}"),
                    format!(
                        "it is already declared at line {}, column {}; every link and bridge \
                         between hosts needs a vni of its own",
                        at.line, at.column
                    ),
                ),
                None => {
                    seen.insert(vni, (pos, what));
                }
            }
        }
    }

    /// A tunnel carries at most its hosts' smallest underlay MTU less the encapsulation: a
    /// link, bridge or interface of one that asks for more is refused.
    fn tunnel_mtus(&mut self) {
        let t = self.topo;
        let tunnels = hosts::tunnels(t);
        for (i, tunnel) in &tunnels.links {
            let Some(link) = t.links.get(*i) else {
                continue;
            };
            let what = format!("link {}", i + 1);
            if let Some(mtu) = link.mtu {
                let pos = self.spans.value(&format!("links[{i}].mtu"));
                self.tunnel_mtu(pos, mtu, &format!("mtu {mtu} of {what}"), tunnel);
            }
            for ep in &link.endpoints {
                self.end_mtu(ep, &what, tunnel);
            }
        }
        for (name, tunnel) in &tunnels.bridges {
            let Some(bridge) = t.bridges.get(name) else {
                continue;
            };
            let what = format!("bridge {name}");
            if let Some(mtu) = bridge.mtu {
                let pos = self.spans.value(&format!("bridges.{name}.mtu"));
                self.tunnel_mtu(pos, mtu, &format!("mtu {mtu} of {what}"), tunnel);
            }
            for ep in &bridge.members {
                self.end_mtu(ep, &what, tunnel);
            }
        }
    }

    /// The MTU an interface of a tunnelled link or bridge declares.
    fn end_mtu(&mut self, ep: &Endpoint, what: &str, tunnel: &hosts::Tunnel) {
        let declared = (self.topo.nodes.get(&ep.node))
            .and_then(|n| n.interfaces.get(&ep.iface))
            .and_then(|i| i.mtu);
        if let Some(mtu) = declared {
            let path = format!("nodes.{}.interfaces.{}.mtu", ep.node, ep.iface);
            let pos = self.spans.value(&path);
            self.tunnel_mtu(pos, mtu, &format!("mtu {mtu} of {ep} (on {what})"), tunnel);
        }
    }

    fn tunnel_mtu(&mut self, pos: Pos, mtu: u32, what: &str, tunnel: &hosts::Tunnel) {
        if mtu <= tunnel.mtu {
            return;
        }
        let t = self.topo;
        let hosts: Vec<(&String, &crate::spec::Host)> = (tunnel.hosts.iter())
            .filter_map(|h| t.hosts.get_key_value(h))
            .collect();
        let Some((name, host)) = hosts.iter().min_by_key(|(_, h)| h.mtu) else {
            return;
        };
        let v6 = hosts.iter().any(|(_, h)| h.address.is_ipv6());
        let overhead = if v6 {
            hosts::OVERHEAD_IPV6
        } else {
            hosts::OVERHEAD_IPV4
        };
        self.error(
            pos,
            format!(
                "{what} is more than its tunnel between hosts {} carries ({})",
                tunnel.hosts.join(", "),
                tunnel.mtu
            ),
            format!(
                "host {name}'s underlay MTU is {}, and VXLAN over {} takes {overhead} bytes of \
                 it: give at most {}, or leave the mtu out to get that",
                host.mtu,
                family_name(!v6),
                tunnel.mtu
            ),
        );
    }

    // ---- addresses and routes --------------------------------------------------------

    fn duplicate_addresses(&mut self, name: &str, node: &Node) {
        let ips = node.interfaces.values().flat_map(|c| &c.addresses);
        if !repeats(ips.map(|net| net.ip())) {
            return;
        }
        let mut all: Vec<(Pos, IpAddr)> = Vec::new();
        for (iface, cfg) in &node.interfaces {
            for (j, net) in cfg.addresses.iter().enumerate() {
                let path = format!("nodes.{name}.interfaces.{iface}.addresses[{j}]");
                all.push((self.spans.value(&path), net.ip()));
            }
        }
        all.sort();
        let mut seen: HashMap<IpAddr, Pos> = HashMap::new();
        for (pos, ip) in all {
            if let Some(first) = seen.get(&ip) {
                let hint = format!(
                    "it is already configured at line {}, column {}; remove one",
                    first.line, first.column
                );
                self.error(
                    pos,
                    format!("address {ip} is configured twice on node {name}"),
                    hint,
                );
            } else {
                seen.insert(ip, pos);
            }
        }
    }

    /// The interfaces of one segment (the two ends of a link, or the members of a bridge)
    /// each have addresses of their own: the same address on two of them is refused.
    fn shared_segment_addresses(&mut self) {
        let mut segments: Vec<(String, Vec<&Endpoint>)> = Vec::new();
        for (i, link) in self.topo.links.iter().enumerate() {
            segments.push((format!("link {}", i + 1), link.endpoints.iter().collect()));
        }
        for (name, bridge) in &self.topo.bridges {
            segments.push((format!("bridge {name}"), bridge.members.iter().collect()));
        }
        for (segment, members) in segments {
            let ips = (members.iter())
                .filter_map(|ep| self.topo.nodes.get(&ep.node)?.interfaces.get(&ep.iface))
                .flat_map(|cfg| cfg.addresses.iter().map(|net| net.ip()));
            if !repeats(ips) {
                continue;
            }
            let mut all: Vec<(Pos, IpAddr, &Endpoint)> = Vec::new();
            for ep in members {
                let Some(cfg) = self
                    .topo
                    .nodes
                    .get(&ep.node)
                    .and_then(|n| n.interfaces.get(&ep.iface))
                else {
                    continue;
                };
                for (j, net) in cfg.addresses.iter().enumerate() {
                    let path = format!("nodes.{}.interfaces.{}.addresses[{j}]", ep.node, ep.iface);
                    all.push((self.spans.value(&path), net.ip(), ep));
                }
            }
            all.sort();
            let mut seen: HashMap<IpAddr, (Pos, &Endpoint)> = HashMap::new();
            for (pos, ip, ep) in all {
                match seen.get(&ip) {
                    // Twice on one node is reported as such.
                    Some((_, first)) if first.node == ep.node => {}
                    Some((at, first)) => self.error(
                        pos,
                        format!(
                            "address {ip} is on both {first} and {ep}, on one segment ({segment})"
                        ),
                        format!(
                            "it is already configured at line {}, column {}; every interface of a \
                             link or bridge needs an address of its own",
                            at.line, at.column
                        ),
                    ),
                    None => {
                        seen.insert(ip, (pos, ep));
                    }
                }
            }
        }
    }

    fn routes(&mut self, name: &str, node: &Node, wired: &BTreeSet<Endpoint>) {
        let mut ifaces: BTreeSet<&str> = node.interfaces.keys().map(String::as_str).collect();
        ifaces.insert("lo");
        let from = Endpoint {
            node: name.to_string(),
            iface: String::new(),
        };
        let own = wired.range(from..).take_while(|e| e.node == name);
        ifaces.extend(own.map(|e| e.iface.as_str()));
        let nets: Vec<IpNetwork> = node
            .interfaces
            .values()
            .flat_map(|i| i.addresses.iter().copied())
            .collect();
        let check_subnets = !self.spans.tainted_nodes.contains(name);
        let mut seen = SeenRoutes::new();
        for (i, route) in node.routes.iter().enumerate() {
            let path = format!("nodes.{name}.routes[{i}]");
            self.route(
                name,
                route,
                &path,
                &ifaces,
                check_subnets.then_some(&nets[..]),
            );
            self.duplicate_route(route, path, &mut seen);
        }
    }

    fn route(
        &mut self,
        name: &str,
        route: &Route,
        path: &str,
        ifaces: &BTreeSet<&str>,
        nets: Option<&[IpNetwork]>,
    ) {
        let to = dest_text(route);
        if route.via.is_empty() && route.dev.is_none() {
            self.error(
                self.spans.value(path),
                format!("route to {to} on node {name} has neither 'via' nor 'dev'"),
                "add 'via: <gateway>' or 'dev: <interface>'".to_string(),
            );
        }
        if let Some(dev) = &route.dev {
            if !ifaces.contains(dev.as_str()) {
                let list: Vec<&str> = ifaces.iter().copied().collect();
                self.error(
                    self.spans.value(&format!("{path}.dev")),
                    format!("route device '{dev}' is not an interface of node {name}"),
                    format!("interfaces of {name}: {}", list.join(", ")),
                );
            }
        }
        // `default` takes its family from its first gateway. A `default` route with only
        // `dev` is the IPv4 default route; an IPv6 one is written `to: ::/0`.
        let family = match route.to {
            RouteDest::Prefix(net) => Some(net.is_ipv4()),
            RouteDest::Default => route.via.first().map(IpAddr::is_ipv4),
        };
        for (j, gw) in route.via.iter().enumerate() {
            let at = Via { route: path, j };
            if family != Some(gw.is_ipv4()) {
                self.error(
                    at.pos(self.spans),
                    format!(
                        "gateway {gw} is {} but the route to {to} is {}",
                        family_name(gw.is_ipv4()),
                        family_name(!gw.is_ipv4())
                    ),
                    "all gateways of a route have the family of its destination".to_string(),
                );
                continue;
            }
            self.gateway(name, *gw, route, at, nets);
        }
    }

    fn gateway(
        &mut self,
        name: &str,
        gw: IpAddr,
        route: &Route,
        at: Via,
        nets: Option<&[IpNetwork]>,
    ) {
        if let IpAddr::V6(v6) = gw {
            if v6.segments()[0] & 0xffc0 == 0xfe80 {
                if route.dev.is_none() {
                    self.error(
                        at.pos(self.spans),
                        format!("link-local gateway {gw} needs 'dev'"),
                        "add 'dev: <interface>' to say which link the gateway is on".to_string(),
                    );
                }
                return;
            }
        }
        let Some(nets) = nets else {
            return;
        };
        if nets.iter().any(|n| n.contains(gw) && n.ip() != gw) {
            return;
        }
        if nets.iter().any(|n| n.ip() == gw) {
            self.error(
                at.pos(self.spans),
                format!("gateway {gw} is an address of node {name} itself"),
                "the gateway is the neighbour's address on a shared subnet".to_string(),
            );
            return;
        }
        let subnets: Vec<String> = nets
            .iter()
            .filter(|n| n.is_ipv4() == gw.is_ipv4())
            .map(|n| format!("{}/{}", n.network(), n.prefix()))
            .collect();
        let known = if subnets.is_empty() {
            format!("node {name} has no {} address", family_name(gw.is_ipv4()))
        } else {
            format!("subnets of {name}: {}", subnets.join(", "))
        };
        self.error(
            at.pos(self.spans),
            format!("gateway {gw} is not on a connected subnet of node {name}"),
            format!("{known}; add an address in the gateway's subnet, or fix the gateway"),
        );
    }

    /// A route of a node to the same destination, of the same family and metric, as an
    /// earlier one (`seen`: each such triple, with the path of its first route).
    fn duplicate_route(&mut self, route: &Route, path: String, seen: &mut SeenRoutes) {
        let family = match route.to {
            RouteDest::Prefix(net) => net.is_ipv4(),
            // `default` takes its family from the first gateway; with only `dev` it is the
            // IPv4 default route (write `to: ::/0` for an IPv6 default through a device).
            RouteDest::Default => route.via.first().is_none_or(IpAddr::is_ipv4),
        };
        let dest = match route.to {
            RouteDest::Default => None,
            RouteDest::Prefix(net) => Some((net.ip(), net.prefix())),
        };
        match seen.entry((dest, family, route.metric)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = self.spans.value(&format!("{}.to", first.get()));
                let hint = format!(
                    "a route to the same destination with the same metric is at line {}, column \
                     {}; merge them (several gateways: 'via: [a, b]') or set different metrics",
                    first.line, first.column
                );
                self.error(
                    self.spans.value(&format!("{path}.to")),
                    format!("duplicate route to {}", dest_text(route)),
                    hint,
                );
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(path);
            }
        }
    }

    // ---- services and private directories ---------------------------------------------

    fn services(&mut self, name: &str, node: &Node) {
        for (svc, spec) in &node.services {
            let path = format!("nodes.{name}.services.{svc}");
            for (i, dep) in spec.after.iter().enumerate() {
                if dep == svc {
                    self.error(
                        self.spans.value(&format!("{path}.after[{i}]")),
                        format!("service {svc} of node {name} is after itself"),
                        "remove it from its own 'after' list".to_string(),
                    );
                } else if !node.services.contains_key(dep) {
                    let hint = match did_you_mean(dep, node.services.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean '{s}'? "),
                        None => String::new(),
                    };
                    self.error(
                        self.spans.value(&format!("{path}.after[{i}]")),
                        format!("service {svc} of node {name} is after unknown service '{dep}'"),
                        format!("{hint}'after' names services of the same node"),
                    );
                }
            }
            match (spec.kind, &spec.pid_file) {
                (ServiceKind::Forking, None) => self.error(
                    self.spans.value(&format!("{path}.type")),
                    format!("forking service {svc} of node {name} has no pid_file"),
                    "name the file its daemon writes its PID to, e.g. 'pid_file: \
                     /run/frr/watchfrr.pid'"
                        .to_string(),
                ),
                (ServiceKind::Simple | ServiceKind::Oneshot, Some(_)) => self.error(
                    self.spans.key(&format!("{path}.pid_file")),
                    format!("pid_file of service {svc} of node {name}, which is not forking"),
                    "a pid_file names the daemon of a 'type: forking' service; remove it, or \
                     set the type"
                        .to_string(),
                ),
                _ => {}
            }
            if spec.restart == Restart::OnFailure && spec.kind != ServiceKind::Simple {
                self.error(
                    self.spans.value(&format!("{path}.restart")),
                    format!(
                        "restart: on-failure on {} service {svc} of node {name}",
                        spec.kind.as_str()
                    ),
                    "only simple services (the command is the daemon) are restarted".to_string(),
                );
            }
        }
        if let Some(cycle) = after_cycle(node) {
            let first = cycle.first().map(String::as_str).unwrap_or_default();
            self.error(
                self.spans
                    .key(&format!("nodes.{name}.services.{first}.after")),
                format!(
                    "the services of node {name} wait for each other: {}",
                    cycle.join(" -> ")
                ),
                "break the cycle: 'after' orders services, so it cannot go round".to_string(),
            );
        }
    }

    fn dirs(&mut self, name: &str, node: &Node) {
        for (target, dir) in &node.dirs {
            let path = format!("nodes.{name}.dirs.{}", target.display());
            let reserved = ["/proc", "/sys", "/dev"]
                .iter()
                .find(|r| target.starts_with(r));
            if let Some(r) = reserved {
                self.error(
                    self.spans.key(&path),
                    format!("private directory {} is under {r}", target.display()),
                    format!("{r} is the node's own; pick a directory elsewhere"),
                );
            } else if ["/tmp", "/run"]
                .iter()
                .any(|p| target.as_path() == Path::new(p))
            {
                self.error(
                    self.spans.key(&path),
                    format!(
                        "private directory {} is a tmpfs of the node",
                        target.display()
                    ),
                    "the node's /tmp and /run are private already; declare a directory under \
                     them, e.g. /run/frr"
                        .to_string(),
                );
            }
            let private = target.starts_with("/tmp") || target.starts_with("/run");
            if node.rootfs.is_none() && !private && reserved.is_none() && !self.world.is_dir(target)
            {
                self.error(
                    self.spans.key(&path),
                    format!(
                        "private directory {} does not exist on the host",
                        target.display()
                    ),
                    "a node without rootfs sees the host's tree read-only, so the directory \
                     must exist there to be mounted on: create it on the host, or use a path \
                     under /run or /tmp (made in the node)"
                        .to_string(),
                );
            }
            if let Some(b) = node.binds.iter().find(|b| b.node == *target) {
                self.error(
                    self.spans.key(&path),
                    format!(
                        "{} is both a bind target and a private directory",
                        target.display()
                    ),
                    format!(
                        "keep one: the bind of {} or the private directory",
                        b.host.display()
                    ),
                );
            }
            if let Some(from) = &dir.from {
                if !self.world.is_dir(from) {
                    self.error(
                        self.spans.value(&format!("{path}.from")),
                        format!("'{}' is not an existing directory", from.display()),
                        "a private directory starts as a copy of a host directory (relative \
                         paths start from the topology file's directory)"
                            .to_string(),
                    );
                }
            }
        }
    }

    // ---- host paths ------------------------------------------------------------------

    fn host_paths(&mut self, name: &str, node: &Node) {
        for (j, bind) in node.binds.iter().enumerate() {
            if !self.world.exists(&bind.host) {
                self.error(
                    self.spans.value(&format!("nodes.{name}.binds[{j}]")),
                    format!("bind source '{}' does not exist", bind.host.display()),
                    "create it, or fix the path (relative paths start from the topology \
                     file's directory)"
                        .to_string(),
                );
            }
        }
        if let Some(rootfs) = &node.rootfs {
            if !self.world.is_dir(rootfs) {
                self.error(
                    self.spans.value(&format!("nodes.{name}.rootfs")),
                    format!("rootfs '{}' is not an existing directory", rootfs.display()),
                    "point it at a directory holding the node's root filesystem (relative \
                     paths start from the topology file's directory)"
                        .to_string(),
                );
            } else if self.world.is_root(rootfs) {
                self.error(
                    self.spans.value(&format!("nodes.{name}.rootfs")),
                    format!("rootfs '{}' is the host's root directory", rootfs.display()),
                    "a rootfs is the node's own tree, writable by node root: point it at a \
                     directory holding only the node's files, or leave rootfs out to give \
                     the node the host's tree read-only"
                        .to_string(),
                );
            } else {
                // `up` mounts the node's own /proc, /tmp and /run on these, and whatever
                // enters the node its own /sys.
                let missing: Vec<&str> = ROOTFS_DIRS
                    .iter()
                    .copied()
                    .filter(|d| !self.world.is_dir(&rootfs.join(d)))
                    .collect();
                if !missing.is_empty() {
                    let list: Vec<String> = missing.iter().map(|d| format!("/{d}")).collect();
                    self.error(
                        self.spans.value(&format!("nodes.{name}.rootfs")),
                        format!(
                            "rootfs '{}' has no directory {}",
                            rootfs.display(),
                            list.join(", ")
                        ),
                        format!(
                            "the node's /proc, /sys, /tmp and /run are mounted on directories \
                             of the rootfs: create them (mkdir {})",
                            missing
                                .iter()
                                .map(|d| rootfs.join(d).display().to_string())
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    );
                }
            }
        }
        if let Some(Seccomp::Profile(p)) = &node.seccomp {
            self.seccomp_profile(p, &format!("nodes.{name}.seccomp"));
        }
        if let Some(fs) = &node.filesystem {
            // Landlock rules only grant access: a read-only path inside a writable one could
            // not be enforced, so it is refused rather than silently writable.
            for (i, ro) in fs.read_only.iter().enumerate() {
                if let Some(rw) = fs.read_write.iter().find(|rw| ro.starts_with(rw)) {
                    self.error(
                        self.spans
                            .value(&format!("nodes.{name}.filesystem.read_only[{i}]")),
                        format!(
                            "read_only path '{}' is inside read_write path '{}'",
                            ro.display(),
                            rw.display()
                        ),
                        "Landlock can only add access: list narrower read_write paths instead"
                            .to_string(),
                    );
                }
            }
        }
    }

    /// The message names no node, so that a profile inherited from `defaults` by many nodes
    /// gives one diagnostic (identical diagnostics are merged).
    fn seccomp_profile(&mut self, profile: &Path, path: &str) {
        if self.world.is_file(profile) {
            // What topo cannot honour is refused here, before anything is made.
            let world = self.world;
            let checked = self
                .profiles
                .entry(profile.to_path_buf())
                .or_insert_with(|| world.check_seccomp_profile(profile))
                .clone();
            if let Err(message) = checked {
                self.error(
                    self.spans.value(path),
                    message,
                    "topo reads the OCI/Docker profile format without includes/excludes, flags, \
                     listeners or foreign architectures (docs/security.md)"
                        .to_string(),
                );
            }
            return;
        }
        self.error(
            self.spans.value(path),
            format!(
                "seccomp '{}' is neither 'default', 'unconfined' nor an existing file",
                profile.display()
            ),
            "write 'default', 'unconfined', or the path of a JSON profile (relative paths \
             start from the topology file's directory)"
                .to_string(),
        );
    }
}

/// The directories a node's own root must have: mount points of its own file systems.
const ROOTFS_DIRS: [&str; 4] = ["proc", "sys", "tmp", "run"];

/// The routes of a node seen so far, by destination (address and prefix length; none for
/// `default`), family and metric: the path of the first.
type SeenRoutes = HashMap<(Option<(IpAddr, u8)>, bool, Option<u32>), String>;

/// Gateway `j` of the route at path `route`; its position is looked up only for a diagnostic.
#[derive(Clone, Copy)]
struct Via<'a> {
    route: &'a str,
    j: usize,
}

impl Via<'_> {
    fn pos(self, spans: &Spans) -> Pos {
        spans.value(&format!("{}.via[{}]", self.route, self.j))
    }
}

/// Whether any value comes twice: positions in the file are looked up only then.
fn repeats<T: std::hash::Hash + Eq>(mut values: impl Iterator<Item = T>) -> bool {
    let mut seen = std::collections::HashSet::new();
    values.any(|v| !seen.insert(v))
}

fn dest_text(route: &Route) -> String {
    match route.to {
        RouteDest::Default => "default".to_string(),
        RouteDest::Prefix(net) => format!("{}/{}", net.ip(), net.prefix()),
    }
}

fn family_name(ipv4: bool) -> &'static str {
    if ipv4 {
        "IPv4"
    } else {
        "IPv6"
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::path::Path;

    use crate::spec::{parse_str, parse_with, World};

    /// A host with no files at all, whose profile checks are counted.
    #[derive(Default)]
    struct Empty {
        checks: Cell<usize>,
        files: bool,
    }

    impl World for Empty {
        fn exists(&self, _: &Path) -> bool {
            false
        }
        fn is_dir(&self, _: &Path) -> bool {
            false
        }
        fn is_file(&self, _: &Path) -> bool {
            self.files
        }
        fn check_seccomp_profile(&self, path: &Path) -> Result<(), String> {
            self.checks.set(self.checks.get() + 1);
            Err(format!("profile {} sets 'flags'", path.display()))
        }
    }

    const TEXT: &str = "name: lab
defaults: {seccomp: ./p.json}
nodes:
  a: {binds: ['./src:/etc/frr'], rootfs: ./root}
  b: {}
";

    #[test]
    fn host_paths_are_asked_of_the_world() {
        let file = Path::new("/labs/lab.yaml");
        let world = Empty::default();
        let d = parse_with(TEXT, file, &world).unwrap_err();
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "seccomp '/labs/p.json' is neither 'default', 'unconfined' nor an existing file",
                "bind source '/labs/src' does not exist",
                "rootfs '/labs/root' is not an existing directory",
            ]
        );
        assert_eq!(world.checks.get(), 0);
        assert!(parse_str(TEXT, file).is_ok());
    }

    #[test]
    fn an_error_in_a_value_from_a_group_is_at_the_group() {
        let text = "name: lab
groups:
  frr:
    binds: ['./frr:/etc/frr']
    routes: [{to: default, via: 10.9.9.9}]
nodes:
  r1:
    group: frr
    interfaces: {eth0: {addresses: [10.0.0.1/24]}}
  r2: {group: frr, binds: ['./own:/etc/frr']}
links: [{endpoints: [r1:eth0, r2:eth0]}]
";
        let d = parse_with(text, Path::new("/labs/lab.yaml"), &Empty::default()).unwrap_err();
        let got: Vec<(usize, usize, &str)> = d
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (4, 13, "bind source '/labs/frr' does not exist"),
                (
                    5,
                    33,
                    "gateway 10.9.9.9 is not on a connected subnet of node r1"
                ),
                (
                    5,
                    33,
                    "gateway 10.9.9.9 is not on a connected subnet of node r2"
                ),
                (10, 28, "bind source '/labs/own' does not exist"),
            ],
            "{d}"
        );
    }

    #[test]
    fn a_shared_profile_is_checked_once() {
        let world = Empty {
            files: true,
            ..Empty::default()
        };
        let text = "name: lab\ndefaults: {seccomp: ./p.json}\nnodes: {a: {}, b: {}}\n";
        let d = parse_with(text, Path::new("/labs/lab.yaml"), &world).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!(d.0[0].message, "profile /labs/p.json sets 'flags'");
        assert_eq!(world.checks.get(), 1);
    }

    const WAN: &str = "name: wan
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2}
groups:
  core: {host: left}
nodes:
  r1: {group: core}
  r2: {host: right}
links:
  - {endpoints: [r1:eth1, r2:eth1], vni: 1001}
bridges:
  lan: {members: [r1:eth2, r2:eth2]}
";

    fn refused(text: &str) -> Vec<(usize, usize, String, String)> {
        match parse_str(text, Path::new("/labs/wan.yaml")) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(d) => d
                .iter()
                .map(|d| {
                    let hint = d.hint.clone().unwrap_or_default();
                    (d.line, d.column, d.message.clone(), hint)
                })
                .collect(),
        }
    }

    #[test]
    fn a_lab_on_hosts_is_accepted() {
        let t = parse_str(WAN, Path::new("/labs/wan.yaml")).unwrap();
        assert_eq!(t.nodes["r1"].host.as_deref(), Some("left"));
        assert_eq!(t.links[0].vni, Some(1001));
        assert_eq!(t.vxlan.port, 14789);
        assert_eq!(t.hosts["right"].mtu, 1500);
    }

    #[test]
    fn a_node_on_an_unknown_host_is_refused_with_the_declared_ones() {
        let got = refused(&WAN.replace("host: right", "host: rihgt"));
        assert_eq!(got.len(), 1, "{got:?}");
        let (line, column, message, hint) = &got[0];
        assert_eq!((*line, *column), (9, 14));
        assert_eq!(message, "host 'rihgt' is not declared under 'hosts:'");
        assert_eq!(hint, "did you mean 'right'? hosts: left, right");
        // Through a group: at the group's text, once for all its nodes.
        let text = WAN
            .replace("core: {host: left}", "core: {host: lfet}")
            .replace(
                "  r2: {host: right}",
                "  r2: {host: right}\n  r3: {group: core}",
            );
        let got = refused(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (6, 16));
        // Without `hosts:`, any `host:` is refused.
        let text = "name: one\nnodes: {a: {host: left}}\n";
        let got = refused(text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].2.contains("in a lab without 'hosts:'"), "{got:?}");
    }

    #[test]
    fn repeats_are_refused_at_the_second_naming_the_first() {
        // Positions are looked up only once a repeat is found: the diagnostic and its hint
        // still point at the second and the first, in file order.
        let text = "name: lab
nodes:
  a:
    interfaces:
      eth1: {addresses: [10.0.0.1/24]}
      eth0: {addresses: [10.0.0.1/24, 10.1.0.1/24]}
    routes:
      - {to: 10.9.0.0/16, via: 10.0.0.2}
      - {to: 10.9.0.0/16, via: [10.0.0.3, 10.0.0.1, 10.8.0.1]}
  b: {interfaces: {eth0: {addresses: [10.1.0.1/24]}}}
links:
  - endpoints: [a:eth0, b:eth0]
  - endpoints: [a:eth1, b:eth0]
";
        let got = refused(text);
        let at = |m: &str| {
            let found = got.iter().find(|g| g.2.contains(m));
            found.map(|(l, c, _, h)| (*l, *c, h.clone()))
        };
        let (l, c, h) = at("address 10.0.0.1 is configured twice").expect("twice");
        assert_eq!((l, c), (6, 26));
        assert!(
            h.starts_with("it is already configured at line 5, column 26;"),
            "{h}"
        );
        let (l, c, h) = at("address 10.1.0.1 is on both a:eth0 and b:eth0").expect("segment");
        assert_eq!((l, c), (10, 39));
        assert!(
            h.starts_with("it is already configured at line 6, column 39;"),
            "{h}"
        );
        let (l, c, h) = at("duplicate route to 10.9.0.0/16").expect("route");
        assert_eq!((l, c), (9, 14));
        assert!(h.contains("is at line 8, column 14;"), "{h}");
        let (l, c, _) = at("gateway 10.0.0.1 is an address of node a").expect("own");
        assert_eq!((l, c), (9, 43));
        let (l, c, _) = at("gateway 10.8.0.1 is not on a connected subnet").expect("subnet");
        assert_eq!((l, c), (9, 53));
        let (l, c, h) = at("interface b:eth0 is wired twice").expect("wired");
        assert_eq!((l, c), (13, 25));
        assert!(
            h.starts_with("it is already wired at line 12, column 25;"),
            "{h}"
        );
        assert_eq!(got.len(), 6, "{got:?}");
    }

    #[test]
    fn a_vni_declared_twice_is_refused_at_the_second_naming_the_first() {
        let text = WAN.replace(
            "lan: {members: [r1:eth2, r2:eth2]}",
            "lan: {members: [r1:eth2, r2:eth2], vni: 1001}",
        );
        let got = refused(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        let (line, column, message, hint) = &got[0];
        assert_eq!((*line, *column), (13, 43));
        assert_eq!(message, "vni 1001 of bridge lan is also the vni of link 1");
        assert!(
            hint.starts_with("it is already declared at line 11, column 42;"),
            "{hint}"
        );
    }

    #[test]
    fn the_mtu_of_a_tunnel_is_checked_against_the_underlay() {
        // 1450 fits a 1500 IPv4 underlay; 1451 does not.
        let fits = WAN.replace("vni: 1001}", "vni: 1001, mtu: 1450}");
        assert!(parse_str(&fits, Path::new("/labs/wan.yaml")).is_ok());
        let got = refused(&WAN.replace("vni: 1001}", "vni: 1001, mtu: 1451}"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].3.contains("underlay MTU is 1500"), "{got:?}");
        assert!(got[0].3.contains("takes 50 bytes"), "{got:?}");
        // Over IPv6 the overhead is 70.
        let v6 = WAN
            .replace("198.51.100.1", "'2001:db8::1'")
            .replace("198.51.100.2", "'2001:db8::2'");
        assert!(parse_str(
            &v6.replace("vni: 1001}", "vni: 1001, mtu: 1430}"),
            Path::new("x.yaml")
        )
        .is_ok());
        let got = refused(&v6.replace("vni: 1001}", "vni: 1001, mtu: 1431}"));
        assert!(got[0].3.contains("takes 70 bytes"), "{got:?}");
    }

    #[test]
    fn a_bridge_named_like_a_tunnel_port_is_refused() {
        let text = WAN.replace(
            "  lan: {members: [r1:eth2, r2:eth2]}\n",
            "  lan: {members: [r1:eth2, r2:eth2]}\n  vx-lan: {members: [r1:eth3]}\n",
        );
        let got = refused(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            got[0].2,
            "bridge vx-lan has the name of bridge lan's tunnel port"
        );
    }
}
