//! The FRR labs of `topologies/`, Debian's FRR daemons running as services in the routers:
//! `frr-ospf-bgp/` (two routers, OSPFv2 and eBGP), `frr-ospf/` (four routers in two OSPF
//! areas, OSPFv2 and OSPFv3) and `frr-bgp/` (three autonomous systems in a triangle of eBGP
//! sessions). Each test brings up a copy of a lab under a name of its own and waits for the
//! adjacencies and sessions as the daemons report them in JSON (`vtysh -c '… json'`) and for
//! the routes they install in the kernels (`ip -j route` in the nodes: protocol and output
//! device); then it checks traffic end to end, that a second `up` changes nothing, a link
//! failover where the lab has a backup path, and that `down` leaves no daemon, namespace, mount
//! or cgroup. They need root and FRR (`apt-get install frr`; see `build.rs`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::routing::*;

/// The daemons of Debian's `frr` the labs run, by command name.
const FRR: &[&str] = &["zebra", "ospfd", "ospf6d", "bgpd"];

/// How long after `topo up` began every daemon has started: they wait up to 10 s for zebra's
/// socket first.
const DAEMONS_STARTED: Duration = Duration::from_secs(15);

/// A vtysh command's JSON output in a node, or None when vtysh fails (a daemon not up yet).
fn vtysh_json(lab: &TestLab, node: &str, command: &str) -> Option<Value> {
    let out = lab.exec(node, &["vtysh", "-c", command]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The router IDs of `node`'s OSPFv2 neighbours in state Full (`show ip ospf neighbor json`:
/// `{"neighbors": {ID: [{"nbrState": "Full/-", …}]}}`).
fn ospf_full(lab: &TestLab, node: &str) -> Vec<String> {
    let Some(v) = vtysh_json(lab, node, "show ip ospf neighbor json") else {
        return Vec::new();
    };
    let full = |n: &Value| {
        ["nbrState", "state", "converged"]
            .iter()
            .any(|k| n[*k].as_str().is_some_and(|s| s.starts_with("Full")))
    };
    v["neighbors"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, adjacencies)| adjacencies.as_array().into_iter().flatten().any(full))
        .map(|(id, _)| id.clone())
        .collect()
}

/// The router IDs of `node`'s OSPFv3 neighbours in state Full (`show ipv6 ospf6 neighbor
/// json`: `{"neighbors": [{"neighborId": ID, "state": "Full", …}]}`).
fn ospf6_full(lab: &TestLab, node: &str) -> Vec<String> {
    let Some(v) = vtysh_json(lab, node, "show ipv6 ospf6 neighbor json") else {
        return Vec::new();
    };
    v["neighbors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["state"] == "Full")
        .filter_map(|n| n["neighborId"].as_str().map(str::to_string))
        .collect()
}

/// The peers of `node`'s bgpd that are Established in address family `af` (`ipv4Unicast`,
/// `ipv6Unicast`) and have sent at least `prefixes` prefixes (`show bgp summary json`).
fn bgp_established(lab: &TestLab, node: &str, af: &str, prefixes: u64) -> Vec<String> {
    let Some(v) = vtysh_json(lab, node, "show bgp summary json") else {
        return Vec::new();
    };
    v[af]["peers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| p["state"] == "Established" && p["pfxRcd"].as_u64() >= Some(prefixes))
        .map(|(peer, _)| peer.clone())
        .collect()
}

fn ids(routers: &[u8]) -> Vec<String> {
    routers.iter().map(|n| format!("10.255.0.{n}")).collect()
}

// The two-router lab, topologies/frr-ospf-bgp/.

/// Brings up `file` of the two-router lab as `name`, waits until OSPF carries each router's
/// IPv4 loopback to the other and BGP its IPv6 one, pings between the loopbacks, then checks
/// that a second `up` is a no-op and that `down` leaves nothing.
fn two_routers_converge(name: &str, file: &str) {
    let lab = example_lab(name, "frr-ospf-bgp", file);
    let diagnosis = || {
        routing_report(
            &lab,
            &["r1", "r2"],
            &[
                &["vtysh", "-c", "show ip ospf neighbor"],
                &["vtysh", "-c", "show bgp summary"],
            ],
            &["zebra", "ospfd", "bgpd"],
        )
    };
    let started = Instant::now();
    lab.up();
    let took = converge(
        &lab,
        started,
        (FRR, 6, DAEMONS_STARTED),
        || {
            for (node, peer) in [("r1", 2), ("r2", 1)] {
                let ospf = ospf_full(&lab, node);
                expect_all(node, "OSPFv2 neighbours Full", &ospf, &ids(&[peer]))?;
                let bgp = bgp_established(&lab, node, "ipv6Unicast", 1);
                let want = [format!("2001:db8:12::{peer}")];
                expect_all(node, "IPv6 BGP peers Established", &bgp, &want)?;
                let routes = kernel_routes(&lab, node).ok_or("ip route failed")?;
                let [v4, v6] = plan_prefixes(&format!("lo{peer}"));
                check_route(node, &routes, &v4, "ospf", "eth1")?;
                check_route(node, &routes, &v6, "bgp", "eth1")?;
            }
            Ok(())
        },
        diagnosis,
    );
    eprintln!("lab {name} ({file}): converged {took:.1?} after `topo up` began");
    // Traffic between the loopbacks follows the routes the daemons installed.
    for (src, dst) in [
        ("10.255.0.1", "10.255.0.2"),
        ("2001:db8:ff::1", "2001:db8:ff::2"),
    ] {
        let out = lab.exec(
            "r1",
            &["ping", "-c", "1", "-i", "0.5", "-w", "4", "-I", src, dst],
        );
        assert!(out.status.success(), "ping {src} -> {dst}:\n{}", text(&out));
    }
    let daemons = lab_daemons(name, FRR);
    assert_eq!(daemons.len(), 6, "three daemons per router: {daemons:?}");
    assert_second_up_is_a_no_op(&lab, FRR, &daemons);
    let out = lab.down();
    assert!(out.status.success(), "topo down:\n{}", text(&out));
    assert_lab_gone(name, &daemons);
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_lab_converges_with_a_user_namespace_per_node() {
    two_routers_converge("tfrr-userns", "lab.yaml");
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_lab_converges_without_user_namespaces() {
    two_routers_converge("tfrr-hostns", "lab-host-userns.yaml");
}

/// The two files describe the same lab: they differ only above `nodes:` (name, comments and
/// `defaults`).
#[test]
fn frr_lab_files_have_the_same_nodes_and_links() {
    let dir = example_dir("frr-ospf-bgp");
    let body = |file: &str| {
        let yaml = std::fs::read_to_string(dir.join(file)).expect("read lab file");
        let at = yaml.find("\nnodes:\n").expect("a nodes: section");
        yaml[at..].to_string()
    };
    assert_eq!(body("lab.yaml"), body("lab-host-userns.yaml"));
}

/// Every FRR lab file is valid (`topo validate`: it needs neither root nor FRR).
#[test]
fn frr_lab_files_validate() {
    for (lab, file) in [
        ("frr-ospf-bgp", "lab.yaml"),
        ("frr-ospf-bgp", "lab-host-userns.yaml"),
        ("frr-ospf", "lab.yaml"),
        ("frr-bgp", "lab.yaml"),
    ] {
        let lab_file = example_dir(lab).join(file);
        let out = topo(&["validate", path(&lab_file)]);
        assert!(out.status.success(), "{lab}/{file}:\n{}", text(&out));
    }
}

// The OSPF lab, topologies/frr-ospf/.

/// Each router's OSPF neighbours (router IDs 10.255.0.N), the same for OSPFv2 and OSPFv3.
const OSPF_NEIGHBOURS: &[(&str, &[u8])] = &[
    ("r1", &[2]),
    ("r2", &[1, 3, 4]),
    ("r3", &[2, 4]),
    ("r4", &[2, 3]),
];

/// The routes each router of the OSPF lab learns, IPv4 and IPv6, by output device: the
/// shortest paths (every link costs 10).
const OSPF_ROUTES: &[(&str, &str, &[&str])] = &[
    ("r1", "eth1", &["lo2", "lo3", "lo4", "lan2"]),
    ("r2", "eth1", &["lo1", "lan1"]),
    ("r2", "eth2", &["lo3"]),
    ("r2", "eth3", &["lo4", "lan2"]),
    ("r3", "eth1", &["lo1", "lan1", "lo2"]),
    ("r3", "eth2", &["lo4", "lan2"]),
    ("r4", "eth1", &["lo1", "lan1", "lo2"]),
    ("r4", "eth2", &["lo3"]),
];

/// The four-router lab converges in both areas and both families: every adjacency Full in
/// ospfd and ospf6d, the shortest paths in every kernel, the far LANs inter-area routes
/// through the area border router r2, h1 reaching h2 and r3; with r2-r4 down r2 routes to r4
/// and h2's LAN through r3, and back when `up` restores the link.
#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_ospf_lab_converges_in_two_areas_and_fails_over() {
    let name = "lb-ospf";
    let lab = example_lab(name, "frr-ospf", "lab.yaml");
    let routers = ["r1", "r2", "r3", "r4"];
    let diagnosis = || {
        routing_report(
            &lab,
            &routers,
            &[
                &["vtysh", "-c", "show ip ospf neighbor"],
                &["vtysh", "-c", "show ipv6 ospf6 neighbor"],
            ],
            &["zebra", "ospfd", "ospf6d"],
        )
    };
    let started = Instant::now();
    lab.up();
    let took = converge(
        &lab,
        started,
        (FRR, 12, DAEMONS_STARTED),
        || {
            for (node, neighbours) in OSPF_NEIGHBOURS {
                let want = ids(neighbours);
                let v2 = ospf_full(&lab, node);
                expect_all(node, "OSPFv2 neighbours Full", &v2, &want)?;
                let v3 = ospf6_full(&lab, node);
                expect_all(node, "OSPFv3 neighbours Full", &v3, &want)?;
            }
            expect_routes(&lab, "ospf", OSPF_ROUTES)
        },
        diagnosis,
    );
    eprintln!("lab {name}: converged {took:.1?} after `topo up` began");
    // r2 joins the areas: the far end's LAN is an inter-area route, in both protocols.
    for (node, far) in [("r1", "lan2"), ("r4", "lan1")] {
        let [v4, v6] = plan_prefixes(far);
        let routes = vtysh_json(&lab, node, "show ip ospf route json").unwrap_or_default();
        assert_eq!(
            routes[&v4]["routeType"], "N IA",
            "{node}: ospfd's route to {v4}: {}",
            routes[&v4]
        );
        let command = format!("show ipv6 ospf6 route {v6} json");
        let routes = vtysh_json(&lab, node, &command).unwrap_or_default();
        assert_eq!(
            routes["routes"][&v6]["pathType"], "Inter-Area",
            "{node}: ospf6d's route to {v6}: {}",
            routes["routes"][&v6]
        );
    }
    pings(
        &lab,
        &[
            ("h1", "10.2.0.10"),
            ("h1", "2001:db8:2::10"),
            ("h1", "10.255.0.3"),
            ("h1", "2001:db8:ff::3"),
        ],
        diagnosis,
    );
    let daemons = lab_daemons(name, FRR);
    assert_eq!(daemons.len(), 12, "three daemons per router: {daemons:?}");
    assert_second_up_is_a_no_op(&lab, FRR, &daemons);
    let moved = fail_over(
        &lab,
        "r2:eth3",
        "r2",
        &["lo4", "lan2"],
        "ospf",
        ("eth3", "eth2"),
        &[("h1", "10.2.0.10"), ("h1", "2001:db8:2::10")],
        diagnosis,
    );
    eprintln!("lab {name}: r2 routed around r2:eth3 {moved:.1?} after it went down");
    assert_eq!(
        lab_daemons(name, FRR),
        daemons,
        "daemons after the failover"
    );
    let out = lab.down();
    assert!(out.status.success(), "topo down:\n{}", text(&out));
    assert_lab_gone(name, &daemons);
}

// The BGP lab, topologies/frr-bgp/.

/// Each router's BGP neighbours, as (IPv4 address, IPv6 address) of the far end of a link.
const BGP_PEERS: &[(&str, &[(&str, &str)])] = &[
    (
        "r1",
        &[
            ("10.0.12.2", "2001:db8:12::2"),
            ("10.0.13.3", "2001:db8:13::3"),
        ],
    ),
    (
        "r2",
        &[
            ("10.0.12.1", "2001:db8:12::1"),
            ("10.0.23.3", "2001:db8:23::3"),
        ],
    ),
    (
        "r3",
        &[
            ("10.0.13.1", "2001:db8:13::1"),
            ("10.0.23.2", "2001:db8:23::2"),
        ],
    ),
];

/// The routes each router of the BGP lab learns, IPv4 and IPv6, by output device: straight
/// to the originating AS (the shorter AS path).
const BGP_ROUTES: &[(&str, &str, &[&str])] = &[
    ("r1", "eth1", &["lo2", "lan2"]),
    ("r1", "eth2", &["lo3", "lan3"]),
    ("r2", "eth1", &["lo1", "lan1"]),
    ("r2", "eth2", &["lo3", "lan3"]),
    ("r3", "eth1", &["lo1", "lan1"]),
    ("r3", "eth2", &["lo2", "lan2"]),
];

/// The three-AS lab converges: on every router both IPv4 and both IPv6 sessions Established,
/// each with the four prefixes of the other two ASes (one AS directly, the other through
/// it), the direct paths in every kernel, every host reaching the others; with r1-r2 down r1
/// reaches AS 65002 through AS 65003, and directly again once `up` restores the link.
#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_bgp_lab_converges_between_three_ases_and_fails_over() {
    let name = "lb-bgp";
    let lab = example_lab(name, "frr-bgp", "lab.yaml");
    let routers = ["r1", "r2", "r3"];
    let diagnosis = || {
        routing_report(
            &lab,
            &routers,
            &[&["vtysh", "-c", "show bgp summary"]],
            &["zebra", "bgpd"],
        )
    };
    let started = Instant::now();
    lab.up();
    let took = converge(
        &lab,
        started,
        (FRR, 6, DAEMONS_STARTED),
        || {
            for (node, peers) in BGP_PEERS {
                let v4: Vec<String> = peers.iter().map(|(a, _)| a.to_string()).collect();
                let v6: Vec<String> = peers.iter().map(|(_, a)| a.to_string()).collect();
                let up = bgp_established(&lab, node, "ipv4Unicast", 4);
                expect_all(node, "IPv4 BGP peers Established with 4 prefixes", &up, &v4)?;
                let up = bgp_established(&lab, node, "ipv6Unicast", 4);
                expect_all(node, "IPv6 BGP peers Established with 4 prefixes", &up, &v6)?;
            }
            expect_routes(&lab, "bgp", BGP_ROUTES)
        },
        diagnosis,
    );
    eprintln!("lab {name}: converged {took:.1?} after `topo up` began");
    pings(
        &lab,
        &[
            ("h1", "10.2.0.10"),
            ("h1", "2001:db8:2::10"),
            ("h1", "10.3.0.10"),
            ("h1", "2001:db8:3::10"),
            ("h2", "10.3.0.10"),
            ("h2", "2001:db8:3::10"),
        ],
        diagnosis,
    );
    let daemons = lab_daemons(name, FRR);
    assert_eq!(daemons.len(), 6, "two daemons per router: {daemons:?}");
    assert_second_up_is_a_no_op(&lab, FRR, &daemons);
    let moved = fail_over(
        &lab,
        "r1:eth1",
        "r1",
        &["lo2", "lan2"],
        "bgp",
        ("eth1", "eth2"),
        &[("h1", "10.2.0.10"), ("h1", "2001:db8:2::10")],
        diagnosis,
    );
    eprintln!("lab {name}: r1 routed around r1:eth1 {moved:.1?} after it went down");
    assert_eq!(
        lab_daemons(name, FRR),
        daemons,
        "daemons after the failover"
    );
    let out = lab.down();
    assert!(out.status.success(), "topo down:\n{}", text(&out));
    assert_lab_gone(name, &daemons);
}
