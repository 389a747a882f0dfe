//! VXLAN tunnels between two hosts, simulated without touching the host's namespace: each
//! "host" is an underlay namespace (`mnt-TAG-u1`, `mnt-TAG-u2`, joined by a veth with
//! 198.51.100.1/24 and .2/24), and the tunnel ends are made from a netlink socket of the
//! underlay namespace straight into a node's (or a bridge's) namespace with
//! `topo::vxlan::add`. The assertions read the kernel: iproute2's JSON, `/proc/net/udp` of
//! each namespace, real pings, and the probes of `topo::probe`.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use topo::probe;
use topo::vxlan::{self, Vxlan};

use crate::common::*;

const PORT: u16 = 14789;
const U1: &str = "198.51.100.1";
const U2: &str = "198.51.100.2";

/// The named namespaces of one test, `mnt-TAG-NAME`, made with `ip netns add` (a leftover of
/// a crashed run is removed first) and deleted on drop, with everything in them.
struct Namespaces {
    tag: String,
    names: Vec<String>,
}

impl Namespaces {
    fn new(tag: &str, short: &[&str]) -> Namespaces {
        let ns = Namespaces {
            tag: tag.to_string(),
            names: short.iter().map(|s| format!("mnt-{tag}-{s}")).collect(),
        };
        for name in &ns.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
            run(&["ip", "netns", "add", name]);
            // No duplicate address detection: IPv6 addresses (the link-local ones too) are
            // usable, and answered for, at once.
            for key in ["all", "default"] {
                run(&[
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{key}.accept_dad=0"),
                ]);
            }
        }
        ns
    }

    fn name(&self, short: &str) -> String {
        format!("mnt-{}-{short}", self.tag)
    }

    fn file(&self, short: &str) -> File {
        File::open(format!("/run/netns/{}", self.name(short))).expect("open netns")
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// `ip -n NS ARGS…`, which must succeed.
fn ip(ns: &str, args: &[&str]) {
    let mut argv = vec!["ip", "-n", ns];
    argv.extend_from_slice(args);
    run(&argv);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A netlink route socket opened inside namespace `ns` (by a thread that enters it), driven
/// by `rt`.
fn handle_in(rt: &tokio::runtime::Runtime, ns: &str) -> rtnetlink::Handle {
    let rt = rt.handle().clone();
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let f = File::open(&path).expect("open netns");
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let _guard = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection().expect("netlink socket");
        rt.spawn(conn);
        handle
    })
    .join()
    .expect("netns thread")
}

/// The underlay: a veth between `u1` and `u2` with 198.51.100.1/24 and .2/24, up.
fn underlay(ns: &Namespaces) {
    underlay_with(ns, &format!("{U1}/24"), &format!("{U2}/24"));
}

/// The underlay veth between `u1` and `u2`, with address `a1` and `a2`, up.
fn underlay_with(ns: &Namespaces, a1: &str, a2: &str) {
    let (u1, u2) = (ns.name("u1"), ns.name("u2"));
    ip(
        &u1,
        &[
            "link", "add", "ul", "type", "veth", "peer", "name", "ul", "netns", &u2,
        ],
    );
    for (n, a) in [(&u1, a1), (&u2, a2)] {
        ip(n, &["addr", "add", a, "dev", "ul"]);
        ip(n, &["link", "set", "ul", "up"]);
    }
}

async fn links(handle: &rtnetlink::Handle) -> Vec<LinkMessage> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .expect("dump links")
}

fn named<'a>(links: &'a [LinkMessage], name: &str) -> Option<&'a LinkMessage> {
    links.iter().find(|m| {
        m.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name))
    })
}

fn link_names(ns: &str) -> Vec<String> {
    ifindexes(ns).into_iter().map(|(n, _)| n).collect()
}

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0x6d, 0x6e, 0x74, 0x00, last]
}

fn p2p(local: &str, remote: &str) -> Vxlan {
    Vxlan {
        vni: 1001,
        port: PORT,
        local: local.parse().expect("address"),
        remote: Some(remote.parse().expect("address")),
        learning: false,
    }
}

/// Two hosts and a point-to-point tunnel between node namespaces `n1` and `n2` (each end
/// `eth1`, MTU 1450, group 7), made from the underlay namespaces, addressed 192.0.2.1/24,
/// 2001:db8::1/64 and .2, ::2, and up.
fn tunnel(rt: &tokio::runtime::Runtime, ns: &Namespaces) {
    underlay(ns);
    for (i, (u, n, local, remote)) in [("u1", "n1", U1, U2), ("u2", "n2", U2, U1)]
        .into_iter()
        .enumerate()
    {
        let handle = handle_in(rt, &ns.name(u));
        let file = ns.file(n);
        rt.block_on(vxlan::add(
            &handle,
            Some(file.as_fd()),
            "eth1",
            0,
            &p2p(local, remote),
            1450,
            mac(i as u8 + 1),
            7,
        ))
        .unwrap_or_else(|e| panic!("create the tunnel end in {n}: {e}"));
        let n = ns.name(n);
        ip(
            &n,
            &[
                "addr",
                "add",
                &format!("192.0.2.{}/24", i + 1),
                "dev",
                "eth1",
            ],
        );
        ip(
            &n,
            &[
                "addr",
                "add",
                &format!("2001:db8::{}/64", i + 1),
                "dev",
                "eth1",
            ],
        );
    }
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn vxlan_end_is_made_in_the_node_with_its_socket_in_the_underlay() {
    let ns = Namespaces::new("p", &["u1", "u2", "n1", "n2"]);
    let rt = runtime();
    tunnel(&rt, &ns);
    let (u1, n1, n2) = (ns.name("u1"), ns.name("n1"), ns.name("n2"));

    // The device is in the node's namespace, down, as created; none in the underlay's.
    assert!(
        link_names(&n1).contains(&"eth1".to_string()),
        "{:?}",
        link_names(&n1)
    );
    assert!(
        !link_names(&u1).contains(&"eth1".to_string()),
        "{:?}",
        link_names(&u1)
    );
    let shown = &ip_json(Some(&n1), &["-d", "link", "show", "eth1"])[0];
    assert!(
        !shown["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP")),
        "created down: {shown}"
    );
    assert_eq!(shown["linkinfo"]["info_kind"], "vxlan", "{shown}");
    assert_eq!(shown["mtu"], 1450);
    assert_eq!(shown["address"], "02:6d:6e:74:00:01");
    assert_eq!(shown["group"], "7", "{shown}");
    assert_eq!(
        shown["link_netnsid"], 0,
        "tied to another namespace: {shown}"
    );
    let data = &shown["linkinfo"]["info_data"];
    assert_eq!(data["id"], 1001, "{data}");
    assert_eq!(data["port"], PORT, "{data}");
    assert_eq!(data["local"], U1, "{data}");
    assert_eq!(data["remote"], U2, "{data}");
    assert_eq!(data["learning"], false, "{data}");

    // `parse` of the dump gives back what was created.
    let handle_n1 = handle_in(&rt, &n1);
    let dumped = rt.block_on(links(&handle_n1));
    let msg = named(&dumped, "eth1").expect("eth1 dumped");
    assert_eq!(vxlan::parse(msg), Some(p2p(U1, U2)));
    assert_eq!(vxlan::parse(named(&dumped, "lo").expect("lo")), None);

    // The kernel opens the UDP socket when the device goes up, in the underlay namespace.
    assert!(!udp_ports(&u1).contains(&PORT), "no socket while down");
    for n in [&n1, &n2] {
        ip(n, &["link", "set", "eth1", "up"]);
    }
    assert!(udp_ports(&u1).contains(&PORT), "u1: {:?}", udp_ports(&u1));
    assert!(udp_ports(&ns.name("u2")).contains(&PORT));
    assert!(!udp_ports(&n1).contains(&PORT), "n1: {:?}", udp_ports(&n1));

    for (from, to) in [(&n1, "192.0.2.2"), (&n2, "192.0.2.1")] {
        assert!(ping(from, to), "{from} -> {to} over the tunnel");
    }
    for (from, to) in [(&n1, "2001:db8::2"), (&n2, "2001:db8::1")] {
        assert!(ping(from, to), "{from} -> {to} over the tunnel");
    }

    // A second tunnel with the same VNI and port from the same underlay namespace: refused,
    // wherever it would go, and the error says which VNI and port.
    let handle_u1 = handle_in(&rt, &u1);
    let n2_file = ns.file("n2");
    let err = rt
        .block_on(vxlan::add(
            &handle_u1,
            Some(n2_file.as_fd()),
            "eth2",
            0,
            &p2p(U1, "198.51.100.3"),
            1450,
            mac(3),
            7,
        ))
        .expect_err("same VNI and port from one namespace");
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("VNI 1001 with UDP port 14789 is already used"),
        "{msg}"
    );
    assert!(!link_names(&n2).contains(&"eth2".to_string()));
    // Another port is another tunnel.
    let other_port = Vxlan {
        port: PORT + 1,
        ..p2p(U1, "198.51.100.3")
    };
    rt.block_on(vxlan::add(
        &handle_u1,
        Some(n2_file.as_fd()),
        "eth2",
        0,
        &other_port,
        1450,
        mac(3),
        7,
    ))
    .expect("same VNI on another port");
    assert!(link_names(&n2).contains(&"eth2".to_string()));

    // A name the target namespace has.
    let n1_file = ns.file("n1");
    let other_vni = Vxlan {
        vni: 1002,
        ..p2p(U1, U2)
    };
    let err = rt
        .block_on(vxlan::add(
            &handle_u1,
            Some(n1_file.as_fd()),
            "eth1",
            0,
            &other_vni,
            1450,
            mac(4),
            7,
        ))
        .expect_err("name taken");
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    assert!(
        err.to_string()
            .contains("the target namespace already has an interface named eth1"),
        "{err}"
    );
    // The underlay's own names do not matter (the kernel looks the name up in the target).
    rt.block_on(vxlan::add(
        &handle_u1,
        Some(n1_file.as_fd()),
        "ul",
        0,
        &other_vni,
        1450,
        mac(5),
        7,
    ))
    .expect("a name the underlay namespace has");
    assert!(link_names(&n1).contains(&"ul".to_string()));
    // Nor do its indexes; an index the target has is refused, and said so.
    ip(
        &u1,
        &["link", "add", "x40", "index", "40", "type", "bridge"],
    );
    let with_vni = |vni| Vxlan { vni, ..p2p(U1, U2) };
    rt.block_on(vxlan::add(
        &handle_u1,
        Some(n1_file.as_fd()),
        "eth4",
        40,
        &with_vni(1003),
        1450,
        mac(6),
        7,
    ))
    .expect("an index the underlay namespace has");
    let index_of = |dev: &str| {
        ifindexes(&n1)
            .into_iter()
            .find(|(n, _)| n == dev)
            .map(|(_, i)| i)
    };
    assert_eq!(index_of("eth4"), Some(40), "{:?}", ifindexes(&n1));
    let err = rt
        .block_on(vxlan::add(
            &handle_u1,
            Some(n1_file.as_fd()),
            "eth5",
            40,
            &with_vni(1004),
            1450,
            mac(7),
            7,
        ))
        .expect_err("index taken");
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    assert!(
        err.to_string()
            .contains("the target namespace already has an interface with index 40"),
        "{err}"
    );

    // The devices belong to the underlay namespace too: it takes them with it when it goes.
    drop(handle_u1);
    run(&["ip", "netns", "del", &u1]);
    let gone = eventually(5, || {
        (!link_names(&n1)
            .iter()
            .any(|n| ["eth1", "ul", "eth4"].contains(&n.as_str())))
        .then_some(())
    });
    assert!(gone.is_some(), "n1 still has {:?}", link_names(&n1));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn vxlan_runs_over_an_ipv6_underlay_too() {
    let ns = Namespaces::new("s", &["u1", "u2", "n1", "n2"]);
    let rt = runtime();
    let (a1, a2) = ("2001:db8:ffff::1", "2001:db8:ffff::2");
    underlay_with(&ns, &format!("{a1}/64"), &format!("{a2}/64"));
    for (i, (u, n, local, remote)) in [("u1", "n1", a1, a2), ("u2", "n2", a2, a1)]
        .into_iter()
        .enumerate()
    {
        let handle = handle_in(&rt, &ns.name(u));
        let file = ns.file(n);
        let vx = p2p(local, remote);
        // 1500 less the 70 bytes of encapsulation over IPv6.
        rt.block_on(vxlan::add(
            &handle,
            Some(file.as_fd()),
            "eth1",
            0,
            &vx,
            1430,
            mac(i as u8 + 1),
            0,
        ))
        .expect("create the tunnel end");
        let n = ns.name(n);
        ip(
            &n,
            &[
                "addr",
                "add",
                &format!("192.0.2.{}/24", i + 1),
                "dev",
                "eth1",
            ],
        );
        ip(&n, &["link", "set", "eth1", "up"]);
        let dumped = rt.block_on(links(&handle_in(&rt, &n)));
        let msg = named(&dumped, "eth1").expect("eth1 dumped");
        assert_eq!(vxlan::parse(msg), Some(vx));
    }
    let (u1, n1) = (ns.name("u1"), ns.name("n1"));
    assert!(ping(&n1, "192.0.2.2"), "n1 -> n2 over the IPv6 underlay");
    // Full-size frames pass: 1430 bytes of IPv4 in 1500 bytes of IPv6 underlay.
    let big = netns_exec(
        &n1,
        &[
            "ping",
            "-c",
            "1",
            "-w",
            "4",
            "-M",
            "do",
            "-s",
            "1402",
            "192.0.2.2",
        ],
    );
    assert!(big.status.success(), "{}", text(&big));
    assert!(udp_ports_of(&u1, "udp6").contains(&PORT), "an IPv6 socket");
    assert!(!udp_ports_of(&u1, "udp").contains(&PORT), "and no IPv4 one");
    assert!(!udp_ports(&n1).contains(&PORT));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn bridged_vxlan_floods_to_its_peers_and_lists_them() {
    let ns = Namespaces::new("b", &["u1", "u2", "b1", "b2", "m1", "m2"]);
    let rt = runtime();
    underlay(&ns);
    let mut ports = Vec::new();
    for (i, (u, b, m, local)) in [("u1", "b1", "m1", U1), ("u2", "b2", "m2", U2)]
        .into_iter()
        .enumerate()
    {
        let (bn, mn) = (ns.name(b), ns.name(m));
        ip(
            &bn,
            &["link", "add", "br0", "mtu", "1450", "type", "bridge"],
        );
        ip(&bn, &["link", "set", "br0", "up"]);
        ip(
            &bn,
            &[
                "link", "add", "p1", "mtu", "1450", "type", "veth", "peer", "name", "eth0",
                "netns", &mn,
            ],
        );
        ip(&bn, &["link", "set", "p1", "master", "br0", "up"]);
        ip(
            &mn,
            &[
                "addr",
                "add",
                &format!("192.0.2.{}/24", 11 + i),
                "dev",
                "eth0",
            ],
        );
        ip(&mn, &["link", "set", "eth0", "up"]);
        let port = Vxlan {
            vni: 2001,
            port: PORT,
            local: local.parse().expect("address"),
            remote: None,
            learning: true,
        };
        let handle_u = handle_in(&rt, &ns.name(u));
        let file = ns.file(b);
        rt.block_on(vxlan::add(
            &handle_u,
            Some(file.as_fd()),
            "vx-lan",
            0,
            &port,
            1450,
            mac(10 + i as u8),
            0,
        ))
        .expect("create the bridge's tunnel port");
        ip(&bn, &["link", "set", "vx-lan", "master", "br0", "up"]);
        let handle_b = handle_in(&rt, &bn);
        let dumped = rt.block_on(links(&handle_b));
        let msg = named(&dumped, "vx-lan").expect("vx-lan in the bridge namespace");
        assert_eq!(vxlan::parse(msg), Some(port));
        ports.push((handle_b, msg.header.index));
    }
    let (m1, m2) = (ns.name("m1"), ns.name("m2"));
    assert!(
        !ping(&m1, "192.0.2.12"),
        "without a flood entry the ARP request goes nowhere"
    );

    let u: [IpAddr; 3] = [U1, U2, "198.51.100.3"].map(|a| a.parse().expect("address"));
    let (h1, ix1) = &ports[0];
    let (h2, ix2) = &ports[1];
    rt.block_on(vxlan::flood_add(h1, *ix1, u[1]))
        .expect("flood b1 -> u2");
    rt.block_on(vxlan::flood_add(h2, *ix2, u[0]))
        .expect("flood b2 -> u1");
    assert!(ping(&m1, "192.0.2.12"), "m1 -> m2 across the bridges");
    assert!(ping(&m2, "192.0.2.11"), "m2 -> m1 across the bridges");
    assert!(udp_ports(&ns.name("u1")).contains(&PORT));
    assert!(!udp_ports(&ns.name("b1")).contains(&PORT));

    let list = |h, ix| rt.block_on(vxlan::flood_list(h, ix)).expect("flood list");
    assert_eq!(list(h1, *ix1), [u[1]]);
    assert_eq!(list(h2, *ix2), [u[0]]);
    // Appending a listed peer changes nothing; another peer is appended.
    rt.block_on(vxlan::flood_add(h1, *ix1, u[1]))
        .expect("again");
    rt.block_on(vxlan::flood_add(h1, *ix1, u[2]))
        .expect("a third host");
    let mut both = list(h1, *ix1);
    both.sort();
    assert_eq!(both, [u[1], u[2]]);
    // What iproute2 reads: the same all-zero entries.
    let mut fdb: Vec<String> = ip_bridge_fdb(&ns.name("b1"), "vx-lan")
        .into_iter()
        .filter(|e| e["mac"] == "00:00:00:00:00:00")
        .filter_map(|e| e["dst"].as_str().map(str::to_string))
        .collect();
    fdb.sort();
    assert_eq!(fdb, [U2, "198.51.100.3"]);

    rt.block_on(vxlan::flood_del(h1, *ix1, u[2]))
        .expect("delete a peer");
    assert_eq!(list(h1, *ix1), [u[1]]);
    rt.block_on(vxlan::flood_del(h1, *ix1, u[2]))
        .expect("deleting it again is no error");
    assert!(ping(&m1, "192.0.2.12"), "the remaining peer still works");
}

/// `bridge -j fdb show dev DEV` in namespace `ns`.
fn ip_bridge_fdb(ns: &str, dev: &str) -> Vec<serde_json::Value> {
    let out = Command::new("bridge")
        .args(["-n", ns, "-j", "fdb", "show", "dev", dev])
        .output()
        .expect("run bridge");
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn probe_answers_across_a_live_tunnel_and_not_once_the_far_end_is_gone() {
    let ns = Namespaces::new("q", &["u1", "u2", "n1", "n2"]);
    let rt = runtime();
    tunnel(&rt, &ns);
    let (n1, n2) = (ns.name("n1"), ns.name("n2"));
    let (f1, f2) = (ns.file("n1"), ns.file("n2"));
    let t = Duration::from_secs(2);
    let addr = |s: &str| s.parse::<IpAddr>().expect("address");

    // Down here: the probe cannot run.
    let err = probe::probe(&f1, "eth1", addr("192.0.2.2"), t).expect_err("eth1 is down");
    assert_eq!(err.errno(), Some(libc::ENETDOWN), "{err}");
    for n in [&n1, &n2] {
        ip(n, &["link", "set", "eth1", "up"]);
    }

    // Each end answers, in both families, for its link-local address (from its MAC) too;
    // nobody answers for an address no one has. All at once: the call lasts the timeout
    // (the unanswered one) and no more.
    let ll1 = IpAddr::V6(probe::link_local(mac(1)));
    let ll2 = IpAddr::V6(probe::link_local(mac(2)));
    let probes = [
        (&f1, "eth1", addr("192.0.2.2")),
        (&f1, "eth1", addr("2001:db8::2")),
        (&f1, "eth1", ll2),
        (&f2, "eth1", addr("192.0.2.1")),
        (&f2, "eth1", addr("2001:db8::1")),
        (&f2, "eth1", ll1),
        (&f1, "eth1", addr("192.0.2.99")),
        (&f1, "eth1", addr("2001:db8::99")),
        (&f1, "nosuch", addr("192.0.2.2")),
    ];
    let start = Instant::now();
    let results = probe::probe_all(&probes, t);
    let took = start.elapsed();
    let answered: Vec<Option<bool>> = results.iter().map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(
        answered,
        [
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            None
        ],
        "{results:?}"
    );
    assert!(took >= t && took < t + Duration::from_secs(1), "{took:?}");
    // The ARP probe came from 0.0.0.0: the far end learned no neighbour from it.
    let neigh = ip_json(
        Some(&n2),
        &["neigh", "show", "dev", "eth1", "to", "192.0.2.1"],
    );
    assert!(
        neigh.as_array().is_none_or(|a| a.is_empty()),
        "n2 learned {neigh}"
    );

    // The far end answers an ARP probe under arp_ignore 2 too (reply only for an address of
    // the receiving interface in the sender's subnet: 0.0.0.0 passes).
    netns_exec(&n2, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=2"]);
    assert!(probe::probe(&f1, "eth1", addr("192.0.2.2"), t).expect("probe"));

    // A far-end address still in duplicate address detection is not answered for, and the
    // probes (not from ::) do not make its detection fail.
    netns_exec(&n2, &["sysctl", "-qw", "net.ipv6.conf.eth1.accept_dad=1"]);
    ip(&n2, &["addr", "add", "2001:db8::5/64", "dev", "eth1"]);
    let tentative = addr("2001:db8::5");
    assert!(!probe::probe(&f1, "eth1", tentative, Duration::from_millis(300)).expect("probe"));
    let settled = eventually(5, || {
        let a = ip_json(
            Some(&n2),
            &["addr", "show", "dev", "eth1", "to", "2001:db8::5"],
        );
        let info = a[0]["addr_info"][0].clone();
        (info["tentative"].is_null()).then_some(info)
    })
    .expect("duplicate address detection ends");
    assert!(settled["dadfailed"].is_null(), "{settled}");
    assert!(probe::probe(&f1, "eth1", tentative, t).expect("probe"));

    // A live peer answers fast.
    let start = Instant::now();
    assert!(probe::probe(&f1, "eth1", addr("192.0.2.2"), t).expect("probe"));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // The far end deleted: no answer, after the timeout.
    ip(&n2, &["link", "del", "eth1"]);
    for target in [addr("192.0.2.2"), addr("2001:db8::2"), ll2] {
        let start = Instant::now();
        let answered = probe::probe(&f1, "eth1", target, t).expect("probe");
        let took = start.elapsed();
        assert!(
            !answered,
            "{target} answered after its interface was deleted"
        );
        assert!(
            took >= t && took < t + Duration::from_secs(1),
            "{target}: {took:?}"
        );
    }
}
