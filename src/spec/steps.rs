//! The file's `tests:`: steps that `topo test` runs in order against the running lab. A
//! step is a check (it passes or fails, retried within its `wait` window) or an action (it
//! changes the lab: a link down, an impairment, a service stopped, a variant file applied).

use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{Endpoint, Impair};

/// One step of `tests:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// As written (`name:`), or made from what the step does.
    pub name: String,
    /// The nodes it runs on (`node:` or `nodes:`); empty for the steps that act on the lab.
    pub nodes: Vec<String>,
    pub kind: StepKind,
    /// `expect: fail`: the check passes when what it looks for is not there.
    pub expect_fail: bool,
    /// A retry window: the step is run again, for the nodes and targets not yet passing,
    /// until it passes or the timeout ends. Without it, a check is tried once.
    pub wait: Option<Wait>,
}

/// How long a check is retried, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub timeout_us: u64,
    pub interval_us: u64,
}

impl Wait {
    pub const DEFAULT_INTERVAL_US: u64 = 500_000;
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A command run with `/bin/sh -c` in each node, and what its result must be.
    Exec { command: String, expect: ExecExpect },
    /// ICMP echo from each node to each target: a node's name (its first address of each
    /// family) or an address.
    Ping {
        targets: Vec<String>,
        family: Option<Family>,
        count: u32,
    },
    /// A route in each node's kernel table.
    Route(RouteCheck),
    /// OSPF neighbours in the given state, as the node's routing daemon reports them.
    Ospf {
        neighbors: Vec<String>,
        state: String,
        version: OspfVersion,
    },
    /// BGP sessions in the given state, as the node's routing daemon reports them.
    Bgp { peers: Vec<String>, state: String },
    /// Services of each node running (and passing their `ready` check, if they have one).
    Service { names: Vec<String> },
    /// Action: an interface set up or down (`topo link`).
    Link { endpoint: Endpoint, up: bool },
    /// Action: an interface's impairment set, or cleared (`topo impair`).
    Impair {
        endpoint: Endpoint,
        impair: Option<Impair>,
    },
    /// Action: services of each node stopped; with no names, each node's processes (its
    /// init, and with it everything in the node).
    Stop { services: Vec<String> },
    /// Action: `up` of the file in effect, which starts what is stopped (and reverts other
    /// drift); then the named services of each node must be running and ready.
    Start { services: Vec<String> },
    /// Action: `up` of another file of the same lab (a variant), which becomes the file in
    /// effect; `up` of the test's own file goes back.
    Up { file: PathBuf },
    /// Action: nothing, for a while.
    Sleep { us: u64 },
}

impl StepKind {
    /// The step's key in the file.
    pub fn key(&self) -> &'static str {
        match self {
            StepKind::Exec { .. } => "exec",
            StepKind::Ping { .. } => "ping",
            StepKind::Route(_) => "route",
            StepKind::Ospf { .. } => "ospf",
            StepKind::Bgp { .. } => "bgp",
            StepKind::Service { .. } => "service",
            StepKind::Link { .. } => "link",
            StepKind::Impair { .. } => "impair",
            StepKind::Stop { .. } => "stop",
            StepKind::Start { .. } => "start",
            StepKind::Up { .. } => "up",
            StepKind::Sleep { .. } => "sleep",
        }
    }

    /// Whether the step runs on nodes (`node:`/`nodes:` required) rather than on the lab.
    pub fn on_nodes(&self) -> bool {
        self.is_check() || matches!(self, StepKind::Stop { .. } | StepKind::Start { .. })
    }

    /// Whether the step checks something (and may take `expect: fail` and `wait:`).
    pub fn is_check(&self) -> bool {
        matches!(
            self,
            StepKind::Exec { .. }
                | StepKind::Ping { .. }
                | StepKind::Route(_)
                | StepKind::Ospf { .. }
                | StepKind::Bgp { .. }
                | StepKind::Service { .. }
        )
    }
}

/// What an `exec` step's command must give.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecExpect {
    /// Exit status; 0 unless given (`expect: fail`: anything but 0).
    pub status: Option<i32>,
    /// A regular expression that standard output must match.
    pub output: Option<String>,
    /// A JSON document that standard output (JSON) must contain: objects by key, arrays in
    /// any order, other values equal.
    pub json: Option<serde_json::Value>,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// OSPFv2 (IPv4) or OSPFv3 (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OspfVersion {
    V2,
    V3,
}

/// A route that must be in a node's kernel table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteCheck {
    pub to: IpNetwork,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// The kernel's protocol of the route (`ospf`, `bgp`, `bird`, `static`, `kernel`, …).
    pub protocol: Option<String>,
}

/// The keys of one step, for the JSON Schema of the file (the model above is what they are
/// read into).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct StepKeys {
    /// The step's name in reports and JUnit; made from what it does when not given.
    name: Option<String>,
    /// The node the step runs on.
    node: Option<String>,
    /// The nodes the step runs on, each on its own, in parallel.
    nodes: Option<Vec<String>>,
    /// A command run with `/bin/sh -c` in each node.
    exec: Option<String>,
    /// ICMP echo to a node or an address (or a list of them), or
    /// `{to, family: 4|6, count}`.
    ping: Option<serde_json::Value>,
    /// A prefix that must be in each node's kernel table, or `{to, via, dev, protocol}`.
    route: Option<serde_json::Value>,
    /// OSPF neighbours (nodes, router IDs or addresses) that must be full, or
    /// `{neighbors, state, version: 2|3}`.
    ospf: Option<serde_json::Value>,
    /// BGP peers (nodes or addresses) that must be established, or `{peers, state}`.
    bgp: Option<serde_json::Value>,
    /// Services (one or a list) that must be running and ready.
    service: Option<serde_json::Value>,
    /// `NODE:IF up` or `NODE:IF down`, or `{endpoint, state}`.
    link: Option<serde_json::Value>,
    /// `{endpoint: NODE:IF, delay, jitter, loss, corrupt, duplicate, reorder, rate}`, or
    /// `{endpoint, clear: true}`.
    impair: Option<serde_json::Value>,
    /// Services (one or a list) to stop on each node, or `node` for the whole node.
    stop: Option<serde_json::Value>,
    /// Services (one or a list) to start again on each node, or `node`.
    start: Option<serde_json::Value>,
    /// A file of the same lab to apply (relative to this one).
    up: Option<String>,
    /// A pause (`2s`).
    sleep: Option<String>,
    /// `fail`, or for `exec` `{status, output, json}`.
    expect: Option<serde_json::Value>,
    /// A retry window: `30s`, or `{timeout, interval}`.
    wait: Option<serde_json::Value>,
}
