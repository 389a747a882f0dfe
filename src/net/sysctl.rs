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
//!
//! A few keys the kernel also answers over netlink (`RTM_GETNETCONF`): forwarding, rp_filter
//! and the like, of a namespace's `all` and `default` settings ([`netconf_of`]). An
//! observation reads those on the socket it has open in the namespace ([`read_with`]): the
//! path of a node's file crosses four mounts, each looked up in the kernel's table of every
//! mount of the machine, which thousands of nodes make large.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dump::{NetconfAnswer, Requester};
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

/// `NETCONFA_IFINDEX_ALL` and `NETCONFA_IFINDEX_DEFAULT`: the `conf.all` and `conf.default`
/// settings of a namespace, in a netconf request.
pub const NETCONF_ALL: i32 = -1;
pub const NETCONF_DEFAULT: i32 = -2;
/// `NETCONFA_*` attributes of a netconf answer (`linux/netconf.h`).
const NETCONFA_FORWARDING: u16 = 2;
const NETCONFA_RP_FILTER: u16 = 3;
const NETCONFA_PROXY_NEIGH: u16 = 5;
const NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN: u16 = 6;

/// Where netlink answers a sysctl: the family, the settings (`all` or `default`) and the
/// attribute of a netconf answer that holds the key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netconf {
    pub family: u8,
    pub ifindex: i32,
    pub attr: u16,
}

/// The netconf attribute that holds `key`, for the keys whose file shows exactly that value:
/// `net.ipv4.ip_forward` (the same setting as `net.ipv4.conf.all.forwarding`) and, under
/// `net.ipv4.conf` and `net.ipv6.conf`, `all` and `default`'s `forwarding` and
/// `ignore_routes_with_linkdown`, IPv4's `rp_filter` and `proxy_arp`, IPv6's `proxy_ndp`.
pub fn netconf_of(key: &str) -> Option<Netconf> {
    const INET: u8 = libc::AF_INET as u8;
    const INET6: u8 = libc::AF_INET6 as u8;
    if key == "net.ipv4.ip_forward" {
        return Some(Netconf {
            family: INET,
            ifindex: NETCONF_ALL,
            attr: NETCONFA_FORWARDING,
        });
    }
    let (family, rest) = match key.strip_prefix("net.ipv4.conf.") {
        Some(rest) => (INET, rest),
        None => (INET6, key.strip_prefix("net.ipv6.conf.")?),
    };
    let ifindex = match rest.split_once('.')? {
        ("all", _) => NETCONF_ALL,
        ("default", _) => NETCONF_DEFAULT,
        _ => return None,
    };
    let attr = match (family, rest.split_once('.')?.1) {
        (_, "forwarding") => NETCONFA_FORWARDING,
        (_, "ignore_routes_with_linkdown") => NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN,
        (INET, "rp_filter") => NETCONFA_RP_FILTER,
        (INET, "proxy_arp") | (INET6, "proxy_ndp") => NETCONFA_PROXY_NEIGH,
        _ => return None,
    };
    Some(Netconf {
        family,
        ifindex,
        attr,
    })
}

/// Reads the given keys in the current thread's namespace as [`read_here`] does, those that
/// netlink answers ([`netconf_of`]) on `r`, a socket of the same namespace: one request per
/// family and settings, whatever the number of keys. A key whose answer lacks it is read
/// from its file.
pub fn read_with(r: &mut Requester, proc_dir: &Path, keys: &[&String]) -> BTreeMap<String, String> {
    // Each family and set's answer, asked once: `None` where the request failed.
    let mut answers: BTreeMap<(u8, i32), Option<NetconfAnswer>> = BTreeMap::new();
    keys.iter()
        .filter_map(|k| {
            let answered = netconf_of(k).and_then(|n| {
                answers
                    .entry((n.family, n.ifindex))
                    .or_insert_with(|| r.netconf(n.family, n.ifindex).ok())
                    .as_ref()?
                    .iter()
                    .find(|(attr, _)| *attr == n.attr)
                    .map(|(_, v)| v.to_string())
            });
            answered
                .or_else(|| read_one(proc_dir, k))
                .map(|v| ((*k).clone(), v))
        })
        .collect()
}

/// Reads the given keys in the current thread's namespace; a key the kernel does not have is
/// left out (so the plan shows it as to be set, and setting it reports the kernel's error).
pub fn read_here(proc_dir: &Path, keys: &[&String]) -> BTreeMap<String, String> {
    keys.iter()
        .filter_map(|k| read_one(proc_dir, k).map(|v| ((*k).clone(), v)))
        .collect()
}

/// The value of one key from its file, trimmed; `None` if the kernel does not have it.
fn read_one(proc_dir: &Path, key: &str) -> Option<String> {
    let read = std::fs::read_to_string(path(proc_dir, key)).or_else(|e| {
        // The node's procfs may be gone (its init ended) or not be one (a node mounted
        // something else there): the host's answers the same, only slower.
        if proc_dir == Path::new(HOST_PROC) {
            Err(e)
        } else {
            std::fs::read_to_string(path(Path::new(HOST_PROC), key))
        }
    });
    read.ok().map(|v| v.trim().to_string())
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

    #[test]
    fn netlink_answers_forwarding_and_the_like_of_all_and_default_only() {
        let four = libc::AF_INET as u8;
        let six = libc::AF_INET6 as u8;
        let at = |family, ifindex, attr| {
            Some(Netconf {
                family,
                ifindex,
                attr,
            })
        };
        for (key, want) in [
            (
                "net.ipv4.ip_forward",
                at(four, NETCONF_ALL, NETCONFA_FORWARDING),
            ),
            (
                "net.ipv4.conf.all.forwarding",
                at(four, NETCONF_ALL, NETCONFA_FORWARDING),
            ),
            (
                "net.ipv4.conf.default.forwarding",
                at(four, NETCONF_DEFAULT, NETCONFA_FORWARDING),
            ),
            (
                "net.ipv6.conf.all.forwarding",
                at(six, NETCONF_ALL, NETCONFA_FORWARDING),
            ),
            (
                "net.ipv4.conf.all.rp_filter",
                at(four, NETCONF_ALL, NETCONFA_RP_FILTER),
            ),
            (
                "net.ipv4.conf.default.proxy_arp",
                at(four, NETCONF_DEFAULT, NETCONFA_PROXY_NEIGH),
            ),
            (
                "net.ipv6.conf.all.proxy_ndp",
                at(six, NETCONF_ALL, NETCONFA_PROXY_NEIGH),
            ),
            (
                "net.ipv6.conf.default.ignore_routes_with_linkdown",
                at(six, NETCONF_DEFAULT, NETCONFA_IGNORE_ROUTES_WITH_LINKDOWN),
            ),
            // An interface's settings, other settings and other trees: from the file.
            ("net.ipv4.conf.eth0.rp_filter", None),
            ("net.ipv4.conf.eth0.100.forwarding", None),
            ("net.ipv6.conf.all.rp_filter", None),
            ("net.ipv4.conf.all.proxy_ndp", None),
            ("net.ipv6.conf.all.proxy_arp", None),
            ("net.ipv4.conf.all.accept_redirects", None),
            ("net.ipv4.conf.all", None),
            ("net.ipv4.conf.all.forwarding.x", None),
            ("net.ipv6.ip_forward", None),
            ("net.ipv4.tcp_syn_retries", None),
            ("net.core.somaxconn", None),
        ] {
            assert_eq!(netconf_of(key), want, "{key}");
        }
    }
}
