//! `topo up --foreground` run as a supervisor runs it: a child process that holds its lab until
//! a signal, with `topo wait` and `--ready-file` saying when the lab is up and ready. The
//! assertions read the kernel (namespaces, processes, cgroups) and the files the foreground
//! writes, never topo's records.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;

/// A `topo up --foreground` child, its output in files of the lab's directory; killed
/// (SIGKILL) when dropped while it still runs, so that the lab's guard can take the lab down.
struct Foreground {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Foreground {
    fn start(lab: &TestLab, extra: &[&str]) -> Foreground {
        let stdout = lab.dir.join("fg.out");
        let stderr = lab.dir.join("fg.err");
        let child = Command::new(TOPO)
            .args(["up", path(&lab.file), "--foreground"])
            .args(extra)
            .env("TOPO_LOG_DIR", archive_root())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start topo up --foreground");
        Foreground {
            child,
            stdout,
            stderr,
        }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).expect("signal the foreground");
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Its exit status, within `secs` seconds (a panic otherwise).
    fn wait(&mut self, secs: u64) -> ExitStatus {
        match eventually(secs, || self.exited()) {
            Some(s) => s,
            None => panic!("the foreground still runs after {secs}s\n{}", self.output()),
        }
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `topo wait --lab LAB ARGS…`
fn wait(lab: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["wait", "--lab", lab];
    all.extend_from_slice(args);
    topo(&all)
}

/// The PIDs and names of the lab's live processes (in its cgroups), sorted.
fn processes(lab: &str) -> Vec<(String, String)> {
    let mut v = lab_processes(lab);
    v.sort();
    v
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn foreground_is_ready_for_wait_and_sigterm_takes_the_lab_down() {
    const LAB: &str = "mfg-fg1";
    let lab = TestLab::new(LAB, &gen_chain(LAB, 3, &[]));
    let ready = lab.dir.join("ready");
    let mut fg = Foreground::start(&lab, &["--ready-file", path(&ready)]);
    let out = wait(LAB, &["--timeout", "30s"]);
    assert!(
        out.status.success(),
        "topo wait: {}\n{}",
        text(&out),
        fg.output()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("lab {LAB}: up and ready\n")
    );
    // Up as the kernel has it: a namespace and a running init per node.
    assert_eq!(
        netns_with_prefix(&format!("{LAB}-")),
        [
            format!("{LAB}-n0"),
            format!("{LAB}-n1"),
            format!("{LAB}-n2")
        ]
    );
    let pids = processes(LAB);
    let inits = pids.iter().filter(|(_, c)| c == "topo-init").count();
    assert_eq!(inits, 3, "node inits: {pids:?}");
    assert!(ping(&format!("{LAB}-n0"), "10.255.0.2"), "n0 reaches n2");
    assert_eq!(
        std::fs::read_to_string(&ready).expect("the ready file"),
        format!("{LAB}\n")
    );
    assert!(fg.exited().is_none(), "it stays running:\n{}", fg.output());

    fg.signal(Signal::SIGTERM);
    let status = fg.wait(30);
    assert_eq!(status.code(), Some(0), "{}", fg.output());
    assert_lab_gone(LAB, &pids);
    assert!(!ready.exists(), "the ready file is removed");
    let err = fg.stderr();
    assert!(err.contains("SIGTERM: taking the lab down"), "{err}");
    let stdout = std::fs::read_to_string(&fg.stdout).unwrap_or_default();
    assert!(
        stdout.contains(&format!(
            "lab {LAB}: down (3 namespaces, 0 host links, 3 node processes removed)"
        )),
        "{stdout}"
    );
    let out = wait(LAB, &["--timeout", "0"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

/// A lab whose node `s1` has a service that is ready only after 2 s: it then adds
/// 198.51.100.7 to its loopback, which its `ready:` check looks for.
fn slow_lab(name: &str) -> String {
    format!(
        r#"name: {name}
nodes:
  s1:
    services:
      slow:
        command: "sleep 2; ip addr add 198.51.100.7/32 dev lo; exec sleep 600"
        ready: {{command: "ip -br addr show dev lo | grep -q 198.51.100.7", timeout: 30s, interval: 50ms}}
"#
    )
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn the_ready_file_appears_only_once_the_lab_is_ready() {
    const LAB: &str = "mfg-fg2";
    let lab = TestLab::new(LAB, &slow_lab(LAB));
    let ready = lab.dir.join("ready");
    // A stale file from an earlier run says nothing: it is removed at the start.
    std::fs::write(&ready, "stale\n").expect("write a stale ready file");
    let started = Instant::now();
    let mut fg = Foreground::start(&lab, &["--ready-file", path(&ready)]);
    let mut asked_wait = false;
    let appeared = loop {
        let exists = ready.exists();
        let stale = exists && std::fs::read_to_string(&ready).is_ok_and(|t| t == "stale\n");
        if exists && !stale {
            break started.elapsed();
        }
        if let Some(status) = fg.exited() {
            panic!("the foreground exited with {status}:\n{}", fg.output());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no ready file after 30s:\n{}",
            fg.output()
        );
        if !asked_wait && !stale && netns_with_prefix(&format!("{LAB}-")).len() == 1 {
            // The node is there, its service not ready: not ready for `wait` either.
            let out = wait(LAB, &["--timeout", "0"]);
            if ready.exists() {
                continue;
            }
            assert_eq!(out.status.code(), Some(3), "{}", text(&out));
            asked_wait = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // When the file appeared, the service's ready condition held in the kernel.
    let lo = addresses(&format!("{LAB}-s1"), "lo");
    assert!(
        lo.contains(&"198.51.100.7/32".to_string()),
        "lo of s1 when the ready file appeared: {lo:?}"
    );
    assert!(
        appeared >= Duration::from_secs(2),
        "the ready file appeared after {appeared:?}, before the service could be ready"
    );
    assert!(asked_wait, "topo wait was asked while the lab came up");
    let stdout = std::fs::read_to_string(&fg.stdout).unwrap_or_default();
    assert!(
        stdout.contains(&format!("lab {LAB}: up, ")),
        "up's report comes before the ready file:\n{stdout}"
    );
    let out = wait(LAB, &["--timeout", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let pids = processes(LAB);
    fg.signal(Signal::SIGINT);
    assert_eq!(fg.wait(30).code(), Some(0), "{}", fg.output());
    assert_lab_gone(LAB, &pids);
    assert!(!ready.exists());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn wait_times_out_with_status_3_and_a_signal_during_up_takes_the_lab_down() {
    const LAB: &str = "mfg-fg3";
    // The node comes up, its service never gets ready (within its timeout of an hour, which a signal does not wait out).
    let yaml = format!(
        r#"name: {LAB}
nodes:
  s1:
    services:
      never:
        command: "exec sleep 600"
        ready: {{command: "false", timeout: 3600s}}
"#
    );
    let lab = TestLab::new(LAB, &yaml);
    let out = wait(LAB, &["--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "topo: error: lab {LAB} is not up and ready after 200ms: it has no run directory"
        )),
        "{}",
        text(&out)
    );
    let ready = lab.dir.join("ready");
    let mut fg = Foreground::start(&lab, &["--ready-file", path(&ready)]);
    let node_up = eventually(30, || {
        (netns_with_prefix(&format!("{LAB}-")).len() == 1
            && processes(LAB).iter().any(|(_, c)| c == "sleep"))
        .then_some(())
    });
    assert!(
        node_up.is_some(),
        "the node never started:\n{}",
        fg.output()
    );
    let t = Instant::now();
    let out = wait(LAB, &["--timeout", "1s"]);
    let waited = t.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "waited {waited:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not up and ready after 1s"),
        "{}",
        text(&out)
    );
    assert!(!ready.exists(), "no ready file for a lab that is not ready");
    let pids = processes(LAB);
    fg.signal(Signal::SIGTERM);
    assert_eq!(fg.wait(30).code(), Some(0), "{}", fg.output());
    assert!(
        fg.stderr()
            .contains("SIGTERM during up: taking the lab down"),
        "{}",
        fg.output()
    );
    assert_lab_gone(LAB, &pids);
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_node_whose_init_dies_ends_the_foreground_with_status_1_and_the_lab_down() {
    const LAB: &str = "mfg-fg4";
    let lab = TestLab::new(LAB, &gen_chain(LAB, 3, &[]));
    let ready = lab.dir.join("ready");
    let mut fg = Foreground::start(&lab, &["--ready-file", path(&ready)]);
    let out = wait(LAB, &["--timeout", "30s"]);
    assert!(out.status.success(), "{}\n{}", text(&out), fg.output());
    // A second `up` that restarts every node (a changed `env`) is no death.
    lab.rewrite(&gen_chain(LAB, 3, &[]).replacen(
        "defaults:",
        "defaults:\n  env: {RESTARTED: \"1\"}",
        1,
    ));
    lab.up();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        fg.exited().is_none(),
        "an up that restarts nodes:\n{}",
        fg.output()
    );
    let pids = processes(LAB);
    let (victim, _) = pids
        .iter()
        .find(|(_, comm)| comm == "topo-init")
        .expect("a node init");
    kill(
        Pid::from_raw(victim.parse().expect("a PID")),
        Signal::SIGKILL,
    )
    .expect("kill a node's init");
    let status = fg.wait(30);
    assert_eq!(status.code(), Some(1), "{}", fg.output());
    let err = fg.stderr();
    assert!(
        err.contains(&format!("(pid {victim}) exited: taking the lab down")),
        "{err}"
    );
    assert_lab_gone(LAB, &pids);
    assert!(!ready.exists());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_failed_up_exits_non_zero_and_leaves_nothing_but_bad_input_touches_nothing() {
    const LAB: &str = "mfg-fg5";
    // The second node's oneshot service fails: `up` fails after it made the nodes.
    let yaml = format!(
        r#"name: {LAB}
nodes:
  a: {{}}
  b:
    services:
      setup: {{type: oneshot, command: "exit 7"}}
"#
    );
    let lab = TestLab::new(LAB, &yaml);
    let mut fg = Foreground::start(&lab, &[]);
    let status = fg.wait(60);
    assert_eq!(status.code(), Some(1), "{}", fg.output());
    let err = fg.stderr();
    assert!(err.contains("up failed: taking the lab down"), "{err}");
    assert_lab_gone(LAB, &[]);

    // An invalid file: exit 2, nothing made, a lab that is up is left as it was.
    lab.rewrite(&gen_chain(LAB, 2, &[]));
    lab.up();
    let before = netns_with_prefix(&format!("{LAB}-"));
    assert_eq!(before.len(), 2);
    let bad = lab.dir.join("bad.yaml");
    std::fs::write(&bad, format!("name: {LAB}\nnodes:\n  a: {{color: red}}\n")).expect("write");
    let out = Command::new(TOPO)
        .args(["up", path(&bad), "--foreground"])
        .env("TOPO_LOG_DIR", archive_root())
        .output()
        .expect("run topo");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(netns_with_prefix(&format!("{LAB}-")), before);
    assert!(Path::new("/run/topo").join(LAB).join("ready").exists());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn signals_during_the_teardown_never_cut_it_short() {
    const LAB: &str = "mfg-fg6";
    let lab = TestLab::new(LAB, &gen_chain(LAB, 40, &[]));
    let mut fg = Foreground::start(&lab, &[]);
    let out = wait(LAB, &["--timeout", "60s"]);
    assert!(out.status.success(), "{}\n{}", text(&out), fg.output());
    let pids = processes(LAB);
    // SIGTERM, then SIGTERM and SIGINT every millisecond until it has exited.
    fg.signal(Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = fg.exited() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", fg.output());
        let _ = kill(Pid::from_raw(fg.child.id() as i32), Signal::SIGTERM);
        let _ = kill(Pid::from_raw(fg.child.id() as i32), Signal::SIGINT);
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(status.code(), Some(0), "{}", fg.output());
    assert_lab_gone(LAB, &pids);
    let out = topo(&["down", "--lab", LAB]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing left to take down: {}",
        text(&out)
    );
}
