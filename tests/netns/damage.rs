//! A lab damaged from outside — an init killed, an interface deleted, an address removed by
//! hand: `status` shows it, `plan` shows the repair, `up` repairs it, `down` still removes all.

use crate::common::*;

const YAML: &str = "name: tn-dmg\nnodes:\n  a: {interfaces: {eth0: {addresses: [198.51.100.1/24]}}}\n  b: {interfaces: {eth0: {addresses: [198.51.100.2/24]}, eth1: {addresses: [203.0.113.1/24]}}}\n  c: {interfaces: {eth0: {addresses: [203.0.113.2/24]}}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n  - endpoints: [b:eth1, c:eth0]\n";

fn status() -> serde_json::Value {
    serde_json::from_slice(&topo(&["status", "--lab", "tn-dmg", "-o", "json"]).stdout)
        .expect("status json")
}

fn node<'a>(st: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    st["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .expect("node")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn damage_from_outside_is_shown_planned_repaired_and_still_removed() {
    let lab = TestLab::new("tn-dmg", YAML);
    lab.up();
    let pid = node(&status(), "a")["init_pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill init");
    let gone = eventually(5, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(Some(()), |s| s.contains(") Z").then_some(()))
    });
    assert!(gone.is_some(), "init {pid} did not die");
    let del = std::process::Command::new("ip")
        .args(["-n", "tn-dmg-b", "link", "del", "eth1"])
        .status()
        .expect("ip");
    assert!(del.success());
    let addr = std::process::Command::new("ip")
        .args([
            "-n",
            "tn-dmg-a",
            "addr",
            "del",
            "198.51.100.1/24",
            "dev",
            "eth0",
        ])
        .status()
        .expect("ip");
    assert!(addr.success());

    let st = status();
    assert_eq!(
        node(&st, "a")["running"],
        false,
        "status shows the dead init"
    );
    let a_eth0 = node(&st, "a")["interfaces"]
        .as_array()
        .expect("ifaces")
        .iter()
        .find(|i| i["name"] == "eth0")
        .expect("eth0")
        .clone();
    assert_eq!(
        a_eth0["addresses"].as_array().map(Vec::len),
        Some(0),
        "status shows the missing address"
    );
    assert!(
        !node(&st, "b")["interfaces"]
            .as_array()
            .expect("ifaces")
            .iter()
            .any(|i| i["name"] == "eth1"),
        "status shows the missing interface"
    );

    let plan = lab.plan();
    for want in [
        "+ node a init",
        "+ veth b:eth1 <-> c:eth0",
        "+ address a:eth0 198.51.100.1/24",
        "+ address b:eth1 203.0.113.1/24",
        "+ address c:eth0 203.0.113.2/24",
    ] {
        assert!(plan.contains(want), "plan shows {want}:\n{plan}");
    }
    lab.up();
    assert!(lab.plan().contains("no changes"));
    assert!(
        ping(&lab.ns("a"), "198.51.100.2") && ping(&lab.ns("b"), "203.0.113.2"),
        "repaired"
    );
    assert_eq!(node(&status(), "a")["running"], true);

    // Damage again, then down: still everything goes.
    let pid = node(&status(), "c")["init_pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    assert!(lab.down().status.success());
    assert!(netns_with_prefix("tn-dmg").is_empty());
    assert!(!std::path::Path::new("/run/topo/tn-dmg").exists());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_corrupt_record_never_makes_down_touch_foreign_objects_nor_miss_its_own() {
    let lab = TestLab::new(
        "tn-cor",
        "name: tn-cor\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n",
    );
    lab.up();
    // Someone else's namespace with the lab's prefix, and a truncated record.
    let foreign = "tn-cor-zz";
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", foreign])
        .status();
    assert!(std::process::Command::new("ip")
        .args(["netns", "add", foreign])
        .status()
        .expect("ip")
        .success());
    std::fs::write("/run/topo/tn-cor/state.json", b"{\"lab\": \"tn-co").expect("truncate");
    let out = lab.down();
    let still = netns_with_prefix("tn-cor-");
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", foreign])
        .status();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        still,
        vec![foreign.to_string()],
        "only the foreign namespace is left"
    );
    assert_eq!(
        lab_processes("tn-cor").len(),
        0,
        "the lab's inits were found without their record and stopped"
    );
}

/// Node inits of a lab (by their cgroup and name), zombies left out.
fn lab_inits(lab: &str) -> usize {
    lab_processes(lab)
        .iter()
        .filter(|(_, comm)| comm == "topo-init")
        .count()
}

/// Brings up a lab of `nodes` unlinked nodes but for a-b, damages its record with `damage`
/// (given the record's path), brings it up again: it must find the unrecorded inits in the
/// lab's namespaces and keep one per node, not start a second.
fn inits_stay_one_per_node_after(lab_name: &str, nodes: &[&str], damage: impl FnOnce(&str)) {
    let list: String = nodes.iter().map(|n| format!("  {n}: {{}}\n")).collect();
    let lab = TestLab::new(
        lab_name,
        &format!("name: {lab_name}\nnodes:\n{list}links:\n  - endpoints: [a:eth0, b:eth0]\n"),
    );
    lab.up();
    assert_eq!(lab_inits(lab_name), nodes.len());
    damage(&format!("/run/topo/{lab_name}/state.json"));
    lab.up();
    assert_eq!(
        lab_inits(lab_name),
        nodes.len(),
        "the unrecorded inits were found in the lab's namespaces and replaced, not doubled"
    );
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn up_without_its_record_finds_the_running_inits_and_keeps_one_per_node() {
    inits_stay_one_per_node_after("tn-lost", &["a", "b"], |path| {
        std::fs::remove_file(path).expect("remove the record")
    });
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn an_init_missing_from_a_partial_record_is_found_and_not_doubled() {
    // An `up` stopped after a node's init started but before it was recorded leaves a
    // record that names the other nodes' inits only. Those being alive, /proc is not
    // scanned for them; the namespace that no recorded init holds must still be.
    inits_stay_one_per_node_after("tn-part", &["a", "b", "c"], |path| {
        let mut record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("read the record")).expect("json");
        let removed = record["nodes"]
            .as_object_mut()
            .and_then(|nodes| nodes.remove("b"));
        assert!(removed.is_some(), "the record names node b");
        std::fs::write(path, record.to_string()).expect("write the record");
    });
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_sysctl_changed_from_outside_is_planned_and_put_back() {
    let lab = TestLab::new(
        "tn-sys2",
        "name: tn-sys2\nnodes:\n  a:\n    sysctls: {net.ipv4.ip_forward: 1, net.ipv4.conf.eth0.rp_filter: 2}\n  b: {}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n",
    );
    lab.up();
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
    let ns = lab.ns("a");
    let read = |key: &str| {
        let o = netns_exec(&ns, &["cat", &format!("/proc/sys/net/ipv4/{key}")]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(
        (read("ip_forward"), read("conf/eth0/rp_filter")),
        ("1".into(), "2".into())
    );
    for (key, value) in [("ip_forward", "0"), ("conf/eth0/rp_filter", "0")] {
        let w = netns_exec(
            &ns,
            &[
                "sh",
                "-c",
                &format!("echo {value} > /proc/sys/net/ipv4/{key}"),
            ],
        );
        assert!(w.status.success(), "{}", text(&w));
    }
    let plan = lab.plan();
    assert!(
        plan.contains("net.ipv4.ip_forward") && plan.contains("net.ipv4.conf.eth0.rp_filter"),
        "both changes are planned:\n{plan}"
    );
    lab.up();
    assert_eq!(
        (read("ip_forward"), read("conf/eth0/rp_filter")),
        ("1".into(), "2".into())
    );
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
}

/// Keys an observation reads over netlink (`RTM_GETNETCONF`) rather than from their files,
/// with values other than the kernel's defaults; those of one family and set differ from
/// each other, so that a key read from another's attribute shows.
const NETCONF_KEYS: [(&str, &str); 9] = [
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "2"),
    ("net.ipv4.conf.all.proxy_arp", "1"),
    ("net.ipv4.conf.default.rp_filter", "1"),
    ("net.ipv4.conf.default.ignore_routes_with_linkdown", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.ipv6.conf.all.proxy_ndp", "1"),
    ("net.ipv6.conf.default.ignore_routes_with_linkdown", "1"),
    ("net.ipv4.conf.default.forwarding", "1"),
];

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn sysctls_read_over_netlink_are_what_their_files_hold() {
    let sysctls: Vec<String> = NETCONF_KEYS
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let lab = TestLab::new(
        "tn-sys4",
        &format!(
            "name: tn-sys4\nnodes:\n  a:\n    sysctls: {{{}}}\n  b: {{}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n",
            sysctls.join(", ")
        ),
    );
    lab.up();
    let ns = lab.ns("a");
    let file = |key: &str| format!("/proc/sys/{}", key.replace('.', "/"));
    let files = || -> Vec<String> {
        let cats: Vec<String> = NETCONF_KEYS.iter().map(|(k, _)| file(k)).collect();
        let mut argv = vec!["cat"];
        argv.extend(cats.iter().map(String::as_str));
        let out = netns_exec(&ns, &argv);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let wanted: Vec<&str> = NETCONF_KEYS.iter().map(|(_, v)| *v).collect();
    assert_eq!(files(), wanted, "the lab's values, in the files");
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
    // One key at a time changed from inside the node: the plan lists exactly the keys whose
    // file no longer holds the lab's value (a change to an `all` key may change others),
    // and `up` puts them back.
    for (key, value) in NETCONF_KEYS {
        let other = if value == "1" { "0" } else { "1" };
        let w = netns_exec(&ns, &["sh", "-c", &format!("echo {other} > {}", file(key))]);
        assert!(w.status.success(), "{}", text(&w));
        let now = files();
        let plan = lab.plan();
        for ((k, v), held) in NETCONF_KEYS.iter().zip(&now) {
            let listed = plan.contains(&format!(" {k} "));
            assert_eq!(
                listed,
                held != v,
                "after {key}={other}: {k} holds {held}, the lab wants {v}:\n{plan}"
            );
        }
        assert!(
            plan.contains(&format!(" {key} ")),
            "{key} is planned:\n{plan}"
        );
        lab.up();
        assert_eq!(files(), wanted, "put back after {key}={other}");
        assert!(lab.plan().contains("no changes"), "{}", lab.plan());
    }
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_sysctl_key_new_in_the_file_is_read_before_it_is_planned() {
    // The observation made while the file is parsed reads the keys of the last file only;
    // a key new in this one is read after the parse. Here the new key's value is already
    // the wanted one, so nothing is to change: a plan that skipped the read would list it.
    // The file with ip_forward and, if given, tcp_syn_retries; that sysctl read in the node.
    let file = |retries: Option<&str>| {
        let extra = retries.map_or(String::new(), |r| {
            format!(", net.ipv4.tcp_syn_retries: {r}")
        });
        format!("name: tn-sys3\nnodes:\n  a:\n    sysctls: {{net.ipv4.ip_forward: 1{extra}}}\n")
    };
    let lab = TestLab::new("tn-sys3", &file(None));
    let retries = || {
        let out = netns_exec(&lab.ns("a"), &["cat", "/proc/sys/net/ipv4/tcp_syn_retries"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    lab.up();
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
    let current = retries();
    assert!(!current.is_empty(), "tcp_syn_retries is readable");
    lab.rewrite(&file(Some(&current)));
    let plan = lab.plan();
    assert!(
        plan.contains("no changes"),
        "the new key is already {current}:\n{plan}"
    );
    // And one whose value differs is planned.
    let other = if current == "3" { "4" } else { "3" };
    lab.rewrite(&file(Some(other)));
    let plan = lab.plan();
    assert!(plan.contains("net.ipv4.tcp_syn_retries"), "{plan}");
    lab.up();
    assert_eq!(retries(), other);
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
}
