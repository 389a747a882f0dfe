//! Attacks on the run directory from inside a node, and through a run directory prepared by
//! someone else: log floods, writes to the init's log, symbolic links in `TOPO_RUN_DIR`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::*;

const MIB: u64 = 1 << 20;

/// Total size of `NAME.log` and its rotated files in a lab's default run directory, and how
/// many files there are.
fn log_files(lab: &str, name: &str) -> (u64, Vec<String>) {
    let dir = format!("/run/topo/{lab}/logs");
    let mut total = 0;
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).expect("logs dir").flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n == format!("{name}.log") || n.starts_with(&format!("{name}.log.")) {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
            names.push(n);
        }
    }
    names.sort();
    (total, names)
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_flooding_service_and_exec_stay_within_the_log_cap() {
    // Default cap: 1 MiB per file, 2 rotated files kept.
    let yaml = "name: tl-flood\nnodes:\n  a:\n    exec: [\"head -c 5000000 /dev/zero\"]\n    services:\n      flood: exec yes flooding-the-run-directory\n";
    let lab = TestLab::new("tl-flood", yaml);
    lab.up();
    std::thread::sleep(Duration::from_secs(3));
    let cap = 3 * MIB + 64 * 1024;
    let (total, names) = log_files("tl-flood", "a.flood");
    assert!(
        total <= cap,
        "service log grew to {total} bytes (cap {cap}): {names:?}"
    );
    // (A rotation may be under way while the directory is read: one name may be missing.)
    assert!(
        names.contains(&"a.flood.log.2".to_string()),
        "the service log was rotated: {names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".3")), "{names:?}");
    let head = std::fs::read_to_string("/run/topo/tl-flood/logs/a.flood.log.2").expect("read");
    assert!(head.contains("flooding-the-run-directory\n"));
    let (total, names) = log_files("tl-flood", "a.exec");
    assert!(total <= cap, "exec log grew to {total} bytes: {names:?}");
    // The service is still running (its writer drains the pipe).
    let status = topo(&["status", "--lab", "tl-flood", "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(
        status["nodes"][0]["services"][0]["running"], true,
        "{status}"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn the_logs_key_sets_size_and_count() {
    let yaml = "name: tl-logkey\nlogs: {max_size: 64Ki, keep: 1}\nnodes:\n  a:\n    services:\n      flood: exec yes\n";
    let lab = TestLab::new("tl-logkey", yaml);
    lab.up();
    std::thread::sleep(Duration::from_secs(1));
    let (total, names) = log_files("tl-logkey", "a.flood");
    assert!(total <= 2 * 64 * 1024, "{total} bytes: {names:?}");
    assert!(names.contains(&"a.flood.log.1".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n == "a.flood.log" || n == "a.flood.log.1"),
        "{names:?}"
    );
}

/// Every file (not pipe, socket or device) that a process of the lab holds open, by path.
fn files_held_by_lab(lab: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (pid, comm) in lab_processes(lab) {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy().into_owned();
                if t.starts_with("/run/topo") {
                    out.push(format!("{comm} ({pid}) fd {:?}: {t}", e.file_name()));
                }
            }
        }
    }
    out
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_processes_cannot_write_the_init_log() {
    // Every descriptor of the node that leads to the lab's init log is written to: the init's
    // standard error, and the inherited fd 2 of the service itself.
    let attack = r#"echo attack-proc1 >> /proc/1/fd/2; echo attack-fd2 >&2; for f in /proc/[0-9]*/fd/*; do case "$(readlink $f)" in *init.log*) echo attack-$f >> $f;; esac; done; echo fd1=$(readlink /proc/self/fd/1) fd2=$(readlink /proc/self/fd/2); exec sleep 60"#;
    let yaml = format!(
        "name: tl-initlog\nnodes:\n  a:\n    services:\n      s: '{}'\n",
        attack.replace('\'', "''")
    );
    let lab = TestLab::new("tl-initlog", &yaml);
    lab.up();
    let init_log = "/run/topo/tl-initlog/logs/init.log";
    let service_log = "/run/topo/tl-initlog/logs/a.s.log";
    let logged = eventually(5, || {
        std::fs::read_to_string(service_log)
            .ok()
            .filter(|l| l.contains("fd1="))
    })
    .expect("the service ran");
    // The same from `topo exec`.
    let out = lab.exec(
        "a",
        &["/bin/sh", "-c", attack.trim_end_matches("; exec sleep 60")],
    );
    let init = std::fs::read_to_string(init_log).unwrap_or_default();
    assert!(
        !init.contains("attack"),
        "a node process wrote to the init log: {init}"
    );
    // No process of the node holds a file of the run directory: its output is a pipe.
    assert!(
        logged.contains("fd1=pipe:") && logged.contains("fd2=pipe:"),
        "{logged}"
    );
    let held = files_held_by_lab("tl-initlog");
    assert!(
        held.is_empty(),
        "node processes hold run directory files: {held:?}"
    );
    assert!(
        out.status.success() || !out.stdout.is_empty(),
        "{}",
        text(&out)
    );
}

/// A scratch `TOPO_RUN_DIR` and a victim file outside it; brings its lab down on drop.
struct Scratch {
    dir: PathBuf,
    run: PathBuf,
    lab: String,
}

impl Scratch {
    fn new(lab: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("topo-test-rundir-{lab}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        std::fs::create_dir_all(run.join(lab)).expect("mkdir");
        for d in [&dir, &run, &run.join(lab)] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Scratch {
            dir,
            run,
            lab: lab.to_string(),
        }
    }

    fn topo(&self, args: &[&str]) -> Output {
        Command::new(TOPO)
            .args(args)
            .env("TOPO_RUN_DIR", &self.run)
            .output()
            .expect("run topo")
    }

    fn victim(&self, name: &str) -> PathBuf {
        let v = self.dir.join(name);
        std::fs::write(&v, "victim\n").expect("write victim");
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.topo(&["down", "--lab", &self.lab]);
        let _ = topo(&["down", "--lab", &self.lab]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn assert_refused(out: &Output, needle: &str, path: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up must fail:\n{}", text(out));
    assert!(
        err.contains(needle) && err.contains(&path.display().to_string()),
        "a clear error naming {}:\n{err}",
        path.display()
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn symlinks_in_the_run_directory_are_not_followed() {
    let yaml = "name: tl-rundir\nnodes:\n  a: {}\n";
    let lab = TestLab::new("tl-rundir", yaml);
    let s = Scratch::new("tl-rundir");
    let labdir = s.run.join("tl-rundir");
    // The hosts file is a link to a file outside: refused, the victim untouched.
    let hosts_victim = s.victim("hosts-victim");
    std::os::unix::fs::symlink(&hosts_victim, labdir.join("hosts")).expect("symlink");
    // The temporary record is a link too: it is replaced, never written through.
    let tmp_victim = s.victim("tmp-victim");
    std::os::unix::fs::symlink(&tmp_victim, labdir.join("state.tmp")).expect("symlink");
    let out = s.topo(&["up", path(&lab.file)]);
    assert_refused(&out, "symbolic link", &labdir.join("hosts"));
    assert_eq!(std::fs::read_to_string(&hosts_victim).unwrap(), "victim\n");
    // Without the hosts link, up works and the state.tmp link is replaced, not followed.
    std::fs::remove_file(labdir.join("hosts")).expect("rm");
    let out = s.topo(&["up", path(&lab.file)]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&tmp_victim).unwrap(), "victim\n");
    assert_eq!(std::fs::read_to_string(&hosts_victim).unwrap(), "victim\n");
    assert!(std::fs::symlink_metadata(labdir.join("hosts"))
        .expect("hosts")
        .is_file());
    assert!(s
        .topo(&["down", "--lab", "tl-rundir", "--wait"])
        .status
        .success());
    // The logs directory as a link to elsewhere: refused.
    std::fs::create_dir_all(&labdir).expect("mkdir");
    let elsewhere = s.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, labdir.join("logs")).expect("symlink");
    let out = s.topo(&["up", path(&lab.file)]);
    assert_refused(&out, "symbolic link", &labdir.join("logs"));
    assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0);
    // The lab's directory as a link: refused.
    std::fs::remove_dir_all(&labdir).ok();
    std::fs::remove_file(&labdir).ok();
    std::os::unix::fs::symlink(&elsewhere, &labdir).expect("symlink");
    let out = s.topo(&["up", path(&lab.file)]);
    assert_refused(&out, "symbolic link", &labdir);
    assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0);
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_run_directory_writable_by_others_is_refused() {
    let yaml = "name: tl-runmode\nnodes:\n  a: {}\n";
    let lab = TestLab::new("tl-runmode", yaml);
    let s = Scratch::new("tl-runmode");
    std::fs::set_permissions(&s.run, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = s.topo(&["up", path(&lab.file)]);
    assert_refused(&out, "writable by group or others", &s.run);
    // Owned by another user.
    std::fs::set_permissions(&s.run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::chown(&s.run, Some(65534), Some(65534)).expect("chown");
    let out = s.topo(&["up", path(&lab.file)]);
    assert_refused(&out, "owned by uid 65534", &s.run);
}
