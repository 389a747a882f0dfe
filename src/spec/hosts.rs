//! Where the nodes of a multi-host lab run, and what crosses between its hosts: the links
//! and bridges that become VXLAN tunnels, the VNI of each and the largest packet it carries.
//! Pure functions of the file and the lab's name, so that every host, reading the same file
//! under the same lab name, computes the same.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::model::{Bridge, Link, Topology};
use crate::plan::names::fnv1a;

/// The largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = 16_777_215;

/// The smallest VNI given to a tunnel whose file declares none: those below are left to
/// the file (and to other tools' habits of small numbers).
pub const VNI_DERIVED_MIN: u32 = 4096;

/// Bytes a VXLAN tunnel adds to each frame over an IPv4 underlay: outer IPv4 (20), UDP (8),
/// VXLAN (8) and the inner Ethernet header (14).
pub const OVERHEAD_IPV4: u32 = 50;

/// The same over an IPv6 underlay, whose header is 20 bytes longer.
pub const OVERHEAD_IPV6: u32 = 70;

/// The encapsulation overhead over an underlay of `address`'s family.
pub fn overhead(address: &IpAddr) -> u32 {
    match address {
        IpAddr::V4(_) => OVERHEAD_IPV4,
        IpAddr::V6(_) => OVERHEAD_IPV6,
    }
}

/// The host a node runs on, as its `host:` (or its group's) says; `None` in a lab without
/// `hosts:`.
pub fn node_host<'t>(t: &'t Topology, node: &str) -> Option<&'t str> {
    t.nodes.get(node)?.host.as_deref()
}

/// The host of each end of a link. A `host` endpoint (the machine's own namespace) is on
/// the host of the link's other end.
pub fn link_hosts<'t>(t: &'t Topology, link: &Link) -> [Option<&'t str>; 2] {
    let [a, b] = &link.endpoints;
    let of = |ep: &super::Endpoint| (!ep.is_host()).then(|| node_host(t, &ep.node)).flatten();
    let (ha, hb) = (of(a), of(b));
    [
        if a.is_host() { hb } else { ha },
        if b.is_host() { ha } else { hb },
    ]
}

/// The two hosts of a link whose ends are on different hosts, in endpoint order.
pub fn crossing<'t>(t: &'t Topology, link: &Link) -> Option<[&'t str; 2]> {
    match link_hosts(t, link) {
        [Some(a), Some(b)] if a != b => Some([a, b]),
        _ => None,
    }
}

/// The hosts that have members of a bridge.
pub fn bridge_hosts<'t>(t: &'t Topology, bridge: &Bridge) -> BTreeSet<&'t str> {
    bridge
        .members
        .iter()
        .filter_map(|ep| node_host(t, &ep.node))
        .collect()
}

/// The largest packet a tunnel between `hosts` carries: the smallest of their underlay MTUs
/// less the encapsulation (hosts the file does not declare are left out). `None` when no
/// declared host is among them.
pub fn max_payload<'a>(t: &Topology, hosts: impl IntoIterator<Item = &'a str>) -> Option<u32> {
    let declared: Vec<_> = hosts.into_iter().filter_map(|h| t.hosts.get(h)).collect();
    let underlay = declared.iter().map(|h| h.mtu).min()?;
    let overhead = declared
        .iter()
        .map(|h| overhead(&h.address))
        .max()
        .unwrap_or(OVERHEAD_IPV4);
    Some(underlay.saturating_sub(overhead))
}

/// A link or bridge carried between hosts by VXLAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// Its VXLAN network identifier: the file's, or derived (see [`tunnels`]).
    pub vni: u32,
    /// The hosts it joins, in name order.
    pub hosts: Vec<String>,
    /// The largest packet it carries ([`max_payload`]): the MTU of its interfaces when the
    /// file gives none, and the most the file may give.
    pub mtu: u32,
}

/// The tunnels of a lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tunnels {
    /// Links with ends on two hosts, by their index in the file's `links`.
    pub links: BTreeMap<usize, Tunnel>,
    /// Bridges with members on two hosts or more, by name.
    pub bridges: BTreeMap<String, Tunnel>,
}

/// The text a link's VNI is derived from: `LAB\0link\0A:IA\0B:IB`, the two endpoints in
/// sorted order.
pub fn link_vni_key(lab: &str, link: &Link) -> String {
    let (a, b) = sorted_ends(link);
    format!("{lab}\0link\0{a}\0{b}")
}

/// The text a bridge's VNI is derived from: `LAB\0bridge\0NAME`.
pub fn bridge_vni_key(lab: &str, bridge: &str) -> String {
    format!("{lab}\0bridge\0{bridge}")
}

/// The VNI a key hashes to, before probing: `4096 + fnv1a(key) % (16777216 - 4096)`.
pub fn derived_vni(key: &str) -> u32 {
    let range = u64::from(VNI_MAX) + 1 - u64::from(VNI_DERIVED_MIN);
    // Below 2^24: the conversion never fails.
    VNI_DERIVED_MIN + u32::try_from(fnv1a(key.as_bytes()) % range).unwrap_or(0)
}

fn sorted_ends(link: &Link) -> (String, String) {
    let [a, b] = &link.endpoints;
    let (a, b) = (a.to_string(), b.to_string());
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Every tunnel of the lab `t.name`, with its VNI. Declared VNIs are taken first; then each
/// other tunnel, links first (in the order of their sorted endpoint pairs, `a:ia b:ib`),
/// then bridges (by name), gets [`derived_vni`] of its key, or the next one up that is free
/// (wrapping from [`VNI_MAX`] to [`VNI_DERIVED_MIN`]).
pub fn tunnels(t: &Topology) -> Tunnels {
    let lab = t.name.as_str();
    let mut out = Tunnels::default();
    if t.hosts.is_empty() {
        return out;
    }
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    taken.extend(t.links.iter().filter_map(|l| l.vni));
    taken.extend(t.bridges.values().filter_map(|b| b.vni));
    let mut pending: Vec<(String, String, Option<usize>, Option<&String>)> = Vec::new();
    for (i, link) in t.links.iter().enumerate() {
        let Some(hosts) = crossing(t, link) else {
            continue;
        };
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        hosts.sort();
        let mtu = tunnel_mtu(t, &hosts);
        let tunnel = Tunnel {
            vni: link.vni.unwrap_or(0),
            hosts,
            mtu,
        };
        if link.vni.is_none() {
            let (a, b) = sorted_ends(link);
            pending.push((format!("{a} {b}"), link_vni_key(lab, link), Some(i), None));
        }
        out.links.insert(i, tunnel);
    }
    // Links first, in the order of their endpoint pairs; then bridges, by name.
    pending.sort_by(|x, y| x.0.cmp(&y.0));
    for (name, bridge) in &t.bridges {
        let hosts = bridge_hosts(t, bridge);
        if hosts.len() < 2 {
            continue;
        }
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mtu = tunnel_mtu(t, &hosts);
        if bridge.vni.is_none() {
            pending.push((String::new(), bridge_vni_key(lab, name), None, Some(name)));
        }
        out.bridges.insert(
            name.clone(),
            Tunnel {
                vni: bridge.vni.unwrap_or(0),
                hosts,
                mtu,
            },
        );
    }
    for (_, key, link, bridge) in pending {
        let vni = probe(derived_vni(&key), &taken);
        taken.insert(vni);
        let tunnel = match (link, bridge) {
            (Some(i), _) => out.links.get_mut(&i),
            (None, Some(name)) => out.bridges.get_mut(name),
            (None, None) => None,
        };
        if let Some(tunnel) = tunnel {
            tunnel.vni = vni;
        }
    }
    out
}

fn tunnel_mtu(t: &Topology, hosts: &[String]) -> u32 {
    max_payload(t, hosts.iter().map(String::as_str))
        .unwrap_or(super::Host::DEFAULT_MTU - OVERHEAD_IPV4)
}

/// `start`, or the first VNI above it (wrapping within the derived range) that is not taken.
fn probe(start: u32, taken: &BTreeSet<u32>) -> u32 {
    let mut vni = start;
    // A lab has far fewer tunnels than the range has VNIs: the walk ends at a free one.
    for _ in VNI_DERIVED_MIN..=VNI_MAX {
        if !taken.contains(&vni) {
            return vni;
        }
        vni = if vni >= VNI_MAX {
            VNI_DERIVED_MIN
        } else {
            vni + 1
        };
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_str;
    use std::path::Path;

    fn lab(text: &str) -> Topology {
        match parse_str(text, Path::new("/labs/wan.yaml")) {
            Ok(t) => t,
            Err(d) => panic!("{d}"),
        }
    }

    /// r1 and r2 on `left`, r3 on `right`, h1 on `third`; links inside `left`, across to
    /// `right`, and to the machine's own namespace; one bridge on `left` alone, one across.
    const WAN: &str = "
name: wan
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2, mtu: 9000}
  third: {address: 198.51.100.3, mtu: 1400}
groups:
  core: {host: left}
nodes:
  r1: {group: core}
  r2: {group: core}
  r3: {host: right}
  h1: {host: third}
links:
  - endpoints: [r1:eth1, r2:eth1]
  - endpoints: [r3:eth1, r1:eth2]
  - endpoints: [host:tp-r3, r3:eth9]
  - endpoints: [r2:eth2, r3:eth2]
    vni: 1001
bridges:
  local: {members: [r1:eth3, r2:eth3]}
  lan: {members: [r1:eth4, r3:eth4, h1:eth0]}
";

    #[test]
    fn nodes_are_placed_through_their_groups_and_host_ends_follow_their_link() {
        let t = lab(WAN);
        assert_eq!(node_host(&t, "r1"), Some("left"));
        assert_eq!(node_host(&t, "r3"), Some("right"));
        assert_eq!(node_host(&t, "nope"), None);
        assert_eq!(link_hosts(&t, &t.links[2]), [Some("right"), Some("right")]);
        assert_eq!(crossing(&t, &t.links[0]), None);
        assert_eq!(crossing(&t, &t.links[1]), Some(["right", "left"]));
        assert_eq!(crossing(&t, &t.links[2]), None);
        let hosts: Vec<&str> = bridge_hosts(&t, &t.bridges["lan"]).into_iter().collect();
        assert_eq!(hosts, ["left", "right", "third"]);
        // Without `hosts:` nothing is placed and nothing crosses.
        let one = lab("name: one\nnodes: {a: {}, b: {}}\nlinks: [{endpoints: [a:e, b:e]}]\n");
        assert_eq!(node_host(&one, "a"), None);
        assert_eq!(crossing(&one, &one.links[0]), None);
        assert_eq!(tunnels(&one), Tunnels::default());
    }

    #[test]
    fn the_tunnels_are_the_links_and_bridges_across_hosts() {
        let t = lab(WAN);
        let found = tunnels(&t);
        assert_eq!(found.links.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(found.bridges.keys().collect::<Vec<_>>(), ["lan"]);
        assert_eq!(found.links[&1].hosts, ["left", "right"]);
        assert_eq!(found.links[&3].vni, 1001);
        assert_eq!(found.bridges["lan"].hosts, ["left", "right", "third"]);
    }

    #[test]
    fn a_tunnel_carries_the_smallest_underlay_mtu_less_the_encapsulation() {
        let t = lab(WAN);
        let found = tunnels(&t);
        // left 1500 and right 9000 over IPv4.
        assert_eq!(found.links[&1].mtu, 1450);
        // third's 1400 is the smallest of the bridge's hosts.
        assert_eq!(found.bridges["lan"].mtu, 1350);
        assert_eq!(max_payload(&t, ["right"]), Some(8950));
        assert_eq!(max_payload(&t, ["nowhere"]), None);
        let v6 = lab("
name: six
hosts:
  a: {address: '2001:db8::1'}
  b: {address: '2001:db8::2', mtu: 9000}
nodes: {x: {host: a}, y: {host: b}}
links: [{endpoints: [x:eth1, y:eth1]}]
");
        assert_eq!(tunnels(&v6).links[&0].mtu, 1500 - 70);
        assert_eq!(max_payload(&v6, ["b"]), Some(9000 - 70));
    }

    #[test]
    fn derived_vnis_follow_the_formula_and_are_the_same_for_the_same_lab() {
        let t = lab(WAN);
        let key = link_vni_key("wan", &t.links[1]);
        // The endpoints in sorted order, whatever the file's order.
        assert_eq!(key, "wan\0link\0r1:eth2\0r3:eth1");
        let expected = 4096 + (fnv1a(key.as_bytes()) % (16_777_216 - 4096)) as u32;
        assert_eq!(derived_vni(&key), expected);
        let first = tunnels(&t);
        assert_eq!(first.links[&1].vni, expected);
        assert_eq!(
            first.bridges["lan"].vni,
            derived_vni(&bridge_vni_key("wan", "lan"))
        );
        for tunnel in first.links.values().chain(first.bridges.values()) {
            assert!((1..=VNI_MAX).contains(&tunnel.vni), "{tunnel:?}");
        }
        // Another reading of the same file agrees, and one with the links in another
        // order too; another lab name gives other VNIs.
        assert_eq!(tunnels(&lab(WAN)), first);
        let reordered = WAN.replace(
            "  - endpoints: [r1:eth1, r2:eth1]\n  - endpoints: [r3:eth1, r1:eth2]\n",
            "  - endpoints: [r1:eth2, r3:eth1]\n  - endpoints: [r1:eth1, r2:eth1]\n",
        );
        let other = tunnels(&lab(&reordered));
        assert_eq!(other.links[&0].vni, first.links[&1].vni);
        let mut renamed = lab(WAN);
        renamed.name = "wan2".into();
        assert_ne!(tunnels(&renamed).links[&1].vni, first.links[&1].vni);
    }

    #[test]
    fn declared_vnis_are_reserved_before_any_is_derived() {
        let t = lab(WAN);
        let derived = tunnels(&t).links[&1].vni;
        // A VNI declared on a later link, equal to the one the earlier link derives: the
        // earlier link moves up to the next free one.
        let text = WAN.replace("vni: 1001", &format!("vni: {derived}"));
        let found = tunnels(&lab(&text));
        assert_eq!(found.links[&3].vni, derived);
        assert_eq!(found.links[&1].vni, derived + 1);
    }

    #[test]
    fn probing_goes_up_past_taken_vnis_and_wraps_within_the_derived_range() {
        let taken: BTreeSet<u32> = [5000, 5001, 5003].into_iter().collect();
        assert_eq!(probe(4999, &taken), 4999);
        assert_eq!(probe(5000, &taken), 5002);
        let top: BTreeSet<u32> = [VNI_MAX - 1, VNI_MAX, VNI_DERIVED_MIN]
            .into_iter()
            .collect();
        assert_eq!(probe(VNI_MAX - 1, &top), VNI_DERIVED_MIN + 1);
    }

    #[test]
    fn tunnels_that_hash_alike_get_distinct_vnis_in_the_canonical_order() {
        // Two links of the lab `many` whose keys hash to the same VNI, found by search.
        let key = |i: usize| format!("many\0link\0x:e{i}\0y:e{i}");
        let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
        let (first, second) = (0..1_000_000)
            .find_map(|j| {
                let v = derived_vni(&key(j));
                seen.insert(v, j).map(|i| (i, j))
            })
            .unwrap_or_else(|| panic!("no two keys hash alike"));
        let vni = derived_vni(&key(first));
        // Declared in the other order than the canonical one (`x:eI y:eI` sorted).
        let (early, late) = if format!("x:e{first}") < format!("x:e{second}") {
            (first, second)
        } else {
            (second, first)
        };
        let text = format!(
            "name: many\nhosts: {{a: {{address: 192.0.2.1}}, b: {{address: 192.0.2.2}}}}\n\
             nodes: {{x: {{host: a}}, y: {{host: b}}}}\nlinks:\n\
             \x20 - endpoints: [y:e{late}, x:e{late}]\n\
             \x20 - endpoints: [x:e{early}, y:e{early}]\n"
        );
        let found = tunnels(&lab(&text));
        assert_eq!(found.links[&1].vni, vni, "the canonically first keeps it");
        let next = if vni == VNI_MAX {
            VNI_DERIVED_MIN
        } else {
            vni + 1
        };
        assert_eq!(found.links[&0].vni, next, "the second probes upward");
    }
}
