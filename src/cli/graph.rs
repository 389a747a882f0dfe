//! `topo graph`: the topology as an undirected Graphviz DOT graph or a Mermaid flowchart.
//!
//! Every node, bridge and the host get a generated id (`n0`, `b0`, `h0`) and carry their name
//! as a quoted label, so no name can collide with a keyword of either language (a node named
//! `end` or `graph`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::plan::names::natural_cmp;
use crate::spec::{Endpoint, LinkState, Topology};

/// What the graph shows besides nodes and links.
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// Each end's addresses with its interface name.
    pub addresses: bool,
}

/// Generated ids: nodes `n0…` in natural order, bridges `b0…`, the host `h0`.
struct Ids {
    nodes: BTreeMap<String, String>,
    bridges: BTreeMap<String, String>,
}

const HOST_ID: &str = "h0";

impl Ids {
    fn new(t: &Topology) -> Ids {
        let mut names: Vec<&String> = t.nodes.keys().collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        let nodes = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), format!("n{i}")))
            .collect();
        let bridges = t
            .bridges
            .keys()
            .enumerate()
            .map(|(i, b)| (b.clone(), format!("b{i}")))
            .collect();
        Ids { nodes, bridges }
    }

    fn of(&self, ep: &Endpoint) -> &str {
        if ep.is_host() {
            return HOST_ID;
        }
        self.nodes.get(&ep.node).map_or(HOST_ID, String::as_str)
    }

    /// Nodes in natural order: (id, name).
    fn nodes(&self) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = self
            .nodes
            .iter()
            .map(|(n, id)| (id.as_str(), n.as_str()))
            .collect();
        v.sort_by(|a, b| natural_cmp(a.1, b.1));
        v
    }
}

/// Whether any link ends in the host.
fn has_host(t: &Topology) -> bool {
    t.links
        .iter()
        .any(|l| l.endpoints.iter().any(Endpoint::is_host))
}

/// An endpoint's addresses as the file declares them.
fn addresses(t: &Topology, ep: &Endpoint) -> Vec<String> {
    t.nodes
        .get(&ep.node)
        .and_then(|n| n.interfaces.get(&ep.iface))
        .map(|i| i.addresses.iter().map(|a| a.to_string()).collect())
        .unwrap_or_default()
}

/// A DOT double-quoted string's content: `"` and `\` escaped, so that no name ends the string
/// or starts an escape sequence.
pub(crate) fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// A Mermaid quoted label's content: `"` and `#` as Mermaid's entity codes, `<` and `>` too
/// (labels may be read as HTML).
pub(crate) fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The label of one end in DOT: its interface name, and with `addresses` a line per address.
fn dot_end(t: &Topology, ep: &Endpoint, o: Options) -> String {
    let mut label = dot_escape(&ep.iface);
    if o.addresses {
        for a in addresses(t, ep) {
            label.push_str("\\n");
            label.push_str(&dot_escape(&a));
        }
    }
    label
}

/// An undirected graph laid out by `neato` (whichever Graphviz program reads it, unless
/// `-Glayout=` says otherwise): nodes as boxes, bridges as filled ellipses, the host as a house;
/// each link's interface names (and addresses) at its two ends; links that are down dashed.
pub fn dot(t: &Topology, o: Options) -> String {
    let ids = Ids::new(t);
    let mut s = format!("graph \"{}\" {{\n", dot_escape(&t.name));
    // `scalexy` spreads nodes apart only where they would overlap; it never shrinks the
    // layout below the edge lengths (which `overlap=false` does).
    s.push_str("  layout=neato;\n  overlap=scalexy;\n  splines=true;\n  sep=\"+16\";\n");
    s.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    // Longer edges and labels further from the nodes when the ends carry addresses.
    let (len, distance) = if o.addresses { (3.5, 3.0) } else { (2.0, 2.0) };
    let _ = writeln!(
        s,
        "  edge [len={len}, fontname=\"Helvetica\", labelfontsize=9, labeldistance={distance}, labelangle=25];"
    );
    for (id, name) in ids.nodes() {
        let _ = writeln!(s, "  {id} [label=\"{}\"];", dot_escape(name));
    }
    for (name, id) in &ids.bridges {
        let _ = writeln!(
            s,
            "  {id} [label=\"{}\", shape=ellipse, style=filled, fillcolor=\"#e8e8e8\"];",
            dot_escape(name)
        );
    }
    if has_host(t) {
        let _ = writeln!(s, "  {HOST_ID} [label=\"host\", shape=house];");
    }
    for l in &t.links {
        let [a, b] = &l.endpoints;
        let style = if l.state == LinkState::Down {
            ", style=dashed"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {} -- {} [taillabel=\"{}\", headlabel=\"{}\"{style}];",
            ids.of(a),
            ids.of(b),
            dot_end(t, a, o),
            dot_end(t, b, o)
        );
    }
    for (br, b) in &t.bridges {
        let bid = &ids.bridges[br];
        for m in &b.members {
            let _ = writeln!(
                s,
                "  {} -- {bid} [taillabel=\"{}\"];",
                ids.of(m),
                dot_end(t, m, o)
            );
        }
    }
    s.push_str("}\n");
    s
}

/// The label of one end in Mermaid: its interface name, with `addresses` followed by them.
fn mermaid_end(t: &Topology, ep: &Endpoint, o: Options) -> String {
    let mut label = ep.iface.clone();
    if o.addresses {
        let a = addresses(t, ep);
        if !a.is_empty() {
            label = format!("{label} {}", a.join(" "));
        }
    }
    label
}

/// A Mermaid flowchart: nodes as boxes, bridges as circles, the host as a hexagon; each
/// link labelled `eth1 — eth1` (its two interfaces in the order of its endpoints); links
/// that are down dotted.
pub fn mermaid(t: &Topology, o: Options) -> String {
    let ids = Ids::new(t);
    let mut s = String::from("flowchart LR\n");
    for (id, name) in ids.nodes() {
        let _ = writeln!(s, "  {id}[\"{}\"]", mermaid_escape(name));
    }
    for (name, id) in &ids.bridges {
        let _ = writeln!(s, "  {id}((\"{}\"))", mermaid_escape(name));
    }
    if has_host(t) {
        let _ = writeln!(s, "  {HOST_ID}{{{{\"host\"}}}}");
    }
    for l in &t.links {
        let [a, b] = &l.endpoints;
        let arrow = if l.state == LinkState::Down {
            "-.-"
        } else {
            "---"
        };
        let label = format!("{} — {}", mermaid_end(t, a, o), mermaid_end(t, b, o));
        let _ = writeln!(
            s,
            "  {} {arrow}|\"{}\"| {}",
            ids.of(a),
            mermaid_escape(&label),
            ids.of(b)
        );
    }
    for (br, b) in &t.bridges {
        let bid = &ids.bridges[br];
        for m in &b.members {
            let _ = writeln!(
                s,
                "  {} ---|\"{}\"| {bid}",
                ids.of(m),
                mermaid_escape(&mermaid_end(t, m, o))
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(yaml: &str) -> Topology {
        crate::spec::parse_str(yaml, std::path::Path::new("t.yaml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const ODD: &str = "name: odd
nodes:
  end: {interfaces: {eth0: {addresses: [10.0.0.1/30]}}}
  graph-2: {}
  subgraph: {}
links:
  - endpoints: [end:eth0, graph-2:eth0]
  - endpoints: [\"end:q\\\"1\", subgraph:eth0]
    state: down
  - endpoints: [host:vh1, subgraph:eth1]
bridges:
  sw: {members: [end:eth9, graph-2:eth9]}
";

    #[test]
    fn escaping_in_dot_and_mermaid() {
        assert_eq!(dot_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(mermaid_escape(r#"a"b#c<d>"#), "a#quot;b#35;c#lt;d#gt;");
    }

    #[test]
    fn mermaid_ids_are_generated_and_names_quoted() {
        let m = mermaid(&topo(ODD), Options::default());
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        assert!(m.contains("  n0[\"end\"]\n"), "{m}");
        assert!(m.contains("  n1[\"graph-2\"]\n"), "{m}");
        assert!(m.contains("  n2[\"subgraph\"]\n"), "{m}");
        assert!(m.contains("  b0((\"sw\"))\n"), "{m}");
        assert!(m.contains("  h0{{\"host\"}}\n"), "{m}");
        assert!(m.contains("  n0 ---|\"eth0 — eth0\"| n1\n"), "{m}");
        assert!(m.contains("  n0 -.-|\"q#quot;1 — eth0\"| n2\n"), "{m}");
        assert!(m.contains("  h0 ---|\"vh1 — eth1\"| n2\n"), "{m}");
        assert!(m.contains("  n0 ---|\"eth9\"| b0\n"), "{m}");
        // No name appears as a bare id.
        for line in m.lines().skip(1) {
            let id = line
                .trim_start()
                .split(['[', '(', '{', ' '])
                .next()
                .unwrap_or("");
            assert!(
                id.len() >= 2 && id[1..].bytes().all(|b| b.is_ascii_digit()),
                "{line}"
            );
        }
    }

    #[test]
    fn dot_labels_ends_and_escapes_names() {
        let d = dot(&topo(ODD), Options { addresses: true });
        assert!(d.starts_with("graph \"odd\" {\n  layout=neato;\n"), "{d}");
        assert!(d.contains("  n0 [label=\"end\"];\n"), "{d}");
        assert!(d.contains("  h0 [label=\"host\", shape=house];\n"), "{d}");
        assert!(
            d.contains("  n0 -- n1 [taillabel=\"eth0\\n10.0.0.1/30\", headlabel=\"eth0\"];\n"),
            "{d}"
        );
        assert!(
            d.contains("  n0 -- n2 [taillabel=\"q\\\"1\", headlabel=\"eth0\", style=dashed];\n"),
            "{d}"
        );
        assert!(d.contains("  n1 -- b0 [taillabel=\"eth9\"];\n"), "{d}");
        let plain = dot(&topo(ODD), Options::default());
        assert!(!plain.contains("10.0.0.1/30"), "{plain}");
    }
}
