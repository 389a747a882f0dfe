//! What `topo status` prints: a table of the lab's nodes (one row each), or one node in full.

use crate::lab::status::{IfaceStatus, NodeStatus};
use crate::lab::{LabError, Status};

/// A text table whose cells may hold several lines. Each column is as wide as its widest
/// line (in characters); columns are two spaces apart; lines carry no trailing spaces.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Vec<String>>>,
}

impl Table {
    pub(crate) fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column, each a list of lines (empty: a blank cell).
    pub(crate) fn row(&mut self, cells: Vec<Vec<String>>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                let w = cell.iter().map(|l| width(l)).max().unwrap_or(0);
                match widths.get_mut(i) {
                    Some(c) => *c = (*c).max(w),
                    None => widths.push(w),
                }
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, cell) in cells.enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(width(cell));
                text.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut self.header.iter().copied());
        for row in &self.rows {
            let height = row.iter().map(Vec::len).max().unwrap_or(0).max(1);
            for k in 0..height {
                line(&mut row.iter().map(|c| c.get(k).map_or("", String::as_str)));
            }
        }
        out
    }
}

/// Which columns the table has.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// Node, state, init PID, interfaces with addresses and peers, services.
    Narrow,
    /// Also each interface's MAC, MTU and impairment, and each node's routes and memory.
    Wide,
}

/// The lab's nodes as a table: one row per node in the order of `status` (as people count,
/// the bridges' namespace last), then the host's ends of `host:` links.
pub(crate) fn table(s: &Status, columns: Columns) -> String {
    let wide = columns == Columns::Wide;
    let mut header = vec!["NODE", "STATE", "INIT", "INTERFACE"];
    if wide {
        header.extend(["MAC", "MTU"]);
    }
    header.extend(["ADDRESS", "PEER"]);
    if wide {
        header.extend(["IMPAIR", "ROUTES", "MEMORY"]);
    }
    header.push("SERVICES");
    let mut t = Table::new(header);
    for n in &s.nodes {
        let (state, init) = match (n.init_pid, n.running) {
            (Some(pid), true) => ("running", pid.to_string()),
            (Some(pid), false) => ("dead", pid.to_string()),
            (None, _) => ("-", "-".to_string()),
        };
        let ifaces = in_order(n.interfaces.iter().filter(|i| shown(i)));
        let mut row = vec![vec![n.name.clone()], vec![state.into()], vec![init]];
        row.extend(iface_cells(&ifaces, wide));
        if wide {
            row.push(vec![n.routes.len().to_string()]);
            row.push(vec![memory(n)]);
        }
        row.push(
            n.services
                .iter()
                .map(|sv| format!("{}:{}", sv.name, sv.state))
                .collect(),
        );
        t.row(row);
    }
    if !s.host_interfaces.is_empty() {
        let ifaces = in_order(s.host_interfaces.iter());
        let mut row = vec![vec!["host".into()], vec!["-".into()], vec!["-".into()]];
        row.extend(iface_cells(&ifaces, wide));
        if wide {
            row.push(vec!["-".into()]);
            row.push(vec!["-".into()]);
        }
        row.push(Vec::new());
        t.row(row);
    }
    t.render()
}

/// Interfaces as people count them (`eth2` before `eth10`), the loopback first.
fn in_order<'a>(ifaces: impl Iterator<Item = &'a IfaceStatus>) -> Vec<&'a IfaceStatus> {
    let mut v: Vec<&IfaceStatus> = ifaces.collect();
    v.sort_by(|a, b| {
        (a.name != "lo")
            .cmp(&(b.name != "lo"))
            .then_with(|| crate::plan::names::natural_cmp(&a.name, &b.name))
    });
    v
}

/// An interface the table lists: all but a loopback without addresses.
fn shown(i: &IfaceStatus) -> bool {
    i.name != "lo" || !i.addresses.is_empty()
}

/// The interface columns of a node's row: a line per address (at least one per interface),
/// the name, MAC, MTU, peer and impairment on its first.
fn iface_cells(ifaces: &[&IfaceStatus], wide: bool) -> Vec<Vec<String>> {
    // Name, MAC, MTU, address, peer, impairment.
    let mut cols: [Vec<String>; 6] = Default::default();
    for i in ifaces {
        let first = [
            iface_name(i),
            i.mac.clone().unwrap_or_else(|| "-".into()),
            i.mtu.to_string(),
            String::new(),
            i.peer
                .as_ref()
                .map(|p| format!("→ {p}"))
                .unwrap_or_default(),
            i.impair
                .as_ref()
                .map(crate::plan::fmt_impair)
                .unwrap_or_default(),
        ];
        for k in 0..i.addresses.len().max(1) {
            for (c, col) in cols.iter_mut().enumerate() {
                col.push(match c {
                    3 => i.addresses.get(k).cloned().unwrap_or_default(),
                    _ if k == 0 => first[c].clone(),
                    _ => String::new(),
                });
            }
        }
    }
    let [name, mac, mtu, addr, peer, impair] = cols;
    if wide {
        vec![name, mac, mtu, addr, peer, impair]
    } else {
        vec![name, addr, peer]
    }
}

/// `eth1`, or `eth1 (down)` for an interface that is down.
fn iface_name(i: &IfaceStatus) -> String {
    if i.up {
        i.name.clone()
    } else {
        format!("{} (down)", i.name)
    }
}

/// `3.1Mi/64Mi`: memory used and its limit; `-` where neither is known.
fn memory(n: &NodeStatus) -> String {
    use crate::spec::format_bytes;
    match (n.usage.memory_bytes, n.limits.memory) {
        (Some(u), Some(m)) => format!("{}/{}", format_bytes(u), format_bytes(m)),
        (Some(u), None) => format_bytes(u),
        (None, Some(m)) => format!("?/{}", format_bytes(m)),
        (None, None) => "-".into(),
    }
}

/// The status of one node only (`topo status NODE`): the others and the host's interfaces
/// that are not linked to it left out. An unknown node is a usage error that names the
/// nearest one.
pub(crate) fn only_node(mut s: Status, node: &str) -> Result<Status, LabError> {
    if let Some(host) = s.elsewhere.get(node) {
        return Err(LabError::Usage(format!(
            "node {node} runs on host {host}: its status is there"
        )));
    }
    if !s.nodes.iter().any(|n| n.name == node) {
        let names = s.nodes.iter().map(|n| n.name.as_str());
        return Err(LabError::Usage(crate::lab::no_such_node(
            &s.lab, node, names,
        )));
    }
    s.nodes.retain(|n| n.name == node);
    s.host_interfaces.retain(|h| {
        matches!(&h.peer, Some(crate::lab::status::Peer::Interface { node: n, .. }) if n == node)
    });
    Ok(s)
}

/// `lab NAME (FILE)`: the first line of either view.
pub(crate) fn heading(s: &Status) -> String {
    let mut out = format!(
        "lab {}{}{}\n",
        s.lab,
        s.host
            .as_ref()
            .map(|h| format!(" on host {h}"))
            .unwrap_or_default(),
        s.file
            .as_ref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default()
    );
    if !s.elsewhere.is_empty() {
        let mut nodes: Vec<(&String, &String)> = s.elsewhere.iter().collect();
        nodes.sort_by(|a, b| crate::plan::names::natural_cmp(a.0, b.0));
        let listed: Vec<String> = nodes.iter().map(|(n, h)| format!("{n} ({h})")).collect();
        out.push_str(&format!("on other hosts: {}\n", listed.join(", ")));
    }
    out
}

/// One node in full: interfaces (state, MTU, MAC, addresses, peer, impairment), routes with
/// their device, limits and use, security profile, services.
pub(crate) fn node_detail(s: &Status, n: &NodeStatus) -> String {
    let mut out = String::new();
    let init = match (n.init_pid, n.running) {
        (Some(pid), true) => format!("init pid {pid}"),
        (Some(pid), false) => format!("init pid {pid} NOT RUNNING"),
        (None, _) => "no init".into(),
    };
    out.push_str(&format!("node {}  netns {}  {init}\n", n.name, n.netns));
    out.push_str("interfaces:\n");
    let mut t = Table::new(vec![
        "  NAME", "STATE", "MTU", "MAC", "ADDRESS", "PEER", "IMPAIR",
    ]);
    let host: Vec<&IfaceStatus> = s.host_interfaces.iter().collect();
    for (i, on_host) in in_order(n.interfaces.iter())
        .into_iter()
        .map(|i| (i, false))
        .chain(host.iter().map(|i| (*i, true)))
    {
        let name = if on_host {
            format!("  host:{}", i.name)
        } else {
            format!("  {}", i.name)
        };
        t.row(vec![
            vec![name],
            vec![if i.up { "up" } else { "DOWN" }.into()],
            vec![i.mtu.to_string()],
            vec![i.mac.clone().unwrap_or_else(|| "-".into())],
            i.addresses.clone(),
            vec![i
                .peer
                .as_ref()
                .map(|p| format!("→ {p}"))
                .unwrap_or_default()],
            vec![i
                .impair
                .as_ref()
                .map(crate::plan::fmt_impair)
                .unwrap_or_default()],
        ]);
    }
    out.push_str(&t.render());
    if n.routes.is_empty() {
        out.push_str("routes: none of topo's\n");
    } else {
        out.push_str("routes:\n");
        for r in &n.routes {
            out.push_str(&format!("  {r}\n"));
        }
    }
    if let Some(line) = limits_line(n) {
        out.push_str(&format!("{line}\n"));
    }
    if let Some(line) = security_line(n) {
        out.push_str(&format!("{line}\n"));
    }
    if !n.services.is_empty() {
        out.push_str("services:\n");
        let mut t = Table::new(vec![
            "  NAME", "TYPE", "STATE", "PID", "READY", "RESTARTS", "COMMAND", "LOG",
        ]);
        for sv in &n.services {
            let state = match sv.state {
                "running" => "running",
                "done" => "done",
                "restarting" => "RESTARTING",
                _ => "NOT RUNNING",
            };
            let ready = match (sv.state, sv.ready_ms) {
                ("running", Some(ms)) => format!("{:.1}s", ms as f64 / 1000.0),
                _ => "-".into(),
            };
            t.row(vec![
                vec![format!("  {}", sv.name)],
                vec![sv.kind.into()],
                vec![state.into()],
                vec![if sv.pid > 0 {
                    sv.pid.to_string()
                } else {
                    "-".into()
                }],
                vec![ready],
                vec![sv.restarts.to_string()],
                vec![sv.command.clone()],
                vec![sv.log.clone()],
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

/// `limits: memory 64Mi (used 3.1Mi), pids 16 (used 2), cpu 0.25`, or what is accounted.
fn limits_line(n: &NodeStatus) -> Option<String> {
    use crate::spec::format_bytes;
    let mut parts = Vec::new();
    let used_mem = n.usage.memory_bytes.map(format_bytes);
    match (n.limits.memory, &used_mem) {
        (Some(m), Some(u)) => parts.push(format!("memory {} (used {u})", format_bytes(m))),
        (Some(m), None) => parts.push(format!("memory {}", format_bytes(m))),
        (None, Some(u)) => parts.push(format!("memory unlimited (used {u})")),
        (None, None) => {}
    }
    match (n.limits.pids, n.usage.pids) {
        (Some(p), Some(u)) => parts.push(format!("pids {p} (used {u})")),
        (Some(p), None) => parts.push(format!("pids {p}")),
        (None, Some(u)) => parts.push(format!("pids unlimited (used {u})")),
        (None, None) => {}
    }
    if let Some(c) = n.limits.cpu {
        parts.push(format!("cpu {c}"));
    }
    (!parts.is_empty()).then(|| format!("limits: {}", parts.join(", ")))
}

/// `security: caps default set, seccomp default, no_new_privs, userns`.
fn security_line(n: &NodeStatus) -> Option<String> {
    let sec = n.security.as_ref()?;
    let seccomp = match &sec.seccomp {
        crate::spec::Seccomp::Default => "default".to_string(),
        crate::spec::Seccomp::Unconfined => "unconfined".to_string(),
        crate::spec::Seccomp::Profile(p) => p.display().to_string(),
    };
    let default_caps = crate::node::security::default_capabilities(n.userns);
    let caps = if sec.capabilities == default_caps {
        "default set".to_string()
    } else {
        sec.capabilities
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut extra = String::new();
    if n.userns {
        extra.push_str(", userns");
    }
    if sec.filesystem.is_some() {
        extra.push_str(", landlock");
    }
    if let Some(a) = &sec.apparmor {
        extra.push_str(&format!(", apparmor {a}"));
    }
    Some(format!(
        "security: caps {caps}, seccomp {seccomp}, no_new_privs{extra}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::status::{Peer, ServiceStatus};

    fn iface(name: &str, addrs: &[&str], peer: Option<Peer>) -> IfaceStatus {
        IfaceStatus {
            name: name.into(),
            index: 2,
            up: true,
            mtu: 1500,
            mac: Some("02:00:00:00:00:01".into()),
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            impair: None,
            peer,
        }
    }

    fn to(node: &str, interface: &str) -> Option<Peer> {
        Some(Peer::Interface {
            node: node.into(),
            interface: interface.into(),
        })
    }

    fn node(name: &str, pid: Option<i32>, interfaces: Vec<IfaceStatus>) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            netns: format!("lab-{name}"),
            init_pid: pid,
            running: pid.is_some(),
            interfaces,
            routes: vec!["10.9.0.0/16 via 10.0.0.2 dev eth1".into()],
            services: Vec::new(),
            limits: Default::default(),
            usage: Default::default(),
            security: None,
            userns: false,
        }
    }

    fn lab() -> Status {
        let mut r2 = node(
            "r2",
            Some(200),
            vec![
                iface("lo", &[], None),
                iface("eth10", &[], None),
                iface("eth1", &["10.0.0.2/30"], to("r10", "eth1")),
                iface(
                    "eth2",
                    &["10.0.1.1/24", "2001:db8::1/64"],
                    Some(Peer::Bridge {
                        bridge: "sw".into(),
                    }),
                ),
            ],
        );
        r2.services.push(ServiceStatus {
            name: "http".into(),
            kind: "simple",
            state: "running",
            pid: 201,
            running: true,
            ready_ms: None,
            restarts: 0,
            command: "exec httpd".into(),
            log: "/run/topo/lab/logs/r2.http.log".into(),
        });
        let mut r10 = node(
            "r10",
            Some(1000),
            vec![
                iface("lo", &["10.255.0.10/32"], None),
                iface("eth1", &["10.0.0.1/30"], to("r2", "eth1")),
            ],
        );
        r10.interfaces[1].up = false;
        // In the order `lab::status` gives them: as people count.
        Status {
            lab: "lab".into(),
            file: Some("/x/lab.yaml".into()),
            host: None,
            elsewhere: Default::default(),
            nodes: vec![
                r2,
                r10,
                node("(bridges)", None, vec![iface("sw", &[], None)]),
            ],
            host_interfaces: vec![iface("vh1", &[], to("r10", "eth9"))],
        }
    }

    #[test]
    fn table_has_a_row_per_node_with_addresses_and_peers() {
        let text = table(&lab(), Columns::Narrow);
        let expected = "\
NODE       STATE    INIT  INTERFACE    ADDRESS         PEER         SERVICES
r2         running  200   eth1         10.0.0.2/30     → r10:eth1   http:running
                          eth2         10.0.1.1/24     → bridge sw
                                       2001:db8::1/64
                          eth10
r10        running  1000  lo           10.255.0.10/32
                          eth1 (down)  10.0.0.1/30     → r2:eth1
(bridges)  -        -     sw
host       -        -     vh1                          → r10:eth9
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn wide_table_adds_mac_mtu_routes_and_memory() {
        let text = table(&lab(), Columns::Wide);
        let header = text.lines().next().unwrap_or_default();
        let cols: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "NODE",
                "STATE",
                "INIT",
                "INTERFACE",
                "MAC",
                "MTU",
                "ADDRESS",
                "PEER",
                "IMPAIR",
                "ROUTES",
                "MEMORY",
                "SERVICES"
            ]
        );
        let r2 = text.lines().nth(1).unwrap_or_default();
        assert!(
            r2.contains("02:00:00:00:00:01  1500  10.0.0.2/30"),
            "{text}"
        );
        assert!(r2.contains("  1       -       http:running"), "{text}");
    }

    #[test]
    fn narrow_table_of_a_triangle_fits_100_columns() {
        let text = table(&lab(), Columns::Narrow);
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(
            text.lines().all(|l| l == l.trim_end()),
            "no trailing spaces"
        );
    }

    #[test]
    fn cells_of_several_lines_and_wide_characters_align() {
        let mut t = Table::new(vec!["A", "B"]);
        t.row(vec![vec!["→ x".into(), "yy".into()], vec!["1".into()]]);
        t.row(vec![vec![], vec!["2".into(), "3".into()]]);
        assert_eq!(t.render(), "A    B\n→ x  1\nyy\n     2\n     3\n");
    }

    #[test]
    fn one_node_unknown_names_the_nearest() {
        let err = only_node(lab(), "r3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("lab lab has no node r3; did you mean r2?"),
            "{err}"
        );
        let s = only_node(lab(), "r10").map_err(|e| e.to_string());
        let s = s.as_ref().map(|s| (s.nodes.len(), s.host_interfaces.len()));
        assert_eq!(s, Ok((1, 1)), "r10 and the host link to it");
        let s = only_node(lab(), "r2").map(|s| s.host_interfaces.len());
        assert_eq!(s.ok(), Some(0));
    }

    #[test]
    fn node_detail_shows_routes_with_their_device_and_peers() {
        let s = lab();
        let text = node_detail(&s, &s.nodes[0]);
        assert!(
            text.starts_with("node r2  netns lab-r2  init pid 200\n"),
            "{text}"
        );
        assert!(
            text.contains("routes:\n  10.9.0.0/16 via 10.0.0.2 dev eth1\n"),
            "{text}"
        );
        assert!(text.contains("→ r10:eth1"), "{text}");
        assert!(text.contains("  http  simple  running  201"), "{text}");
    }
}
