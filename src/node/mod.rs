//! `node`: the node process model. Each node has an init process: PID 1 of the node's own
//! PID namespace, in its own mount, UTS and IPC namespaces, joined to the node's network
//! namespace. It reaps zombies and lives until `down`. Commands enter a node the way
//! `nsenter` does: join the init's namespaces, fork (a PID namespace applies to children
//! only), exec.
//!
//! Both helpers are the `topo` binary itself, re-executed through `/proc/self/exe` with a
//! hidden subcommand (`__init`, `__enter`) before any tokio runtime exists, so every
//! `setns`, `unshare` and `fork` happens in a single-threaded process.

pub mod enter;
pub mod init;
pub mod mounts;
pub mod procfs;
pub mod seccomp;
pub mod spawn;

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
