//! Routes of a node's kernel table, read over netlink and matched against a check.
//!
//! [`read`] dumps the main table of both families inside the node's namespace (`ip route
//! show; ip -6 route show`), through the observation's blocking [`Requester`], and names the
//! output interfaces from a link dump of the same namespace. [`find`] is pure: the route for
//! a prefix, or a one-line account of what the table holds instead.

use std::fmt;
use std::fs::File;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::net::dump::Requester;
use crate::net::{netns, NetError, RTPROT_TOPO};

/// A route of the main table as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelRoute {
    pub prefix: IpNetwork,
    /// One for a plain route (a gateway, or only a device for a direct route), several for
    /// an ECMP route, none for a blackhole, unreachable or prohibit route.
    pub nexthops: Vec<Nexthop>,
    /// As [`protocol_name`] names it: `kernel`, `static`, `ospf`, `topo`, … or the number.
    pub protocol: String,
    /// `RTA_PRIORITY`; the kernel sends none for an IPv4 route of metric 0.
    pub metric: Option<u32>,
    /// `unicast`, `blackhole`, `unreachable`, `prohibit`, … (`ip route`'s type names).
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Nexthop {
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
}

/// What a check asks of a route: the route for exactly `prefix`, and, where given, a next
/// hop through `via` and/or `dev` and the installing `protocol` (a name or a number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteQuery {
    pub prefix: IpNetwork,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub protocol: Option<String>,
}

/// The routes of the main table, IPv4 and IPv6, inside the namespace `netns` (`ip route
/// show table main` for both families). Runs on a thread of its own, which enters the
/// namespace; blocking.
pub fn read(netns: &File) -> Result<Vec<KernelRoute>, NetError> {
    let (messages, links) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut read = netns::enter_each(&[netns], |_| {
                let mut nl = Requester::open_here()?;
                Ok((dump_main(&mut nl)?, nl.links()?))
            })?;
            read.pop()
                .ok_or_else(|| NetError::io("dump routes", std::io::Error::other("no answer")))
        })
        .join()
        .map_err(|_| NetError::io("route thread", std::io::Error::other("panicked")))?
    })?;
    let names: Vec<(u32, String)> = links
        .iter()
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some((l.header.index, n.clone())),
                _ => None,
            })
        })
        .collect();
    let dev = |index: u32| {
        names
            .iter()
            .find(|(i, _)| *i == index)
            .map_or_else(|| format!("if{index}"), |(_, n)| n.clone())
    };
    Ok(from_messages(&messages, dev))
}

/// Every route of the main table, both families (`ip route show table main`): the kernel
/// filters by table where it filters dumps; the answers are filtered again in
/// [`from_messages`], so an older kernel only sends more.
fn dump_main(nl: &mut Requester) -> Result<Vec<RouteMessage>, NetError> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Unspec;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    nl.dump(
        RouteNetlinkMessage::GetRoute(msg),
        "dump routes",
        |m| match m {
            RouteNetlinkMessage::NewRoute(m) => Some(m),
            _ => None,
        },
    )
}

/// The main table's routes among dumped messages, with `dev` naming an interface index.
/// IPv6 ECMP routes may come one message per next hop: they are merged by destination,
/// metric, protocol and type, as `ip -6 route` shows them.
pub fn from_messages(messages: &[RouteMessage], dev: impl Fn(u32) -> String) -> Vec<KernelRoute> {
    let mut out: Vec<KernelRoute> = Vec::new();
    for m in messages
        .iter()
        .filter(|m| table(m) == u32::from(RouteHeader::RT_TABLE_MAIN))
    {
        let Some(route) = to_route(m, &dev) else {
            continue;
        };
        let same = |r: &&mut KernelRoute| {
            r.prefix == route.prefix
                && r.metric == route.metric
                && r.protocol == route.protocol
                && r.kind == route.kind
                && !r.nexthops.is_empty()
        };
        match out.iter_mut().find(same) {
            Some(r) if route.prefix.is_ipv6() && !route.nexthops.is_empty() => {
                r.nexthops.extend(route.nexthops)
            }
            _ => out.push(route),
        }
    }
    out
}

/// The table of a route: `RTA_TABLE` where sent (ids above 255), else the header's.
fn table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

fn to_route(m: &RouteMessage, dev: &impl Fn(u32) -> String) -> Option<KernelRoute> {
    let family_any = match m.header.address_family {
        AddressFamily::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let dst = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(d) => ip_of(d),
            _ => None,
        })
        .unwrap_or(family_any);
    let prefix = IpNetwork::new(dst, m.header.destination_prefix_length).ok()?;
    let mut via = None;
    let mut oif = None;
    let mut metric = None;
    let mut nexthops = Vec::new();
    for a in &m.attributes {
        match a {
            RouteAttribute::Gateway(g) => via = ip_of(g),
            RouteAttribute::Via(v) => via = via_of(v),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::MultiPath(hops) => {
                for h in hops {
                    let via = h.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => ip_of(g),
                        RouteAttribute::Via(v) => via_of(v),
                        _ => None,
                    });
                    let dev = (h.interface_index != 0).then(|| dev(h.interface_index));
                    nexthops.push(Nexthop { via, dev });
                }
            }
            _ => {}
        }
    }
    if via.is_some() || oif.is_some() {
        nexthops.insert(
            0,
            Nexthop {
                via,
                dev: oif.map(dev),
            },
        );
    }
    Some(KernelRoute {
        prefix,
        nexthops,
        protocol: protocol_name(u8::from(m.header.protocol)),
        metric,
        kind: kind_name(u8::from(m.header.kind)),
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// `RTA_VIA`: a gateway of the other family (an IPv4 route via an IPv6 next hop).
fn via_of(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Route protocol numbers and their names, as `/etc/iproute2/rt_protos` and FRR's
/// `rt_protos.d/frr.conf` name them, plus `topo` for `topo`'s own routes (200, which `ip
/// route` shows as `proto 200`). FRR's staticd (196) is named `static` as iproute2 names it
/// with FRR installed, so the name `static` matches 4 and 196 in [`find`].
const PROTOCOLS: &[(u8, &str)] = &[
    (0, "unspec"),
    (1, "redirect"),
    (2, "kernel"),
    (3, "boot"),
    (4, "static"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (99, "openr"),
    (186, "bgp"),
    (187, "isis"),
    (188, "ospf"),
    (189, "rip"),
    (190, "ripng"),
    (191, "nhrp"),
    (192, "eigrp"),
    (193, "ldp"),
    (194, "sharp"),
    (195, "pbr"),
    (196, "static"),
    (197, "openfabric"),
    (RTPROT_TOPO, "topo"),
];

/// The name of a route protocol number (`188` → `ospf`), or the number itself.
pub fn protocol_name(n: u8) -> String {
    PROTOCOLS
        .iter()
        .find(|(p, _)| *p == n)
        .map_or_else(|| n.to_string(), |(_, name)| (*name).to_string())
}

/// The number of a route protocol name (`ospf` → 188, `static` → 4), or of a number
/// written out (`"200"`); `None` for an unknown name.
pub fn protocol_number(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    PROTOCOLS
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(name))
        .map(|(p, _)| *p)
}

/// `ip route`'s name of a route type (`RTN_*`).
fn kind_name(n: u8) -> String {
    let name = match RouteType::from(n) {
        RouteType::Unicast => "unicast",
        RouteType::Local => "local",
        RouteType::Broadcast => "broadcast",
        RouteType::Anycast => "anycast",
        RouteType::Multicast => "multicast",
        RouteType::BlackHole => "blackhole",
        RouteType::Unreachable => "unreachable",
        RouteType::Prohibit => "prohibit",
        RouteType::Throw => "throw",
        RouteType::Nat => "nat",
        _ => return n.to_string(),
    };
    name.to_string()
}

/// The route for exactly `q.prefix` (normalized: `10.0.3.7/24` is `10.0.3.0/24`), with a
/// next hop through `q.via` and/or `q.dev` (of an ECMP route: any one next hop with both)
/// and installed by `q.protocol`. Err is one line saying what was found instead:
/// `10.0.3.0/24 is via 10.0.13.3 dev eth2 proto ospf, not via 10.0.12.2`, or `no route for
/// 10.0.3.0/24; routes: …` with the few closest prefixes of the same family.
pub fn find<'a>(routes: &'a [KernelRoute], q: &RouteQuery) -> Result<&'a KernelRoute, String> {
    let prefix = normalized(q.prefix);
    let want_protocol = match &q.protocol {
        Some(p) => Some(protocol_number(p).ok_or_else(|| format!("unknown protocol {p}"))?),
        None => None,
    };
    let same: Vec<&KernelRoute> = routes.iter().filter(|r| r.prefix == prefix).collect();
    if same.is_empty() {
        return Err(no_route(routes, prefix));
    }
    let hop_ok = |r: &KernelRoute| {
        (q.via.is_none() && q.dev.is_none())
            || r.nexthops.iter().any(|h| {
                q.via.is_none_or(|v| h.via == Some(v))
                    && q.dev.as_ref().is_none_or(|d| h.dev.as_ref() == Some(d))
            })
    };
    let protocol_ok = |r: &KernelRoute| {
        q.protocol.as_ref().is_none_or(|p| {
            r.protocol.eq_ignore_ascii_case(p) || protocol_number(&r.protocol) == want_protocol
        })
    };
    if let Some(r) = same.iter().find(|r| hop_ok(r) && protocol_ok(r)) {
        return Ok(r);
    }
    let mut not = Vec::new();
    if !same.iter().any(|r| hop_ok(r)) {
        not.extend(q.via.map(|v| format!("via {v}")));
        not.extend(q.dev.as_ref().map(|d| format!("dev {d}")));
    }
    if !same.iter().any(|r| protocol_ok(r)) {
        not.extend(q.protocol.as_ref().map(|p| format!("proto {p}")));
    }
    if not.is_empty() {
        // Each alone is there, but not on the same route.
        not.extend(q.via.map(|v| format!("via {v}")));
        not.extend(q.dev.as_ref().map(|d| format!("dev {d}")));
        not.extend(q.protocol.as_ref().map(|p| format!("proto {p}")));
    }
    let found: Vec<String> = same.iter().map(|r| r.describe()).collect();
    Err(format!(
        "{prefix} is {}, not {}",
        found.join("; and "),
        not.join(" ")
    ))
}

fn normalized(p: IpNetwork) -> IpNetwork {
    IpNetwork::new(p.network(), p.prefix()).unwrap_or(p)
}

/// How many routes a "no route" message lists.
const CLOSEST: usize = 4;

/// `no route for P; routes: …`: the routes of P's family whose prefixes share the most
/// leading bits with P (then the most specific first), at most [`CLOSEST`].
fn no_route(routes: &[KernelRoute], prefix: IpNetwork) -> String {
    let mut family: Vec<&KernelRoute> = routes
        .iter()
        .filter(|r| r.prefix.is_ipv4() == prefix.is_ipv4())
        .collect();
    if family.is_empty() {
        let v = if prefix.is_ipv4() { "IPv4" } else { "IPv6" };
        return format!("no route for {prefix}; no {v} routes");
    }
    family.sort_by_key(|r| {
        let shared = common_bits(r.prefix.network(), prefix.network())
            .min(r.prefix.prefix())
            .min(prefix.prefix());
        (
            std::cmp::Reverse(shared),
            std::cmp::Reverse(r.prefix.prefix()),
        )
    });
    let shown: Vec<String> = family.iter().take(CLOSEST).map(|r| r.to_string()).collect();
    let more = family.len().saturating_sub(CLOSEST);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("no route for {prefix}; routes: {}{tail}", shown.join(", "))
}

/// The number of leading bits two addresses of one family share.
fn common_bits(a: IpAddr, b: IpAddr) -> u8 {
    let x = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u128::from(a.to_bits() ^ b.to_bits()) << 96,
        (IpAddr::V6(a), IpAddr::V6(b)) => a.to_bits() ^ b.to_bits(),
        _ => return 0,
    };
    let bits = if a.is_ipv4() { 32 } else { 128 };
    (x.leading_zeros() as u8).min(bits)
}

impl KernelRoute {
    /// The route without its prefix, as `ip route` writes it: `via 10.0.13.3 dev eth2 proto
    /// ospf metric 20`; ECMP next hops joined by `,`; `blackhole` and the like first.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.kind != "unicast" {
            parts.push(self.kind.clone());
        }
        let hops: Vec<String> = self.nexthops.iter().map(Nexthop::to_string).collect();
        if !hops.is_empty() {
            parts.push(hops.join(", "));
        }
        parts.push(format!("proto {}", self.protocol));
        if let Some(m) = self.metric {
            parts.push(format!("metric {m}"));
        }
        parts.join(" ")
    }
}

impl fmt::Display for KernelRoute {
    /// `10.0.3.0/24 via 10.0.13.3 dev eth2 proto ospf metric 20`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.prefix, self.describe())
    }
}

impl fmt::Display for Nexthop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.via, &self.dev) {
            (Some(v), Some(d)) => write!(f, "via {v} dev {d}"),
            (Some(v), None) => write!(f, "via {v}"),
            (None, Some(d)) => write!(f, "dev {d}"),
            (None, None) => write!(f, "no next hop"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::{RouteNextHop, RouteProtocol};

    fn hop(via: &str, dev: &str) -> Nexthop {
        Nexthop {
            via: (!via.is_empty()).then(|| via.parse().unwrap()),
            dev: (!dev.is_empty()).then(|| dev.to_string()),
        }
    }

    fn route(prefix: &str, nexthops: Vec<Nexthop>, protocol: &str) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            nexthops,
            protocol: protocol.to_string(),
            metric: Some(20),
            kind: "unicast".to_string(),
        }
    }

    fn query(prefix: &str, via: &str, dev: &str, protocol: &str) -> RouteQuery {
        RouteQuery {
            prefix: prefix.parse().unwrap(),
            via: (!via.is_empty()).then(|| via.parse().unwrap()),
            dev: (!dev.is_empty()).then(|| dev.to_string()),
            protocol: (!protocol.is_empty()).then(|| protocol.to_string()),
        }
    }

    fn table() -> Vec<KernelRoute> {
        vec![
            route("10.0.12.0/31", vec![hop("", "eth1")], "kernel"),
            route("10.0.3.0/24", vec![hop("10.0.13.3", "eth2")], "ospf"),
            route(
                "10.9.0.0/24",
                vec![hop("10.0.12.1", "eth1"), hop("10.0.13.1", "eth2")],
                "topo",
            ),
            route("10.0.0.0/16", vec![hop("10.0.12.1", "eth1")], "bgp"),
            route("2001:db8:3::/64", vec![hop("fe80::1", "eth2")], "ospf"),
        ]
    }

    #[test]
    fn find_takes_the_route_for_exactly_the_normalized_prefix() {
        let t = table();
        let r = find(&t, &query("10.0.3.7/24", "", "", "")).expect("found");
        assert_eq!(r.prefix.to_string(), "10.0.3.0/24");
        // A covering route is not the route for the prefix.
        let e = find(&t, &query("10.0.4.0/24", "", "", "")).expect_err("no exact route");
        assert!(e.starts_with("no route for 10.0.4.0/24; routes: "), "{e}");
    }

    #[test]
    fn find_matches_any_next_hop_of_an_ecmp_route_with_via_and_dev_together() {
        let t = table();
        for (via, dev) in [("10.0.13.1", ""), ("", "eth1"), ("10.0.13.1", "eth2")] {
            assert!(find(&t, &query("10.9.0.0/24", via, dev, "topo")).is_ok());
        }
        let e = find(&t, &query("10.9.0.0/24", "10.0.13.1", "eth1", "")).expect_err("mixed");
        assert_eq!(
            e,
            "10.9.0.0/24 is via 10.0.12.1 dev eth1, via 10.0.13.1 dev eth2 proto topo \
             metric 20, not via 10.0.13.1 dev eth1"
        );
    }

    #[test]
    fn find_says_what_the_route_is_instead() {
        let t = table();
        let e = find(&t, &query("10.0.3.0/24", "10.0.12.2", "", "")).expect_err("other via");
        assert_eq!(
            e,
            "10.0.3.0/24 is via 10.0.13.3 dev eth2 proto ospf metric 20, not via 10.0.12.2"
        );
        let e = find(&t, &query("10.0.3.0/24", "10.0.13.3", "", "bgp")).expect_err("proto");
        assert_eq!(
            e,
            "10.0.3.0/24 is via 10.0.13.3 dev eth2 proto ospf metric 20, not proto bgp"
        );
        assert!(
            find(&t, &query("10.0.3.0/24", "", "eth2", "188")).is_ok(),
            "by number"
        );
        let e = find(&t, &query("10.0.3.0/24", "", "", "nonsense")).expect_err("unknown");
        assert_eq!(e, "unknown protocol nonsense");
    }

    #[test]
    fn no_route_lists_the_closest_routes_of_the_same_family() {
        let t = table();
        let e = find(&t, &query("10.0.13.0/24", "", "", "")).expect_err("none");
        assert_eq!(
            e,
            "no route for 10.0.13.0/24; routes: 10.0.12.0/31 dev eth1 proto kernel metric 20, \
             10.0.3.0/24 via 10.0.13.3 dev eth2 proto ospf metric 20, 10.0.0.0/16 via \
             10.0.12.1 dev eth1 proto bgp metric 20, 10.9.0.0/24 via 10.0.12.1 dev eth1, via \
             10.0.13.1 dev eth2 proto topo metric 20"
        );
        let e = find(&t[..1], &query("2001:db8::/32", "", "", "")).expect_err("none");
        assert_eq!(e, "no route for 2001:db8::/32; no IPv6 routes");
    }

    #[test]
    fn protocol_names_follow_iproute2_and_frr() {
        for (n, name) in [
            (2, "kernel"),
            (3, "boot"),
            (4, "static"),
            (9, "ra"),
            (11, "zebra"),
            (12, "bird"),
            (16, "dhcp"),
            (186, "bgp"),
            (187, "isis"),
            (188, "ospf"),
            (189, "rip"),
            (192, "eigrp"),
            (200, "topo"),
        ] {
            assert_eq!(protocol_name(n), name);
            assert_eq!(protocol_number(name), Some(n));
            assert_eq!(u8::from(RouteProtocol::from(n)), n);
        }
        assert_eq!(protocol_name(201), "201");
        assert_eq!(protocol_number("201"), Some(201));
        assert_eq!(protocol_number("OSPF"), Some(188));
        assert_eq!(protocol_number("ospf6"), None);
        // FRR's staticd installs 196, which iproute2 with FRR also calls static.
        assert_eq!(protocol_name(196), "static");
        let t = vec![route("10.5.0.0/24", vec![hop("10.0.12.1", "")], "static")];
        assert!(find(&t, &query("10.5.0.0/24", "", "", "4")).is_ok());
    }

    fn message(prefix: &str, protocol: u8) -> RouteMessage {
        let net: IpNetwork = prefix.parse().unwrap();
        let mut m = RouteMessage::default();
        m.header.address_family = if net.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.destination_prefix_length = net.prefix();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::from(protocol);
        m.header.kind = RouteType::Unicast;
        if net.prefix() > 0 {
            m.attributes
                .push(RouteAttribute::Destination(match net.ip() {
                    IpAddr::V4(a) => RouteAddress::Inet(a),
                    IpAddr::V6(a) => RouteAddress::Inet6(a),
                }));
        }
        m
    }

    fn gateway(ip: &str) -> RouteAttribute {
        RouteAttribute::Gateway(match ip.parse().unwrap() {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        })
    }

    fn names(i: u32) -> String {
        format!("eth{i}")
    }

    #[test]
    fn multipath_routes_give_every_next_hop_with_its_device() {
        let mut m = message("0.0.0.0/0", 200);
        let hops = [("10.0.13.0", 1), ("10.0.23.0", 2)]
            .iter()
            .map(|(via, oif)| {
                let mut h = RouteNextHop::default();
                h.interface_index = *oif;
                h.attributes.push(gateway(via));
                h
            })
            .collect();
        m.attributes.push(RouteAttribute::MultiPath(hops));
        let got = from_messages(&[m], names);
        assert_eq!(
            got,
            vec![KernelRoute {
                prefix: "0.0.0.0/0".parse().unwrap(),
                nexthops: vec![hop("10.0.13.0", "eth1"), hop("10.0.23.0", "eth2")],
                protocol: "topo".into(),
                metric: None,
                kind: "unicast".into(),
            }]
        );
    }

    #[test]
    fn ipv6_next_hops_sent_one_route_each_are_merged_and_other_tables_left_out() {
        let mut a = message("2001:db8:9::/64", 200);
        a.attributes.push(gateway("2001:db8:12::1"));
        a.attributes.push(RouteAttribute::Oif(2));
        a.attributes.push(RouteAttribute::Priority(1024));
        let mut b = message("2001:db8:9::/64", 200);
        b.attributes.push(gateway("2001:db8:13::1"));
        b.attributes.push(RouteAttribute::Oif(3));
        b.attributes.push(RouteAttribute::Priority(1024));
        let mut local = message("10.0.0.1/32", 2);
        local.header.table = 255;
        let mut direct = message("10.1.0.0/24", 2);
        direct.attributes.push(RouteAttribute::Oif(1));
        let mut blackhole = message("10.66.0.0/16", 3);
        blackhole.header.kind = RouteType::BlackHole;
        let got = from_messages(&[a, b, local, direct, blackhole], names);
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "2001:db8:9::/64 via 2001:db8:12::1 dev eth2, via 2001:db8:13::1 dev eth3 \
                 proto topo metric 1024",
                "10.1.0.0/24 dev eth1 proto kernel",
                "10.66.0.0/16 blackhole proto boot",
            ]
        );
    }
}
