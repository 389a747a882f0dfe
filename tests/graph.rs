//! `topo graph` output read by Graphviz: every shipped topology renders with `dot` and with
//! `neato`, with and without addresses, without a warning. Needs Graphviz (skipped, with a
//! message, where `dot` is not installed); no root.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TOPO: &str = env!("CARGO_BIN_EXE_topo");

/// Every `.yaml` file in topologies/ and in its subdirectories.
fn topologies() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).expect("topologies/").flatten() {
        let p = e.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).expect("subdirectory").flatten() {
                if f.path().extension().is_some_and(|x| x == "yaml") {
                    files.push(f.path());
                }
            }
        } else if p.extension().is_some_and(|x| x == "yaml") {
            files.push(p);
        }
    }
    files.sort();
    files
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Renders `dot_text` with `program -Tsvg`: its exit status and standard error.
fn render(program: &str, dot_text: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run graphviz");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot_text.as_bytes())
        .expect("write the graph");
    let out = child.wait_with_output().expect("graphviz");
    let svg = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success() && svg.contains("<svg"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_topology_renders_with_dot_and_neato_without_warnings() {
    if !has("dot") || !has("neato") {
        eprintln!("SKIPPED: Graphviz (`dot`, `neato`) is not installed; apt-get install graphviz");
        return;
    }
    let files = topologies();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        for extra in [&[][..], &["--addresses"][..]] {
            let mut args = vec!["graph", file.to_str().expect("utf-8 path")];
            args.extend_from_slice(extra);
            let out = Command::new(TOPO).args(&args).output().expect("topo graph");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            for program in ["dot", "neato"] {
                let (ok, stderr) = render(program, &text);
                assert!(ok, "{program} {args:?} failed: {stderr}\n{text}");
                assert!(
                    stderr.is_empty(),
                    "{program} {args:?} warned: {stderr}\n{text}"
                );
            }
        }
    }
}

/// Mermaid output of every topology: generated ids only, every node's name as a label.
#[test]
fn every_topology_as_mermaid_names_nodes_by_label() {
    for file in topologies() {
        let out = Command::new(TOPO)
            .args(["graph", "--format", "mermaid"])
            .arg(&file)
            .output()
            .expect("topo graph");
        assert!(out.status.success(), "{file:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("flowchart LR\n"), "{text}");
        for line in text.lines().skip(1) {
            let id = line
                .trim_start()
                .split(['[', '(', '{', ' '])
                .next()
                .unwrap_or_default();
            let generated = id.len() >= 2
                && matches!(id.as_bytes()[0], b'n' | b'b' | b'h')
                && id[1..].bytes().all(|b| b.is_ascii_digit());
            assert!(generated, "{file:?}: {line}");
        }
    }
}
