//! Inside a node: its own PID namespace with topo's init as PID 1, its own hostname, and a
//! private /tmp.

use crate::common::*;

const YAML: &str = "name: tn-iso\nnodes:\n  n1: {interfaces: {eth0: {addresses: [192.0.2.1/24]}}}\n  n2: {interfaces: {eth0: {addresses: [192.0.2.2/24]}}}\nlinks:\n  - endpoints: [n1:eth0, n2:eth0]\n";

fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_has_own_pid1_hostname_proc_and_tmp() {
    let lab = TestLab::new("tn-iso", YAML);
    lab.up();
    // PID 1 in the node is topo's init.
    let comm = stdout(&lab.exec("n1", &["cat", "/proc/1/comm"]));
    assert_eq!(comm, "topo-init", "PID 1 is the node init");
    let host_pid = std::fs::read_to_string("/run/topo/tn-iso/state.json").expect("state");
    let state: serde_json::Value = serde_json::from_str(&host_pid).expect("json");
    let pid = state["nodes"]["n1"]["init"]["pid"].as_i64().expect("pid");
    let nspid = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = nspid
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.ends_with("\t1"),
        "the host's view of the node init is PID 1 of a nested PID namespace: {line}"
    );
    // Only the node's processes are visible: init, the shell and ls.
    let pids = stdout(&lab.exec("n1", &["sh", "-c", "ls /proc | grep -c '^[0-9]'"]));
    let n: u32 = pids.parse().expect("count");
    assert!(n <= 4, "the node sees only its own processes, saw {n}");
    assert_eq!(stdout(&lab.exec("n1", &["hostname"])), "n1");
    assert_eq!(
        stdout(&lab.exec("n2", &["cat", "/proc/sys/kernel/hostname"])),
        "n2"
    );
    // The node's network namespace is the one at /run/netns/tn-iso-n1.
    let inside = stdout(&lab.exec("n1", &["readlink", "/proc/self/ns/net"]));
    let named = std::fs::metadata("/run/netns/tn-iso-n1")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("netns");
    assert_eq!(inside, format!("net:[{named}]"));
    // /etc/hosts lists the lab's nodes.
    let hosts = stdout(&lab.exec("n1", &["cat", "/etc/hosts"]));
    assert!(hosts.contains("192.0.2.2\tn2-eth0 n2"), "{hosts}");
    // A file in one node's /tmp is invisible on the host and in the other node.
    let marker = "/tmp/topo-iso-marker";
    stdout(&lab.exec("n1", &["sh", "-c", &format!("echo secret > {marker}")]));
    assert_eq!(stdout(&lab.exec("n1", &["cat", marker])), "secret");
    assert!(
        !std::path::Path::new(marker).exists(),
        "node /tmp leaked to the host"
    );
    let other = lab.exec("n2", &["cat", marker]);
    assert!(!other.status.success(), "node /tmp leaked to another node");
    // exec exits with the command's status.
    assert_eq!(
        lab.exec("n1", &["sh", "-c", "exit 7"]).status.code(),
        Some(7)
    );
}

/// The interface names a node's `/sys/class/net` lists, as a process in the node sees them.
fn sys_class_net(lab: &TestLab, node: &str) -> Vec<String> {
    let out = lab.exec(node, &["ls", "/sys/class/net"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut names: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    names.sort();
    names
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn nodes_sys_shows_its_own_interfaces_read_only_also_under_userns_and_to_services() {
    let yaml = "name: tn-sys\nnodes:\n  a:\n    services: {probe: 'ls /sys/class/net > /tmp/seen; sleep 300'}\n  b: {userns: true}\nlinks:\n  - endpoints: [a:eth0, b:eth7]\n";
    let lab = TestLab::new("tn-sys", yaml);
    lab.up();
    // The service entered first: it saw the node's interfaces, not the host's.
    let seen = eventually(10, || {
        let o = lab.exec("a", &["cat", "/tmp/seen"]);
        (o.status.success() && !stdout(&o).trim().is_empty()).then(|| stdout(&o))
    })
    .expect("the service wrote what it saw");
    let mut seen: Vec<&str> = seen.split_whitespace().collect();
    seen.sort();
    assert_eq!(seen, ["eth0", "lo"], "the service's /sys/class/net");
    assert_eq!(sys_class_net(&lab, "a"), ["eth0", "lo"]);
    assert_eq!(sys_class_net(&lab, "b"), ["eth7", "lo"]);
    // Mounted once, however many processes entered.
    let sysfs_on_sys = lab.exec(
        "a",
        &[
            "sh",
            "-c",
            "awk '$5 == \"/sys\" && / - sysfs /' /proc/self/mountinfo | wc -l",
        ],
    );
    assert_eq!(
        stdout(&sysfs_on_sys).trim(),
        "2",
        "the host's (covered) and the node's: {}",
        text(&sysfs_on_sys)
    );
    for node in ["a", "b"] {
        let w = lab.exec(node, &["sh", "-c", "echo 1 > /sys/class/net/lo/mtu"]);
        assert!(!w.status.success(), "/sys is read-only in {node}");
    }
}

/// Removes a cgroup directory this test made, also when the test fails.
struct CgroupDir(std::path::PathBuf);

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Where `mknod` is refused for the whole of `topo` (a v1 device cgroup that denies it, as
/// some container managers set), a node's devices are bound from the host's instead of made,
/// and work.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn devices_are_bound_where_mknod_is_refused() {
    let devices = std::path::Path::new("/sys/fs/cgroup/devices");
    if !devices.is_dir() {
        eprintln!("skipping: the kernel has no v1 devices controller here (cgroup v2)");
        return;
    }
    let group = CgroupDir(devices.join(format!("tn-mknod-{}", std::process::id())));
    std::fs::create_dir(&group.0).expect("make the device cgroup");
    std::fs::write(group.0.join("devices.deny"), "c *:* m").expect("deny mknod");
    let lab = TestLab::new("tn-mknod", "name: tn-mknod\nnodes:\n  a: {}\n");
    // `topo up` from a shell in that group: the spawner and the inits are in it too.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {TOPO} up {}",
        group.0.display(),
        path(&lab.file)
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{}", text(&out));
    let probe = lab.exec(
        "a",
        &["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && grep -c ' /dev/null ' /proc/self/mountinfo"],
    );
    assert_eq!(
        stdout(&probe).split_whitespace().collect::<Vec<_>>(),
        ["4", "1"],
        "/dev/null and /dev/zero work, /dev/null is a bind mount: {}",
        text(&probe)
    );
    assert!(lab.down().status.success());
}

/// Processes whose network namespace is `inode` (as the host sees them).
fn processes_in_netns(inode: u64) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::metadata(e.path().join("ns/net"))
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == inode)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A node with its own user namespace and `SYS_ADMIN` there (the default) has its init
/// outside its network namespace: in one that the inits of the `up` share, holding nothing
/// but a loopback, with the node's own held on descriptor 3. The node's namespace then holds
/// only the node's programs, and what the init sets up there (its sysctls) is set there.
/// A node without `SYS_ADMIN` has its init in its own namespace.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_default_nodes_init_holds_its_network_namespace_from_outside() {
    use std::os::unix::fs::MetadataExt;
    let yaml = "name: tn-out\nnodes:\n  a:\n    sysctls: {net.ipv4.ip_forward: 1}\n    interfaces: {eth0: {addresses: [192.0.2.1/24]}}\n  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}}}\n  c: {capabilities: {drop: [SYS_ADMIN]}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n";
    let lab = TestLab::new("tn-out", yaml);
    lab.up();
    let inits: std::collections::BTreeMap<String, String> = init_pids("tn-out")
        .into_iter()
        .map(|(node, pid)| (node, pid.to_string()))
        .collect();
    let named = |node: &str| {
        std::fs::metadata(format!("/run/netns/{}", lab.ns(node)))
            .expect("named netns")
            .ino()
    };
    let ns_net = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .expect("init's netns")
            .ino()
    };
    let host = std::fs::metadata("/proc/self/ns/net")
        .expect("host netns")
        .ino();
    for node in ["a", "b"] {
        let pid = &inits[node];
        assert_eq!(
            node_net_inode(pid),
            named(node),
            "{node}'s init holds its netns"
        );
        assert_ne!(
            ns_net(pid),
            named(node),
            "{node}'s init is not in its node's netns"
        );
        assert_ne!(
            ns_net(pid),
            host,
            "{node}'s init is not in the host's netns"
        );
        // Nothing runs in the node, so nothing is in its namespace.
        assert_eq!(
            processes_in_netns(named(node)),
            Vec::<String>::new(),
            "{node}"
        );
    }
    assert_eq!(
        ns_net(&inits["a"]),
        ns_net(&inits["b"]),
        "one netns for the inits"
    );
    // The inits' namespace holds a loopback alone (its /proc/PID/net shows that namespace).
    let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", inits["a"])).expect("net/dev");
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(str::trim))
        .collect();
    assert_eq!(ifaces, ["lo"], "{dev}");
    // The init set the node's sysctl in the node's namespace, which commands run in.
    let forward = netns_exec(&lab.ns("a"), &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&forward.stdout).trim(), "1");
    // The first command enters from outside (and mounts the node's sysfs); the next ones
    // are started by the init, each joining the namespace first.
    for _ in 0..3 {
        assert_eq!(
            stdout(&lab.exec("a", &["readlink", "/proc/self/ns/net"])),
            format!("net:[{}]", named("a"))
        );
    }
    let o = lab.exec("a", &["ping", "-c", "1", "-W", "2", "192.0.2.2"]);
    assert!(o.status.success(), "a command in a reaches b: {}", text(&o));
    // Without SYS_ADMIN the init could not join its node's namespace: it lives there.
    assert_eq!(ns_net(&inits["c"]), named("c"));
    assert_eq!(node_net_inode(&inits["c"]), named("c"));
    // A command in c still runs in c's namespace.
    assert_eq!(
        stdout(&lab.exec("c", &["readlink", "/proc/self/ns/net"])),
        format!("net:[{}]", named("c"))
    );
}
