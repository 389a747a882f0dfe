//! The BIRD lab of `topologies/bird-ospf/`: three routers running Debian's BIRD 2 as a
//! service, OSPFv2 and OSPFv3 in one area. The test brings up a copy of the lab under a name
//! of its own and waits for the protocols and adjacencies as `birdc` reports them (BIRD has no
//! JSON output: its tables are parsed by column) and for the routes bird installs in the
//! kernels (`ip -j route` in the nodes: `proto bird`, output device); then it checks traffic
//! end to end, that a second `up` changes nothing, a link failover, and that `down` leaves no
//! daemon, namespace, mount or cgroup. It needs root and BIRD 2 (`apt-get install bird2`; see
//! `build.rs`).

use std::time::{Duration, Instant};

use crate::common::*;
use crate::routing::*;

/// Whether protocol `name` is up and running in `birdc show protocols` output. Its table:
///
/// ```text
/// BIRD 2.0.12 ready.
/// Name       Proto      Table      State  Since         Info
/// ospf4      OSPF       master4    up     09:45:35.525  Running
/// ```
///
/// State is the fourth column; Since is one word or two (a date before the time, once the
/// protocol has been up for a day), so Info is looked for among the words after State.
fn protocol_running(show_protocols: &str, name: &str, info: Option<&str>) -> bool {
    show_protocols.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.len() >= 5
            && words[0] == name
            && words[3] == "up"
            && info.is_none_or(|i| words[4..].contains(&i))
    })
}

/// The router IDs of the neighbours in state Full in `birdc show ospf neighbors PROTOCOL`
/// output:
///
/// ```text
/// ospf4:
/// Router ID   Pri     State      DTime   Interface  Router IP
/// 10.255.0.2    1     Full/PtP    3.965  eth1       10.0.12.2
/// ```
///
/// (BIRD separates the columns with tabs.)
fn ospf_full(show_neighbors: &str) -> Vec<String> {
    show_neighbors
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let id = *words.first()?;
            (words.len() >= 3
                && id.parse::<std::net::Ipv4Addr>().is_ok()
                && words[2].starts_with("Full"))
            .then(|| id.to_string())
        })
        .collect()
}

/// The parsers read BIRD's tables as BIRD 2.0.12 prints them, and do not take other states,
/// protocols or headers for what they look for.
#[test]
fn birdc_tables_are_parsed_by_column() {
    let protocols = "BIRD 2.0.12 ready.\n\
        Name       Proto      Table      State  Since         Info\n\
        device1    Device     ---        up     09:45:35.525  \n\
        kernel4    Kernel     master4    up     2026-12-03 09:45:35  \n\
        ospf4      OSPF       master4    up     2026-12-03 09:45:35  Running\n\
        ospf6      OSPF       master6    start  09:45:35.525  Alone\n";
    assert!(protocol_running(protocols, "ospf4", Some("Running")));
    assert!(protocol_running(protocols, "kernel4", None));
    assert!(!protocol_running(protocols, "ospf6", None));
    assert!(!protocol_running(protocols, "ospf6", Some("Running")));
    assert!(!protocol_running(protocols, "kernel6", None));
    assert!(!protocol_running(protocols, "Name", None));
    let neighbors = "BIRD 2.0.12 ready.\n\
        ospf4:\n\
        Router ID   \tPri\t     State     \tDTime\tInterface  Router IP\n\
        10.255.0.2  \t  1\tFull/PtP  \t 3.965\teth1       10.0.12.2\n\
        10.255.0.3  \t  1\tExchange/PtP\t 3.968\teth2       10.0.13.3\n\
        10.255.0.4  \t  1\tFull/BDR  \t 3.885\teth3       fe80::1\n";
    assert_eq!(ospf_full(neighbors), ["10.255.0.2", "10.255.0.4"]);
    assert_eq!(
        ospf_full("Unable to connect to server control socket"),
        Vec::<String>::new()
    );
}

/// The lab file is valid (`topo validate`), and bird parses every router's configuration
/// (`bird -p`: parse and exit, as the user running the test; it needs BIRD, not root).
#[test]
#[cfg_attr(not(bird), ignore = "needs BIRD 2 (apt-get install bird2)")]
fn bird_lab_file_and_configurations_parse() {
    let dir = example_dir("bird-ospf");
    let out = topo(&["validate", path(&dir.join("lab.yaml"))]);
    assert!(out.status.success(), "lab.yaml:\n{}", text(&out));
    for router in ["r1", "r2", "r3"] {
        let conf = dir.join(router).join("bird.conf");
        let out = std::process::Command::new("/usr/sbin/bird")
            .args(["-p", "-c", path(&conf)])
            .output()
            .expect("run bird -p");
        assert!(out.status.success(), "{}:\n{}", conf.display(), text(&out));
    }
}

/// `birdc ARGS…` in a node: its output, or None when birdc fails (bird not up yet).
fn birdc(lab: &TestLab, node: &str, args: &[&str]) -> Option<String> {
    let mut argv = vec!["birdc"];
    argv.extend_from_slice(args);
    let out = lab.exec(node, &argv);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Each router's OSPF neighbours (router IDs), the same for OSPFv2 (protocol ospf4) and
/// OSPFv3 (ospf6).
const NEIGHBOURS: &[(&str, &[&str])] = &[
    ("r1", &["10.255.0.2", "10.255.0.3"]),
    ("r2", &["10.255.0.1", "10.255.0.3"]),
    ("r3", &["10.255.0.1", "10.255.0.2"]),
];

/// The routes each router learns, IPv4 and IPv6, by output device: straight to the router
/// whose loopback or LAN it is.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("r1", "eth1", &["lo2", "lan2"]),
    ("r1", "eth2", &["lo3"]),
    ("r2", "eth1", &["lo1", "lan1"]),
    ("r2", "eth2", &["lo3"]),
    ("r3", "eth1", &["lo1", "lan1"]),
    ("r3", "eth2", &["lo2", "lan2"]),
];

/// The BIRD lab converges: in every router the OSPF and kernel protocols up, both
/// neighbours Full in OSPFv2 and OSPFv3, the direct paths in every kernel as `proto bird`
/// (the IPv6 loopbacks too, configured stub networks), h1 reaching h2 and r3's loopback;
/// bird runs as the user bird; with r1-r2 down r1 routes to r2 through r3, and directly again
/// once `up` restores the link.
#[test]
#[cfg_attr(
    not(all(kernel_tests, bird)),
    ignore = "needs root and BIRD 2 (apt-get install bird2)"
)]
fn bird_ospf_lab_converges_and_fails_over() {
    bird_ospf_lab();
}

fn bird_ospf_lab() {
    let name = "lb-bird";
    let lab = example_lab(name, "bird-ospf", "lab.yaml");
    let routers = ["r1", "r2", "r3"];
    let diagnosis = || {
        routing_report(
            &lab,
            &routers,
            &[
                &["birdc", "show", "protocols"],
                &["birdc", "show", "ospf", "neighbors"],
            ],
            &["bird"],
        )
    };
    let started = Instant::now();
    lab.up();
    let took = converge(
        &lab,
        started,
        (&["bird"], 3, Duration::from_secs(5)),
        || {
            for (node, neighbours) in NEIGHBOURS {
                let protocols = birdc(&lab, node, &["show", "protocols"]).unwrap_or_default();
                for (protocol, info) in [
                    ("ospf4", Some("Running")),
                    ("ospf6", Some("Running")),
                    ("kernel4", None),
                    ("kernel6", None),
                ] {
                    if !protocol_running(&protocols, protocol, info) {
                        return Err(format!("{node}: {protocol} not running:\n{protocols}"));
                    }
                }
                let want: Vec<String> = neighbours.iter().map(|n| n.to_string()).collect();
                for protocol in ["ospf4", "ospf6"] {
                    let show = birdc(&lab, node, &["show", "ospf", "neighbors", protocol]);
                    let full = ospf_full(&show.unwrap_or_default());
                    expect_all(node, &format!("{protocol} neighbours Full"), &full, &want)?;
                }
            }
            expect_routes(&lab, "bird", ROUTES)
        },
        diagnosis,
    );
    eprintln!("lab {name}: converged {took:.1?} after `topo up` began");
    for to in [
        "10.2.0.10",
        "2001:db8:2::10",
        "10.255.0.3",
        "2001:db8:ff::3",
    ] {
        if let Err(e) = lab_ping(&lab, "h1", to) {
            panic!("lab {name}: {e}\n{}", diagnosis());
        }
    }
    // Started as root, bird dropped to its own user (node root is uid 0 in the node's user
    // namespace; the user bird is the host's, mapped alike).
    for node in routers {
        let out = lab.exec(node, &["ps", "-o", "user=", "-C", "bird"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "bird",
            "{node}: bird's user:\n{}",
            text(&out)
        );
    }
    let daemons = lab_daemons(name, &["bird"]);
    assert_eq!(daemons.len(), 3, "one bird per router: {daemons:?}");
    assert_second_up_is_a_no_op(&lab, &["bird"], &daemons);
    let moved = fail_over(
        &lab,
        "r1:eth1",
        "r1",
        &["lo2", "lan2"],
        "bird",
        ("eth1", "eth2"),
        &[("h1", "10.2.0.10"), ("h1", "2001:db8:2::10")],
        diagnosis,
    );
    eprintln!("lab {name}: r1 routed around r1:eth1 {moved:.1?} after it went down");
    assert_eq!(
        lab_daemons(name, &["bird"]),
        daemons,
        "birds after the failover"
    );
    let out = lab.down();
    assert!(out.status.success(), "topo down:\n{}", text(&out));
    assert_lab_gone(name, &daemons);
}
