//! What real daemons need of a node: services started in their `after:` order and waited for
//! (`ready:`), a forking daemon tracked through its PID file, a oneshot run once, a service
//! that dies at start failing `up`, `exec:` lines that are never lost, and private writable
//! directories with an owner and a mode. Assertions read the node's processes and files
//! through /proc and inside the node, not `topo`'s records.

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::common::*;

fn sh(lab: &TestLab, node: &str, cmd: &str) -> String {
    let out = lab.exec(node, &["sh", "-c", cmd]);
    assert!(out.status.success(), "`{cmd}` in {node}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(lab: &TestLab) -> Value {
    let out = topo(&["status", "--lab", &lab.name, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The first host id of a process's user namespace (its uid map's first line).
fn userns_base(pid: i64) -> u32 {
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("uid_map");
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields[1].parse().expect("host id")
}

fn ns_of(pid: i64, kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .expect("ns")
        .ino()
}

const ORDERED: &str = r#"name: tn-dmn
nodes:
  r:
    services:
      # Name order would start bgpd first; after: puts it behind zebra, which is ready only
      # once its socket file is there, half a second after it starts.
      bgpd:
        command: "echo bgpd >> /run/order; exec sleep 1000"
        after: [zebra]
      zebra:
        command: "sleep 0.5; echo zebra >> /run/order; touch /run/zserv.api; exec sleep 1000"
        ready: {command: "test -e /run/zserv.api", timeout: 10s, interval: 50ms}
      # Starts its daemon in the background, writes its PID and exits, as init scripts do.
      watch:
        type: forking
        command: "sleep 1000 & echo $! > /run/watch.pid"
        pid_file: /run/watch.pid
      setup: {type: oneshot, command: "echo ran >> /run/setup-count"}
"#;

/// `after:` and `ready:` order the start, a forking service is its daemon (running, in the
/// node), a oneshot runs once, and the second `up` changes nothing.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn services_start_in_order_ready_forking_and_oneshot_and_stay_put() {
    let lab = TestLab::new("tn-dmn", ORDERED);
    lab.up();
    assert_eq!(sh(&lab, "r", "cat /run/order"), "zebra\nbgpd\n");
    assert_eq!(sh(&lab, "r", "cat /run/setup-count"), "ran\n");
    let status = status_json(&lab);
    let node = &status["nodes"][0];
    let init = node["init_pid"].as_i64().expect("init pid");
    let services = node["services"].as_array().expect("services");
    let find = |name: &str| {
        services
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("service {name} in {services:?}"))
    };
    let watch = find("watch");
    assert_eq!(watch["state"], "running", "{watch}");
    let pid = watch["pid"].as_i64().expect("pid");
    // The kernel's view: the process status names is the forked `sleep`, in the node.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "sleep");
    assert_eq!(ns_of(pid, "pid"), ns_of(init, "pid"));
    let in_node = sh(&lab, "r", "cat /run/watch.pid");
    let nspid = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let last = nspid
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .expect("NSpid");
    assert_eq!(last, in_node.trim(), "the PID file's PID is that process");
    assert_eq!(find("setup")["state"], "done");
    assert!(find("zebra")["ready_ms"].as_u64().expect("ready time") >= 400);
    // Nothing to do the second time: no service restarted, the oneshot not run again.
    let again = topo(&["up", path(&lab.file)]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no changes"),
        "{}",
        text(&again)
    );
    assert_eq!(sh(&lab, "r", "cat /run/setup-count"), "ran\n");
    assert_eq!(sh(&lab, "r", "cat /run/order"), "zebra\nbgpd\n");
}

/// A service that exits at start, or is not ready in time, fails `up` with exit 1, naming the
/// node and the service, with the tail of its log.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_service_that_dies_or_is_not_ready_fails_up_with_its_log() {
    let yaml = "name: tn-dmx\nnodes:\n  r:\n    services:\n      zebra: \"echo 'zebra: bad config line 3' >&2; exit 1\"\n";
    let lab = TestLab::new("tn-dmx", yaml);
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node r: service zebra exited during start"),
        "{err}"
    );
    assert!(err.contains("bad config line 3"), "log tail shown: {err}");
    lab.rewrite(
        "name: tn-dmx\nnodes:\n  r:\n    services:\n      zebra:\n        command: exec sleep 1000\n        ready: {command: 'test -e /run/never', timeout: 300ms}\n",
    );
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node r: service zebra was not ready within 300ms"),
        "{err}"
    );
}

/// `exec:` lines run once per init: those a failed `up` did not reach, and those added to the
/// file of a running lab, show in `plan` and run on the next `up`.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn exec_lines_left_by_a_failed_up_or_added_later_run_on_the_next_up() {
    let file = |lines: &str| format!("name: tn-exl\nnodes:\n  r:\n    exec: [{lines}]\n");
    let base = "'echo 1 >> /run/x', 'test -e /run/go', 'echo 3 >> /run/x'";
    let lab = TestLab::new("tn-exl", &file(base));
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        lab.plan().contains("+ exec r (2 commands)"),
        "{}",
        lab.plan()
    );
    sh(&lab, "r", "touch /run/go");
    lab.up();
    assert_eq!(sh(&lab, "r", "cat /run/x"), "1\n3\n");
    lab.rewrite(&file(&format!("{base}, 'echo 4 >> /run/x'")));
    let plan = lab.plan();
    assert!(plan.contains("+ exec r: echo 4 >> /run/x"), "{plan}");
    lab.up();
    assert_eq!(sh(&lab, "r", "cat /run/x"), "1\n3\n4\n");
    assert!(lab.plan().contains("no changes"), "{}", lab.plan());
}

/// Private directories: the declared owner and mode as the node sees them, writable by that
/// owner, shifted into the node's id range on the host; a copy of a host directory; with and
/// without a user namespace.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn private_dirs_have_owner_and_mode_and_take_the_owners_writes() {
    let lab = TestLab::new("tn-dir", "name: tn-dir\nnodes: {}\n");
    std::fs::create_dir_all(lab.dir.join("seed")).expect("mkdir");
    std::fs::write(lab.dir.join("seed/daemons"), "zebra=yes\n").expect("seed");
    let dirs = "    dirs:\n      /run/d: {owner: 'daemon:daemon', mode: '0750'}\n      /var/tmp: {mode: '1777'}\n      /run/etc: {from: ./seed}\n";
    lab.rewrite(&format!(
        "name: tn-dir\nnodes:\n  a:\n{dirs}  h:\n    userns: false\n{dirs}"
    ));
    lab.up();
    let status = status_json(&lab);
    for node in ["a", "h"] {
        assert_eq!(
            sh(
                &lab,
                node,
                "stat -c '%U:%G %a' /run/d /var/tmp /run/etc/daemons"
            ),
            "daemon:daemon 750\nroot:root 1777\nroot:root 644\n",
            "{node}"
        );
        let write = sh(
            &lab,
            node,
            "setpriv --reuid=daemon --regid=daemon --clear-groups sh -c 'echo log > /run/d/f && cat /run/d/f'",
        );
        assert_eq!(write, "log\n", "{node}");
        let denied = lab.exec(
            node,
            &[
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "sh",
                "-c",
                "echo x > /run/d/g",
            ],
        );
        assert!(
            !denied.status.success(),
            "{node}: mode 0750 keeps others out"
        );
        assert_eq!(sh(&lab, node, "cat /run/etc/daemons"), "zebra=yes\n");
        // On the host: the directory of the run directory, with the ids shifted into the
        // node's range (none without a user namespace).
        let host = std::path::Path::new("/run/topo/tn-dir/dirs")
            .join(node)
            .join("run%2Fd");
        let meta = std::fs::metadata(&host).expect("private dir on the host");
        let init = status["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|x| x["name"] == node))
            .and_then(|n| n["init_pid"].as_i64())
            .expect("init");
        let base = if node == "a" { userns_base(init) } else { 0 };
        assert_eq!((meta.uid(), meta.gid()), (base + 1, base + 1), "{node}");
        assert_eq!(meta.mode() & 0o7777, 0o750);
        assert_eq!(
            std::fs::read_to_string(host.join("f")).expect("written through the bind"),
            "log\n"
        );
    }
    lab.down();
    assert!(!std::path::Path::new("/run/topo/tn-dir").exists());
}

/// A node's PID file can name only the node's own processes: a forking service whose PID file
/// holds the PID of a host process (here, a process of this test) or a planted link to a host
/// file fails `up`; the host process is not recorded, and `down` leaves it running.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_pid_file_cannot_name_a_host_process() {
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start a host process");
    let pid = victim.id();
    let yaml = format!(
        "name: tn-pid\nnodes:\n  r:\n    services:\n      d:\n        type: forking\n        command: 'echo {pid} > /run/d.pid'\n        pid_file: /run/d.pid\n        ready: {{command: 'true', timeout: 1s}}\n      l:\n        type: forking\n        command: 'ln -s /proc/{pid}/stat /run/l.pid'\n        pid_file: /run/l.pid\n        ready: {{command: 'true', timeout: 1s}}\n"
    );
    let lab = TestLab::new("tn-pid", &yaml);
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service d exited: its PID file /run/d.pid names PID"),
        "{err}"
    );
    let status = topo(&["status", "--lab", "tn-pid", "-o", "json"]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains(&format!("\"pid\": {pid}")),
        "the host process is not the service: {}",
        text(&status)
    );
    lab.down();
    assert!(
        victim.try_wait().expect("wait").is_none(),
        "the host process survives down"
    );
    let _ = victim.kill();
    let _ = victim.wait();
}

/// FRR writes its log file through a `:rw` bind of a host directory owned by the host's `frr`
/// user (in the node, with a user namespace, the directory is `frr`'s), and the file it makes
/// is owned on the host by the id it has in the node (zebra opens it as root): node root's
/// files are the host root's, never an id of the node's unprivileged range.
#[test]
#[cfg_attr(not(all(kernel_tests, frr)), ignore = "needs root and FRR")]
fn frr_writes_its_log_file_through_a_rw_bind() {
    let lab = TestLab::new("tn-frl", "name: tn-frl\nnodes: {}\n");
    let (uid, gid) = {
        let m = std::fs::metadata("/etc/frr").expect("FRR's /etc/frr on the host");
        (m.uid(), m.gid())
    };
    let logs = lab.dir.join("log");
    let conf = lab.dir.join("conf");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::create_dir_all(&conf).expect("mkdir");
    std::fs::write(conf.join("zebra.conf"), "hostname r1\n").expect("conf");
    std::os::unix::fs::chown(&logs, Some(uid), Some(gid)).expect("chown");
    lab.rewrite(
        "name: tn-frl\nnodes:\n  r1:\n    binds: ['./conf:/etc/frr:ro', './log:/var/log/frr:rw']\n    dirs: {/run/frr: {owner: 'frr:frr'}}\n    services:\n      zebra:\n        command: exec /usr/lib/frr/zebra -f /etc/frr/zebra.conf -A 127.0.0.1 --log file:/var/log/frr/zebra.log\n        ready: {command: 'test -S /run/frr/zserv.api', timeout: 10s}\n",
    );
    lab.up();
    let file = logs.join("zebra.log");
    let written = eventually(10, || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| !t.is_empty())
    });
    assert!(written.is_some(), "zebra wrote {}", file.display());
    let meta = std::fs::metadata(&file).expect("log file");
    assert!(
        [(0, 0), (uid, gid)].contains(&(meta.uid(), meta.gid())),
        "owned by root or frr as the host knows them: {}:{}",
        meta.uid(),
        meta.gid()
    );
}

/// `restart: on-failure`: a service that fails is started again, with back-off, until it runs;
/// `status` counts the restarts from its supervisor's name. Stopping the lab ends both.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_failing_service_with_restart_on_failure_is_started_again() {
    let yaml = "name: tn-rst\nnodes:\n  r:\n    services:\n      flaky:\n        command: 'echo run >> /run/runs; [ $(wc -l < /run/runs) -ge 3 ] && exec sleep 1000; exit 1'\n        restart: on-failure\n";
    let lab = TestLab::new("tn-rst", yaml);
    lab.up();
    let runs = eventually(10, || {
        let out = lab.exec("r", &["cat", "/run/runs"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text == "run\nrun\nrun\n").then_some(text)
    });
    assert!(runs.is_some(), "three runs, the third one lasting");
    let status = status_json(&lab);
    let svc = &status["nodes"][0]["services"][0];
    assert_eq!(svc["state"], "running", "{svc}");
    assert_eq!(svc["restarts"], 2, "{svc}");
    // The program runs under its supervisor, in the node.
    let sup = svc["pid"].as_i64().expect("pid");
    let children =
        std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).expect("children");
    let child: i64 = children.trim().parse().expect("one child");
    let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).expect("comm");
    assert_eq!(comm.trim(), "sleep");
    lab.down();
    assert!(!std::path::Path::new(&format!("/proc/{child}")).exists());
    assert!(!std::path::Path::new(&format!("/proc/{sup}")).exists());
}

/// A supervised service that keeps failing is not `running`: between its restarts `status`
/// shows it `restarting`, and a `service` check of `topo test` fails on it.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_service_that_keeps_failing_is_restarting_not_running() {
    let yaml = "name: tn-loop\nnodes:\n  r:\n    services:\n      broken:\n        command: 'sleep 0.05; exit 1'\n        restart: on-failure\ntests:\n  - {node: r, service: broken}\n";
    let lab = TestLab::new("tn-loop", yaml);
    lab.up();
    let restarting = eventually(10, || {
        let status = status_json(&lab);
        let svc = status["nodes"][0]["services"][0].clone();
        (svc["state"] == "restarting" && svc["restarts"].as_u64() >= Some(3)).then_some(svc)
    });
    assert!(restarting.is_some(), "{}", status_json(&lab));
    let out = topo(&["test", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken not running"),
        "{}",
        text(&out)
    );
}

/// Attack: a service names itself as topo's supervisor does (`topo-r 9`) and has no child.
/// `status` goes by the recorded settings, not by the name a node's process can set: the
/// service is running, with no restarts.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_service_named_like_the_supervisor_does_not_fake_restarts() {
    let yaml = "name: tn-spoof\nnodes:\n  r:\n    services:\n      spoof: \"mkfifo /run/f; printf 'topo-r 9' > /proc/$$/comm; read x < /run/f\"\n";
    let lab = TestLab::new("tn-spoof", yaml);
    lab.up();
    let named = eventually(5, || {
        let status = status_json(&lab);
        let pid = status["nodes"][0]["services"][0]["pid"].as_i64()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "topo-r 9").then_some(status)
    });
    let status = named.expect("the service renamed itself");
    let svc = &status["nodes"][0]["services"][0];
    assert_eq!(svc["state"], "running", "{svc}");
    assert_eq!(svc["restarts"], 0, "{svc}");
}
