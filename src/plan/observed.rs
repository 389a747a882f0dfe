//! What the kernel holds for a lab, as plain data: filled by `net::observe` and the node
//! module, compared by `diff`. Nothing here talks to the kernel.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

/// A process as `topo` records it: its PID in the host namespace and its start time in clock
/// ticks since boot (field 22 of `/proc/PID/stat`). `node::procfs` reads it from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// Namespaces of the lab's naming scheme that exist, by name.
    pub namespaces: BTreeMap<String, NsObserved>,
    /// Host links that carry this lab's marker or have the name of a desired host interface.
    pub host_links: Vec<LinkObs>,
    /// Root qdiscs of `topo`'s kinds on host links.
    pub host_qdiscs: Vec<QdiscObs>,
    /// Node processes, by node name.
    pub nodes: BTreeMap<String, NodeObs>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "owner", rename_all = "lowercase")]
pub enum NsObserved {
    /// Exists, but its loopback does not carry this lab's marker: not ours, never touched.
    Foreign {
        marker: Option<String>,
    },
    Ours(NsState),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NsState {
    pub links: Vec<LinkObs>,
    pub addrs: Vec<AddrObs>,
    /// Routes of the main table with `topo`'s protocol number only.
    pub routes: Vec<RouteObs>,
    /// Values of the sysctls the file declares for this namespace.
    pub sysctls: BTreeMap<String, String>,
    /// Root qdiscs of `topo`'s kinds (netem, tbf) and the impairment they apply.
    pub qdiscs: Vec<QdiscObs>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QdiscObs {
    pub index: u32,
    pub kind: String,
    pub impair: crate::spec::Impair,
}

impl NsState {
    pub fn link(&self, name: &str) -> Option<&LinkObs> {
        self.links.iter().find(|l| l.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkObs {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub mtu: u32,
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    pub controller: Option<u32>,
    pub kind: Option<String>,
    /// Device group (see `names::lab_group`).
    #[serde(default)]
    pub group: u32,
    /// For a VXLAN interface: its tunnel's attributes (and the flood entries of its FDB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<super::VxlanSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddrObs {
    pub index: u32,
    pub addr: IpNetwork,
    /// Added by `topo` (address protocol `IFAPROT_TOPO`).
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteObs {
    pub dst: IpNetwork,
    pub via: Vec<IpAddr>,
    pub oifs: Vec<u32>,
    pub metric: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeObs {
    /// The init process is alive and holds the node's current network namespace.
    pub init_alive: bool,
    /// The recorded init, if it is still running.
    pub init: Option<ProcId>,
    /// Running services and the command each was started with.
    pub services: BTreeMap<String, ServiceObs>,
    /// Other inits in the node's namespace (an `up` stopped before it recorded them):
    /// stopped by the next `up`.
    #[serde(default)]
    pub strays: Vec<ProcId>,
    /// The limits the node's cgroup files hold; `None` when not read (no cgroups).
    pub limits: Option<crate::spec::Limits>,
    /// The `exec:` lines that have run in the current init, in order; `None` when the record
    /// does not say (see `pending_exec`).
    #[serde(default)]
    pub exec_done: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceObs {
    pub pid: i32,
    /// What the service was started as (`Service::signature`).
    pub command: String,
    pub alive: bool,
    /// A oneshot service that ran to completion in the current init.
    #[serde(default)]
    pub completed: bool,
}
