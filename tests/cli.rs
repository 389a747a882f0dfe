//! The command line without a lab: output into a closed pipe, commands run without root, and
//! the commands that need no kernel. Nothing here builds a lab.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const TOPO: &str = env!("CARGO_BIN_EXE_topo");

fn text(o: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(name)
        .display()
        .to_string()
}

/// Runs `topo ARGS` with its standard output a pipe whose reader is already gone.
fn into_closed_pipe(args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    Command::new(TOPO)
        .args(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run topo")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_141() {
    let triangle = example("triangle.yaml");
    let cases: [&[&str]; 6] = [
        &["gen", "chain", "--nodes", "2000"],
        &["gen", "clos", "--spines", "2", "--leaves", "4"],
        &["schema"],
        &["validate", &triangle],
        &["graph", &triangle],
        &["graph", &triangle, "--format", "mermaid"],
    ];
    for args in cases {
        let out = into_closed_pipe(args);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", text(&out));
        assert!(
            out.stderr.is_empty(),
            "{args:?}: nothing on standard error: {}",
            text(&out)
        );
    }
}

/// `topo ARGS` as a user other than root (uid 65534 when the tests run as root).
fn as_user(args: &[&str]) -> Output {
    let mut c = Command::new(TOPO);
    c.args(args).env("TOPO_RUN_DIR", std::env::temp_dir());
    if nix::unistd::geteuid().is_root() {
        c.uid(65534).gid(65534);
    }
    c.output().expect("run topo")
}

#[test]
fn commands_on_the_kernel_say_first_that_they_need_root() {
    let triangle = example("triangle.yaml");
    let cases: [&[&str]; 10] = [
        &["plan", &triangle],
        &["up", &triangle],
        &["down", "--lab", "triangle"],
        &["down", &triangle],
        &["status"],
        &["ls"],
        &["exec", "--lab", "triangle", "h1", "--", "true"],
        &["link", "--lab", "triangle", "r1:eth1", "down"],
        &["impair", "--lab", "triangle", "r1:eth1", "--clear"],
        &["capture", "--lab", "triangle", "r1:eth1", "-w", "/dev/null"],
    ];
    for args in cases {
        let out = as_user(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", text(&out));
        assert!(
            err.starts_with(&format!(
                "topo: error: must run as root: `topo {}`",
                args[0]
            )),
            "{args:?}: {}",
            text(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
}

#[test]
fn commands_without_kernel_access_work_without_root() {
    let triangle = example("triangle.yaml");
    let cases: [&[&str]; 4] = [
        &["validate", &triangle],
        &["graph", &triangle],
        &["schema"],
        &["gen", "ring", "--nodes", "3"],
    ];
    for args in cases {
        let out = as_user(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(!out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
}

/// `topo ARGS` as root with a run directory of its own, empty: no lab is up.
fn with_no_lab_up(args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("topo-cli-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("run dir");
    let out = Command::new(TOPO)
        .args(args)
        .env("TOPO_RUN_DIR", &dir)
        .output()
        .expect("run topo");
    let _ = std::fs::remove_dir(&dir);
    out
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn no_lab_up_hints_only_at_what_the_command_takes() {
    let cases: [(&[&str], &str); 5] = [
        (&["link", "r1:eth1", "down"], "name one with --lab NAME\n"),
        (
            &["impair", "r1:eth1", "--clear"],
            "name one with --lab NAME\n",
        ),
        (&["status"], "name one with --lab NAME or -f FILE\n"),
        (&["exec", "h1"], "name one with --lab NAME or -f FILE\n"),
        (&["down"], "name one with FILE or --lab NAME\n"),
    ];
    for (args, hint) in cases {
        let out = with_no_lab_up(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            err.starts_with("topo: error: no lab is up; ") && err.ends_with(hint),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// Every subcommand, as `topo --help` lists it.
fn subcommands() -> Vec<String> {
    let help = Command::new(TOPO).arg("--help").output().expect("run topo");
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn completion_scripts_name_every_command_and_bash_reads_its_own() {
    let commands = subcommands();
    assert!(commands.len() >= 12, "{commands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(TOPO)
            .args(["completions", shell])
            .output()
            .expect("run topo");
        assert!(out.status.success(), "{}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell}: no {c} in the script");
        }
        if shell == "bash" {
            let dir = std::env::temp_dir().join(format!("topo-compl-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("dir");
            let file = dir.join("topo.bash");
            std::fs::write(&file, script.as_bytes()).expect("write");
            // Sourced, then asked to complete `topo im`: bash itself runs the function.
            let probe = format!(
                ". {}; COMP_WORDS=(topo im); COMP_CWORD=1; _topo topo im topo; echo \"${{COMPREPLY[@]}}\"",
                file.display()
            );
            let got = Command::new("bash")
                .args(["-c", &probe])
                .output()
                .expect("bash");
            let _ = std::fs::remove_dir_all(&dir);
            assert_eq!(
                String::from_utf8_lossy(&got.stdout).trim(),
                "impair",
                "{}",
                text(&got)
            );
        }
    }
}

#[test]
fn the_manual_page_is_roff_and_lists_every_command() {
    let out = Command::new(TOPO).arg("man").output().expect("run topo");
    assert!(out.status.success(), "{}", text(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH topo 1"), "{page}");
    for c in subcommands() {
        assert!(page.contains(&c), "no {c} in the manual page");
    }
}

/// An archive of a lab's logs as `down` leaves it, in a directory of the test's own, with an
/// empty run directory: `topo logs` reads it without root and without a lab. Removed on drop.
struct FakeArchive {
    dir: PathBuf,
}

impl FakeArchive {
    fn new(tag: &str) -> FakeArchive {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("topo-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let older = dir.join("archive/lgcli/20261204T101530Z/logs");
        let newest = dir.join("archive/lgcli/20261204T101530Z-2/logs");
        for d in [&older, &newest, &dir.join("run")] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(older.join("a.http.log"), "old\n").expect("write");
        // A line the writer's rotation cut in two, and a last line without its newline.
        std::fs::write(newest.join("a.http.log.1"), "GET /1\nGET /").expect("write");
        std::fs::write(newest.join("a.http.log"), "2\nGET /3").expect("write");
        std::fs::write(newest.join("a.exec.log"), "$ true\n").expect("write");
        std::fs::write(newest.join("init.log"), "").expect("write");
        // topo refuses directories that others may write to (whatever the umask made).
        for d in [&older, &newest, &dir.join("run")] {
            for p in d.ancestors().take_while(|p| p.starts_with(&dir)) {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            }
        }
        FakeArchive { dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(TOPO);
        c.args(args)
            .env("TOPO_LOG_DIR", self.dir.join("archive"))
            .env("TOPO_RUN_DIR", self.dir.join("run"));
        c
    }

    fn topo(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run topo")
    }
}

impl Drop for FakeArchive {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn logs_of_a_lab_that_is_down_come_from_its_newest_archive() {
    let a = FakeArchive::new("logs");
    let out = a.topo(&["logs", "--lab", "lgcli", "a", "http"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "GET /1\nGET /2\nGET /3"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("topo: note: lab lgcli is down; logs of 2026-12-04 10:15:30 UTC from ")
            && err.contains("lgcli/20261204T101530Z-2/logs"),
        "{}",
        text(&out)
    );
    let out = a.topo(&["logs", "--lab", "lgcli", "a", "http", "-n", "2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "GET /2\nGET /3");
    // Every log of the node, prefixed, the exec: log first; the lab found without a name.
    let out = a.topo(&["logs", "a"]);
    assert_eq!(out.status.code(), Some(2), "no lab is up: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(labs with archived logs: lgcli)"),
        "{}",
        text(&out)
    );
    let out = a.topo(&["logs", "--lab", "lgcli", "a"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "exec| $ true\nhttp| GET /1\nhttp| GET /2\nhttp| GET /3\n"
    );
    // Unknown names are bad input, with the closest one.
    for (args, hint) in [
        (
            vec!["logs", "--lab", "lgcli", "a", "htp"],
            "did you mean http?",
        ),
        (vec!["logs", "--lab", "lgcli", "b"], "did you mean a?"),
        (
            vec!["logs", "--lab", "lgzz", "a"],
            "is not up and has no archived logs",
        ),
        (vec!["logs", "--lab", "../x", "a"], "is not a lab name"),
    ] {
        let out = a.topo(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(hint),
            "{args:?}: {}",
            text(&out)
        );
    }
    // Into a closed pipe: 141, nothing more on standard error than the note.
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    let out = a
        .command(&["logs", "--lab", "lgcli", "a"])
        .stdout(Stdio::from(write))
        .output()
        .expect("run topo");
    assert_eq!(out.status.code(), Some(141), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
