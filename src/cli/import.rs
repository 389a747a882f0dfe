//! `topo import containerlab FILE` and `topo import kathara DIR`: print the converted
//! topology file; warnings on standard error; exit 2 when the input cannot be read or
//! converted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::import::{self, ImportError, Imported};
use crate::lab::LabError;

// `topo import FORMAT SOURCE`: print the source lab as a topology file.
#[derive(Args, Debug, Clone)]
pub(super) struct ImportArgs {
    #[command(subcommand)]
    format: Format,
    /// Lab name (1 to 12 characters from a-z, 0-9 and '-'); default: the containerlab
    /// file's `name`, or the Kathará lab's directory name
    #[arg(long, global = true)]
    name: Option<String>,
}

#[derive(Subcommand, Debug, Clone)]
enum Format {
    /// A containerlab topology file (`*.clab.yml`)
    Containerlab {
        /// The `*.clab.yml` file to convert
        file: PathBuf,
    },
    /// A Kathará lab directory (with `lab.conf`)
    Kathara {
        /// The lab's directory (holding `lab.conf`, `NODE.startup` files, `NODE/` trees)
        dir: PathBuf,
    },
}

/// Whether a node's root (an unprivileged uid of its user namespace) can reach `path` of
/// the host: it exists and every directory on the way is searchable by others.
fn reachable(path: &Path) -> bool {
    if std::fs::metadata(path).is_err() {
        return false;
    }
    path.ancestors().skip(1).all(|dir| {
        std::fs::metadata(dir)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

pub(super) fn cmd_import(args: ImportArgs) -> Result<i32, LabError> {
    let name = args.name.as_deref();
    let result = match &args.format {
        Format::Containerlab { file } => containerlab(file, name),
        Format::Kathara { dir } => import::kathara::import(dir, name, &reachable),
    };
    match result {
        Ok(Imported { yaml, warnings }) => {
            for w in &warnings {
                errln!("{w}");
            }
            // What is printed must be a file `topo validate` takes; a source that converts
            // into one that is not (two nodes with one address) is refused here.
            if let Err(d) = crate::spec::parse_str(&yaml, Path::new("<converted>")) {
                errln!("topo: error: the converted lab is not a valid topology:\n{d}");
                return Ok(2);
            }
            out!("{yaml}");
            Ok(0)
        }
        Err(e) => {
            errln!("{e}");
            Ok(2)
        }
    }
}

fn containerlab(file: &Path, name: Option<&str>) -> Result<Imported, ImportError> {
    let meta = std::fs::metadata(file)
        .map_err(|e| ImportError::at(file, None, format!("cannot read: {e}")))?;
    if meta.len() > crate::spec::MAX_FILE_BYTES {
        return Err(ImportError::at(
            file,
            None,
            "the file is larger than 64 MiB",
        ));
    }
    let src = std::fs::read_to_string(file)
        .map_err(|e| ImportError::at(file, None, format!("cannot read: {e}")))?;
    import::containerlab::import(&src, file, name, &reachable)
}
