//! `topo gen`: topology files for scale tests and demos (chain, ring, star, tree, clos).
//!
//! Pure: the output is YAML text that `spec::parse_str` accepts as it is. Every link is a /31
//! with the addressing of the peer benchmark scripts (`bench/peers/iproute2-chain.sh`): link k
//! has `o = 2k`, its first endpoint gets `10.(o>>16).(o>>8&255).(o&255)/31` and its second
//! endpoint the next address. Node j gets the loopback `10.255.(j>>8).(j&255)/32` (and with
//! `--ipv6`, `2001:db8:1::o/127` on links and `2001:db8:ff::j/128` on `lo`).
//!
//! Static routes give every node a path to every address of the lab, with few routes per
//! node: the generator numbers nodes and links so that "everything behind this neighbour" is
//! one or two ranges of loopbacks and links, and writes each range as the aligned prefixes
//! that cover it exactly (at most about 2·log2 of its length). A node of a 10 000-node
//! chain has at most 26 routes (14 on average), not 10 000. The shapes:
//!
//! - chain: node i routes the nodes left of it via its left neighbour and a default via its
//!   right neighbour (the ends have only a default);
//! - ring: a default clockwise, the nearer half counter-clockwise by prefix;
//! - star: leaves have a default via the hub, the hub a /32 per leaf loopback;
//! - tree: nodes are numbered in preorder, so a subtree is one range: a default towards the
//!   root, a range per child;
//! - clos: hosts default to their leaf; leaves ECMP-default over all spines plus a /32 per
//!   spine and per own host; spines a range per leaf (its hosts and links) and ECMP over the
//!   leaves for the other spines' loopbacks.
//!
//! `--bare` leaves out loopbacks and routes: then the lab is exactly what the peer benchmark
//! scripts build (namespaces, veths, /31 addresses, forwarding on), for comparisons.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Most nodes a generated lab may have: loopbacks are numbered in 10.255.0.0/16.
pub const MAX_NODES: u64 = 65_536;
/// Most links a generated lab may have: link addresses stay below 10.128.0.0.
pub const MAX_LINKS: u64 = 1 << 22;

const V4_LINKS: u32 = 0x0a00_0000; // 10.0.0.0
const V4_LOOPBACKS: u32 = 0x0aff_0000; // 10.255.0.0
const V6_LINKS: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0000; // 2001:db8:1::
const V6_LOOPBACKS: u128 = 0x2001_0db8_00ff_0000_0000_0000_0000_0000; // 2001:db8:ff::

/// What to generate: a shape, and the options of `topo gen SHAPE …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenArgs {
    pub shape: Shape,
    /// Lab name (1 to 12 characters from a-z, 0-9 and '-'); default: the shape's name
    pub name: Option<String>,
    /// Dual stack: IPv6 addresses and routes next to the IPv4 ones
    pub ipv6: bool,
    /// Links and their /31 addresses only, no loopbacks and no routes (what the peer
    /// benchmark scripts build)
    pub bare: bool,
}

/// The generated shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A line of nodes n0 … n(N-1), node i joined to node i+1
    Chain {
        /// Number of nodes (at least 2)
        nodes: u64,
    },
    /// A chain whose last node is joined to the first
    Ring {
        /// Number of nodes (at least 3)
        nodes: u64,
    },
    /// A hub joined to N leaves n0 … n(N-1)
    Star {
        /// Number of leaves (at least 1)
        nodes: u64,
    },
    /// A complete tree: every node above the last level has FANOUT children
    Tree {
        /// Levels below the root (at least 1)
        depth: u64,
        /// Children of every inner node (at least 1)
        fanout: u64,
    },
    /// A two-tier leaf-spine fabric: every leaf joined to every spine, hosts under leaves
    Clos {
        /// Number of spines (at least 1)
        spines: u64,
        /// Number of leaves (at least 1)
        leaves: u64,
        /// Hosts under every leaf
        hosts_per_leaf: u64,
    },
}

impl Shape {
    fn name(&self) -> &'static str {
        match self {
            Shape::Chain { .. } => "chain",
            Shape::Ring { .. } => "ring",
            Shape::Star { .. } => "star",
            Shape::Tree { .. } => "tree",
            Shape::Clos { .. } => "clos",
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GenError {
    #[error("lab name '{0}' is invalid: use 1 to 12 characters from a-z, 0-9 and '-'")]
    Name(String),
    #[error("a {shape} needs {what} of at least {min}, got {got}")]
    TooSmall {
        shape: &'static str,
        what: &'static str,
        min: u64,
        got: u64,
    },
    #[error("a {shape} of that size has too many {what} (at most {max})")]
    TooBig {
        shape: &'static str,
        what: &'static str,
        max: u64,
    },
}

/// The topology file text for `g`.
pub fn generate(g: &GenArgs) -> Result<String, GenError> {
    let name = g.name.as_deref().unwrap_or(g.shape.name());
    if !valid_lab_name(name) {
        return Err(GenError::Name(name.to_string()));
    }
    let lab = build(&g.shape, !g.bare)?;
    Ok(lab.render(name, &command_line(g), g.ipv6, !g.bare))
}

fn valid_lab_name(name: &str) -> bool {
    (1..=12).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The `topo gen` command line that reproduces `g`, for the file's header comment.
fn command_line(g: &GenArgs) -> String {
    let mut s = match g.shape {
        Shape::Chain { nodes } => format!("chain --nodes {nodes}"),
        Shape::Ring { nodes } => format!("ring --nodes {nodes}"),
        Shape::Star { nodes } => format!("star --nodes {nodes}"),
        Shape::Tree { depth, fanout } => format!("tree --depth {depth} --fanout {fanout}"),
        Shape::Clos {
            spines,
            leaves,
            hosts_per_leaf,
        } => format!("clos --spines {spines} --leaves {leaves} --hosts-per-leaf {hosts_per_leaf}"),
    };
    if let Some(name) = &g.name {
        let _ = write!(s, " --name {name}");
    }
    if g.ipv6 {
        s.push_str(" --ipv6");
    }
    if g.bare {
        s.push_str(" --bare");
    }
    s
}

fn build(shape: &Shape, routed: bool) -> Result<GenLab, GenError> {
    let sh = shape.name();
    let at_least = |what, min, got| {
        if got < min {
            Err(GenError::TooSmall {
                shape: sh,
                what,
                min,
                got,
            })
        } else {
            Ok(())
        }
    };
    let (nodes, links) = match *shape {
        Shape::Chain { nodes } => {
            at_least("nodes", 2, nodes)?;
            (Some(nodes), Some(nodes - 1))
        }
        Shape::Ring { nodes } => {
            at_least("nodes", 3, nodes)?;
            (Some(nodes), Some(nodes))
        }
        Shape::Star { nodes } => {
            at_least("nodes", 1, nodes)?;
            (nodes.checked_add(1), Some(nodes))
        }
        Shape::Tree { depth, fanout } => {
            at_least("depth", 1, depth)?;
            at_least("fanout", 1, fanout)?;
            let n = tree_size(depth, fanout);
            (n, n.map(|n| n - 1))
        }
        Shape::Clos {
            spines,
            leaves,
            hosts_per_leaf,
        } => {
            at_least("spines", 1, spines)?;
            at_least("leaves", 1, leaves)?;
            let n = hosts_per_leaf
                .checked_add(1)
                .and_then(|h| h.checked_mul(leaves))
                .and_then(|n| n.checked_add(spines));
            let l = spines
                .checked_add(hosts_per_leaf)
                .and_then(|p| p.checked_mul(leaves));
            (n, l)
        }
    };
    let too_big = |what, max| GenError::TooBig {
        shape: sh,
        what,
        max,
    };
    let nodes = nodes
        .filter(|&n| n <= MAX_NODES)
        .ok_or_else(|| too_big("nodes", MAX_NODES))? as u32;
    let links = links
        .filter(|&l| l <= MAX_LINKS)
        .ok_or_else(|| too_big("links", MAX_LINKS))? as u32;
    let mut lab = GenLab::with_capacity(nodes, links);
    match *shape {
        Shape::Chain { .. } => chain(&mut lab, nodes, routed),
        Shape::Ring { .. } => ring(&mut lab, nodes, routed),
        Shape::Star { .. } => star(&mut lab, nodes - 1, routed),
        Shape::Tree { depth, fanout } => tree(&mut lab, depth as u32, fanout as u32, routed),
        Shape::Clos {
            spines,
            leaves,
            hosts_per_leaf,
        } => clos(
            &mut lab,
            spines as u32,
            leaves as u32,
            hosts_per_leaf as u32,
            routed,
        ),
    }
    Ok(lab)
}

// ---- the generated lab, before rendering -----------------------------------------------

/// Where a route leads: the default, or an aligned block of loopbacks or links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Default,
    /// Loopbacks of nodes `start .. start + 2^log2`.
    Loopbacks {
        start: u32,
        log2: u32,
    },
    /// Link numbers `start .. start + 2^log2` (a /31 each).
    Links {
        start: u32,
        log2: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GenRoute {
    dest: Dest,
    /// Gateways, as link end numbers `o` (first end of link k is 2k, second 2k + 1).
    via: Vec<u32>,
}

#[derive(Debug, Default)]
struct GenNode {
    name: String,
    /// Interface name and its link end number.
    ifaces: Vec<(String, u32)>,
    routes: Vec<GenRoute>,
}

#[derive(Debug, Default)]
struct GenLab {
    nodes: Vec<GenNode>,
    /// Link k: (node, interface) of its first and its second end.
    links: Vec<[(u32, String); 2]>,
}

impl GenLab {
    fn with_capacity(nodes: u32, links: u32) -> GenLab {
        GenLab {
            nodes: Vec::with_capacity(nodes as usize),
            links: Vec::with_capacity(links as usize),
        }
    }

    fn node(&mut self, name: String) -> u32 {
        self.nodes.push(GenNode {
            name,
            ..GenNode::default()
        });
        self.nodes.len() as u32 - 1
    }

    /// Adds the next link from `a:a_if` to `b:b_if`; returns its number.
    fn link(&mut self, a: u32, a_if: String, b: u32, b_if: String) -> u32 {
        let k = self.links.len() as u32;
        self.nodes[a as usize].ifaces.push((a_if.clone(), 2 * k));
        self.nodes[b as usize]
            .ifaces
            .push((b_if.clone(), 2 * k + 1));
        self.links.push([(a, a_if), (b, b_if)]);
        k
    }

    fn route(&mut self, node: u32, dest: Dest, via: Vec<u32>) {
        self.nodes[node as usize]
            .routes
            .push(GenRoute { dest, via });
    }

    /// Routes nodes `lo..hi` (their loopbacks) via `via`, except node `except` (the router
    /// itself, whose loopback is local).
    fn route_nodes(&mut self, node: u32, lo: u32, hi: u32, except: Option<u32>, via: &[u32]) {
        for (a, b) in minus(lo, hi, except) {
            for (start, log2) in blocks(a, b) {
                self.route(node, Dest::Loopbacks { start, log2 }, via.to_vec());
            }
        }
    }

    /// Routes links `lo..hi` via `via`, except link `except` (connected to the router: the
    /// kernel's own route for it must not be duplicated).
    fn route_links(&mut self, node: u32, lo: u32, hi: u32, except: Option<u32>, via: &[u32]) {
        for (a, b) in minus(lo, hi, except) {
            for (start, log2) in blocks(a, b) {
                self.route(node, Dest::Links { start, log2 }, via.to_vec());
            }
        }
    }
}

/// `lo..hi` without `except`, as up to two ranges.
fn minus(lo: u32, hi: u32, except: Option<u32>) -> Vec<(u32, u32)> {
    match except {
        Some(x) if (lo..hi).contains(&x) => [(lo, x), (x + 1, hi)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .collect(),
        _ if lo < hi => vec![(lo, hi)],
        _ => Vec::new(),
    }
}

/// The aligned power-of-two blocks `(start, log2 size)` that cover `lo..hi` exactly, largest
/// possible first: at most about 2·log2(hi - lo) of them.
fn blocks(mut lo: u32, hi: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    while lo < hi {
        let mut log2 = lo.trailing_zeros().min(31);
        while (1u64 << log2) > u64::from(hi - lo) {
            log2 -= 1;
        }
        out.push((lo, log2));
        lo += 1 << log2;
    }
    out
}

/// Circular range `start, start+1, …` of `len` numbers modulo `n`, as up to two ranges.
fn circular(start: u32, len: u32, n: u32) -> Vec<(u32, u32)> {
    let end = start + len;
    if len == 0 {
        Vec::new()
    } else if end <= n {
        vec![(start, end)]
    } else {
        vec![(start, n), (0, end - n)]
    }
}

// ---- shapes ----------------------------------------------------------------------------

/// Node i joined to node i+1 (`ni:eth1` — `n(i+1):eth0`), so link i is between nodes i and
/// i+1, as in the peer benchmark scripts.
fn chain(lab: &mut GenLab, n: u32, routed: bool) {
    for i in 0..n {
        lab.node(format!("n{i}"));
    }
    for i in 0..n - 1 {
        lab.link(i, "eth1".into(), i + 1, "eth0".into());
    }
    if !routed {
        return;
    }
    for i in 0..n {
        let left = i.checked_sub(1).map(|l| 2 * l); // left neighbour's end of link i-1
        let right = (i + 1 < n).then_some(2 * i + 1); // right neighbour's end of link i
        match (left, right) {
            (Some(l), Some(r)) => {
                lab.route_nodes(i, 0, i, None, &[l]);
                lab.route_links(i, 0, i - 1, None, &[l]);
                lab.route(i, Dest::Default, vec![r]);
            }
            (Some(g), None) | (None, Some(g)) => lab.route(i, Dest::Default, vec![g]),
            (None, None) => {}
        }
    }
}

/// A chain plus link n-1 from the last node back to the first. Node i sends the nearer half
/// counter-clockwise (by prefix) and everything else clockwise (default).
fn ring(lab: &mut GenLab, n: u32, routed: bool) {
    for i in 0..n {
        lab.node(format!("n{i}"));
    }
    for i in 0..n {
        lab.link(i, "eth1".into(), (i + 1) % n, "eth0".into());
    }
    if !routed {
        return;
    }
    let clockwise = (n - 1) / 2; // nodes reached clockwise; the other `back` counter-clockwise
    let back = n - 1 - clockwise;
    for i in 0..n {
        let prev = (i + n - 1) % n;
        let ccw = [2 * prev]; // previous node's end of link prev
                              // nodes i-back .. i-1, and the links between them (link prev is connected)
        let first = (i + n - back) % n;
        for (a, b) in circular(first, back, n) {
            lab.route_nodes(i, a, b, None, &ccw);
        }
        for (a, b) in circular(first, back - 1, n) {
            lab.route_links(i, a, b, None, &ccw);
        }
        lab.route(i, Dest::Default, vec![2 * i + 1]);
    }
}

/// `hub:eth(k+1)` — `nk:eth0`.
fn star(lab: &mut GenLab, leaves: u32, routed: bool) {
    let hub = lab.node("hub".into());
    for k in 0..leaves {
        let leaf = lab.node(format!("n{k}"));
        lab.link(hub, format!("eth{}", k + 1), leaf, "eth0".into());
        if routed {
            lab.route(leaf, Dest::Default, vec![2 * k]);
            lab.route(
                hub,
                Dest::Loopbacks {
                    start: leaf,
                    log2: 0,
                },
                vec![2 * k + 1],
            );
        }
    }
}

/// Nodes in levels 0..=depth of a tree where every inner node has `fanout` children.
fn tree_size(depth: u64, fanout: u64) -> Option<u64> {
    let mut total: u64 = 0;
    let mut level: u64 = 1;
    for d in 0..=depth {
        total = total.checked_add(level)?;
        if d < depth {
            level = level.checked_mul(fanout)?;
        }
    }
    Some(total)
}

/// Nodes numbered in preorder (`n0` is the root), so the subtree of node c is the range
/// c .. c + size, and link c-1 joins c to its parent (`parent:eth(j+1)` — `c:eth0`).
fn tree(lab: &mut GenLab, depth: u32, fanout: u32, routed: bool) {
    // size[d]: nodes in a subtree whose root is on level d
    let mut size = vec![1u32; depth as usize + 1];
    for d in (0..depth as usize).rev() {
        size[d] = 1 + fanout * size[d + 1];
    }
    // (node, level, parent, child number): visited in preorder, so node numbers and link
    // numbers come out in order
    let mut stack = vec![(0u32, 0u32, 0u32, 0u32)];
    while let Some((v, d, parent, j)) = stack.pop() {
        let id = lab.node(format!("n{v}"));
        debug_assert_eq!(id, v, "tree nodes are created in preorder");
        if v > 0 {
            lab.link(parent, format!("eth{}", j + 1), id, "eth0".into());
            if routed {
                lab.route(v, Dest::Default, vec![2 * (v - 1)]);
            }
        }
        if d == depth {
            continue;
        }
        let sub = size[d as usize + 1];
        for j in (0..fanout).rev() {
            let c = v + 1 + j * sub;
            stack.push((c, d + 1, v, j));
        }
        if routed {
            for j in 0..fanout {
                let c = v + 1 + j * sub;
                let via = [2 * (c - 1) + 1];
                lab.route_nodes(v, c, c + sub, None, &via);
                lab.route_links(v, c, c + sub - 1, None, &via);
            }
        }
    }
}

/// Spines first (`spine0` …), then every leaf followed by its hosts (`leaf0`, `h0-0`, …).
/// Leaf l owns links l·(S+H) .. (l+1)·(S+H): first its uplinks (`leafl:eth(s+1)` —
/// `spines:eth(l+1)`), then its host links (`leafl:eth(S+a+1)` — `hl-a:eth0`).
fn clos(lab: &mut GenLab, spines: u32, leaves: u32, hosts: u32, routed: bool) {
    for s in 0..spines {
        lab.node(format!("spine{s}"));
    }
    let per_leaf = spines + hosts;
    for l in 0..leaves {
        let leaf = lab.node(format!("leaf{l}"));
        for s in 0..spines {
            lab.link(leaf, format!("eth{}", s + 1), s, format!("eth{}", l + 1));
        }
        for a in 0..hosts {
            let host = lab.node(format!("h{l}-{a}"));
            let k = lab.link(leaf, format!("eth{}", spines + a + 1), host, "eth0".into());
            if routed {
                lab.route(host, Dest::Default, vec![2 * k]);
                lab.route_nodes(leaf, host, host + 1, None, &[2 * k + 1]);
            }
        }
        if !routed {
            continue;
        }
        let base = l * per_leaf;
        let uplinks: Vec<u32> = (0..spines).map(|s| 2 * (base + s) + 1).collect();
        for (s, gw) in uplinks.iter().enumerate() {
            lab.route_nodes(leaf, s as u32, s as u32 + 1, None, &[*gw]);
        }
        lab.route(leaf, Dest::Default, uplinks);
        for s in 0..spines {
            let via = [2 * (base + s)];
            lab.route_nodes(s, leaf, leaf + hosts + 1, None, &via);
            lab.route_links(s, base, base + per_leaf, Some(base + s), &via);
        }
    }
    if !routed {
        return;
    }
    for s in 0..spines {
        let via: Vec<u32> = (0..leaves).map(|l| 2 * (l * per_leaf + s)).collect();
        lab.route_nodes(s, 0, spines, Some(s), &via);
    }
}

// ---- rendering -------------------------------------------------------------------------

fn link_v4(o: u32) -> Ipv4Addr {
    Ipv4Addr::from(V4_LINKS + o)
}

fn link_v6(o: u32) -> Ipv6Addr {
    Ipv6Addr::from(V6_LINKS + u128::from(o))
}

fn loopback_v4(j: u32) -> Ipv4Addr {
    Ipv4Addr::from(V4_LOOPBACKS + j)
}

fn loopback_v6(j: u32) -> Ipv6Addr {
    Ipv6Addr::from(V6_LOOPBACKS + u128::from(j))
}

impl GenLab {
    fn render(&self, name: &str, command: &str, ipv6: bool, loopbacks: bool) -> String {
        // about 150 bytes per node and 40 per link, more with routes
        let mut out = String::with_capacity(256 + self.nodes.len() * 400 + self.links.len() * 48);
        let _ = writeln!(out, "# generated by `topo gen {command}`");
        out.push_str("# link k: o = 2k, first end 10.(o>>16).(o>>8&255).(o&255)/31, second end +1");
        out.push_str(if ipv6 { " (2001:db8:1::o/127)\n" } else { "\n" });
        if loopbacks {
            out.push_str("# node j: lo 10.255.(j>>8).(j&255)/32");
            out.push_str(if ipv6 {
                " (2001:db8:ff::j/128)\n"
            } else {
                "\n"
            });
        }
        let _ = writeln!(out, "name: {name}");
        out.push_str("defaults:\n  sysctls:\n    net.ipv4.ip_forward: 1\n");
        if ipv6 {
            out.push_str("    net.ipv6.conf.all.forwarding: 1\n");
        }
        out.push_str("nodes:\n");
        for (j, node) in self.nodes.iter().enumerate() {
            render_node(&mut out, j as u32, node, ipv6, loopbacks);
        }
        if !self.links.is_empty() {
            out.push_str("links:\n");
        }
        for [(a, a_if), (b, b_if)] in &self.links {
            let (a, b) = (&self.nodes[*a as usize].name, &self.nodes[*b as usize].name);
            let _ = writeln!(out, "  - {{endpoints: [{a}:{a_if}, {b}:{b_if}]}}");
        }
        out
    }
}

fn render_node(out: &mut String, j: u32, node: &GenNode, ipv6: bool, loopback: bool) {
    if !loopback && node.ifaces.is_empty() {
        let _ = writeln!(out, "  {}: {{}}", node.name);
        return;
    }
    let _ = writeln!(out, "  {}:", node.name);
    out.push_str("    interfaces:\n");
    if loopback {
        let _ = write!(out, "      lo: {{addresses: [{}/32", loopback_v4(j));
        if ipv6 {
            let _ = write!(out, ", \"{}/128\"", loopback_v6(j));
        }
        out.push_str("]}\n");
    }
    for (ifname, o) in &node.ifaces {
        let _ = write!(out, "      {ifname}: {{addresses: [{}/31", link_v4(*o));
        if ipv6 {
            let _ = write!(out, ", \"{}/127\"", link_v6(*o));
        }
        out.push_str("]}\n");
    }
    if node.routes.is_empty() {
        return;
    }
    out.push_str("    routes:\n");
    for r in &node.routes {
        render_route(out, r, false);
    }
    if ipv6 {
        for r in &node.routes {
            render_route(out, r, true);
        }
    }
}

fn render_route(out: &mut String, r: &GenRoute, v6: bool) {
    out.push_str("      - {to: ");
    let _ = match (r.dest, v6) {
        (Dest::Default, _) => write!(out, "default"),
        (Dest::Loopbacks { start, log2 }, false) => {
            write!(out, "{}/{}", loopback_v4(start), 32 - log2)
        }
        (Dest::Loopbacks { start, log2 }, true) => {
            write!(out, "\"{}/{}\"", loopback_v6(start), 128 - log2)
        }
        (Dest::Links { start, log2 }, false) => {
            write!(out, "{}/{}", link_v4(2 * start), 31 - log2)
        }
        (Dest::Links { start, log2 }, true) => {
            write!(out, "\"{}/{}\"", link_v6(2 * start), 127 - log2)
        }
    };
    out.push_str(", via: ");
    let gw = |o: u32| {
        if v6 {
            format!("\"{}\"", link_v6(o))
        } else {
            link_v4(o).to_string()
        }
    };
    match r.via.as_slice() {
        [one] => out.push_str(&gw(*one)),
        many => {
            out.push('[');
            for (i, o) in many.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&gw(*o));
            }
            out.push(']');
        }
    }
    out.push_str("}\n");
}

#[cfg(test)]
mod tests;
