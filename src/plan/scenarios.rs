//! Scenario tests of `diff`: a small lab, the kernel state a flawless `up` of it leaves
//! (`simulate`), one change to the file or to that state, and the exact plan that follows.

use std::path::Path;

use super::observed::{LinkObs, NodeObs, NsObserved, NsState, Observed, RouteObs, ServiceObs};
use super::ProcId;
use super::{compile, diff, names, simulate, Action, Phase, Plan};
use crate::spec::Topology;

/// Two routers on a link, r1 with a host LAN on a bridge, a static route, an `exec` line
/// and a service.
const LAB: &str = r#"
name: scn
nodes:
  r1:
    interfaces:
      eth1: {addresses: [10.0.0.0/31]}
      eth2: {addresses: [192.0.2.1/24]}
    routes:
      - {to: 198.51.100.0/24, via: 10.0.0.1}
    sysctls: {net.ipv4.ip_forward: 1}
    exec: ["true"]
    services: {web: "sleep 1000"}
  r2:
    interfaces:
      eth1: {addresses: [10.0.0.1/31]}
  h1:
    interfaces:
      eth0: {addresses: [192.0.2.10/24]}
    routes:
      - {to: default, via: 192.0.2.1}
links:
  - endpoints: [r1:eth1, r2:eth1]
bridges:
  lan: {members: [r1:eth2, h1:eth0]}
"#;

fn parse(yaml: &str) -> Topology {
    match crate::spec::parse_str(yaml, Path::new("scn.yaml")) {
        Ok(t) => t,
        Err(e) => panic!("scenario lab is invalid:\n{e}"),
    }
}

/// The kernel as a flawless `up` of `yaml` leaves it, with node processes running: each
/// node's init has PID 100 × its position in name order (h1 100, r1 200, r2 300), its
/// services the PIDs after it.
fn converged(yaml: &str) -> Observed {
    let t = parse(yaml);
    let mut o = simulate(&t, &compile(&t));
    for (i, (name, node)) in t.nodes.iter().enumerate() {
        let pid = 100 * (i as i32 + 1);
        let services = node
            .services
            .iter()
            .enumerate()
            .map(|(j, (s, command))| {
                let obs = ServiceObs {
                    pid: pid + 1 + j as i32,
                    command: command.signature(),
                    alive: true,
                    completed: false,
                };
                (s.clone(), obs)
            })
            .collect();
        o.nodes.insert(
            name.clone(),
            NodeObs {
                init_alive: true,
                init: Some(ProcId { pid, start: 7 }),
                services,
                exec_done: Some(node.exec.clone()),
                ..NodeObs::default()
            },
        );
    }
    o
}

fn plan(yaml: &str, observed: &Observed) -> Plan {
    let t = parse(yaml);
    diff(&t, &compile(&t), observed)
}

/// The plan as `topo plan` prints it, one line per action.
fn lines(p: &Plan) -> Vec<String> {
    p.to_string().lines().map(str::to_string).collect()
}

fn ns_state<'a>(o: &'a mut Observed, node: &str) -> &'a mut NsState {
    match o.namespaces.get_mut(&names::node_netns("scn", node)) {
        Some(NsObserved::Ours(s)) => s,
        other => panic!("namespace of {node} is not ours: {other:?}"),
    }
}

fn link<'a>(s: &'a mut NsState, name: &str) -> &'a mut LinkObs {
    match s.links.iter_mut().find(|l| l.name == name) {
        Some(l) => l,
        None => panic!("no link {name}"),
    }
}

#[test]
fn a_converged_lab_plans_nothing() {
    let p = plan(LAB, &converged(LAB));
    assert!(p.is_empty(), "{p}");
}

#[test]
fn a_new_lab_is_built_bottom_up_in_phase_order() {
    let p = plan(LAB, &Observed::default());
    let phases: Vec<Phase> = p.actions.iter().map(Action::phase).collect();
    assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
    let mut kinds = phases.clone();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            Phase::CreateNetns,
            Phase::StartNodes,
            Phase::CreateBridges,
            Phase::CreateVeths,
            Phase::SetLinks,
            Phase::SetSysctls,
            Phase::AddAddresses,
            Phase::AddRoutes,
            Phase::RunExec,
            Phase::StartServices,
        ]
    );
    // Three nodes and the bridges' namespace; one veth for the link, one per bridge member.
    let count = |ph: Phase| phases.iter().filter(|&&x| x == ph).count();
    assert_eq!(count(Phase::CreateNetns), 4);
    assert_eq!(count(Phase::StartNodes), 3);
    assert_eq!(count(Phase::CreateVeths), 3);
    assert_eq!(count(Phase::AddAddresses), 4);
    assert_eq!(count(Phase::AddRoutes), 2);
    assert!(lines(&p).contains(&"+ exec r1: true".to_string()));
    assert!(lines(&p).contains(&"+ service r1/web: sleep 1000".to_string()));
}

#[test]
fn renumbering_adds_the_new_address_before_removing_the_old_and_keeps_routes() {
    let before = converged(LAB);
    let after = LAB.replace("192.0.2.10/24", "192.0.2.20/24");
    assert_eq!(
        lines(&plan(&after, &before)),
        [
            "+ address h1:eth0 192.0.2.20/24",
            "- address h1:eth0 192.0.2.10/24",
        ]
    );
}

#[test]
fn a_foreign_namespace_or_interface_in_the_way_is_a_conflict_and_left_alone() {
    let mut o = converged(LAB);
    o.namespaces.insert(
        names::node_netns("scn", "r2"),
        NsObserved::Foreign { marker: None },
    );
    let p = plan(LAB, &o);
    assert_eq!(p.conflicts.len(), 1, "{p}");
    assert!(p.conflicts[0].contains("network namespace scn-r2 exists but is not this lab's"));
    assert!(!p.actions.iter().any(|a| matches!(
        a,
        Action::DeleteNetns { .. } | Action::DeleteLink { ns: Some(_), .. }
            if a.to_string().contains("r2")
    )));

    let mut o = converged(LAB);
    let l = link(ns_state(&mut o, "r1"), "eth1");
    l.alias = Some("someone else's".into());
    l.group = 0;
    let p = plan(LAB, &o);
    assert_eq!(p.conflicts.len(), 1, "{p}");
    assert!(
        p.conflicts[0].contains("interface r1:eth1 exists but is not this lab's"),
        "{p}"
    );
    // Its marked peer is replaced with the pair, but a plan with conflicts is not applied.
    assert!(!p.actions.iter().any(
        |a| matches!(a, Action::DeleteLink { who, name, .. } if who == "r1" && name == "eth1")
    ));
}

#[test]
fn a_veth_the_file_no_longer_declares_is_deleted_once() {
    let before = converged(LAB);
    let after = LAB
        .replace("  - endpoints: [r1:eth1, r2:eth1]\n", "  []\n")
        .replace("links:\n  []", "links: []")
        .replace("      eth1: {addresses: [10.0.0.0/31]}\n", "")
        .replace(
            "  r2:\n    interfaces:\n      eth1: {addresses: [10.0.0.1/31]}\n",
            "  r2: {}\n",
        )
        .replace("      - {to: 198.51.100.0/24, via: 10.0.0.1}\n", "")
        .replace("    routes:\n    sysctls", "    sysctls");
    let p = plan(&after, &before);
    let deleted: Vec<String> = p
        .actions
        .iter()
        .filter(|a| a.phase() == Phase::DeleteLinks)
        .map(ToString::to_string)
        .collect();
    // Both ends are named (deleting one takes the other with it, and a second delete of
    // a gone link counts as done).
    assert_eq!(deleted, ["- link r1:eth1", "- link r2:eth1"], "{p}");
    assert!(lines(&p).contains(&"- route r1 198.51.100.0/24 via 10.0.0.1".to_string()));
}

#[test]
fn a_broken_pair_loses_its_surviving_end_and_is_made_again() {
    let mut o = converged(LAB);
    ns_state(&mut o, "r2").links.retain(|l| l.name != "eth1");
    let p = plan(LAB, &o);
    let l = lines(&p);
    assert_eq!(l[0], "- link r1:eth1", "{p}");
    assert_eq!(l[1], "+ veth r1:eth1 <-> r2:eth1", "{p}");
    // The new ends get their addresses back, and the route through them is put back.
    assert!(
        l.contains(&"+ address r1:eth1 10.0.0.0/31".to_string()),
        "{p}"
    );
    assert!(
        l.contains(&"+ address r2:eth1 10.0.0.1/31".to_string()),
        "{p}"
    );
}

#[test]
fn a_route_with_another_gateway_is_replaced_in_place() {
    let mut o = converged(LAB);
    let routes = &mut ns_state(&mut o, "r1").routes;
    let Some(r) = routes
        .iter_mut()
        .find(|r| r.dst.to_string() == "198.51.100.0/24")
    else {
        panic!("no route 198.51.100.0/24 in {routes:?}");
    };
    r.via = vec!["10.0.0.7".parse().unwrap_or(r.via[0])];
    let p = plan(LAB, &o);
    assert_eq!(lines(&p), ["~ route r1 198.51.100.0/24 via 10.0.0.1"]);
    assert!(matches!(
        p.actions[..],
        [Action::AddRoute { replace: true, .. }]
    ));
}

#[test]
fn a_route_topo_did_not_make_is_not_ours_to_remove() {
    let mut o = converged(LAB);
    // Observed routes are only those with topo's protocol: one the file dropped goes.
    ns_state(&mut o, "r2").routes.push(RouteObs {
        dst: "203.0.113.0/24".parse().unwrap_or_else(|_| unreachable!()),
        via: vec!["10.0.0.0".parse().unwrap_or_else(|_| unreachable!())],
        oifs: Vec::new(),
        metric: 0,
    });
    assert_eq!(
        lines(&plan(LAB, &o)),
        ["- route r2 203.0.113.0/24 via 10.0.0.0"]
    );
}

#[test]
fn a_node_whose_init_must_restart_is_stopped_started_and_rerun() {
    // The observation marks an init not alive when its process settings (env, binds, …)
    // changed since it started: it is stopped, a new one started, `exec` and services run
    // again; nothing of the network changes.
    let mut o = converged(LAB);
    if let Some(n) = o.nodes.get_mut("r1") {
        n.init_alive = false;
    }
    assert_eq!(
        lines(&plan(LAB, &o)),
        [
            "- node r1 init (pid 200)",
            "+ node r1 init",
            "+ exec r1: true",
            "+ service r1/web: sleep 1000",
        ]
    );
}

#[test]
fn a_changed_or_dead_service_is_restarted_alone() {
    let before = converged(LAB);
    let after = LAB.replace("sleep 1000", "sleep 2000");
    assert_eq!(
        lines(&plan(&after, &before)),
        ["- service r1/web (pid 201)", "+ service r1/web: sleep 2000"]
    );
    let mut o = converged(LAB);
    if let Some(s) = o
        .nodes
        .get_mut("r1")
        .and_then(|n| n.services.get_mut("web"))
    {
        s.alive = false;
    }
    assert_eq!(lines(&plan(LAB, &o)), ["+ service r1/web: sleep 1000"]);
}

#[test]
fn stray_inits_and_nodes_that_left_the_file_are_stopped() {
    let mut o = converged(LAB);
    if let Some(n) = o.nodes.get_mut("r2") {
        n.strays.push(ProcId { pid: 999, start: 3 });
    }
    o.nodes.insert(
        "gone".into(),
        NodeObs {
            init: Some(ProcId { pid: 555, start: 1 }),
            ..NodeObs::default()
        },
    );
    let l = lines(&plan(LAB, &o));
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l.contains(&"- node r2 init (pid 999)".to_string()));
    assert!(l.contains(&"- node gone init (pid 555)".to_string()));
}

#[test]
fn a_link_state_change_is_one_in_place_change_of_each_end_and_drops_its_routes() {
    let before = converged(LAB);
    let after = LAB.replace(
        "  - endpoints: [r1:eth1, r2:eth1]\n",
        "  - endpoints: [r1:eth1, r2:eth1]\n    state: down\n    mtu: 9000\n",
    );
    assert_eq!(
        lines(&plan(&after, &before)),
        [
            "~ link r1:eth1 mtu 1500 -> 9000, down",
            "~ link r2:eth1 mtu 1500 -> 9000, down",
            // The kernel removes the routes through a link that goes down: the plan says so.
            "- route r1 198.51.100.0/24 via 10.0.0.1",
        ]
    );
    // Up again: the same interfaces, the route back.
    let down = {
        let t = parse(&after);
        let mut o = converged(LAB);
        o.namespaces = simulate(&t, &compile(&t)).namespaces;
        o
    };
    assert_eq!(
        lines(&plan(LAB, &down)),
        [
            "~ link r1:eth1 mtu 9000 -> 1500, up",
            "~ link r2:eth1 mtu 9000 -> 1500, up",
            "+ route r1 198.51.100.0/24 via 10.0.0.1",
        ]
    );
}

#[test]
fn sysctls_limits_and_impairments_change_in_place() {
    let before = converged(LAB);
    let after = LAB
        .replace("net.ipv4.ip_forward: 1", "net.ipv4.ip_forward: 0")
        .replace(
            "  - endpoints: [r1:eth1, r2:eth1]\n",
            "  - endpoints: [r1:eth1, r2:eth1]\n    impair: {delay: 10ms}\n",
        );
    let p = plan(&after, &before);
    assert_eq!(
        lines(&p),
        [
            "~ impair r1:eth1 delay 10ms",
            "~ impair r2:eth1 delay 10ms",
            "~ sysctl r1 net.ipv4.ip_forward 1 -> 0",
        ]
    );
    // And back: the impairment is cleared.
    let impaired = {
        let t = parse(&after);
        let mut o = converged(LAB);
        let sim = simulate(&t, &compile(&t));
        o.namespaces = sim.namespaces;
        o
    };
    assert_eq!(
        lines(&plan(LAB, &impaired)),
        [
            "- impair r1:eth1",
            "- impair r2:eth1",
            "~ sysctl r1 net.ipv4.ip_forward 0 -> 1",
        ]
    );
    let mut o = converged(LAB);
    if let Some(n) = o.nodes.get_mut("h1") {
        n.limits = Some(crate::spec::Limits::default());
    }
    let limited = LAB.replace("  h1:\n", "  h1:\n    limits: {memory: 64Mi}\n");
    let p = plan(&limited, &o);
    assert_eq!(p.actions.len(), 1, "{p}");
    assert!(matches!(p.actions[0], Action::SetLimits { .. }), "{p}");
    assert!(lines(&p)[0].starts_with("~ limits h1 "), "{p}");
}

#[test]
fn a_namespace_of_the_lab_the_file_no_longer_names_is_deleted() {
    let mut o = converged(LAB);
    o.namespaces.insert(
        names::node_netns("scn", "old"),
        NsObserved::Ours(NsState::default()),
    );
    assert_eq!(lines(&plan(LAB, &o)), ["- netns scn-old (old)"]);
}
