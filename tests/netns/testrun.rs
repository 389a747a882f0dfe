//! `topo test`: the labs of `topologies/` pass their own tests (failover included), a broken
//! variant fails with exit 1 and a JUnit failure, captures hold the protocols' packets, and
//! the steps and actions work on a lab without daemons. Every lab runs under a name of its
//! own and is gone afterwards.

use std::path::Path;

use crate::common::*;

/// `topo test` of `lab`'s file with `args`; its output.
fn topo_test(lab: &TestLab, args: &[&str]) -> std::process::Output {
    let mut all = vec!["test", path(&lab.file)];
    all.extend_from_slice(args);
    topo(&all)
}

/// The lines `tcpdump -r FILE -nn -v` prints for a capture.
fn tcpdump(file: &Path) -> String {
    let out = std::process::Command::new("tcpdump")
        .args(["-r", path(file), "-nn", "-v"])
        .output()
        .expect("run tcpdump (apt-get install tcpdump)");
    assert!(out.status.success(), "tcpdump -r failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// No namespace of the lab is left.
fn assert_no_namespaces(name: &str) {
    let list = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{name}-")))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(list.is_empty(), "namespaces left: {list:?}");
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_ospf_lab_passes_its_tests_and_its_capture_holds_ospf_hellos() {
    let lab = example_lab("tt-ospf", "frr-ospf", "lab.yaml");
    let art = lab.dir.join("artifacts");
    let out = topo_test(&lab, &["--artifacts", path(&art)]);
    assert!(out.status.success(), "topo test failed:\n{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("12 steps, 12 passed, 0 failed"), "{stdout}");
    let junit = std::fs::read_to_string(art.join("junit.xml")).expect("junit.xml");
    assert!(
        junit.contains(r#"tests="12""#) && junit.contains(r#"failures="0""#),
        "{junit}"
    );
    let packets = tcpdump(&art.join("capture.pcapng"));
    assert!(
        packets.contains("OSPFv2, Hello"),
        "no OSPF hello in:\n{packets}"
    );
    assert!(art.join("logs").join("r1.zebra.log").is_file());
    assert_no_namespaces("tt-ospf");
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn frr_bgp_lab_passes_its_tests_and_its_capture_holds_bgp_keepalives() {
    let lab = example_lab("tt-bgp", "frr-bgp", "lab.yaml");
    let junit = lab.dir.join("junit.xml");
    let art = lab.dir.join("artifacts");
    let out = topo_test(&lab, &["--junit", path(&junit), "--artifacts", path(&art)]);
    assert!(out.status.success(), "topo test failed:\n{}", text(&out));
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains(r#"failures="0""#), "{xml}");
    let packets = tcpdump(&art.join("capture.pcapng"));
    assert!(
        packets.contains("Keepalive Message"),
        "no BGP keepalive in:\n{packets}"
    );
    assert_no_namespaces("tt-bgp");
}

#[test]
#[cfg_attr(
    not(all(kernel_tests, bird)),
    ignore = "needs root and BIRD 2 (apt-get install bird2)"
)]
fn bird_ospf_lab_passes_its_tests() {
    let lab = example_lab("tt-bird", "bird-ospf", "lab.yaml");
    let out = topo_test(&lab, &["-o", "json"]);
    assert!(out.status.success(), "topo test failed:\n{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["passed"], true);
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 11);
    assert!(steps.iter().all(|s| s["outcome"] == "pass"));
    assert_no_namespaces("tt-bird");
}

/// The FRR lab with r3's link to r4 in the wrong OSPF area: the adjacency never forms, and
/// `topo test` says which step failed and what it expected, in its output and in JUnit.
#[test]
#[cfg_attr(
    not(all(kernel_tests, frr)),
    ignore = "needs root and FRR (apt-get install frr)"
)]
fn a_wrong_ospf_area_fails_with_exit_1_and_a_junit_failure() {
    let lab = example_lab("tt-area", "frr-ospf", "lab.yaml");
    let conf = lab.dir.join("r3").join("ospfd.conf");
    let text_conf = std::fs::read_to_string(&conf).expect("r3's ospfd.conf");
    let wrong = text_conf.replacen(
        "interface eth2\n ip ospf area 0.0.0.1",
        "interface eth2\n ip ospf area 0.0.0.2",
        1,
    );
    assert_ne!(wrong, text_conf, "r3's eth2 is in area 1");
    std::fs::write(&conf, wrong).expect("write ospfd.conf");
    let yaml = std::fs::read_to_string(&lab.file).expect("lab file");
    let head = &yaml[..yaml.find("\ntests:\n").expect("tests:")];
    lab.rewrite(&format!(
        "{head}\ntests:\n  - {{name: r2 is adjacent to r3, node: r2, ospf: r3, wait: 20s}}\n  - {{name: r3 is adjacent to r4, node: r3, ospf: r4, wait: 8s}}\n"
    ));
    let junit = lab.dir.join("junit.xml");
    let out = topo_test(&lab, &["--junit", path(&junit)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok "), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("r3 is adjacent to r4"),
        "{stdout}"
    );
    assert!(stdout.contains("expected: each full"), "{stdout}");
    assert!(stdout.contains("2 steps, 1 passed, 1 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains(r#"failures="1""#), "{xml}");
    assert!(
        xml.contains("OSPFv2 neighbours r4: expected each full"),
        "{xml}"
    );
    assert_no_namespaces("tt-area");
}

const TWO: &str = r#"name: tt-steps
nodes:
  a:
    interfaces:
      lo: {addresses: [192.0.2.100/32]}
      eth1: {addresses: [192.0.2.1/24, "2001:db8:7::1/64"]}
    services:
      sleeper: exec sleep 600
  b:
    interfaces:
      eth1: {addresses: [192.0.2.2/24, "2001:db8:7::2/64"]}
    routes:
      - {to: 198.51.100.0/24, via: 192.0.2.1}
links:
  - endpoints: [a:eth1, b:eth1]
tests:
  - {name: b reaches a, node: b, ping: {to: a, family: 4}, wait: 5s}
  - {name: b reaches a over IPv6, node: b, ping: "2001:db8:7::1", wait: 5s}
  - {name: static route, node: b, route: {to: 198.51.100.0/24, via: 192.0.2.1, protocol: topo}}
  - {name: no route to 203.0.113.0/24, node: b, route: 203.0.113.0/24, expect: fail}
  - name: json and regex
    nodes: [a, b]
    exec: "printf '{\"name\": \"%s\", \"list\": [3, 1, 2]}' $(hostname)"
    expect: {output: '"list"', json: {list: [2, 3]}}
  - {name: exit status, node: a, exec: "exit 3", expect: {status: 3}}
  - {name: sleeper runs, node: a, service: sleeper}
  - {name: stop the sleeper, node: a, stop: sleeper}
  - {name: the sleeper is stopped, node: a, service: sleeper, expect: fail}
  - {name: start it again, node: a, start: sleeper}
  - {name: cut the link, link: a:eth1 down}
  - {name: b cannot reach a, node: b, ping: 192.0.2.1, expect: fail, wait: 5s}
  - {name: the link again, link: a:eth1 up}
  - {name: limit the rate, impair: {endpoint: a:eth1, rate: 10mbit}}
  - {name: a token bucket on a:eth1, node: a, exec: "tc qdisc show dev eth1", expect: {output: "tbf .*rate 10Mbit"}}
  - {name: stop node b, node: b, stop: node}
  - {name: b is down, node: b, exec: "true", expect: fail}
  - {name: the variant, up: variant.yaml}
  - {name: b came back in the variant, node: a, ping: {to: b, family: 4}, wait: 5s}
"#;

/// Every kind of step on a lab without daemons, each checked against what the kernel holds:
/// the run passes only if the checks see the actions' effects.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn steps_and_actions_act_on_the_lab_and_see_their_effects() {
    let lab = TestLab::new("tt-steps", TWO);
    // The variant: b gets another address; `up` of it restarts nothing else.
    let variant = TWO
        .replace("192.0.2.2/24", "192.0.2.3/24")
        .split("\ntests:\n")
        .next()
        .unwrap_or_default()
        .to_string();
    std::fs::write(lab.dir.join("variant.yaml"), variant).expect("write variant");
    let out = topo_test(&lab, &["-o", "json", "--keep"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    let failed: Vec<String> = report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["outcome"] != "pass")
        .map(|s| s.to_string())
        .collect();
    assert!(failed.is_empty(), "failed steps:\n{}", failed.join("\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // --keep: still up, and now as the variant says (b at .3).
    let addrs = lab.exec("b", &["ip", "-j", "addr", "show", "eth1"]);
    assert!(String::from_utf8_lossy(&addrs.stdout).contains("192.0.2.3"));
    // What the test changed is drift from the test's own file.
    let plan = lab.plan();
    assert!(plan.contains("192.0.2.2"), "{plan}");
}

/// A check that fails says what it tried: the address a ping went to.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_failed_ping_names_the_address_it_tried() {
    let yaml = TWO
        .split("\ntests:\n")
        .next()
        .unwrap_or_default()
        .replace("tt-steps", "tt-ping")
        + "\ntests:\n  - {name: nobody there, node: b, ping: 192.0.2.77}\n";
    let lab = TestLab::new("tt-ping", &yaml);
    let out = topo_test(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("b: ping 192.0.2.77"), "{stdout}");
    assert!(stdout.contains("expected: a reply"), "{stdout}");
    assert!(stdout.contains("got:      0 of 1 replies"), "{stdout}");
    assert_no_namespaces("tt-ping");
}

/// A lab that cannot come up is exit 3, with nothing tested and nothing left; a file without
/// tests is exit 2 and touches nothing.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn exit_3_when_the_lab_cannot_come_up_and_2_without_tests() {
    let lab = TestLab::new(
        "tt-noup",
        "name: tt-noup\nnodes:\n  a:\n    services:\n      dies: exit 4\ntests:\n  - {node: a, exec: 'true'}\n",
    );
    let out = topo_test(&lab, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service dies exited during start"), "{err}");
    assert!(err.contains("no tests were run"), "{err}");
    assert_no_namespaces("tt-noup");
    lab.rewrite("name: tt-noup\nnodes:\n  a: {}\n");
    let out = topo_test(&lab, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tests"));
    assert!(!std::path::Path::new("/run/topo/tt-noup").exists());
}

/// Attack: a node answers a check with endless output. `topo test` keeps the first MiB of it
/// and drops the rest, so its memory stays small (without the cap it held all of it: 500 MB
/// of output grew it by gigabytes).
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_node_flooding_a_check_with_output_cannot_fill_topos_memory() {
    let lab = TestLab::new(
        "tt-flood",
        "name: tt-flood\nnodes:\n  a: {}\ntests:\n  - {node: a, exec: 'head -c 500000000 /dev/zero', expect: {output: x}}\n",
    );
    let child = topo_test(&lab, &["-o", "json"]);
    assert_eq!(child.status.code(), Some(1), "{}", text(&child));
    let report: serde_json::Value = serde_json::from_slice(&child.stdout).expect("JSON report");
    let output = report["steps"][0]["checks"][0]["output"]
        .as_str()
        .expect("the output kept");
    assert!(output.len() < 2 << 20, "kept {} bytes", output.len());
    assert!(
        output.contains("more bytes not kept"),
        "{}",
        &output[output.len() - 100..]
    );
    // The largest child this test process has waited for: every topo of this suite is
    // small; topo holding the 500 MB would be far above this.
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    assert!(
        usage.ru_maxrss < 300 * 1024,
        "max RSS {} KiB",
        usage.ru_maxrss
    );
}

/// `topo test` of `lab`'s file with `args`, started (not waited for).
fn spawn_topo_test(lab: &TestLab, args: &[&str]) -> std::process::Child {
    std::process::Command::new(TOPO)
        .arg("test")
        .arg(&lab.file)
        .args(args)
        .env("TOPO_LOG_DIR", archive_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start topo test")
}

/// The arguments of a process (`/proc/PID/cmdline`); empty when it is gone.
fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The parent of a process (`PPid:` of `/proc/PID/status`).
fn parent(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Enter servers (`topo __enter --serve`) whose parent is `topo`: (PID, the init they serve).
fn enter_servers_of(topo: i32) -> Vec<(i32, i32)> {
    all_pids()
        .into_iter()
        .filter(|&p| parent(p) == Some(topo))
        .filter_map(|p| {
            let args = cmdline(p);
            let at = args.iter().position(|a| a == "--serve")?;
            (args.get(at - 1)? == "__enter").then_some(())?;
            Some((p, args.get(at + 1)?.parse().ok()?))
        })
        .collect()
}

/// Processes whose arguments are exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&p| cmdline(p) == argv)
        .collect()
}

/// Waits for `child`, at most `secs` seconds (killing it then); its output.
fn wait_bounded(mut child: std::process::Child, secs: u64) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().expect("wait for topo test").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("topo test output");
            panic!("topo test still running after {secs}s:\n{}", text(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("topo test output")
}

/// The first `Key:` line of `/proc/PID/status`.
fn status_field(pid: &str, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .to_string()
}

/// An exec check runs in every namespace of the node's init, in its cgroup, and with its
/// restrictions (seccomp filter, no_new_privs, bounding set), as the kernel shows them for
/// the init; the enter servers that ran the checks are gone once `topo test` is.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn an_exec_check_runs_in_the_node_with_its_restrictions_and_no_server_outlives_the_run() {
    let probe = "for k in Seccomp NoNewPrivs CapBnd CapEff; do grep \"^$k:\" /proc/self/status; done; \
                 for n in net mnt pid uts ipc user cgroup; do echo \"$n $(readlink /proc/self/ns/$n)\"; done; \
                 cat /proc/self/cgroup";
    // The second check lasts long enough for the polling below to see b's enter server, which
    // serves that one check only.
    let yaml = format!(
        "name: srv-ns\nnodes:\n  a: {{}}\n  b: {{}}\ntests:\n  - {{name: probe, node: a, exec: '{probe}'}}\n  - {{name: again, nodes: [a, b], exec: 'sleep 0.2'}}\n"
    );
    let lab = TestLab::new("srv-ns", &yaml);
    let child = spawn_topo_test(&lab, &["-o", "json", "--keep"]);
    let topo_pid = i32::try_from(child.id()).expect("pid");
    let mut servers = Vec::new();
    let out = {
        let mut child = child;
        loop {
            for s in enter_servers_of(topo_pid) {
                if !servers.contains(&s) {
                    servers.push(s);
                }
            }
            if child.try_wait().expect("wait").is_some() {
                break child.wait_with_output().expect("output");
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let output = report["steps"][0]["checks"][0]["output"]
        .as_str()
        .expect("the probe's output")
        .to_string();
    let status = topo(&["status", "--lab", "srv-ns", "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let init = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == "a")
        .and_then(|n| n["init_pid"].as_i64())
        .expect("a's init")
        .to_string();
    for key in ["Seccomp", "NoNewPrivs", "CapBnd", "CapEff"] {
        let want = status_field(&init, key);
        assert!(
            output.lines().any(|l| l == want),
            "want {want:?} in:\n{output}"
        );
    }
    assert!(!output.contains("Seccomp:\t0"), "{output}");
    for ns in ["net", "mnt", "pid", "uts", "ipc", "user", "cgroup"] {
        let link = match ns {
            // The node's, which its init holds from outside it.
            "net" => format!("net:[{}]", node_net_inode(&init)),
            _ => std::fs::read_link(format!("/proc/{init}/ns/{ns}"))
                .expect("ns link")
                .display()
                .to_string(),
        };
        let want = format!("{ns} {link}");
        assert!(
            output.lines().any(|l| l == want),
            "want {want:?} in:\n{output}"
        );
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{init}/cgroup")).expect("cgroup");
    assert!(output.contains(&cgroup), "want {cgroup:?} in:\n{output}");
    // One server per node, each serving that node's init, and none left.
    let mut inits: Vec<i32> = servers.iter().map(|(_, i)| *i).collect();
    inits.sort_unstable();
    inits.dedup();
    assert_eq!(inits.len(), 2, "servers seen: {servers:?}");
    assert!(inits.contains(&init.parse().expect("pid")), "{servers:?}");
    for (pid, served) in &servers {
        let args = cmdline(*pid);
        assert!(
            !(args.iter().any(|a| a == "--serve") && args.contains(&served.to_string())),
            "enter server {pid} outlived topo test: {args:?}"
        );
    }
}

/// A check that outlives its time is ended, with what it started: no process of it is left
/// in the node, and the run goes on.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_check_that_times_out_is_killed_with_what_it_started() {
    let lab = TestLab::new(
        "srv-kill",
        "name: srv-kill\nnodes:\n  a: {}\ntests:\n  - {name: hangs, node: a, exec: 'trap \"\" TERM; sleep 4321.6 & sleep 4321.7; wait', wait: {timeout: 1s}}\n  - {name: after, node: a, exec: 'echo still here', expect: {output: still here}}\n",
    );
    let started = std::time::Instant::now();
    let out = topo_test(&lab, &["-o", "json", "--keep"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["steps"][0]["outcome"], "fail", "{report}");
    let got = report["steps"][0]["checks"][0]["got"]
        .as_str()
        .unwrap_or_default();
    assert!(got.contains("no answer within"), "{got}");
    assert_eq!(report["steps"][1]["outcome"], "pass", "{report}");
    for argv in [["sleep", "4321.6"], ["sleep", "4321.7"]] {
        let left = processes_running(&argv);
        assert!(left.is_empty(), "{argv:?} left running: {left:?}");
    }
}

/// A node whose init is killed while a check runs there: the check fails, naming the node,
/// instead of hanging, and the node's enter server ends.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_check_on_a_node_whose_init_dies_fails_naming_the_node() {
    let lab = TestLab::new(
        "srv-gone",
        "name: srv-gone\nnodes:\n  a: {}\n  b: {}\ntests:\n  - {name: first, node: a, exec: 'true'}\n  - {name: dies, node: a, exec: 'sleep 4321.8'}\n  - {name: after, node: a, exec: 'true'}\n  - {name: other, node: b, exec: 'true'}\n",
    );
    let child = spawn_topo_test(&lab, &["-o", "json"]);
    let topo_pid = i32::try_from(child.id()).expect("pid");
    let server = eventually(20, || {
        let s = enter_servers_of(topo_pid);
        (!processes_running(&["sleep", "4321.8"]).is_empty() && s.len() == 1).then(|| s[0])
    });
    let Some((server, init)) = server else {
        let mut child = child;
        let _ = child.kill();
        panic!(
            "no check running: {}",
            text(&child.wait_with_output().expect("out"))
        );
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the init");
    let out = wait_bounded(child, 20);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["steps"][1]["outcome"], "fail", "{report}");
    assert_eq!(report["steps"][1]["checks"][0]["node"], "a", "{report}");
    let got = report["steps"][2]["checks"][0]["got"]
        .as_str()
        .unwrap_or_default();
    assert!(got.contains("node a"), "{got}");
    assert_eq!(report["steps"][3]["outcome"], "pass", "{report}");
    let args = cmdline(server);
    assert!(
        !args.iter().any(|a| a == "--serve"),
        "enter server {server} left: {args:?}"
    );
}
