//! `import`: a containerlab topology or a Kathará lab, converted into a `topo` topology file.
//!
//! Each reader ([`containerlab`], [`kathara`]) fills a [`Lab`]: nodes with their interfaces,
//! routes, sysctls, binds, environment, commands and limits, links and bridges. What has no
//! equivalent in `topo` becomes a [`Warning`] that names the field and why. The commands
//! of a node (containerlab `exec`, Kathará `.startup` files) are read by [`commands`]: the
//! simple `ip addr add`, `ip route add`, `ip link set … up` and `ifconfig` forms become the
//! node's addresses and routes, the rest stays as `exec:` lines. [`Lab::render`] prints the
//! file.

mod commands;
pub mod containerlab;
pub mod kathara;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

/// Something of the source that the converted file leaves out or changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub pos: Option<(usize, usize)>,
    /// The field, as the source names it (`nodes.router1.image`, `pc1[bridged]`).
    pub field: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.pos {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": warning: {}: {}", self.field, self.message)
    }
}

/// Input that cannot be converted: unreadable, not of the format, or naming what is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub file: PathBuf,
    pub pos: Option<(usize, usize)>,
    pub message: String,
    pub hint: Option<String>,
}

impl ImportError {
    pub(crate) fn at(file: &Path, pos: Option<(usize, usize)>, message: impl Into<String>) -> Self {
        ImportError {
            file: file.to_path_buf(),
            pos,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.pos {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportError {}

/// The converted lab: the text of a topology file and what was left out.
#[derive(Debug, Clone)]
pub struct Imported {
    pub yaml: String,
    pub warnings: Vec<Warning>,
}

/// Where a command of a node comes from, for warnings.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub file: PathBuf,
    pub pos: Option<(usize, usize)>,
    pub field: String,
}

/// A node of the converted lab.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeOut {
    pub name: String,
    /// Interface name → addresses, in the order first seen.
    pub interfaces: Vec<(String, Vec<String>)>,
    pub routes: Vec<RouteOut>,
    pub sysctls: Vec<(String, String)>,
    pub binds: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Commands as the source has them; [`commands::convert`] makes addresses, routes and
    /// `exec` lines of them.
    pub commands: Vec<(String, Origin)>,
    pub exec: Vec<String>,
    pub memory: Option<String>,
    pub cpu: Option<String>,
}

impl NodeOut {
    pub fn new(name: &str) -> NodeOut {
        NodeOut {
            name: name.to_string(),
            ..NodeOut::default()
        }
    }

    fn addresses_mut(&mut self, iface: &str) -> &mut Vec<String> {
        let at = match self.interfaces.iter().position(|(n, _)| n == iface) {
            Some(at) => at,
            None => {
                self.interfaces.push((iface.to_string(), Vec::new()));
                self.interfaces.len() - 1
            }
        };
        &mut self.interfaces[at].1
    }

    /// Sets a sysctl, replacing an earlier value of the same key.
    pub fn set_sysctl(&mut self, key: &str, value: &str) {
        self.sysctls.retain(|(k, _)| k != key);
        self.sysctls.push((key.to_string(), value.to_string()));
    }

    /// Sets an environment variable, replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteOut {
    pub to: String,
    pub via: Option<String>,
    pub dev: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct LinkOut {
    /// `node:iface` or `host:iface`.
    pub a: String,
    pub b: String,
    pub mtu: Option<i64>,
}

/// The converted lab, before rendering.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lab {
    pub name: String,
    pub nodes: Vec<NodeOut>,
    pub links: Vec<LinkOut>,
    /// Bridge name → members (`node:iface`).
    pub bridges: Vec<(String, Vec<String>)>,
    pub warnings: Vec<Warning>,
}

impl Lab {
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeOut> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    pub fn warn(&mut self, file: &Path, pos: Option<(usize, usize)>, field: &str, message: String) {
        let w = Warning {
            file: file.to_path_buf(),
            pos,
            field: field.to_string(),
            message,
        };
        // A field shared by several nodes (a containerlab group's `image`) is one warning.
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// The interfaces of `node` that a link or a bridge wires.
    fn wired(&self, node: &str) -> Vec<String> {
        let mut out = Vec::new();
        let ends = self
            .links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .chain(self.bridges.iter().flat_map(|(_, m)| m.iter()));
        for end in ends {
            if let Some((n, i)) = end.split_once(':') {
                if n == node {
                    out.push(i.to_string());
                }
            }
        }
        out
    }

    /// Turns every node's commands into addresses, routes and `exec` lines; then the text.
    pub fn finish(mut self) -> Imported {
        let mut warnings = Vec::new();
        for at in 0..self.nodes.len() {
            let wired = self.wired(&self.nodes[at].name);
            let node = &mut self.nodes[at];
            commands::convert(node, &wired, &mut warnings);
        }
        for w in warnings {
            self.warn(&w.file.clone(), w.pos, &w.field.clone(), w.message.clone());
        }
        Imported {
            yaml: self.render(),
            warnings: self.warnings,
        }
    }

    /// The topology file, in `topo`'s format.
    pub fn render(&self) -> String {
        let mut top = Hash::new();
        top.insert(s("name"), s(&self.name));
        let mut nodes = Hash::new();
        for n in &self.nodes {
            nodes.insert(s(&n.name), Yaml::Hash(render_node(n)));
        }
        top.insert(s("nodes"), Yaml::Hash(nodes));
        if !self.links.is_empty() {
            let links = self
                .links
                .iter()
                .map(|l| {
                    let mut h = Hash::new();
                    h.insert(s("endpoints"), Yaml::Array(vec![s(&l.a), s(&l.b)]));
                    if let Some(mtu) = l.mtu {
                        h.insert(s("mtu"), Yaml::Integer(mtu));
                    }
                    Yaml::Hash(h)
                })
                .collect();
            top.insert(s("links"), Yaml::Array(links));
        }
        if !self.bridges.is_empty() {
            let mut bridges = Hash::new();
            for (name, members) in &self.bridges {
                let mut h = Hash::new();
                h.insert(
                    s("members"),
                    Yaml::Array(members.iter().map(|m| s(m)).collect()),
                );
                bridges.insert(s(name), Yaml::Hash(h));
            }
            top.insert(s("bridges"), Yaml::Hash(bridges));
        }
        let mut text = String::new();
        let mut emitter = YamlEmitter::new(&mut text);
        // Writing into a String cannot fail; an error would only leave the text short.
        let _ = emitter.dump(&Yaml::Hash(top));
        let body = text.strip_prefix("---\n").unwrap_or(&text);
        format!("{body}\n")
    }
}

fn s(text: &str) -> Yaml {
    Yaml::String(text.to_string())
}

fn render_node(n: &NodeOut) -> Hash {
    let mut h = Hash::new();
    let interfaces: Vec<_> = n.interfaces.iter().filter(|(_, a)| !a.is_empty()).collect();
    if !interfaces.is_empty() {
        let mut ifs = Hash::new();
        for (name, addresses) in interfaces {
            let mut i = Hash::new();
            i.insert(
                s("addresses"),
                Yaml::Array(addresses.iter().map(|a| s(a)).collect()),
            );
            ifs.insert(s(name), Yaml::Hash(i));
        }
        h.insert(s("interfaces"), Yaml::Hash(ifs));
    }
    if !n.routes.is_empty() {
        let routes = n
            .routes
            .iter()
            .map(|r| {
                let mut m = Hash::new();
                m.insert(s("to"), s(&r.to));
                if let Some(via) = &r.via {
                    m.insert(s("via"), s(via));
                }
                if let Some(dev) = &r.dev {
                    m.insert(s("dev"), s(dev));
                }
                Yaml::Hash(m)
            })
            .collect();
        h.insert(s("routes"), Yaml::Array(routes));
    }
    if !n.sysctls.is_empty() {
        let mut m = Hash::new();
        for (k, v) in &n.sysctls {
            let value = match v.parse::<i64>() {
                Ok(i) => Yaml::Integer(i),
                Err(_) => s(v),
            };
            m.insert(s(k), value);
        }
        h.insert(s("sysctls"), Yaml::Hash(m));
    }
    if !n.binds.is_empty() {
        h.insert(
            s("binds"),
            Yaml::Array(n.binds.iter().map(|b| s(b)).collect()),
        );
    }
    if !n.env.is_empty() {
        let mut m = Hash::new();
        for (k, v) in &n.env {
            m.insert(s(k), s(v));
        }
        h.insert(s("env"), Yaml::Hash(m));
    }
    if !n.exec.is_empty() {
        h.insert(
            s("exec"),
            Yaml::Array(n.exec.iter().map(|e| s(e)).collect()),
        );
    }
    if n.memory.is_some() || n.cpu.is_some() {
        let mut m = Hash::new();
        if let Some(mem) = &n.memory {
            m.insert(s("memory"), s(mem));
        }
        if let Some(cpu) = &n.cpu {
            m.insert(s("cpu"), Yaml::Real(cpu.clone()));
        }
        h.insert(s("limits"), Yaml::Hash(m));
    }
    h
}

/// A lab name `topo` accepts, made of `raw` (a containerlab `name:`, a Kathará directory):
/// lower case, other characters as `-`, at most 12 characters. `None` when nothing is left.
pub(crate) fn lab_name_from(raw: &str) -> Option<String> {
    let name = sanitize(raw, 12);
    (!name.is_empty()).then_some(name)
}

/// A node name `topo` accepts, made of `raw`: lower case, other characters as `-`, at most
/// 32 characters, not starting with `-`.
pub(crate) fn node_name_from(raw: &str) -> String {
    let name = sanitize(raw, 32);
    if name.is_empty() || name == crate::spec::HOST {
        format!("n-{name}")
    } else {
        name
    }
}

fn sanitize(raw: &str, max: usize) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches('-');
    let cut: String = trimmed.chars().take(max).collect();
    cut.trim_end_matches('-').to_string()
}

/// A memory size as containerlab and Kathará (Docker) write it (`512m`, `1Gb`, `2GB`, `1024`)
/// in `topo`'s units (`512Mi`, `1Gi`). Docker's `k`, `m`, `g` are powers of 1024.
pub(crate) fn docker_memory(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    let bytes = (value * mult).round();
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return None;
    }
    // A whole number of bytes below 2^64, checked above.
    let bytes = bytes as u64;
    let text = crate::spec::format_bytes(bytes);
    crate::spec::parse_size(&text).ok().map(|_| text)
}

/// A CPU count (`1.5`, `2`) as `topo`'s `limits.cpu`; `None` unless a positive number.
pub(crate) fn cpu_count(text: &str) -> Option<String> {
    let v: f64 = text.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| {
        let t = text.trim().to_string();
        if t.contains('.') {
            t
        } else {
            format!("{t}.0")
        }
    })
}

/// Whether a bind target is one a node can bind over: `topo` nodes see the host's tree and
/// create missing targets only under their own /tmp and /run. `reachable` says whether a
/// path of the host exists and a node's root can reach it.
pub(crate) fn target_reachable(target: &str, reachable: &dyn Fn(&Path) -> bool) -> bool {
    target.starts_with("/tmp/") || target.starts_with("/run/") || reachable(Path::new(target))
}

/// Why a bind target is not converted.
pub(crate) fn unreachable_target(target: &str) -> String {
    format!(
        "{target} does not exist on this host or is below a directory that a node's root \
         (an unprivileged uid) cannot enter; topo nodes see the host's tree and bind only over \
         what they reach, or under /tmp and /run (bind a whole directory instead)"
    )
}
