//! `topo import`: the containerlab and Kathará fixtures, converted, brought up, and checked on
//! the kernel: the nodes' namespaces, the links' interfaces with the converted addresses, the
//! routes, the bound files, and traffic across the converted link, bridge and routes.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(rel)
}

/// A copy of the fixture directory `src` in `to` (the converted file binds its files
/// relative to itself).
fn copy_tree(src: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a fixture directory");
    for entry in std::fs::read_dir(src).expect("read a fixture directory") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a fixture file");
        }
    }
}

/// `topo import ARGS…`: the converted file (the command must succeed) and its warnings.
fn import(args: &[&str]) -> (String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = topo(&all);
    assert!(out.status.success(), "topo import failed:\n{}", text(&out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lab `name` from the converted `yaml`, next to a copy of the fixture `dir`.
fn lab_from(name: &str, yaml: &str, dir: &str) -> TestLab {
    let lab = TestLab::new(name, yaml);
    copy_tree(&fixture(dir), &lab.dir);
    lab
}

fn routes(ns: &str) -> Vec<String> {
    ip_json(Some(ns), &["route", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} via {}",
                r["dst"].as_str().unwrap_or(""),
                r["gateway"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_containerlab_lab_comes_up_as_converted() {
    let file = fixture("clab-frr/frr.clab.yml");
    let (yaml, warnings) = import(&["containerlab", path(&file), "--name", "imp-clab"]);
    assert!(
        warnings.contains("topology.groups.routers.image")
            && warnings.contains("quay.io/frrouting/frr"),
        "{warnings}"
    );
    let lab = lab_from("imp-clab", &yaml, "clab-frr");
    lab.up();
    assert_eq!(
        netns_with_prefix("imp-clab-"),
        [
            "imp-clab-pc1",
            "imp-clab-pc2",
            "imp-clab-pc3",
            "imp-clab-router1",
            "imp-clab-router2",
            "imp-clab-router3"
        ]
    );
    // The link PC1:eth1 -- router1:eth3: each end in its node, PC1's with the address of its
    // `exec: ip addr add …` line, and the routes of its `ip route add …` lines.
    assert_eq!(addresses(&lab.ns("pc1"), "eth1"), ["192.168.11.2/24"]);
    assert!(ifindexes(&lab.ns("router1"))
        .iter()
        .any(|(n, _)| n == "eth3"));
    assert!(!ifindexes(&lab.ns("pc1")).iter().any(|(n, _)| n == "eth3"));
    let r = routes(&lab.ns("pc1"));
    assert!(
        r.contains(&"192.168.0.0/16 via 192.168.11.1".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"10.10.10.0/24 via 192.168.11.1".to_string()),
        "{r:?}"
    );
    // The group's sysctl and the node's bind of its configuration directory.
    let fwd = netns_exec(
        &lab.ns("router2"),
        &["cat", "/proc/sys/net/ipv4/ip_forward"],
    );
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");
    let conf = lab.exec("router1", &["cat", "/etc/frr/frr.conf"]);
    assert!(
        String::from_utf8_lossy(&conf.stdout).contains("hostname router1"),
        "{}",
        text(&conf)
    );
    lab.down();
    assert!(netns_with_prefix("imp-clab-").is_empty());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_kathara_lab_comes_up_and_routes_as_converted() {
    let (yaml, warnings) = import(&[
        "kathara",
        path(&fixture("kathara-lan")),
        "--name",
        "imp-kat",
    ]);
    assert!(warnings.contains("r1[bridged]"), "{warnings}");
    let lab = lab_from("imp-kat", &yaml, "kathara-lan");
    lab.up();
    assert_eq!(
        netns_with_prefix("imp-kat-"),
        ["imp-kat-pc1", "imp-kat-pc2", "imp-kat-pc3", "imp-kat-r1"]
    );
    // Addresses from `ip addr add` and `ifconfig` lines of the .startup files.
    assert_eq!(addresses(&lab.ns("r1"), "eth0"), ["10.0.1.1/24"]);
    assert_eq!(addresses(&lab.ns("r1"), "eth1"), ["10.0.2.1/24"]);
    assert_eq!(addresses(&lab.ns("pc1"), "eth0"), ["10.0.1.10/24"]);
    // Domain B (three members) is a bridge: pc2 and pc3 reach each other through it.
    assert!(ping(&lab.ns("pc2"), "10.0.2.30"));
    // Domain A is a link; pc1 reaches pc2 through r1, whose forwarding comes from
    // `r1[sysctl]` and the default routes from the .startup files.
    assert!(ping(&lab.ns("pc1"), "10.0.2.20"));
    // The kept exec lines ran; the file of pc1/ is bound into pc1.
    let state = lab.exec("pc3", &["cat", "/tmp/state"]);
    assert_eq!(
        String::from_utf8_lossy(&state.stdout).trim(),
        "pc3 configured"
    );
    let greeting = lab.exec("pc1", &["cat", "/tmp/greeting.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&greeting.stdout).trim(),
        "hello from the kathara-lan lab",
        "{}",
        text(&greeting)
    );
    lab.down();
    assert!(netns_with_prefix("imp-kat-").is_empty());
}
