//! Helpers for the labs of `topologies/` that run routing daemons (frr.rs, bird.rs): their
//! address plan, the routes their daemons install in the kernel, traffic, convergence and
//! failover. Like common.rs, they read the kernel (`ip -j route` in the nodes) and real
//! traffic; what a daemon reports is read by each daemon family's own file.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// The routes of a node's main table, IPv4 and IPv6 (`ip -j -4|-6 route show` inside the
/// node); None when `ip` fails (the node is not running).
pub fn kernel_routes(lab: &TestLab, node: &str) -> Option<Vec<Value>> {
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let out = lab.exec(node, &["ip", "-j", family, "route", "show"]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        routes.extend(v.as_array()?.iter().cloned());
    }
    Some(routes)
}

/// The route to exactly `prefix` among `routes` (`ip` writes a host route without its
/// length: `10.255.0.2`, `2001:db8:ff::2`).
pub fn find_route<'a>(routes: &'a [Value], prefix: &str) -> Option<&'a Value> {
    let host = prefix
        .strip_suffix("/32")
        .or_else(|| prefix.strip_suffix("/128"));
    routes
        .iter()
        .find(|r| r["dst"] == prefix || host.is_some_and(|h| r["dst"] == h))
}

/// The output devices of a kernel route: its `dev`, or those of its ECMP `nexthops`.
pub fn route_devs(route: &Value) -> Vec<String> {
    let mut devs: Vec<String> = route["dev"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    for hop in route["nexthops"].as_array().into_iter().flatten() {
        devs.extend(hop["dev"].as_str().map(str::to_string));
    }
    devs
}

/// The IPv4 and IPv6 prefixes of a destination of the example labs' address plan: `loN` is
/// router rN's loopback (10.255.0.N/32, 2001:db8:ff::N/128), `lanN` the LAN of host hN
/// (10.N.0.0/24, 2001:db8:N::/64).
pub fn plan_prefixes(destination: &str) -> [String; 2] {
    if let Some(n) = destination.strip_prefix("lo") {
        [format!("10.255.0.{n}/32"), format!("2001:db8:ff::{n}/128")]
    } else if let Some(n) = destination.strip_prefix("lan") {
        [format!("10.{n}.0.0/24"), format!("2001:db8:{n}::/64")]
    } else {
        panic!("unknown destination {destination}")
    }
}

/// Whether `routes` (of `node`) has a route to exactly `prefix`, installed by `protocol`
/// (`ospf`, `bgp`, `bird`, as `ip` names it), through `dev` alone; Err says what is there
/// instead.
pub fn check_route(
    node: &str,
    routes: &[Value],
    prefix: &str,
    protocol: &str,
    dev: &str,
) -> Result<(), String> {
    let Some(route) = find_route(routes, prefix) else {
        return Err(format!("{node}: no route to {prefix}"));
    };
    if route["protocol"] != protocol || route_devs(route) != [dev] {
        return Err(format!(
            "{node}: the route to {prefix} is {route}, not proto {protocol} dev {dev}"
        ));
    }
    Ok(())
}

/// Whether the kernel of each node holds the routes `expected` says, as (node, device,
/// destinations of [`plan_prefixes`]): a route to each of the destinations' IPv4 and IPv6
/// prefixes, installed by `protocol`, through that device. Err says the first one missing or
/// different.
pub fn expect_routes(
    lab: &TestLab,
    protocol: &str,
    expected: &[(&str, &str, &[&str])],
) -> Result<(), String> {
    let mut nodes: Vec<&str> = expected.iter().map(|(node, _, _)| *node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    for node in nodes {
        let routes = kernel_routes(lab, node).ok_or(format!("{node}: ip route failed"))?;
        for (_, dev, destinations) in expected.iter().filter(|(n, _, _)| *n == node) {
            for prefix in destinations.iter().flat_map(|d| plan_prefixes(d)) {
                check_route(node, &routes, &prefix, protocol, dev)?;
            }
        }
    }
    Ok(())
}

/// Err unless `found` holds every one of `want` (`what`: what was looked for, for the message).
pub fn expect_all(node: &str, what: &str, found: &[String], want: &[String]) -> Result<(), String> {
    let missing: Vec<&String> = want.iter().filter(|w| !found.contains(w)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{node}: {what}: {missing:?} missing (found {found:?})"
        ))
    }
}

/// What the daemons and the kernels of `routers` say, for a failure message: the output of
/// each of `commands` in every router, its IPv4 and IPv6 routes, and the tail of the log of
/// each of its `services`.
pub fn routing_report(
    lab: &TestLab,
    routers: &[&str],
    commands: &[&[&str]],
    services: &[&str],
) -> String {
    let mut s = String::new();
    for node in routers {
        for argv in commands {
            s += &shown(lab, node, argv);
        }
        s += &shown(lab, node, &["ip", "-4", "route"]);
        s += &shown(lab, node, &["ip", "-6", "route"]);
        for service in services {
            s += &log_tail(lab, node, service);
            s.push('\n');
        }
    }
    s
}

/// Waits (at most 60 s) until `converged` returns Ok and returns how long after `started`
/// (when `topo up` began) that was. From `all_started` after `started` on, fewer than
/// `expected` of the lab's processes named `daemons` means one has exited: the wait fails at
/// once, with `diagnosis()`, rather than at the deadline.
pub fn converge(
    lab: &TestLab,
    started: Instant,
    (daemons, expected, all_started): (&[&str], usize, Duration),
    mut converged: impl FnMut() -> Result<(), String>,
    diagnosis: impl Fn() -> String,
) -> Duration {
    wait_for(
        &format!("lab {} converges", lab.name),
        Duration::from_secs(60),
        || {
            if started.elapsed() > all_started {
                let running = lab_daemons(&lab.name, daemons);
                assert!(
                    running.len() >= expected,
                    "lab {}: {expected} daemons expected, a daemon has exited: {running:?}\n{}",
                    lab.name,
                    diagnosis()
                );
            }
            converged()
        },
        &diagnosis,
    );
    started.elapsed()
}

/// Pings `to` from a node (`topo exec NODE -- ping`): until the first reply, an echo request
/// every half second for up to four seconds.
pub fn lab_ping(lab: &TestLab, node: &str, to: &str) -> Result<(), String> {
    let out = lab.exec(node, &["ping", "-c", "1", "-i", "0.5", "-w", "4", to]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{node}: ping {to}:\n{}", text(&out)))
    }
}

/// Pings `to` from `from` for each pair (`lab_ping`), failing with `diagnosis()`.
pub fn pings(lab: &TestLab, pairs: &[(&str, &str)], diagnosis: impl Fn() -> String) {
    for (from, to) in pairs {
        if let Err(e) = lab_ping(lab, from, to) {
            panic!("lab {}: {e}\n{}", lab.name, diagnosis());
        }
    }
}

/// Takes `iface` (`NODE:IFACE`) down with `topo link`, waits until `node`'s kernel routes
/// each of `destinations` around it (`expect_routes` with `backup_dev`), and pings (from, to)
/// across; then `topo up` sets the interface up again and the routes return to `primary_dev`.
/// Returns how long the routes took to move.
#[allow(clippy::too_many_arguments)]
pub fn fail_over(
    lab: &TestLab,
    iface: &str,
    node: &str,
    destinations: &[&str],
    protocol: &str,
    (primary_dev, backup_dev): (&str, &str),
    pings: &[(&str, &str)],
    diagnosis: impl Fn() -> String,
) -> Duration {
    let routes_through = |dev: &str| expect_routes(lab, protocol, &[(node, dev, destinations)]);
    if let Err(e) = routes_through(primary_dev) {
        panic!(
            "lab {}: before {iface} goes down: {e}\n{}",
            lab.name,
            diagnosis()
        );
    }
    let out = topo(&["link", "--lab", &lab.name, iface, "down"]);
    assert!(
        out.status.success(),
        "topo link {iface} down:\n{}",
        text(&out)
    );
    let took = wait_for(
        &format!("lab {}: {node} routes around {iface}", lab.name),
        Duration::from_secs(30),
        || routes_through(backup_dev),
        &diagnosis,
    );
    for (from, to) in pings {
        if let Err(e) = lab_ping(lab, from, to) {
            panic!("lab {}: with {iface} down: {e}\n{}", lab.name, diagnosis());
        }
    }
    let plan = lab.plan();
    assert!(
        plan.lines().any(|l| l == format!("~ link {iface} up")),
        "plan with {iface} down:\n{plan}"
    );
    lab.up();
    wait_for(
        &format!("lab {}: {node} routes through {iface} again", lab.name),
        Duration::from_secs(60),
        || routes_through(primary_dev),
        &diagnosis,
    );
    took
}
