//! The triangle lab: reachability, kernel state as declared, idempotence, incremental
//! change, and a `down` that leaves nothing.

use crate::common::*;

fn triangle(name: &str) -> String {
    include_str!("../../topologies/triangle.yaml")
        .replace("name: triangle", &format!("name: {name}"))
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn triangle_h1_reaches_h2_through_the_routers_v4_and_v6() {
    let lab = TestLab::new("tn-tri", &triangle("tn-tri"));
    lab.up();
    let h1 = lab.ns("h1");
    assert!(ping(&h1, "10.2.0.10"), "h1 -> h2 over IPv4");
    assert!(ping(&h1, "2001:db8:2::10"), "h1 -> h2 over IPv6");
    assert!(ping(&h1, "10.255.0.2"), "h1 -> r2's loopback");
    // Addresses as declared, read back over netlink.
    assert_eq!(
        addresses(&lab.ns("r1"), "eth1"),
        vec!["10.0.12.0/31".to_string(), "2001:db8:12::/127".to_string()]
    );
    assert_eq!(
        addresses(&lab.ns("r1"), "lo"),
        vec![
            "10.255.0.1/32".to_string(),
            "2001:db8:ff::1/128".to_string()
        ]
    );
    // Routes: r3's ECMP default has both next hops.
    let routes = ip_json(Some(&lab.ns("r3")), &["route", "show", "default"]);
    let hops: Vec<String> = routes[0]["nexthops"]
        .as_array()
        .expect("ECMP default route has nexthops")
        .iter()
        .map(|h| h["gateway"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(hops, vec!["10.0.13.0", "10.0.23.0"]);
    // Sysctls from the defaults, read in the node's namespace from /proc.
    let fwd = netns_exec(
        &lab.ns("r2"),
        &[
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/net/ipv6/conf/all/forwarding",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&fwd.stdout), "1\n1\n");
    // Both ends of a link are up, with the lab's marker and a deterministic local MAC.
    let link = &ip_json(Some(&lab.ns("r1")), &["link", "show", "eth1"])[0];
    assert_eq!(link["operstate"], "UP");
    assert_eq!(link["ifalias"], "topo/tn-tri veth r1:eth1=r2:eth1");
    let mac = link["address"].as_str().unwrap_or("");
    assert!(
        u8::from_str_radix(&mac[..2], 16).expect("mac") & 0x03 == 0x02,
        "locally administered unicast MAC, got {mac}"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn second_up_changes_nothing_and_keeps_every_ifindex() {
    let lab = TestLab::new("tn-idem", &triangle("tn-idem"));
    lab.up();
    let before: Vec<_> = ["r1", "r2", "r3", "h1", "h2"]
        .iter()
        .map(|n| ifindexes(&lab.ns(n)))
        .collect();
    let plan = lab.plan();
    assert!(
        plan.contains("no changes"),
        "plan after up must be empty, got:\n{plan}"
    );
    let out = lab.up();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no changes"),
        "{}",
        text(&out)
    );
    let after: Vec<_> = ["r1", "r2", "r3", "h1", "h2"]
        .iter()
        .map(|n| ifindexes(&lab.ns(n)))
        .collect();
    assert_eq!(before, after);
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn changed_file_is_applied_as_exactly_the_difference() {
    let lab = TestLab::new("tn-inc", &triangle("tn-inc"));
    lab.up();
    let r2_before = ifindexes(&lab.ns("r2"));
    let h1_before = ifindexes(&lab.ns("h1"));
    let r3_eth1_before = ifindexes(&lab.ns("r3"));
    // One link added (r3:eth3 <-> h2:eth1), one route removed (r1's route to r3's
    // loopback), one address changed (h1's IPv4).
    let changed = triangle("tn-inc")
        .replace("      - {to: 10.255.0.3/32, via: 10.0.13.1}\n", "")
        .replace("eth0: {addresses: [10.1.0.10/24,", "eth0: {addresses: [10.1.0.20/24,")
        .replace("  - endpoints: [r2:eth3, h2:eth0]\n", "  - endpoints: [r2:eth3, h2:eth0]\n  - endpoints: [r3:eth3, h2:eth1]\n")
        .replace("      eth2: {addresses: [10.0.23.1/31]}\n    routes:", "      eth2: {addresses: [10.0.23.1/31]}\n      eth3: {addresses: [10.0.32.0/31]}\n    routes:")
        .replace("      eth0: {addresses: [10.2.0.10/24, \"2001:db8:2::10/64\"]}\n", "      eth0: {addresses: [10.2.0.10/24, \"2001:db8:2::10/64\"]}\n      eth1: {addresses: [10.0.32.1/31]}\n");
    lab.rewrite(&changed);
    let plan = lab.plan();
    let lines: Vec<&str> = plan.lines().collect();
    let expected = [
        "+ veth r3:eth3 <-> h2:eth1",
        "+ address h1:eth0 10.1.0.20/24",
        "- address h1:eth0 10.1.0.10/24",
        "+ address r3:eth3 10.0.32.0/31",
        "+ address h2:eth1 10.0.32.1/31",
        "- route r1 10.255.0.3/32 via 10.0.13.1",
    ];
    let mut sorted_lines = lines.clone();
    sorted_lines.sort();
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort();
    assert_eq!(sorted_lines, sorted_expected, "plan:\n{plan}");
    lab.up();
    let again = lab.plan();
    assert!(
        again.contains("no changes"),
        "plan after the change was applied:\n{again}"
    );
    // The kernel now has exactly the new state...
    assert_eq!(
        addresses(&lab.ns("h1"), "eth0"),
        vec!["10.1.0.20/24".to_string(), "2001:db8:1::10/64".to_string()]
    );
    assert!(ping(&lab.ns("r3"), "10.0.32.1"), "the new link works");
    let r1_routes = ip_json(Some(&lab.ns("r1")), &["route", "show", "10.255.0.3/32"]);
    assert_eq!(
        r1_routes.as_array().map(Vec::len),
        Some(0),
        "route removed: {r1_routes}"
    );
    // ...and untouched interfaces kept their ifindex.
    assert_eq!(ifindexes(&lab.ns("r2")), r2_before);
    assert_eq!(ifindexes(&lab.ns("h1")), h1_before);
    let r3_after = ifindexes(&lab.ns("r3"));
    for (name, idx) in &r3_eth1_before {
        assert!(
            r3_after.contains(&(name.clone(), *idx)),
            "{name} of r3 kept ifindex {idx}"
        );
    }
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn down_leaves_no_namespace_interface_mount_process_or_run_dir() {
    let yaml = "name: tn-down\nnodes:\n  a: {interfaces: {eth0: {addresses: [192.0.2.1/24]}}}\n  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}, eth1: {}}}\n  c: {interfaces: {eth0: {}}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n  - endpoints: [b:eth1, host:tn-down-h]\nbridges:\n  br0: {members: [c:eth0]}\n";
    let lab = TestLab::new("tn-down", yaml);
    lab.up();
    let status: serde_json::Value =
        serde_json::from_slice(&topo(&["status", "--lab", "tn-down", "-o", "json"]).stdout)
            .expect("status json");
    let pids: Vec<i64> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["init_pid"].as_i64())
        .collect();
    assert_eq!(pids.len(), 3, "three node inits: {status}");
    assert!(pids
        .iter()
        .all(|p| std::path::Path::new(&format!("/proc/{p}")).exists()));
    assert_eq!(
        netns_with_prefix("tn-down"),
        vec!["tn-down-a", "tn-down-b", "tn-down-c", "tn-down.br"]
    );
    assert_eq!(
        ip_json(None, &["link", "show", "tn-down-h"])[0]["ifalias"],
        "topo/tn-down veth b:eth1=host:tn-down-h"
    );
    // A plain `down` returns once the lab is out of the kernel's view and its processes
    // are killed; their exits, the cgroups and the run directory follow in `topo __reap`.
    let out = topo(&["down", "--lab", "tn-down"]);
    assert!(out.status.success(), "{}", text(&out));
    for p in &pids {
        assert!(
            killed(*p),
            "process {p} was not killed by the time down returned"
        );
    }
    assert!(
        netns_with_prefix("tn-down").is_empty(),
        "namespaces left: {:?}",
        netns_with_prefix("tn-down")
    );
    assert!(
        mounts_with("/run/netns/tn-down").is_empty(),
        "mounts left: {:?}",
        mounts_with("/run/netns/tn-down")
    );
    let host_link = std::process::Command::new("ip")
        .args(["link", "show", "tn-down-h"])
        .output()
        .expect("ip");
    assert!(!host_link.status.success(), "host-side veth left");
    let finished = eventually(10, || {
        (pids.iter().all(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.is_empty() || stat.contains(") Z")
        }) && !std::path::Path::new("/run/topo/tn-down").exists())
        .then_some(())
    });
    assert!(
        finished.is_some(),
        "processes or run directory left 10 s after down: {:?}",
        lab_processes("tn-down")
    );
    assert_lab_gone("tn-down", &[]);
}

/// Whether process `pid` is gone, a zombie, exiting (PF_EXITING), or has SIGKILL pending.
fn killed(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let after = stat.rsplit_once(") ").map_or("", |(_, a)| a);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first().copied().unwrap_or("");
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    const PF_EXITING: u64 = 0x4;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let pending = status.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            (k == "ShdPnd" || k == "SigPnd")
                && u64::from_str_radix(v.trim(), 16).is_ok_and(|m| m & (1 << 8) != 0)
        })
    });
    state == "Z" || state == "X" || flags & PF_EXITING != 0 || pending
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn up_right_after_down_waits_for_the_reaper_and_keeps_its_own_groups() {
    // Enough nodes for `down` to share its proof and its kills among threads.
    const NODES: usize = 80;
    let lab = TestLab::new("tn-again", &gen_chain("tn-again", NODES, &["--bare"]));
    lab.up();
    let first = lab_processes("tn-again");
    assert_eq!(first.len(), NODES, "inits: {first:?}");
    let out = topo(&["down", "--lab", "tn-again"]);
    assert!(out.status.success(), "{}", text(&out));
    for (pid, comm) in &first {
        let pid: i64 = pid.parse().expect("a pid");
        assert!(
            killed(pid),
            "{comm} {pid} was not killed by the time down returned"
        );
    }
    // At once: the reaper of the first lab holds its lock while its processes end.
    lab.up();
    let inits = lab_processes("tn-again");
    assert_eq!(inits.len(), NODES, "the new lab's inits: {inits:?}");
    assert!(
        inits.iter().all(|p| !first.contains(p)),
        "an old init survived"
    );
    let groups = std::path::Path::new("/sys/fs/cgroup/pids/topo/tn-again");
    // The new lab's node groups stay once the old lab's reaper is done (it removed its
    // groups before the new lab made them, as the lock orders them).
    std::thread::sleep(std::time::Duration::from_millis(500));
    if std::path::Path::new("/sys/fs/cgroup/pids").is_dir() {
        let held = std::fs::read_dir(groups)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0);
        assert_eq!(
            held,
            NODES,
            "node groups of the new lab under {}",
            groups.display()
        );
    }
    assert!(
        ping(&lab.ns("n0"), "10.0.0.1"),
        "the new lab carries traffic"
    );
    let out = lab.down();
    assert!(out.status.success(), "{}", text(&out));
    assert_lab_gone("tn-again", &[]);
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn foreign_namespace_or_interface_in_the_way_is_reported_and_left_alone() {
    // A namespace with the name the lab's node would get, made by someone else.
    let foreign_ns = "tn-col-a";
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", foreign_ns])
        .status();
    let made = std::process::Command::new("ip")
        .args(["netns", "add", foreign_ns])
        .status()
        .expect("ip netns add");
    assert!(made.success());
    struct Cleanup(&'static str);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", self.0])
                .status();
            let _ = std::process::Command::new("ip")
                .args(["link", "del", "tn-col-x"])
                .status();
        }
    }
    let _cleanup = Cleanup(foreign_ns);
    let yaml = "name: tn-col\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n";
    let lab = TestLab::new("tn-col", yaml);
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network namespace tn-col-a exists but is not this lab's"),
        "{err}"
    );
    assert!(
        netns_with_prefix("tn-col-b").is_empty(),
        "nothing created when a conflict is found"
    );
    let down = lab.down();
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        netns_with_prefix("tn-col-a"),
        vec!["tn-col-a"],
        "down must not delete a foreign namespace"
    );

    // A host interface with the name of a host-side link end, made by someone else.
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", foreign_ns])
        .status();
    let ok = std::process::Command::new("ip")
        .args([
            "link", "add", "tn-col-x", "type", "veth", "peer", "name", "tn-col-y",
        ])
        .status()
        .expect("ip link add");
    assert!(ok.success());
    lab.rewrite("name: tn-col\nnodes:\n  a: {}\nlinks:\n  - endpoints: [a:eth0, host:tn-col-x]\n");
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("interface host:tn-col-x exists but is not this lab's"),
        "{}",
        text(&out)
    );
    let down = lab.down();
    assert!(down.status.success());
    let still = std::process::Command::new("ip")
        .args(["link", "show", "tn-col-x"])
        .output()
        .expect("ip");
    assert!(
        still.status.success(),
        "down must not delete a foreign interface"
    );
}
