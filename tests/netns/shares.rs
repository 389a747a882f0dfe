//! One machine's share of a lab that spans hosts, on the real kernel: only the nodes placed
//! on this machine's host exist, the run directory remembers the host so later commands need
//! no `--host`, another share is refused where one runs, and a node placed elsewhere is
//! neither entered nor left behind. (The lab has no link between hosts: those are VXLAN
//! tunnels, tested where they are made.)

use std::process::{Command, Output};

use crate::common::*;

const LAB: &str = "name: msp-share
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2}
nodes:
  a: {host: left, interfaces: {eth1: {addresses: [10.0.0.0/31]}}}
  b: {host: left, interfaces: {eth1: {addresses: [10.0.0.1/31]}}}
  c: {host: right, interfaces: {eth1: {addresses: [10.0.1.0/31]}}}
  d: {host: right, interfaces: {eth1: {addresses: [10.0.1.1/31]}}}
  e: {host: right}
links:
  - endpoints: [a:eth1, b:eth1]
  - endpoints: [c:eth1, d:eth1]
";

/// `topo ARGS` with `TOPO_HOST` set to `host` (or unset).
fn topo_on(host: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(TOPO);
    c.args(args).env("TOPO_LOG_DIR", archive_root());
    match host {
        Some(h) => c.env("TOPO_HOST", h),
        None => c.env_remove("TOPO_HOST"),
    };
    c.output().expect("run topo")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_share_holds_only_its_hosts_nodes_and_remembers_its_host() {
    let lab = TestLab::new("msp-share", LAB);
    let file = path(&lab.file).to_string();
    // No host given or recorded: refused, nothing made.
    let o = topo_on(None, &["up", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("spans hosts left, right"),
        "{}",
        text(&o)
    );
    assert!(netns_with_prefix("msp-share").is_empty());
    // Left's share, chosen by TOPO_HOST.
    let o = topo_on(Some("left"), &["up", &file]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        netns_with_prefix("msp-share"),
        ["msp-share-a", "msp-share-b"],
        "only the nodes of host left"
    );
    assert!(ping(&lab.ns("a"), "10.0.0.1"), "a reaches b");
    // Later commands take the host from the record.
    let o = topo_on(None, &["plan", &file]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o), "lab msp-share: no changes\n");
    let o = topo_on(None, &["status", "--lab", "msp-share"]);
    assert!(o.status.success(), "{}", text(&o));
    let status = stdout(&o);
    assert!(
        status.starts_with("lab msp-share on host left ("),
        "{status}"
    );
    assert!(
        status.contains("on other hosts: c (right), d (right), e (right)\n"),
        "{status}"
    );
    // Another share where left's runs: refused, nothing changed.
    let o = topo_on(None, &["up", &file, "--host", "right"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("runs here as host left's share, not right's"),
        "{}",
        text(&o)
    );
    assert_eq!(
        netns_with_prefix("msp-share"),
        ["msp-share-a", "msp-share-b"]
    );
    // A node of the other host is not here.
    let o = topo_on(None, &["exec", "--lab", "msp-share", "c", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).starts_with("topo: error: node c runs on host right"),
        "{}",
        text(&o)
    );
    // A node that comes to this host starts here; one that leaves is stopped and removed.
    lab.rewrite(&LAB.replace("e: {host: right}", "e: {host: left}"));
    let o = topo_on(None, &["up", &file]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        netns_with_prefix("msp-share"),
        ["msp-share-a", "msp-share-b", "msp-share-e"]
    );
    assert!(!node_processes("e").is_empty(), "e runs here");
    lab.rewrite(LAB);
    let o = topo_on(None, &["up", &file]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).contains("- node e init (pid "), "{}", text(&o));
    assert_eq!(
        netns_with_prefix("msp-share"),
        ["msp-share-a", "msp-share-b"]
    );
    assert!(node_processes("e").is_empty(), "nothing of e is left here");
    assert!(!node_processes("a").is_empty());
    let o = exec_in(&lab, "e");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Down takes the share down, with no --host (--wait: the processes are checked at once).
    let o = topo_on(None, &["down", "--lab", "msp-share", "--wait"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(netns_with_prefix("msp-share").is_empty());
    assert!(lab_processes("msp-share").is_empty());
}

/// The processes of `node` of the lab (in its cgroup, `/topo/LAB/NODE`).
fn node_processes(node: &str) -> Vec<(String, String)> {
    let group = format!("/topo/msp-share/{node}");
    let inside = |line: &str| line.ends_with(&group) || line.contains(&format!("{group}/"));
    lab_processes("msp-share")
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.lines().any(inside))
        })
        .collect()
}

fn exec_in(lab: &TestLab, node: &str) -> Output {
    topo_on(None, &["exec", "--lab", &lab.name, node, "--", "true"])
}
