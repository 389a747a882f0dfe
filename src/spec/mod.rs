//! `spec`: parse, merge defaults, validate. Pure: no syscalls, no file system access. What
//! validation needs to know of the host (paths that exist, seccomp profiles topo can honour)
//! comes from a [`World`] that the caller passes in.

pub mod hosts;
pub mod model;
pub mod steps;

mod diag;
mod parse;
mod units;
mod validate;
mod world;
pub(crate) mod yaml;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics};
pub use model::*;
pub(crate) use parse::{did_you_mean, ifname_problem, lab_name_problem};
pub use units::{
    format_bytes, format_duration_us, format_ppm, format_rate, parse_duration_us, parse_impair,
    parse_ppm, parse_rate, parse_size, ImpairText, UnitError,
};
pub use world::{Unchecked, World};

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

/// Parses and validates topology text against `world`. Every problem of the text is reported,
/// each with the file, line and column it is about, and a hint. `path` names the file in
/// messages; relative paths in the file (binds, rootfs, seccomp profiles) are resolved
/// against its directory.
pub fn parse_with(src: &str, path: &Path, world: &dyn World) -> Result<Topology, Diagnostics> {
    let (topology, spans, mut diags) = parse::parse(src, path)?;
    validate::validate(&topology, &spans, path, world, &mut diags);
    diags.into_result(topology)
}

/// Parses and validates topology text alone, as [`parse_with`] with [`Unchecked`]: host paths
/// and seccomp profiles are taken as they are written.
pub fn parse_str(src: &str, path: &Path) -> Result<Topology, Diagnostics> {
    parse_with(src, path, &Unchecked)
}
