//! Build script: decides whether the tests that build labs on the real kernel run.
//!
//! They need root (namespaces, interfaces, cgroups). A build as root sets `cfg(kernel_tests)`;
//! any other build lists those tests as ignored ("needs root") instead of passing them
//! without testing anything. `TOPO_KERNEL_TESTS=1` or `=0` decides instead of the user id.
//! The answer is remembered with the build: a build directory is written by one user, and
//! `sudo` changes `USER`, which builds anew.
//!
//! The FRR lab tests also need FRR's daemons (Debian's `frr` package): `cfg(frr)` is set when
//! `/usr/lib/frr/zebra` exists, and without it those tests are listed as ignored ("needs root
//! and FRR"). The build is redone when that file changes or, while it is missing, when dpkg's
//! package database does (installing `frr` changes it). Cargo reruns a build script on every
//! build for a watched path that does not exist, so a missing path is never watched; on a host
//! without dpkg, `touch build.rs` after installing FRR.
//!
//! The BIRD lab test likewise needs BIRD 2 (Debian's `bird2` package): `cfg(bird)` is set when
//! `/usr/sbin/bird` exists, watched the same way.

use std::fs;
use std::path::Path;

/// A daemon of Debian's `frr` package; its presence enables the FRR lab tests.
const FRR_ZEBRA: &str = "/usr/lib/frr/zebra";
/// The daemon of Debian's `bird2` package; its presence enables the BIRD lab test.
const BIRD: &str = "/usr/sbin/bird";
/// dpkg's package database: it changes when a package is installed.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kernel_tests)");
    println!("cargo::rustc-check-cfg=cfg(frr)");
    println!("cargo::rustc-check-cfg=cfg(bird)");
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
    let mut watch_dpkg = false;
    for (daemon, cfg) in [(FRR_ZEBRA, "frr"), (BIRD, "bird")] {
        if Path::new(daemon).exists() {
            println!("cargo::rustc-cfg={cfg}");
            println!("cargo::rerun-if-changed={daemon}");
        } else {
            watch_dpkg = true;
        }
    }
    if watch_dpkg && Path::new(DPKG_STATUS).exists() {
        println!("cargo::rerun-if-changed={DPKG_STATUS}");
    }
}

/// The effective user id of this process, from `/proc/self/status` (`Uid: real effective …`).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}
