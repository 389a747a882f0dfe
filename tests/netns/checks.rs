//! The checks of `topo test`, called as a library on real labs: ICMP echo from inside a node
//! without a `ping` program (`topo::check::icmp`), and a node's kernel routes read over
//! netlink and matched (`topo::check::routes`). Each test has a lab of its own, brought
//! down by its guard.

use std::fs::File;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use topo::check::icmp::{self, Echo};
use topo::check::routes::{self, KernelRoute, Nexthop, RouteQuery};

use crate::common::*;

/// A host h1 behind router r1 (forwarding on), r1 wired to r2 and r3; r2 has loopback
/// addresses and routes back to h1's LAN only. r1 has a plain static route, ECMP routes of
/// both families over r2 and r3, and a direct route.
fn lab_yaml(name: &str) -> String {
    format!(
        r#"name: {name}
nodes:
  h1:
    interfaces:
      eth0: {{addresses: [10.1.0.10/24, "2001:db8:1::10/64"]}}
    routes:
      - {{to: default, via: 10.1.0.1}}
      - {{to: default, via: "2001:db8:1::1"}}
  r1:
    sysctls: {{net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}}
    interfaces:
      eth1: {{addresses: [10.1.0.1/24, "2001:db8:1::1/64"]}}
      eth2: {{addresses: [10.0.12.0/31, "2001:db8:12::/127"]}}
      eth3: {{addresses: [10.0.13.0/31, "2001:db8:13::/127"]}}
    routes:
      - {{to: 10.255.0.2/32, via: 10.0.12.1}}
      - {{to: "2001:db8:ff::2/128", via: "2001:db8:12::1"}}
      - {{to: 10.9.0.0/24, via: [10.0.12.1, 10.0.13.1]}}
      - {{to: "2001:db8:9::/64", via: ["2001:db8:12::1", "2001:db8:13::1"]}}
      - {{to: 192.0.2.0/24, dev: eth3, metric: 7}}
  r2:
    interfaces:
      lo: {{addresses: [10.255.0.2/32, "2001:db8:ff::2/128"]}}
      eth1: {{addresses: [10.0.12.1/31, "2001:db8:12::1/127"]}}
    routes:
      - {{to: 10.1.0.0/24, via: 10.0.12.0}}
      - {{to: "2001:db8:1::/64", via: "2001:db8:12::"}}
  r3:
    interfaces:
      eth1: {{addresses: [10.0.13.1/31, "2001:db8:13::1/127"]}}
links:
  - endpoints: [h1:eth0, r1:eth1]
  - endpoints: [r1:eth2, r2:eth1]
  - endpoints: [r1:eth3, r3:eth1]
"#
    )
}

fn up(name: &str) -> TestLab {
    let lab = TestLab::new(name, &lab_yaml(name));
    lab.up();
    lab
}

/// The open namespace of `node`, as the test runner opens it.
fn netns(lab: &TestLab, node: &str) -> File {
    let name = topo::plan::names::node_netns(&lab.name, node);
    File::open(format!("/run/netns/{name}")).expect("open the node's netns")
}

fn ping(lab: &TestLab, node: &str, dst: &str, count: u32) -> Echo {
    let dst: IpAddr = dst.parse().expect("address");
    icmp::ping(
        &netns(lab, node),
        dst,
        None,
        count,
        Duration::from_millis(50),
        Duration::from_secs(4),
    )
    .expect("ping runs")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn ping_gets_every_reply_from_a_neighbour_v4_and_v6() {
    let lab = up("chk-nbr");
    for dst in ["10.1.0.1", "2001:db8:1::1"] {
        let echo = ping(&lab, "h1", dst, 3);
        assert_eq!((echo.sent, echo.received), (3, 3), "{dst}: {echo:?}");
        assert!(
            echo.rtt.is_some_and(|t| t < Duration::from_secs(1)),
            "{echo:?}"
        );
        assert_eq!(echo.error, None);
    }
    // From a given source address of the node; one that is not the node's is an error.
    let h1 = netns(&lab, "h1");
    let source = Some("10.1.0.10".parse().expect("address"));
    let dst = "10.1.0.1".parse().expect("address");
    let echo = icmp::ping(&h1, dst, source, 1, Duration::ZERO, Duration::from_secs(2));
    assert_eq!(echo.expect("ping runs").received, 1);
    let foreign = Some("10.1.0.99".parse().expect("address"));
    let err = icmp::ping(&h1, dst, foreign, 1, Duration::ZERO, Duration::from_secs(2))
        .expect_err("not the node's address");
    assert!(err.to_string().contains("bind to 10.1.0.99"), "{err}");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn ping_crosses_a_forwarding_router_v4_and_v6() {
    let lab = up("chk-hop");
    for dst in ["10.255.0.2", "2001:db8:ff::2"] {
        let echo = ping(&lab, "h1", dst, 2);
        assert_eq!(
            (echo.sent, echo.received),
            (2, 2),
            "h1 -> r1 -> r2 {dst}: {echo:?}"
        );
    }
    // The host's own forwarding is never what carried it: h1 and r2 are namespaces of the
    // lab and r1 forwards because the file says so.
    let fwd = netns_exec(&lab.ns("r1"), &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&fwd.stdout), "1\n");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn ping_without_a_route_gets_nothing_and_says_why() {
    let lab = up("chk-unr");
    // r2 has no route at all to these: the kernel refuses to send.
    for dst in ["198.51.100.1", "2001:db8:dead::1"] {
        let start = Instant::now();
        let echo = ping(&lab, "r2", dst, 3);
        assert_eq!((echo.sent, echo.received), (0, 0), "{echo:?}");
        let error = echo.error.expect("an error");
        assert!(error.contains("Network is unreachable"), "{dst}: {error}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "no waiting for nothing"
        );
    }
    // h1 sends to its default router, which has no route and says so.
    for (dst, router) in [
        ("203.0.113.1", "10.1.0.1"),
        ("2001:db8:dead::1", "2001:db8:1::1"),
    ] {
        let echo = ping(&lab, "h1", dst, 1);
        assert_eq!((echo.sent, echo.received), (1, 0), "{echo:?}");
        let error = echo.error.expect("an ICMP error from r1");
        assert!(
            error.starts_with("destination unreachable")
                && error.ends_with(&format!("from {router}")),
            "{dst}: {error}"
        );
    }
}

fn hop(via: &str, dev: &str) -> Nexthop {
    Nexthop {
        via: (!via.is_empty()).then(|| via.parse().expect("address")),
        dev: Some(dev.to_string()),
    }
}

fn query(prefix: &str, via: Option<&str>, dev: Option<&str>, protocol: Option<&str>) -> RouteQuery {
    RouteQuery {
        prefix: prefix.parse().expect("prefix"),
        via: via.map(|v| v.parse().expect("address")),
        dev: dev.map(str::to_string),
        protocol: protocol.map(str::to_string),
    }
}

fn found<'a>(routes: &'a [KernelRoute], q: &RouteQuery) -> &'a KernelRoute {
    routes::find(routes, q).unwrap_or_else(|e| panic!("{e}\nall: {routes:#?}"))
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn routes_of_the_file_read_back_with_their_next_hops_devices_and_protocol() {
    let lab = up("chk-rt");
    let routes = routes::read(&netns(&lab, "r1")).expect("read r1's routes");

    let ecmp = found(&routes, &query("10.9.0.0/24", None, None, Some("topo")));
    assert_eq!(
        ecmp.nexthops,
        vec![hop("10.0.12.1", "eth2"), hop("10.0.13.1", "eth3")]
    );
    assert_eq!(
        (ecmp.kind.as_str(), ecmp.protocol.as_str()),
        ("unicast", "topo")
    );
    let ecmp6 = found(&routes, &query("2001:db8:9::/64", None, None, Some("200")));
    assert_eq!(
        ecmp6.nexthops,
        vec![hop("2001:db8:12::1", "eth2"), hop("2001:db8:13::1", "eth3")]
    );
    assert_eq!(ecmp6.metric, Some(1024));
    let plain = found(
        &routes,
        &query("10.255.0.2/32", Some("10.0.12.1"), Some("eth2"), None),
    );
    assert_eq!(plain.nexthops, vec![hop("10.0.12.1", "eth2")]);
    found(
        &routes,
        &query(
            "2001:db8:ff::2/128",
            Some("2001:db8:12::1"),
            None,
            Some("topo"),
        ),
    );
    let direct = found(&routes, &query("192.0.2.0/24", None, Some("eth3"), None));
    assert_eq!(
        (direct.nexthops.clone(), direct.metric),
        (vec![hop("", "eth3")], Some(7))
    );
    // The kernel's own route of a connected subnet.
    let connected = found(
        &routes,
        &query("10.1.0.0/24", None, Some("eth1"), Some("kernel")),
    );
    assert_eq!(connected.nexthops, vec![hop("", "eth1")]);

    // What a failed check says.
    let e = routes::find(
        &routes,
        &query("10.9.0.0/24", Some("10.0.99.1"), None, None),
    )
    .expect_err("no such next hop");
    assert_eq!(
        e,
        "10.9.0.0/24 is via 10.0.12.1 dev eth2, via 10.0.13.1 dev eth3 proto topo, \
         not via 10.0.99.1"
    );
    let e = routes::find(&routes, &query("10.255.0.2/32", None, None, Some("ospf")))
        .expect_err("another protocol");
    assert!(e.ends_with("proto topo, not proto ospf"), "{e}");
    let e = routes::find(&routes, &query("10.9.1.0/24", None, None, None)).expect_err("none");
    assert!(
        e.starts_with("no route for 10.9.1.0/24; routes: 10.9.0.0/24 via 10.0.12.1"),
        "{e}"
    );

    // The same as iproute2 reads: every IPv4 prefix of `ip route` and nothing more.
    let mut by_ip: Vec<String> = ip_json(Some(&lab.ns("r1")), &["-4", "route", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["dst"].as_str().unwrap_or("").to_string())
        .collect();
    by_ip.sort();
    let mut ours: Vec<String> = routes
        .iter()
        .filter(|r| r.prefix.is_ipv4())
        .map(|r| match r.prefix.prefix() {
            32 => r.prefix.ip().to_string(),
            _ => r.prefix.to_string(),
        })
        .collect();
    ours.sort();
    assert_eq!(ours, by_ip);
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn one_echo_call_compared_with_ip_netns_exec_ping() {
    let lab = up("chk-time");
    let h1 = netns(&lab, "h1");
    let dst: IpAddr = "10.1.0.1".parse().expect("address");
    let once = || icmp::ping(&h1, dst, None, 1, Duration::ZERO, Duration::from_secs(1));
    assert_eq!(once().expect("warm-up").received, 1, "neighbour resolved");
    let runs = 20;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let echo = once().expect("ping runs");
        ours.push(t.elapsed());
        assert_eq!(echo.received, 1);
        let t = Instant::now();
        let out = netns_exec(&lab.ns("h1"), &["ping", "-c1", "-W1", "10.1.0.1"]);
        theirs.push(t.elapsed());
        assert!(out.status.success(), "{}", text(&out));
    }
    ours.sort();
    theirs.sort();
    eprintln!(
        "one echo to a neighbour, median of {runs}: check::icmp::ping {:?} (min {:?}, max {:?}); \
         ip netns exec ping -c1 -W1 {:?} (min {:?}, max {:?})",
        ours[runs / 2],
        ours[0],
        ours[runs - 1],
        theirs[runs / 2],
        theirs[0],
        theirs[runs - 1],
    );
    assert!(
        ours[runs / 2] < theirs[runs / 2],
        "no slower than a ping process"
    );
}
