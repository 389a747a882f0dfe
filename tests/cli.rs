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
    let cases: [&[&str]; 12] = [
        &["plan", &triangle],
        &["shell", "--lab", "triangle", "h1"],
        &["exec", "--lab", "triangle", "--all", "true"],
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
    let cases: [(&[&str], &str); 7] = [
        (
            &["link", "r1:eth1", "down"],
            "name one with --lab NAME or -f FILE\n",
        ),
        (
            &["impair", "r1:eth1", "--clear"],
            "name one with --lab NAME or -f FILE\n",
        ),
        (&["shell", "h1"], "name one with --lab NAME or -f FILE\n"),
        (
            &["exec", "--all", "true"],
            "name one with --lab NAME or -f FILE\n",
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
            // Sourced, then asked to complete `topo impa`: bash itself runs the function.
            let probe = format!(
                ". {}; COMP_WORDS=(topo impa); COMP_CWORD=1; _topo topo impa topo; echo \"${{COMPREPLY[@]}}\"",
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

/// `topo ARGS` in `dir`, with `input` on its standard input.
fn in_dir(dir: &std::path::Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(TOPO)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn topo");
    let mut stdin = child.stdin.take().expect("stdin");
    // A command that reads no standard input may have ended already.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("wait topo")
}

/// A fresh empty directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("topo-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SMALL: &str = "name: two\nnodes:\n  a: {}\n  b: {}\n";

#[test]
fn a_dash_reads_the_file_from_standard_input() {
    let dir = TempDir::new("stdin");
    let out = in_dir(&dir.0, &["validate", "-"], SMALL);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<stdin>: ok: lab two, 2 nodes, 0 links, 0 bridges\n"
    );
    // As -f too, and for graph.
    let out = in_dir(&dir.0, &["graph", "-f", "-"], SMALL);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("graph \"two\""),
        "{}",
        text(&out)
    );
    // Errors name <stdin>, with line and column.
    let out = in_dir(
        &dir.0,
        &["validate", "-"],
        "name: two\nnodes:\n  a: {bogus: 1}\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("<stdin>:3:7: error: "), "{}", text(&out));
    let out = in_dir(&dir.0, &["validate", "-"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("<stdin>:1:1: "),
        "{}",
        text(&out)
    );
}

#[test]
fn without_a_file_the_directory_s_topology_is_read() {
    let dir = TempDir::new("default");
    // None: exit 2, with a hint.
    let out = in_dir(&dir.0, &["validate"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no topo.yaml, topo.yml or *.topo.yaml"),
        "{}",
        text(&out)
    );
    // The only *.topo.yaml.
    std::fs::write(dir.0.join("x.topo.yaml"), SMALL.replace("two", "x")).expect("write");
    let out = in_dir(&dir.0, &["validate"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "x.topo.yaml: ok: lab x, 2 nodes, 0 links, 0 bridges\n",
        "{}",
        text(&out)
    );
    // Two of them: which is meant is not guessed.
    std::fs::write(dir.0.join("y.topo.yml"), SMALL.replace("two", "y")).expect("write");
    let out = in_dir(&dir.0, &["graph"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("x.topo.yaml, y.topo.yml"),
        "{}",
        text(&out)
    );
    // topo.yml, then topo.yaml first.
    std::fs::write(dir.0.join("topo.yml"), SMALL.replace("two", "yml")).expect("write");
    let out = in_dir(&dir.0, &["validate"], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("topo.yml: ok: lab yml,"),
        "{}",
        text(&out)
    );
    std::fs::write(dir.0.join("topo.yaml"), SMALL.replace("two", "yaml")).expect("write");
    let out = in_dir(&dir.0, &["validate"], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("topo.yaml: ok: lab yaml,"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_name_given_on_the_command_line_is_checked_as_the_file_s() {
    let dir = TempDir::new("name");
    let out = in_dir(&dir.0, &["validate", "-", "--name", "other-1"], SMALL);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<stdin>: ok: lab other-1, 2 nodes, 0 links, 0 bridges\n",
        "{}",
        text(&out)
    );
    for (bad, why) in [
        ("a-name-too-long", "longer than 12 characters"),
        ("Caps", "characters other than a-z"),
        ("", "lab name is empty"),
    ] {
        let out = in_dir(&dir.0, &["validate", "-", "--name", bad], SMALL);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("topo: error: --name {bad}: ")) && err.contains(why),
            "{bad}: {}",
            text(&out)
        );
    }
}

#[test]
fn every_argument_has_help_text() {
    let out = Command::new(TOPO)
        .args(["exec", "--help"])
        .output()
        .expect("run topo");
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--nodes", "--all", "--name", "--lab", "-f, --file"] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let out = Command::new(TOPO)
        .args(["impair", "--help"])
        .output()
        .expect("run topo");
    let help = String::from_utf8_lossy(&out.stdout);
    for unit in ["us, ms, s", "%", "bit/s"] {
        assert!(help.contains(unit), "{unit}: {help}");
    }
}

/// A lab on two machines (named with the prefix of this test suite's labs).
const WAN: &str = "name: msp-wan
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2}
nodes:
  r1: {host: left, interfaces: {eth1: {addresses: [10.0.0.0/31]}}}
  r2: {host: right, interfaces: {eth1: {addresses: [10.0.0.1/31]}}}
  r3: {host: left}
links:
  - endpoints: [r1:eth1, r2:eth1]
  - endpoints: [r1:eth2, r3:eth2]
";

/// `topo ARGS` in `dir` with `env` set (and `TOPO_HOST` unset unless `env` sets it).
fn with_env(dir: &std::path::Path, args: &[&str], input: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut c = Command::new(TOPO);
    c.args(args)
        .current_dir(dir)
        .env_remove("TOPO_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("spawn topo");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("wait topo")
}

#[test]
fn validate_checks_the_host_given_and_tells_the_share() {
    let dir = TempDir::new("host");
    let out = with_env(&dir.0, &["validate", "-", "--host", "left"], WAN, &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<stdin>: ok: lab msp-wan, 3 nodes, 2 links, 0 bridges, hosts left, right\n\
         host left: 2 nodes, 1 veths, 1 tunnel ends\n",
        "{}",
        text(&out)
    );
    // A file check needs no host.
    let out = with_env(&dir.0, &["validate", "-"], WAN, &[]);
    assert!(out.status.success(), "{}", text(&out));
    // A host the file does not declare, from --host or TOPO_HOST.
    let out = with_env(&dir.0, &["validate", "-", "--host", "lfet"], WAN, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "topo: error: --host lfet: lab msp-wan has no host lfet; did you mean left? \
         (hosts: left, right)\n"
    );
    let out = with_env(&dir.0, &["validate", "-"], WAN, &[("TOPO_HOST", "lfet")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("topo: error: TOPO_HOST=lfet: "),
        "{}",
        text(&out)
    );
    // --host on a lab on one machine is refused; TOPO_HOST is not its business.
    let out = with_env(&dir.0, &["validate", "-", "--host", "left"], SMALL, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("declares no hosts"),
        "{}",
        text(&out)
    );
    let out = with_env(&dir.0, &["validate", "-"], SMALL, &[("TOPO_HOST", "left")]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A run directory holding the record of `msp-wan`'s share of host `left`, as `up --host
/// left` leaves it (no node running: nothing of the kernel is touched).
fn wan_record(dir: &std::path::Path) -> PathBuf {
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("msp-wan")).expect("run dir");
    let record =
        r#"{"lab":"msp-wan","file":null,"nodes":{},"host":"left","elsewhere":{"r2":"right"}}"#;
    std::fs::write(run.join("msp-wan/state.json"), record).expect("record");
    run
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_share_needs_its_host_once_and_refuses_another() {
    let dir = TempDir::new("share");
    let file = dir.0.join("wan.yaml");
    std::fs::write(&file, WAN).expect("write");
    let file = file.display().to_string();
    let empty = dir.0.join("empty");
    std::fs::create_dir_all(&empty).expect("run dir");
    let empty = empty.display().to_string();
    // Not up, no host: which share is meant is not guessed.
    for cmd in ["plan", "up"] {
        let out = with_env(&dir.0, &[cmd, &file], "", &[("TOPO_RUN_DIR", &empty)]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "topo: error: lab msp-wan spans hosts left, right: choose this machine's share \
             with --host NAME\n",
            "{cmd}"
        );
    }
    let out = with_env(&dir.0, &["test", &file], "", &[("TOPO_RUN_DIR", &empty)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Nothing up: the machine's usual host is taken, and one the file lacks is refused.
    let out = with_env(
        &dir.0,
        &["plan", &file],
        "",
        &[("TOPO_RUN_DIR", &empty), ("TOPO_HOST", "right")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+ netns msp-wan-r2 (r2)\n"),
        "{}",
        text(&out)
    );
    let out = with_env(
        &dir.0,
        &["plan", &file],
        "",
        &[("TOPO_RUN_DIR", &empty), ("TOPO_HOST", "middle")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("topo: error: TOPO_HOST=middle: lab msp-wan has no host middle;"),
        "{}",
        text(&out)
    );
    // Up as host left: later commands take the host from the record.
    let run = wan_record(&dir.0);
    let run = run.display().to_string();
    let out = with_env(&dir.0, &["plan", &file], "", &[("TOPO_RUN_DIR", &run)]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("+ netns msp-wan-r1 (r1)\n"), "{plan}");
    assert!(!plan.contains("msp-wan-r2"), "{plan}");
    assert!(
        plan.contains("+ veth r1:eth1 <-> tunnel to r2:eth1 on right\n"),
        "{plan}"
    );
    assert!(plan.contains("+ vxlan bridges:V"), "{plan}");
    // The record wins over the machine's usual host.
    let out = with_env(
        &dir.0,
        &["plan", &file],
        "",
        &[("TOPO_RUN_DIR", &run), ("TOPO_HOST", "right")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), plan);
    // Another host's share where left's runs is refused, by plan, up, down and status.
    for args in [
        &["plan", &file, "--host", "right"][..],
        &["up", &file, "--host", "right"],
        &["down", "--lab", "msp-wan", "--host", "right"],
        &["status", "--lab", "msp-wan", "--host", "right"],
    ] {
        let out = with_env(&dir.0, args, "", &[("TOPO_RUN_DIR", &run)]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("runs here as host left's share"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // A node of the other host is not here to enter.
    for args in [
        &["exec", "--lab", "msp-wan", "r2", "--", "true"][..],
        &["shell", "--lab", "msp-wan", "r2"],
    ] {
        let out = with_env(&dir.0, args, "", &[("TOPO_RUN_DIR", &run)]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .starts_with("topo: error: node r2 runs on host right"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"\xff");
    for args in [
        vec![bad],
        vec![OsStr::new("exec"), OsStr::new("n1"), OsStr::new("--"), bad],
        vec![
            OsStr::new("exec"),
            OsStr::new("--lab"),
            bad,
            OsStr::new("n1"),
        ],
        vec![OsStr::new("status"), OsStr::new("--lab"), bad],
    ] {
        let out = Command::new(TOPO).args(&args).output().expect("run topo");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn the_front_runs_topo_core_from_its_own_directory_and_says_when_it_is_missing() {
    // Alone in a directory: every command but what the front serves itself needs topo-core.
    let alone = TempDir::new("front-alone");
    let front = alone.0.join("topo");
    std::fs::copy(TOPO, &front).expect("copy topo");
    let out = Command::new(&front)
        .arg("--version")
        .output()
        .expect("run topo");
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("run {}", alone.0.join("topo-core").display()))
            && err.contains("hint: topo runs topo-core from its own directory"),
        "{}",
        text(&out)
    );
    // With topo-core beside it, under any name, the front hands every command to it: a plain
    // `topo exec` the channel cannot take (no such lab), and the rest.
    let paired = TempDir::new("front-paired");
    let link = paired.0.join("my-topo");
    std::fs::copy(TOPO, &link).expect("copy topo");
    let core = PathBuf::from(TOPO).with_file_name("topo-core");
    std::fs::copy(&core, paired.0.join("topo-core")).expect("copy topo-core");
    let out = Command::new(&link)
        .args(["exec", "--lab", "no-such-lab", "n1", "--", "true"])
        .output()
        .expect("run topo");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lab no-such-lab is not up"),
        "{}",
        text(&out)
    );
    let out = Command::new(&link)
        .arg("--version")
        .output()
        .expect("run topo");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("topo {}\n", env!("CARGO_PKG_VERSION"))
    );
}
