//! Bad input through the CLI: every file of the catalog (tests/bad) exits 2 with
//! file:line:column and a hint, for `validate` and for `up`, and `up` creates nothing.

use crate::common::*;

#[test]
fn every_bad_file_exits_2_with_position_and_hint_and_touches_nothing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/bad")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "the catalog has {} files", files.len());
    // `up` only where the kernel tests run (as root).
    let root = cfg!(kernel_tests);
    for f in &files {
        let cmds: &[&str] = if root {
            &["validate", "up"]
        } else {
            &["validate"]
        };
        for cmd in cmds {
            let out = topo(&[cmd, path(f)]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} {}: {}",
                f.display(),
                text(&out)
            );
            let prefix = format!("{}:", f.display());
            assert!(
                err.starts_with(&prefix),
                "{cmd} {}: error names the file: {err}",
                f.display()
            );
            let pos = err[prefix.len()..].split(':').take(2).collect::<Vec<_>>();
            assert!(
                pos.len() == 2 && pos.iter().all(|p| p.parse::<u32>().is_ok()),
                "line:column in {err}"
            );
            assert!(
                err.contains("hint: "),
                "{cmd} {}: a hint: {err}",
                f.display()
            );
        }
        // Nothing of the lab the file names was created (other tests run alongside, so only
        // this lab's objects are looked for).
        if let Some(name) = lab_name(f) {
            assert!(
                netns_with_prefix(&format!("{name}-")).is_empty(),
                "{}: namespace created",
                f.display()
            );
            assert!(
                !std::path::Path::new("/run/topo").join(&name).exists(),
                "{}: run directory created",
                f.display()
            );
        }
    }
}

/// The `name:` a file gives, if it has a plausible one.
fn lab_name(f: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(f).ok()?;
    let line = text.lines().find(|l| l.starts_with("name:"))?;
    let name = line["name:".len()..].trim().trim_matches('"').to_string();
    (!name.is_empty() && !name.contains('/')).then_some(name)
}
