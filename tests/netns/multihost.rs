//! A lab across two hosts, on one kernel: each "host" is a network namespace made by the test
//! (`mhx-u1`, `mhx-u2`, joined by a veth with 198.51.100.1/24 and .2/24), and each share's
//! `topo` runs inside one of them, so that its tunnels' UDP sockets and the underlay are
//! there and not in the machine's own namespace. The two shares run under two lab names
//! (one machine cannot hold two shares of one lab), so the file declares its VNIs. Asserted
//! on the kernel: the cross-host ends are VXLAN interfaces with the file's VNI, port and
//! underlay addresses, their sockets are in the underlay, traffic crosses over the routed path
//! and across the bridge, a second `up` changes nothing, and when one share goes down the
//! other's `plan` reports the far ends that stopped answering.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::common::*;

const FILE: &str = "name: mhx
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2}
nodes:
  h1: {host: left, interfaces: {eth0: {addresses: [192.0.2.1/26, 2001:db8:1::1/64]}, eth1: {addresses: [203.0.113.1/24]}},
       routes: [{to: default, via: 192.0.2.2}, {to: ::/0, via: 2001:db8:1::2}]}
  r1: {host: left, interfaces: {eth0: {addresses: [192.0.2.2/26, 2001:db8:1::2/64]}, eth1: {addresses: [192.0.2.65/30, 2001:db8:2::1/64]}},
       sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1},
       routes: [{to: 192.0.2.128/26, via: 192.0.2.66}, {to: 2001:db8:3::/64, via: 2001:db8:2::2}]}
  r2: {host: right, interfaces: {eth0: {addresses: [192.0.2.129/26, 2001:db8:3::1/64]}, eth1: {addresses: [192.0.2.66/30, 2001:db8:2::2/64]}},
       sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1},
       routes: [{to: 192.0.2.0/26, via: 192.0.2.65}, {to: 2001:db8:1::/64, via: 2001:db8:2::1}]}
  h2: {host: right, interfaces: {eth0: {addresses: [192.0.2.130/26, 2001:db8:3::2/64]}, eth1: {addresses: [203.0.113.2/24]}},
       routes: [{to: default, via: 192.0.2.129}, {to: ::/0, via: 2001:db8:3::1}]}
links:
  - endpoints: [h1:eth0, r1:eth0]
  - endpoints: [r1:eth1, r2:eth1]
    vni: 7001
  - endpoints: [r2:eth0, h2:eth0]
bridges:
  lan: {members: [h1:eth1, h2:eth1], vni: 7002}
";

/// The two "hosts": namespaces joined by the underlay, deleted on drop (after the labs,
/// which are declared after them and so dropped first).
struct Underlay;

const U: [&str; 2] = ["mhx-u1", "mhx-u2"];

impl Underlay {
    fn new() -> Underlay {
        for u in U {
            let _ = Command::new("ip").args(["netns", "del", u]).output();
            run(&["ip", "netns", "add", u]);
            run(&["ip", "-n", u, "link", "set", "lo", "up"]);
        }
        run(&[
            "ip", "-n", U[0], "link", "add", "ul", "type", "veth", "peer", "name", "ul", "netns",
            U[1],
        ]);
        for (u, a) in [(U[0], "198.51.100.1/24"), (U[1], "198.51.100.2/24")] {
            run(&["ip", "-n", u, "addr", "add", a, "dev", "ul"]);
            run(&["ip", "-n", u, "link", "set", "ul", "up"]);
        }
        Underlay
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        for u in U {
            let _ = Command::new("ip").args(["netns", "del", u]).output();
        }
    }
}

/// `topo ARGS` run with `underlay` as its host's network namespace.
fn topo_in(underlay: &str, args: &[&str]) -> Output {
    let ns = File::open(format!("/run/netns/{underlay}")).expect("open the underlay");
    let mut c = Command::new(TOPO);
    c.args(args).env("TOPO_LOG_DIR", archive_root());
    // SAFETY: setns(2) is async-signal-safe; the closure touches nothing but the open file.
    unsafe {
        c.pre_exec(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
        });
    }
    c.output().expect("run topo")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ip -d -j link show DEV` in namespace `ns`: the link's JSON.
fn link(ns: &str, dev: &str) -> serde_json::Value {
    ip_json(Some(ns), &["-d", "link", "show", "dev", dev])[0].clone()
}

fn ping6(ns: &str, addr: &str) -> bool {
    netns_exec(ns, &["ping", "-6", "-c", "1", "-W", "2", addr])
        .status
        .success()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn two_shares_joined_by_vxlan_carry_traffic_and_see_each_other_go() {
    let _underlay = Underlay::new();
    let left = TestLab::new("mhx-l", &with_name(FILE, "mhx-l"));
    let right = TestLab::new("mhx-r", &with_name(FILE, "mhx-r"));
    let (lf, rf) = (path(&left.file).to_string(), path(&right.file).to_string());
    for (u, f, host) in [(U[0], &lf, "left"), (U[1], &rf, "right")] {
        let o = topo_in(u, &["up", f, "--host", host]);
        assert!(o.status.success(), "up --host {host}: {}", text(&o));
    }
    assert_eq!(netns_with_prefix("mhx-l-"), ["mhx-l-h1", "mhx-l-r1"]);
    assert_eq!(netns_with_prefix("mhx-r-"), ["mhx-r-h2", "mhx-r-r2"]);

    // The node's end is a veth, stitched in the bridge namespace to the link's VXLAN
    // interface, whose socket is in the underlay.
    let end = link("mhx-l-r1", "eth1");
    assert_eq!(end["linkinfo"]["info_kind"], "veth", "{end}");
    assert_eq!(end["mtu"], 1450, "the underlay's 1500 minus 50: {end}");
    let tunnel = link("mhx-l.br", "V7001");
    let data = &tunnel["linkinfo"]["info_data"];
    assert_eq!(tunnel["linkinfo"]["info_kind"], "vxlan", "{tunnel}");
    assert_eq!(data["id"], 7001, "{tunnel}");
    assert_eq!(data["port"], 14789, "{tunnel}");
    assert_eq!(data["local"], "198.51.100.1", "{tunnel}");
    assert_eq!(data["remote"], "198.51.100.2", "{tunnel}");
    assert_eq!(tunnel["master"], "X7001", "{tunnel}");
    assert_eq!(link("mhx-l.br", "r1.eth1")["master"], "X7001");
    assert!(udp_ports(U[0]).contains(&14789), "socket in the underlay");
    assert!(
        !udp_ports("mhx-l-r1").contains(&14789),
        "no socket in the node"
    );
    // The bridge's port toward the other host floods to it.
    let port = link("mhx-l.br", "vx-lan");
    assert_eq!(port["linkinfo"]["info_data"]["id"], 7002, "{port}");
    assert_eq!(port["master"], "lan", "{port}");
    let fdb = Command::new("bridge")
        .args(["-n", "mhx-l.br", "fdb", "show", "dev", "vx-lan"])
        .output()
        .expect("bridge fdb");
    assert!(
        stdout(&fdb).contains("00:00:00:00:00:00 dst 198.51.100.2"),
        "{}",
        text(&fdb)
    );

    // Attack: root in r1 aims the tunnel at another address. The node holds no VXLAN
    // interface, so there is nothing to add a forwarding entry to.
    let o = left.exec(
        "r1",
        &[
            "sh",
            "-c",
            "bridge fdb append 00:00:00:00:00:00 dev eth1 dst 198.51.100.98; \
             ip -d link show type vxlan",
        ],
    );
    assert!(
        !stdout(&o).contains("vxlan"),
        "a tunnel is visible in the node: {}",
        text(&o)
    );
    let fdb = Command::new("bridge")
        .args(["-n", "mhx-l.br", "fdb", "show"])
        .output()
        .expect("bridge fdb");
    assert!(!stdout(&fdb).contains("198.51.100.98"), "{}", text(&fdb));
    assert!(ping("mhx-l-r1", "192.0.2.66"), "r1 -> r2 across the tunnel");

    // Routed across the hosts, both families; and across the bridge.
    assert!(ping("mhx-l-h1", "192.0.2.130"), "h1 -> h2 over r1, r2");
    assert!(ping6("mhx-l-h1", "2001:db8:3::2"), "h1 -> h2 over IPv6");
    assert!(ping("mhx-r-h2", "203.0.113.1"), "h2 -> h1 across lan");

    // Converged: nothing to change, every far end answers.
    for (u, f) in [(U[0], &lf), (U[1], &rf)] {
        let o = topo_in(u, &["plan", f]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            stdout(&o),
            format!(
                "lab {}: no changes\n",
                if u == U[0] { "mhx-l" } else { "mhx-r" }
            )
        );
        let o = topo_in(u, &["up", f]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(stdout(&o).contains("no changes"), "{}", text(&o));
    }

    // Left goes; right's share stays, and its plan shows the far end that stopped answering.
    let o = topo_in(U[0], &["down", "--lab", "mhx-l"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(netns_with_prefix("mhx-l").is_empty());
    assert_eq!(netns_with_prefix("mhx-r-"), ["mhx-r-h2", "mhx-r-r2"]);
    assert!(
        ping("mhx-r-h2", "192.0.2.129"),
        "right's own path still works"
    );
    let o = topo_in(U[1], &["plan", &rf]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        stdout(&o),
        "? r2:eth1 -> r1:eth1 on host left: no answer\n",
        "{}",
        text(&o)
    );
}
