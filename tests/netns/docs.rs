//! The example sessions of the documentation, run for real: every ```console block of
//! README.md, docs/commands.md and docs/testing.md is run, command by command in document
//! order, and its output compared with the documented one, so the docs cannot drift from what
//! `topo` prints.
//!
//! How a document is read:
//!
//! - In a ```console block, a line starting `# ` (root) or `$ ` is a command; the lines below
//!   it, up to the next command or the fence, are its documented output (standard output and
//!   error together, as a terminal shows them). The command runs with `/bin/sh -c` in a
//!   scratch copy of the repository's `topologies/`, with the built `topo` first on `PATH`,
//!   standard input empty, and the run directories (`TOPO_RUN_DIR`) and the logs archive
//!   (`TOPO_LOG_DIR`) in the scratch directory: the commands that take "the one lab that is
//!   up" see only the document's labs, whatever else runs on the host.
//! - A command is expected to succeed, unless its documented output has a line starting
//!   `topo: error:`: then it must fail.
//! - A block right after `<!-- not run: REASON -->` is not run (a GUI, an interactive
//!   terminal, a daemon's convergence time); the reason is required.
//! - A block right after `<!-- needs: PATH -->` runs only where PATH exists (a kernel
//!   module, `/sys/module/sch_netem`, that the block's commands need); elsewhere it is
//!   reported as not run.
//! - `<!-- before: COMMANDS -->` right before a block runs COMMANDS (one `sh -c`) first; they
//!   must succeed, and their output is not compared. It sets up what a block's text takes for
//!   granted (the lab it is about is up).
//! - A ```diff block that starts with `--- a/PATH` and `+++ b/PATH` is applied to PATH of the
//!   scratch copy at its place in the document (hunks separated by a line `…`; a hunk's context
//!   and `-` lines must be in the file as they are written), so an example can edit a file and
//!   show what `plan` and `up` make of it.
//!
//! How output is compared, line by line, after both sides are normalised:
//!
//! - A documented line that is only `…` stands for any number of lines (none included); a `…`
//!   inside a line stands for any text.
//! - The lines of several nodes (`topo exec --all`), when every documented line is
//!   `NODE| …`, are compared in node order, each node's lines in the order it wrote them: the
//!   order between nodes is the order the lines came in.
//! - Runs of spaces count as one space and trailing spaces are dropped (column widths follow
//!   PIDs); trailing empty lines are dropped.
//! - What differs from run to run becomes a placeholder on both sides: times with a fraction
//!   (`0.03s`, `0.702 ms`), ping's `time 1027ms` and `rtt` line, PIDs (`pid N`, and the number
//!   after `running`/`dead` in the status tables), memory and process use
//!   (`(used …)`), interface indexes (`@if12`), HTTP log dates, archive times; and the scratch
//!   directory reads as `/root/topo`, the checkout the docs show.
//!
//! Everything else (node names, addresses, states, interface names, routes, messages, the
//! order of lines) must be as documented. Each document runs on its own: its labs (`LABS`)
//! must be down on the host before (else it is skipped, with a message, touching nothing), and
//! a guard brings down every one of them after it, also when it fails.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::common::*;

/// The labs the documents' examples bring up.
const LABS: &[&str] = &["triangle", "tri-a", "tri-b", "chain", "web"];

/// How long one documented command may take before it counts as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The documents share lab names: one runs at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

enum Step {
    /// A command and its documented output.
    Run {
        line: usize,
        command: String,
        expected: Vec<String>,
    },
    /// Commands run before a block, output not compared.
    Before { line: usize, commands: String },
    /// A ```diff block applied to a file of the scratch copy.
    Patch {
        line: usize,
        path: String,
        hunks: Vec<(Vec<String>, Vec<String>)>,
    },
}

/// The steps of a document, and the blocks it does not run (line, reason).
fn parse(text: &str) -> (Vec<Step>, Vec<(usize, String)>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        let directive = i
            .checked_sub(1)
            .map(|p| lines[p].trim())
            .filter(|l| l.starts_with("<!--") && l.ends_with("-->"))
            .map(|l| l.trim_start_matches("<!--").trim_end_matches("-->").trim());
        if fence == "```console" {
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_end() != "```" {
                end += 1;
            }
            let body = &lines[start..end.min(lines.len())];
            match directive {
                Some(d) if d.starts_with("not run:") => {
                    let reason = d["not run:".len()..].trim();
                    assert!(!reason.is_empty(), "line {i}: `not run:` without a reason");
                    skipped.push((i + 1, reason.to_string()));
                }
                Some(d)
                    if d.strip_prefix("needs:")
                        .is_some_and(|p| !Path::new(p.trim()).exists()) =>
                {
                    skipped.push((
                        i + 1,
                        format!("this host has no {}", d["needs:".len()..].trim()),
                    ));
                }
                _ => {
                    if let Some(d) = directive.and_then(|d| d.strip_prefix("before:")) {
                        steps.push(Step::Before {
                            line: i,
                            commands: d.trim().to_string(),
                        });
                    }
                    parse_console(start, body, &mut steps);
                }
            }
            i = end + 1;
        } else if fence == "```diff"
            && lines.get(i + 1).is_some_and(|l| l.starts_with("--- a/"))
            && lines.get(i + 2).is_some_and(|l| l.starts_with("+++ b/"))
        {
            let path = lines[i + 2]["+++ b/".len()..].trim().to_string();
            let mut hunks = vec![(Vec::new(), Vec::new())];
            let mut j = i + 3;
            while j < lines.len() && lines[j].trim_end() != "```" {
                let l = lines[j];
                let (tag, rest) = l.split_at(l.chars().next().map_or(0, char::len_utf8));
                let hunk = hunks.last_mut().expect("a hunk");
                match tag {
                    _ if rest.trim() == "…" => hunks.push((Vec::new(), Vec::new())),
                    " " | "" => {
                        hunk.0.push(rest.to_string());
                        hunk.1.push(rest.to_string());
                    }
                    "-" => hunk.0.push(rest.to_string()),
                    "+" => hunk.1.push(rest.to_string()),
                    _ => panic!("line {}: not a diff line: {l}", j + 1),
                }
                j += 1;
            }
            steps.push(Step::Patch {
                line: i + 1,
                path,
                hunks,
            });
            i = j + 1;
        } else {
            i += 1;
        }
    }
    (steps, skipped)
}

fn parse_console(start: usize, body: &[&str], steps: &mut Vec<Step>) {
    for (k, l) in body.iter().enumerate() {
        if let Some(command) = l.strip_prefix("# ").or_else(|| l.strip_prefix("$ ")) {
            steps.push(Step::Run {
                line: start + k + 1,
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(Step::Run { expected, .. }) = steps.last_mut() {
            expected.push(l.to_string());
        } else {
            panic!("line {}: output before any command: {l}", start + k + 1);
        }
    }
}

/// Applies `hunks` to `text`: each hunk's old lines, found in order, become its new lines.
fn patch(text: &str, hunks: &[(Vec<String>, Vec<String>)]) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut from = 0;
    for (old, new) in hunks {
        let at = (from..=lines.len().saturating_sub(old.len()))
            .find(|&s| lines[s..s + old.len()] == old[..])
            .ok_or_else(|| format!("hunk not found in the file:\n{}", old.join("\n")))?;
        lines.splice(at..at + old.len(), new.iter().cloned());
        from = at + new.len();
    }
    Ok(lines.join("\n") + "\n")
}

/// The rules that make run-dependent values placeholders, in order.
fn rules(scratch: &Path) -> Vec<(Regex, String)> {
    let r = |re: &str, to: &str| (Regex::new(re).expect("a valid regex"), to.to_string());
    vec![
        (
            Regex::new(&regex::escape(path(scratch))).expect("a valid regex"),
            "/root/topo".to_string(),
        ),
        r(r"rtt min/avg/max/mdev = \S+ ms", "rtt <rtt> ms"),
        r(r"\btime \d+ms\b", "time <time>"),
        r(r"\b\d+\.\d+ ?m?s\b", "<time>"),
        r(r"\bpid \d+", "pid <pid>"),
        r(r"\b(running|dead) +\d+\b", "$1 <pid>"),
        r(r"\(used [^)]*\)", "(used <n>)"),
        r(r"@if\d+\b", "@if<n>"),
        r(r"\[\d{2}/\w{3}/\d{4} \d{2}:\d{2}:\d{2}\]", "[<date>]"),
        r(r"\b\d{8}T\d{6}Z(-\d+)?\b", "<utc>"),
        r(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC\b", "<utc>"),
        r(r" {2,}", " "),
    ]
}

fn normalise(rules: &[(Regex, String)], lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut l = l.trim_end().to_string();
            for (re, to) in rules {
                l = re.replace_all(&l, to.as_str()).into_owned();
            }
            l
        })
        .collect();
    while v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}

/// Whether `real` matches the documented `doc` lines (`…` lines and `…` in lines as wildcards).
fn matches(doc: &[String], real: &[String]) -> bool {
    let Some((first, rest)) = doc.split_first() else {
        return real.is_empty();
    };
    if first == "…" {
        return (0..=real.len()).any(|skip| matches(rest, &real[skip..]));
    }
    let Some((line, real_rest)) = real.split_first() else {
        return false;
    };
    let pattern = first
        .split('…')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    Regex::new(&format!("^{pattern}$")).is_ok_and(|re| re.is_match(line))
        && matches(rest, real_rest)
}

/// The `NODE` of a line `NODE| …` of `topo exec --nodes`/`--all`.
fn node_prefix(line: &str) -> Option<&str> {
    let (node, _) = line.split_once("| ")?;
    (!node.is_empty() && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then_some(node)
}

/// Whether documented output is that of several nodes: every line but `…` is `NODE| …`.
/// Their lines come in the order they were written, so the real lines are compared in node
/// order, each node's lines in its own order (a stable sort).
fn by_node(expected: &[String]) -> bool {
    let lines: Vec<&String> = expected.iter().filter(|l| l.trim() != "…").collect();
    !lines.is_empty() && lines.iter().all(|l| node_prefix(l).is_some())
}

/// Runs `command` with `/bin/sh -c` in `dir`, standard error into standard output; returns
/// the exit status (None: killed after the timeout) and the output.
fn run(dir: &Path, command: &str) -> (Option<i32>, String) {
    let bin = Path::new(TOPO).parent().expect("the binary's directory");
    let path_var = format!(
        "{}:{}",
        path(bin),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{command}"))
        .current_dir(dir)
        .env("PATH", path_var)
        .env("TOPO_LOG_DIR", dir.join(".archive"))
        .env("TOPO_RUN_DIR", dir.join(".run"))
        .env_remove("TOPO_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn sh");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for sh") {
            Some(s) => break s.code(),
            None if Instant::now() > deadline => {
                // The shell's process group: the command and what it started.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = reader.join().unwrap_or_default();
    (status, String::from_utf8_lossy(&out).into_owned())
}

/// Brings down the documents' labs and removes the scratch directory when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for lab in LABS {
            let out = Command::new(TOPO)
                .args(["down", "--lab", lab, "--missing-ok", "--discard-logs"])
                .env("TOPO_RUN_DIR", self.dir.join(".run"))
                .output()
                .expect("run topo down");
            if !out.status.success() {
                eprintln!("cleanup of {lab} failed:\n{}", text(&out));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The labs of `LABS` that are up on the host (a run directory or a namespace).
fn labs_up() -> Vec<&'static str> {
    LABS.iter()
        .copied()
        .filter(|lab| {
            Path::new("/run/topo").join(lab).exists()
                || !netns_with_prefix(&format!("{lab}-")).is_empty()
        })
        .collect()
}

/// Runs the console blocks of `doc` (a path from the repository root) and panics with every
/// mismatch.
fn check_document(doc: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(doc)).expect("read the document");
    let (steps, skipped) = parse(&text);
    let up = labs_up();
    if !up.is_empty() {
        eprintln!(
            "SKIPPED: {doc}: lab(s) {} already up on this host; the examples use these names \
             and this test takes down only what it brought up",
            up.join(", ")
        );
        return;
    }
    for (line, reason) in &skipped {
        eprintln!("{doc}:{line}: block not run: {reason}");
    }
    let scratch = Scratch {
        dir: std::env::temp_dir().join(format!("topo-docs-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&scratch.dir);
    copy_dir(&root.join("topologies"), &scratch.dir.join("topologies"));
    let rules = rules(&scratch.dir);
    let mut failures = Vec::new();
    let started = Instant::now();
    for step in &steps {
        match step {
            Step::Before { line, commands } => {
                let (status, out) = run(&scratch.dir, commands);
                assert_eq!(
                    status,
                    Some(0),
                    "{doc}:{line}: `before:` commands failed: {commands}\n{out}"
                );
            }
            Step::Patch { line, path, hunks } => {
                let file = scratch.dir.join(path);
                let old = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{doc}:{line}: {path}: {e}"));
                let new = patch(&old, hunks).unwrap_or_else(|e| panic!("{doc}:{line}: {e}"));
                std::fs::write(&file, new).expect("write the patched file");
            }
            Step::Run {
                line,
                command,
                expected,
            } => {
                let (status, out) = run(&scratch.dir, command);
                let mut real: Vec<String> = out.lines().map(str::to_string).collect();
                if by_node(expected) {
                    real.sort_by_key(|l| node_prefix(l).map(str::to_string));
                }
                let should_fail = expected.iter().any(|l| l.starts_with("topo: error:"));
                let status_ok = match status {
                    Some(0) => !should_fail,
                    Some(_) => should_fail,
                    None => false,
                };
                let same = matches(&normalise(&rules, expected), &normalise(&rules, &real));
                if !status_ok || !same {
                    failures.push(format!(
                        "{doc}:{line}: # {command}\n--- documented ({})\n{}\n--- real (status {})\n{}",
                        if should_fail { "fails" } else { "succeeds" },
                        expected.join("\n"),
                        status.map_or("none: timed out".to_string(), |s| s.to_string()),
                        out.trim_end()
                    ));
                }
            }
        }
    }
    let commands = steps
        .iter()
        .filter(|s| matches!(s, Step::Run { .. }))
        .count();
    eprintln!(
        "{doc}: {commands} commands in {:.1?}, {} mismatches",
        started.elapsed(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn readme_examples_print_what_they_show() {
    check_document("README.md");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn commands_examples_print_what_they_show() {
    check_document("docs/commands.md");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn testing_examples_print_what_they_show() {
    check_document("docs/testing.md");
}

/// The comparison itself, without root: wildcards, placeholders and strictness.
#[test]
fn the_comparison_is_strict_where_it_matters() {
    let rules = rules(Path::new("/tmp/topo-docs-1"));
    let n = |v: &[&str]| normalise(&rules, &v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let doc = n(&[
        "lab triangle (/root/topo/topologies/triangle.yaml)",
        "…",
        "r1    running  11280  lo         10.255.0.1/32",
        "lab triangle: up, 60 changes (0.03s)",
    ]);
    let real = n(&[
        "lab triangle (/tmp/topo-docs-1/topologies/triangle.yaml)",
        "h1    running  7  eth0  10.1.0.10/24",
        "r1    running  123456  lo 10.255.0.1/32",
        "lab triangle: up, 60 changes (1.25s)",
    ]);
    assert!(matches(&doc, &real));
    let wrong_address = n(&[
        "lab triangle (/tmp/topo-docs-1/topologies/triangle.yaml)",
        "r1    running  123456  lo 10.255.0.9/32",
        "lab triangle: up, 60 changes (1.25s)",
    ]);
    assert!(!matches(&doc, &wrong_address));
    let wrong_count = n(&[
        "lab triangle (/tmp/topo-docs-1/topologies/triangle.yaml)",
        "r1    running  1  lo 10.255.0.1/32",
        "lab triangle: up, 61 changes (0.03s)",
    ]);
    assert!(!matches(&doc, &wrong_count));
    assert!(!matches(&n(&["a", "b"]), &n(&["a"])));
    assert!(matches(&n(&["x … z"]), &n(&["x y y z"])));
    assert!(!matches(
        &n(&["impair delay 50ms"]),
        &n(&["impair delay 60ms"])
    ));
}

#[test]
fn a_diff_block_edits_its_file() {
    let text = "a\nb\nc\nd\n";
    let hunks = vec![
        (vec!["b".to_string()], vec!["B".to_string()]),
        (
            vec!["c".to_string(), "d".to_string()],
            vec!["c".to_string(), "d".to_string(), "e".to_string()],
        ),
    ];
    assert_eq!(patch(text, &hunks).as_deref(), Ok("a\nB\nc\nd\ne\n"));
    assert!(patch(text, &[(vec!["x".to_string()], vec![])]).is_err());
}
