//! From the spanned YAML tree to the typed model: keys, types, names, units and value ranges
//! are checked here, each problem recorded with its position, and reading goes on after an
//! error wherever possible (the faulty value is left out). Cross-references (endpoints,
//! wiring, gateways, host paths) are checked afterwards by `validate`.
//!
//! Groups are laid under the nodes that take them in the YAML tree, before anything is read,
//! so that a value a node takes from a group is where the group's text is. Defaults are
//! merged into every node after reading; the positions of inherited values are copied to
//! the node's paths so that later checks point at the line in `defaults:`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use ipnetwork::IpNetwork;

use super::diag::{Diagnostic, Diagnostics};
use super::model::{
    Bind, Bridge, Capabilities, Defaults, Dir, Endpoint, Filesystem, Host, Impair, Interface,
    Limits, Link, LinkImpair, LinkState, Logs, Node, Ready, Restart, Route, RouteDest, Seccomp,
    Service, ServiceKind, SysctlValue, Tmpfs, Topology, Vxlan, HOST,
};
use super::units::{self, UnitError};
use super::yaml::{self, Node as Yaml, Pos};

mod steps;

const TOP_KEYS: &[&str] = &[
    "name", "hosts", "vxlan", "defaults", "groups", "nodes", "links", "bridges", "logs", "tests",
];
const HOST_KEYS: &[&str] = &["address", "mtu"];
const VXLAN_KEYS: &[&str] = &["port"];
const LOGS_KEYS: &[&str] = &["max_size", "keep"];
const DEFAULT_KEYS: &[&str] = &[
    "sysctls",
    "env",
    "limits",
    "tmpfs",
    "capabilities",
    "seccomp",
    "userns",
    "apparmor",
];
/// A group's body takes these too, but `group`.
const NODE_KEYS: &[&str] = &[
    "group",
    "interfaces",
    "routes",
    "sysctls",
    "binds",
    "rootfs",
    "filesystem",
    "env",
    "exec",
    "services",
    "dirs",
    "limits",
    "tmpfs",
    "capabilities",
    "seccomp",
    "userns",
    "apparmor",
    "host",
];
const INTERFACE_KEYS: &[&str] = &["addresses", "mtu", "capture"];
const SERVICE_KEYS: &[&str] = &["command", "type", "pid_file", "after", "ready", "restart"];
const READY_KEYS: &[&str] = &["command", "timeout", "interval"];
const DIR_KEYS: &[&str] = &["owner", "mode", "from", "keep"];
const ROUTE_KEYS: &[&str] = &["to", "via", "dev", "metric"];
const FILESYSTEM_KEYS: &[&str] = &["read_only", "read_write"];
const LIMIT_KEYS: &[&str] = &["memory", "pids", "cpu"];
const TMPFS_KEYS: &[&str] = &Tmpfs::MOUNT_POINTS;
const CAPABILITY_KEYS: &[&str] = &["drop", "add"];
const LINK_KEYS: &[&str] = &["endpoints", "mtu", "impair", "state", "capture", "vni"];
const IMPAIR_KEYS: &[&str] = &[
    "delay",
    "jitter",
    "loss",
    "corrupt",
    "duplicate",
    "reorder",
    "rate",
];
const BRIDGE_KEYS: &[&str] = &["members", "mtu", "vni"];

/// Most YAML nodes that groups may add to the nodes that take them, in total (each node gets
/// its group's keys; as many as aliases may stand for).
pub const MAX_GROUP_EXPANSION: u64 = yaml::MAX_ALIAS_EXPANSION;

/// Linux capabilities, without `CAP_`, in kernel order (through `CAP_CHECKPOINT_RESTORE`).
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Where a key and its value are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub key: Pos,
    pub value: Pos,
}

/// A mapping of more entries than this is looked up by key through a hash table; a smaller
/// one is scanned.
const LARGE_MAPPING: usize = 16;

/// Positions of everything read, by path: `name`, `nodes.r1`, `nodes.r1.interfaces.eth1`,
/// `nodes.r1.routes[0].via[1]`, `links[2].endpoints[0]`, `bridges.lan1.members[0]`,
/// `defaults.sysctls.net.ipv4.ip_forward` (map keys are used as written, dots included).
/// List items have the same key and value position.
///
/// Found when asked, by walking the file's tree along the path: positions are needed only
/// for messages, and a map of every path would cost memory and parse time on every load.
/// In that tree each node has its group's keys laid under its own, so a path to a value a
/// node takes from its group leads to the group's text.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    root: Option<Yaml>,
    /// The entries of each large mapping by key (first of duplicates), by the address of
    /// its entries: a walk through `nodes` of a 10 000-node file is then not a scan.
    index: HashMap<usize, HashMap<Rc<str>, usize>>,
    /// Values a node took from `defaults`: path in the node -> path in `defaults`. A
    /// position the node's own text lacks is looked up in `defaults`.
    inherited: HashMap<String, String>,
    /// Endpoints of links that could not be built (wrong count, a bad end): they still count
    /// as wired, so that one mistake does not also make its interfaces "unwired".
    pub(crate) orphan_endpoints: Vec<(Endpoint, String)>,
    /// Nodes with a refused address: their gateways are not checked against their subnets.
    pub(crate) tainted_nodes: BTreeSet<String>,
    /// Routes that follow a refused one (which is left out) sit one place later in the file
    /// than in the node: path in the node -> path in the file.
    moved: HashMap<String, String>,
}

impl Spans {
    /// The span of `path`, or of its nearest parent in the file; 1:1 when nothing matches.
    pub fn span(&self, path: &str) -> Span {
        let moved = self.moved_path(path);
        let path = moved.as_deref().unwrap_or(path);
        let (found, whole) = self.walk(path);
        if !whole && !self.inherited.is_empty() {
            for end in key_ends(path) {
                if let Some(defaults_path) = self.inherited.get(&path[..end]) {
                    let rest = &path[end..];
                    if let (Some(s), true) = self.walk(&format!("{defaults_path}{rest}")) {
                        return s;
                    }
                }
            }
        }
        found.unwrap_or_else(|| {
            let start = Pos::new(1, 1);
            Span {
                key: start,
                value: start,
            }
        })
    }

    pub fn key(&self, path: &str) -> Pos {
        self.span(path).key
    }

    /// `path` in the file, when it starts with the path of a route that moved.
    fn moved_path(&self, path: &str) -> Option<String> {
        if self.moved.is_empty() {
            return None;
        }
        key_ends(path).find_map(|end| {
            let to = self.moved.get(&path[..end])?;
            Some(format!("{to}{}", &path[end..]))
        })
    }

    pub fn value(&self, path: &str) -> Pos {
        self.span(path).value
    }

    /// Keeps the file's tree to find positions in, with an index of its large mappings.
    fn keep(&mut self, root: Yaml) {
        let mut todo = vec![&root];
        while let Some(node) = todo.pop() {
            if let Some(items) = node.as_seq() {
                todo.extend(items);
            } else if let Some(map) = node.as_map() {
                if map.len() > LARGE_MAPPING {
                    let mut by_key = HashMap::with_capacity(map.len());
                    for (i, (k, _)) in map.iter().enumerate() {
                        if let Some(key) = k.shared_str() {
                            by_key.entry(Rc::clone(key)).or_insert(i);
                        }
                    }
                    self.index.insert(map.as_ptr() as usize, by_key);
                }
                todo.extend(map.iter().map(|(_, v)| v));
            }
        }
        self.root = Some(root);
    }

    /// The span of the deepest part of `path` in the file, and whether that is all of it.
    fn walk(&self, path: &str) -> (Option<Span>, bool) {
        let Some(mut node) = self.root.as_ref() else {
            return (None, false);
        };
        let mut found = None;
        let mut rest = path;
        while !rest.is_empty() {
            if let Some(index) = rest.strip_prefix('[') {
                let Some((i, after)) = index.split_once(']') else {
                    return (found, false);
                };
                let item = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| node.as_seq().and_then(|items| items.get(i)));
                let Some(item) = item else {
                    return (found, false);
                };
                found = Some(Span {
                    key: item.pos,
                    value: item.pos,
                });
                node = item;
                rest = after;
                continue;
            }
            let here = if found.is_some() {
                match rest.strip_prefix('.') {
                    Some(r) => r,
                    None => return (found, false),
                }
            } else {
                rest
            };
            // The longest key that the path goes on with (keys may hold dots); the first of
            // equal ones, as the reader keeps the first of duplicate keys.
            let map = node.as_map().unwrap_or_default();
            let mut best: Option<(&Yaml, &Yaml, usize)> = None;
            if let Some(index) = self.index.get(&(map.as_ptr() as usize)) {
                for end in key_ends(here) {
                    if let Some((k, v)) = index.get(&here[..end]).and_then(|&i| map.get(i)) {
                        best = Some((k, v, end));
                    }
                }
            } else {
                for (k, v) in map {
                    let Some(key) = k.as_str() else { continue };
                    let follows = here
                        .strip_prefix(key)
                        .is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']));
                    if follows && best.is_none_or(|(_, _, len)| key.len() > len) {
                        best = Some((k, v, key.len()));
                    }
                }
            }
            let Some((k, v, len)) = best else {
                return (found, false);
            };
            found = Some(Span {
                key: k.pos,
                value: v.pos,
            });
            node = v;
            rest = &here[len..];
        }
        (found, true)
    }
}

/// Where each prefix of `path` that could be a whole key ends: before each `.` or `[`, and at
/// its end (keys may hold dots, so every such prefix is a candidate).
fn key_ends(path: &str) -> impl Iterator<Item = usize> + '_ {
    path.match_indices(['.', '['])
        .map(|(i, _)| i)
        .chain([path.len()])
}

/// Reads topology text. `Err` only when nothing usable could be read (a YAML syntax error,
/// an empty file, a top level that is not a mapping).
pub fn parse(src: &str, path: &Path) -> Result<(Topology, Spans, Diagnostics), Diagnostics> {
    let mut reader = Reader::new(path);
    let root = match yaml::parse(src) {
        Ok(Some(root)) => root,
        Ok(None) => {
            reader.error(
                Pos::new(1, 1),
                "the topology file is empty".to_string(),
                "start with 'name: mylab' and a 'nodes:' mapping".to_string(),
            );
            return Err(reader.diags);
        }
        Err(e) => {
            reader.error(e.pos, e.message, e.hint);
            return Err(reader.diags);
        }
    };
    let Some(root) = reader.apply_groups(root) else {
        return Err(reader.diags);
    };
    // A copy of the root shares the tree (its collections are reference-counted).
    reader.spans.keep(root.clone());
    match reader.topology(&root) {
        Some(topology) => Ok((topology, reader.spans, reader.diags)),
        None => Err(reader.diags),
    }
}

/// A mapping entry whose key is a string, with the path of its value.
struct Entry<'n> {
    key: String,
    key_pos: Pos,
    value: &'n Yaml,
    path: String,
}

struct Reader<'a> {
    file: &'a Path,
    /// Absolute directory of the topology file, for relative paths in it.
    base: PathBuf,
    diags: Diagnostics,
    spans: Spans,
    /// The `limits` paths (`defaults.limits`, `nodes.a.limits`) that say `pids: max`.
    unlimited_pids: BTreeSet<String>,
    /// The groups, each with the nodes that take it.
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Positions of everything in the groups' bodies.
    group_positions: HashSet<Pos>,
    /// How many more group names may be compared with unknown ones for suggestions.
    suggestions_left: usize,
    /// What the steps of `tests:` name, checked once the topology is read.
    step_refs: Vec<steps::StepRef>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_hint(expected: &str) -> &'static str {
    match expected {
        "a mapping" => "write 'key: value' entries on indented lines below, or {key: value}",
        "a list" => "write '- item' lines below, or [item, item]",
        "a boolean" => "write true or false",
        "a number" | "an integer" => "write a plain number, without quotes",
        _ => "write a single value (quote it if it contains special characters)",
    }
}

impl<'a> Reader<'a> {
    fn new(file: &'a Path) -> Reader<'a> {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::path::absolute(&dir).unwrap_or(dir);
        Reader {
            file,
            base: normalize(&base),
            diags: Diagnostics::default(),
            spans: Spans::default(),
            unlimited_pids: BTreeSet::new(),
            groups: BTreeMap::new(),
            group_positions: HashSet::new(),
            suggestions_left: 20_000,
            step_refs: Vec::new(),
        }
    }

    fn error(&mut self, pos: Pos, message: String, hint: String) {
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message,
            hint: Some(hint),
        });
    }

    fn wrong_type(&mut self, node: &Yaml, expected: &str, path: &str) {
        let what = if path.is_empty() {
            "the top level".to_string()
        } else {
            format!("'{path}'")
        };
        self.error(
            node.pos,
            format!("expected {expected} for {what}, found {}", node.type_name()),
            type_hint(expected).to_string(),
        );
    }

    fn resolve(&self, text: &str) -> PathBuf {
        normalize(&self.base.join(text))
    }

    // ---- generic readers -------------------------------------------------------------

    /// The entries of a mapping (null reads as empty), duplicates reported and left out.
    fn entries<'n>(&mut self, node: &'n Yaml, path: &str, place: &str) -> Vec<Entry<'n>> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(map) = node.as_map() else {
            self.wrong_type(node, "a mapping", path);
            return Vec::new();
        };
        // Duplicates are found by a scan of the entries so far in a small mapping (most of a
        // file's), through a hash table in a large one.
        let large = map.len() > LARGE_MAPPING;
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        let mut out: Vec<Entry> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let Some(key) = k.as_str() else {
                self.error(
                    k.pos,
                    format!("expected a name as key {place}, found {}", k.type_name()),
                    "keys are plain names, e.g. 'r1:'".to_string(),
                );
                continue;
            };
            let first = if large {
                seen.get(key).copied()
            } else {
                out.iter().find(|e| e.key == key).map(|e| e.key_pos)
            };
            if let Some(first) = first {
                self.error(
                    k.pos,
                    format!("duplicate key '{key}' {place}"),
                    format!(
                        "'{key}' is already defined at line {}, column {}; remove or rename one",
                        first.line, first.column
                    ),
                );
                continue;
            }
            if large {
                seen.insert(key, k.pos);
            }
            let child = join(path, key);
            out.push(Entry {
                key: key.to_string(),
                key_pos: k.pos,
                value: v,
                path: child,
            });
        }
        out
    }

    /// Like `entries`, with unknown keys reported and left out.
    fn fields<'n>(
        &mut self,
        node: &'n Yaml,
        path: &str,
        place: &str,
        allowed: &[&str],
    ) -> Vec<Entry<'n>> {
        let mut entries = self.entries(node, path, place);
        entries.retain(|e| {
            let known = allowed.contains(&e.key.as_str());
            if !known {
                self.unknown_key(e, place, allowed);
            }
            known
        });
        entries
    }

    fn unknown_key(&mut self, e: &Entry<'_>, place: &str, allowed: &[&str]) {
        let mut hint = did_you_mean(&e.key, allowed.iter().copied())
            .map(|s| format!("did you mean '{s}'? "))
            .unwrap_or_default();
        hint.push_str(&format!("allowed keys: {}", allowed.join(", ")));
        self.error(e.key_pos, format!("unknown key '{}' {place}", e.key), hint);
    }

    /// The items of a list (null reads as empty) with their paths.
    fn items<'n>(&mut self, node: &'n Yaml, path: &str) -> Vec<(String, &'n Yaml)> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(seq) = node.as_seq() else {
            self.wrong_type(node, "a list", path);
            return Vec::new();
        };
        seq.iter()
            .enumerate()
            .map(|(i, item)| (format!("{path}[{i}]"), item))
            .collect()
    }

    fn string(&mut self, node: &Yaml, path: &str) -> Option<String> {
        match node.as_str() {
            Some(s) if node.as_map().is_none() => Some(s.to_string()),
            _ => {
                self.wrong_type(node, "a string", path);
                None
            }
        }
    }

    fn strings(&mut self, node: &Yaml, path: &str) -> Vec<String> {
        self.items(node, path)
            .into_iter()
            .filter_map(|(p, item)| self.string(item, &p))
            .collect()
    }

    fn boolean(&mut self, node: &Yaml, path: &str) -> Option<bool> {
        let value = node.as_bool();
        if value.is_none() {
            self.wrong_type(node, "a boolean", path);
        }
        value
    }

    /// An integer in `min..=max`; `what` names it in the range message.
    fn integer(&mut self, node: &Yaml, path: &str, what: &str, range: (i64, i64)) -> Option<i64> {
        let Some(n) = node.as_i64() else {
            self.wrong_type(node, "an integer", path);
            return None;
        };
        let (min, max) = range;
        if n < min || n > max {
            self.error(
                node.pos,
                format!("{what} {n} is out of range"),
                format!("{what} is from {min} to {max}"),
            );
            return None;
        }
        Some(n)
    }

    fn mtu(&mut self, node: &Yaml, path: &str) -> Option<u32> {
        self.integer(node, path, "mtu", (68, 65535))
            .and_then(|n| u32::try_from(n).ok())
    }

    /// A scalar read with a unit parser.
    fn unit<T>(
        &mut self,
        node: &Yaml,
        path: &str,
        parse: fn(&str) -> Result<T, UnitError>,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(node.pos, e.message, e.hint);
                None
            }
        }
    }

    /// Reports a name problem (message, hint) at `pos`; true when the name is fine.
    fn check(&mut self, pos: Pos, problem: Option<(String, String)>) -> bool {
        match problem {
            Some((message, hint)) => {
                self.error(pos, message, hint);
                false
            }
            None => true,
        }
    }

    // ---- the document ----------------------------------------------------------------

    fn topology(&mut self, root: &Yaml) -> Option<Topology> {
        if root.as_map().is_none() {
            self.wrong_type(root, "a mapping", "");
            return None;
        }
        let mut topo = Topology {
            name: String::new(),
            defaults: Defaults::default(),
            groups: BTreeMap::new(),
            nodes: BTreeMap::new(),
            links: Vec::new(),
            bridges: BTreeMap::new(),
            logs: Logs::default(),
            tests: Vec::new(),
            hosts: BTreeMap::new(),
            vxlan: Vxlan::default(),
        };
        let mut has_name = false;
        for e in self.fields(root, "", "at the top level", TOP_KEYS) {
            match e.key.as_str() {
                "name" => {
                    has_name = true;
                    if let Some(name) = self.string(e.value, &e.path) {
                        self.check(e.value.pos, lab_name_problem(&name));
                        topo.name = name;
                    }
                }
                "defaults" => topo.defaults = self.defaults(e.value),
                // Read and laid under the nodes already (`apply_groups`).
                "groups" => {}
                "nodes" => topo.nodes = self.nodes(e.value),
                "links" => topo.links = self.links(e.value),
                "bridges" => topo.bridges = self.bridges(e.value),
                "logs" => topo.logs = self.logs(e.value),
                "tests" => topo.tests = self.steps(e.value),
                "hosts" => topo.hosts = self.hosts(e.value),
                "vxlan" => topo.vxlan = self.vxlan(e.value),
                _ => {}
            }
        }
        if !has_name {
            self.error(
                root.pos,
                "missing required key 'name'".to_string(),
                "add 'name: mylab' (1 to 12 characters from a-z, 0-9 and '-')".to_string(),
            );
        }
        topo.groups = std::mem::take(&mut self.groups);
        self.merge_defaults(&mut topo);
        self.check_step_refs(&topo);
        Some(topo)
    }

    fn hosts(&mut self, value: &Yaml) -> BTreeMap<String, Host> {
        let mut out = BTreeMap::new();
        for e in self.entries(value, "hosts", "in 'hosts'") {
            self.check(e.key_pos, host_name_problem(&e.key));
            if let Some(host) = self.host(&e) {
                out.insert(e.key, host);
            }
        }
        out
    }

    fn host(&mut self, e: &Entry<'_>) -> Option<Host> {
        let place = format!("in host {}", e.key);
        let mut address = None;
        let mut mtu = Host::DEFAULT_MTU;
        let mut has_address = false;
        for f in self.fields(e.value, &e.path, &place, HOST_KEYS) {
            match f.key.as_str() {
                "address" => {
                    has_address = true;
                    address = self.host_address(f.value, &f.path);
                }
                _ => {
                    if let Some(n) = self
                        .integer(f.value, &f.path, "host mtu", (576, 65535))
                        .and_then(|n| u32::try_from(n).ok())
                    {
                        mtu = n;
                    }
                }
            }
        }
        if !has_address && (e.value.as_map().is_some() || e.value.is_null()) {
            self.error(
                e.key_pos,
                format!("host {} has no 'address'", e.key),
                "add 'address: ...', the address the other hosts reach it at, e.g. \
                 {address: 198.51.100.1}"
                    .to_string(),
            );
        }
        Some(Host {
            address: address?,
            mtu,
        })
    }

    /// A host's underlay address: one unicast address, without a prefix length.
    fn host_address(&mut self, value: &Yaml, path: &str) -> Option<IpAddr> {
        let text = self.string(value, path)?;
        if let Some((addr, _)) = text.split_once('/') {
            self.error(
                value.pos,
                format!("host address '{text}' has a prefix length"),
                format!("write the address alone: '{addr}'"),
            );
            return None;
        }
        let Ok(ip) = text.parse::<IpAddr>() else {
            self.error(
                value.pos,
                format!("invalid host address '{text}'"),
                "write the IPv4 or IPv6 address the other hosts reach this one at, e.g. \
                 '198.51.100.1'"
                    .to_string(),
            );
            return None;
        };
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
            self.error(
                value.pos,
                format!("host address {ip} is not a unicast address"),
                "write the address of one machine, which the other hosts reach it at".to_string(),
            );
            return None;
        }
        Some(ip)
    }

    fn vxlan(&mut self, value: &Yaml) -> Vxlan {
        let mut out = Vxlan::default();
        for e in self.fields(value, "vxlan", "in 'vxlan'", VXLAN_KEYS) {
            if let Some(port) = self
                .integer(e.value, &e.path, "vxlan port", (1, 65535))
                .and_then(|n| u16::try_from(n).ok())
            {
                out.port = port;
            }
        }
        out
    }

    /// A VXLAN network identifier (24 bits, 0 left out: it is no network).
    fn vni(&mut self, node: &Yaml, path: &str) -> Option<u32> {
        self.integer(
            node,
            path,
            "vni",
            (1, i64::from(crate::spec::hosts::VNI_MAX)),
        )
        .and_then(|n| u32::try_from(n).ok())
    }

    fn logs(&mut self, value: &Yaml) -> Logs {
        let mut out = Logs::default();
        for e in self.fields(value, "logs", "in 'logs'", LOGS_KEYS) {
            match e.key.as_str() {
                "max_size" => match self.unit(e.value, &e.path, units::parse_size) {
                    Some(n) if n < 1024 => self.error(
                        e.value.pos,
                        format!("log size {n} is below 1Ki"),
                        "give a size of at least 1Ki, e.g. '1Mi'".to_string(),
                    ),
                    Some(n) => out.max_size = n,
                    None => {}
                },
                _ => {
                    let max = i64::from(Logs::MAX_KEEP);
                    if let Some(n) = self
                        .integer(e.value, &e.path, "logs keep", (0, max))
                        .and_then(|n| u32::try_from(n).ok())
                    {
                        out.keep = n;
                    }
                }
            }
        }
        out
    }

    fn defaults(&mut self, value: &Yaml) -> Defaults {
        let mut out = Defaults::default();
        for e in self.fields(value, "defaults", "in 'defaults'", DEFAULT_KEYS) {
            self.common(&e, &mut out);
        }
        out
    }

    /// The keys that both `defaults:` and a node take.
    fn common(&mut self, e: &Entry<'_>, out: &mut Defaults) {
        match e.key.as_str() {
            "sysctls" => out.sysctls = self.sysctls(e.value, &e.path),
            "env" => out.env = self.env(e.value, &e.path),
            "limits" => out.limits = self.limits(e.value, &e.path),
            "tmpfs" => out.tmpfs = self.tmpfs(e.value, &e.path),
            "capabilities" => out.capabilities = Some(self.capabilities(e.value, &e.path)),
            "seccomp" => out.seccomp = self.seccomp(e.value, &e.path),
            "userns" => out.userns = self.boolean(e.value, &e.path),
            "apparmor" => out.apparmor = self.string(e.value, &e.path),
            _ => {}
        }
    }

    fn nodes(&mut self, value: &Yaml) -> BTreeMap<String, Node> {
        let mut out = BTreeMap::new();
        let mut in_groups = HashSet::new();
        for e in self.entries(value, "nodes", "in 'nodes'") {
            // A node with a bad name is kept, so that references to it still resolve.
            self.check(e.key_pos, node_name_problem(&e.key));
            let errors_before = self.diags.len();
            let node = self.node(&e.key, e.value, &e.path);
            if let Some(group) = &node.group {
                self.once_per_group_value(errors_before, &mut in_groups);
                if let Some(members) = self.groups.get_mut(group) {
                    members.insert(e.key.clone());
                }
            }
            out.insert(e.key, node);
        }
        out
    }

    /// Drops the diagnostics from `from` on (one node's) that are about a value in a group
    /// and were reported for an earlier node already (their positions are in `reported`):
    /// an error in a group is reported once, for the first node that takes it.
    fn once_per_group_value(&mut self, from: usize, reported: &mut HashSet<Pos>) {
        let new = self.diags.0.split_off(from.min(self.diags.len()));
        let mut here = Vec::new();
        for d in new {
            let pos = Pos::new(d.line, d.column);
            if self.group_positions.contains(&pos) {
                if reported.contains(&pos) {
                    continue;
                }
                here.push(pos);
            }
            self.diags.push(d);
        }
        reported.extend(here);
    }

    fn node(&mut self, name: &str, value: &Yaml, path: &str) -> Node {
        let mut node = Node::default();
        let mut own = Defaults::default();
        let place = format!("in node {name}");
        for e in self.fields(value, path, &place, NODE_KEYS) {
            match e.key.as_str() {
                // Checked by `apply_groups`; a known group only.
                "group" => {
                    node.group = (e.value.as_str())
                        .filter(|g| self.groups.contains_key(*g))
                        .map(str::to_string);
                }
                "host" => node.host = self.string(e.value, &e.path),
                "interfaces" => node.interfaces = self.interfaces(name, e.value, &e.path),
                "routes" => node.routes = self.routes(name, e.value, &e.path),
                "binds" => node.binds = self.binds(e.value, &e.path),
                "rootfs" => node.rootfs = self.string(e.value, &e.path).map(|s| self.resolve(&s)),
                "filesystem" => node.filesystem = Some(self.filesystem(name, e.value, &e.path)),
                "exec" => node.exec = self.strings(e.value, &e.path),
                "services" => node.services = self.services(name, e.value, &e.path),
                "dirs" => node.dirs = self.dirs(name, e.value, &e.path),
                _ => self.common(&e, &mut own),
            }
        }
        node.sysctls = own.sysctls;
        node.env = own.env;
        node.limits = own.limits;
        node.tmpfs = own.tmpfs;
        node.capabilities = own.capabilities;
        node.seccomp = own.seccomp;
        node.userns = own.userns;
        node.apparmor = own.apparmor;
        node
    }

    fn interfaces(&mut self, node: &str, value: &Yaml, path: &str) -> BTreeMap<String, Interface> {
        let place = format!("in the interfaces of node {node}");
        let mut out = BTreeMap::new();
        for e in self.entries(value, path, &place) {
            self.check(e.key_pos, ifname_problem("interface", &e.key));
            let iface = self.interface(node, &e);
            out.insert(e.key, iface);
        }
        out
    }

    fn interface(&mut self, node: &str, e: &Entry<'_>) -> Interface {
        let mut out = Interface::default();
        let place = format!("in interface {node}:{}", e.key);
        for f in self.fields(e.value, &e.path, &place, INTERFACE_KEYS) {
            match f.key.as_str() {
                "addresses" => out.addresses = self.addresses(node, f.value, &f.path),
                "mtu" => out.mtu = self.mtu(f.value, &f.path),
                _ => out.capture = self.boolean(f.value, &f.path).unwrap_or(false),
            }
        }
        out
    }

    fn addresses(&mut self, node: &str, value: &Yaml, path: &str) -> Vec<IpNetwork> {
        let mut out = Vec::new();
        for (p, item) in self.items(value, path) {
            let parsed = self.string(item, &p).map(|s| parse_cidr(&s));
            match parsed {
                Some(Ok(net)) => out.push(net),
                Some(Err((message, hint))) => {
                    self.error(item.pos, message, hint);
                    self.spans.tainted_nodes.insert(node.to_string());
                }
                None => {
                    self.spans.tainted_nodes.insert(node.to_string());
                }
            }
        }
        out
    }

    fn routes(&mut self, node: &str, value: &Yaml, path: &str) -> Vec<Route> {
        let items = self.items(value, path);
        let mut out = Vec::with_capacity(items.len());
        for (i, (p, item)) in items.into_iter().enumerate() {
            if let Some(route) = self.route(node, i, item, &p) {
                if out.len() != i {
                    self.spans.moved.insert(format!("{path}[{}]", out.len()), p);
                }
                out.push(route);
            }
        }
        out
    }

    fn route(&mut self, node: &str, index: usize, value: &Yaml, path: &str) -> Option<Route> {
        let place = format!("in route {} of node {node}", index + 1);
        if value.as_map().is_none() {
            self.wrong_type(value, "a mapping", path);
            return None;
        }
        let errors_before = self.diags.len();
        let mut to = None;
        let mut has_to = false;
        let mut route = Route {
            to: RouteDest::Default,
            via: Vec::new(),
            dev: None,
            metric: None,
        };
        for e in self.fields(value, path, &place, ROUTE_KEYS) {
            match e.key.as_str() {
                "to" => {
                    has_to = true;
                    to = self.destination(e.value, &e.path);
                }
                "via" => route.via = self.gateways(e.value, &e.path),
                "dev" => {
                    route.dev = self.string(e.value, &e.path);
                    if let Some(dev) = &route.dev {
                        self.check(e.value.pos, ifname_problem("interface", dev));
                    }
                }
                "metric" => {
                    route.metric = self
                        .integer(e.value, &e.path, "metric", (0, i64::from(u32::MAX)))
                        .and_then(|m| u32::try_from(m).ok());
                }
                _ => {}
            }
        }
        if !has_to {
            self.error(
                value.pos,
                format!("route {} of node {node} has no 'to'", index + 1),
                "add 'to: default' or 'to: <prefix>', e.g. 'to: 10.0.0.0/24'".to_string(),
            );
        }
        // A route with a refused part is left out whole, so that later checks do not
        // report what is only a consequence of the refused part.
        if self.diags.len() > errors_before {
            return None;
        }
        route.to = to?;
        Some(route)
    }

    fn destination(&mut self, value: &Yaml, path: &str) -> Option<RouteDest> {
        let text = self.string(value, path)?;
        if text == "default" {
            return Some(RouteDest::Default);
        }
        let net = match parse_cidr(&text) {
            Ok(net) => net,
            Err((message, hint)) => {
                self.error(value.pos, message, hint);
                return None;
            }
        };
        if net.network() != net.ip() {
            self.error(
                value.pos,
                format!("route destination '{text}' has host bits set"),
                format!(
                    "write the network address: '{}/{}'",
                    net.network(),
                    net.prefix()
                ),
            );
            return None;
        }
        Some(RouteDest::Prefix(net))
    }

    fn gateways(&mut self, value: &Yaml, path: &str) -> Vec<IpAddr> {
        let items: Vec<(String, &Yaml)> = if value.as_seq().is_some() {
            self.items(value, path)
        } else {
            vec![(path.to_string(), value)]
        };
        let mut out = Vec::new();
        for (p, item) in items {
            let Some(text) = self.string(item, &p) else {
                continue;
            };
            match gateway(&text) {
                Ok(ip) => out.push(ip),
                Err((message, hint)) => self.error(item.pos, message, hint),
            }
        }
        out
    }

    fn binds(&mut self, value: &Yaml, path: &str) -> Vec<Bind> {
        let mut out = Vec::new();
        for (p, item) in self.items(value, path) {
            let Some(text) = self.string(item, &p) else {
                continue;
            };
            match split_bind(&text) {
                Ok((host, node, read_only)) => out.push(Bind {
                    host: self.resolve(host),
                    node: PathBuf::from(node),
                    read_only,
                }),
                Err((message, hint)) => self.error(item.pos, message, hint),
            }
        }
        out
    }

    fn filesystem(&mut self, node: &str, value: &Yaml, path: &str) -> Filesystem {
        let mut out = Filesystem::default();
        let place = format!("in the filesystem of node {node}");
        for e in self.fields(value, path, &place, FILESYSTEM_KEYS) {
            let paths = self.absolute_paths(e.value, &e.path);
            match e.key.as_str() {
                "read_only" => out.read_only = paths,
                _ => out.read_write = paths,
            }
        }
        out
    }

    fn absolute_paths(&mut self, value: &Yaml, path: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (p, item) in self.items(value, path) {
            let Some(text) = self.string(item, &p) else {
                continue;
            };
            if text.starts_with('/') {
                out.push(PathBuf::from(text));
            } else {
                self.error(
                    item.pos,
                    format!("path '{text}' is not absolute"),
                    format!("paths inside the node start with '/', e.g. '/{text}'"),
                );
            }
        }
        out
    }

    fn services(&mut self, node: &str, value: &Yaml, path: &str) -> BTreeMap<String, Service> {
        let mut out = BTreeMap::new();
        for e in self.entries(value, path, &format!("in the services of node {node}")) {
            self.check(e.key_pos, service_name_problem(&e.key));
            let service = if e.value.as_map().is_some() {
                self.service(node, &e)
            } else {
                self.string(e.value, &e.path).map(Service::command)
            };
            if let Some(service) = service {
                out.insert(e.key, service);
            }
        }
        out
    }

    /// A service in its mapping form.
    fn service(&mut self, node: &str, e: &Entry<'_>) -> Option<Service> {
        let place = format!("in service {} of node {node}", e.key);
        let mut out = Service::default();
        let mut command = None;
        for f in self.fields(e.value, &e.path, &place, SERVICE_KEYS) {
            match f.key.as_str() {
                "command" => command = self.string(f.value, &f.path),
                "type" => match self.string(f.value, &f.path).as_deref() {
                    Some("simple") => out.kind = ServiceKind::Simple,
                    Some("forking") => out.kind = ServiceKind::Forking,
                    Some("oneshot") => out.kind = ServiceKind::Oneshot,
                    Some(other) => self.error(
                        f.value.pos,
                        format!("unknown service type '{other}'"),
                        "the types are simple, forking and oneshot".to_string(),
                    ),
                    None => {}
                },
                "pid_file" => {
                    if let Some(p) = self.absolute_path(f.value, &f.path) {
                        out.pid_file = Some(p);
                    }
                }
                "after" => out.after = self.strings(f.value, &f.path),
                "ready" => out.ready = self.ready(&f, &place),
                _ => match self.string(f.value, &f.path).as_deref() {
                    Some("no") => out.restart = Restart::No,
                    Some("on-failure") => out.restart = Restart::OnFailure,
                    Some(other) => self.error(
                        f.value.pos,
                        format!("unknown restart policy '{other}'"),
                        "write 'no' (the default) or 'on-failure'".to_string(),
                    ),
                    None => {}
                },
            }
        }
        let Some(command) = command else {
            self.error(
                e.value.pos,
                format!("service {} of node {node} has no command", e.key),
                "add 'command: ...', run with /bin/sh -c in the node".to_string(),
            );
            return None;
        };
        out.command = command;
        Some(out)
    }

    fn ready(&mut self, e: &Entry<'_>, place: &str) -> Option<Ready> {
        let mut command = None;
        let mut timeout = Ready::DEFAULT_TIMEOUT_US;
        let mut interval = Ready::DEFAULT_INTERVAL_US;
        // `ready: COMMAND` is the short form.
        if e.value.as_map().is_none() {
            command = self.string(e.value, &e.path);
        }
        let fields = match e.value.as_map() {
            Some(_) => self.fields(e.value, &e.path, &format!("in 'ready' {place}"), READY_KEYS),
            None => Vec::new(),
        };
        for f in fields {
            match f.key.as_str() {
                "command" => command = self.string(f.value, &f.path),
                key => {
                    let Some(us) = self.unit(f.value, &f.path, units::parse_duration_us) else {
                        continue;
                    };
                    let (min, max) = match key {
                        "timeout" => (1_000, 3_600_000_000),
                        _ => (1_000, 60_000_000),
                    };
                    if us < min || us > max {
                        self.error(
                            f.value.pos,
                            format!("ready {key} is out of range"),
                            format!(
                                "the {key} is from 1ms to {}",
                                units::format_duration_us(max)
                            ),
                        );
                    } else if key == "timeout" {
                        timeout = us;
                    } else {
                        interval = us;
                    }
                }
            }
        }
        let Some(command) = command else {
            self.error(
                e.value.pos,
                "readiness check without a command".to_string(),
                "write 'ready: {command: \"test -S /run/frr/zserv.api\", timeout: 10s}'"
                    .to_string(),
            );
            return None;
        };
        Some(Ready {
            command,
            timeout,
            interval,
        })
    }

    fn dirs(&mut self, node: &str, value: &Yaml, path: &str) -> BTreeMap<PathBuf, Dir> {
        let mut out = BTreeMap::new();
        let place = format!("in the dirs of node {node}");
        for e in self.entries(value, path, &place) {
            let Some(target) = dir_path(&e.key) else {
                self.error(
                    e.key_pos,
                    format!("'{}' is not an absolute, normal path", e.key),
                    "write a path in the node such as '/var/lib/frr' (no '.', '..' or '//')"
                        .to_string(),
                );
                continue;
            };
            let mut dir = Dir::default();
            let here = format!("in dir {} of node {node}", e.key);
            for f in self.fields(e.value, &e.path, &here, DIR_KEYS) {
                match f.key.as_str() {
                    "owner" => {
                        if let Some(owner) = self.string(f.value, &f.path) {
                            if self.check(f.value.pos, owner_problem(&owner)) {
                                dir.owner = Some(owner);
                            }
                        }
                    }
                    "mode" => dir.mode = self.mode(f.value, &f.path),
                    "from" => dir.from = self.string(f.value, &f.path).map(|s| self.resolve(&s)),
                    _ => dir.keep = self.boolean(f.value, &f.path).unwrap_or(false),
                }
            }
            out.insert(target, dir);
        }
        out
    }

    /// Permission bits, written as an octal string (`"0750"`, `"750"`).
    fn mode(&mut self, value: &Yaml, path: &str) -> Option<u32> {
        let text = self.string(value, path)?;
        match u32::from_str_radix(&text, 8) {
            Ok(m) if m <= 0o7777 && !text.is_empty() => Some(m),
            _ => {
                self.error(
                    value.pos,
                    format!("mode '{text}' is not an octal permission"),
                    "write the mode as a quoted octal string, e.g. mode: \"0750\"".to_string(),
                );
                None
            }
        }
    }

    fn absolute_path(&mut self, value: &Yaml, path: &str) -> Option<PathBuf> {
        let text = self.string(value, path)?;
        if text.starts_with('/') {
            return Some(PathBuf::from(text));
        }
        self.error(
            value.pos,
            format!("path '{text}' is not absolute"),
            format!("paths inside the node start with '/', e.g. '/{text}'"),
        );
        None
    }

    fn sysctls(&mut self, value: &Yaml, path: &str) -> BTreeMap<String, SysctlValue> {
        let mut out = BTreeMap::new();
        for e in self.entries(value, path, "in 'sysctls'") {
            if !self.check(e.key_pos, sysctl_key_problem(&e.key)) {
                continue;
            }
            if let Some(v) = self.sysctl_value(&e) {
                out.insert(e.key, v);
            }
        }
        out
    }

    fn sysctl_value(&mut self, e: &Entry<'_>) -> Option<SysctlValue> {
        if let Some(b) = e.value.as_bool() {
            return Some(SysctlValue::Int(i64::from(b)));
        }
        if let Some(n) = e.value.as_i64() {
            return Some(SysctlValue::Int(n));
        }
        let text = self.string(e.value, &e.path)?;
        if text.contains(['\n', '\r', '\0']) {
            self.error(
                e.value.pos,
                format!("value of sysctl '{}' has a line break", e.key),
                "sysctl values are a single line".to_string(),
            );
            return None;
        }
        Some(SysctlValue::Text(text))
    }

    fn env(&mut self, value: &Yaml, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for e in self.entries(value, path, "in 'env'") {
            self.check(e.key_pos, env_key_problem(&e.key));
            let Some(text) = self.string(e.value, &e.path) else {
                continue;
            };
            if text.contains('\0') {
                self.error(
                    e.value.pos,
                    format!("value of environment variable '{}' has a NUL byte", e.key),
                    "remove the \\0 from the value".to_string(),
                );
                continue;
            }
            out.insert(e.key, text);
        }
        out
    }

    fn limits(&mut self, value: &Yaml, path: &str) -> Limits {
        let mut out = Limits::default();
        for e in self.fields(value, path, "in 'limits'", LIMIT_KEYS) {
            match e.key.as_str() {
                "memory" => out.memory = self.memory(e.value, &e.path),
                "pids" if e.value.as_str() == Some("max") => {
                    self.unlimited_pids.insert(path.to_string());
                }
                "pids" => {
                    if e.value.as_i64().is_none() && e.value.as_str().is_some() {
                        self.error(
                            e.value.pos,
                            format!(
                                "invalid pids limit '{}'",
                                e.value.as_str().unwrap_or_default()
                            ),
                            "write a number of tasks, e.g. 512, or 'max' for no limit".to_string(),
                        );
                        continue;
                    }
                    out.pids = self
                        .integer(e.value, &e.path, "pids limit", (1, i64::MAX))
                        .and_then(|n| u64::try_from(n).ok());
                }
                _ => out.cpu = self.cpu(e.value, &e.path),
            }
        }
        out
    }

    fn tmpfs(&mut self, value: &Yaml, path: &str) -> Tmpfs {
        let mut out = Tmpfs::default();
        for e in self.fields(value, path, "in 'tmpfs'", TMPFS_KEYS) {
            let Some(bytes) = self.unit(e.value, &e.path, units::parse_size) else {
                continue;
            };
            // tmpfs reads size=0 as "no limit": a size must be at least a page.
            if bytes < 4096 {
                self.error(
                    e.value.pos,
                    format!("tmpfs size {bytes} of {} is too small", e.key),
                    "give at least 4Ki, e.g. '64Mi'".to_string(),
                );
                continue;
            }
            if let Some(slot) = out.get_mut(&e.key) {
                *slot = Some(bytes);
            }
        }
        out
    }

    fn memory(&mut self, value: &Yaml, path: &str) -> Option<u64> {
        let bytes = self.unit(value, path, units::parse_size)?;
        if bytes == 0 {
            self.error(
                value.pos,
                "memory limit is zero".to_string(),
                "give a size above zero, e.g. '128Mi', or remove the limit".to_string(),
            );
            return None;
        }
        Some(bytes)
    }

    fn cpu(&mut self, value: &Yaml, path: &str) -> Option<f64> {
        let Some(cpu) = value.as_f64() else {
            self.wrong_type(value, "a number", path);
            return None;
        };
        if cpu <= 0.0 || cpu > 1024.0 {
            self.error(
                value.pos,
                format!("cpu limit {cpu} is out of range"),
                "cpu is a number of CPUs above 0 and at most 1024, e.g. 0.5".to_string(),
            );
            return None;
        }
        Some(cpu)
    }

    fn capabilities(&mut self, value: &Yaml, path: &str) -> Capabilities {
        let mut out = Capabilities::default();
        for e in self.fields(value, path, "in 'capabilities'", CAPABILITY_KEYS) {
            let mut names = Vec::new();
            for (p, item) in self.items(e.value, &e.path) {
                let Some(name) = self.string(item, &p) else {
                    continue;
                };
                if self.check(item.pos, capability_problem(&name)) {
                    names.push(name);
                }
            }
            match e.key.as_str() {
                "drop" => out.drop = names,
                _ => out.add = names,
            }
        }
        out
    }

    fn seccomp(&mut self, value: &Yaml, path: &str) -> Option<Seccomp> {
        let text = self.string(value, path)?;
        Some(match text.as_str() {
            "default" => Seccomp::Default,
            "unconfined" => Seccomp::Unconfined,
            // Whether the profile exists is checked by `validate`.
            _ => Seccomp::Profile(self.resolve(&text)),
        })
    }

    fn links(&mut self, value: &Yaml) -> Vec<Link> {
        let mut out = Vec::new();
        for (i, (p, item)) in self.items(value, "links").into_iter().enumerate() {
            if let Some(link) = self.link(i, item, &p) {
                out.push(link);
            }
        }
        out
    }

    fn link(&mut self, index: usize, value: &Yaml, path: &str) -> Option<Link> {
        if value.as_map().is_none() {
            self.wrong_type(value, "a mapping", path);
            return None;
        }
        let number = index + 1;
        let place = format!("in link {number}");
        let mut ends = None;
        let mut link_mtu = None;
        let mut impair = None;
        let mut state = LinkState::Up;
        let mut capture = false;
        let mut vni = None;
        for e in self.fields(value, path, &place, LINK_KEYS) {
            match e.key.as_str() {
                "endpoints" => ends = Some(self.link_endpoints(number, e.value, &e.path)),
                "mtu" => link_mtu = self.mtu(e.value, &e.path),
                "vni" => vni = self.vni(e.value, &e.path),
                "impair" => impair = self.link_impair(number, e.value, &e.path),
                "capture" => capture = self.boolean(e.value, &e.path).unwrap_or(false),
                _ => state = self.state(e.value, &e.path).unwrap_or(state),
            }
        }
        let Some(ends) = ends else {
            self.error(
                value.pos,
                format!("link {number} has no 'endpoints'"),
                "add 'endpoints: [node1:eth1, node2:eth1]'".to_string(),
            );
            return None;
        };
        let endpoints: [Endpoint; 2] = ends?;
        if let Some(LinkImpair::PerEndpoint(by_end)) = &impair {
            for key in by_end.keys() {
                if !endpoints.iter().any(|ep| ep.to_string() == *key) {
                    let p = self.spans.key(&format!("{path}.impair.{key}"));
                    self.error(
                        p,
                        format!("'{key}' in 'impair' of link {number} is not one of its endpoints"),
                        format!("use {} or {}", endpoints[0], endpoints[1]),
                    );
                }
            }
        }
        Some(Link {
            endpoints,
            mtu: link_mtu,
            impair,
            state,
            capture,
            vni,
        })
    }

    /// The two ends of a link; `None` when there are not exactly two good ones (the good
    /// ones are then kept as orphans, still counted as wired).
    fn link_endpoints(&mut self, number: usize, value: &Yaml, path: &str) -> Option<[Endpoint; 2]> {
        let items = self.items(value, path);
        let count = items.len();
        let mut good = Vec::new();
        let mut all_good = true;
        for (p, item) in items {
            match self.endpoint(item, &p) {
                Some(ep) => good.push((ep, p)),
                None => all_good = false,
            }
        }
        if count != 2 && (value.as_seq().is_some() || value.is_null()) {
            self.error(
                value.pos,
                format!("link {number} has {count} endpoints, a link has exactly 2"),
                "a link joins two interfaces; use a bridge to join more".to_string(),
            );
        }
        if count == 2 && all_good {
            let mut ends = good.into_iter().map(|(ep, _)| ep);
            if let (Some(a), Some(b)) = (ends.next(), ends.next()) {
                return Some([a, b]);
            }
            return None;
        }
        self.spans.orphan_endpoints.extend(good);
        None
    }

    fn endpoint(&mut self, value: &Yaml, path: &str) -> Option<Endpoint> {
        let text = self.string(value, path)?;
        let Some((node, iface)) = text.split_once(':') else {
            self.error(
                value.pos,
                format!("endpoint '{text}' is not node:interface"),
                format!("write it as node:interface, e.g. '{text}:eth1'"),
            );
            return None;
        };
        if node.is_empty() {
            self.error(
                value.pos,
                format!("endpoint '{text}' has no node name"),
                "write it as node:interface, e.g. 'r1:eth1'".to_string(),
            );
            return None;
        }
        if !self.check(value.pos, ifname_problem("interface", iface)) {
            return None;
        }
        Some(Endpoint {
            node: node.to_string(),
            iface: iface.to_string(),
        })
    }

    /// `impair:` of a link: impairment settings (both directions), or a mapping from
    /// endpoints (`node:iface`, told apart by the colon) to settings (that end's egress).
    fn link_impair(&mut self, number: usize, value: &Yaml, path: &str) -> Option<LinkImpair> {
        let per_end = value.as_map().is_some_and(|m| {
            !m.is_empty()
                && m.iter()
                    .all(|(k, _)| k.as_str().is_some_and(|t| t.contains(':')))
        });
        if !per_end {
            return Some(LinkImpair::Both(self.impair(number, value, path)));
        }
        let mut out = BTreeMap::new();
        for e in self.entries(value, path, &format!("in 'impair' of link {number}")) {
            let one = self.impair(number, e.value, &e.path);
            out.insert(e.key, one);
        }
        Some(LinkImpair::PerEndpoint(out))
    }

    fn impair(&mut self, number: usize, value: &Yaml, path: &str) -> Impair {
        let mut out = Impair::default();
        let place = format!("in 'impair' of link {number}");
        let mut delay_given = false;
        let mut needs_delay = Vec::new();
        for e in self.fields(value, path, &place, IMPAIR_KEYS) {
            let (v, p) = (e.value, e.path.as_str());
            match e.key.as_str() {
                "delay" => {
                    delay_given = true;
                    out.delay_us = self.unit(v, p, units::parse_duration_us);
                }
                "jitter" => out.jitter_us = self.unit(v, p, units::parse_duration_us),
                "loss" => out.loss_ppm = self.unit(v, p, units::parse_ppm),
                "corrupt" => out.corrupt_ppm = self.unit(v, p, units::parse_ppm),
                "duplicate" => out.duplicate_ppm = self.unit(v, p, units::parse_ppm),
                "reorder" => out.reorder_ppm = self.unit(v, p, units::parse_ppm),
                _ => out.rate_bps = self.unit(v, p, units::parse_rate),
            }
            if matches!(e.key.as_str(), "jitter" | "reorder") {
                needs_delay.push((e.key.clone(), e.key_pos));
            }
        }
        if !delay_given {
            for (key, pos) in needs_delay {
                self.error(
                    pos,
                    format!("'{key}' needs 'delay' in link {number}"),
                    format!("netem applies {key} to a delay: add 'delay', e.g. 'delay: 10ms'"),
                );
            }
        }
        out
    }

    fn state(&mut self, value: &Yaml, path: &str) -> Option<LinkState> {
        match self.string(value, path)?.as_str() {
            "up" => Some(LinkState::Up),
            "down" => Some(LinkState::Down),
            other => {
                self.error(
                    value.pos,
                    format!("invalid link state '{other}'"),
                    "write 'up' or 'down'".to_string(),
                );
                None
            }
        }
    }

    fn bridges(&mut self, value: &Yaml) -> BTreeMap<String, Bridge> {
        let mut out = BTreeMap::new();
        for e in self.entries(value, "bridges", "in 'bridges'") {
            self.check(e.key_pos, ifname_problem("bridge", &e.key));
            let bridge = self.bridge(&e);
            out.insert(e.key, bridge);
        }
        out
    }

    fn bridge(&mut self, e: &Entry<'_>) -> Bridge {
        let mut out = Bridge::default();
        let place = format!("in bridge {}", e.key);
        for f in self.fields(e.value, &e.path, &place, BRIDGE_KEYS) {
            match f.key.as_str() {
                "members" => {
                    for (p, item) in self.items(f.value, &f.path) {
                        if let Some(ep) = self.endpoint(item, &p) {
                            out.members.push(ep);
                        }
                    }
                }
                "vni" => out.vni = self.vni(f.value, &f.path),
                _ => out.mtu = self.mtu(f.value, &f.path),
            }
        }
        out
    }

    // ---- groups ------------------------------------------------------------------------

    /// Reads `groups:` and lays each node's group under the node in the tree (a node's
    /// mappings merge with the group's key by key, recursively; its other values replace the
    /// group's), so that the reader and [`Spans`] find what a node takes from its group where
    /// the group's text is. `None` when the groups would make the nodes too large.
    fn apply_groups(&mut self, root: Yaml) -> Option<Yaml> {
        let Some(top) = root.as_map() else {
            return Some(root);
        };
        // The first of duplicate keys, as `entries` keeps.
        let first = |key: &str| top.iter().position(|(k, _)| k.as_str() == Some(key));
        let bodies = match first("groups") {
            Some(at) => self.group_bodies(&top[at].1),
            None => BTreeMap::new(),
        };
        let Some(nodes_at) = first("nodes") else {
            return Some(root);
        };
        let (nodes_key, nodes) = &top[nodes_at];
        let Some(entries) = nodes.as_map() else {
            return Some(root);
        };
        let mut budget = MAX_GROUP_EXPANSION;
        let mut merged = Vec::with_capacity(entries.len());
        let mut changed = false;
        for (key, node) in entries {
            let body = match self.group_of(key, node, &bodies) {
                Some((_, size, at)) if size > budget => {
                    self.error(
                        at,
                        format!(
                            "groups add more than {MAX_GROUP_EXPANSION} yaml nodes to the nodes"
                        ),
                        "each node that takes a group gets a copy of its keys; make the \
                         groups smaller, or split the lab into smaller files"
                            .to_string(),
                    );
                    return None;
                }
                Some((body, size, _)) => {
                    budget -= size;
                    body
                }
                None => {
                    merged.push((key.clone(), node.clone()));
                    continue;
                }
            };
            changed = true;
            merged.push((key.clone(), yaml::overlay(body, node)));
        }
        if !changed {
            return Some(root);
        }
        let nodes = Yaml::mapping(nodes.pos, merged);
        let mut top = top.to_vec();
        top[nodes_at] = (nodes_key.clone(), nodes);
        Some(Yaml::mapping(root.pos, top))
    }

    /// The groups' bodies by name, each with the keys a node takes (others are reported)
    /// and its size in YAML nodes.
    fn group_bodies(&mut self, value: &Yaml) -> BTreeMap<String, (Yaml, u64)> {
        let allowed: Vec<&str> = NODE_KEYS
            .iter()
            .copied()
            .filter(|k| *k != "group")
            .collect();
        let mut out = BTreeMap::new();
        for e in self.entries(value, "groups", "in 'groups'") {
            self.check(e.key_pos, group_name_problem(&e.key));
            self.groups.insert(e.key.clone(), BTreeSet::new());
            let place = format!("in group {}", e.key);
            let mut keep = HashSet::new();
            for f in self.entries(e.value, &e.path, &place) {
                if f.key == "group" {
                    self.error(
                        f.key_pos,
                        format!("key 'group' {place}: groups do not nest"),
                        "write the keys in this group, or share them between groups with a \
                         YAML anchor and '<<: *anchor'"
                            .to_string(),
                    );
                } else if allowed.contains(&f.key.as_str()) {
                    keep.insert(f.key_pos);
                } else {
                    self.unknown_key(&f, &place, &allowed);
                }
            }
            // The entries checked above, by the position of their keys.
            let kept: Vec<(Yaml, Yaml)> = (e.value.as_map().unwrap_or_default().iter())
                .filter(|(k, _)| keep.contains(&k.pos))
                .cloned()
                .collect();
            let body = Yaml::mapping(e.value.pos, kept);
            let size = survey(&body, MAX_GROUP_EXPANSION, &mut self.group_positions);
            out.insert(e.key, (body, size));
        }
        out
    }

    /// The body, size and position of the group that the node `key: node` names, when it
    /// names one; an unknown group is reported.
    fn group_of<'b>(
        &mut self,
        key: &Yaml,
        node: &Yaml,
        bodies: &'b BTreeMap<String, (Yaml, u64)>,
    ) -> Option<(&'b Yaml, u64, Pos)> {
        let name = key.as_str()?;
        let (_, value) = node
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some("group"))?;
        let group = self.string(value, &format!("nodes.{name}.group"))?;
        if let Some((body, size)) = bodies.get(&group) {
            return Some((body, *size, value.pos));
        }
        // A suggestion compares the name with every group's: so many comparisons in all.
        let names = || bodies.keys().map(String::as_str);
        let suggestion = match self.suggestions_left.checked_sub(bodies.len()) {
            Some(left) => {
                self.suggestions_left = left;
                did_you_mean(&group, names().filter(|n| n.len() <= 32))
            }
            None => None,
        };
        let first: Vec<&str> = names().take(10).collect();
        let listed = match bodies.len() {
            0..=10 => format!("groups: {}", first.join(", ")),
            n => format!("groups: {}, … ({n} in all)", first.join(", ")),
        };
        let hint = match suggestion {
            _ if bodies.is_empty() => "define it under 'groups:' at the top level".to_string(),
            Some(s) => format!("did you mean '{s}'? {listed}"),
            None => listed,
        };
        self.error(
            value.pos,
            format!("node {name} names unknown group '{group}'"),
            hint,
        );
        None
    }

    // ---- defaults ----------------------------------------------------------------------

    /// Node keys win; sysctls and env merge key by key, limits field by field.
    fn merge_defaults(&mut self, topo: &mut Topology) {
        let d = &topo.defaults;
        let unlimited = std::mem::take(&mut self.unlimited_pids);
        for (name, node) in &mut topo.nodes {
            let to = format!("nodes.{name}");
            for (k, v) in &d.sysctls {
                if !node.sysctls.contains_key(k) {
                    node.sysctls.insert(k.clone(), v.clone());
                    self.inherit(&format!("sysctls.{k}"), &to);
                }
            }
            for (k, v) in &d.env {
                if !node.env.contains_key(k) {
                    node.env.insert(k.clone(), v.clone());
                    self.inherit(&format!("env.{k}"), &to);
                }
            }
            if node.limits.memory.is_none() && d.limits.memory.is_some() {
                node.limits.memory = d.limits.memory;
                self.inherit("limits.memory", &to);
            }
            let declared =
                |limits: &Limits, path: &str| limits.pids.is_some() || unlimited.contains(path);
            if !declared(&node.limits, &format!("{to}.limits")) {
                if declared(&d.limits, "defaults.limits") {
                    node.limits.pids = d.limits.pids;
                    self.inherit("limits.pids", &to);
                } else {
                    node.limits.pids = Some(Limits::DEFAULT_PIDS);
                    node.limits.pids_default = true;
                }
            }
            for (mount_point, declared) in Tmpfs::MOUNT_POINTS.into_iter().zip([
                d.tmpfs.tmp,
                d.tmpfs.run,
                d.tmpfs.dev,
                d.tmpfs.dev_shm,
            ]) {
                if let Some(slot) = node.tmpfs.get_mut(mount_point) {
                    if slot.is_none() && declared.is_some() {
                        *slot = declared;
                        self.inherit(&format!("tmpfs.{mount_point}"), &to);
                    }
                }
            }
            if node.limits.cpu.is_none() && d.limits.cpu.is_some() {
                node.limits.cpu = d.limits.cpu;
                self.inherit("limits.cpu", &to);
            }
            if node.capabilities.is_none() && d.capabilities.is_some() {
                node.capabilities = d.capabilities.clone();
                self.inherit("capabilities", &to);
            }
            if node.seccomp.is_none() && d.seccomp.is_some() {
                node.seccomp = d.seccomp.clone();
                self.inherit("seccomp", &to);
            }
            if node.userns.is_none() && d.userns.is_some() {
                node.userns = d.userns;
                self.inherit("userns", &to);
            }
            if node.apparmor.is_none() && d.apparmor.is_some() {
                node.apparmor = d.apparmor.clone();
                self.inherit("apparmor", &to);
            }
        }
    }

    fn inherit(&mut self, key: &str, node_path: &str) {
        self.spans
            .inherited
            .insert(format!("{node_path}.{key}"), format!("defaults.{key}"));
    }
}

/// The YAML nodes of `body` (aliases counted at their size), up to just past `limit`; their
/// positions go into `positions`.
fn survey(body: &Yaml, limit: u64, positions: &mut HashSet<Pos>) -> u64 {
    let mut count = 0;
    let mut todo = vec![body];
    while let Some(node) = todo.pop() {
        count += 1;
        if count > limit {
            break;
        }
        positions.insert(node.pos);
        if let Some(items) = node.as_seq() {
            todo.extend(items);
        } else if let Some(map) = node.as_map() {
            for (k, v) in map {
                todo.push(k);
                todo.push(v);
            }
        }
    }
    count
}

/// Joins without resolving `..` (that would need the file system); drops `.` components.
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

// ---- value checks: each returns (message, hint) --------------------------------------------

type Problem = (String, String);

/// `10.0.0.1/24` or `2001:db8::1/64`; the prefix length is required.
pub(crate) fn parse_cidr(text: &str) -> Result<IpNetwork, Problem> {
    let general = || {
        (
            format!("invalid address '{text}'"),
            "write an address with its prefix length, e.g. '10.0.0.1/24' or '2001:db8::1/64'"
                .to_string(),
        )
    };
    let Some((addr, prefix)) = text.split_once('/') else {
        return match text.parse::<IpAddr>() {
            Ok(ip) => Err((
                format!("address '{text}' has no prefix length"),
                format!(
                    "write '{text}/{}' for a single address, or add the subnet's prefix length",
                    if ip.is_ipv4() { 32 } else { 128 }
                ),
            )),
            Err(_) => Err(general()),
        };
    };
    let ip: IpAddr = addr.parse().map_err(|_| general())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix.parse() {
        Ok(p) if p <= max && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            return Err((
                format!("invalid prefix length in '{text}'"),
                format!("the prefix length is a number from 0 to {max}"),
            ))
        }
    };
    IpNetwork::new(ip, prefix).map_err(|_| general())
}

fn gateway(text: &str) -> Result<IpAddr, Problem> {
    if let Some((addr, _)) = text.split_once('/') {
        return Err((
            format!("gateway '{text}' has a prefix length"),
            format!("write the gateway address alone: '{addr}'"),
        ));
    }
    text.parse().map_err(|_| {
        (
            format!("invalid gateway address '{text}'"),
            "write an IPv4 or IPv6 address, e.g. '10.0.0.1'".to_string(),
        )
    })
}

/// `host:node[:ro|:rw]` into (host, node, read_only).
fn split_bind(text: &str) -> Result<(&str, &str, bool), Problem> {
    let shape = || {
        (
            format!("bind '{text}' is not host-path:node-path[:ro|:rw]"),
            "write e.g. './r1/frr:/etc/frr' or './shared:/srv:ro'".to_string(),
        )
    };
    let (rest, read_only) = match text.rsplit_once(':') {
        Some((rest, "ro")) => (rest, true),
        Some((rest, "rw")) => (rest, false),
        _ => (text, false),
    };
    let (host, node) = rest.split_once(':').ok_or_else(shape)?;
    if host.is_empty() || node.is_empty() || node.contains(':') {
        return Err(shape());
    }
    if !node.starts_with('/') {
        return Err((
            format!("bind target '{node}' is not an absolute path"),
            format!("the path inside the node starts with '/', e.g. '{host}:/{node}'"),
        ));
    }
    Ok((host, node, read_only))
}

pub(crate) fn lab_name_problem(name: &str) -> Option<Problem> {
    let rule = "the lab name is 1 to 12 characters from a-z, 0-9 and '-'";
    if name.is_empty() {
        return Some(("lab name is empty".to_string(), rule.to_string()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        let lower = name.to_ascii_lowercase();
        let hint = if lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            format!("{rule}: write '{lower}'")
        } else {
            rule.to_string()
        };
        return Some((
            format!("lab name '{name}' has characters other than a-z, 0-9 and '-'"),
            hint,
        ));
    }
    if name.len() > 12 {
        return Some((
            format!("lab name '{name}' is longer than 12 characters"),
            format!("{rule} (it prefixes kernel object names)"),
        ));
    }
    None
}

pub(crate) fn node_name_problem(name: &str) -> Option<Problem> {
    if name == HOST {
        return Some((
            "node name 'host' is reserved".to_string(),
            "'host' stands for the host's namespace in link endpoints; rename the node".to_string(),
        ));
    }
    name_problem("node", name)
}

/// Host names are DNS names (RFC 1123, lower case), so that a Kubernetes node's name
/// (`ip-10-0-1-5.ec2.internal`) can name its host: they name no kernel object.
fn host_name_problem(name: &str) -> Option<Problem> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        return None;
    }
    let rule = "host names are DNS names: labels of a-z, 0-9 and '-' (not at either end) \
                joined by '.', 253 characters at most";
    let lower = name.to_ascii_lowercase();
    let hint = if lower != name && lower.len() <= 253 && lower.split('.').all(label_ok) {
        format!("{rule}: write '{lower}'")
    } else {
        rule.to_string()
    };
    Some((format!("invalid host name '{name}'"), hint))
}

/// Group names follow the rules of node names (`host` included: it names no node).
fn group_name_problem(name: &str) -> Option<Problem> {
    name_problem("group", name)
}

fn name_problem(what: &str, name: &str) -> Option<Problem> {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    let valid =
        !name.is_empty() && name.len() <= 32 && !name.starts_with('-') && name.bytes().all(ok_char);
    if valid {
        return None;
    }
    let rule =
        format!("{what} names are 1 to 32 characters from a-z, 0-9 and '-', not starting with '-'");
    let lower = name.to_ascii_lowercase();
    let hint = if lower.len() <= 32 && !lower.starts_with('-') && lower.bytes().all(ok_char) {
        format!("{rule}: write '{lower}'")
    } else {
        rule
    };
    Some((format!("invalid {what} name '{name}'"), hint))
}

/// Interface and bridge names: what the kernel accepts as a link name.
pub(crate) fn ifname_problem(what: &str, name: &str) -> Option<Problem> {
    let rule =
        format!("{what} names are 1 to 15 bytes, without '/', ':', spaces or control characters");
    let message = if name.is_empty() {
        format!("{what} name is empty")
    } else if name.len() > 15 {
        format!("{what} name '{name}' is longer than 15 bytes")
    } else if name == "." || name == ".." {
        format!("{what} name '{name}' is not allowed")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        format!("{what} name '{name}' has a forbidden character")
    } else {
        return None;
    };
    Some((message, rule))
}

/// A `dirs:` key as a path: absolute, with no `.`, `..` or empty components, not `/`.
fn dir_path(text: &str) -> Option<PathBuf> {
    let rest = text.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let normal = !rest.is_empty()
        && rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    normal.then(|| PathBuf::from(format!("/{rest}")))
}

/// `USER[:GROUP]`, each a name (`[A-Za-z0-9_.-]`, not starting with `-`) or a number.
fn owner_problem(text: &str) -> Option<Problem> {
    let part = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    let ok = match text.split_once(':') {
        Some((user, group)) => part(user) && part(group),
        None => part(text),
    };
    (!ok).then(|| {
        (
            format!("owner '{text}' is not USER or USER:GROUP"),
            "write a user (and group) of the node, by name or number, e.g. 'frr' or 'frr:frrvty'"
                .to_string(),
        )
    })
}

fn service_name_problem(name: &str) -> Option<Problem> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid && name == "exec" {
        return Some((
            "a service cannot be named 'exec'".to_string(),
            "'exec' names the log of the node's exec: lines (topo logs NODE exec); choose another name".to_string(),
        ));
    }
    (!valid).then(|| {
        (
            format!("invalid service name '{name}'"),
            "service names are 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'".to_string(),
        )
    })
}

fn env_key_problem(key: &str) -> Option<Problem> {
    let mut bytes = key.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    let valid = first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (!valid).then(|| {
        (
            format!("invalid environment variable name '{key}'"),
            "names are letters, digits and '_', not starting with a digit, e.g. 'ROLE'".to_string(),
        )
    })
}

fn sysctl_key_problem(key: &str) -> Option<Problem> {
    let hint = "only per-network-namespace 'net.*' sysctls can be set, e.g. 'net.ipv4.ip_forward'";
    if key.contains('/') {
        return Some((
            format!("sysctl '{key}' uses '/' separators"),
            format!(
                "write it with dots: '{}'",
                key.trim_matches('/').replace('/', ".")
            ),
        ));
    }
    if !key.starts_with("net.") {
        let first = key.split('.').next().unwrap_or(key);
        let message = if matches!(
            first,
            "kernel" | "vm" | "fs" | "dev" | "user" | "abi" | "debug" | "crypto" | "sunrpc"
        ) {
            format!("sysctl '{key}' is host-wide")
        } else {
            format!("sysctl '{key}' is not a 'net.*' key")
        };
        return Some((message, hint.to_string()));
    }
    let chars_ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !chars_ok || key.split('.').any(str::is_empty) {
        return Some((
            format!("invalid sysctl key '{key}'"),
            "sysctl keys are letters, digits, '_' and '-' separated by single dots".to_string(),
        ));
    }
    None
}

fn capability_problem(name: &str) -> Option<Problem> {
    if name == "ALL" || CAPABILITIES.contains(&name) {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    let rule = "capabilities are written without 'CAP_', in capitals, e.g. 'NET_ADMIN', or 'ALL'";
    if bare == "ALL" || CAPABILITIES.contains(&bare) {
        return Some((
            format!("capability '{name}' is not spelled as topo expects"),
            format!("write '{bare}' ({rule})"),
        ));
    }
    let hint = match did_you_mean(bare, CAPABILITIES.iter().copied()) {
        Some(s) => format!("did you mean '{s}'? {rule}"),
        None => rule.to_string(),
    };
    Some((format!("unknown capability '{name}'"), hint))
}

/// The closest candidate, when it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    if word.len() > 64 {
        return None;
    }
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev + usize::from(ca != *cb);
            prev = row[j + 1];
            row[j + 1] = sub.min(prev + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(src: &str) -> (Topology, Spans, Diagnostics) {
        parse(src, Path::new("/lab/t.yaml")).unwrap()
    }

    #[test]
    fn distance_and_suggestions() {
        assert_eq!(edit_distance("adresses", "addresses"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("adresses", INTERFACE_KEYS.iter().copied()),
            Some("addresses")
        );
        assert_eq!(did_you_mean("zzzzzz", INTERFACE_KEYS.iter().copied()), None);
    }

    #[test]
    fn logs_default_and_bounds() {
        let (t, _, d) = read("name: a\n");
        assert!(d.is_empty());
        assert_eq!(t.logs, Logs::default());
        assert_eq!((t.logs.max_size, t.logs.keep), (1 << 20, 2));
        let (t, _, d) = read("name: a\nlogs: {max_size: 4Mi, keep: 3}\n");
        assert!(d.is_empty(), "{d}");
        assert_eq!((t.logs.max_size, t.logs.keep), (4 << 20, 3));
        let (_, _, d) = read("name: a\nlogs: {max_size: 10, keep: 101}\n");
        assert_eq!(d.len(), 2, "{d}");
        let (_, _, d) = read("name: a\nlogs: {size: 1Mi}\n");
        assert_eq!(d.len(), 1, "{d}");
    }

    #[test]
    fn cidr() {
        assert!(parse_cidr("10.0.0.1/24").is_ok());
        assert!(parse_cidr("2001:db8::1/64").is_ok());
        assert!(parse_cidr("10.0.0.1")
            .unwrap_err()
            .1
            .contains("10.0.0.1/32"));
        assert!(parse_cidr("10.0.0.1/33").is_err());
        assert!(parse_cidr("10.0.0/24").is_err());
        assert!(parse_cidr("10.0.0.1/+8").is_err());
    }

    #[test]
    fn binds_split() {
        assert_eq!(split_bind("./a:/b"), Ok(("./a", "/b", false)));
        assert_eq!(split_bind("./a:/b:ro"), Ok(("./a", "/b", true)));
        assert_eq!(split_bind("/a:/b:rw"), Ok(("/a", "/b", false)));
        assert!(split_bind("./a:b")
            .unwrap_err()
            .0
            .contains("not an absolute path"));
        assert!(split_bind("./a").is_err());
        assert!(split_bind("./a:/b:xx").is_err());
    }

    #[test]
    fn capability_spelling() {
        assert!(capability_problem("NET_ADMIN").is_none());
        assert!(capability_problem("ALL").is_none());
        assert!(capability_problem("CAP_NET_ADMIN")
            .unwrap()
            .1
            .contains("'NET_ADMIN'"));
        assert!(capability_problem("net_admin")
            .unwrap()
            .1
            .contains("'NET_ADMIN'"));
        assert!(capability_problem("NET_ADMN")
            .unwrap()
            .1
            .contains("did you mean"));
        assert_eq!(CAPABILITIES.len(), 41);
    }

    #[test]
    fn defaults_merge() {
        let src = "\
name: t
defaults:
  sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: true}
  env: {A: b, C: d}
  limits: {memory: 128Mi, pids: 256}
  seccomp: unconfined
  userns: false
nodes:
  a:
    sysctls: {net.ipv4.ip_forward: 0}
    env: {C: own}
    limits: {pids: 10, cpu: 2}
    userns: true
  b: {}
";
        let (t, spans, diags) = read(src);
        assert!(diags.is_empty(), "{diags}");
        let a = &t.nodes["a"];
        assert_eq!(a.sysctls["net.ipv4.ip_forward"], SysctlValue::Int(0));
        assert_eq!(
            a.sysctls["net.ipv6.conf.all.forwarding"],
            SysctlValue::Int(1)
        );
        assert_eq!(a.env["A"], "b");
        assert_eq!(a.env["C"], "own");
        assert_eq!(a.limits.memory, Some(128 << 20));
        assert_eq!(a.limits.pids, Some(10));
        assert_eq!(a.limits.cpu, Some(2.0));
        assert_eq!(a.seccomp, Some(Seccomp::Unconfined));
        assert_eq!(a.userns, Some(true));
        let b = &t.nodes["b"];
        assert_eq!(b.limits.pids, Some(256));
        assert_eq!(b.userns, Some(false));
        assert_eq!(b.env.len(), 2);
        // Inherited values point at the defaults.
        assert_eq!(spans.value("nodes.b.limits.pids"), Pos::new(5, 33));
        assert_eq!(spans.value("nodes.b.seccomp"), Pos::new(6, 12));
        assert_eq!(spans.key("nodes.a.limits.pids"), Pos::new(12, 14));
    }

    #[test]
    fn merge_keys_reach_every_reader() {
        let src = "\
name: t
nodes:
  a: &router
    sysctls: {net.ipv4.ip_forward: 1}
    env: {ROLE: core}
  b:
    <<: *router
    env: {ROLE: edge}
links:
  - &wan {endpoints: [a:eth1, b:eth1], impair: {delay: 10ms}, mtu: 9000}
  - {<<: *wan, endpoints: [a:eth2, b:eth2]}
";
        let (t, spans, diags) = read(src);
        assert!(diags.is_empty(), "{diags}");
        let b = &t.nodes["b"];
        assert_eq!(b.sysctls["net.ipv4.ip_forward"], SysctlValue::Int(1));
        assert_eq!(b.env["ROLE"], "edge");
        assert_eq!(t.links[1].mtu, Some(9000));
        assert_eq!(t.links[1].endpoints[0], ep("a", "eth2"));
        assert_eq!(t.links[1].impair, t.links[0].impair);
        // A merged value is where the anchor's text is.
        assert_eq!(
            spans.key("nodes.b.sysctls.net.ipv4.ip_forward"),
            Pos::new(4, 15)
        );
        assert_eq!(spans.value("links[1].mtu"), Pos::new(10, 68));
        assert_eq!(spans.value("links[1].endpoints"), Pos::new(11, 27));
    }

    #[test]
    fn errors_in_merged_values_point_at_the_anchor() {
        let src = "\
name: t
nodes:
  a: &router
    userns: 1
  b: {<<: *router, env: {X: y}}
";
        let (_, _, diags) = read(src);
        let got: Vec<(usize, usize, &str)> = diags
            .iter()
            .map(|d| (d.line, d.column, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    4,
                    13,
                    "expected a boolean for 'nodes.a.userns', found a number"
                ),
                (
                    4,
                    13,
                    "expected a boolean for 'nodes.b.userns', found a number"
                ),
            ],
            "{diags}"
        );
        let e = parse("name: t\nnodes: {a: {<<: 1}}\n", Path::new("t.yaml")).unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].column), (2, 17), "{e}");
        assert!(e.0[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("*anchor")));
    }

    const GROUPS: &str = "\
name: t
defaults:
  sysctls: {net.ipv4.ip_forward: 1}
  limits: {memory: 128Mi}
  userns: false
groups:
  frr:
    interfaces: {lo: {mtu: 1500}}
    binds: ['./frr:/etc/frr', './log:/var/log/frr']
    env: {ROLE: core, DAEMONS: zebra}
    sysctls: {net.ipv6.conf.all.forwarding: 1, net.ipv4.ip_forward: 0}
    services: {zebra: /usr/lib/frr/zebra, bgpd: /usr/lib/frr/bgpd}
    limits: {pids: max, cpu: 1}
    capabilities: {drop: [ALL], add: [NET_ADMIN]}
  spare: {}
nodes:
  r1:
    group: frr
    interfaces: {lo: {addresses: [10.255.0.1/32]}}
    services: {bgpd: /usr/lib/frr/bgpd -M rpki}
    env: {ROLE: edge}
    capabilities: {add: [NET_ADMIN, SYS_ADMIN]}
  r2:
    group: frr
    binds: ['./frr2:/etc/frr']
    limits: {cpu: 2}
  h1: {}
";

    #[test]
    fn nodes_take_their_group_and_override_it() {
        let (t, spans, diags) = read(GROUPS);
        assert!(diags.is_empty(), "{diags}");
        let r1 = &t.nodes["r1"];
        assert_eq!(r1.group.as_deref(), Some("frr"));
        // Mappings merge key by key, recursively.
        assert_eq!(r1.interfaces["lo"], iface(&["10.255.0.1/32"], Some(1500)));
        assert_eq!(r1.services["bgpd"].command, "/usr/lib/frr/bgpd -M rpki");
        assert_eq!(r1.services["zebra"].command, "/usr/lib/frr/zebra");
        assert_eq!(r1.env["ROLE"], "edge");
        assert_eq!(r1.env["DAEMONS"], "zebra");
        // Lists replace: `add` is the node's, `drop` the group's.
        let caps = r1.capabilities.clone().unwrap();
        assert_eq!(caps.drop, ["ALL"]);
        assert_eq!(caps.add, ["NET_ADMIN", "SYS_ADMIN"]);
        assert_eq!(r1.binds.len(), 2);
        // The group wins over defaults; defaults fill what both leave unset.
        assert_eq!(r1.sysctls["net.ipv4.ip_forward"], SysctlValue::Int(0));
        assert_eq!(r1.limits.memory, Some(128 << 20));
        assert_eq!(r1.limits.pids, None, "pids: max from the group");
        assert_eq!(r1.limits.cpu, Some(1.0));
        assert_eq!(r1.userns, Some(false));
        let r2 = &t.nodes["r2"];
        assert_eq!(r2.binds.len(), 1);
        assert_eq!(r2.binds[0].host, Path::new("/lab/frr2"));
        assert_eq!(r2.limits.cpu, Some(2.0));
        assert_eq!(r2.limits.pids, None);
        assert_eq!(r2.services.len(), 2);
        let h1 = &t.nodes["h1"];
        assert_eq!(h1.group, None);
        assert!(h1.services.is_empty());
        assert_eq!(h1.limits.pids, Some(Limits::DEFAULT_PIDS));
        let members = |g: &str| t.groups[g].iter().cloned().collect::<Vec<_>>();
        assert_eq!(members("frr"), ["r1", "r2"]);
        assert!(members("spare").is_empty());
        // Positions: the group's line for what a node takes from it, the node's own line
        // for what it overrides, the defaults' line for what only defaults set.
        assert_eq!(spans.value("nodes.r2.services.zebra"), Pos::new(12, 23));
        assert_eq!(spans.value("nodes.r2.binds[0]"), Pos::new(25, 13));
        assert_eq!(spans.value("nodes.r1.binds[1]"), Pos::new(9, 31));
        assert_eq!(spans.value("nodes.r1.services.bgpd"), Pos::new(20, 22));
        assert_eq!(spans.key("nodes.r1.interfaces.lo.mtu"), Pos::new(8, 23));
        assert_eq!(spans.value("nodes.r1.limits.memory"), Pos::new(4, 20));
        assert_eq!(spans.value("nodes.h1.limits.memory"), Pos::new(4, 20));
    }

    /// `(line, column, message)` of each diagnostic.
    fn found(diags: &Diagnostics) -> Vec<(usize, usize, String)> {
        let mut out: Vec<_> = diags
            .iter()
            .map(|d| (d.line, d.column, d.message.clone()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn group_errors() {
        let src = "\
name: t
groups:
  frr:
    interface: {}
    group: base
    userns: true
  Edge: {}
  bad: [x]
nodes:
  a: {group: fr}
  b: {group: [frr]}
  c: {group: bad}
";
        let (t, _, diags) = read(src);
        assert_eq!(
            found(&diags),
            [
                (4, 5, "unknown key 'interface' in group frr".to_string()),
                (
                    5,
                    5,
                    "key 'group' in group frr: groups do not nest".to_string()
                ),
                (7, 3, "invalid group name 'Edge'".to_string()),
                (
                    8,
                    8,
                    "expected a mapping for 'groups.bad', found a list".to_string()
                ),
                (10, 14, "node a names unknown group 'fr'".to_string()),
                (
                    11,
                    14,
                    "expected a string for 'nodes.b.group', found a list".to_string()
                ),
            ],
            "{diags}"
        );
        let hint = |line: usize| {
            let d = diags.iter().find(|d| d.line == line).unwrap();
            d.hint.clone().unwrap()
        };
        assert!(hint(4).starts_with("did you mean 'interfaces'? allowed keys: interfaces,"));
        assert!(!hint(4).contains("group"), "{}", hint(4));
        assert!(hint(7).contains("write 'edge'"), "{}", hint(7));
        assert_eq!(hint(10), "did you mean 'frr'? groups: Edge, bad, frr");
        // The keys a group's check let through are still taken.
        assert_eq!(t.nodes["c"].group.as_deref(), Some("bad"));
        // A group named without any 'groups:'.
        let (_, _, diags) = read("name: t\nnodes: {a: {group: frr}}\n");
        assert_eq!(diags.len(), 1, "{diags}");
        assert_eq!(
            diags.0[0].hint.as_deref(),
            Some("define it under 'groups:' at the top level")
        );
    }

    #[test]
    fn an_error_in_a_group_is_reported_once_where_the_group_says_it() {
        let src = "\
name: t
groups:
  frr:
    userns: 1
    routes: [{via: 10.0.0.1}]
    sysctls: {kernel.pid_max: 1}
nodes:
  b: {group: frr}
  a: {group: frr, userns: true}
  c: {group: frr, userns: 2}
";
        let (_, _, diags) = read(src);
        assert_eq!(
            found(&diags),
            [
                (
                    4,
                    13,
                    "expected a boolean for 'nodes.b.userns', found a number".to_string()
                ),
                (5, 14, "route 1 of node b has no 'to'".to_string()),
                (6, 15, "sysctl 'kernel.pid_max' is host-wide".to_string()),
                (
                    10,
                    27,
                    "expected a boolean for 'nodes.c.userns', found a number".to_string()
                ),
            ],
            "{diags}"
        );
    }

    #[test]
    fn groups_are_capped_like_aliases() {
        let mut src = String::from("name: t\ngroups:\n  big:\n    env:\n");
        for i in 0..2000 {
            src.push_str(&format!("      V{i}: x\n"));
        }
        src.push_str("nodes:\n");
        for i in 0..300 {
            src.push_str(&format!("  n{i}: {{group: big}}\n"));
        }
        let start = std::time::Instant::now();
        let d = parse(&src, Path::new("t.yaml")).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(d.len(), 1, "{d}");
        assert!(d.0[0].message.contains("groups add more than"), "{d}");
        // At the `group:` of the first node past the cap.
        assert!((2006..2306).contains(&d.0[0].line), "{d}");
        // Many groups, and many nodes that name groups that do not exist.
        let mut src = String::from("name: t\ngroups:\n");
        for i in 0..5000 {
            src.push_str(&format!("  group-{i:05}: {{}}\n"));
        }
        src.push_str("nodes:\n");
        for i in 0..5000 {
            src.push_str(&format!("  n{i}: {{group: group-{i:04}x}}\n"));
        }
        let start = std::time::Instant::now();
        let (_, _, d) = read(&src);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(d.len(), 5000);
        let hint = d.0[4999].hint.as_deref().unwrap_or_default();
        assert!(hint.ends_with("group-00009, … (5000 in all)"), "{hint}");
    }

    #[test]
    fn spans_fall_back_to_parents() {
        let (_, spans, _) =
            read("name: t\nnodes:\n  r1:\n    routes: [{to: default, via: 10.0.0.1}]\n");
        assert_eq!(spans.value("nodes.r1.routes[0].via"), Pos::new(4, 33));
        assert_eq!(spans.value("nodes.r1.routes[0].via[0]"), Pos::new(4, 33));
        assert_eq!(spans.key("nodes.r1"), Pos::new(3, 3));
        assert_eq!(spans.key("nowhere"), Pos::new(1, 1));
    }

    #[test]
    fn spans_follow_keys_with_dots_and_large_mappings() {
        // Sysctl keys hold dots: the longest key the path goes on with is taken.
        let (_, spans, _) = read(
            "name: t\nnodes:\n  a:\n    sysctls:\n      net.ipv4: 1\n      net.ipv4.ip_forward: 1\n",
        );
        assert_eq!(
            spans.key("nodes.a.sysctls.net.ipv4.ip_forward"),
            Pos::new(6, 7)
        );
        assert_eq!(spans.key("nodes.a.sysctls.net.ipv4"), Pos::new(5, 7));
        // A mapping of more than 16 entries is looked up through its index: the same
        // positions as a scan, the first of duplicate keys.
        let mut src = String::from("name: t\nnodes:\n");
        for i in 0..40 {
            src.push_str(&format!("  n{i}: {{}}\n"));
        }
        let (_, spans, _) = parse(&src, Path::new("/lab/t.yaml")).unwrap_or_else(|d| {
            panic!("{d}");
        });
        for i in [0, 17, 39] {
            assert_eq!(spans.key(&format!("nodes.n{i}")), Pos::new(3 + i, 3));
        }
        assert_eq!(spans.key("nodes.n99"), Pos::new(2, 1));
    }

    #[test]
    fn keeps_going_after_errors() {
        let src =
            "name: T\nnodes:\n  r1: {interfaces: {eth1: {adresses: [x]}}}\n  r1: {}\nlinkz: []\n";
        let (_, _, diags) = read(src);
        let mut lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
        lines.sort();
        assert_eq!(lines, vec![1, 3, 4, 5], "{diags}");
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ep(node: &str, iface: &str) -> Endpoint {
        Endpoint {
            node: node.into(),
            iface: iface.into(),
        }
    }

    fn iface(addrs: &[&str], mtu: Option<u32>) -> Interface {
        Interface {
            addresses: addrs.iter().map(|a| net(a)).collect(),
            mtu,
            capture: false,
        }
    }

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn route(to: Option<&str>, via: &[&str], dev: Option<&str>, metric: Option<u32>) -> Route {
        Route {
            to: to.map_or(RouteDest::Default, |t| RouteDest::Prefix(net(t))),
            via: via.iter().map(|v| ip(v)).collect(),
            dev: dev.map(String::from),
            metric,
        }
    }

    /// tests/good/triangle.yaml, read into exactly the expected model.
    #[test]
    fn full_file_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good");
        let file = dir.join("triangle.yaml");
        let src = std::fs::read_to_string(&file).unwrap();
        let got = crate::spec::parse_str(&src, &file).unwrap();
        let forwarding = map(&[
            ("net.ipv4.ip_forward", SysctlValue::Int(1)),
            ("net.ipv6.conf.all.forwarding", SysctlValue::Int(1)),
        ]);
        let caps = Capabilities {
            drop: vec!["ALL".into()],
            add: vec![
                "NET_ADMIN".into(),
                "NET_RAW".into(),
                "NET_BIND_SERVICE".into(),
            ],
        };
        let limits = Limits {
            memory: Some(128 << 20),
            pids: Some(256),
            cpu: Some(0.5),
            pids_default: false,
        };
        let defaults = Defaults {
            sysctls: forwarding.clone(),
            env: map(&[("A", "b".to_string())]),
            limits: limits.clone(),
            tmpfs: Tmpfs::default(),
            capabilities: Some(caps.clone()),
            seccomp: Some(Seccomp::Default),
            userns: Some(false),
            apparmor: None,
        };
        let inherited = Node {
            sysctls: forwarding.clone(),
            env: defaults.env.clone(),
            limits: limits.clone(),
            capabilities: Some(caps.clone()),
            seccomp: Some(Seccomp::Default),
            userns: Some(false),
            ..Node::default()
        };
        let r1 = Node {
            interfaces: map(&[
                ("lo", iface(&["10.255.0.1/32", "2001:db8:ff::1/128"], None)),
                ("eth1", iface(&["10.0.12.1/31"], Some(9000))),
                ("eth2", iface(&["10.0.13.1/31"], None)),
                ("eth3", iface(&["192.0.2.1/24"], None)),
            ]),
            routes: vec![
                route(Some("10.255.0.2/32"), &["10.0.12.0"], None, None),
                route(None, &["10.0.12.0", "10.0.13.0"], None, None),
                route(Some("10.9.0.0/16"), &[], Some("eth1"), Some(20)),
            ],
            binds: vec![
                Bind {
                    host: dir.join("r1/frr"),
                    node: "/etc/frr".into(),
                    read_only: false,
                },
                Bind {
                    host: dir.join("shared"),
                    node: "/srv".into(),
                    read_only: true,
                },
            ],
            rootfs: Some(dir.join("rootfs/busybox")),
            filesystem: Some(Filesystem {
                read_only: vec!["/etc".into()],
                read_write: vec!["/var/lib/frr".into()],
            }),
            env: map(&[("A", "b".to_string()), ("ROLE", "core".to_string())]),
            exec: vec!["sysctl -q net.ipv4.conf.all.rp_filter".into()],
            services: map(&[("zebra", Service::command("/usr/lib/frr/zebra -A 127.0.0.1"))]),
            limits: Limits {
                memory: Some(256 << 20),
                ..limits.clone()
            },
            seccomp: Some(Seccomp::Profile(dir.join("seccomp.json"))),
            userns: Some(true),
            ..inherited.clone()
        };
        let r2 = Node {
            interfaces: map(&[("eth1", iface(&["10.0.12.0/31"], None))]),
            ..inherited.clone()
        };
        let r3 = Node {
            interfaces: map(&[("eth1", iface(&["10.0.13.0/31", "2001:db8:13::2/64"], None))]),
            routes: vec![
                route(Some("2001:db8::/32"), &["2001:db8:13::1"], None, None),
                route(Some("::/0"), &["fe80::1"], Some("eth1"), None),
            ],
            sysctls: map(&[
                ("net.ipv4.ip_forward", SysctlValue::Int(0)),
                (
                    "net.ipv4.tcp_rmem",
                    SysctlValue::Text("4096 87380 6291456".into()),
                ),
                ("net.ipv6.conf.all.forwarding", SysctlValue::Int(1)),
            ]),
            capabilities: Some(Capabilities {
                drop: vec![],
                add: vec!["SYS_ADMIN".into()],
            }),
            ..inherited.clone()
        };
        let h1 = Node {
            interfaces: map(&[("eth0", iface(&["192.0.2.10/24"], None))]),
            routes: vec![route(None, &["192.0.2.1"], None, None)],
            ..inherited.clone()
        };
        let expected = Topology {
            name: "triangle".into(),
            logs: Logs::default(),
            tests: Vec::new(),
            hosts: BTreeMap::new(),
            vxlan: Vxlan::default(),
            defaults,
            groups: BTreeMap::new(),
            nodes: map(&[("r1", r1), ("r2", r2), ("r3", r3), ("h1", h1)]),
            links: vec![
                Link {
                    endpoints: [ep("r1", "eth1"), ep("r2", "eth1")],
                    mtu: None,
                    impair: None,
                    state: LinkState::Up,
                    capture: false,
                    vni: None,
                },
                Link {
                    endpoints: [ep("r1", "eth2"), ep("r3", "eth1")],
                    mtu: Some(1500),
                    impair: Some(LinkImpair::Both(Impair {
                        delay_us: Some(10_000),
                        jitter_us: Some(1_000),
                        loss_ppm: Some(5_000),
                        corrupt_ppm: Some(1_000),
                        duplicate_ppm: Some(10_000),
                        reorder_ppm: Some(250_000),
                        rate_bps: Some(100_000_000),
                    })),
                    state: LinkState::Up,
                    capture: false,
                    vni: None,
                },
                Link {
                    endpoints: [ep("r2", "eth9"), ep("host", "tp-r2")],
                    mtu: None,
                    impair: None,
                    state: LinkState::Down,
                    capture: false,
                    vni: None,
                },
            ],
            bridges: map(&[(
                "lan1",
                Bridge {
                    members: vec![ep("h1", "eth0"), ep("r1", "eth3")],
                    mtu: Some(1500),
                    vni: None,
                },
            )]),
        };
        assert_eq!(got.name, expected.name);
        assert_eq!(got.defaults, expected.defaults);
        for (name, node) in &expected.nodes {
            assert_eq!(&got.nodes[name], node, "node {name}");
        }
        assert_eq!(got, expected);
    }

    /// tests/good/groups.yaml: what each node takes from its group and from merge keys.
    #[test]
    fn groups_file_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good");
        let file = dir.join("groups.yaml");
        let src = std::fs::read_to_string(&file).unwrap();
        let t = crate::spec::parse_str(&src, &file).unwrap();
        let (r1, r2, r3) = (&t.nodes["r1"], &t.nodes["r2"], &t.nodes["r3"]);
        assert_eq!(r1.interfaces["eth2"], iface(&["10.0.13.0/31"], Some(9000)));
        assert_eq!(r1.binds.len(), 2);
        assert_eq!(r1.exec, ["mkdir -p /run/frr"]);
        assert_eq!(r1.env["LOG"], "stdout");
        assert_eq!(r2.env["LOG"], "file:/tmp/frr.log");
        assert_eq!(r2.env["CONF"], "/etc/frr");
        assert_eq!(r2.services["zebra"], r1.services["zebra"]);
        assert!(r2.services["ospfd"]
            .command
            .ends_with("--log-level debugging"));
        assert_eq!(r3.binds.len(), 1);
        assert_eq!(r3.services.len(), 2);
        assert_eq!(r3.sysctls.len(), 2);
        assert_eq!(
            (r1.limits.pids, r3.limits.pids, r3.limits.memory),
            (Some(512), None, Some(128 << 20))
        );
        assert_eq!(t.links[1].impair, t.links[0].impair);
        assert_eq!(t.links[1].endpoints, [ep("r1", "eth2"), ep("r3", "eth1")]);
        let names: Vec<&String> = t.groups["frr"].iter().collect();
        assert_eq!(names, ["r1", "r2", "r3"]);
        assert!(t.groups["spare"].is_empty());
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let samples = [
            "",
            "~",
            "[]",
            "- a",
            "name: [",
            "{",
            "name: !!binary abc",
            "? [a]\n: b",
            "name: t\nnodes: {r1: [1]}",
            "name: t\nlinks: [{endpoints: [a, ':', 'b:', ':c']}]",
            "name: t\nnodes: {r1: {routes: [1, {to: x}, {via: []}]}}",
            "*a",
            "&a [*a]",
            "name: t\nbridges: {'': {members: ~}}",
            "name: \"\\0\"",
            "name: t\nnodes: {r1: {binds: [':', '::', ':/:ro']}}",
            "name: t\ngroups: {g: {group: g}}\nnodes: {a: {group: g}}",
            "name: t\ngroups: [1]\nnodes: {a: {group: ~}, b: {group: {}}}",
            "name: t\ngroups: ~\nnodes: [{group: g}]",
            "name: t\ngroups: {g: ~, '': 1, ~: {}}\nnodes: {a: {group: g}, ~: {group: g}}",
            "name: t\ngroups: {g: {interfaces: [1], routes: {a: 1}}}\n\
             nodes: {a: {group: g, interfaces: {x: 1}, routes: [1]}}",
            "name: t\ngroups: {g: &g {env: {A: b}}}\nnodes: {a: {<<: *g, group: g, env: {<<: *g}}}",
            "{<<: {<<: {}}}",
            "<<: []",
            "name: t\nnodes: {a: {group: g, group: h}}\ngroups: {g: {}, g: {env: 1}}",
        ];
        for s in samples {
            let _ = parse(s, Path::new("x.yaml"));
        }
    }
}

/// The reader's key lists and the model's schema (what editors and `topo schema` show) are
/// two descriptions of one file format: they must name the same keys.
#[cfg(test)]
mod schema_keys {
    use super::*;

    fn properties(schema: &serde_json::Value, pointer: &str) -> Vec<String> {
        let Some(props) = schema.pointer(pointer).and_then(|p| p.as_object()) else {
            panic!("the schema has no {pointer}");
        };
        let mut keys: Vec<String> = props.keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_key_list_equals_its_schema_properties() {
        let schema: serde_json::Value = match serde_json::from_str(&crate::spec::json_schema()) {
            Ok(v) => v,
            Err(e) => panic!("schema is not JSON: {e}"),
        };
        let lists: [(&str, &[&str]); 19] = [
            ("/properties", TOP_KEYS),
            ("/definitions/Host/properties", HOST_KEYS),
            ("/definitions/Vxlan/properties", VXLAN_KEYS),
            ("/definitions/Logs/properties", LOGS_KEYS),
            ("/definitions/Defaults/properties", DEFAULT_KEYS),
            ("/definitions/Node/properties", NODE_KEYS),
            ("/definitions/Interface/properties", INTERFACE_KEYS),
            ("/definitions/Route/properties", ROUTE_KEYS),
            ("/definitions/Filesystem/properties", FILESYSTEM_KEYS),
            ("/definitions/Limits/properties", LIMIT_KEYS),
            ("/definitions/Tmpfs/properties", TMPFS_KEYS),
            ("/definitions/Capabilities/properties", CAPABILITY_KEYS),
            ("/definitions/Link/properties", LINK_KEYS),
            ("/definitions/Impair/properties", IMPAIR_KEYS),
            ("/definitions/Bridge/properties", BRIDGE_KEYS),
            ("/definitions/Service/properties", SERVICE_KEYS),
            ("/definitions/Ready/properties", READY_KEYS),
            ("/definitions/Dir/properties", DIR_KEYS),
            ("/definitions/StepKeys/properties", steps::STEP_KEYS),
        ];
        for (pointer, list) in lists {
            let mut keys: Vec<String> = list.iter().map(|k| k.to_string()).collect();
            keys.sort();
            assert_eq!(keys, properties(&schema, pointer), "keys at {pointer}");
        }
        // Every object the schema describes has its list here.
        let described = schema
            .pointer("/definitions")
            .and_then(|d| d.as_object())
            .map(|d| d.values().filter(|v| v.get("properties").is_some()).count());
        assert_eq!(described, Some(lists.len() - 1));
    }
}
