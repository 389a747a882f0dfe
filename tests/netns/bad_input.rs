//! Bad input through the CLI: every file of the catalog (tests/bad) exits 2 with
//! file:line:column and a hint, for `validate` and for `up`, and `up` creates nothing.

use crate::common::*;

#[test]
fn every_bad_file_exits_2_with_position_and_hint_and_touches_nothing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("tests/bad").flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 25, "the catalog has {} files", files.len());
    let root = nix::unistd::geteuid().is_root();
    let netns_before = netns_with_prefix("");
    let runs_before: Vec<_> = std::fs::read_dir("/run/topo").map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    for f in &files {
        let cmds: &[&str] = if root { &["validate", "up"] } else { &["validate"] };
        for cmd in cmds {
            let out = topo(&[cmd, path(f)]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {}: {}", f.display(), text(&out));
            let prefix = format!("{}:", f.display());
            assert!(err.starts_with(&prefix), "{cmd} {}: error names the file: {err}", f.display());
            let pos = err[prefix.len()..].split(':').take(2).collect::<Vec<_>>();
            assert!(pos.len() == 2 && pos.iter().all(|p| p.parse::<u32>().is_ok()), "line:column in {err}");
            assert!(err.contains("hint: "), "{cmd} {}: a hint: {err}", f.display());
        }
    }
    assert_eq!(netns_with_prefix(""), netns_before, "no namespace created");
    let runs_after: Vec<_> = std::fs::read_dir("/run/topo").map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert_eq!(runs_after, runs_before, "no run directory created");
}
