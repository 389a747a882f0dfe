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
fn state_down_fails_the_link_only_and_state_up_restores_it_with_the_same_ifindex() {
    if !root_or_skip("link state") {
        return;
    }
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
