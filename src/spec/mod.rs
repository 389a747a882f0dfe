//! `spec`: parse, merge defaults, validate. Pure: no syscalls, no kernel access (it reads the
//! topology file and checks that referenced host paths exist, nothing else).

pub mod model;

mod diag;
mod parse;
mod units;
mod validate;
mod yaml;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics};
pub use model::*;
pub use units::{
    format_bytes, format_duration_us, format_ppm, format_rate, parse_duration_us, parse_impair,
    parse_ppm, parse_rate, parse_size, ImpairText, UnitError,
};

/// The JSON Schema of the topology file (as shipped in `docs/topology.schema.json`), pretty
/// printed, with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Topology);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Largest topology file accepted, in bytes (a 10 000-node generated chain is about 3 MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads, parses and validates a topology file. Every problem of the file is reported, each
/// with the file, line and column it is about, and a hint.
pub fn load(path: &Path) -> Result<Topology, Diagnostics> {
    let src = diag::read_file(path)?;
    parse_str(&src, path)
}

/// Parses and validates topology text. `path` names the file in messages; relative paths in
/// the file (binds, rootfs, seccomp profiles) are resolved against its directory.
pub fn parse_str(src: &str, path: &Path) -> Result<Topology, Diagnostics> {
    let (topology, spans, mut diags) = parse::parse(src, path)?;
    validate::validate(&topology, &spans, path, &mut diags);
    diags.into_result(topology)
}
