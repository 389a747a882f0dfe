//! topo: a YAML topology becomes a live network lab on one Linux host.
//!
//! Functional core, imperative shell: [`spec`] parses and validates, [`plan`] diffs the
//! desired lab against what the kernel holds (both pure); `net` (netlink), `node`
//! (namespaces and processes) and `state` (run directory), private to the crate, act; [`Lab`]
//! ties them together for the CLI and for Rust tests.
#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod capture;
pub mod check;
pub mod cli;
pub(crate) mod fds;
pub mod import;
pub mod lab;
pub(crate) mod net;
pub(crate) mod node;
pub mod plan;
pub mod shapes;
pub mod spec;
pub(crate) mod state;

pub use lab::{Lab, LabError, LabGuard};

/// The kernel primitives of labs that span hosts (VXLAN tunnels, probes of a link's far end),
/// reachable from the kernel tests in `tests/netns`.
#[doc(hidden)]
pub use net::{probe, vxlan, NetError};

/// The abstract name of a node's exec socket, for the kernel tests that attack it.
#[doc(hidden)]
pub use node::channel::socket_name as exec_socket_name;
