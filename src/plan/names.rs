//! How kernel objects of a lab are named and marked. Pure functions of the lab, node and
//! interface names, so `up`, `plan` and `down` agree on them without any stored state.

/// Orders names as people count: runs of digits by their value, so `n2` comes before `n10`
/// and `eth9` before `eth10`; other characters as bytes. Names equal by that (`n01`, `n1`)
/// fall back to plain order, so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while let (Some(&cx), Some(&cy)) = (x.first(), y.first()) {
        let order = if cx.is_ascii_digit() && cy.is_ascii_digit() {
            let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
            let (dx, rx) = x.split_at(run(x));
            let (dy, ry) = y.split_at(run(y));
            (x, y) = (rx, ry);
            let strip = |d: &[u8]| -> usize { d.iter().take_while(|c| **c == b'0').count() };
            let (vx, vy) = (&dx[strip(dx)..], &dy[strip(dy)..]);
            vx.len().cmp(&vy.len()).then_with(|| vx.cmp(vy))
        } else {
            (x, y) = (&x[1..], &y[1..]);
            cx.cmp(&cy)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

/// Name of a node's network namespace under `/run/netns`: `<lab>-<node>`.
pub fn node_netns(lab: &str, node: &str) -> String {
    format!("{lab}-{node}")
}

/// Prefix shared by every namespace name of a lab (nodes and bridges).
pub fn netns_prefix(lab: &str) -> String {
    format!("{lab}-")
}

/// The lab's hidden namespace that holds its bridges. Node names cannot contain a dot, so
/// this never collides with a node's namespace.
pub fn bridge_netns(lab: &str) -> String {
    format!("{lab}.br")
}

/// Every interface `topo` creates carries an alias that starts with this marker; the rest
/// of the alias says which declared object it implements.
pub fn marker_prefix(lab: &str) -> String {
    format!("topo/{lab} ")
}

/// The device group (`ip link … group N`) of every interface `topo` creates for the lab. It is
/// set in the creating request itself (the alias needs a second one), so an interface left
/// without its alias by an interrupted `up` is still known as the lab's.
pub fn lab_group(lab: &str) -> u32 {
    // Never 0 (the kernel's default group) nor a small number someone might pick.
    (fnv1a(lab.as_bytes()) as u32) | 0x4000_0000
}

/// Alias of a namespace's loopback: marks the whole namespace as this lab's.
pub fn ns_marker(lab: &str, ns: &str) -> String {
    format!("{}ns {ns}", marker_prefix(lab))
}

/// Alias of both ends of a veth pair: the two ends in a fixed order, so a link whose ends
/// change gets a different alias and is recreated rather than silently reused.
pub fn veth_marker(lab: &str, a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{}veth {x}={y}", marker_prefix(lab))
}

/// Alias of both ends of a link between two hosts (each a VXLAN interface on its host): the
/// two ends in a fixed order, as [`veth_marker`].
pub fn vxlan_marker(lab: &str, a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{}vxlan {x}={y}", marker_prefix(lab))
}

/// The bridge, in the lab's bridge namespace, that stitches a cross-host link's veth to its
/// tunnel: `X` and the VNI. Upper case: no bridge or node name of a file has it.
pub fn link_bridge(vni: u32) -> String {
    format!("X{vni}")
}

/// The VXLAN port of a cross-host link, beside [`link_bridge`]: `V` and the VNI.
pub fn link_vxlan_port(vni: u32) -> String {
    format!("V{vni}")
}

/// Alias of a cross-host link's VXLAN port and of its bridge.
pub fn link_tunnel_marker(lab: &str, a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("{}tunnel {x}={y}", marker_prefix(lab))
}

/// Alias of the VXLAN port that joins a bridge to its parts on other hosts.
pub fn bridge_vxlan_marker(lab: &str, bridge: &str) -> String {
    format!("{}vxlan bridge {bridge}", marker_prefix(lab))
}

/// Name of the VXLAN port of a bridge with members on several hosts, beside the bridge in
/// the bridge namespace: `vx-BRIDGE` when it fits in 15 bytes, else `v` and 14 hex digits of
/// a stable hash.
pub fn bridge_vxlan_port(bridge: &str) -> String {
    let readable = format!("vx-{bridge}");
    if readable.len() <= 15 {
        readable
    } else {
        format!(
            "v{:014x}",
            fnv1a(readable.as_bytes()) & 0x00ff_ffff_ffff_ffff
        )
    }
}

/// The name a VXLAN interface is made under, before it is renamed in its namespace: unique
/// to the lab, the namespace and the interface, and unlike any name `topo` gives for good
/// (`t` and 14 hex digits).
pub fn vxlan_temp_name(lab: &str, ns: &str, iface: &str) -> String {
    format!(
        "t{:014x}",
        fnv1a(format!("{lab}\0{ns}\0{iface}").as_bytes()) & 0x00ff_ffff_ffff_ffff
    )
}

pub fn bridge_marker(lab: &str, bridge: &str) -> String {
    format!("{}bridge {bridge}", marker_prefix(lab))
}

/// Name of a bridge's port (the bridge-side end of a member's veth) in the bridge namespace:
/// `node.iface` when it fits in 15 bytes (node names have no dot, so it is unambiguous),
/// else a stable hash.
pub fn bridge_port(node: &str, iface: &str) -> String {
    let readable = format!("{node}.{iface}");
    if readable.len() <= 15 {
        readable
    } else {
        format!(
            "p{:014x}",
            fnv1a(readable.as_bytes()) & 0x00ff_ffff_ffff_ffff
        )
    }
}

/// A deterministic, locally administered unicast MAC for an interface of a lab.
pub fn mac(lab: &str, ns: &str, iface: &str) -> [u8; 6] {
    let h = fnv1a(format!("{lab}\0{ns}\0{iface}").as_bytes()).to_be_bytes();
    [(h[0] & 0xfc) | 0x02, h[1], h[2], h[3], h[4], h[5]]
}

/// A MAC address as the kernel and `ip link` print it: `02:1a:2b:3c:4d:5e`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// FNV-1a, 64 bit: stable across Rust releases, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_natural_order() {
        let mut names = vec![
            "n10",
            "n2",
            "(bridges)",
            "n1",
            "r1b",
            "n01",
            "r1a",
            "n",
            "eth10",
            "eth9",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "(bridges)",
                "eth9",
                "eth10",
                "n",
                "n01",
                "n1",
                "n2",
                "n10",
                "r1a",
                "r1b"
            ]
        );
        assert_eq!(natural_cmp("n007", "n7"), "n007".cmp("n7"));
        assert_eq!(
            natural_cmp("a99999999999999999999999", "a100000000000000000000000"),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn macs_print_as_ip_link_does() {
        assert_eq!(
            format_mac(&[0x02, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]),
            "02:1a:2b:3c:4d:5e"
        );
        assert_eq!(format_mac(&[0; 6]), "00:00:00:00:00:00");
    }

    #[test]
    fn macs_are_local_unicast_and_stable() {
        let m = mac("lab", "lab-r1", "eth1");
        assert_eq!(m[0] & 0x03, 0x02);
        assert_eq!(m, mac("lab", "lab-r1", "eth1"));
        assert_ne!(m, mac("lab", "lab-r1", "eth2"));
    }

    #[test]
    fn veth_marker_does_not_depend_on_end_order() {
        assert_eq!(
            veth_marker("l", "a:x", "b:y"),
            veth_marker("l", "b:y", "a:x")
        );
    }

    #[test]
    fn vxlan_names_fit_in_ifnamsiz_and_markers_ignore_end_order() {
        assert_eq!(bridge_vxlan_port("lan"), "vx-lan");
        assert_eq!(bridge_vxlan_port("twelve-bytes"), "vx-twelve-bytes");
        let long = bridge_vxlan_port("thirteen-byte");
        assert_eq!(long.len(), 15);
        assert!(long.starts_with('v'));
        assert_ne!(long, bridge_vxlan_port("thirteen-bytf"));
        assert_eq!(
            vxlan_marker("l", "r2:eth1", "r1:eth1"),
            "topo/l vxlan r1:eth1=r2:eth1"
        );
        assert_ne!(
            vxlan_marker("l", "a:x", "b:y"),
            veth_marker("l", "a:x", "b:y")
        );
    }

    #[test]
    fn bridge_ports_fit_in_ifnamsiz() {
        assert_eq!(bridge_port("h1", "eth0"), "h1.eth0");
        let long = bridge_port("a-very-long-node", "eth0");
        assert_eq!(long.len(), 15);
        assert_ne!(long, bridge_port("a-very-long-node", "eth1"));
    }
}
