//! containerlab topology files (`*.clab.yml`): `name`, `topology.{defaults, kinds, groups,
//! nodes, links}`. A node's settings come from the node, else its group, else its kind's
//! entry in `kinds`, else `defaults` (maps such as `env` and `sysctls` merge, the node's
//! keys winning). `kind: bridge` nodes become bridges of the lab; every other node a node.

use std::path::Path;

use super::{
    cpu_count, docker_memory, lab_name_from, node_name_from, target_reachable, unreachable_target,
    ImportError, Imported, Lab, LinkOut, NodeOut, Origin,
};
use crate::spec::yaml::{self, Node};

/// Converts the containerlab file `path` holding `src`. `name`: the lab's name, else the
/// file's `name:`. `exists`: whether a path exists on the host (bind targets).
pub fn import(
    src: &str,
    path: &Path,
    name: Option<&str>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Imported, ImportError> {
    let root = match yaml::parse(src) {
        Ok(Some(root)) => root,
        Ok(None) => return Err(ImportError::at(path, None, "the file is empty")),
        Err(e) => {
            return Err(
                ImportError::at(path, Some((e.pos.line, e.pos.column)), e.message).hint(e.hint),
            )
        }
    };
    let Some(top) = root.as_map() else {
        return Err(expected(path, &root, "a mapping for the top level"));
    };
    let mut r = Reader {
        path,
        lab: Lab::default(),
        exists,
    };
    let mut topology = None;
    let mut clab_name = None;
    for (k, v) in top {
        match k.as_str().unwrap_or("") {
            "name" => clab_name = Some(scalar(path, v, "name")?),
            "topology" => topology = Some(v),
            "mgmt" => r.warn(
                k,
                "mgmt",
                "the management network is not converted: topo nodes have none (reach a node \
                 with `topo exec`, or join it to the host with a `host:` link)"
                    .into(),
            ),
            "prefix" => r.warn(
                k,
                "prefix",
                "not converted: topo names every kernel object <lab>-<node>".into(),
            ),
            other => r.warn(k, other, "not converted: topo has no such setting".into()),
        }
    }
    let Some(topology) = topology else {
        return Err(
            ImportError::at(path, Some((1, 1)), "missing key 'topology'")
                .hint("a containerlab file has `topology: {nodes: …, links: …}`"),
        );
    };
    r.lab.name = lab_name(path, name, clab_name.as_deref(), &root)?;
    if let Some((_, renamed)) = clab_name
        .as_deref()
        .filter(|_| name.is_none())
        .map(|n| (n, n != r.lab.name))
    {
        if renamed {
            r.warn(
                &root,
                "name",
                format!(
                    "lab name written as '{}' (1 to 12 characters from a-z, 0-9 and '-'); \
                     `--name` sets another",
                    r.lab.name
                ),
            );
        }
    }
    r.topology(topology)?;
    Ok(r.lab.finish())
}

/// The lab name: `--name` (checked), else the file's, made valid.
fn lab_name(
    path: &Path,
    given: Option<&str>,
    clab: Option<&str>,
    root: &Node,
) -> Result<String, ImportError> {
    if let Some(n) = given {
        return match crate::spec::lab_name_problem(n) {
            None => Ok(n.to_string()),
            Some((message, hint)) => {
                Err(ImportError::at(Path::new("--name"), None, message).hint(hint))
            }
        };
    }
    let raw = clab.unwrap_or("");
    lab_name_from(raw).ok_or_else(|| {
        ImportError::at(
            path,
            Some((root.pos.line, root.pos.column)),
            format!("no lab name can be made of '{raw}'"),
        )
        .hint("pass `--name NAME`")
    })
}

fn expected(path: &Path, node: &Node, what: &str) -> ImportError {
    ImportError::at(
        path,
        Some((node.pos.line, node.pos.column)),
        format!("expected {what}, found {}", node.type_name()),
    )
}

fn scalar(path: &Path, node: &Node, what: &str) -> Result<String, ImportError> {
    node.as_str()
        .map(str::to_string)
        .ok_or_else(|| expected(path, node, &format!("a string for '{what}'")))
}

fn get<'a>(map: &'a [(Node, Node)], key: &str) -> Option<&'a Node> {
    map.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Node keys that are converted.
const CONVERTED: [&str; 9] = [
    "kind", "group", "image", "binds", "env", "exec", "sysctls", "memory", "cpu",
];

struct Reader<'a> {
    path: &'a Path,
    lab: Lab,
    exists: &'a dyn Fn(&Path) -> bool,
}

/// Where a containerlab node's settings come from, most specific first.
struct Layers<'t> {
    /// (field prefix for warnings, mapping).
    maps: Vec<(String, &'t [(Node, Node)])>,
}

impl<'t> Layers<'t> {
    /// The first layer that has `key`: its value and the warning field name.
    fn first(&self, key: &str) -> Option<(&'t Node, String)> {
        self.maps
            .iter()
            .find_map(|(p, m)| get(m, key).map(|v| (v, format!("{p}.{key}"))))
    }
}

/// A link end as containerlab writes it.
enum End {
    Node(String, String),
    Host(String),
    Bridge(String),
}

impl Reader<'_> {
    fn warn(&mut self, at: &Node, field: &str, message: String) {
        let pos = Some((at.pos.line, at.pos.column));
        self.lab.warn(self.path, pos, field, message);
    }

    fn err(&self, at: &Node, message: String) -> ImportError {
        ImportError::at(self.path, Some((at.pos.line, at.pos.column)), message)
    }

    fn map<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [(Node, Node)], ImportError> {
        if node.is_null() {
            return Ok(&[]);
        }
        node.as_map()
            .ok_or_else(|| expected(self.path, node, &format!("a mapping for '{what}'")))
    }

    fn topology(&mut self, topology: &Node) -> Result<(), ImportError> {
        let t = self.map(topology, "topology")?;
        let defaults = get(t, "defaults")
            .map(|d| self.map(d, "topology.defaults"))
            .transpose()?
            .unwrap_or(&[]);
        let kinds = get(t, "kinds")
            .map(|d| self.map(d, "topology.kinds"))
            .transpose()?
            .unwrap_or(&[]);
        let groups = get(t, "groups")
            .map(|d| self.map(d, "topology.groups"))
            .transpose()?
            .unwrap_or(&[]);
        let nodes = get(t, "nodes")
            .map(|d| self.map(d, "topology.nodes"))
            .transpose()?
            .unwrap_or(&[]);
        for (k, _) in t {
            let key = k.as_str().unwrap_or("");
            if !matches!(key, "defaults" | "kinds" | "groups" | "nodes" | "links") {
                self.warn(
                    k,
                    &format!("topology.{key}"),
                    "not converted: topo has no such setting".into(),
                );
            }
        }
        // Source node name → converted name; bridges by their own name.
        let mut names: Vec<(String, String)> = Vec::new();
        let mut bridges: Vec<String> = Vec::new();
        for (k, v) in nodes {
            let raw = scalar(self.path, k, "node name")?;
            let own = self.map(v, &format!("nodes.{raw}"))?;
            let mut layers = vec![(format!("topology.nodes.{raw}"), own)];
            let group = get(own, "group").and_then(Node::as_str);
            if let Some(g) = group {
                match get(groups, g) {
                    Some(gm) => {
                        layers.push((format!("topology.groups.{g}"), self.map(gm, "group")?))
                    }
                    None => {
                        return Err(self.err(k, format!("node {raw} names unknown group '{g}'")))
                    }
                }
            }
            let partial = Layers {
                maps: layers.clone(),
            };
            let kind = partial
                .first("kind")
                .and_then(|(v, _)| v.as_str().map(str::to_string))
                .or_else(|| {
                    get(defaults, "kind")
                        .and_then(Node::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "linux".to_string());
            if let Some(km) = get(kinds, &kind) {
                layers.push((format!("topology.kinds.{kind}"), self.map(km, "kind")?));
            }
            layers.push(("topology.defaults".to_string(), defaults));
            let layers = Layers { maps: layers };
            if kind == "bridge" || kind == "ovs-bridge" {
                if kind == "ovs-bridge" {
                    self.warn(
                        k,
                        &format!("topology.nodes.{raw}.kind"),
                        "ovs-bridge converted to a Linux bridge of the lab".into(),
                    );
                }
                if let Some((message, _)) = crate::spec::ifname_problem("bridge", &raw) {
                    return Err(self.err(k, message));
                }
                bridges.push(raw.clone());
                self.lab.bridges.push((raw.clone(), Vec::new()));
                continue;
            }
            let name = node_name_from(&raw);
            if names.iter().any(|(_, n)| *n == name) {
                return Err(self.err(
                    k,
                    format!("node {raw} and another node both become '{name}' in topo"),
                ));
            }
            if name != raw {
                self.warn(
                    k,
                    &format!("topology.nodes.{raw}"),
                    format!(
                        "node renamed '{name}' (topo node names are a-z, 0-9 and '-', at most \
                         32 characters)"
                    ),
                );
            }
            names.push((raw.clone(), name.clone()));
            if kind != "linux" {
                let (at, field) = layers
                    .first("kind")
                    .unwrap_or((k, format!("topology.nodes.{raw}.kind")));
                self.warn(
                    at,
                    &field,
                    format!(
                        "kind '{kind}' converted as a plain node: topo knows no kinds, and \
                         does not start what the kind's image would (add `services:`)"
                    ),
                );
            }
            let node = self.node(&name, &layers)?;
            self.lab.nodes.push(node);
        }
        if let Some(links) = get(t, "links") {
            if !links.is_null() {
                let list = links
                    .as_seq()
                    .ok_or_else(|| expected(self.path, links, "a list for 'topology.links'"))?;
                for (i, l) in list.iter().enumerate() {
                    self.link(i + 1, l, &names, &bridges)?;
                }
            }
        }
        Ok(())
    }

    fn node(&mut self, name: &str, layers: &Layers) -> Result<NodeOut, ImportError> {
        let mut out = NodeOut::new(name);
        // Keys that are not converted: one warning for each place they are written.
        for (prefix, map) in &layers.maps {
            for (k, v) in map.iter() {
                let key = k.as_str().unwrap_or("");
                if CONVERTED.contains(&key) {
                    continue;
                }
                let why = unconverted(key, v);
                self.warn(k, &format!("{prefix}.{key}"), why);
            }
        }
        if let Some((image, field)) = layers.first("image") {
            let text = image.as_str().unwrap_or("");
            self.warn(
                image,
                &field,
                format!(
                    "image '{text}' not converted: a topo node runs the host's programs \
                     (give it a `rootfs` directory with the image's files to run those)"
                ),
            );
        }
        // Maps merge, the most specific layer winning: apply the least specific first.
        for (prefix, map) in layers.maps.iter().rev() {
            if let Some(env) = get(map, "env") {
                for (k, v) in self.map(env, &format!("{prefix}.env"))? {
                    let key = scalar(self.path, k, "env")?;
                    let value = v.as_str().unwrap_or("").to_string();
                    out.set_env(&key, &value);
                }
            }
            if let Some(sysctls) = get(map, "sysctls") {
                for (k, v) in self.map(sysctls, &format!("{prefix}.sysctls"))? {
                    let key = scalar(self.path, k, "sysctls")?;
                    if !key.starts_with("net.") {
                        self.warn(
                            k,
                            &format!("{prefix}.sysctls.{key}"),
                            "not converted: topo sets only per-namespace `net.*` sysctls".into(),
                        );
                        continue;
                    }
                    let value = v.as_str().unwrap_or("").to_string();
                    out.set_sysctl(&key, &value);
                }
            }
        }
        // Binds: every layer's, a node path bound once (the most specific layer wins).
        let mut targets: Vec<String> = Vec::new();
        for (prefix, map) in &layers.maps {
            let Some(binds) = get(map, "binds") else {
                continue;
            };
            let Some(list) = binds.as_seq() else {
                if binds.is_null() {
                    continue;
                }
                return Err(expected(self.path, binds, "a list for 'binds'"));
            };
            for b in list {
                let text = scalar(self.path, b, "binds")?;
                let field = format!("{prefix}.binds");
                if let Some((bind, target)) = self.bind(b, &field, &text) {
                    if !targets.contains(&target) {
                        targets.push(target);
                        out.binds.push(bind);
                    }
                }
            }
        }
        if let Some((exec, field)) = layers.first("exec") {
            if let Some(list) = exec.as_seq() {
                for line in list {
                    let text = scalar(self.path, line, "exec")?;
                    let origin = Origin {
                        file: self.path.to_path_buf(),
                        pos: Some((line.pos.line, line.pos.column)),
                        field: field.clone(),
                    };
                    out.commands.push((text, origin));
                }
            } else if !exec.is_null() {
                return Err(expected(self.path, exec, "a list for 'exec'"));
            }
        }
        if let Some((mem, field)) = layers.first("memory") {
            let text = mem.as_str().unwrap_or("");
            match docker_memory(text) {
                Some(m) => out.memory = Some(m),
                None => self.warn(
                    mem,
                    &field,
                    format!("'{text}' not converted: not a size (write e.g. 512MB or 1GB)"),
                ),
            }
        }
        if let Some((cpu, field)) = layers.first("cpu") {
            let text = cpu.as_str().unwrap_or("");
            match cpu_count(text) {
                Some(c) => out.cpu = Some(c),
                None => self.warn(
                    cpu,
                    &field,
                    format!("'{text}' not converted: not a positive number of CPUs"),
                ),
            }
        }
        Ok(out)
    }

    /// A containerlab bind as `topo`'s, and its node path; `None` (with a warning) when it
    /// cannot be one.
    fn bind(&mut self, at: &Node, field: &str, text: &str) -> Option<(String, String)> {
        let parts: Vec<&str> = text.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => {
                self.warn(
                    at,
                    field,
                    format!("'{text}' not converted: not host-path:node-path[:options]"),
                );
                return None;
            }
        };
        if src.starts_with('~') || !dst.starts_with('/') {
            self.warn(
                at,
                field,
                format!(
                    "'{text}' not converted: topo needs a host path relative to the file or \
                     absolute, and an absolute node path"
                ),
            );
            return None;
        }
        if !target_reachable(dst, self.exists) {
            self.warn(
                at,
                field,
                format!("'{text}' not converted: {}", unreachable_target(dst)),
            );
            return None;
        }
        let mut mode = "";
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => mode = ":ro",
                "rw" => mode = "",
                other => self.warn(
                    at,
                    field,
                    format!("option '{other}' of '{text}' dropped: topo binds take ro or rw"),
                ),
            }
        }
        let src = if src.starts_with('/') || src.starts_with("./") || src.starts_with("../") {
            src.to_string()
        } else {
            format!("./{src}")
        };
        Some((format!("{src}:{dst}{mode}"), dst.to_string()))
    }

    fn end(
        &mut self,
        at: &Node,
        node: &str,
        iface: &str,
        names: &[(String, String)],
        bridges: &[String],
    ) -> Result<Option<End>, ImportError> {
        if let Some((message, _)) = crate::spec::ifname_problem("interface", iface) {
            self.warn(
                at,
                "topology.links",
                format!("link not converted: {message}"),
            );
            return Ok(None);
        }
        if node == "host" {
            return Ok(Some(End::Host(iface.to_string())));
        }
        if matches!(node, "mgmt-net" | "macvlan") {
            self.warn(
                at,
                "topology.links",
                format!("link to {node}:{iface} not converted: topo has no {node} ends"),
            );
            return Ok(None);
        }
        if bridges.iter().any(|b| b == node) {
            return Ok(Some(End::Bridge(node.to_string())));
        }
        match names.iter().find(|(raw, _)| raw == node) {
            Some((_, name)) => Ok(Some(End::Node(name.clone(), iface.to_string()))),
            None => Err(self.err(
                at,
                format!("link end {node}:{iface} names unknown node '{node}'"),
            )),
        }
    }

    fn link(
        &mut self,
        index: usize,
        l: &Node,
        names: &[(String, String)],
        bridges: &[String],
    ) -> Result<(), ImportError> {
        let map = self.map(l, "link")?;
        let field = format!("topology.links[{index}]");
        let kind = get(map, "type").and_then(Node::as_str).unwrap_or("veth");
        let mut ends = Vec::new();
        match kind {
            "veth" => {
                let Some(eps) = get(map, "endpoints").and_then(Node::as_seq) else {
                    return Err(self.err(l, format!("link {index} has no list 'endpoints'")));
                };
                if eps.len() != 2 {
                    return Err(self.err(
                        l,
                        format!("link {index} has {} endpoints, a link has 2", eps.len()),
                    ));
                }
                for ep in eps {
                    let (node, iface) = if let Some(m) = ep.as_map() {
                        if let Some(mac) = get(m, "mac") {
                            self.warn(
                                mac,
                                &format!("{field}.mac"),
                                "not converted: topo derives MAC addresses from the names".into(),
                            );
                        }
                        (
                            get(m, "node").and_then(Node::as_str).unwrap_or(""),
                            get(m, "interface").and_then(Node::as_str).unwrap_or(""),
                        )
                    } else {
                        let text = ep.as_str().unwrap_or("");
                        match text.split_once(':') {
                            Some(pair) => pair,
                            None => {
                                return Err(self
                                    .err(ep, format!("endpoint '{text}' is not node:interface")))
                            }
                        }
                    };
                    match self.end(ep, node, iface, names, bridges)? {
                        Some(e) => ends.push(e),
                        None => return Ok(()),
                    }
                }
            }
            "host" => {
                let ep = get(map, "endpoint").and_then(Node::as_map).unwrap_or(&[]);
                let node = get(ep, "node").and_then(Node::as_str).unwrap_or("");
                let iface = get(ep, "interface").and_then(Node::as_str).unwrap_or("");
                let host = get(map, "host-interface")
                    .and_then(Node::as_str)
                    .unwrap_or("");
                match self.end(l, node, iface, names, bridges)? {
                    Some(e) => ends.push(e),
                    None => return Ok(()),
                }
                match self.end(l, "host", host, names, bridges)? {
                    Some(e) => ends.push(e),
                    None => return Ok(()),
                }
            }
            other => {
                self.warn(
                    l,
                    &field,
                    format!("link of type '{other}' not converted: topo links are veth pairs"),
                );
                return Ok(());
            }
        }
        for (k, v) in map {
            let key = k.as_str().unwrap_or("");
            if !matches!(
                key,
                "endpoints" | "endpoint" | "type" | "mtu" | "host-interface"
            ) {
                let why = unconverted(key, v);
                self.warn(k, &format!("{field}.{key}"), why);
            }
        }
        let mtu = get(map, "mtu").and_then(Node::as_i64);
        match (&ends[0], &ends[1]) {
            (End::Node(a, ai), End::Node(b, bi)) => self.lab.links.push(LinkOut {
                a: format!("{a}:{ai}"),
                b: format!("{b}:{bi}"),
                mtu,
            }),
            (End::Node(a, ai), End::Host(h)) | (End::Host(h), End::Node(a, ai)) => {
                self.lab.links.push(LinkOut {
                    a: format!("{a}:{ai}"),
                    b: format!("host:{h}"),
                    mtu,
                })
            }
            (End::Node(a, ai), End::Bridge(br)) | (End::Bridge(br), End::Node(a, ai)) => {
                if let Some((_, members)) = self.lab.bridges.iter_mut().find(|(n, _)| n == br) {
                    members.push(format!("{a}:{ai}"));
                }
                if mtu.is_some() {
                    self.warn(
                        l,
                        &format!("{field}.mtu"),
                        "not converted: a bridge member takes the bridge's mtu".into(),
                    );
                }
            }
            _ => self.warn(
                l,
                &field,
                "link not converted: topo joins a bridge or the host only to a node".into(),
            ),
        }
        Ok(())
    }
}

/// Why a containerlab node or link key is not converted.
fn unconverted(key: &str, value: &Node) -> String {
    let text = value
        .as_str()
        .map(|t| format!(" '{t}'"))
        .unwrap_or_default();
    match key {
        "mgmt-ipv4" | "mgmt-ipv6" | "mgmt_ipv4" | "mgmt_ipv6" => format!(
            "{key}{text} not converted: topo nodes have no management network (reach them with \
             `topo exec`)"
        ),
        "startup-config" => format!(
            "startup-config{text} not converted: topo loads no kind configuration; bind the file \
             where the node's daemon reads it and start the daemon in `services:`"
        ),
        "cmd" | "entrypoint" => format!(
            "{key}{text} not converted: a topo node has no image command; run it from \
             `services:`"
        ),
        "ports" | "publish" => {
            format!("{key} not converted: topo does not forward host ports (use a `host:` link)")
        }
        "network-mode" => format!(
            "network-mode{text} not converted: every topo node has its own network namespace"
        ),
        "cpu-set" => "not converted: topo limits CPU time (`limits.cpu`), not CPU sets".into(),
        "env-files" => "not converted: write the variables in `env`".into(),
        "labels" => "not converted: topo has no labels".into(),
        "extras" => "not converted: kind-specific settings have no topo equivalent".into(),
        _ => format!("{key} not converted: topo has no such setting"),
    }
}
