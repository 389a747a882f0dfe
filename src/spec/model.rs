//! The desired state of a lab, as the topology file declares it (schema v1).
//!
//! These types are the output of `spec`: groups and defaults are already merged into every
//! node, units are already converted (bytes, bits per second, microseconds, parts per
//! million), and relative paths are already resolved against the topology file's directory.
//! They are plain data: no syscalls, no I/O. The JSON Schema shipped in
//! `docs/topology.schema.json` is generated from them, so the `schemars` attributes describe
//! the *file* form of each field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The pseudo node name that stands for the host's own network namespace in an endpoint.
pub const HOST: &str = "host";

/// A whole topology file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Lab name: `[a-z0-9-]`, 1..12 characters; prefixes every kernel object of the lab.
    pub name: String,
    /// Merged into every node; a node's own keys win (maps are merged key by key).
    #[serde(default)]
    pub defaults: Defaults,
    /// Node keys shared by several nodes, by group name (`[a-z0-9-]`): a node takes a
    /// group's keys with `group: NAME`; its own keys win, and mappings merge key by key.
    // The keys are merged into the nodes; the model keeps each group's node names.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Node>")]
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// The nodes, by name (`[a-z0-9-]`, starting with a letter or digit).
    #[serde(default)]
    pub nodes: BTreeMap<String, Node>,
    /// Point-to-point links: veth pairs, or VXLAN tunnels between hosts.
    #[serde(default)]
    pub links: Vec<Link>,
    /// L2 segments; each bridge lives in the lab's hidden bridge namespace.
    #[serde(default)]
    pub bridges: BTreeMap<String, Bridge>,
    /// How large the logs of services and `exec:` commands grow before they are rotated.
    #[serde(default)]
    pub logs: Logs,
    /// Checks and actions that `topo test` runs in order against the running lab; `up`
    /// and `plan` leave them aside.
    #[serde(default)]
    #[schemars(with = "Vec<super::steps::StepKeys>")]
    pub tests: Vec<super::steps::Step>,
    /// The machines the lab spans, by name (`[a-z0-9-]`); each runs its share with `topo up
    /// --host NAME`. Absent: the lab runs on one machine.
    #[serde(default)]
    pub hosts: BTreeMap<String, Host>,
    /// The tunnels between hosts.
    #[serde(default)]
    pub vxlan: Vxlan,
}

/// One machine of a multi-host lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Its underlay address, which the other hosts reach it at (IPv4 or IPv6; every host of
    /// a lab of one family).
    #[schemars(with = "String")]
    pub address: IpAddr,
    /// MTU of its underlay network; default 1500.
    #[serde(default = "Host::default_mtu")]
    pub mtu: u32,
}

impl Host {
    pub const DEFAULT_MTU: u32 = 1500;
    fn default_mtu() -> u32 {
        Self::DEFAULT_MTU
    }
}

/// The VXLAN tunnels that carry links and bridges between hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vxlan {
    /// UDP port of every tunnel of the lab, on every host; default 14789.
    #[serde(default = "Vxlan::default_port")]
    pub port: u16,
}

impl Vxlan {
    pub const DEFAULT_PORT: u16 = 14789;
    fn default_port() -> u16 {
        Self::DEFAULT_PORT
    }
}

impl Default for Vxlan {
    fn default() -> Self {
        Vxlan {
            port: Self::DEFAULT_PORT,
        }
    }
}

/// The cap on each service's (and each node's `exec:`) log in the run directory: the log
/// `NAME.log` is rotated to `NAME.log.1` (… `NAME.log.KEEP`) when it would pass `max_size`,
/// and the oldest is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// Bytes per log file (file form: `1Mi`, `64Ki`, `1048576`); default 1 MiB.
    #[serde(default = "Logs::default_max_size")]
    #[schemars(with = "SizeValue")]
    pub max_size: u64,
    /// Rotated files kept beside the current one (0 to 100); default 2.
    #[serde(default = "Logs::default_keep")]
    pub keep: u32,
}

impl Logs {
    pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;
    pub const DEFAULT_KEEP: u32 = 2;
    /// The largest `keep` the file may ask for.
    pub const MAX_KEEP: u32 = 100;
    fn default_max_size() -> u64 {
        Self::DEFAULT_MAX_SIZE
    }
    fn default_keep() -> u32 {
        Self::DEFAULT_KEEP
    }
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            max_size: Self::DEFAULT_MAX_SIZE,
            keep: Self::DEFAULT_KEEP,
        }
    }
}

/// Keys that `defaults:` may set for every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SysctlFileValue>")]
    pub sysctls: BTreeMap<String, SysctlValue>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: Limits,
    /// Sizes of the node's own tmpfs mounts.
    #[serde(default)]
    pub tmpfs: Tmpfs,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub seccomp: Option<Seccomp>,
    #[serde(default)]
    pub userns: Option<bool>,
    /// AppArmor profile for the node's processes (refused where AppArmor is not active).
    #[serde(default)]
    pub apparmor: Option<String>,
}

/// One node: an isolated process tree with its own network namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The group (in `groups`) whose keys the node takes.
    // Already merged into the fields here.
    #[serde(default)]
    pub group: Option<String>,
    /// The host (in `hosts`) the node runs on.
    #[serde(default)]
    pub host: Option<String>,
    /// Configuration of the node's interfaces (links and bridges only wire them).
    #[serde(default)]
    pub interfaces: BTreeMap<String, Interface>,
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Per-network-namespace sysctls (`net.*` keys only).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SysctlFileValue>")]
    pub sysctls: BTreeMap<String, SysctlValue>,
    /// `host-path:node-path[:ro]`, the host path relative to the topology file.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub binds: Vec<Bind>,
    /// The node's own root filesystem (a directory, relative to the topology file).
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// Landlock filesystem policy.
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// One-shot commands, run in order with `/bin/sh -c` after the node is wired.
    #[serde(default)]
    pub exec: Vec<String>,
    /// Long-running (or one-shot) commands, by name, started after `exec` in the order their
    /// `after:` gives, logged to the run directory. File form: a command, or a mapping.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ServiceFileValue>")]
    pub services: BTreeMap<String, Service>,
    /// Private writable directories, by their path in the node: each is a directory of the
    /// lab's run directory bound read-write there, made with an owner and a mode.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Option<Dir>>")]
    pub dirs: BTreeMap<PathBuf, Dir>,
    #[serde(default)]
    pub limits: Limits,
    /// Sizes of the node's own tmpfs mounts.
    #[serde(default)]
    pub tmpfs: Tmpfs,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub seccomp: Option<Seccomp>,
    /// Whether the node has a user namespace of its own; absent means yes (see
    /// [`Node::has_userns`]).
    #[serde(default)]
    pub userns: Option<bool>,
    /// AppArmor profile for the node's processes (refused where AppArmor is not active).
    #[serde(default)]
    pub apparmor: Option<String>,
}

impl Node {
    /// Whether the node gets its own user namespace: yes unless the file says
    /// `userns: false`.
    pub fn has_userns(&self) -> bool {
        self.userns.unwrap_or(true)
    }
}

/// A service as the file may write it: the command alone, or the full mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ServiceFileValue {
    Command(String),
    Full(Service),
}

/// A node's service: a command run with `/bin/sh -c` in the node, tracked by `topo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub command: String,
    /// How the command runs: `simple` (it is the service), `forking` (it starts the service
    /// and exits; the service is the process its `pid_file` names), `oneshot` (it runs to
    /// completion once per init).
    #[serde(default, rename = "type")]
    pub kind: ServiceKind,
    /// For `forking`: the file (a path in the node) the daemon writes its PID to.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// Services of the same node that must be started (and ready) first.
    #[serde(default)]
    pub after: Vec<String>,
    /// How `up` knows the service is ready; without it, a service is ready once started.
    #[serde(default)]
    pub ready: Option<Ready>,
    /// Whether a `simple` service that ends with a failure is started again (with back-off).
    #[serde(default)]
    pub restart: Restart,
}

impl Service {
    /// A service given by its command alone.
    pub fn command(command: impl Into<String>) -> Service {
        Service {
            command: command.into(),
            ..Service::default()
        }
    }

    /// What identifies the service as started: the command alone for a plain service (so that
    /// labs brought up by earlier versions keep their services), else every setting.
    pub fn signature(&self) -> String {
        let plain = Service::command(self.command.clone());
        if *self == plain {
            return self.command.clone();
        }
        serde_json::to_string(self).unwrap_or_else(|_| self.command.clone())
    }

    /// The service a [`Service::signature`] was made from.
    pub fn from_signature(signature: &str) -> Service {
        match signature.starts_with('{') {
            true => serde_json::from_str(signature).unwrap_or_else(|_| Service::command(signature)),
            false => Service::command(signature),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    #[default]
    Simple,
    Forking,
    Oneshot,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Simple => "simple",
            ServiceKind::Forking => "forking",
            ServiceKind::Oneshot => "oneshot",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    No,
    OnFailure,
}

/// A readiness check: `command` (run with `/bin/sh -c` in the node) exits 0 once the service
/// is ready; it is tried every `interval` until `timeout` has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub command: String,
    /// Microseconds (file form: `10s`, `500ms`); default 30 s.
    #[serde(default = "Ready::default_timeout")]
    #[schemars(with = "Option<String>")]
    pub timeout: u64,
    /// Microseconds (file form: `100ms`); default 100 ms.
    #[serde(default = "Ready::default_interval")]
    #[schemars(with = "Option<String>")]
    pub interval: u64,
}

impl Ready {
    pub const DEFAULT_TIMEOUT_US: u64 = 30_000_000;
    pub const DEFAULT_INTERVAL_US: u64 = 100_000;
    fn default_timeout() -> u64 {
        Self::DEFAULT_TIMEOUT_US
    }
    fn default_interval() -> u64 {
        Self::DEFAULT_INTERVAL_US
    }
}

/// A private writable directory of a node (see [`Node::dirs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dir {
    /// `USER`, `USER:GROUP` or numeric ids, looked up in the node's `/etc/passwd` and
    /// `/etc/group` (its rootfs's, or the host's); default root.
    #[serde(default)]
    pub owner: Option<String>,
    /// Permission bits (file form: an octal string, `"0750"`); default 0755.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub mode: Option<u32>,
    /// A host directory (relative to the topology file) whose contents the directory starts
    /// with: copied when the directory is made, the node's changes staying in the copy.
    #[serde(default)]
    pub from: Option<PathBuf>,
    /// Kept with the lab's logs after `down` instead of being removed.
    #[serde(default)]
    pub keep: bool,
}

/// A sysctl value as written in the file (numbers and strings both allowed), kept as text
/// because that is what `/proc/sys` reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SysctlValue {
    Int(i64),
    Text(String),
}

impl fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysctlValue::Int(n) => write!(f, "{n}"),
            SysctlValue::Text(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Addresses with prefix length, IPv4 or IPv6 (`10.0.0.1/31`, `2001:db8::1/64`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub addresses: Vec<IpNetwork>,
    /// MTU in bytes; overrides the link's `mtu`.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Record the interface's packets while `topo test` runs (pcapng, one file per run).
    #[serde(default)]
    pub capture: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination prefix, or `default`.
    #[schemars(with = "String")]
    pub to: RouteDest,
    /// Gateway address, or a list of them for ECMP.
    #[serde(default)]
    #[schemars(with = "Option<OneOrMany>")]
    pub via: Vec<IpAddr>,
    /// Output interface, for a route without a gateway (or to pin the gateway's interface).
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub metric: Option<u32>,
}

/// A route's destination; `default` takes its family from the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteDest {
    Default,
    Prefix(IpNetwork),
}

/// A bind mount from the host into a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bind {
    /// Absolute host path (resolved against the topology file's directory).
    pub host: PathBuf,
    /// Absolute path inside the node.
    pub node: PathBuf,
    pub read_only: bool,
}

/// Landlock policy: which paths the node's processes may read and write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    #[serde(default)]
    pub read_write: Vec<PathBuf>,
}

/// Resource limits of a node's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory in bytes (file form: `128Mi`, `1Gi`, `65536`).
    #[serde(default)]
    #[schemars(with = "Option<SizeValue>")]
    pub memory: Option<u64>,
    /// Maximum number of tasks (file form: a number, or `max` for no limit); 4096 when left
    /// out. In the model `None` is no limit.
    #[serde(default)]
    #[schemars(with = "Option<PidsValue>")]
    pub pids: Option<u64>,
    /// CPUs (fractions allowed: `0.5`).
    #[serde(default)]
    pub cpu: Option<f64>,
    /// `pids` is topo's default ([`Limits::DEFAULT_PIDS`]), not the file's: it is written
    /// where the kernel offers the pids controller, and its absence is no error.
    #[serde(skip)]
    #[schemars(skip)]
    pub pids_default: bool,
}

impl Limits {
    /// The pids limit of a node whose file (and `defaults:`) says nothing about it.
    pub const DEFAULT_PIDS: u64 = 4096;
}

/// Sizes in bytes of a node's own tmpfs mounts (file form: `128Mi`, `1Gi`); one left out is
/// topo's default (`Tmpfs::DEFAULT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tmpfs {
    /// `/tmp` (default 256Mi).
    #[serde(default, rename = "/tmp", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SizeValue>")]
    pub tmp: Option<u64>,
    /// `/run` (default 64Mi).
    #[serde(default, rename = "/run", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SizeValue>")]
    pub run: Option<u64>,
    /// `/dev` (default 1Mi; it holds only device nodes and links).
    #[serde(default, rename = "/dev", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SizeValue>")]
    pub dev: Option<u64>,
    /// `/dev/shm` (default 64Mi, as Docker).
    #[serde(default, rename = "/dev/shm", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SizeValue>")]
    pub dev_shm: Option<u64>,
}

impl Tmpfs {
    /// The mount points, as the file names them.
    pub const MOUNT_POINTS: [&'static str; 4] = ["/tmp", "/run", "/dev", "/dev/shm"];
    /// Topo's sizes, in the order of [`Tmpfs::MOUNT_POINTS`].
    pub const DEFAULT: [u64; 4] = [256 << 20, 64 << 20, 1 << 20, 64 << 20];

    /// The size declared for a mount point, by its name in the file.
    pub fn get_mut(&mut self, mount_point: &str) -> Option<&mut Option<u64>> {
        match mount_point {
            "/tmp" => Some(&mut self.tmp),
            "/run" => Some(&mut self.run),
            "/dev" => Some(&mut self.dev),
            "/dev/shm" => Some(&mut self.dev_shm),
            _ => None,
        }
    }

    /// Every size, declared or topo's default, in the order of [`Tmpfs::MOUNT_POINTS`].
    pub fn sizes(&self) -> [u64; 4] {
        let [tmp, run, dev, shm] = Self::DEFAULT;
        [
            self.tmp.unwrap_or(tmp),
            self.run.unwrap_or(run),
            self.dev.unwrap_or(dev),
            self.dev_shm.unwrap_or(shm),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Capability names without `CAP_` (`NET_ADMIN`) or `ALL`.
    #[serde(default)]
    pub drop: Vec<String>,
    #[serde(default)]
    pub add: Vec<String>,
}

/// `default`, `unconfined`, or a path to an OCI/Docker-format JSON profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    Default,
    Unconfined,
    Profile(PathBuf),
}

/// `node:interface`; `node` may be `host` for a veth end left in the host namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
}

impl Endpoint {
    pub fn is_host(&self) -> bool {
        self.node == HOST
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    #[default]
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Exactly two `node:interface` ends.
    #[schemars(with = "[String; 2]")]
    pub endpoints: [Endpoint; 2],
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    /// Impairment: one set of settings for both directions, or per endpoint (`r1:eth1:
    /// {delay: 10ms}`), each applied to what leaves that end.
    pub impair: Option<LinkImpair>,
    #[serde(default)]
    pub state: LinkState,
    /// Record the link's packets (at its first endpoint) while `topo test` runs.
    #[serde(default)]
    pub capture: bool,
    /// VXLAN network identifier of a link between two hosts (1 to 16777215); derived from
    /// the lab and endpoint names when left out.
    #[serde(default)]
    #[schemars(range(min = 1, max = 16_777_215))]
    pub vni: Option<u32>,
}

/// A link's impairment, as the file gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LinkImpair {
    /// Both directions alike.
    Both(Impair),
    /// By endpoint (`node:iface`): what leaves that end.
    PerEndpoint(BTreeMap<String, Impair>),
}

impl LinkImpair {
    /// The impairment of the traffic that leaves `end` (its egress qdisc).
    pub fn egress(&self, end: &Endpoint) -> Option<&Impair> {
        match self {
            LinkImpair::Both(i) => Some(i),
            LinkImpair::PerEndpoint(m) => m.get(&end.to_string()),
        }
    }
}

/// Link impairment (netem / tbf) of one direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Impair {
    /// Delay in microseconds (file form: `10ms`, `500us`, `1s`).
    #[serde(default, rename = "delay")]
    #[schemars(with = "Option<String>")]
    pub delay_us: Option<u64>,
    #[serde(default, rename = "jitter")]
    #[schemars(with = "Option<String>")]
    pub jitter_us: Option<u64>,
    /// Loss in parts per million (file form: `0.5%`).
    #[serde(default, rename = "loss")]
    #[schemars(with = "Option<String>")]
    pub loss_ppm: Option<u32>,
    #[serde(default, rename = "corrupt")]
    #[schemars(with = "Option<String>")]
    pub corrupt_ppm: Option<u32>,
    #[serde(default, rename = "duplicate")]
    #[schemars(with = "Option<String>")]
    pub duplicate_ppm: Option<u32>,
    #[serde(default, rename = "reorder")]
    #[schemars(with = "Option<String>")]
    pub reorder_ppm: Option<u32>,
    /// Rate in bits per second (file form: `100mbit`).
    #[serde(default, rename = "rate")]
    #[schemars(with = "Option<String>")]
    pub rate_bps: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    /// `node:interface` ports of this L2 segment.
    #[schemars(with = "Vec<String>")]
    pub members: Vec<Endpoint>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// VXLAN network identifier of a bridge with members on several hosts (1 to 16777215);
    /// derived from the lab and bridge names when left out.
    #[serde(default)]
    #[schemars(range(min = 1, max = 16_777_215))]
    pub vni: Option<u32>,
}

// Shapes the file accepts that the model stores differently; used by the JSON Schema only.

/// One gateway or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A sysctl value: a number, a boolean (written as 1 or 0) or text.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum SysctlFileValue {
    Int(i64),
    Bool(bool),
    Text(String),
}

/// A pids limit: a number of tasks, or `max` (no limit).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PidsValue {
    Tasks(u64),
    Max(PidsMax),
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum PidsMax {
    Max,
}

/// A size: plain bytes, or a number with `Ki`, `Mi`, `Gi` or `Ti`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}
