//! `topo status` and `topo ls` against the kernel: each node's row holds the addresses the
//! kernel has on its interfaces and, for each end of a veth, the interface the kernel pairs
//! it with; `status NODE` shows the node's routes with their device; `ls` lists the lab.

use serde_json::Value;

use crate::common::*;

const LAB: &str = "nodes:
  r1:
    interfaces:
      lo: {addresses: [10.255.0.1/32]}
      eth1: {addresses: [10.0.12.0/31, \"2001:db8:12::/127\"]}
      eth2: {addresses: [10.0.3.1/24]}
    routes:
      - {to: 10.9.0.0/16, via: 10.0.12.1}
  r2:
    interfaces:
      eth1: {addresses: [10.0.12.1/31]}
  r10:
    interfaces:
      eth0: {addresses: [10.0.3.10/24]}
links:
  - endpoints: [r1:eth1, r2:eth1]
bridges:
  sw: {members: [r1:eth2, r10:eth0]}
";

/// The link of `dev` in `ns` as `ip -j link` shows it.
fn link(ns: &str, dev: &str) -> Value {
    ip_json(Some(ns), &["link", "show", "dev", dev])[0].clone()
}

/// The rows of a status table: per node, per interface, (addresses, peer).
fn rows(table: &str) -> Vec<(String, String, Vec<String>, String)> {
    let mut lines = table.lines().skip(1);
    let header = lines.next().expect("header");
    let col = |name: &str| {
        header
            .find(name)
            .map(|b| header[..b].chars().count())
            .expect("column")
    };
    let (c_if, c_addr, c_peer, c_svc) = (
        col("INTERFACE"),
        col("ADDRESS"),
        col("PEER"),
        col("SERVICES"),
    );
    let cell = |line: &str, from: usize, to: usize| -> String {
        line.chars()
            .skip(from)
            .take(to - from)
            .collect::<String>()
            .trim()
            .to_string()
    };
    let mut out: Vec<(String, String, Vec<String>, String)> = Vec::new();
    let mut node = String::new();
    for line in lines {
        let n = cell(line, 0, c_if);
        if let Some(first) = n.split_whitespace().next() {
            node = first.to_string();
        }
        let iface = cell(line, c_if, c_addr);
        let addr = cell(line, c_addr, c_peer);
        let peer = cell(line, c_peer, c_svc);
        if !iface.is_empty() {
            out.push((node.clone(), iface, Vec::new(), peer));
        }
        if let (Some(last), false) = (out.last_mut(), addr.is_empty()) {
            last.2.push(addr);
        }
    }
    out
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn status_rows_show_the_kernels_addresses_and_veth_peers() {
    let lab = TestLab::new("sts-row", &format!("name: sts-row\n{LAB}"));
    lab.up();
    let out = topo(&["status", "--lab", &lab.name]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows = rows(&table);
    let nodes: Vec<&str> = rows
        .iter()
        .map(|r| r.0.as_str())
        .fold(Vec::new(), |mut v, n| {
            if v.last() != Some(&n) {
                v.push(n);
            }
            v
        });
    assert_eq!(nodes, ["r1", "r2", "r10", "(bridges)"], "{table}");
    for node in ["r1", "r2", "r10"] {
        let ns = lab.ns(node);
        for (ifname, _) in ifindexes(&ns) {
            let kernel = addresses(&ns, &ifname);
            let row = rows.iter().find(|r| r.0 == node && r.1 == ifname);
            if ifname == "lo" && kernel.is_empty() {
                assert!(
                    row.is_none(),
                    "{node}: a loopback without addresses is left out\n{table}"
                );
                continue;
            }
            let row = row.unwrap_or_else(|| panic!("{node}:{ifname} in\n{table}"));
            let mut shown = row.2.clone();
            shown.sort();
            assert_eq!(shown, kernel, "{node}:{ifname} addresses\n{table}");
            if ifname == "lo" {
                continue;
            }
            // The kernel's peer of this veth: the interface whose index it names, in the
            // namespace it names; the bridge's port for a bridge member.
            let me = link(&ns, &ifname);
            let peer_index = me["link_index"].as_u64().expect("veth peer index");
            let expected = ["r1", "r2", "r10"]
                .iter()
                .filter(|other| **other != node)
                .find_map(|other| {
                    ifindexes(&lab.ns(other))
                        .into_iter()
                        .find(|(n, i)| {
                            *i == peer_index
                                && link(&lab.ns(other), n)["link_index"] == me["ifindex"]
                        })
                        .map(|(n, _)| format!("→ {other}:{n}"))
                })
                .or_else(|| {
                    let brns = format!("{}.br", lab.name);
                    ifindexes(&brns)
                        .into_iter()
                        .find(|(_, i)| *i == peer_index)
                        .and_then(|(n, _)| {
                            link(&brns, &n)["master"]
                                .as_str()
                                .map(|m| format!("→ bridge {m}"))
                        })
                })
                .expect("the kernel has a peer");
            assert_eq!(row.3, expected, "{node}:{ifname} peer\n{table}");
        }
    }
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn status_of_one_node_shows_its_routes_and_an_unknown_one_is_refused() {
    let lab = TestLab::new("sts-one", &format!("name: sts-one\n{LAB}"));
    lab.up();
    let out = topo(&["status", "--lab", &lab.name, "r1"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("node r1  netns sts-one-r1  init pid "), "{s}");
    // The route as the kernel has it, with the device it sends through.
    let kernel = ip_json(Some(&lab.ns("r1")), &["route", "show", "10.9.0.0/16"]);
    assert_eq!(kernel[0]["dev"], "eth1", "{kernel}");
    assert!(
        s.contains("routes:\n  10.9.0.0/16 via 10.0.12.1 dev eth1\n"),
        "{s}"
    );
    assert!(!s.contains("node r2"), "only r1: {s}");
    let json = topo(&["status", "--lab", &lab.name, "r1", "-o", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(json["nodes"].as_array().map(Vec::len), Some(1), "{json}");
    let peer = &json["nodes"][0]["interfaces"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["name"] == "eth1"))
        .expect("eth1")["peer"];
    assert_eq!(
        peer,
        &serde_json::json!({"kind": "interface", "node": "r2", "interface": "eth1"})
    );
    let out = topo(&["status", "--lab", &lab.name, "r3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lab sts-one has no node r3; did you mean r1?"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

/// The row of `topo ls` for a lab: its columns.
fn ls_row(name: &str) -> Option<Vec<String>> {
    let out = topo(&["ls"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn ls_lists_a_lab_while_it_is_up() {
    let lab = TestLab::new("sts-ls", &format!("name: sts-ls\n{LAB}"));
    assert_eq!(ls_row("sts-ls"), None);
    lab.up();
    let file = path(&lab.file).to_string();
    assert_eq!(
        ls_row("sts-ls"),
        Some(vec!["sts-ls".into(), "3".into(), "up".into(), file.clone()])
    );
    let json = topo(&["ls", "-o", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).expect("json");
    let me = json
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == "sts-ls"))
        .expect("listed");
    assert_eq!(me["nodes"], 3);
    assert_eq!(me["state"], "up");
    // A node's namespace gone from the kernel: the lab is partly there.
    let gone = std::process::Command::new("ip")
        .args(["netns", "delete", &lab.ns("r2")])
        .status()
        .expect("ip netns delete");
    assert!(gone.success());
    assert_eq!(
        ls_row("sts-ls"),
        Some(vec![
            "sts-ls".into(),
            "3".into(),
            "partial".into(),
            "2/3".into(),
            file
        ])
    );
    let out = lab.down();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ls_row("sts-ls"), None, "not listed after down");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn an_up_from_another_file_is_listed_with_that_file() {
    let lab = TestLab::new("sts-file", &format!("name: sts-file\n{LAB}"));
    lab.up();
    let record = "/run/topo/sts-file/state.json";
    let before = std::fs::read(record).expect("record");
    // The same lab from a copy of its file, with one link down.
    let other = lab.dir.join("other.yaml");
    let yaml = format!("name: sts-file\n{LAB}").replace(
        "  - endpoints: [r1:eth1, r2:eth1]\n",
        "  - {endpoints: [r1:eth1, r2:eth1], state: down}\n",
    );
    assert!(yaml.contains("state: down"));
    std::fs::write(&other, yaml).expect("write");
    let out = topo(&["up", path(&other)]);
    assert!(out.status.success(), "{}", text(&out));
    let flags = link(&lab.ns("r1"), "eth1")["flags"].to_string();
    assert!(!flags.contains("\"UP\""), "r1:eth1 is down: {flags}");
    assert_eq!(
        ls_row("sts-file").and_then(|r| r.last().cloned()),
        Some(path(&other).to_string())
    );
    // Nothing else of the lab's record changed: it was not written again.
    assert_eq!(std::fs::read(record).expect("record"), before);
    // Back to the first file, which brings the link up again.
    lab.up();
    let flags = link(&lab.ns("r1"), "eth1")["flags"].to_string();
    assert!(flags.contains("\"UP\""), "r1:eth1 is up again: {flags}");
    assert_eq!(
        ls_row("sts-file").and_then(|r| r.last().cloned()),
        Some(path(&lab.file).to_string())
    );
    let out = lab.down();
    assert!(out.status.success(), "{}", text(&out));
}
