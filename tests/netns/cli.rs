//! The command line on a lab that is up: signals to `topo exec`, `down` of a lab that is not
//! up, what `status` shows of routes, output into a closed pipe, log colour, the time and
//! progress `up` reports, and a copy of the binary under another name.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;

const PAIR: &str = "nodes:
  a:
    interfaces: {eth0: {addresses: [10.0.0.1/24]}, eth1: {addresses: [10.0.1.1/24]}}
    routes:
      - {to: 10.9.0.0/16, via: 10.0.0.2}
      - {to: 192.0.2.0/24, dev: eth1}
  b: {interfaces: {eth0: {addresses: [10.0.0.2/24]}}}
  c: {interfaces: {eth0: {addresses: [10.0.1.2/24]}}}
links:
  - endpoints: [a:eth0, b:eth0]
  - endpoints: [a:eth1, c:eth0]
";

fn lab(name: &str) -> TestLab {
    TestLab::new(name, &format!("name: {name}\n{PAIR}"))
}

/// Processes on the host whose command line holds `__enter` and `lab`.
fn enter_helpers(lab: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains(" __enter ") && cmd.contains(lab)).then_some(cmd)
        })
        .collect()
}

/// Starts `topo exec` of `script` in node a, waits for its first line (`ready`), sends
/// `signal` to `topo`, and returns its exit status and the rest of its output.
fn exec_and_signal(lab: &TestLab, script: &str, signal: Signal) -> (Option<i32>, String) {
    let mut child = Command::new(TOPO)
        .args([
            "exec", "--lab", &lab.name, "a", "--", "/bin/sh", "-c", script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn topo exec");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("read");
    assert_eq!(first, "ready\n", "the program started");
    kill(Pid::from_raw(child.id() as i32), signal).expect("kill");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let status = child.wait().expect("wait");
    (status.code(), rest)
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn exec_passes_sigterm_and_sighup_on_and_exits_with_the_programs_status() {
    let lab = lab("tc-sig");
    lab.up();
    // The program handles SIGTERM: topo waits for it and exits with its status.
    let (code, rest) = exec_and_signal(
        &lab,
        "trap 'kill $pid; echo got TERM; exit 7' TERM; sleep 30 & pid=$!; echo ready; wait",
        Signal::SIGTERM,
    );
    assert_eq!(code, Some(7), "topo exits with the program's status");
    assert_eq!(rest, "got TERM\n");
    // The program is killed by SIGHUP: 128 + 1.
    let (code, _) = exec_and_signal(&lab, "echo ready; exec sleep 30", Signal::SIGHUP);
    assert_eq!(code, Some(129));
    let programs = || {
        lab_processes(&lab.name)
            .into_iter()
            .filter(|(_, comm)| comm == "sleep" || comm == "sh")
            .collect::<Vec<_>>()
    };
    let gone = eventually(5, || programs().is_empty().then_some(()));
    assert!(
        gone.is_some(),
        "no program left in the node: {:?}",
        programs()
    );
    assert_eq!(
        enter_helpers(&lab.name),
        Vec::<String>::new(),
        "no helper left"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn down_of_a_lab_that_is_not_up_says_so() {
    let name = "tc-nolab";
    let out = topo(&["down", "--lab", name]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with(&format!("topo: error: lab {name} is not up: ")),
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let out = topo(&["down", "--lab", name, "--missing-ok"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("lab {name}: not up, nothing to remove\n")
    );
    // A lab that is up comes down as before, with --missing-ok too.
    let lab = lab("tc-down");
    lab.up();
    let out = topo(&["down", "--lab", &lab.name, "--missing-ok"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "lab tc-down: down (3 namespaces, 0 host links, 3 node processes removed)\n",
        "{}",
        text(&out)
    );
}

/// `status` lists nodes as people count them (n2 before n10), text and JSON, with the
/// bridges' namespace last.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn status_lists_nodes_in_natural_order() {
    let yaml = "name: tc-nat\nnodes:\n  n10: {}\n  n2: {}\n  n1: {}\n  m: {}\nbridges:\n  sw: {members: [n1:eth0, n2:eth0]}\n";
    let lab = TestLab::new("tc-nat", yaml);
    lab.up();
    let out = topo(&["status", "--lab", &lab.name, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = json["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["m", "n1", "n2", "n10", "(bridges)"]);
    let text_out =
        String::from_utf8_lossy(&topo(&["status", "--lab", &lab.name]).stdout).into_owned();
    let at = |n: &str| text_out.find(&format!("\n{n} ")).unwrap_or(usize::MAX);
    assert!(at("n2") < at("n10") && at("n1") < at("n2"), "{text_out}");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn status_shows_the_device_of_routes() {
    let lab = lab("tc-dev");
    lab.up();
    let out = topo(&["status", "--lab", &lab.name, "a"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains("routes:\n  10.9.0.0/16 via 10.0.0.2 dev eth0\n  192.0.2.0/24 dev eth1\n"),
        "{status}"
    );
    let out = topo(&["status", "--lab", &lab.name, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let a = json["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == "a"))
        .expect("node a");
    assert_eq!(
        a["routes"],
        serde_json::json!(["10.9.0.0/16 via 10.0.0.2 dev eth0", "192.0.2.0/24 dev eth1"])
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn status_and_up_into_a_closed_pipe_end_quietly() {
    let lab = lab("tc-pipe");
    lab.up();
    for args in [
        vec!["status", "--lab", &lab.name],
        vec!["status", "--lab", &lab.name, "-o", "json"],
        vec!["up", path(&lab.file)],
        vec!["plan", path(&lab.file)],
        vec!["down", "--lab", &lab.name],
    ] {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        drop(read);
        let out = Command::new(TOPO)
            .args(&args)
            .stdout(Stdio::from(write))
            .output()
            .expect("run topo");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", text(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
    }
    assert!(
        netns_with_prefix("tc-pipe-").is_empty(),
        "down did its work before it found the pipe closed"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn logs_into_a_pipe_have_no_colour() {
    let lab = lab("tc-colour");
    let out = Command::new(TOPO)
        .args(["up", path(&lab.file)])
        .env("TOPO_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .expect("run topo");
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("observed"), "{err}");
    assert!(!err.contains('\x1b'), "no escape sequence in: {err:?}");
}

/// The seconds in `up`'s summary line.
fn summary_seconds(stdout: &str) -> f64 {
    let last = stdout.lines().last().unwrap_or_default();
    last.rsplit_once('(')
        .and_then(|(_, s)| s.strip_suffix("s)"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {last:?}"))
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn the_time_up_shows_is_the_whole_commands() {
    let lab = TestLab::new("tc-time", &gen_chain("tc-time", 100, &["--bare"]));
    lab.up();
    let started = Instant::now();
    let out = topo(&["up", path(&lab.file)]);
    let wall = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", text(&out));
    let shown = summary_seconds(&String::from_utf8_lossy(&out.stdout));
    assert!(
        shown >= wall * 0.6 - 0.01 && shown <= wall + 0.01,
        "up showed {shown}s, the command took {wall:.3}s"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn progress_ends_at_the_count_of_changes() {
    let lab = lab("tc-prog");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let progress = std::sync::Arc::new(move |_: &str, done: usize, total: usize| {
        if let Ok(mut v) = record.lock() {
            v.push((done, total));
        }
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let loaded = topo::lab::Lab::load(&lab.file).expect("load");
    let report = rt
        .block_on(loaded.up_with_progress(Some(progress)))
        .expect("up");
    let changes = report.plan.visible().count();
    assert!(
        changes < report.plan.actions.len(),
        "the plan has implied steps"
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.last(), Some(&(changes, changes)), "{seen:?}");
    assert!(
        seen.iter().all(|(d, t)| *t == changes && d <= t),
        "{seen:?}"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_copy_of_the_binary_under_another_name_finds_its_helpers() {
    let lab = lab("tc-copy");
    let bin = lab.dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let copy = bin.join("mytopo");
    std::fs::copy(TOPO, &copy).expect("copy topo");
    let run = |args: &[&str]| {
        Command::new(&copy)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .expect("run the copy")
    };
    let out = run(&["up", path(&lab.file)]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[
        "exec", "--lab", &lab.name, "b", "--", "ping", "-c1", "-w2", "10.0.0.1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}
