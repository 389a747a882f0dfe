//! Reading the file's `tests:` (see [`crate::spec::steps`]). What a step names (nodes,
//! interfaces, services) is checked against the topology once all of it is read.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Entry, Reader, Yaml};
use crate::spec::model::{Endpoint, Topology};
use crate::spec::steps::{ExecExpect, Family, OspfVersion, RouteCheck, Step, StepKind, Wait};
use crate::spec::units;
use crate::spec::yaml::Pos;

pub(super) const STEP_KEYS: &[&str] = &[
    "name", "node", "nodes", "exec", "ping", "route", "ospf", "bgp", "service", "link", "impair",
    "stop", "start", "up", "sleep", "expect", "wait",
];
/// The keys that say what a step does; a step has exactly one.
const KIND_KEYS: &[&str] = &[
    "exec", "ping", "route", "ospf", "bgp", "service", "link", "impair", "stop", "start", "up",
    "sleep",
];
const PING_KEYS: &[&str] = &["to", "family", "count"];
const ROUTE_KEYS: &[&str] = &["to", "via", "dev", "protocol"];
const OSPF_KEYS: &[&str] = &["neighbors", "state", "version"];
const BGP_KEYS: &[&str] = &["peers", "state"];
const LINK_KEYS: &[&str] = &["endpoint", "state"];
const EXPECT_KEYS: &[&str] = &["status", "output", "json"];
const WAIT_KEYS: &[&str] = &["timeout", "interval"];

/// Longest retry window a step may ask for.
const MAX_WAIT_US: u64 = 3_600_000_000;

/// A name a step uses, checked once the topology is read.
pub(super) enum StepRef {
    Node {
        name: String,
        pos: Pos,
    },
    Endpoint {
        ep: Endpoint,
        pos: Pos,
    },
    Service {
        node: String,
        service: String,
        pos: Pos,
    },
}

impl Reader<'_> {
    pub(super) fn steps(&mut self, value: &Yaml) -> Vec<Step> {
        let mut out: Vec<Step> = Vec::new();
        let mut names: BTreeMap<String, Pos> = BTreeMap::new();
        for (i, (path, item)) in self.items(value, "tests").into_iter().enumerate() {
            let Some((step, pos)) = self.step(i, item, &path) else {
                continue;
            };
            if let Some(first) = names.get(&step.name) {
                self.error(
                    pos,
                    format!("two tests are named '{}'", step.name),
                    format!(
                        "the other is at line {}, column {}; test names are unique (they name the JUnit test cases)",
                        first.line, first.column
                    ),
                );
            } else {
                names.insert(step.name.clone(), pos);
            }
            out.push(step);
        }
        out
    }

    /// One step, and the position its name is reported at.
    fn step(&mut self, index: usize, value: &Yaml, path: &str) -> Option<(Step, Pos)> {
        if value.as_map().is_none() {
            self.wrong_type(value, "a mapping", path);
            return None;
        }
        let place = format!("in test {}", index + 1);
        let entries = self.fields(value, path, &place, STEP_KEYS);
        let kinds: Vec<&Entry<'_>> = entries
            .iter()
            .filter(|e| KIND_KEYS.contains(&e.key.as_str()))
            .collect();
        let kind_entry = match kinds.as_slice() {
            [one] => *one,
            [] => {
                self.error(
                    value.pos,
                    format!("test {} does nothing", index + 1),
                    format!("give it one of the keys {}", KIND_KEYS.join(", ")),
                );
                return None;
            }
            [first, second, ..] => {
                self.error(
                    second.key_pos,
                    format!(
                        "test {} has both '{}' and '{}'",
                        index + 1,
                        first.key,
                        second.key
                    ),
                    "one step does one thing: split it into two tests".to_string(),
                );
                return None;
            }
        };
        let mut name = None;
        let mut name_pos = value.pos;
        let mut nodes: Vec<String> = Vec::new();
        let mut expect: Option<&Entry<'_>> = None;
        let mut wait = None;
        for e in &entries {
            match e.key.as_str() {
                "name" => {
                    name = self.string(e.value, &e.path);
                    name_pos = e.value.pos;
                }
                "node" => {
                    if let Some(n) = self.string(e.value, &e.path) {
                        self.step_refs.push(StepRef::Node {
                            name: n.clone(),
                            pos: e.value.pos,
                        });
                        nodes.push(n);
                    }
                }
                "nodes" => {
                    for (p, item) in self.items(e.value, &e.path) {
                        if let Some(n) = self.string(item, &p) {
                            self.step_refs.push(StepRef::Node {
                                name: n.clone(),
                                pos: item.pos,
                            });
                            if !nodes.contains(&n) {
                                nodes.push(n);
                            }
                        }
                    }
                }
                "expect" => expect = Some(e),
                "wait" => wait = self.wait(e),
                _ => {}
            }
        }
        if entries.iter().filter(|e| e.key.starts_with("node")).count() > 1 {
            self.error(
                value.pos,
                format!("test {} has both 'node' and 'nodes'", index + 1),
                "give one node with 'node: r1' or several with 'nodes: [r1, r2]'".to_string(),
            );
        }
        let mut expect_fail = false;
        let mut exec_expect = ExecExpect::default();
        if let Some(e) = expect {
            match e.value.as_str() {
                Some("fail") if e.value.as_map().is_none() => expect_fail = true,
                Some("pass") if e.value.as_map().is_none() => {}
                _ if e.value.as_map().is_some() && kind_entry.key == "exec" => {
                    exec_expect = self.exec_expect(e);
                }
                _ => self.error(
                    e.value.pos,
                    "expected 'fail' or 'pass' for 'expect'".to_string(),
                    if kind_entry.key == "exec" {
                        "write 'expect: fail', or '{status: 0, output: REGEX, json: {...}}'"
                    } else {
                        "write 'expect: fail' for a check that must not pass"
                    }
                    .to_string(),
                ),
            }
        }
        let kind = self.step_kind(kind_entry, &nodes, exec_expect)?;
        let number = index + 1;
        if kind.on_nodes() && nodes.is_empty() {
            self.error(
                kind_entry.key_pos,
                format!("test {number} ({}) names no node", kind.key()),
                "add 'node: r1' or 'nodes: [r1, r2]': the nodes it runs on".to_string(),
            );
        }
        if !kind.on_nodes() && !nodes.is_empty() {
            self.error(
                kind_entry.key_pos,
                format!(
                    "test {number} ({}) acts on the lab, not on nodes",
                    kind.key()
                ),
                "remove 'node'/'nodes' from it".to_string(),
            );
        }
        if !kind.is_check() && (expect.is_some() || wait.is_some()) {
            self.error(
                kind_entry.key_pos,
                format!(
                    "test {number} ({}) is an action: it takes no 'expect' or 'wait'",
                    kind.key()
                ),
                "put the check that follows the action in a test of its own".to_string(),
            );
        }
        let name = name.unwrap_or_else(|| default_name(&kind, &nodes, expect_fail));
        Some((
            Step {
                name,
                nodes,
                kind,
                expect_fail,
                wait,
            },
            name_pos,
        ))
    }

    fn step_kind(
        &mut self,
        e: &Entry<'_>,
        nodes: &[String],
        expect: ExecExpect,
    ) -> Option<StepKind> {
        let (v, p) = (e.value, e.path.as_str());
        Some(match e.key.as_str() {
            "exec" => StepKind::Exec {
                command: self.string(v, p)?,
                expect,
            },
            "ping" => self.ping(e)?,
            "route" => StepKind::Route(self.route_check(e)?),
            "ospf" => {
                let mut neighbors = Vec::new();
                let mut state = "full".to_string();
                let mut version = OspfVersion::V2;
                if v.as_map().is_some() {
                    for f in self.fields(v, p, "in 'ospf'", OSPF_KEYS) {
                        match f.key.as_str() {
                            "neighbors" => neighbors = self.one_or_list(f.value, &f.path),
                            "state" => state = self.string(f.value, &f.path)?.to_ascii_lowercase(),
                            _ => match f.value.as_i64() {
                                Some(2) => version = OspfVersion::V2,
                                Some(3) => version = OspfVersion::V3,
                                _ => self.error(
                                    f.value.pos,
                                    "expected 2 or 3 for the OSPF version".to_string(),
                                    "2 is OSPFv2 (IPv4), 3 is OSPFv3 (IPv6)".to_string(),
                                ),
                            },
                        }
                    }
                } else {
                    neighbors = self.one_or_list(v, p);
                }
                self.need_some(&neighbors, e, "neighbors", "ospf: {neighbors: [r2, r3]}");
                StepKind::Ospf {
                    neighbors,
                    state,
                    version,
                }
            }
            "bgp" => {
                let mut peers = Vec::new();
                let mut state = "established".to_string();
                if v.as_map().is_some() {
                    for f in self.fields(v, p, "in 'bgp'", BGP_KEYS) {
                        match f.key.as_str() {
                            "peers" => peers = self.one_or_list(f.value, &f.path),
                            _ => state = self.string(f.value, &f.path)?.to_ascii_lowercase(),
                        }
                    }
                } else {
                    peers = self.one_or_list(v, p);
                }
                self.need_some(&peers, e, "peers", "bgp: {peers: [r2, 10.0.12.2]}");
                StepKind::Bgp { peers, state }
            }
            "service" => {
                let names = self.one_or_list(v, p);
                self.need_some(&names, e, "services", "service: [zebra, ospfd]");
                self.service_refs(nodes, &names, v.pos);
                StepKind::Service { names }
            }
            "stop" | "start" => {
                let whole = v.as_str() == Some("node") && v.as_map().is_none();
                let services = if whole {
                    Vec::new()
                } else {
                    let names = self.one_or_list(v, p);
                    self.need_some(&names, e, "services", "stop: zebra, or stop: node");
                    self.service_refs(nodes, &names, v.pos);
                    names
                };
                if e.key == "stop" {
                    StepKind::Stop { services }
                } else {
                    StepKind::Start { services }
                }
            }
            "link" => self.link_step(e)?,
            "impair" => self.impair_step(e)?,
            "up" => {
                let text = self.string(v, p)?;
                let file = self.resolve(&text);
                StepKind::Up { file }
            }
            _ => StepKind::Sleep {
                us: self.unit(v, p, units::parse_duration_us)?,
            },
        })
    }

    fn need_some(&mut self, list: &[String], e: &Entry<'_>, what: &str, example: &str) {
        if list.is_empty() {
            self.error(
                e.value.pos,
                format!("'{}' names no {what}", e.key),
                format!("write e.g. '{example}'"),
            );
        }
    }

    fn service_refs(&mut self, nodes: &[String], services: &[String], pos: Pos) {
        for node in nodes {
            for s in services {
                self.step_refs.push(StepRef::Service {
                    node: node.clone(),
                    service: s.clone(),
                    pos,
                });
            }
        }
    }

    /// A string or a list of strings.
    fn one_or_list(&mut self, value: &Yaml, path: &str) -> Vec<String> {
        if value.as_seq().is_some() {
            self.strings(value, path)
        } else {
            self.string(value, path).into_iter().collect()
        }
    }

    fn ping(&mut self, e: &Entry<'_>) -> Option<StepKind> {
        let (v, p) = (e.value, e.path.as_str());
        let mut targets = Vec::new();
        let mut family = None;
        let mut count = 1;
        if v.as_map().is_some() {
            for f in self.fields(v, p, "in 'ping'", PING_KEYS) {
                match f.key.as_str() {
                    "to" => targets = self.one_or_list(f.value, &f.path),
                    "family" => match f.value.as_i64() {
                        Some(4) => family = Some(Family::V4),
                        Some(6) => family = Some(Family::V6),
                        _ => self.error(
                            f.value.pos,
                            "expected 4 or 6 for the address family".to_string(),
                            "without 'family', a node is pinged at its first address of each family".to_string(),
                        ),
                    },
                    _ => {
                        count = self
                            .integer(f.value, &f.path, "ping count", (1, 100))
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(1)
                    }
                }
            }
        } else {
            targets = self.one_or_list(v, p);
        }
        self.need_some(&targets, e, "targets", "ping: [h2, 10.2.0.10]");
        for t in &targets {
            if t.parse::<IpAddr>().is_err() {
                self.step_refs.push(StepRef::Node {
                    name: t.clone(),
                    pos: v.pos,
                });
            }
        }
        Some(StepKind::Ping {
            targets,
            family,
            count,
        })
    }

    fn route_check(&mut self, e: &Entry<'_>) -> Option<RouteCheck> {
        let (v, p) = (e.value, e.path.as_str());
        let mut to = None;
        let mut check = RouteCheck {
            to: super::parse_cidr("0.0.0.0/0").ok()?,
            via: None,
            dev: None,
            protocol: None,
        };
        let prefix = |me: &mut Self, node: &Yaml, path: &str| {
            let text = me.string(node, path)?;
            match super::parse_cidr(&text) {
                Ok(net) => Some(net),
                Err((message, hint)) => {
                    me.error(node.pos, message, hint);
                    None
                }
            }
        };
        if v.as_map().is_some() {
            for f in self.fields(v, p, "in 'route'", ROUTE_KEYS) {
                match f.key.as_str() {
                    "to" => to = prefix(self, f.value, &f.path),
                    "via" => {
                        let text = self.string(f.value, &f.path)?;
                        match super::gateway(&text) {
                            Ok(a) => check.via = Some(a),
                            Err((message, hint)) => self.error(f.value.pos, message, hint),
                        }
                    }
                    "dev" => check.dev = self.string(f.value, &f.path),
                    _ => {
                        let text = self.string(f.value, &f.path)?;
                        if crate::check::routes::protocol_number(&text).is_none() {
                            self.error(
                                f.value.pos,
                                format!("unknown route protocol '{text}'"),
                                "give a name of /etc/iproute2/rt_protos (kernel, boot, static, zebra, bird, bgp, ospf, isis, rip, …) or a number".to_string(),
                            );
                        }
                        check.protocol = Some(text);
                    }
                }
            }
            if to.is_none() {
                self.error(
                    v.pos,
                    "'route' has no prefix".to_string(),
                    "write 'route: {to: 10.0.3.0/24, via: 10.0.12.2}'".to_string(),
                );
            }
        } else {
            to = prefix(self, v, p);
        }
        check.to = to?;
        Some(check)
    }

    fn step_endpoint(&mut self, value: &Yaml, path: &str) -> Option<Endpoint> {
        let ep = self.endpoint(value, path)?;
        self.step_refs.push(StepRef::Endpoint {
            ep: ep.clone(),
            pos: value.pos,
        });
        Some(ep)
    }

    fn link_step(&mut self, e: &Entry<'_>) -> Option<StepKind> {
        let (v, p) = (e.value, e.path.as_str());
        let (ep, state) = if v.as_map().is_some() {
            let mut ep = None;
            let mut state = None;
            for f in self.fields(v, p, "in 'link'", LINK_KEYS) {
                match f.key.as_str() {
                    "endpoint" => ep = self.step_endpoint(f.value, &f.path),
                    _ => state = self.string(f.value, &f.path).map(|s| (s, f.value.pos)),
                }
            }
            (ep, state)
        } else {
            let text = self.string(v, p)?;
            let mut words = text.split_whitespace();
            let (Some(ep), Some(state), None) = (words.next(), words.next(), words.next()) else {
                self.error(
                    v.pos,
                    format!("'{text}' is not 'NODE:IF up' or 'NODE:IF down'"),
                    "write e.g. 'link: r1:eth1 down'".to_string(),
                );
                return None;
            };
            let ep_yaml = Yaml {
                pos: v.pos,
                kind: crate::spec::yaml::Kind::Scalar {
                    text: ep.into(),
                    plain: false,
                },
            };
            (
                self.step_endpoint(&ep_yaml, p),
                Some((state.to_string(), v.pos)),
            )
        };
        let up = match state {
            Some((s, _)) if s == "up" => true,
            Some((s, _)) if s == "down" => false,
            Some((s, pos)) => {
                self.error(
                    pos,
                    format!("unknown link state '{s}'"),
                    "the states are up and down".to_string(),
                );
                return None;
            }
            None => {
                self.error(
                    v.pos,
                    "'link' has no state".to_string(),
                    "write 'link: {endpoint: r1:eth1, state: down}'".to_string(),
                );
                return None;
            }
        };
        Some(StepKind::Link { endpoint: ep?, up })
    }

    fn impair_step(&mut self, e: &Entry<'_>) -> Option<StepKind> {
        let (v, p) = (e.value, e.path.as_str());
        let mut ep = None;
        let mut clear = false;
        let mut text = units::ImpairText::default();
        let mut any = false;
        // The link's impairment keys, and which interface and whether to clear.
        let keys: Vec<&str> = ["endpoint", "clear"]
            .into_iter()
            .chain(super::IMPAIR_KEYS.iter().copied())
            .collect();
        for f in self.fields(v, p, "in 'impair'", &keys) {
            let slot = match f.key.as_str() {
                "endpoint" => {
                    ep = self.step_endpoint(f.value, &f.path);
                    continue;
                }
                "clear" => {
                    clear = self.boolean(f.value, &f.path).unwrap_or(false);
                    continue;
                }
                "delay" => &mut text.delay,
                "jitter" => &mut text.jitter,
                "loss" => &mut text.loss,
                "corrupt" => &mut text.corrupt,
                "duplicate" => &mut text.duplicate,
                "reorder" => &mut text.reorder,
                _ => &mut text.rate,
            };
            any = true;
            *slot = scalar_text(f.value);
            if slot.is_none() {
                self.wrong_type(f.value, "a string", &f.path);
            }
        }
        let Some(ep) = ep else {
            self.error(
                v.pos,
                "'impair' names no endpoint".to_string(),
                "write 'impair: {endpoint: r1:eth1, delay: 50ms}'".to_string(),
            );
            return None;
        };
        if clear == any {
            self.error(
                v.pos,
                if clear {
                    "'impair' both clears and sets an impairment".to_string()
                } else {
                    "'impair' sets nothing".to_string()
                },
                "give delay, jitter, loss, corrupt, duplicate, reorder or rate; or 'clear: true'"
                    .to_string(),
            );
            return None;
        }
        if clear {
            return Some(StepKind::Impair {
                endpoint: ep,
                impair: None,
            });
        }
        match units::parse_impair(&text) {
            Ok(impair) => Some(StepKind::Impair {
                endpoint: ep,
                impair: Some(impair),
            }),
            Err(err) => {
                self.error(v.pos, err.message, err.hint);
                None
            }
        }
    }

    fn exec_expect(&mut self, e: &Entry<'_>) -> ExecExpect {
        let mut out = ExecExpect::default();
        for f in self.fields(e.value, &e.path, "in 'expect'", EXPECT_KEYS) {
            match f.key.as_str() {
                "status" => {
                    out.status = self
                        .integer(f.value, &f.path, "exit status", (0, 255))
                        .and_then(|n| i32::try_from(n).ok())
                }
                "output" => {
                    if let Some(re) = self.string(f.value, &f.path) {
                        if let Err(err) = regex::Regex::new(&re) {
                            self.error(
                                f.value.pos,
                                "the expected output is not a valid regular expression".to_string(),
                                one_line(&err.to_string()),
                            );
                        }
                        out.output = Some(re);
                    }
                }
                _ => out.json = Some(to_json(f.value)),
            }
        }
        out
    }

    fn wait(&mut self, e: &Entry<'_>) -> Option<Wait> {
        let mut w = Wait {
            timeout_us: 0,
            interval_us: Wait::DEFAULT_INTERVAL_US,
        };
        let in_range = |me: &mut Self, node: &Yaml, path: &str, what: &str| {
            let us = me.unit(node, path, units::parse_duration_us)?;
            if !(1_000..=MAX_WAIT_US).contains(&us) {
                me.error(
                    node.pos,
                    format!("wait {what} is out of range"),
                    "it is from 1ms to 1h".to_string(),
                );
                return None;
            }
            Some(us)
        };
        if e.value.as_map().is_some() {
            let mut timeout = None;
            for f in self.fields(e.value, &e.path, "in 'wait'", WAIT_KEYS) {
                if f.key == "timeout" {
                    timeout = in_range(self, f.value, &f.path, "timeout");
                } else if let Some(us) = in_range(self, f.value, &f.path, "interval") {
                    w.interval_us = us;
                }
            }
            w.timeout_us = timeout?;
        } else {
            w.timeout_us = in_range(self, e.value, &e.path, "timeout")?;
        }
        Some(w)
    }

    /// Reports the nodes, interfaces and services that the steps name and `topo` lacks.
    pub(super) fn check_step_refs(&mut self, topo: &Topology) {
        let refs = std::mem::take(&mut self.step_refs);
        let node_names = || topo.nodes.keys().map(String::as_str);
        for r in refs {
            match r {
                StepRef::Node { name, pos } => {
                    if !topo.nodes.contains_key(&name) {
                        self.unknown_node(&name, pos, node_names());
                    }
                }
                StepRef::Endpoint { ep, pos } => {
                    let Some(node) = topo.nodes.get(&ep.node) else {
                        self.unknown_node(&ep.node, pos, node_names());
                        continue;
                    };
                    let wired = topo
                        .links
                        .iter()
                        .flat_map(|l| l.endpoints.iter())
                        .chain(topo.bridges.values().flat_map(|b| b.members.iter()))
                        .any(|x| *x == ep);
                    if !wired && !node.interfaces.contains_key(&ep.iface) {
                        self.error(
                            pos,
                            format!("node {} has no interface {}", ep.node, ep.iface),
                            "name an interface that a link or bridge wires".to_string(),
                        );
                    }
                }
                StepRef::Service { node, service, pos } => {
                    let Some(n) = topo.nodes.get(&node) else {
                        continue;
                    };
                    if !n.services.contains_key(&service) {
                        let hint = match super::did_you_mean(
                            &service,
                            n.services.keys().map(String::as_str),
                        ) {
                            Some(s) => format!("did you mean '{s}'?"),
                            None if n.services.is_empty() => {
                                format!("node {node} has no services")
                            }
                            None => format!(
                                "its services: {}",
                                n.services.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        };
                        self.error(pos, format!("node {node} has no service {service}"), hint);
                    }
                }
            }
        }
    }

    fn unknown_node<'n>(&mut self, name: &str, pos: Pos, known: impl Iterator<Item = &'n str>) {
        let hint = match super::did_you_mean(name, known) {
            Some(s) => format!("did you mean '{s}'?"),
            None => "name a node of 'nodes'".to_string(),
        };
        self.error(pos, format!("no node named '{name}'"), hint);
    }
}

/// A scalar's text (numbers too: `rate: 1000`).
fn scalar_text(node: &Yaml) -> Option<String> {
    match &node.kind {
        crate::spec::yaml::Kind::Scalar { text, .. } => Some(text.to_string()),
        _ => None,
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A YAML value as JSON: plain scalars typed as YAML reads them (null, booleans, numbers),
/// quoted ones as strings.
fn to_json(node: &Yaml) -> serde_json::Value {
    use serde_json::Value;
    if let Some(items) = node.as_seq() {
        return Value::Array(items.iter().map(to_json).collect());
    }
    if let Some(map) = node.as_map() {
        let mut out = serde_json::Map::new();
        for (k, v) in map {
            let key = scalar_text(k).unwrap_or_default();
            out.insert(key, to_json(v));
        }
        return Value::Object(out);
    }
    if node.is_null() {
        return Value::Null;
    }
    if let crate::spec::yaml::Kind::Scalar { plain: true, .. } = node.kind {
        if let Some(b) = node.as_bool() {
            return Value::Bool(b);
        }
        if let Some(n) = node.as_i64() {
            return Value::from(n);
        }
        if let Some(n) = node.as_f64().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(scalar_text(node).unwrap_or_default())
}

/// A step's name when the file gives none: what it does, in a few words.
fn default_name(kind: &StepKind, nodes: &[String], expect_fail: bool) -> String {
    let on = nodes.join(",");
    let not = if expect_fail { " (must fail)" } else { "" };
    let text = match kind {
        StepKind::Exec { command, .. } => format!("{on}: {command}"),
        StepKind::Ping { targets, .. } => format!("ping {on} -> {}", targets.join(",")),
        StepKind::Route(r) => format!("route {on} {}", r.to),
        StepKind::Ospf { neighbors, .. } => format!("ospf {on} -> {}", neighbors.join(",")),
        StepKind::Bgp { peers, .. } => format!("bgp {on} -> {}", peers.join(",")),
        StepKind::Service { names } => format!("service {on} {}", names.join(",")),
        StepKind::Link { endpoint, up } => {
            format!("link {endpoint} {}", if *up { "up" } else { "down" })
        }
        StepKind::Impair { endpoint, impair } => match impair {
            Some(i) => format!("impair {endpoint} {}", crate::plan::fmt_impair(i)),
            None => format!("impair {endpoint} clear"),
        },
        StepKind::Stop { services } if services.is_empty() => format!("stop {on}"),
        StepKind::Stop { services } => format!("stop {on} {}", services.join(",")),
        StepKind::Start { services } if services.is_empty() => format!("start {on}"),
        StepKind::Start { services } => format!("start {on} {}", services.join(",")),
        StepKind::Up { file } => format!(
            "up {}",
            file.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        StepKind::Sleep { us } => format!("sleep {}", units::format_duration_us(*us)),
    };
    format!("{text}{not}")
}

#[cfg(test)]
mod tests {
    use crate::spec::steps::{Family, OspfVersion, StepKind};
    use std::path::Path;

    const LAB: &str = "name: t\nnodes:\n  r1:\n    interfaces: {eth1: {addresses: [10.0.0.1/24]}}\n    services: {zebra: sleep 9}\n  r2: {}\nlinks:\n  - endpoints: [r1:eth1, r2:eth1]\n";

    fn parse(tests: &str) -> Result<crate::spec::Topology, String> {
        crate::spec::parse_str(&format!("{LAB}tests:\n{tests}"), Path::new("lab.yaml"))
            .map_err(|d| d.to_string())
    }

    #[test]
    fn every_kind_of_step_reads() {
        let t = match parse(concat!(
            "  - {name: zebra up, node: r1, service: zebra}\n",
            "  - {node: r1, ospf: {neighbors: [r2], version: 3}, wait: 30s}\n",
            "  - {nodes: [r1, r2], bgp: r2, wait: {timeout: 60s, interval: 2s}}\n",
            "  - {node: r2, ping: {to: [r1, 10.0.0.9], family: 4, count: 3}, expect: fail}\n",
            "  - {node: r1, route: {to: 10.9.0.0/16, via: 10.0.0.2, protocol: ospf}}\n",
            "  - {node: r1, exec: 'echo {}', expect: {status: 0, output: '^\\{', json: {a: [1, x]}}}\n",
            "  - link: r1:eth1 down\n",
            "  - {impair: {endpoint: r2:eth1, delay: 10ms, loss: 1%}}\n",
            "  - {impair: {endpoint: r2:eth1, clear: true}}\n",
            "  - {node: r1, stop: zebra}\n",
            "  - {node: r2, stop: node}\n",
            "  - {node: r1, start: [zebra]}\n",
            "  - up: other.yaml\n",
            "  - sleep: 2s\n",
        )) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let s = &t.tests;
        assert_eq!(s.len(), 14);
        assert_eq!(s[0].name, "zebra up");
        assert_eq!(s[1].name, "ospf r1 -> r2");
        assert!(
            matches!(&s[1].kind, StepKind::Ospf { version: OspfVersion::V3, state, .. } if state == "full")
        );
        assert_eq!(s[1].wait.map(|w| w.timeout_us), Some(30_000_000));
        assert_eq!(s[2].nodes, ["r1", "r2"]);
        assert_eq!(s[2].wait.map(|w| w.interval_us), Some(2_000_000));
        assert!(s[3].expect_fail);
        assert!(
            matches!(&s[3].kind, StepKind::Ping { family: Some(Family::V4), count: 3, targets } if targets.len() == 2)
        );
        assert!(matches!(&s[5].kind, StepKind::Exec { expect, .. }
            if expect.json == Some(serde_json::json!({"a": [1, "x"]})) && expect.output.as_deref() == Some("^\\{")));
        assert!(
            matches!(&s[6].kind, StepKind::Link { up: false, endpoint } if endpoint.to_string() == "r1:eth1")
        );
        assert_eq!(s[6].name, "link r1:eth1 down");
        assert!(
            matches!(&s[7].kind, StepKind::Impair { impair: Some(i), .. } if i.delay_us == Some(10_000))
        );
        assert!(matches!(&s[8].kind, StepKind::Impair { impair: None, .. }));
        assert!(matches!(&s[10].kind, StepKind::Stop { services } if services.is_empty()));
        assert!(matches!(&s[12].kind, StepKind::Up { file } if file.ends_with("other.yaml")));
        assert!(matches!(s[13].kind, StepKind::Sleep { us: 2_000_000 }));
    }

    #[test]
    fn a_service_cannot_take_the_name_of_the_exec_log() {
        let err = crate::spec::parse_str(
            "name: t\nnodes:\n  a:\n    services: {exec: sleep 9}\n",
            Path::new("lab.yaml"),
        )
        .map_err(|d| d.to_string())
        .unwrap_err();
        assert!(
            err.contains("lab.yaml:4:16: error: a service cannot be named 'exec'"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_are_reported_where_they_are() {
        let err = parse("  - {node: r3, ping: r1}\n").unwrap_err();
        assert!(
            err.contains("lab.yaml:10:12") && err.contains("no node named 'r3'"),
            "{err}"
        );
        let err = parse("  - {node: r1, ping: r2, exec: x}\n").unwrap_err();
        assert!(err.contains("has both 'ping' and 'exec'"), "{err}");
        let err = parse("  - {ping: r2}\n").unwrap_err();
        assert!(err.contains("names no node"), "{err}");
        let err = parse("  - {link: r1:eth1 down, wait: 3s}\n").unwrap_err();
        assert!(err.contains("is an action"), "{err}");
        let err = parse("  - {link: r1:eth9 down}\n").unwrap_err();
        assert!(err.contains("node r1 has no interface eth9"), "{err}");
        let err = parse("  - {node: r1, service: zebar}\n").unwrap_err();
        assert!(
            err.contains("no service zebar") && err.contains("did you mean 'zebra'"),
            "{err}"
        );
        let err = parse("  - {node: r1, exec: x, expect: {output: '('}}\n").unwrap_err();
        assert!(err.contains("not a valid regular expression"), "{err}");
        let err = parse("  - {name: a, sleep: 1s}\n  - {name: a, sleep: 1s}\n").unwrap_err();
        assert!(err.contains("two tests are named 'a'"), "{err}");
        let err = parse("  - {node: r1, route: {to: 10.0.0.0/8, protocol: osfp}}\n").unwrap_err();
        assert!(err.contains("unknown route protocol 'osfp'"), "{err}");
        let err = parse("  - {node: r1, ping: r2, wait: 3601s}\n").unwrap_err();
        assert!(err.contains("wait timeout is out of range"), "{err}");
        let err = parse("  - {node: r1}\n").unwrap_err();
        assert!(err.contains("test 1 does nothing"), "{err}");
    }
}
