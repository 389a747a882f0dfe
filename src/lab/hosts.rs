//! The lab's `/etc/hosts`: every node's addresses, so nodes reach each other by name.

use std::fmt::Write;

use crate::spec::Topology;

/// `ADDR NODE-IFACE` for every address, and the node's own name on its first IPv4 and first
/// IPv6 address (loopback first, then interfaces in name order).
pub fn render(t: &Topology) -> String {
    let mut out = String::from("# written by topo for lab ");
    out.push_str(&t.name);
    out.push_str("\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (node, n) in &t.nodes {
        let mut named_v4 = false;
        let mut named_v6 = false;
        let mut ifaces: Vec<_> = n.interfaces.iter().collect();
        ifaces.sort_by_key(|(name, _)| (name.as_str() != "lo", name.as_str().to_string()));
        for (iface, i) in ifaces {
            for a in &i.addresses {
                let first = if a.is_ipv4() {
                    !std::mem::replace(&mut named_v4, true)
                } else {
                    !std::mem::replace(&mut named_v6, true)
                };
                let _ = write!(out, "{}\t{node}-{iface}", a.ip());
                if first {
                    let _ = write!(out, " {node}");
                }
                out.push('\n');
            }
        }
    }
    out
}
