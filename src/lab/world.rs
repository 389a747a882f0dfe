//! The real host for validation: the topology file read from disk, its paths checked on the
//! file system, its seccomp profiles compiled the way a node's would be.

use std::path::Path;

use crate::spec::{self, Diagnostic, Diagnostics, Topology};

/// The host `topo` runs on, as [`spec::World`].
pub(crate) struct Host;

impl spec::World for Host {
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn is_root(&self, path: &Path) -> bool {
        std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/"))
    }

    fn check_seccomp_profile(&self, path: &Path) -> Result<(), String> {
        crate::node::seccomp::check_profile_file(path)
    }
}

/// Reads, parses and validates a topology file against this host. Every problem of the file
/// is reported, each with the file, line and column it is about, and a hint.
pub fn load_topology(path: &Path) -> Result<Topology, Diagnostics> {
    let src = read_file(path)?;
    spec::parse_with(&src, path, &Host)
}

/// The name standard input has in messages and in the lab's record.
pub const STDIN_NAME: &str = "<stdin>";

/// Parses and validates topology text read from standard input ([`read_stdin`]) against this
/// host: messages name it `<stdin>`, and its relative paths are resolved against the current
/// directory.
pub(crate) fn parse_stdin_text(src: &str) -> Result<Topology, Diagnostics> {
    spec::parse_with(src, Path::new(STDIN_NAME), &Host)
}

/// Reads standard input to its end, refusing more than [`spec::MAX_FILE_BYTES`].
pub(crate) fn read_stdin() -> Result<String, Diagnostics> {
    use std::io::Read;
    let one = |message: String, hint: &str| {
        Diagnostics(vec![Diagnostic {
            file: Path::new(STDIN_NAME).to_path_buf(),
            line: 1,
            column: 1,
            message,
            hint: Some(hint.to_string()),
        }])
    };
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(spec::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            one(
                format!("cannot read standard input: {e}"),
                "pipe a topology file in, e.g. `topo gen chain 3 | topo up -`",
            )
        })?;
    if bytes.len() as u64 > spec::MAX_FILE_BYTES {
        return Err(one(
            format!(
                "standard input has more than the {} bytes topo accepts",
                spec::MAX_FILE_BYTES
            ),
            "split the lab, or generate a smaller one",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        one(
            format!("cannot read the topology: {e}"),
            "the file must be UTF-8 text",
        )
    })
}

/// The running lab a missing file's path names, when the path is a lab's name and no file
/// (`topo down r1` for `topo down --lab r1`).
fn lab_named_as(path: &Path, e: &std::io::Error) -> Option<String> {
    let name = path.to_str()?;
    (e.kind() == std::io::ErrorKind::NotFound
        && super::down::check_lab_name(name).is_ok()
        && crate::state::has_record(name))
    .then(|| name.to_string())
}

/// Reads the file, refusing oversized files before reading them.
fn read_file(path: &Path) -> Result<String, Diagnostics> {
    let one = |message: String, hint: &str| {
        Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message,
            hint: Some(hint.to_string()),
        }])
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        let hint = match lab_named_as(path, &e) {
            Some(lab) => format!(
                "there is no such file, but a lab named {lab} runs here: `--lab {lab}` names \
                 it by its name"
            ),
            None => "check the path".to_string(),
        };
        one(format!("cannot read the topology file: {e}"), &hint)
    })?;
    if meta.len() > spec::MAX_FILE_BYTES {
        return Err(one(
            format!(
                "the file is {} bytes, more than the {} bytes topo accepts",
                meta.len(),
                spec::MAX_FILE_BYTES
            ),
            "split the lab, or generate a smaller one",
        ));
    }
    std::fs::read_to_string(path).map_err(|e| {
        one(
            format!("cannot read the topology file: {e}"),
            "the file must be UTF-8 text",
        )
    })
}
