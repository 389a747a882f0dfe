//! Build script: decides whether the tests that build labs on the real kernel run.
//!
//! They need root (namespaces, interfaces, cgroups). A build as root sets `cfg(kernel_tests)`;
//! any other build lists those tests as ignored ("needs root") instead of passing them
//! without testing anything. `TOPO_KERNEL_TESTS=1` or `=0` decides instead of the user id.
//! The answer is remembered with the build: a build directory is written by one user, and
//! `sudo` changes `USER`, which builds anew.

use std::fs;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kernel_tests)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TOPO_KERNEL_TESTS");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_UID");
    let run = match std::env::var("TOPO_KERNEL_TESTS").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => effective_uid() == Some(0),
    };
    if run {
        println!("cargo::rustc-cfg=kernel_tests");
    }
}

/// The effective user id of this process, from `/proc/self/status` (`Uid: real effective …`).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}
