//! Integration tests on the real kernel: each builds a lab with the `topo` binary and asserts
//! on what the kernel holds. They need root: a build by another user lists them as ignored
//! ("needs root"; see `build.rs`).

mod common;

mod attacks;
mod attacks_fs;
mod attacks_logs;
mod bad_input;
mod binds;
mod bird;
mod capture;
mod checks;
mod cli;
mod concurrency;
mod core;
mod crash;
mod daemons;
mod damage;
mod docs;
mod foreground;
mod frr;
mod impair;
mod import;
mod isolation;
mod limits;
mod links;
mod logs;
mod multihost;
mod routing;
mod scale;
mod security;
mod services;
mod shares;
mod status;
mod stress;
mod testrun;
mod vxlan;
