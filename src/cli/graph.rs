//! `topo graph`: the topology as Graphviz DOT or Mermaid.

use std::fmt::Write;

use crate::spec::Topology;

pub fn dot(t: &Topology) -> String {
    let mut s = format!("graph \"{}\" {{\n  node [shape=box];\n", t.name);
    for name in t.nodes.keys() {
        let _ = writeln!(s, "  \"{name}\";");
    }
    for l in &t.links {
        let [a, b] = &l.endpoints;
        let style = if l.state == crate::spec::LinkState::Down {
            ", style=dashed"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  \"{}\" -- \"{}\" [taillabel=\"{}\", headlabel=\"{}\"{style}];",
            a.node, b.node, a.iface, b.iface
        );
    }
    for (br, b) in &t.bridges {
        let _ = writeln!(s, "  \"{br}\" [shape=ellipse];");
        for m in &b.members {
            let _ = writeln!(
                s,
                "  \"{}\" -- \"{br}\" [taillabel=\"{}\"];",
                m.node, m.iface
            );
        }
    }
    s.push_str("}\n");
    s
}

pub fn mermaid(t: &Topology) -> String {
    let mut s = String::from("graph LR\n");
    for name in t.nodes.keys() {
        let _ = writeln!(s, "  {name}[{name}]");
    }
    for l in &t.links {
        let [a, b] = &l.endpoints;
        let arrow = if l.state == crate::spec::LinkState::Down {
            "-.-"
        } else {
            "---"
        };
        let _ = writeln!(
            s,
            "  {} {arrow}|{}:{}| {}",
            a.node, a.iface, b.iface, b.node
        );
    }
    for (br, b) in &t.bridges {
        let _ = writeln!(s, "  {br}(({br}))");
        for m in &b.members {
            let _ = writeln!(s, "  {} ---|{}| {br}", m.node, m.iface);
        }
    }
    s
}
