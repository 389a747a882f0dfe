//! Link failure declared in the file: `state: down` takes both ends down, the rest of the
//! lab keeps working, and `state: up` brings the link and the routes through it back, all
//! without relinking (same ifindex).

use crate::common::*;

fn chain(state_ab: &str) -> String {
    format!(
        "name: tn-state\ndefaults: {{sysctls: {{net.ipv4.ip_forward: 1}}}}\nnodes:\n  a:\n    interfaces: {{eth0: {{addresses: [198.51.100.0/31]}}}}\n    routes: [{{to: 198.51.100.2/31, via: 198.51.100.1}}]\n  b:\n    interfaces: {{eth0: {{addresses: [198.51.100.1/31]}}, eth1: {{addresses: [198.51.100.2/31]}}}}\n  c:\n    interfaces: {{eth0: {{addresses: [198.51.100.3/31]}}}}\n    routes: [{{to: 198.51.100.0/31, via: 198.51.100.2}}]\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n    state: {state_ab}\n  - endpoints: [b:eth1, c:eth0]\n"
    )
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn state_down_fails_the_link_only_and_state_up_restores_it_with_the_same_ifindex() {
    let lab = TestLab::new("tn-state", &chain("up"));
    lab.up();
    let before = [
        ifindexes(&lab.ns("a")),
        ifindexes(&lab.ns("b")),
        ifindexes(&lab.ns("c")),
    ];
    assert!(ping(&lab.ns("a"), "198.51.100.3"), "a reaches c through b");
    lab.rewrite(&chain("down"));
    let plan = lab.plan();
    assert!(
        plan.contains("~ link a:eth0 down") && plan.contains("~ link b:eth0 down"),
        "{plan}"
    );
    lab.up();
    assert_eq!(
        ip_json(Some(&lab.ns("a")), &["link", "show", "eth0"])[0]["flags"]
            .as_array()
            .map(|f| f.iter().any(|x| x == "UP")),
        Some(false)
    );
    assert!(
        !ping(&lab.ns("a"), "198.51.100.1"),
        "the failed link carries nothing"
    );
    assert!(
        ping(&lab.ns("b"), "198.51.100.3"),
        "the other link keeps working"
    );
    assert!(
        lab.plan().contains("no changes"),
        "a down link is a stable state: {}",
        lab.plan()
    );
    lab.rewrite(&chain("up"));
    lab.up();
    assert!(
        ping(&lab.ns("a"), "198.51.100.3"),
        "link and routes are back"
    );
    assert!(lab.plan().contains("no changes"));
    let after = [
        ifindexes(&lab.ns("a")),
        ifindexes(&lab.ns("b")),
        ifindexes(&lab.ns("c")),
    ];
    assert_eq!(before, after, "no relinking");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn topo_link_down_is_drift_that_plan_shows_and_up_repairs() {
    let yaml = chain("up").replace("tn-state", "tn-drift");
    let lab = TestLab::new("tn-drift", &yaml);
    lab.up();
    let before = ifindexes(&lab.ns("b"));
    let o = topo(&["link", "--lab", "tn-drift", "b:eth1", "down"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !ping(&lab.ns("c"), "198.51.100.2"),
        "the link is down in the kernel"
    );
    let plan = lab.plan();
    assert!(
        plan.contains("~ link b:eth1 up"),
        "plan shows the drift: {plan}"
    );
    lab.up();
    assert!(lab.plan().contains("no changes"));
    assert!(ping(&lab.ns("a"), "198.51.100.3"), "repaired end to end");
    assert_eq!(ifindexes(&lab.ns("b")), before);
    let foreign = topo(&["link", "--lab", "tn-drift", "b:lo9", "down"]);
    assert_eq!(
        foreign.status.code(),
        Some(2),
        "unknown interface is a usage error: {}",
        text(&foreign)
    );
}

/// A veth end is made with its interface index (so no later step asks for it): the next one
/// above every interface its namespace already has, even one `topo` did not make.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn veth_ends_get_indexes_above_what_their_namespace_holds() {
    let yaml = |second: bool| {
        let mut y = String::from("name: tn-idx\nnodes:\n  a:\n    interfaces: {eth0: {addresses: [198.51.100.0/31]}}\n  b:\n    interfaces: {eth0: {addresses: [198.51.100.1/31]}");
        if second {
            y.push_str(", eth1: {addresses: [198.51.100.2/31]}");
        }
        y.push_str("}\n  c: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n");
        if second {
            y = y.replace(
                "c: {}",
                "c:\n    interfaces: {eth0: {addresses: [198.51.100.3/31]}}",
            );
            y.push_str("  - endpoints: [b:eth1, c:eth0]\n");
        }
        y
    };
    let lab = TestLab::new("tn-idx", &yaml(false));
    lab.up();
    let b = lab.ns("b");
    // Someone else's pair inside b, at indexes 7 and 8 (the namespace goes with the lab).
    let made = std::process::Command::new("ip")
        .args([
            "-n", &b, "link", "add", "tnx0", "index", "7", "type", "veth",
        ])
        .args(["peer", "name", "tnx1", "index", "8"])
        .output()
        .expect("ip");
    assert!(made.status.success(), "{}", text(&made));
    lab.rewrite(&yaml(true));
    let out = lab.up();
    assert!(out.status.success(), "{}", text(&out));
    let idx = |ns: &str, dev: &str| {
        ifindexes(ns)
            .into_iter()
            .find(|(n, _)| n == dev)
            .map(|(_, i)| i)
    };
    // The kernel alone would have given b's new end 3 (the next after its eth0).
    assert_eq!(idx(&b, "eth1"), Some(9), "{:?}", ifindexes(&b));
    assert_eq!(idx(&lab.ns("c"), "eth0"), Some(2));
    assert_eq!(idx(&b, "tnx0"), Some(7), "the foreign pair is left alone");
    assert_eq!(addresses(&b, "eth1"), ["198.51.100.2/31"]);
    assert!(ping(&lab.ns("c"), "198.51.100.2"), "the new link works");
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
}
