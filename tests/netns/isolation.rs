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
