//! Logs during and after a lab: `topo logs` on a running lab, the archive `down` makes (by a
//! rename, and by a copy from another file system), `topo logs` after `down`, retention,
//! `--discard-logs`, following across rotations, and a `down` that finishes what an
//! interrupted one left.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

/// A `TOPO_LOG_DIR` of the test's own (a tmpfs for [`ArchiveDir::tmpfs`], so that `down`
/// copies across file systems), unmounted and removed on drop.
struct ArchiveDir {
    path: PathBuf,
    mounted: bool,
}

impl ArchiveDir {
    fn new(lab: &str) -> ArchiveDir {
        let path =
            std::env::temp_dir().join(format!("topo-test-{lab}-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create archive dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        ArchiveDir {
            path,
            mounted: false,
        }
    }

    fn tmpfs(lab: &str) -> ArchiveDir {
        let mut dir = ArchiveDir::new(lab);
        nix::mount::mount(
            Some("tmpfs"),
            &dir.path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("mode=0755,size=16m"),
        )
        .expect("mount a tmpfs");
        dir.mounted = true;
        dir
    }

    /// `topo ARGS` with this archive (and `env`).
    fn topo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(TOPO)
            .args(args)
            .env("TOPO_LOG_DIR", &self.path)
            .envs(env.iter().copied())
            .output()
            .expect("run topo")
    }

    /// The lab's archives, oldest first.
    fn archives(&self, lab: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path.join(lab))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        // `-N` sorts after the same second without one, for N < 10.
        names.sort();
        names
    }
}

impl Drop for ArchiveDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The archive `down` reports: `lab LAB: logs kept in PATH`.
fn kept_in(down: &Output) -> PathBuf {
    let out = stdout(down);
    let line = out
        .lines()
        .find_map(|l| l.split_once(": logs kept in ").map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| panic!("down names the archive:\n{}", text(down)));
    PathBuf::from(line)
}

/// Waits until the node's log `name` holds `needle`, read with `topo logs`.
fn wait_for_log(archive: &ArchiveDir, lab: &str, node: &str, name: &str, needle: &str) {
    let found = eventually(10, || {
        let o = archive.topo(&["logs", "--lab", lab, node, name], &[]);
        stdout(&o).contains(needle).then_some(())
    });
    assert!(found.is_some(), "{lab} {node}/{name} logs {needle}");
}

const TALK: &str = "i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo line-$i; done; exec sleep 1000";

fn talker(name: &str) -> String {
    format!(
        "name: {name}\nnodes:\n  a:\n    exec: [\"echo exec-says-hello\"]\n    services:\n      talk: '{TALK}'\n  b: {{}}\n"
    )
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn logs_are_printed_then_archived_by_down_and_printed_from_the_archive() {
    let name = "lgarch";
    let archive = ArchiveDir::tmpfs(name);
    let lab = TestLab::new(name, &talker(name));
    // Brought up with a descriptor that the caller left open (as `flock FILE topo up` does):
    // the log writers, which live as long as the services, do not keep it.
    let held = lab.dir.join("held");
    std::fs::write(&held, "").expect("write");
    let up = Command::new("sh")
        .args(["-c", "exec 7<\"$1\"; exec \"$2\" up \"$3\"", "sh"])
        .args([path(&held), TOPO, path(&lab.file)])
        .output()
        .expect("run sh");
    assert!(up.status.success(), "{}", text(&up));
    wait_for_log(&archive, name, "a", "talk", "line-5");
    let writers = log_writers(name);
    assert!(!writers.is_empty(), "the service's log writer runs");
    for pid in writers {
        let fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fds")
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .collect();
        assert!(
            !fds.contains(&held),
            "log writer {pid} holds {held:?}: {fds:?}"
        );
    }
    // One log, the last lines of it, every log of the node, and the lab from its file.
    let o = archive.topo(&["logs", "--lab", name, "a", "talk"], &[]);
    assert_eq!(stdout(&o), "line-1\nline-2\nline-3\nline-4\nline-5\n");
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let o = archive.topo(&["logs", "--lab", name, "a", "talk", "-n", "2"], &[]);
    assert_eq!(stdout(&o), "line-4\nline-5\n");
    let o = archive.topo(&["logs", "--file", path(&lab.file), "a"], &[]);
    assert_eq!(
        stdout(&o),
        "exec| $ echo exec-says-hello\nexec| exec-says-hello\ntalk| line-1\ntalk| line-2\ntalk| line-3\ntalk| line-4\ntalk| line-5\n",
        "{}",
        text(&o)
    );
    let o = archive.topo(&["logs", "--lab", name, "a", "exec", "-n", "1"], &[]);
    assert_eq!(stdout(&o), "exec-says-hello\n");
    // Unknown names are bad input, with the closest name.
    let o = archive.topo(&["logs", "--lab", name, "a", "tlak"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("did you mean talk?"), "{}", text(&o));
    let o = archive.topo(&["logs", "--lab", name, "aa"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("did you mean a?"), "{}", text(&o));
    // A node without logs is no error.
    let o = archive.topo(&["logs", "--lab", name, "b"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stderr(&o).contains("has no logs"), "{}", text(&o));

    // What nodes leave in the run directory's kept/ goes along, links as links, without
    // FIFOs.
    let kept = Path::new("/run/topo").join(name).join("kept/a");
    std::fs::create_dir_all(&kept).expect("mkdir kept");
    std::fs::write(kept.join("state"), "node state\n").expect("write");
    std::fs::set_permissions(kept.join("state"), std::fs::Permissions::from_mode(0o640))
        .expect("chmod");
    let node_uid = 1 << 30;
    nix::unistd::chown(
        &kept.join("state"),
        Some(nix::unistd::Uid::from_raw(node_uid)),
        Some(nix::unistd::Gid::from_raw(node_uid)),
    )
    .expect("chown");
    std::os::unix::fs::symlink("/etc/hostname", kept.join("link")).expect("symlink");
    nix::unistd::mkfifo(
        &kept.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");

    let down = archive.topo(&["down", "--lab", name], &[]);
    assert!(down.status.success(), "{}", text(&down));
    let kept_at = kept_in(&down);
    assert_eq!(kept_at.parent(), Some(archive.path.join(name).as_path()));
    assert!(
        !Path::new("/run/topo").join(name).exists(),
        "run directory gone"
    );
    assert!(
        stderr(&down).contains("FIFOs or sockets were left out"),
        "{}",
        text(&down)
    );
    let logged = std::fs::read_to_string(kept_at.join("logs/a.talk.log")).expect("archived log");
    assert_eq!(logged, "line-1\nline-2\nline-3\nline-4\nline-5\n");
    let m = std::fs::symlink_metadata(kept_at.join("kept/a/state")).expect("kept file");
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (0o640, node_uid, node_uid)
    );
    let link = kept_at.join("kept/a/link");
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).expect("readlink"),
        Path::new("/etc/hostname")
    );
    assert!(std::fs::symlink_metadata(kept_at.join("kept/a/fifo")).is_err());

    // After down, `topo logs` reads the archive, and says so.
    let o = archive.topo(&["logs", "--lab", name, "a", "talk", "-n", "1"], &[]);
    assert_eq!(stdout(&o), "line-5\n", "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("lab {name} is down; logs of "))
            && err.contains(&kept_at.join("logs").display().to_string()),
        "{}",
        text(&o)
    );
    let o = archive.topo(&["logs", "--lab", name, "a"], &[]);
    assert!(stdout(&o).starts_with("exec| $ echo exec-says-hello\n"));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn down_keeps_the_newest_archives_and_discard_logs_keeps_none() {
    let name = "lgkeep";
    let archive = ArchiveDir::new(name);
    // Each round's service says something of its own.
    let yaml = format!(
        "name: {name}\nnodes:\n  a:\n    services:\n      talk: 'echo round-$(cat /proc/sys/kernel/random/uuid); exec sleep 1000'\n"
    );
    let lab = TestLab::new(name, &yaml);
    let keep = [("TOPO_LOG_ARCHIVES", "2")];
    let mut kept = Vec::new();
    let mut said = Vec::new();
    for _ in 0..3 {
        lab.up();
        wait_for_log(&archive, name, "a", "talk", "round-");
        said.push(stdout(
            &archive.topo(&["logs", "--lab", name, "a", "talk"], &[]),
        ));
        let down = archive.topo(&["down", "--lab", name], &keep);
        assert!(down.status.success(), "{}", text(&down));
        kept.push(kept_in(&down));
    }
    // The oldest of three is gone; the newest two are those of the last two rounds.
    let names: Vec<String> = kept[1..]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(archive.archives(name), names);
    assert!(!kept[0].exists());
    for (p, s) in kept[1..].iter().zip(&said[1..]) {
        assert_eq!(
            &std::fs::read_to_string(p.join("logs/a.talk.log")).unwrap(),
            s
        );
    }
    let o = archive.topo(&["logs", "--lab", name, "a", "talk"], &[]);
    assert_eq!(&stdout(&o), &said[2], "the newest archive is read");

    // --discard-logs keeps nothing new.
    lab.up();
    wait_for_log(&archive, name, "a", "talk", "round-");
    let down = archive.topo(&["down", "--lab", name, "--discard-logs"], &keep);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!stdout(&down).contains("logs kept"), "{}", text(&down));
    assert_eq!(archive.archives(name), names);

    // TOPO_LOG_ARCHIVES=0 keeps none at all.
    lab.up();
    wait_for_log(&archive, name, "a", "talk", "round-");
    let down = archive.topo(&["down", "--lab", name], &[("TOPO_LOG_ARCHIVES", "0")]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(archive.archives(name).is_empty());
    let o = archive.topo(&["logs", "--lab", name, "a"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("is not up and has no archived logs"),
        "{}",
        text(&o)
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn an_archive_that_cannot_be_written_is_a_warning_and_the_lab_goes_down() {
    let name = "lgwarn";
    let archive = ArchiveDir::new(name);
    std::fs::set_permissions(&archive.path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let lab = TestLab::new(name, &talker(name));
    lab.up();
    wait_for_log(&archive, name, "a", "talk", "line-5");
    let down = archive.topo(&["down", "--lab", name], &[]);
    assert!(down.status.success(), "{}", text(&down));
    let err = stderr(&down);
    assert!(
        err.contains(&format!(
            "topo: warning: logs of lab {name} not kept: refusing the log archive path {}",
            archive.path.display()
        )),
        "{}",
        text(&down)
    );
    assert!(netns_with_prefix(&format!("{name}-")).is_empty());
    assert!(!Path::new("/run/topo").join(name).exists());
    assert!(archive.archives(name).is_empty());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_down_finishes_the_archive_an_interrupted_down_left() {
    let name = "lgcrash";
    let archive = ArchiveDir::tmpfs(name);
    let lab = TestLab::new(name, &talker(name));
    lab.up();
    wait_for_log(&archive, name, "a", "talk", "line-5");
    // As a `down` killed at each step would leave it: the logs moved into an unsealed
    // archive, another archive sealed but not yet moved, and a copy that never completed.
    let run = Path::new("/run/topo").join(name);
    let unsealed = run.join("archiving/.20200102T000000Z");
    std::fs::create_dir_all(&unsealed).expect("mkdir");
    std::fs::rename(run.join("logs"), unsealed.join("logs")).expect("move logs");
    let sealed = run.join("archiving/20200101T000000Z/logs");
    std::fs::create_dir_all(&sealed).expect("mkdir");
    std::fs::write(sealed.join("a.talk.log"), "older\n").expect("write");
    let partial = archive.path.join(name).join(".partial-20200102T000000Z");
    std::fs::create_dir_all(partial.join("logs")).expect("mkdir");
    let down = archive.topo(&["down", "--lab", name], &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        archive.archives(name),
        ["20200101T000000Z", "20200102T000000Z"],
        "both finished, nothing else: {}",
        text(&down)
    );
    let dir = archive.path.join(name);
    assert_eq!(
        std::fs::read_to_string(dir.join("20200101T000000Z/logs/a.talk.log")).unwrap(),
        "older\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("20200102T000000Z/logs/a.talk.log")).unwrap(),
        "line-1\nline-2\nline-3\nline-4\nline-5\n"
    );
    assert!(!run.exists());
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn follow_goes_on_across_rotations_and_ends_on_sigint_or_a_closed_pipe() {
    let name = "lgfollow";
    let archive = ArchiveDir::new(name);
    // About 1 KiB a second, rotated at 1 KiB: several rotations while the test follows.
    let yaml = format!(
        "name: {name}\nlogs: {{max_size: 1Ki, keep: 1}}\nnodes:\n  a:\n    services:\n      count: 'i=0; while true; do i=$((i+1)); echo n-$i; sleep 0.01; done'\n"
    );
    let lab = TestLab::new(name, &yaml);
    lab.up();
    wait_for_log(&archive, name, "a", "count", "n-5\n");
    // -n across parts: consecutive lines.
    let o = archive.topo(&["logs", "--lab", name, "a", "count", "-n", "3"], &[]);
    let tail: Vec<u64> = numbers(&stdout(&o));
    assert_eq!(tail.len(), 3, "{}", text(&o));
    assert!(tail.windows(2).all(|w| w[1] == w[0] + 1), "{tail:?}");

    let mut child = Command::new(TOPO)
        .args(["logs", "--lab", name, "a", "count", "-f", "-n", "1"])
        .env("TOPO_LOG_DIR", &archive.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn topo logs -f");
    let out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_secs(6));
    let (size, rotated) = (
        std::fs::metadata(format!("/run/topo/{name}/logs/a.count.log")).map(|m| m.len()),
        Path::new(&format!("/run/topo/{name}/logs/a.count.log.1")).exists(),
    );
    assert!(rotated, "the log was rotated ({size:?})");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = child.wait().expect("wait");
    let lines = reader.join().expect("reader");
    assert_eq!(status.code(), Some(0), "SIGINT ends following: {status}");
    let got = numbers(&lines.join("\n"));
    assert!(got.len() > 150, "{} lines followed", got.len());
    let gaps: Vec<&[u64]> = got.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(gaps.is_empty(), "no line lost or repeated: {gaps:?}");

    // A reader that goes away ends `topo logs -f` with 141, without a word.
    // Close-on-exec: `topo` must not get the read end as well.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let mut child = Command::new(TOPO)
        .args(["logs", "--lab", name, "a", "count", "-f", "-n", "1"])
        .env("TOPO_LOG_DIR", &archive.path)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn topo logs -f");
    let mut first = String::new();
    let mut r = BufReader::new(std::fs::File::from(read));
    r.read_line(&mut first).expect("a line");
    assert!(first.starts_with("n-"), "{first}");
    drop(r);
    let status = eventually(10, || child.try_wait().ok().flatten());
    let _ = child.kill();
    let status = status.expect("topo logs -f ends once its reader is gone");
    assert_eq!(status.code(), Some(141));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert!(err.is_empty(), "{err}");

    // Following a lab that goes down ends when it does.
    let mut child = Command::new(TOPO)
        .args(["logs", "--lab", name, "a", "count", "-f", "-n", "0"])
        .env("TOPO_LOG_DIR", &archive.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn topo logs -f");
    std::thread::sleep(Duration::from_millis(500));
    assert!(archive.topo(&["down", "--lab", name], &[]).status.success());
    let status = eventually(10, || child.try_wait().ok().flatten());
    let _ = child.kill();
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert!(err.contains("went down"), "{err}");
}

/// The log writers (`topo-log`) of a lab that are running.
fn log_writers(lab: &str) -> Vec<i32> {
    let dir = format!("/run/topo/{lab}/logs/");
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "topo-log\n")
                && std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                    fds.flatten().any(|f| {
                        std::fs::read_link(f.path())
                            .is_ok_and(|t| t.to_string_lossy().starts_with(&dir))
                    })
                })
        })
        .collect()
}

/// The numbers of lines `n-N`.
fn numbers(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("n-")?.parse().ok())
        .collect()
}
