//! Crash safety: `topo up` killed with SIGKILL at 30 points spread over its run, each time
//! followed either by a `down` that leaves nothing, or by an `up` that finishes the lab.

use std::time::{Duration, Instant};

use crate::common::*;

const LAB: &str = "tn-crash";

/// Nothing of the lab is left: no namespace, host link, run directory, cgroup or process.
fn assert_nothing_left(round: usize) {
    assert!(
        netns_with_prefix(&format!("{LAB}-")).is_empty(),
        "round {round}: namespaces left: {:?}",
        netns_with_prefix(LAB)
    );
    assert!(
        netns_with_prefix(&format!("{LAB}.")).is_empty(),
        "round {round}: bridge namespace left"
    );
    assert!(
        !std::path::Path::new("/run/topo").join(LAB).exists(),
        "round {round}: run directory left"
    );
    assert!(
        mounts_with(&format!("/run/netns/{LAB}-")).is_empty(),
        "round {round}: mounts left"
    );
    for h in ["pids", "memory", "cpu", ""] {
        let p = std::path::Path::new("/sys/fs/cgroup")
            .join(h)
            .join("topo")
            .join(LAB);
        assert!(!p.exists(), "round {round}: cgroup {} left", p.display());
    }
    let procs = lab_processes(LAB);
    assert!(procs.is_empty(), "round {round}: processes left: {procs:?}");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn up_killed_at_30_points_is_finished_by_up_or_cleaned_by_down() {
    let gen = topo(&["gen", "chain", "--nodes", "50", "--name", LAB]);
    assert!(gen.status.success(), "{}", text(&gen));
    let mut yaml = String::from_utf8_lossy(&gen.stdout).into_owned();
    // Limits too, so cgroups are part of what a crash may leave half-made.
    yaml = yaml.replacen("defaults:", "defaults:\n  limits: {pids: 64}", 1);
    let lab = TestLab::new(LAB, &yaml);
    let started = Instant::now();
    lab.up();
    let full = started.elapsed();
    assert!(lab.down().status.success());
    for round in 0..30 {
        let at = full.mul_f64((round as f64 + 0.5) / 30.0);
        let mut child = std::process::Command::new(TOPO)
            .args(["up", path(&lab.file)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn up");
        std::thread::sleep(at);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        if round % 2 == 0 {
            let out = lab.down();
            assert!(
                out.status.success(),
                "round {round} ({at:?}): down failed: {}",
                text(&out)
            );
            assert_nothing_left(round);
        } else {
            let out = topo(&["up", path(&lab.file)]);
            assert!(
                out.status.success(),
                "round {round} ({at:?}): up after a kill failed: {}",
                text(&out)
            );
            let plan = lab.plan();
            assert!(
                plan.contains("no changes"),
                "round {round}: up finished the lab, yet:\n{plan}"
            );
            assert!(
                ping(&lab.ns("n0"), "10.0.0.97"),
                "round {round}: n0 reaches n49 through the chain"
            );
            let inits = std::fs::read_dir("/proc")
                .expect("proc")
                .flatten()
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "topo-init")
                })
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("cgroup"))
                        .is_ok_and(|c| c.contains(&format!("/topo/{LAB}/")))
                })
                .count();
            assert_eq!(inits, 50, "round {round}: one init per node");
            assert!(lab.down().status.success());
            assert_nothing_left(round);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn sigterm_or_sigint_during_up_stops_and_says_the_lab_is_partly_up() {
    let name = "tn-sig";
    let gen = topo(&["gen", "chain", "--nodes", "150", "--name", name]);
    let lab = TestLab::new(name, &String::from_utf8_lossy(&gen.stdout));
    for (signal, code) in [
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGINT, 130),
    ] {
        let child = spawn_up(&lab);
        // Wait until it has started making the lab, then signal it.
        let started = eventually(10, || {
            (!netns_with_prefix(&format!("{name}-")).is_empty()).then_some(())
        });
        assert!(started.is_some());
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .expect("signal");
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            eprintln!("up finished before {signal} arrived; nothing to check");
        } else {
            assert_eq!(out.status.code(), Some(code), "{signal}: {err}");
            assert!(
                err.contains("partly up") && err.contains("topo down --lab tn-sig"),
                "{signal}: {err}"
            );
        }
        lab.up();
        assert!(lab.plan().contains("no changes"));
        assert!(lab.down().status.success());
        assert!(netns_with_prefix(&format!("{name}-")).is_empty());
    }
}

/// A signal while `up` makes a large lab's namespaces stops it there: it neither makes the
/// rest nor starts their inits first, and `down` removes what it made.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_signal_while_namespaces_are_made_stops_making_more() {
    const NODES: usize = 1000;
    let name = "tn-sigmk";
    let gen = topo(&[
        "gen",
        "chain",
        "--nodes",
        &NODES.to_string(),
        "--name",
        name,
        "--bare",
    ]);
    assert!(gen.status.success(), "{}", text(&gen));
    let lab = TestLab::new(name, &String::from_utf8_lossy(&gen.stdout));
    // Every name's placeholder file exists from the start: a namespace is made when it is
    // mounted on its placeholder.
    let made = || mounts_with(&format!("/run/netns/{name}-")).len();
    let child = spawn_up(&lab);
    let started = eventually(30, || (made() >= 20).then_some(()));
    assert!(started.is_some(), "up made no namespaces");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("signal");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let at_exit = made();
    assert!(
        at_exit < NODES,
        "up made all {NODES} namespaces before it stopped"
    );
    eprintln!("namespaces made when up stopped: {at_exit} of {NODES}");
    assert!(lab.down().status.success());
    assert!(made() == 0, "namespaces left mounted");
    assert!(netns_with_prefix(&format!("{name}-")).is_empty());
    let ended = eventually(20, || lab_processes(name).is_empty().then_some(()));
    assert!(ended.is_some(), "processes left: {:?}", lab_processes(name));
}

/// `topo up` of the lab's file, running, with its standard error piped.
fn spawn_up(lab: &TestLab) -> std::process::Child {
    std::process::Command::new(TOPO)
        .args(["up", path(&lab.file)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn up")
}
