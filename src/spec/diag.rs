//! Diagnostics: an error about a place in the topology file, with a hint on how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// All problems found in a file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// `Ok(value)` when there is no diagnostic, else the diagnostics sorted by position.
    pub fn into_result<T>(mut self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            self.0.sort_by_key(|d| (d.line, d.column));
            self.0.dedup();
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} errors", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Reads the file, refusing oversized files before reading them.
pub(crate) fn read_file(path: &Path) -> Result<String, Diagnostics> {
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
        one(
            format!("cannot read the topology file: {e}"),
            "check the path",
        )
    })?;
    if meta.len() > super::MAX_FILE_BYTES {
        return Err(one(
            format!(
                "the file is {} bytes, more than the {} bytes topo accepts",
                meta.len(),
                super::MAX_FILE_BYTES
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
