//! Labs side by side: two labs with the same addresses do not see each other; two `up` of
//! one lab at once end in one correct lab.

use crate::common::*;

fn pair(name: &str) -> String {
    format!("name: {name}\nnodes:\n  a: {{interfaces: {{eth0: {{addresses: [203.0.113.1/24]}}}}}}\n  b: {{interfaces: {{eth0: {{addresses: [203.0.113.2/24]}}}}}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn two_labs_with_the_same_addresses_do_not_see_each_other() {
    let one = TestLab::new("tn-one", &pair("tn-one"));
    let two = TestLab::new("tn-two", &pair("tn-two"));
    one.up();
    two.up();
    assert!(ping(&one.ns("a"), "203.0.113.2"));
    assert!(ping(&two.ns("a"), "203.0.113.2"));
    // Take lab two's b down: lab one's a still reaches its own b, lab two's a does not.
    let out = two.exec("b", &["ip", "link", "set", "eth0", "down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ping(&one.ns("a"), "203.0.113.2"), "lab one is unaffected");
    assert!(
        !ping(&two.ns("a"), "203.0.113.2"),
        "lab two's b is unreachable"
    );
    let mac_one = ip_json(Some(&one.ns("a")), &["link", "show", "eth0"])[0]["address"].clone();
    let mac_two = ip_json(Some(&two.ns("a")), &["link", "show", "eth0"])[0]["address"].clone();
    assert_ne!(mac_one, mac_two, "MACs are derived from the lab name too");
    // Downing one lab leaves the other whole.
    assert!(two.down().status.success());
    assert_eq!(netns_with_prefix("tn-one"), vec!["tn-one-a", "tn-one-b"]);
    assert!(ping(&one.ns("a"), "203.0.113.2"));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn two_concurrent_ups_of_one_lab_end_in_one_correct_lab() {
    let lab = TestLab::new("tn-race", &pair("tn-race"));
    let spawn = || {
        std::process::Command::new(TOPO)
            .args(["up", path(&lab.file)])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join(), b.join())
    });
    let a = a.expect("thread").expect("run");
    let b = b.expect("thread").expect("run");
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let outs = [
        String::from_utf8_lossy(&a.stdout).to_string(),
        String::from_utf8_lossy(&b.stdout).to_string(),
    ];
    assert_eq!(
        outs.iter().filter(|o| o.contains("no changes")).count(),
        1,
        "one built it, the other found it done: {outs:?}"
    );
    assert!(ping(&lab.ns("a"), "203.0.113.2"));
    assert!(lab.plan().contains("no changes"));
    // Exactly one init per node: processes named topo-init in the lab's namespaces.
    let lab_ns: Vec<u64> = ["a", "b"]
        .iter()
        .map(|n| {
            std::fs::metadata(format!("/run/netns/tn-race-{n}"))
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .expect("netns")
        })
        .collect();
    let inits = std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "topo-init")
        })
        .filter(|e| {
            // The node's namespace, which the init holds (descriptor 3) or is in.
            ["fd/3", "ns/net"].iter().any(|p| {
                std::fs::metadata(e.path().join(p))
                    .is_ok_and(|m| lab_ns.contains(&std::os::unix::fs::MetadataExt::ino(&m)))
            })
        })
        .count();
    assert_eq!(inits, 2, "one init per node");
}
