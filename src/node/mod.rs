//! `node`: the node process model. Each node has an init process: PID 1 of the node's own
//! PID namespace, in its own mount, UTS and IPC namespaces, joined to the node's network
//! namespace. It reaps zombies and lives until `down`. Commands enter a node the way
//! `nsenter` does: join the init's namespaces, fork (a PID namespace applies to children
//! only), exec.
//!
//! Both helpers are the `topo` binary itself, re-executed through `/proc/self/exe` with a
//! hidden subcommand (`__spawn`, `__enter`, `__userns`) before any tokio runtime exists, so every
//! `setns`, `unshare` and `fork` happens in a single-threaded process.

pub mod cgroup;
pub mod enter;
pub mod init;
pub mod landlock;
pub mod mounts;
pub mod procfs;
pub mod seccomp;
pub mod security;
pub mod spawn;
pub mod userns;

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

/// The environment every process in a node starts with, before the node's own `env`.
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
