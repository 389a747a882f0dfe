//! Link impairment on the real kernel: a rate limit measured with a real TCP transfer,
//! changed in place by `up` (same ifindex), removed (qdisc gone), drift from `topo impair`
//! reverted by `up`; and where the kernel lacks netem, a clear error before any change.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::common::*;

fn pair(name: &str, impair: &str) -> String {
    format!("name: {name}\nnodes:\n  a: {{interfaces: {{eth0: {{addresses: [203.0.113.1/24]}}}}}}\n  b: {{interfaces: {{eth0: {{addresses: [203.0.113.2/24]}}}}}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n{impair}")
}

fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).expect("netns");
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// Goodput in Mbit/s of a TCP transfer from node a to node b lasting about `secs`.
fn measure_mbit(lab: &TestLab, secs: f64) -> f64 {
    let listener = in_ns(&lab.ns("b"), || {
        TcpListener::bind("203.0.113.2:5001").expect("bind")
    });
    let listener = listener.join().expect("listener");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        let mut first: Option<Instant> = None;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    first.get_or_insert_with(Instant::now);
                    total += n as u64;
                }
            }
        }
        (total, first.map(|f| f.elapsed()).unwrap_or_default())
    });
    let client = in_ns(&lab.ns("a"), move || {
        let mut s = TcpStream::connect_timeout(
            &"203.0.113.2:5001".parse().expect("addr"),
            Duration::from_secs(3),
        )
        .expect("connect");
        let chunk = vec![7u8; 1 << 16];
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < secs {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    client.join().expect("client");
    let (bytes, took) = server.join().expect("server");
    bytes as f64 * 8.0 / took.as_secs_f64() / 1e6
}

fn tbf_rate_on(ns: &str) -> Option<String> {
    let q = ip_json_tc(ns);
    q.as_array()?
        .iter()
        .find(|q| q["kind"] == "tbf")
        .map(|q| q["options"]["rate"].to_string())
}

fn ip_json_tc(ns: &str) -> serde_json::Value {
    let out = std::process::Command::new("tc")
        .args(["-n", ns, "-j", "qdisc", "show", "dev", "eth0"])
        .output()
        .expect("tc");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn rate_is_measured_changed_in_place_and_removed() {
    let lab = TestLab::new("tn-rate", &pair("tn-rate", "    impair: {rate: 10mbit}\n"));
    lab.up();
    let index = ifindexes(&lab.ns("a"));
    let limited = measure_mbit(&lab, 2.0);
    assert!(
        (8.0..=12.0).contains(&limited),
        "10mbit link measured {limited:.2} Mbit/s"
    );
    lab.rewrite(&pair("tn-rate", "    impair: {rate: 20mbit}\n"));
    let plan = lab.plan();
    assert!(
        plan.contains("~ impair a:eth0 rate 20mbit") && plan.lines().count() == 2,
        "{plan}"
    );
    lab.up();
    let faster = measure_mbit(&lab, 2.0);
    assert!(
        (16.0..=24.0).contains(&faster),
        "20mbit link measured {faster:.2} Mbit/s"
    );
    assert_eq!(
        ifindexes(&lab.ns("a")),
        index,
        "changed in place, no relinking"
    );
    lab.rewrite(&pair("tn-rate", ""));
    lab.up();
    assert_eq!(
        tbf_rate_on(&lab.ns("a")),
        None,
        "qdisc removed: {}",
        ip_json_tc(&lab.ns("a"))
    );
    let free = measure_mbit(&lab, 1.0);
    assert!(
        free >= 10.0 * limited,
        "without rate: {free:.0} Mbit/s, at least 10x {limited:.2}"
    );
    assert_eq!(ifindexes(&lab.ns("a")), index);
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn topo_impair_is_drift_that_up_reverts() {
    let lab = TestLab::new(
        "tn-imd",
        &pair("tn-imd", "    impair: {a:eth0: {rate: 50mbit}}\n"),
    );
    lab.up();
    assert!(
        tbf_rate_on(&lab.ns("a")).is_some() && tbf_rate_on(&lab.ns("b")).is_none(),
        "one direction only"
    );
    let o = topo(&["impair", "--lab", "tn-imd", "a:eth0", "--rate", "1mbit"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        lab.plan().contains("~ impair a:eth0 rate 50mbit"),
        "{}",
        lab.plan()
    );
    lab.up();
    assert!(lab.plan().contains("no changes"));
    let o = topo(&["impair", "--lab", "tn-imd", "a:eth0", "--clear"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tbf_rate_on(&lab.ns("a")), None);
    lab.up();
    assert!(tbf_rate_on(&lab.ns("a")).is_some());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn netem_without_kernel_support_fails_before_any_change_naming_sch_netem() {
    if std::path::Path::new("/sys/module/sch_netem").exists() {
        eprintln!("skipping: this kernel has netem (tests/vm covers it)");
        return;
    }
    let lab = TestLab::new("tn-nem", &pair("tn-nem", "    impair: {delay: 50ms}\n"));
    let v = topo(&["validate", path(&lab.file)]);
    assert!(
        v.status.success(),
        "validate does not touch the kernel: {}",
        text(&v)
    );
    let o = topo(&["up", path(&lab.file)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("module sch_netem"),
        "{}",
        text(&o)
    );
    assert!(
        netns_with_prefix("tn-nem-").is_empty(),
        "nothing was created"
    );
    assert!(
        !std::path::Path::new("/run/topo/tn-nem").exists(),
        "no run directory either"
    );
}
