//! The catalog of invalid topology files in `tests/bad/`, and the valid ones in `tests/good/`.
//!
//! Each bad file starts with one or more `# expect: LINE:COL substring` lines (positions
//! count every line of the file, these included). The file must be refused with exactly that
//! many diagnostics; the first diagnostic must match the first expectation, and every
//! expectation must match some diagnostic. Every diagnostic must have a hint.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use topo::lab::load_topology;
use topo::spec::Diagnostic;

#[derive(Debug)]
struct Expect {
    line: usize,
    column: usize,
    text: String,
}

impl Expect {
    fn matches(&self, d: &Diagnostic) -> bool {
        d.line == self.line && d.column == self.column && d.message.contains(&self.text)
    }
}

fn expectations(path: &Path) -> Vec<Expect> {
    let src = fs::read_to_string(path).unwrap();
    src.lines()
        .map_while(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let (pos, text) = rest.split_once(' ').expect("# expect: LINE:COL text");
            let (line, column) = pos.split_once(':').expect("LINE:COL");
            Expect {
                line: line.parse().expect("line number"),
                column: column.parse().expect("column number"),
                text: text.to_string(),
            }
        })
        .collect()
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Problems with one bad file, empty when it behaves as expected.
fn check_bad(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let expects = expectations(path);
    if expects.is_empty() {
        return vec![format!("{name}: no '# expect:' line")];
    }
    let start = Instant::now();
    let result = load_topology(path);
    let elapsed = start.elapsed();
    let diags = match result {
        Ok(_) => return vec![format!("{name}: accepted, expected {expects:?}")],
        Err(d) => d,
    };
    let mut problems = Vec::new();
    let all = || diags.to_string();
    if elapsed > Duration::from_secs(2) {
        problems.push(format!("{name}: took {elapsed:?}"));
    }
    if let Some(first) = diags.iter().next() {
        if !expects[0].matches(first) {
            problems.push(format!(
                "{name}: first diagnostic does not match {:?}:\n{}",
                expects[0],
                all()
            ));
        }
    }
    for e in &expects[1..] {
        if !diags.iter().any(|d| e.matches(d)) {
            problems.push(format!("{name}: no diagnostic matches {e:?}:\n{}", all()));
        }
    }
    if diags.len() != expects.len() {
        problems.push(format!(
            "{name}: {} diagnostics, expected {}:\n{}",
            diags.len(),
            expects.len(),
            all()
        ));
    }
    for d in diags.iter() {
        if d.hint.as_deref().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no hint: {d}"));
        }
        let plain = !d.message.ends_with('.') && !d.message.starts_with(char::is_uppercase);
        if !plain {
            problems.push(format!("{name}: message style: {d}"));
        }
        if d.file != path {
            problems.push(format!("{name}: wrong file in {d}"));
        }
    }
    problems
}

#[test]
fn bad_files_are_refused_with_positions_and_hints() {
    let files = yaml_files("tests/bad");
    assert!(files.len() >= 30, "only {} bad files", files.len());
    let problems: Vec<String> = files.iter().flat_map(|f| check_bad(f)).collect();
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

#[test]
fn good_files_load() {
    let files = yaml_files("tests/good");
    assert!(files.len() >= 2);
    for f in files {
        if let Err(d) = load_topology(&f) {
            panic!("{} was refused:\n{d}", f.display());
        }
    }
}

#[test]
fn missing_file_is_one_diagnostic() {
    let d = load_topology(Path::new("/nonexistent/topo.yaml")).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(d.0[0].message.contains("cannot read"));
}
