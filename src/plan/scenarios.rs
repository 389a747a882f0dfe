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
    converged_on(yaml, None)
}

/// [`converged`] for `host`'s share of a lab that spans hosts: only its nodes run.
fn converged_on(yaml: &str, host: Option<&str>) -> Observed {
    let t = parse(yaml);
    let desired = compile(&t, host);
    let mut o = simulate(&t, &desired);
    for (i, (name, node)) in t.nodes.iter().enumerate() {
        if !desired.has_node(name) {
            continue;
        }
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
    plan_on(yaml, None, observed)
}

fn plan_on(yaml: &str, host: Option<&str>, observed: &Observed) -> Plan {
    let t = parse(yaml);
    diff(&t, &compile(&t, host), observed)
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
        o.namespaces = simulate(&t, &compile(&t, None)).namespaces;
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
        let sim = simulate(&t, &compile(&t, None));
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

/// [`LAB`] on two machines: r1 and r3 on `left`, r2 and h1 on `right`. The link r1–r2 and
/// the bridge lan (r1, h1) cross; r1–r3 stays on `left`.
const WAN: &str = r#"
name: scn
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2}
nodes:
  r1:
    host: left
    interfaces:
      eth1: {addresses: [10.0.0.0/31]}
      eth2: {addresses: [192.0.2.1/24]}
      eth3: {addresses: [10.0.1.0/31]}
    routes:
      - {to: 198.51.100.0/24, via: 10.0.0.1}
    services: {web: "sleep 1000"}
  r2:
    host: right
    interfaces:
      eth1: {addresses: [10.0.0.1/31]}
  r3:
    host: left
    interfaces:
      eth1: {addresses: [10.0.1.1/31]}
  h1:
    host: right
    interfaces:
      eth0: {addresses: [192.0.2.10/24]}
links:
  - endpoints: [r1:eth1, r2:eth1]
  - endpoints: [r1:eth3, r3:eth1]
bridges:
  lan: {members: [r1:eth2, h1:eth0]}
"#;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap_or_else(|_| panic!("{s} is no address"))
}

#[test]
fn each_host_gets_its_nodes_its_veths_and_a_tunnel_end_per_crossing() {
    let t = parse(WAN);
    let tunnels = crate::spec::hosts::tunnels(&t);
    let link_vni = tunnels.links[&0].vni;
    let lan_vni = tunnels.bridges["lan"].vni;
    let left = compile(&t, Some("left"));
    let right = compile(&t, Some("right"));
    let nss = |d: &super::Desired| d.namespaces.keys().cloned().collect::<Vec<_>>();
    assert_eq!(nss(&left), ["scn-r1", "scn-r3", "scn.br"]);
    assert_eq!(nss(&right), ["scn-h1", "scn-r2", "scn.br"]);
    assert_eq!(left.host.as_deref(), Some("left"));
    let elsewhere = |d: &super::Desired| {
        (d.elsewhere.iter())
            .map(|(n, h)| format!("{n}@{h}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(elsewhere(&left), ["h1@right", "r2@right"]);
    assert_eq!(elsewhere(&right), ["r1@left", "r3@left"]);
    // Veths between ends on the host (r1–r3), to the bridge ports of local members, and from
    // a crossing link's end to its tunnel.
    let labels = |d: &super::Desired| d.veths.iter().map(|v| v.label.clone()).collect::<Vec<_>>();
    assert_eq!(
        labels(&left),
        [
            "r1:eth1 <-> tunnel to r2:eth1 on right",
            "r1:eth3 <-> r3:eth1",
            "r1:eth2 <-> bridge lan"
        ]
    );
    assert_eq!(
        labels(&right),
        [
            "r2:eth1 <-> tunnel to r1:eth1 on left",
            "h1:eth0 <-> bridge lan"
        ]
    );
    // The crossing link: a veth end in each node, stitched in the bridge namespace to a VXLAN
    // interface; the two hosts' halves are mirror images of each other.
    let end = |d: &super::Desired, ns: &str, name: &str| -> super::IfaceSpec {
        match d.namespaces.get(ns).and_then(|n| n.ifaces.get(name)) {
            Some(s) => s.clone(),
            None => panic!("no {ns}:{name}"),
        }
    };
    let a = end(&left, "scn-r1", "eth1");
    let b = end(&right, "scn-r2", "eth1");
    assert_eq!(a.kind, super::IfaceKind::Veth);
    assert_eq!((a.vxlan.clone(), b.vxlan.clone()), (None, None));
    assert_eq!(a.marker, "topo/scn vxlan r1:eth1=r2:eth1");
    assert_eq!(a.marker, b.marker);
    assert_eq!(a.mtu, Some(1450));
    assert_eq!(b.mtu, Some(1450));
    assert_eq!(a.mac, Some(names::mac("scn", "scn-r1", "eth1")));
    assert_eq!(
        a.addresses,
        ["10.0.0.0/31".parse().unwrap_or_else(|_| unreachable!())]
    );
    let want = |local: &str, remote: &str| super::VxlanSpec {
        vni: link_vni,
        port: 14789,
        local: ip(local),
        remote: Some(ip(remote)),
        learning: false,
        flood: Vec::new(),
    };
    let (bridge, vx) = (format!("X{link_vni}"), format!("V{link_vni}"));
    for (d, me, other) in [
        (&left, "198.51.100.1", "198.51.100.2"),
        (&right, "198.51.100.2", "198.51.100.1"),
    ] {
        let tunnel = end(d, "scn.br", &vx);
        assert_eq!(tunnel.kind, super::IfaceKind::Vxlan);
        assert_eq!(tunnel.vxlan, Some(want(me, other)));
        assert_eq!(tunnel.controller.as_deref(), Some(bridge.as_str()));
        assert_eq!(tunnel.marker, "topo/scn tunnel r1:eth1=r2:eth1");
        assert_eq!(end(d, "scn.br", &bridge).kind, super::IfaceKind::Bridge);
        assert_eq!(end(d, "scn.br", &bridge).mtu, Some(1450));
    }
    let port = end(&left, "scn.br", "r1.eth1");
    assert_eq!(port.controller.as_deref(), Some(bridge.as_str()));
    assert_eq!((port.kind, port.mtu), (super::IfaceKind::Veth, Some(1450)));
    // The bridge on both hosts, each with one VXLAN port that floods to the other.
    for (d, me, other) in [
        (&left, "198.51.100.1", "198.51.100.2"),
        (&right, "198.51.100.2", "198.51.100.1"),
    ] {
        let port = end(d, "scn.br", "vx-lan");
        assert_eq!(port.controller.as_deref(), Some("lan"));
        assert_eq!(port.marker, "topo/scn vxlan bridge lan");
        assert_eq!(port.mtu, Some(1450));
        assert_eq!(end(d, "scn.br", "lan").mtu, Some(1450));
        assert_eq!(
            port.vxlan,
            Some(super::VxlanSpec {
                vni: lan_vni,
                port: 14789,
                local: ip(me),
                remote: None,
                learning: true,
                flood: vec![ip(other)],
            })
        );
    }
    // What a probe of the far end needs.
    assert_eq!(left.crossings.len(), 1);
    let c = &left.crossings[0];
    assert_eq!(c.label(), "r1:eth1 -> r2:eth1 on host right");
    assert_eq!(c.ns, "scn-r1");
    assert_eq!(c.peer_mac, names::mac("scn", "scn-r2", "eth1"));
    assert_eq!(c.peer_addresses, b.addresses);
    assert_eq!((c.vni, c.up), (link_vni, true));
    assert_eq!(
        right.crossings[0].label(),
        "r2:eth1 -> r1:eth1 on host left"
    );
}

#[test]
fn a_lab_on_one_machine_compiles_as_before_whatever_host_is_asked() {
    let t = parse(LAB);
    let whole = compile(&t, None);
    assert_eq!(compile(&t, Some("left")), whole);
    assert!(whole.crossings.is_empty() && whole.elsewhere.is_empty());
    assert_eq!(whole.host, None);
    // A lab on hosts compiled without one is the whole lab on one machine: veths only.
    let wan = compile(&parse(WAN), None);
    assert_eq!(wan.namespaces.len(), 5);
    assert!((wan.namespaces.values())
        .flat_map(|n| n.ifaces.values())
        .all(|i| i.kind != super::IfaceKind::Vxlan));
}

#[test]
fn a_new_share_is_built_with_its_tunnel_ends_after_its_veths_and_nothing_of_the_other_host() {
    let t = parse(WAN);
    let vni = crate::spec::hosts::tunnels(&t).links[&0].vni;
    let lan = crate::spec::hosts::tunnels(&t).bridges["lan"].vni;
    let p = plan_on(WAN, Some("left"), &Observed::default());
    let phases: Vec<Phase> = p.actions.iter().map(Action::phase).collect();
    assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
    let l = lines(&p);
    let made: Vec<&String> = l.iter().filter(|x| x.starts_with("+ vxlan")).collect();
    assert_eq!(
        made,
        [
            &format!("+ vxlan bridges:V{vni} vni {vni}, remote 198.51.100.2"),
            &format!("+ vxlan bridges:vx-lan vni {lan}, flood 198.51.100.2"),
        ],
        "{p}"
    );
    let first_vxlan = phases.iter().position(|&x| x == Phase::CreateVxlans);
    let last_veth = phases.iter().rposition(|&x| x == Phase::CreateVeths);
    assert!(last_veth < first_vxlan, "{phases:?}");
    assert!(
        l.contains(&format!("+ bridge X{vni}"))
            && l.contains(&"+ veth r1:eth1 <-> tunnel to r2:eth1 on right".to_string()),
        "{p}"
    );
    let words =
        |x: &str| -> Vec<String> { x.split([' ', ':', '-', '/']).map(str::to_string).collect() };
    for other in ["r2", "h1"] {
        assert!(
            !l.iter()
                .filter(|x| !x.contains("tunnel to"))
                .any(|x| words(x).iter().any(|w| w == other)),
            "{other} in\n{p}"
        );
    }
    assert!(l.contains(&"+ node r1 init".to_string()), "{p}");
    assert!(
        l.contains(&"+ address r1:eth1 10.0.0.0/31".to_string()),
        "{p}"
    );
    assert!(
        l.contains(&"+ route r1 198.51.100.0/24 via 10.0.0.1".to_string()),
        "{p}"
    );
    // The tunnel end is marked like a veth end, by the second half of its creation.
    assert!(p.actions.iter().any(|a| matches!(
        a,
        Action::SetLink { who, name, implied: true, .. } if who == "r1" && name == "eth1"
    )));
    assert!(p.actions.iter().any(|a| matches!(
        a,
        Action::SetLink { who, name, changes, .. }
            if who == "bridges" && name == "vx-lan" && changes.contains(&"master lan".to_string())
    )));
}

#[test]
fn a_converged_share_plans_nothing() {
    for host in ["left", "right"] {
        let p = plan_on(WAN, Some(host), &converged_on(WAN, Some(host)));
        assert!(p.is_empty(), "{host}: {p}");
    }
}

#[test]
fn a_changed_vni_recreates_the_tunnel_and_keeps_the_nodes_end() {
    let before = converged_on(WAN, Some("left"));
    let old = crate::spec::hosts::tunnels(&parse(WAN)).links[&0].vni;
    let after = WAN.replace(
        "  - endpoints: [r1:eth1, r2:eth1]\n",
        "  - endpoints: [r1:eth1, r2:eth1]\n    vni: 77\n",
    );
    // The node's end, its addresses and routes stay; the tunnel and its bridge are new.
    assert_eq!(
        lines(&plan_on(&after, Some("left"), &before)),
        [
            format!("- link bridges:V{old}"),
            format!("- link bridges:X{old}"),
            "+ bridge X77".to_string(),
            "+ vxlan bridges:V77 vni 77, remote 198.51.100.2".to_string(),
            "~ link bridges:r1.eth1 master X77".to_string(),
        ]
    );
    // So does another port, or another remote host.
    let moved = WAN.replace("198.51.100.2}", "198.51.100.9}");
    let l = lines(&plan_on(&moved, Some("left"), &before));
    assert!(l.contains(&"- link bridges:vx-lan".to_string()), "{l:?}");
    assert!(
        l.iter()
            .any(|x| x.starts_with("+ vxlan bridges:V") && x.ends_with("remote 198.51.100.9")),
        "{l:?}"
    );
    assert!(l.iter().any(|x| x.ends_with("flood 198.51.100.9")), "{l:?}");
    let ported = format!("vxlan: {{port: 4790}}\n{WAN}");
    let l = lines(&plan_on(&ported, Some("left"), &before));
    assert_eq!(
        l.iter().filter(|x| x.starts_with("+ vxlan")).count(),
        2,
        "{l:?}"
    );
}

#[test]
fn a_tunnel_of_another_kind_is_replaced_and_a_foreign_end_is_a_conflict() {
    let vni = crate::spec::hosts::tunnels(&parse(WAN)).links[&0].vni;
    let mut o = converged_on(WAN, Some("left"));
    let Some(NsObserved::Ours(br)) = o.namespaces.get_mut("scn.br") else {
        panic!("no bridge namespace")
    };
    let l = link(br, &format!("V{vni}"));
    l.kind = Some("veth".into());
    l.vxlan = None;
    let p = plan_on(WAN, Some("left"), &o);
    assert_eq!(
        lines(&p)[..2],
        [
            format!("- link bridges:V{vni}"),
            format!("+ vxlan bridges:V{vni} vni {vni}, remote 198.51.100.2"),
        ]
    );
    let mut o = converged_on(WAN, Some("left"));
    let l = link(ns_state(&mut o, "r1"), "eth1");
    l.alias = None;
    l.group = 0;
    let p = plan_on(WAN, Some("left"), &o);
    assert_eq!(p.conflicts.len(), 1, "{p}");
    assert!(
        p.conflicts[0].contains("interface r1:eth1 exists but is not this lab's"),
        "{p}"
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::CreateVxlan { .. })),
        "{p}"
    );
}

#[test]
fn state_mtu_and_impairment_of_a_tunnel_end_change_in_place() {
    let vni = crate::spec::hosts::tunnels(&parse(WAN)).links[&0].vni;
    let before = converged_on(WAN, Some("left"));
    let after = WAN.replace(
        "  - endpoints: [r1:eth1, r2:eth1]\n",
        "  - endpoints: [r1:eth1, r2:eth1]\n    state: down\n    mtu: 1400\n    impair: {r2:eth1: {delay: 5ms}, r1:eth1: {delay: 10ms}}\n",
    );
    assert_eq!(
        lines(&plan_on(&after, Some("left"), &before)),
        [
            "~ link r1:eth1 mtu 1450 -> 1400, down".to_string(),
            format!("~ link bridges:V{vni} mtu 1450 -> 1400"),
            format!("~ link bridges:X{vni} mtu 1450 -> 1400"),
            "~ link bridges:r1.eth1 mtu 1450 -> 1400".to_string(),
            "~ impair r1:eth1 delay 10ms".to_string(),
            "- route r1 198.51.100.0/24 via 10.0.0.1".to_string(),
        ]
    );
}

#[test]
fn a_node_that_moves_to_another_host_is_stopped_and_its_namespace_removed() {
    let before = converged_on(WAN, Some("left"));
    let after = WAN.replace("  r3:\n    host: left\n", "  r3:\n    host: right\n");
    let l = lines(&plan_on(&after, Some("left"), &before));
    assert!(l.contains(&"- node r3 init (pid 400)".to_string()), "{l:?}");
    assert!(l.contains(&"- netns scn-r3 (r3)".to_string()), "{l:?}");
    // Its link to r1 is now a tunnel: r1's end is remade toward it.
    assert!(l.contains(&"- link r1:eth3".to_string()), "{l:?}");
    assert!(
        l.contains(&"+ veth r1:eth3 <-> tunnel to r3:eth1 on right".to_string()),
        "{l:?}"
    );
    assert!(
        l.iter().any(|x| x.starts_with("+ vxlan bridges:V")),
        "{l:?}"
    );
    assert!(!l.iter().any(|x| x.contains("+ node")), "{l:?}");
}

#[test]
fn a_link_whose_ends_come_to_one_host_becomes_a_veth() {
    let before = converged_on(WAN, Some("left"));
    let after = WAN.replace("  r2:\n    host: right\n", "  r2:\n    host: left\n");
    let l = lines(&plan_on(&after, Some("left"), &before));
    assert_eq!(l[0], "- link r1:eth1", "{l:?}");
    assert!(l.contains(&"+ netns scn-r2 (r2)".to_string()), "{l:?}");
    assert!(
        l.contains(&"+ veth r1:eth1 <-> r2:eth1".to_string()),
        "{l:?}"
    );
    assert!(!l.iter().any(|x| x.starts_with("+ vxlan r1")), "{l:?}");
}

#[test]
fn flood_entries_are_the_same_in_any_order_and_a_missing_one_recreates_the_port() {
    let three = WAN
        .replace(
            "  right: {address: 198.51.100.2}\n",
            "  right: {address: 198.51.100.2}\n  third: {address: 198.51.100.3}\n",
        )
        .replace(
            "  r2:\n    host: right\n",
            "  r4: {host: third, interfaces: {eth0: {addresses: [192.0.2.11/24]}}}\n  r2:\n    host: right\n",
        )
        .replace("[r1:eth2, h1:eth0]", "[r1:eth2, h1:eth0, r4:eth0]");
    let mut o = converged_on(&three, Some("left"));
    let port = |o: &mut Observed| -> LinkObs {
        match o.namespaces.get_mut("scn.br") {
            Some(NsObserved::Ours(s)) => link(s, "vx-lan").clone(),
            _ => panic!("no bridge namespace"),
        }
    };
    let flood = port(&mut o).vxlan.map(|v| v.flood).unwrap_or_default();
    assert_eq!(flood, [ip("198.51.100.2"), ip("198.51.100.3")]);
    if let Some(NsObserved::Ours(s)) = o.namespaces.get_mut("scn.br") {
        if let Some(v) = link(s, "vx-lan").vxlan.as_mut() {
            v.flood.reverse();
        }
    }
    let p = plan_on(&three, Some("left"), &o);
    assert!(p.is_empty(), "{p}");
    if let Some(NsObserved::Ours(s)) = o.namespaces.get_mut("scn.br") {
        if let Some(v) = link(s, "vx-lan").vxlan.as_mut() {
            v.flood.pop();
        }
    }
    let l = lines(&plan_on(&three, Some("left"), &o));
    assert_eq!(l[0], "- link bridges:vx-lan", "{l:?}");
    assert!(l[1].ends_with("flood 198.51.100.2, 198.51.100.3"), "{l:?}");
}
