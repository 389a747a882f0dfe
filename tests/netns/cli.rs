//! The command line on a lab that is up: signals to `topo exec`, `down` of a lab that is not
//! up, what `status` shows of routes, output into a closed pipe, log colour, the time and
//! progress `up` reports, and a copy of the binary under another name.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
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
    // The program handles SIGTERM: topo waits for it and exits with its status. The first
    // command enters the node from outside, the next ones are started by the node's init:
    // its parent is 0 (outside the node), then 1.
    let script = "trap 'kill $pid; echo got TERM $(grep PPid /proc/$$/status); exit 7' TERM; \
                  sleep 30 & pid=$!; echo ready; wait";
    for parent in [0, 1] {
        let (code, rest) = exec_and_signal(&lab, script, Signal::SIGTERM);
        assert_eq!(code, Some(7), "topo exits with the program's status");
        assert_eq!(rest, format!("got TERM PPid: {parent}\n"));
    }
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
    // A lab's name given where a file goes: refused, with a hint to name it by --lab, and the
    // lab untouched; a name that is no lab gets the plain hint.
    let ns_before = netns_with_prefix("tc-down-");
    assert_eq!(ns_before.len(), 3, "{ns_before:?}");
    let out = topo(&["down", "tc-down"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "hint: there is no such file, but a lab named tc-down runs here: `--lab tc-down`"
        ),
        "{err}"
    );
    assert_eq!(netns_with_prefix("tc-down-"), ns_before);
    let out = topo(&["down", name]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hint: check the path"),
        "{}",
        text(&out)
    );
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

/// `status NODE` reads that node's namespace (and the bridges') alone; what it shows is what
/// the whole lab's status shows of that node and of the host's interfaces linked to it.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn the_status_of_one_node_is_that_node_in_the_status_of_the_lab() {
    let yaml = "name: tc-one
nodes:
  a: {interfaces: {eth0: {addresses: [192.0.2.1/24]}, eth1: {addresses: [198.51.100.1/24]}}}
  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}, eth1: {}}}
  c: {interfaces: {eth0: {addresses: [203.0.113.1/24]}}}
  d: {interfaces: {eth0: {addresses: [203.0.113.2/24]}}}
links:
  - endpoints: [a:eth0, b:eth0]
  - endpoints: [a:eth1, host:tc-one-h]
bridges:
  sw: {members: [c:eth0, d:eth0, b:eth1]}
";
    let lab = TestLab::new("tc-one", yaml);
    lab.up();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = topo(args);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let all = json(&["status", "--lab", &lab.name, "-o", "json"]);
    for node in ["a", "b", "c", "d"] {
        let one = json(&["status", "--lab", &lab.name, node, "-o", "json"]);
        let in_all: Vec<&serde_json::Value> = (all["nodes"].as_array().expect("nodes").iter())
            .filter(|n| n["name"] == node)
            .collect();
        assert_eq!(in_all.len(), 1, "{all}");
        assert_eq!(
            one["nodes"],
            serde_json::json!([in_all[0]]),
            "{node}: {one}"
        );
        // The host's end of a:eth1 is a's alone.
        let host: Vec<&serde_json::Value> = (all["host_interfaces"].as_array())
            .expect("host interfaces")
            .iter()
            .filter(|h| node == "a" && h["name"] == "tc-one-h")
            .collect();
        assert_eq!(
            one["host_interfaces"],
            serde_json::json!(host),
            "{node}: {one}"
        );
        assert_eq!(one["lab"], all["lab"]);
        assert_eq!(one["file"], all["file"]);
    }
    // The kernel's own state, not a record: an address added from inside b shows.
    let out = topo(&[
        "exec",
        "--lab",
        &lab.name,
        "b",
        "--",
        "ip",
        "addr",
        "add",
        "192.0.2.9/24",
        "dev",
        "eth0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let one = json(&["status", "--lab", &lab.name, "b", "-o", "json"]);
    let eth0 = (one["nodes"][0]["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter())
    .find(|i| i["name"] == "eth0")
    .cloned()
    .expect("eth0");
    assert_eq!(
        eth0["addresses"],
        serde_json::json!(["192.0.2.2/24", "192.0.2.9/24"]),
        "{one}"
    );
    // A node the lab lacks is still named as missing, with the nearest.
    let out = topo(&["status", "--lab", &lab.name, "e"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no node e"),
        "{}",
        text(&out)
    );
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
    // topo-core under another name is its own helper; the front under another name runs the
    // topo-core next to it.
    let core = PathBuf::from(TOPO).with_file_name("topo-core");
    let core_copy = bin.join("mytopo-core");
    std::fs::copy(&core, &core_copy).expect("copy topo-core");
    let front_copy = bin.join("mytopo");
    std::fs::copy(TOPO, &front_copy).expect("copy topo");
    std::fs::copy(&core, bin.join("topo-core")).expect("copy topo-core");
    let run = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .expect("run the copy")
    };
    let out = run(&core_copy, &["up", path(&lab.file)]);
    assert!(out.status.success(), "{}", text(&out));
    let ping = [
        "exec", "--lab", &lab.name, "b", "--", "ping", "-c1", "-w2", "10.0.0.1",
    ];
    let out = run(&front_copy, &ping);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&core_copy, &ping);
    assert!(out.status.success(), "{}", text(&out));
}

/// Brings the named labs down when dropped, also when a test fails (labs a test made under
/// `--name`, which a [`TestLab`] does not know of).
struct Labs(Vec<&'static str>);

impl Drop for Labs {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = topo(&["down", "--lab", name, "--missing-ok", "--discard-logs"]);
            let _ = std::fs::remove_dir_all(archive_root().join(name));
        }
    }
}

/// `topo ARGS` with `input` on its standard input.
fn topo_with_input(args: &[&str], input: &str, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(TOPO)
        .args(args)
        .envs(env.iter().copied())
        .env("TOPO_LOG_DIR", archive_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn topo");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait topo")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn exec_runs_a_command_without_dashes_in_one_node_or_several() {
    let lab = lab("nam-ex");
    lab.up();
    // Without `--`, options of the command are the command's.
    let out = topo(&[
        "exec", "--lab", "nam-ex", "a", "ip", "-o", "-4", "addr", "show", "dev", "eth0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10.0.0.1/24"),
        "{}",
        text(&out)
    );
    // `--` still works, and the status is the command's.
    let out = topo(&["exec", "--lab", "nam-ex", "b", "--", "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));

    // Every node: each line prefixed with its node, standard error kept apart; the status is
    // that of the first node in name order whose command failed.
    let script = "echo out $(cat /proc/sys/kernel/hostname); echo err >&2; \
                  case $(cat /proc/sys/kernel/hostname) in b) exit 5;; c) exit 6;; esac";
    let out = topo(&["exec", "--lab", "nam-ex", "--all", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let mut stdout: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    stdout.sort();
    assert_eq!(
        stdout,
        ["a| out a", "b| out b", "c| out c"],
        "{}",
        text(&out)
    );
    let mut stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    stderr.sort();
    assert_eq!(stderr, ["a| err", "b| err", "c| err"], "{}", text(&out));

    // All succeed: 0. The address each node has is the kernel's, read in that node.
    let out = topo(&[
        "exec", "--lab", "nam-ex", "--nodes", "b,c", "--", "ip", "-o", "-4", "addr", "show", "dev",
        "eth0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("b| ") && l.contains("10.0.0.2/24")),
        "{}",
        text(&out)
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("c| ") && l.contains("10.0.1.2/24")),
        "{}",
        text(&out)
    );

    // JSON: per node, in the order given.
    let out = topo(&[
        "exec",
        "--lab",
        "nam-ex",
        "--nodes",
        "c,a",
        "-o",
        "json",
        "sh",
        "-c",
        "echo $0; echo e >&2; exit 3",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = doc.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{doc}");
    for (row, node) in rows.iter().zip(["c", "a"]) {
        assert_eq!(row["node"], node, "{doc}");
        assert_eq!(row["status"], 3, "{doc}");
        assert_eq!(row["stdout"], "x\n", "{doc}");
        assert_eq!(row["stderr"], "e\n", "{doc}");
    }

    // A node the lab does not have: nothing runs anywhere, exit 2.
    let out = topo(&["exec", "--lab", "nam-ex", "--nodes", "a,zz", "echo", "ran"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no node zz"),
        "{}",
        text(&out)
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn one_file_runs_as_two_labs_side_by_side() {
    let lab = lab("nam-f");
    let _guard = Labs(vec!["nam-f1", "nam-f2"]);
    let file = path(&lab.file);
    for name in ["nam-f1", "nam-f2"] {
        let out = topo(&["up", file, "--name", name]);
        assert!(out.status.success(), "{}", text(&out));
    }
    for name in ["nam-f1", "nam-f2"] {
        assert_eq!(
            netns_with_prefix(&format!("{name}-")),
            [
                format!("{name}-a"),
                format!("{name}-b"),
                format!("{name}-c")
            ]
        );
        assert!(ping(&format!("{name}-a"), "10.0.0.2"), "{name}: a pings b");
    }
    // Nothing under the file's own name.
    assert!(netns_with_prefix("nam-f-").is_empty());
    // `--name` names the lab for the other commands as well.
    let out = topo(&[
        "exec", "-f", file, "--name", "nam-f2", "b", "ip", "-o", "link", "show", "eth0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = topo(&["down", file, "--name", "nam-f1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(netns_with_prefix("nam-f1-").is_empty());
    assert_eq!(
        netns_with_prefix("nam-f2-").len(),
        3,
        "the other lab is left"
    );
    assert!(ping("nam-f2-a", "10.0.0.2"));

    // A name that does not fit is refused as one in the file is: exit 2, nothing made.
    let out = topo(&["up", file, "--name", "nam-far-too-long"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--name nam-far-too-long") && err.contains("longer than 12"),
        "{}",
        text(&out)
    );
    assert!(netns_with_prefix("nam-far").is_empty());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn up_reads_the_file_from_standard_input() {
    let _guard = Labs(vec!["nam-in"]);
    let yaml = gen_chain("nam-in", 2, &[]);
    let out = topo_with_input(&["up", "-"], &yaml, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(netns_with_prefix("nam-in-"), ["nam-in-n0", "nam-in-n1"]);
    assert!(ping("nam-in-n0", "10.0.0.1"), "n0 pings n1");
    let out = topo(&["status", "--lab", "nam-in", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["file"], "<stdin>", "{doc}");
    // Again: nothing to change.
    let out = topo_with_input(&["up", "-"], &yaml, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no changes"),
        "{}",
        text(&out)
    );
    // An error names <stdin> with line and column.
    let out = topo_with_input(&["up", "-"], "name: nam-in\nnodes: [\n", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("<stdin>:"),
        "{}",
        text(&out)
    );
    let out = topo_with_input(&["down", "-"], &yaml, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(netns_with_prefix("nam-in-").is_empty());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn shell_prompt_names_the_node_and_term_is_passed_on() {
    let lab = lab("nam-sh");
    lab.up();
    let out = topo_with_input(
        &["shell", "--lab", "nam-sh", "b"],
        "echo \"ps1=$PS1\"; echo \"term=$TERM\"; cat /proc/sys/kernel/hostname\n",
        &[("TERM", "xterm-nam")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["ps1=b:$PWD# ", "term=xterm-nam", "b"],
        "{}",
        text(&out)
    );
    // `exec NODE` without a command is the same shell.
    let out = topo_with_input(
        &["exec", "--lab", "nam-sh", "c"],
        "echo \"ps1=$PS1\"\n",
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ps1=c:$PWD# \n",
        "{}",
        text(&out)
    );
}

/// What a command in a node sees of its confinement, environment and limits, one item a line
/// (the same in every run but for `PPid`).
const PROBE: &str = "grep -E '^(PPid|NoNewPrivs|Seccomp|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/$$/status; \
    umask; ulimit -Sc; ulimit -Hc; ulimit -Sn; pwd; env | sort; cat /proc/self/cgroup; \
    ls /sys/class/net; cat /proc/sys/kernel/hostname; readlink /proc/self/ns/net /proc/self/ns/mnt /proc/self/ns/user; \
    ls /proc/self/fd";

/// Runs [`PROBE`] in `node` through `topo exec`, with umask 027 and a core-file limit of
/// 0 / 4096 blocks set by the caller; its output, the `PPid` line apart.
fn probe(lab: &TestLab, node: &str) -> (String, String) {
    let script = format!(
        "umask 027; ulimit -Hc 4096; ulimit -Sc 0; exec {TOPO} exec --lab {} {node} -- sh -c \"$0\"",
        lab.name
    );
    let out = Command::new("/bin/sh")
        .args(["-c", &script, PROBE])
        .env("TOPO_LOG_DIR", archive_root())
        .stdin(Stdio::null())
        .output()
        .expect("run topo exec");
    assert!(out.status.success(), "{}", text(&out));
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (ppid, rest): (Vec<&str>, Vec<&str>) = all.lines().partition(|l| l.starts_with("PPid:"));
    (ppid.concat(), rest.join("\n"))
}

/// The nodes' inits start `topo exec`'s commands once a process entering from outside has
/// mounted the node's sysfs: the command is then the init's child, and sees exactly what a
/// command entering from outside sees (namespaces, capabilities, seccomp, cgroup, the node's
/// environment, the caller's umask and limits). A node with a seccomp profile of its own has
/// no exec socket; a removed socket or an init started again are handled.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn exec_starts_commands_from_the_nodes_init_confined_alike() {
    let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}"#;
    let yaml = "name: tc-chan\nnodes:\n  a: {env: {K: one}}\n  b: {userns: false}\n  c: {seccomp: ./profile.json}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n";
    let lab = TestLab::new("tc-chan", yaml);
    std::fs::write(lab.dir.join("profile.json"), profile).expect("write the profile");
    lab.up();
    for node in ["a", "b"] {
        // The first command enters from outside and mounts the node's sysfs.
        let (outside_ppid, outside) = probe(&lab, node);
        assert_eq!(outside_ppid, "PPid:\t0", "{node}: entered from outside");
        let (init_ppid, from_init) = probe(&lab, node);
        assert_eq!(init_ppid, "PPid:\t1", "{node}: started by the init");
        assert_eq!(from_init, outside, "{node}: the same view either way");
        for want in [
            "NoNewPrivs:\t1",
            "Seccomp:\t2",
            "0027",
            "\n0\n4096\n",
            "\n/\n",
        ] {
            assert!(from_init.contains(want), "{node}: {want:?} in\n{from_init}");
        }
        assert!(
            from_init.ends_with("\n0\n1\n2\n3"),
            "{node}: only the standard streams (and ls's own):\n{from_init}"
        );
        // A program that cannot be executed: 127 and the same message either way.
        let missing = lab.exec(node, &["no-such-program-tc"]);
        assert_eq!(missing.status.code(), Some(127), "{}", text(&missing));
        assert_eq!(
            String::from_utf8_lossy(&missing.stderr),
            "topo: error: exec no-such-program-tc: ENOENT: No such file or directory\n"
        );
    }
    let (_, a_view) = probe(&lab, "a");
    assert!(a_view.contains("\nK=one\n"), "{a_view}");
    // With a profile of its own, always from outside: the init does not serve commands.
    assert!(exec_socket_listens("tc-chan", "a"));
    assert!(!exec_socket_listens("tc-chan", "c"), "c has no exec socket");
    for _ in 0..2 {
        assert_eq!(probe(&lab, "c").0, "PPid:\t0");
    }
    // A changed environment starts a new init, whose socket takes the old one's place.
    lab.rewrite(&yaml.replace("K: one", "K: two"));
    lab.up();
    let _ = probe(&lab, "a");
    let (ppid, view) = probe(&lab, "a");
    assert_eq!(ppid, "PPid:\t1");
    assert!(view.contains("\nK=two\n"), "{view}");
    // A node taken out of the file takes its socket with it.
    let yaml_without_b = yaml
        .replace("  b: {userns: false}\n", "")
        .replace("  - endpoints: [a:eth0, b:eth0]\n", "")
        .replace("links:\n", "");
    lab.rewrite(&yaml_without_b);
    lab.up();
    assert!(
        !exec_socket_listens("tc-chan", "b"),
        "b's socket is gone with b"
    );
}

/// Many `topo exec` at once in one node, through its init: each gets its own command's
/// status and output, whatever order the commands end in, and a signal reaches only the
/// command of the `topo exec` it was sent to.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn concurrent_execs_through_one_init_each_get_their_own_status() {
    let lab = TestLab::new("tc-many", "name: tc-many\nnodes:\n  a: {}\n");
    lab.up();
    // The first command mounts the node's sysfs; the next ones go through the init.
    let o = lab.exec("a", &["true"]);
    assert!(o.status.success(), "{}", text(&o));
    let spawn = |script: String| {
        Command::new(TOPO)
            .args(["exec", "--lab", "tc-many", "a", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn topo exec")
    };
    // Later ones end first: sleeps shrink as the index grows.
    let children: Vec<_> = (0..24)
        .map(|i| {
            spawn(format!(
                "sleep 0.{:02}; echo out-{i} $(grep PPid /proc/$$/status); exit {}",
                48 - 2 * i,
                i + 1
            ))
        })
        .collect();
    // One more, killed by its caller's SIGTERM while the others run.
    let mut victim = spawn("echo ready; exec sleep 30".into());
    let mut first = String::new();
    BufReader::new(victim.stdout.as_mut().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    assert_eq!(first, "ready\n");
    kill(Pid::from_raw(victim.id() as i32), Signal::SIGTERM).expect("kill");
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(i as i32 + 1), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("out-{i} PPid: 1\n"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(victim.wait().expect("wait").code(), Some(128 + 15));
}

/// Two labs in a run directory of their own, and a process that holds one node's PID
/// namespace; every lab down, the process ended and the directory removed on drop.
struct EndingLabs {
    dir: std::path::PathBuf,
    run: std::path::PathBuf,
    holder: Option<std::process::Child>,
}

impl EndingLabs {
    fn topo(&self, args: &[&str]) -> std::process::Output {
        Command::new(TOPO)
            .args(args)
            .current_dir(&self.dir)
            .env("TOPO_RUN_DIR", &self.run)
            .env("TOPO_LOG_DIR", archive_root())
            .output()
            .expect("run topo")
    }

    fn release(&mut self) {
        if let Some(mut h) = self.holder.take() {
            let pid = Pid::from_raw(h.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

impl Drop for EndingLabs {
    fn drop(&mut self) {
        self.release();
        for lab in ["tc-end", "tc-one"] {
            // A reaper may still hold the lock for a moment: `down` waits for it.
            let _ = self.topo(&["down", "--lab", lab, "--missing-ok", "--discard-logs"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A lab taken down whose processes are still ending (`ending` in `topo ls`: its reaper
/// waits for them) is not counted as up: a command that names no lab takes the one that is.
/// The ending is held by a process entered into the node's PID namespace from outside
/// (`nsenter`) and stopped: killed with the node, it stays a zombie that its stopped parent
/// does not reap, and the node's init waits for it.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_lab_whose_processes_are_still_ending_is_not_the_one_lab_that_is_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("topo-test-ending-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    for d in [&dir, &run] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut labs = EndingLabs {
        dir,
        run,
        holder: None,
    };
    for lab in ["tc-end", "tc-one"] {
        let file = labs.dir.join(format!("{lab}.yaml"));
        std::fs::write(&file, format!("name: {lab}\nnodes:\n  a: {{}}\n")).expect("write");
        let out = labs.topo(&["up", path(&file)]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let status = labs.topo(&["status", "--lab", "tc-end", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let init = v["nodes"][0]["init_pid"].as_i64().expect("init pid");
    let holder = Command::new("nsenter")
        .args(["-t", &init.to_string(), "-p", "-m", "--", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .expect("nsenter");
    let nsenter = holder.id();
    labs.holder = Some(holder);
    let children = format!("/proc/{nsenter}/task/{nsenter}/children");
    let entered = eventually(5, || {
        let c = std::fs::read_to_string(&children).ok()?;
        let child = c.split_whitespace().next()?.to_string();
        // Entered and running `sleep`, not yet the forked nsenter.
        (std::fs::read_to_string(format!("/proc/{child}/comm"))
            .ok()?
            .trim()
            == "sleep")
            .then_some(child)
    });
    assert!(entered.is_some(), "nsenter did not start sleep in the node");
    kill(Pid::from_raw(nsenter as i32), Signal::SIGSTOP).expect("stop nsenter");

    let out = labs.topo(&["down", "--lab", "tc-end"]);
    assert!(out.status.success(), "{}", text(&out));
    let ls = labs.topo(&["ls", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("ls json");
    let states: Vec<(String, String)> = v
        .as_array()
        .expect("labs")
        .iter()
        .filter_map(|l| Some((l["name"].as_str()?.into(), l["state"].as_str()?.into())))
        .collect();
    assert_eq!(
        states,
        [
            ("tc-end".to_string(), "ending".to_string()),
            ("tc-one".to_string(), "up".to_string())
        ],
        "{}",
        text(&ls)
    );
    // Named by nothing: the one lab that is up.
    let out = labs.topo(&["status", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(v["lab"], "tc-one", "{}", text(&out));

    // Let go, the reaper ends and the lab's run directory goes.
    labs.release();
    let gone = eventually(15, || (!labs.run.join("tc-end").exists()).then_some(()));
    assert!(gone.is_some(), "the reaper did not finish");
    let out = labs.topo(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("lab tc-one: down"),
        "{}",
        text(&out)
    );
}
