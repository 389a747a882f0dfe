//! Per-network-namespace sysctls, read and written through `/proc/sys/net`. The kernel
//! resolves `/proc/sys/net` against the network namespace of the calling *thread*, so these
//! functions run on the dedicated namespace thread after `setns` (see `netns::enter_each`).
//!
//! Which procfs the path goes through matters for speed, not for the answer. Every network
//! namespace adds its own `net/ipv4`, `net/ipv6`, … entries to the dentry cache of the procfs
//! they are looked up in, all with the same parent and name, and the kernel finds the right
//! one by walking them all: through the host's `/proc`, writing a sysctl in each of N
//! namespaces costs O(N²) lookups. A node's init mounts a procfs of its own, which
//! only that node's namespace ever fills, so `topo` goes through it
//! (`/proc/PID/root/proc`) when the node's init is known, and through `/proc` otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::NetError;

/// The host's procfs.
pub const HOST_PROC: &str = "/proc";

/// The procfs of a node whose init has this host PID: the one mounted in its mount namespace.
pub fn node_proc(init_pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{init_pid}/root/proc"))
}

/// The file of a sysctl key under a procfs: `net.ipv4.ip_forward` →
/// `PROC/sys/net/ipv4/ip_forward`.
pub fn path(proc_dir: &Path, key: &str) -> PathBuf {
    proc_dir.join("sys").join(key.replace('.', "/"))
}

/// Reads the given keys in the current thread's namespace; a key the kernel does not have is
/// left out (so the plan shows it as to be set, and setting it reports the kernel's error).
pub fn read_here(proc_dir: &Path, keys: &[&String]) -> BTreeMap<String, String> {
    keys.iter()
        .filter_map(|k| {
            read_one(proc_dir, k)
                .ok()
                .map(|v| ((*k).clone(), v.trim().to_string()))
        })
        .collect()
}

fn read_one(proc_dir: &Path, key: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path(proc_dir, key)).or_else(|e| {
        // The node's procfs may be gone (its init ended) or not be one (a node mounted
        // something else there): the host's answers the same, only slower.
        if proc_dir == Path::new(HOST_PROC) {
            Err(e)
        } else {
            std::fs::read_to_string(path(Path::new(HOST_PROC), key))
        }
    })
}

/// Writes one key in the current thread's namespace (`sysctl -w KEY=VALUE`).
pub fn write_here(proc_dir: &Path, key: &str, value: &str, who: &str) -> Result<(), NetError> {
    write_file(&path(proc_dir, key), value)
        .or_else(|e| {
            if proc_dir == Path::new(HOST_PROC) {
                Err(e)
            } else {
                write_file(&path(Path::new(HOST_PROC), key), value)
            }
        })
        .map_err(|e| NetError::io(format!("set sysctl {key}={value} in {who}"), e))
}

/// Writes a sysctl file. Opened for writing only: `std::fs::write` would ask to create and
/// truncate it, and an open that may create takes the directory's lock and a slower lookup,
/// on every write of every init.
pub fn write_file(file: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)?
        .write_all(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_files_under_the_chosen_procfs() {
        assert_eq!(
            path(Path::new(HOST_PROC), "net.ipv4.ip_forward"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path(&node_proc(42), "net.ipv6.conf.all.forwarding"),
            PathBuf::from("/proc/42/root/proc/sys/net/ipv6/conf/all/forwarding")
        );
    }
}
