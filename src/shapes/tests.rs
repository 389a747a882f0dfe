//! Generated files parse without diagnostics, have the expected size, and their routes reach
//! every address of the lab from every node (checked by simulating the kernel's
//! longest-prefix-match forwarding over the parsed file).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use super::*;
use crate::spec::{self, RouteDest, Topology};

fn args(shape: Shape, ipv6: bool, bare: bool) -> GenArgs {
    GenArgs {
        shape,
        name: None,
        ipv6,
        bare,
    }
}

fn parse(g: &GenArgs) -> Topology {
    let text = match generate(g) {
        Ok(t) => t,
        Err(e) => panic!("{g:?}: {e}"),
    };
    match spec::parse_str(&text, Path::new("gen.yaml")) {
        Ok(t) => t,
        Err(d) => panic!("{g:?} does not validate:\n{d}\n--- file:\n{text}"),
    }
}

fn chain(nodes: u64) -> Shape {
    Shape::Chain { nodes }
}

fn ring(nodes: u64) -> Shape {
    Shape::Ring { nodes }
}

fn star(nodes: u64) -> Shape {
    Shape::Star { nodes }
}

fn tree(depth: u64, fanout: u64) -> Shape {
    Shape::Tree { depth, fanout }
}

fn clos(spines: u64, leaves: u64, hosts_per_leaf: u64) -> Shape {
    Shape::Clos {
        spines,
        leaves,
        hosts_per_leaf,
    }
}

// ---- a forwarding simulator ------------------------------------------------------------

/// The lab as the kernel would forward in it: who owns each address, what each interface is
/// wired to.
struct Fabric<'a> {
    topo: &'a Topology,
    owner: HashMap<IpAddr, &'a str>,
    peer: HashMap<(&'a str, &'a str), &'a str>,
}

enum Hop<'a> {
    Delivered,
    Next(Vec<&'a str>),
}

impl<'a> Fabric<'a> {
    fn new(topo: &'a Topology) -> Fabric<'a> {
        let mut owner = HashMap::new();
        for (name, node) in &topo.nodes {
            for iface in node.interfaces.values() {
                for net in &iface.addresses {
                    let before = owner.insert(net.ip(), name.as_str());
                    assert!(before.is_none(), "address {} is used twice", net.ip());
                }
            }
        }
        let mut peer = HashMap::new();
        for link in &topo.links {
            let [a, b] = &link.endpoints;
            peer.insert((a.node.as_str(), a.iface.as_str()), b.node.as_str());
            peer.insert((b.node.as_str(), b.iface.as_str()), a.node.as_str());
        }
        Fabric { topo, owner, peer }
    }

    /// The neighbour on the connected subnet of `node` that holds `addr`, if it owns `addr`.
    fn neighbour(&self, node: &str, addr: IpAddr) -> Result<&'a str, String> {
        let n = &self.topo.nodes[node];
        for (ifname, iface) in &n.interfaces {
            if ifname == "lo" || !iface.addresses.iter().any(|net| net.contains(addr)) {
                continue;
            }
            let far = self.peer[&(node, ifname.as_str())];
            return match self.owner.get(&addr) {
                Some(o) if *o == far => Ok(far),
                _ => Err(format!("{node}: {addr} is not on the far end of {ifname}")),
            };
        }
        Err(format!("{node}: {addr} is not on a connected subnet"))
    }

    /// One forwarding step at `node` towards `dst`: longest prefix match over connected
    /// subnets and static routes.
    fn step(&self, node: &str, dst: IpAddr) -> Result<Hop<'a>, String> {
        if self.owner.get(&dst) == Some(&node) {
            return Ok(Hop::Delivered);
        }
        let n = &self.topo.nodes[node];
        let mut best_connected: Option<u8> = None;
        for (ifname, iface) in &n.interfaces {
            for net in &iface.addresses {
                if ifname != "lo" && net.contains(dst) {
                    best_connected = best_connected.max(Some(net.prefix()));
                }
            }
        }
        let mut best_static: Option<(u8, &Vec<IpAddr>)> = None;
        for r in &n.routes {
            let family_v4 = r.via.first().map(IpAddr::is_ipv4);
            let len = match r.to {
                RouteDest::Default if family_v4 == Some(dst.is_ipv4()) => 0,
                RouteDest::Prefix(p) if p.contains(dst) => p.prefix(),
                _ => continue,
            };
            if let Some((l, _)) = best_static {
                assert_ne!(l, len, "{node}: two routes of /{len} match {dst}");
            }
            if best_static.is_none_or(|(l, _)| len > l) {
                best_static = Some((len, &r.via));
            }
        }
        match (best_connected, best_static) {
            (Some(c), Some((s, _))) if c == s => Err(format!(
                "{node}: a static route duplicates the connected /{c} for {dst}"
            )),
            (Some(c), s) if s.is_none_or(|(s, _)| c > s) => {
                Ok(Hop::Next(vec![self.neighbour(node, dst)?]))
            }
            (_, Some((_, via))) => {
                let next: Result<Vec<_>, _> =
                    via.iter().map(|gw| self.neighbour(node, *gw)).collect();
                Ok(Hop::Next(next?))
            }
            (_, None) => Err(format!("{node}: no route to {dst}")),
        }
    }

    /// Follows every path (all ECMP branches) from `from` to `dst`; fails on a loop, a dead
    /// end, or a gateway that is not a neighbour.
    fn reach(&self, from: &'a str, dst: IpAddr, path: &mut Vec<&'a str>) -> Result<(), String> {
        if path.contains(&from) {
            return Err(format!("loop towards {dst}: {path:?} then {from}"));
        }
        path.push(from);
        let result = match self.step(from, dst)? {
            Hop::Delivered => Ok(()),
            Hop::Next(next) => next.into_iter().try_for_each(|n| self.reach(n, dst, path)),
        };
        path.pop();
        result
    }

    /// Every node reaches every address of every other node.
    fn check_full_reachability(&self) -> usize {
        let mut checked = 0;
        for src in self.topo.nodes.keys() {
            for (dst, owner) in &self.owner {
                if owner != src {
                    if let Err(e) = self.reach(src, *dst, &mut Vec::new()) {
                        panic!("{src} -> {dst} ({owner}): {e}");
                    }
                    checked += 1;
                }
            }
        }
        checked
    }
}

fn assert_reachable(shape: Shape) {
    for ipv6 in [false, true] {
        let topo = parse(&args(shape, ipv6, false));
        let fabric = Fabric::new(&topo);
        let n = topo.nodes.len();
        // every node has a loopback and at least one link address (two with IPv6)
        let per_node = if ipv6 { 4 } else { 2 };
        assert!(fabric.owner.len() >= n * per_node, "{shape:?}: addresses");
        assert!(fabric.check_full_reachability() >= n * (n - 1));
    }
}

// ---- shapes: validity and size ---------------------------------------------------------

#[test]
fn every_shape_validates_in_every_mode() {
    let shapes = [chain(5), ring(5), star(4), tree(2, 3), clos(2, 3, 2)];
    for shape in shapes {
        for (ipv6, bare) in [(false, false), (true, false), (false, true), (true, true)] {
            let topo = parse(&args(shape, ipv6, bare));
            assert_eq!(topo.name, shape.name());
            let has_routes = topo.nodes.values().any(|n| !n.routes.is_empty());
            assert_eq!(has_routes, !bare, "{shape:?} bare={bare}");
            let forwarding = topo.defaults.sysctls.contains_key("net.ipv4.ip_forward");
            assert!(forwarding);
        }
    }
}

#[test]
fn node_and_link_counts_follow_the_shape() {
    let cases = [
        (chain(7), 7, 6),
        (ring(7), 7, 7),
        (star(6), 7, 6),
        (tree(3, 2), 15, 14),
        (tree(4, 1), 5, 4),
        (clos(2, 4, 3), 2 + 4 * 4, 2 * 4 + 4 * 3),
        (clos(3, 2, 0), 5, 6),
    ];
    for (shape, nodes, links) in cases {
        let topo = parse(&args(shape, false, false));
        assert_eq!(topo.nodes.len(), nodes, "{shape:?}: nodes");
        assert_eq!(topo.links.len(), links, "{shape:?}: links");
    }
}

#[test]
fn chain_uses_the_peer_scripts_addressing() {
    let text = generate(&args(chain(3), false, true)).unwrap_or_default();
    for line in [
        "      eth1: {addresses: [10.0.0.0/31]}",
        "      eth0: {addresses: [10.0.0.1/31]}",
        "      eth1: {addresses: [10.0.0.2/31]}",
        "      eth0: {addresses: [10.0.0.3/31]}",
        "  - {endpoints: [n0:eth1, n1:eth0]}",
        "  - {endpoints: [n1:eth1, n2:eth0]}",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // link 32768: o = 65536 -> 10.1.0.0
    assert_eq!(link_v4(65536).to_string(), "10.1.0.0");
    assert_eq!(loopback_v4(257).to_string(), "10.255.1.1");
}

#[test]
fn middle_chain_node_routes_left_by_prefix_and_right_by_default() {
    let text = generate(&args(chain(8), false, false)).unwrap_or_default();
    let n5 = text
        .split("\n  n5:\n")
        .nth(1)
        .and_then(|t| t.split("\n  n6:\n").next())
        .unwrap_or_default();
    // nodes 0..5: loopbacks 10.255.0.0/30 + 10.255.0.4/32; links 0..4: 10.0.0.0/29
    let expected = "    routes:\n\
        \x20     - {to: 10.255.0.0/30, via: 10.0.0.8}\n\
        \x20     - {to: 10.255.0.4/32, via: 10.0.0.8}\n\
        \x20     - {to: 10.0.0.0/29, via: 10.0.0.8}\n\
        \x20     - {to: default, via: 10.0.0.11}";
    assert!(n5.contains(expected), "n5 is\n{n5}");
}

// ---- shapes: full reachability ---------------------------------------------------------

#[test]
fn chain_reaches_every_address() {
    for n in 2..=10 {
        assert_reachable(chain(n));
    }
    assert_reachable(chain(33));
}

#[test]
fn ring_reaches_every_address() {
    for n in 3..=10 {
        assert_reachable(ring(n));
    }
    assert_reachable(ring(21));
}

#[test]
fn star_reaches_every_address() {
    for n in 1..=5 {
        assert_reachable(star(n));
    }
}

#[test]
fn tree_reaches_every_address() {
    for (depth, fanout) in [(1, 1), (3, 1), (1, 4), (2, 2), (2, 3), (3, 2), (4, 2)] {
        assert_reachable(tree(depth, fanout));
    }
}

#[test]
fn clos_reaches_every_address() {
    for (s, l, h) in [
        (1, 1, 0),
        (1, 1, 1),
        (2, 2, 1),
        (2, 3, 2),
        (3, 2, 0),
        (4, 3, 3),
    ] {
        assert_reachable(clos(s, l, h));
    }
}

// ---- scale -----------------------------------------------------------------------------

#[test]
fn ten_thousand_node_chain_generates_fast_and_parses() {
    let g = args(chain(10_000), false, false);
    let started = Instant::now();
    let text = generate(&g).unwrap_or_default();
    let took = started.elapsed();
    // well under a second in a release build; this bound only catches quadratic work in an
    // unoptimized build on a busy machine
    assert!(took.as_secs_f64() < 2.0, "generation took {took:?}");
    let topo = parse(&g);
    assert_eq!(topo.nodes.len(), 10_000);
    assert_eq!(topo.links.len(), 9_999);
    assert!(text.len() < 12 << 20, "{} bytes", text.len());
}

#[test]
fn routes_per_node_grow_with_log_n_not_n() {
    for shape in [chain(10_000), ring(10_000), tree(4, 9), clos(4, 64, 8)] {
        let Ok(lab) = build(&shape, true) else {
            panic!("{shape:?}");
        };
        let n = lab.nodes.len() as f64;
        // two ranges of at most 2·log2 blocks each, plus a default; the clos spine has a
        // range per leaf (one per interface), the star hub a route per leaf
        let bound = 4.0 * n.log2().ceil() + 1.0;
        for node in &lab.nodes {
            let per_iface = node.routes.len() as f64 / node.ifaces.len() as f64;
            assert!(
                (node.routes.len() as f64) <= bound || per_iface <= 2.0 * n.log2(),
                "{shape:?}: {} has {} routes",
                node.name,
                node.routes.len()
            );
        }
    }
}

#[test]
fn blocks_cover_a_range_exactly_with_aligned_prefixes() {
    for lo in 0..70u32 {
        for hi in lo..70u32 {
            let b = blocks(lo, hi);
            let mut next = lo;
            for (start, log2) in &b {
                assert_eq!(*start, next, "blocks({lo}, {hi}) = {b:?}");
                assert_eq!(start % (1 << log2), 0, "unaligned block in {b:?}");
                next = start + (1 << log2);
            }
            assert_eq!(next, hi, "blocks({lo}, {hi}) = {b:?}");
            assert!(b.len() <= 2 * 7, "blocks({lo}, {hi}) = {b:?}");
        }
    }
    assert_eq!(blocks(0, 1 << 20), vec![(0, 20)]);
}

// ---- arguments and errors --------------------------------------------------------------

#[test]
fn the_header_names_the_command_line_that_generates_the_file() {
    let g = GenArgs {
        shape: clos(2, 3, 1),
        name: Some("bn-fab".into()),
        ipv6: true,
        bare: false,
    };
    let topo = parse(&g);
    assert_eq!(topo.name, "bn-fab");
    let text = generate(&g).unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "# generated by `topo gen clos --spines 2 --leaves 3 --hosts-per-leaf 1 --name bn-fab --ipv6`"
    );
}

#[test]
fn bad_sizes_and_names_are_refused_with_a_reason() {
    let cases: [(GenArgs, &str); 5] = [
        (
            args(chain(1), false, false),
            "a chain needs nodes of at least 2, got 1",
        ),
        (
            args(ring(2), false, false),
            "a ring needs nodes of at least 3",
        ),
        (
            args(tree(1, 0), false, false),
            "a tree needs fanout of at least 1",
        ),
        (
            args(chain(70_000), false, false),
            "too many nodes (at most 65536)",
        ),
        (args(clos(4000, 4000, 0), false, false), "too many links"),
    ];
    for (g, text) in cases {
        match generate(&g) {
            Err(e) => assert!(e.to_string().contains(text), "{e}"),
            Ok(_) => panic!("{g:?} was accepted"),
        }
    }
    let mut g = args(chain(2), false, false);
    for bad in ["", "Chain", "much-too-long-name", "a_b"] {
        g.name = Some(bad.to_string());
        assert_eq!(generate(&g), Err(GenError::Name(bad.to_string())));
    }
    // a tree whose size overflows u64 is "too big", not a panic
    assert!(matches!(
        generate(&args(tree(200, 1 << 40), false, false)),
        Err(GenError::TooBig { .. })
    ));
}

#[test]
fn every_interface_is_wired_exactly_once() {
    for shape in [chain(4), ring(4), star(3), tree(2, 2), clos(2, 2, 2)] {
        let topo = parse(&args(shape, false, false));
        let mut seen = BTreeSet::new();
        for link in &topo.links {
            for ep in &link.endpoints {
                assert!(seen.insert(ep.to_string()), "{ep} wired twice");
            }
        }
        let configured: usize = topo
            .nodes
            .values()
            .map(|n| n.interfaces.keys().filter(|i| *i != "lo").count())
            .sum();
        assert_eq!(configured, seen.len(), "{shape:?}");
    }
}
