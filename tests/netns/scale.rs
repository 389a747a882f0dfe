//! What a large lab needs from the host: more open files than the usual soft limit, and
//! node inits that hold nothing of each other.

use std::process::Command;

use crate::common::*;

/// Runs topo under a soft open-file limit of `soft` (the hard limit stays).
fn topo_with_nofile(soft: u32, args: &[&str]) -> std::process::Output {
    let script = format!("ulimit -Sn {soft} && exec \"$0\" \"$@\"");
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(TOPO)
        .args(args)
        .output()
        .expect("run topo under sh")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_lab_needing_more_files_than_the_soft_limit_comes_up_and_nodes_keep_the_callers_limit() {
    // 150 namespaces: topo holds a namespace file and a netlink socket for each, over 256.
    let lab = TestLab::new("tn-nofile", &gen_chain("tn-nofile", 150, &["--bare"]));
    let out = topo_with_nofile(256, &["up", path(&lab.file)]);
    assert!(
        out.status.success(),
        "up under a soft limit of 256:\n{}",
        text(&out)
    );
    assert_eq!(netns_with_prefix("tn-nofile-").len(), 150);
    assert!(ping(&lab.ns("n0"), "10.0.0.1"), "n0 reaches n1");
    // What runs in a node gets the caller's limit back, not topo's raised one.
    let out = topo_with_nofile(
        256,
        &[
            "exec",
            "--lab",
            "tn-nofile",
            "n3",
            "--",
            "sh",
            "-c",
            "ulimit -Sn",
        ],
    );
    assert!(out.status.success(), "exec:\n{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "256");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_inits_hold_no_descriptor_of_other_nodes_or_of_topo() {
    let lab = TestLab::new("tn-initfd", &gen_chain("tn-initfd", 6, &["--bare"]));
    lab.up();
    let status = topo(&["status", "--lab", "tn-initfd", "-o", "json"]);
    assert!(status.status.success(), "status:\n{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let inits: Vec<(String, i64)> = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| Some((n["name"].as_str()?.to_string(), n["init_pid"].as_i64()?)))
        .collect();
    assert_eq!(inits.len(), 6);
    for (node, pid) in inits {
        // Standard input, output and error on /dev/null, and its own exec socket.
        assert_eq!(
            init_fds(&pid.to_string(), "tn-initfd", &node),
            ["exec socket", "null", "null", "null", "signalfd"],
            "init {pid} of {node}"
        );
    }
    // A node taken out of the file takes its namespace with it: nothing else holds it, so
    // its neighbour's end of their link is gone too.
    let yaml = gen_chain("tn-initfd", 5, &["--bare"]);
    lab.rewrite(&yaml);
    lab.up();
    assert!(netns_with_prefix("tn-initfd-").len() == 5);
    let n4 = ip_json(Some(&lab.ns("n4")), &["link", "show"]);
    let names: Vec<&str> = n4
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(
        names,
        vec!["lo", "eth0"],
        "n4's link to the removed n5 is gone"
    );
}
