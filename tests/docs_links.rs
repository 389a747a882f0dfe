//! The documents cite only files the repository has: every relative Markdown link of every
//! `*.md` of the repository (README.md, docs/, tests/vm/, bench/peers/, …; without its
//! `#anchor`), and every backticked path that starts at
//! a top-level directory of the repository (`tests/netns/binds.rs`, `topologies/frr-ospf/`),
//! names a file or directory that exists; a file name with a word in capitals is a pattern
//! (`bench/results/run-DATE.txt`), not a file. No root needed.

use std::path::{Path, PathBuf};

use regex::Regex;

/// The top-level directories a backticked path may start with to count as a repository path.
const ROOTS: &[&str] = &[
    "bench/",
    "deploy/",
    "docs/",
    "examples/",
    "fuzz/",
    "src/",
    "tests/",
    "topologies/",
    ".ci/",
];

fn documents(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    collect(root, &mut v);
    v.sort();
    v
}

/// The Markdown files under `dir`, build and VCS directories left out.
fn collect(dir: &Path, into: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read a directory").flatten() {
        let p = e.path();
        let name = e.file_name();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if !matches!(
                name.to_str(),
                Some("target" | ".git" | "corpus" | "artifacts")
            ) {
                collect(&p, into);
            }
        } else if p.extension().is_some_and(|x| x == "md") {
            into.push(p);
        }
    }
}

/// What `text` cites that does not exist: (line, what, resolved path).
fn dangling(root: &Path, doc: &Path, text: &str) -> Vec<String> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    let code = Regex::new(r"`([^`\s]+)`").expect("regex");
    let here = doc.parent().expect("a document's directory");
    let mut missing = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for c in link.captures_iter(line) {
            let target = &c[1];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            if !here.join(file).exists() {
                missing.push(format!("{}:{}: link {target}", doc.display(), n + 1));
            }
        }
        for c in code.captures_iter(line) {
            let p = &c[1];
            let plain = !p.contains(['*', '<', '>', '…', ':', '$', '{', '|']) && !placeholder(p);
            if plain && ROOTS.iter().any(|r| p.starts_with(r)) && !root.join(p).exists() {
                missing.push(format!("{}:{}: path `{p}`", doc.display(), n + 1));
            }
        }
    }
    missing
}

/// A path that names a pattern, not a file: its file name holds a word in capitals
/// (`bench/results/run-DATE.txt`), other than a document's own name (`README.md`).
fn placeholder(p: &str) -> bool {
    let name = p.trim_end_matches('/').rsplit('/').next().unwrap_or(p);
    !name.ends_with(".md") && Regex::new(r"[A-Z]{2,}").expect("regex").is_match(name)
}

#[test]
fn documents_cite_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for doc in documents(root) {
        let text = std::fs::read_to_string(&doc).expect("read a document");
        missing.extend(dangling(root, &doc, &text));
    }
    assert!(
        missing.is_empty(),
        "cited but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_missing_file_is_found() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = root.join("docs").join("x.md");
    let text = "See [design](DESIGN.md) and `tests/netns/nothing.rs`, \
                [ok](commands.md#exit-status), `docs/commands.md`, `topo up`, \
                `bench/results/run-DATE.txt`.\n";
    let found = dangling(root, &doc, text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("DESIGN.md") && found[1].contains("nothing.rs"));
}
