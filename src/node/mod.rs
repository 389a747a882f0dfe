//! `node`: the node process model. Each node has an init process: PID 1 of the node's own
//! PID namespace, in its own mount, UTS and IPC namespaces. It holds the node's network
//! namespace: by default from outside, on a descriptor (see [`procfs::NODE_NET_FD`]), else
//! by being in it. It reaps zombies and lives until `down`. Commands enter a node the way
//! `nsenter` does: join the init's namespaces and the node's network namespace, fork (a PID
//! namespace applies to children only), exec.
//!
//! Both helpers are the `topo` binary itself, re-executed through `/proc/self/exe` with a
//! hidden subcommand (`__spawn`, `__enter`) before any tokio runtime exists, so every
//! `setns`, `unshare` and `fork` happens in a single-threaded process.

pub mod cgroup;
pub mod channel;
pub mod enter;
pub mod init;
pub mod landlock;
pub mod mounts;
pub mod procfs;
pub mod seccomp;
pub mod security;
pub mod serve;
pub mod spawn;
pub mod userns;
pub mod vfork;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use procfs::ProcId;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node}: {message}")]
    Failed { node: String, message: String },
}

impl NodeError {
    pub fn sys(what: impl Into<String>, e: impl Into<std::io::Error>) -> Self {
        NodeError::Sys {
            what: what.into(),
            source: e.into(),
        }
    }
}

impl From<nix::errno::Errno> for NodeError {
    fn from(e: nix::errno::Errno) -> Self {
        NodeError::sys("system call", e)
    }
}

/// What a node's init needs to set itself up; passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitConfig {
    pub lab: String,
    pub node: String,
    /// The node's named network namespace (`/run/netns/LAB-NODE`).
    pub netns: PathBuf,
    /// The lab's hosts file, bind-mounted read-only on the node's `/etc/hosts`.
    pub hosts: PathBuf,
    pub binds: Vec<crate::spec::Bind>,
    /// The init's log (its standard error), in the run directory.
    #[serde(default)]
    pub log: Option<PathBuf>,
    /// The node's own root filesystem (`rootfs:`); `None`: the host's, read-only.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// The node's security profile and cgroups; the init is held to them like every other
    /// process of the node.
    #[serde(default)]
    pub ctx: NodeContext,
    /// Sysctls of the node's network namespace that the init sets through its own procfs
    /// before any interface is made: `topo`'s defaults for every namespace and the node's own
    /// keys that name no interface. (Through the host's `/proc`, each namespace makes the
    /// lookups of all the others slower.)
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// Sizes of the node's tmpfs mounts.
    #[serde(default)]
    pub tmpfs: TmpfsSizes,
    /// The node's private directories (`dirs:`), bound read-write after the binds; never
    /// idmapped (their owners are stored as the host sees the node's ids).
    #[serde(default)]
    pub dirs: Vec<crate::spec::Bind>,
    /// The abstract name at which the spawner binds the node's exec socket for the init, in
    /// the host's network namespace (see [`channel`]); `None`: the node has none, and `topo
    /// exec` enters it from outside.
    #[serde(default)]
    pub exec_socket: Option<String>,
    /// The device and inode of the lab's lock file, a descriptor of which, open for reading,
    /// each request to the exec socket must carry.
    #[serde(default)]
    pub exec_token: Option<(u64, u64)>,
}

/// Sizes in bytes of a node's tmpfs mounts (`size=` of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsSizes {
    pub tmp: u64,
    pub run: u64,
    pub dev: u64,
    pub dev_shm: u64,
}

impl From<&crate::spec::Tmpfs> for TmpfsSizes {
    fn from(t: &crate::spec::Tmpfs) -> Self {
        let [tmp, run, dev, dev_shm] = t.sizes();
        TmpfsSizes {
            tmp,
            run,
            dev,
            dev_shm,
        }
    }
}

impl Default for TmpfsSizes {
    fn default() -> Self {
        TmpfsSizes::from(&crate::spec::Tmpfs::default())
    }
}

/// What every process started in a node gets: its environment, its security profile and its
/// cgroups. Recorded per node in the run directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeContext {
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub security: security::Security,
    /// `cgroup.procs` files of the node's groups (one per hierarchy in use).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// The node has its own user namespace (the owner of its network namespace).
    #[serde(default)]
    pub userns: bool,
}

/// Whether `node` is a node name that is also a plain file name (lowercase letters, digits
/// and dashes, not starting with a dash): only such a name is looked up in the node records
/// or named in an exec socket's name.
pub fn plain_name(node: &str) -> bool {
    !node.is_empty()
        && !node.starts_with('-')
        && node
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The environment every process in a node starts with, before the node's own `env` (which
/// may override it). Nothing of `topo`'s caller is passed on, but `TERM` to a program that
/// `topo exec` runs on a terminal. The helper modes themselves start with an empty environment
/// (see `spawn::helper_command`), so the init's own is empty too.
pub fn base_env(lab: &str, node: &str) -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), node.into()),
        ("TOPO_LAB".into(), lab.into()),
        ("TOPO_NODE".into(), node.into()),
    ]
}

/// Environment variable that carries the caller's soft open-file limit to the helper modes.
const NOFILE_ENV: &str = "TOPO_NOFILE_SOFT";

/// The open-file limit `topo` asks for when the hard limit is lower and it may raise it
/// (root, or `CAP_SYS_RESOURCE`): two descriptors for each of 100 000 namespaces and room to
/// spare, within the kernel's `fs.nr_open`.
const NOFILE_WANTED: u64 = 262_144;

/// Raises this process's limit on open files. `topo` holds two descriptors per namespace (the
/// namespace and its netlink socket) for a whole run, so a 1000-node lab needs more than the
/// usual soft limit of 1024 and a 10 000-node lab more than many hosts' hard limit: the soft
/// limit goes to the hard limit, and both to [`NOFILE_WANTED`] (at most `fs.nr_open`) where
/// the process may raise the hard limit. Call before any thread starts. Processes started in
/// nodes get the caller's soft limit back (see [`restore_nofile_limit`]): programs written
/// for `select(2)` break above 1024.
pub fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let wanted = NOFILE_WANTED.min(nr_open);
    // Raising the hard limit needs privilege; without it, the soft limit goes up to the hard.
    let raised = wanted > hard && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok();
    if raised || (soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok()) {
        // Single-threaded still (the caller's contract), so changing the environment is safe.
        std::env::set_var(NOFILE_ENV, soft.to_string());
    }
}

/// The soft open-file limit of `topo`'s caller, if `topo` raised its own.
pub fn caller_nofile() -> Option<String> {
    std::env::var(NOFILE_ENV).ok()
}

/// The environment variables the helper modes get from `topo`: the caller's open-file limit
/// only.
pub fn helper_env() -> Vec<(&'static str, String)> {
    caller_nofile()
        .map(|v| (NOFILE_ENV, v))
        .into_iter()
        .collect()
}

/// In a helper mode: gives the open-file limit back the value `topo`'s caller had.
pub fn restore_nofile_limit() {
    restore_nofile_limit_to(caller_nofile().as_deref());
    // Single-threaded (helper modes run before any thread), so changing the environment is
    // safe.
    std::env::remove_var(NOFILE_ENV);
}

/// Sets the soft open-file limit to `soft` (a number), if given.
pub fn restore_nofile_limit_to(soft: Option<&str>) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Some(soft) = soft.and_then(|v| v.parse::<nix::libc::rlim_t>().ok()) else {
        return;
    };
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard);
    }
}
