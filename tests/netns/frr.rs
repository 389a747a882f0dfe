//! The FRR lab (`topologies/frr-ospf-bgp/`): two routers running Debian's zebra, ospfd and
//! bgpd as services. Each test brings up one of the lab's files under a name of its own, waits
//! for the OSPF adjacency (Full) and the BGP session (Established) as the daemons report them
//! in JSON, then checks the routes the daemons put in the kernel and traffic between the
//! routers' loopback addresses. They need root and FRR (`apt-get install frr`; see `build.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// How long the daemons get to converge; on an idle machine it takes about two seconds.
const CONVERGE: Duration = Duration::from_secs(60);

fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/frr-ospf-bgp")
}

/// How long after `topo up` began every daemon has started: ospfd and bgpd wait up to 10 s
/// for zebra's socket first.
const DAEMONS_STARTED: Duration = Duration::from_secs(15);

/// The lab's FRR daemons that are running, as (PID, name).
fn daemons(lab: &str) -> Vec<(String, String)> {
    lab_processes(lab)
        .into_iter()
        .filter(|(_, comm)| ["zebra", "ospfd", "bgpd"].contains(&comm.as_str()))
        .collect()
}

/// `file` of the lab with its `name:` replaced by `name`, in a test directory beside a copy
/// of the routers' configuration directories (the file binds them relative to itself).
fn frr_lab(name: &str, file: &str) -> TestLab {
    let src = lab_dir();
    let yaml = std::fs::read_to_string(src.join(file)).expect("read the lab file");
    let yaml = with_name(&yaml, name);
    let lab = TestLab::new(name, &yaml);
    for router in ["r1", "r2"] {
        let to = lab.dir.join(router);
        std::fs::create_dir_all(&to).expect("router config dir");
        for entry in std::fs::read_dir(src.join(router)).expect("read router config dir") {
            let entry = entry.expect("dir entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy config file");
        }
    }
    lab
}

/// `yaml` with its top-level `name:` line replaced.
fn with_name(yaml: &str, name: &str) -> String {
    let mut replaced = false;
    let lines: Vec<String> = yaml
        .lines()
        .map(|l| {
            if !replaced && l.starts_with("name:") {
                replaced = true;
                format!("name: {name}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(replaced, "the lab file has a top-level name: line");
    lines.join("\n") + "\n"
}

/// A vtysh command's JSON output in a node, or None when vtysh fails (a daemon not up yet).
fn vtysh_json(lab: &TestLab, node: &str, command: &str) -> Option<Value> {
    let out = lab.exec(node, &["vtysh", "-c", command]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Whether `node`'s ospfd has an adjacency in state Full with router `neighbor_id`.
fn ospf_full(lab: &TestLab, node: &str, neighbor_id: &str) -> bool {
    let Some(v) = vtysh_json(lab, node, "show ip ospf neighbor json") else {
        return false;
    };
    v["neighbors"][neighbor_id]
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| {
            ["nbrState", "state", "converged"]
                .iter()
                .any(|k| n[*k].as_str().is_some_and(|s| s.starts_with("Full")))
        })
}

/// Whether `node`'s bgpd has its IPv6 unicast session with `peer` Established and has
/// received at least one prefix over it.
fn bgp_established(lab: &TestLab, node: &str, peer: &str) -> bool {
    let Some(v) = vtysh_json(lab, node, "show bgp summary json") else {
        return false;
    };
    let p = &v["ipv6Unicast"]["peers"][peer];
    p["state"] == "Established" && p["pfxRcd"].as_u64().unwrap_or(0) >= 1
}

/// The protocol (`ospf`, `bgp`, …) of the kernel's route to exactly `prefix` in a node's main
/// table, read with `ip -j route` inside the node.
fn route_protocol(lab: &TestLab, node: &str, family: &str, prefix: &str) -> Option<String> {
    let out = lab.exec(
        node,
        &["ip", "-j", family, "route", "show", "exact", prefix],
    );
    if !out.status.success() {
        return None;
    }
    let routes: Value = serde_json::from_slice(&out.stdout).ok()?;
    routes
        .as_array()?
        .first()
        .and_then(|r| r["protocol"].as_str())
        .map(str::to_string)
}

/// Whether the lab has converged as seen from `node` (whose peer is `peer`): OSPF Full, BGP
/// Established, the peer's IPv4 loopback in the kernel from OSPF and its IPv6 loopback from
/// BGP.
fn converged(lab: &TestLab, node: &str, peer: usize) -> bool {
    ospf_full(lab, node, &format!("10.255.0.{peer}"))
        && bgp_established(lab, node, &format!("2001:db8:12::{peer}"))
        && route_protocol(lab, node, "-4", &format!("10.255.0.{peer}/32")).as_deref()
            == Some("ospf")
        && route_protocol(lab, node, "-6", &format!("2001:db8:ff::{peer}/128")).as_deref()
            == Some("bgp")
}

/// The last lines of a service's log, for a failure message.
fn log_tail(lab: &TestLab, node: &str, service: &str) -> String {
    let path = format!("/run/topo/{}/logs/{node}.{service}.log", lab.name);
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({path}: {e})"));
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    format!("--- {path}\n{tail}")
}

/// What a test reports when the lab did not converge: what the daemons and the kernel say.
fn diagnosis(lab: &TestLab) -> String {
    let mut s = String::new();
    for node in ["r1", "r2"] {
        for cmd in ["show ip ospf neighbor", "show bgp summary"] {
            let out = lab.exec(node, &["vtysh", "-c", cmd]);
            s += &format!("--- {node}: vtysh -c '{cmd}'\n{}\n", text(&out));
        }
        for family in ["-4", "-6"] {
            let out = lab.exec(node, &["ip", family, "route"]);
            s += &format!("--- {node}: ip {family} route\n{}\n", text(&out));
        }
        for service in ["zebra", "ospfd", "bgpd"] {
            s += &log_tail(lab, node, service);
            s.push('\n');
        }
    }
    s
}

/// Brings up `file` of the lab as `name`, waits for it to converge, checks routes and traffic
/// in both directions, then brings it down and checks that no daemon or namespace is left.
fn lab_converges(name: &str, file: &str) {
    let lab = frr_lab(name, file);
    let start = Instant::now();
    lab.up();
    let deadline = start + CONVERGE;
    loop {
        if converged(&lab, "r1", 2) && converged(&lab, "r2", 1) {
            break;
        }
        // A daemon missing once all have started has exited: fail now, not at the deadline.
        if start.elapsed() > DAEMONS_STARTED {
            let daemons = daemons(name);
            assert_eq!(
                daemons.len(),
                6,
                "lab {name} ({file}): a daemon has exited: {daemons:?}\n{}",
                diagnosis(&lab)
            );
        }
        assert!(
            Instant::now() < deadline,
            "lab {name} ({file}) did not converge within {CONVERGE:?}:\n{}",
            diagnosis(&lab)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "lab {name} ({file}): converged {:.1} s after `topo up` began",
        start.elapsed().as_secs_f64()
    );
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
    // Every daemon is still running: none died after the adjacency came up.
    for node in ["r1", "r2"] {
        for daemon in ["zebra", "ospfd", "bgpd"] {
            let out = lab.exec(node, &["test", "-e", &format!("/run/frr/{daemon}.vty")]);
            assert!(
                out.status.success(),
                "{node}: {daemon}'s vty socket is gone"
            );
        }
    }
    let daemons = daemons(name);
    assert_eq!(daemons.len(), 6, "three daemons per router: {daemons:?}");
    let out = lab.down();
    assert!(out.status.success(), "topo down:\n{}", text(&out));
    assert_eq!(lab_processes(name), Vec::<(String, String)>::new());
    assert_eq!(netns_with_prefix(&format!("{name}-")), Vec::<String>::new());
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_lab_converges_with_a_user_namespace_per_node() {
    lab_converges("tfrr-userns", "lab.yaml");
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_lab_converges_without_user_namespaces() {
    lab_converges("tfrr-hostns", "lab-host-userns.yaml");
}

/// The two files describe the same lab: they differ only above `nodes:` (name, comments and
/// `defaults`).
#[test]
fn frr_lab_files_have_the_same_nodes_and_links() {
    let dir = lab_dir();
    let body = |file: &str| {
        let yaml = std::fs::read_to_string(dir.join(file)).expect("read lab file");
        let at = yaml.find("\nnodes:\n").expect("a nodes: section");
        yaml[at..].to_string()
    };
    assert_eq!(body("lab.yaml"), body("lab-host-userns.yaml"));
}
