//! Limits: the node's cgroup files hold the declared values, and the kernel enforces them.

use crate::common::*;

/// The directory of a node's group for a controller, on v1 (this host) or v2.
fn group(controller: &str, lab: &str, node: &str) -> Option<std::path::PathBuf> {
    let v1 = std::path::PathBuf::from(format!("/sys/fs/cgroup/{controller}/topo/{lab}/{node}"));
    let v2 = std::path::PathBuf::from(format!("/sys/fs/cgroup/topo/{lab}/{node}"));
    [v1, v2].into_iter().find(|p| p.is_dir())
}

fn read(p: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(p.join(file))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn py(lab: &TestLab, node: &str, code: &str) -> std::process::Output {
    lab.exec(node, &["/usr/bin/python3", "-c", code])
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn memory_pids_and_cpu_limits_are_written_and_enforced() {
    let yaml = "name: tn-lim\nnodes:\n  a: {limits: {memory: 64Mi, pids: 16, cpu: 0.25}}\n";
    let lab = TestLab::new("tn-lim", yaml);
    lab.up();
    let mem = group("memory", "tn-lim", "a").expect("memory group");
    let pids = group("pids", "tn-lim", "a").expect("pids group");
    let cpu = group("cpu", "tn-lim", "a").expect("cpu group");
    let v2 = mem.join("memory.max").exists();
    if v2 {
        assert_eq!(read(&mem, "memory.max"), "67108864");
        assert_eq!(read(&cpu, "cpu.max"), "25000 100000");
    } else {
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "25000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(read(&pids, "pids.max"), "16");
    // status shows the limits, the usage and the security profile, read from the kernel.
    let st: serde_json::Value =
        serde_json::from_slice(&topo(&["status", "--lab", "tn-lim", "-o", "json"]).stdout)
            .expect("json");
    let a = &st["nodes"][0];
    assert_eq!(
        (
            a["limits"]["memory"].as_u64(),
            a["limits"]["pids"].as_u64(),
            a["limits"]["cpu"].as_f64()
        ),
        (Some(67108864), Some(16), Some(0.25)),
        "{a}"
    );
    let used: u64 = read(&pids, "pids.current").parse().expect("pids.current");
    assert_eq!(a["usage"]["pids"].as_u64(), Some(used), "{a}");
    assert_eq!(a["security"]["seccomp"], "default");
    // The node's processes are in the group.
    let cg = lab.exec("a", &["cat", "/proc/self/cgroup"]);
    assert!(
        String::from_utf8_lossy(&cg.stdout).contains("/topo/tn-lim/a"),
        "{}",
        text(&cg)
    );
    // Memory: allocating past the limit kills the allocator, the init survives.
    let hog = py(
        &lab,
        "a",
        "b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('survived')",
    );
    assert!(
        !hog.status.success() && !String::from_utf8_lossy(&hog.stdout).contains("survived"),
        "200 MiB in a 64 MiB node: {}",
        text(&hog)
    );
    assert!(
        lab.exec("a", &["true"]).status.success(),
        "the node still works (its init survived)"
    );
    // pids: forking past the limit fails.
    let forks = py(&lab, "a", "import os, time\nn = 0\ntry:\n    for _ in range(40):\n        if os.fork() == 0:\n            time.sleep(2); os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('refused after', n, e.errno)\n");
    let said = String::from_utf8_lossy(&forks.stdout).to_string();
    assert!(
        said.starts_with("refused after") && said.trim().ends_with("11"),
        "fork past pids.max fails with EAGAIN: {}",
        text(&forks)
    );
    // cpu: a busy loop gets about a quarter of a CPU over a measured second.
    let busy = py(&lab, "a", "import time, resource\nt = time.time()\nwhile time.time() - t < 1.5: pass\nr = resource.getrusage(resource.RUSAGE_SELF)\nprint(r.ru_utime + r.ru_stime)");
    let used: f64 = String::from_utf8_lossy(&busy.stdout)
        .trim()
        .parse()
        .expect("cpu seconds");
    assert!(
        used < 1.5 * 0.25 * 1.6 + 0.05,
        "0.25 CPU over 1.5 s allows ~0.375 s, used {used:.3} s"
    );
    assert!(used > 0.1, "the loop ran at all ({used:.3} s)");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn down_removes_its_groups_and_leaves_another_labs() {
    let one = TestLab::new(
        "tn-cg1",
        "name: tn-cg1\nnodes:\n  a: {limits: {pids: 64}}\n",
    );
    let two = TestLab::new(
        "tn-cg2",
        "name: tn-cg2\nnodes:\n  a: {limits: {pids: 64}}\n",
    );
    one.up();
    two.up();
    assert!(group("pids", "tn-cg1", "a").is_some() && group("pids", "tn-cg2", "a").is_some());
    assert!(one.down().status.success());
    assert!(
        group("pids", "tn-cg1", "a").is_none(),
        "down removed its node group"
    );
    let lab_dir_gone = [
        "/sys/fs/cgroup/pids/topo/tn-cg1",
        "/sys/fs/cgroup/topo/tn-cg1",
    ]
    .iter()
    .all(|p| !std::path::Path::new(p).exists());
    assert!(lab_dir_gone, "down removed its lab group");
    assert!(
        group("pids", "tn-cg2", "a").is_some(),
        "the other lab's group is untouched"
    );
    assert!(two.exec("a", &["true"]).status.success());
}

/// The PIDs a cgroup's `cgroup.procs` lists.
fn procs(dir: &std::path::Path) -> std::collections::BTreeSet<u32> {
    read(dir, "cgroup.procs")
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn memory_and_cpu_groups_are_made_once_limited_and_a_running_node_moves_in_whole() {
    let v1 = |c: &str| std::path::Path::new("/sys/fs/cgroup").join(c).is_dir();
    if !v1("memory") || !v1("cpu") {
        eprintln!("skipping: memory and cpu are not v1 hierarchies here (tests/vm covers v2)");
        return;
    }
    let lab = TestLab::new(
        "tn-mem",
        "name: tn-mem\nnodes:\n  a:\n    services: {idle: sleep 300}\n",
    );
    lab.up();
    let pids = group("pids", "tn-mem", "a").expect("pids group");
    assert!(
        group("memory", "tn-mem", "a").is_none(),
        "no memory limit, no memory group"
    );
    assert!(
        group("cpu", "tn-mem", "a").is_none(),
        "no CPU limit, no cpu group (v1)"
    );
    // The service's shell starts `sleep` on its own time after `up` returns: wait for it
    // (up to 5 s), so that the processes counted below are all the node will have.
    let has_sleep = |set: &std::collections::BTreeSet<u32>| {
        set.iter().any(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
    };
    for _ in 0..50 {
        if has_sleep(&procs(&pids)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let before = procs(&pids);
    assert!(before.len() >= 2, "init and service: {before:?}");
    // Limits added while the node runs: its groups are made and every process moves in.
    lab.rewrite(
        "name: tn-mem\nnodes:\n  a:\n    services: {idle: sleep 300}\n    limits: {memory: 32Mi, cpu: 0.5}\n",
    );
    let out = lab.up();
    assert!(out.status.success(), "{}", text(&out));
    let mem = group("memory", "tn-mem", "a").expect("memory group made by the second up");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "33554432");
    assert_eq!(
        procs(&mem),
        procs(&pids),
        "every process of the node is in it"
    );
    let cpu = group("cpu", "tn-mem", "a").expect("cpu group made by the second up");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(procs(&cpu), procs(&pids), "every process is in it too");
    assert_eq!(procs(&pids), before, "the node was not restarted");
    // And it is enforced on them.
    let hog = py(
        &lab,
        "a",
        "b = bytearray(100 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('survived')",
    );
    assert!(
        !hog.status.success(),
        "100 MiB in a 32 MiB node: {}",
        text(&hog)
    );
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
}
