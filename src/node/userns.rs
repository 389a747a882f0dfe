//! User namespaces (`userns: true`): the node's root is an unprivileged host uid/gid range,
//! and the node's network namespace is owned by its user namespace, so node root can
//! configure its own interfaces while `topo` (root of the parent namespace) still wires and
//! addresses them.
//!
//! Ranges: 65536 ids per node, at `TOPO_USERNS_BASE` (default 2^30, far above the ranges
//! Debian's `/etc/subuid` hands out from 100000) plus a slot derived from the lab and node
//! names (FNV-1a, modulo 16384 slots, the highest id stays below 2^31). Slots are unique
//! within a lab (collisions probe to the next free slot, in node name order); two labs may
//! share a slot with a probability of about 1/16384 per pair of nodes.
//!
//! The user namespace is made first by a short-lived helper (`topo __userns`):
//! it unshares CLONE_NEWUSER (impossible in a multi-threaded process), `topo` writes its
//! uid and gid maps, and the helper then unshares CLONE_NEWNET, which is thereby owned by
//! the new user namespace. `topo` bind-mounts that network namespace under /run/netns; the
//! user namespace lives on as its owner and is found again with `NS_GET_USERNS`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::{Command, Stdio};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::NodeError;
use crate::plan::names::fnv1a;

/// Ids per node.
pub const RANGE: u32 = 65536;
const SLOTS: u32 = 16384;

/// The first host id of the range topo allocates from.
pub fn base() -> u32 {
    std::env::var("TOPO_USERNS_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

/// The first host uid/gid of each node's range, for the lab's `userns` nodes.
pub fn allocate(lab: &str, nodes: &[&str]) -> BTreeMap<String, u32> {
    let mut used = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut sorted = nodes.to_vec();
    sorted.sort();
    for node in sorted {
        let mut slot = (fnv1a(format!("{lab}/{node}").as_bytes()) % u64::from(SLOTS)) as u32;
        while !used.insert(slot) {
            slot = (slot + 1) % SLOTS;
        }
        out.insert(
            node.to_string(),
            base().saturating_add(slot.saturating_mul(RANGE)),
        );
    }
    out
}

/// Creates a network namespace owned by a new user namespace that maps root to
/// `host_id..host_id+RANGE`, and bind-mounts it at `target` (blocking).
pub fn create_netns(target: &std::path::Path, host_id: u32) -> Result<(), NodeError> {
    let exe = super::spawn::helper_exe()?;
    let mut child = Command::new(exe)
        .arg("__userns")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| NodeError::sys("start the user namespace helper", e))?;
    let pid = child.id();
    let result = (|| {
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| NodeError::sys("helper", std::io::Error::other("no stdout")))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| NodeError::sys("helper", std::io::Error::other("no stdin")))?;
        expect_line(&mut lines, "user")?;
        let map = format!("0 {host_id} {RANGE}\n");
        for file in ["uid_map", "gid_map"] {
            std::fs::write(format!("/proc/{pid}/{file}"), &map)
                .map_err(|e| NodeError::sys(format!("write {file}"), e))?;
        }
        stdin
            .write_all(b"mapped\n")
            .map_err(|e| NodeError::sys("talk to the helper", e))?;
        expect_line(&mut lines, "net")?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(|e| NodeError::sys(format!("create {}", target.display()), e))?;
        let src = format!("/proc/{pid}/ns/net");
        mount(
            Some(src.as_str()),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NodeError::sys(format!("bind mount {}", target.display()), e))?;
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if result.is_err() && target.exists() {
        let _ = std::fs::remove_file(target);
    }
    result
}

fn expect_line(
    lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>,
    want: &str,
) -> Result<(), NodeError> {
    match lines.next() {
        Some(Ok(l)) if l == want => Ok(()),
        other => Err(NodeError::sys(
            "create the user namespace",
            std::io::Error::other(format!("helper said {other:?} instead of {want}")),
        )),
    }
}

/// `topo __userns`: unshare a user namespace, wait for the maps, unshare a network
/// namespace, and wait until told to go (stdin closed or killed).
pub fn helper_main() -> i32 {
    super::restore_nofile_limit();
    let step = || -> Result<(), NodeError> {
        let mut out = std::io::stdout();
        unshare(CloneFlags::CLONE_NEWUSER)
            .map_err(|e| NodeError::sys("unshare the user namespace", e))?;
        writeln!(out, "user")
            .and_then(|()| out.flush())
            .map_err(|e| NodeError::sys("report", e))?;
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| NodeError::sys("wait for the maps", e))?;
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| NodeError::sys("unshare the network namespace", e))?;
        writeln!(out, "net")
            .and_then(|()| out.flush())
            .map_err(|e| NodeError::sys("report", e))?;
        let _ = std::io::stdin().read_line(&mut line);
        Ok(())
    };
    match step() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("topo __userns: {e}");
            1
        }
    }
}

nix::ioctl_none!(ns_get_userns, 0xb7, 0x1);

/// The user namespace that owns a namespace (`ioctl(NS_GET_USERNS)`).
pub fn owner(ns: &File) -> Result<File, NodeError> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new file descriptor (or -1);
    // `ns` is an open namespace file that outlives the call.
    let fd = unsafe { ns_get_userns(ns.as_raw_fd()) }
        .map_err(|e| NodeError::sys("find the owning user namespace", e))?;
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// After joining a user namespace the process keeps its host uid (0), which is unmapped
/// there; becoming uid and gid 0 *of the namespace* makes it the node's root (the first id
/// of the node's range on the host).
pub fn become_root() -> Result<(), NodeError> {
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setgroups(&[])
        .map_err(|e| NodeError::sys("setgroups in the user namespace", e))?;
    nix::unistd::setresgid(root_g, root_g, root_g)
        .map_err(|e| NodeError::sys("setgid in the user namespace", e))?;
    nix::unistd::setresuid(root_u, root_u, root_u)
        .map_err(|e| NodeError::sys("setuid in the user namespace", e))?;
    // A change of credentials sets the process's dumpable flag to `fs.suid_dumpable`; it must
    // stay off until exec (see `security::not_dumpable`).
    super::security::not_dumpable()
}
