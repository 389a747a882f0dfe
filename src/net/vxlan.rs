//! VXLAN tunnels between hosts: the interface (`ip link add … type vxlan`) and the flood list
//! of a bridge port (`bridge fdb append 00:00:00:00:00:00 dev VX dst ADDR`).
//!
//! A VXLAN device has two namespaces. Its UDP socket lives in the namespace of the netlink
//! socket that sent the creating request (the kernel keeps that namespace as the device's
//! "link netns" and opens the socket there when the device goes up), and it sends and
//! receives the encapsulated packets with that namespace's addresses and routes. The device
//! itself is created straight into the namespace given with the request (`IFLA_NET_NS_FD`).
//! So a request sent on a socket of the host's namespace, naming a node's namespace, gives the
//! node an interface whose tunnel runs over the host's network.
//!
//! The kernel refuses (`EEXIST`) a second device with the same VNI and UDP port created from
//! one namespace, wherever the devices are: the tunnels of a namespace are told apart by VNI
//! and port alone.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use rtnetlink::{Handle, LinkVxlan};

use super::{dump, link, nl_err, NetError};

/// The all-zero MAC address: the forwarding entry of a VXLAN device that is used for frames
/// to any unknown, broadcast or multicast destination (head-end replication).
const ZERO_MAC: [u8; 6] = [0; 6];
/// `NUD_NOARP | NUD_PERMANENT`: the state `bridge fdb add/append` gives an entry.
const FDB_STATE: u16 = 0x40 | 0x80;

/// The tunnel of a VXLAN device, as created and as read back from a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    /// VXLAN network identifier, 1..=16777215.
    pub vni: u32,
    /// UDP destination port (the device's socket listens on it too).
    pub port: u16,
    /// Source address of the encapsulated packets (this host's underlay address).
    pub local: IpAddr,
    /// The one peer every frame goes to (a point-to-point tunnel); `None` for a bridge port,
    /// whose peers are its flood entries.
    pub remote: Option<IpAddr>,
    /// Whether the device learns which peer a source MAC is behind.
    pub learning: bool,
}

/// Creates a VXLAN device named `name`, down, with its MTU, MAC, device group and interface
/// index (0: the kernel picks one), in one `RTM_NEWLINK` request sent on `handle`: the
/// device's UDP socket belongs to `handle`'s namespace (see the module's documentation), the
/// device to `netns` (or, `None`, to `handle`'s namespace too). Like `ip link add NAME netns
/// NS index I mtu M address MAC group G type vxlan id VNI dstport PORT local L [remote R]
/// [no]learning`.
///
/// No alias is set here: the kernel ignores `IFLA_IFALIAS` in a request that creates a link;
/// it is set afterwards with [`link::set`] on a socket of the device's namespace, as for a
/// veth end. Nor is an underlay device given (`dev`): without one the kernel takes any MTU
/// from 68 to 65535 (1500 if none were given), so fitting it into the underlay's MTU is the
/// caller's to compute.
///
/// The UDP socket is opened when the device goes up, bound to the port on the wildcard
/// address of `local`'s family (not to `local`), and shared by every device of that
/// namespace with the same port and family. If another program holds the port there,
/// bringing the device up fails with `EADDRINUSE`.
///
/// The kernel looks the new device's index (if given), else its name, up in the target
/// namespace; kernels before 6.14 look it up in `handle`'s namespace, where an interface of
/// the host with that name or index makes the request fail. When the kernel answers
/// `EEXIST`, the error says which: the name or index taken in either namespace, or another
/// VXLAN device made from `handle`'s namespace with the same VNI and port.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    handle: &Handle,
    netns: Option<BorrowedFd<'_>>,
    name: &str,
    index: u32,
    vx: &Vxlan,
    mtu: u32,
    mac: [u8; 6],
    group: u32,
) -> Result<(), NetError> {
    let what = format!("create vxlan {name} (VNI {}, UDP port {})", vx.vni, vx.port);
    let mut m = LinkVxlan::new(name, vx.vni)
        .port(vx.port)
        .learning(vx.learning);
    m = match (vx.local, vx.remote) {
        (IpAddr::V4(l), None) => m.local(l),
        (IpAddr::V4(l), Some(IpAddr::V4(r))) => m.local(l).remote(r),
        (IpAddr::V6(l), None) => m.local6(l),
        (IpAddr::V6(l), Some(IpAddr::V6(r))) => m.local6(l).remote6(r),
        (l, Some(r)) => {
            return Err(NetError::io(
                what,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("local {l} and remote {r} are of different families"),
                ),
            ))
        }
    };
    m = m.mtu(mtu).address(mac.to_vec()).link_group(group);
    if let Some(fd) = netns {
        m = m.setns_by_fd(fd.as_raw_fd());
    }
    if index != 0 {
        m = m.index(index);
    }
    match handle.link().add(m.build()).execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let err = nl_err(what.clone())(e);
            if err.errno() != Some(libc::EEXIST) {
                return Err(err);
            }
            Err(NetError::Netlink {
                what,
                errno: Some(libc::EEXIST),
                message: why_exists(handle, netns, name, index, vx).await,
            })
        }
    }
}

/// Why the kernel refused a new VXLAN device with `EEXIST`.
async fn why_exists(
    handle: &Handle,
    netns: Option<BorrowedFd<'_>>,
    name: &str,
    index: u32,
    vx: &Vxlan,
) -> String {
    let here: Vec<(String, u32)> = match link::dump(handle).await {
        Ok(links) => links.iter().filter_map(name_and_index).collect(),
        Err(_) => Vec::new(),
    };
    let target = match netns {
        None => here.clone(),
        Some(fd) => interfaces_in(fd).unwrap_or_default(),
    };
    let has_name = |ifaces: &[(String, u32)]| ifaces.iter().any(|(n, _)| n == name);
    if has_name(&target) {
        format!("the target namespace already has an interface named {name}")
    } else if index != 0 && target.iter().any(|(_, i)| *i == index) {
        format!("the target namespace already has an interface with index {index}")
    } else if has_name(&here) {
        format!(
            "the namespace the request was sent from has an interface named {name} (kernels \
             before 6.14 look the new name up there)"
        )
    } else if index != 0 && here.iter().any(|(_, i)| *i == index) {
        format!(
            "the namespace the request was sent from has an interface with index {index} \
             (kernels before 6.14 look the index up there)"
        )
    } else {
        format!(
            "VNI {} with UDP port {} is already used by another VXLAN device created from this \
             namespace (a namespace's tunnels are told apart by VNI and port only)",
            vx.vni, vx.port
        )
    }
}

fn name_and_index(msg: &LinkMessage) -> Option<(String, u32)> {
    link::name_of(msg).map(|n| (n.to_string(), msg.header.index))
}

/// The interfaces (name, index) of the namespace open as `netns`, asked on a thread that
/// enters it (`setns` is per thread).
fn interfaces_in(netns: BorrowedFd<'_>) -> Option<Vec<(String, u32)>> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
            // The thread ends here, so it need not return to its own namespace.
            let links = dump::Requester::open_here().ok()?.links().ok()?;
            Some(links.iter().filter_map(name_and_index).collect())
        })
        .join()
        .ok()
        .flatten()
    })
}

/// The tunnel of a dumped link, if it is a VXLAN device: VNI, port, local address (the
/// unspecified address of the remote's family, or 0.0.0.0, when it has none), remote (the
/// kernel reports a multicast group in the same attribute) and learning.
pub fn parse(msg: &LinkMessage) -> Option<Vxlan> {
    let infos = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => Some(infos),
        _ => None,
    })?;
    if !infos
        .iter()
        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan)))
    {
        return None;
    }
    let data = infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(d)) => Some(d),
        _ => None,
    })?;
    let mut vni = None;
    let mut port = None;
    let mut local = None;
    let mut remote = None;
    let mut learning = false;
    for attr in data {
        match attr {
            InfoVxlan::Id(id) => vni = Some(*id),
            InfoVxlan::Port(p) => port = Some(*p),
            InfoVxlan::Local(a) => local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => local = Some(IpAddr::V6(*a)),
            InfoVxlan::Group(a) if !a.is_unspecified() => remote = Some(IpAddr::V4(*a)),
            InfoVxlan::Group6(a) if !a.is_unspecified() => remote = Some(IpAddr::V6(*a)),
            InfoVxlan::Learning(l) => learning = *l,
            _ => {}
        }
    }
    let local = local.unwrap_or(match remote {
        Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    Some(Vxlan {
        vni: vni?,
        port: port?,
        local,
        remote,
        learning,
    })
}

/// The message of a flood entry: the all-zero MAC of device `ifindex`, to `remote`, an entry
/// of the device itself (`NTF_SELF`), not of a bridge it is a port of.
fn flood_message(ifindex: u32, remote: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::from(FDB_STATE);
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(ZERO_MAC.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            remote,
        )));
    msg
}

/// Sends a request that is answered by an acknowledgement only.
async fn ack(
    handle: &Handle,
    msg: RouteNetlinkMessage,
    flags: u16,
    what: String,
) -> Result<(), NetError> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut handle = handle.clone();
    let mut answers = handle.request(req).map_err(nl_err(what.clone()))?;
    while let Some(answer) = answers.next().await {
        if let NetlinkPayload::Error(e) = answer.payload {
            if e.code.is_some() {
                return Err(nl_err(what)(rtnetlink::Error::NetlinkError(e)));
            }
        }
    }
    Ok(())
}

/// Adds `remote` to the flood list of VXLAN device `ifindex` (`bridge fdb append
/// 00:00:00:00:00:00 dev VX dst REMOTE`): every frame the device sends to a destination it
/// has not learned goes to each peer of the list. `handle` is a socket of the device's
/// namespace. Adding a peer that is listed already changes nothing.
pub async fn flood_add(handle: &Handle, ifindex: u32, remote: IpAddr) -> Result<(), NetError> {
    ack(
        handle,
        RouteNetlinkMessage::NewNeighbour(flood_message(ifindex, remote)),
        NLM_F_CREATE | NLM_F_APPEND,
        format!("add flood entry to {remote} on interface {ifindex}"),
    )
    .await
}

/// Removes `remote` from the flood list of VXLAN device `ifindex` (`bridge fdb del
/// 00:00:00:00:00:00 dev VX dst REMOTE`); a peer that is not listed is no error.
pub async fn flood_del(handle: &Handle, ifindex: u32, remote: IpAddr) -> Result<(), NetError> {
    let done = ack(
        handle,
        RouteNetlinkMessage::DelNeighbour(flood_message(ifindex, remote)),
        0,
        format!("delete flood entry to {remote} on interface {ifindex}"),
    )
    .await;
    match done {
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// The flood list of VXLAN device `ifindex` (`bridge fdb show dev VX`, the all-zero entries),
/// in the kernel's order.
pub async fn flood_list(handle: &Handle, ifindex: u32) -> Result<Vec<IpAddr>, NetError> {
    let what = format!("list flood entries of interface {ifindex}");
    let entries: Vec<NeighbourMessage> = handle
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_collect()
        .await
        .map_err(nl_err(what))?;
    Ok(entries
        .iter()
        .filter(|m| m.header.ifindex == ifindex)
        .filter_map(flood_entry)
        .collect())
}

/// The peer of a VXLAN interface's own flood entry (all-zero MAC); `None` for any other
/// forwarding entry.
pub fn flood_entry(msg: &NeighbourMessage) -> Option<IpAddr> {
    if msg.header.flags.contains(NeighbourFlags::Own) {
        flood_remote(msg)
    } else {
        None
    }
}

/// The peer of an all-zero-MAC forwarding entry; `None` for any other entry.
fn flood_remote(msg: &NeighbourMessage) -> Option<IpAddr> {
    let zero = msg.attributes.iter().any(
        |a| matches!(a, NeighbourAttribute::LinkLayerAddress(mac) if mac.as_slice() == ZERO_MAC),
    );
    if !zero {
        return None;
    }
    msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(d) => address_of(d),
        _ => None,
    })
}

/// An address of a forwarding entry: the entries of the bridge family carry it as bytes.
fn address_of(d: &NeighbourAddress) -> Option<IpAddr> {
    match d {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice())
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            16 => <[u8; 16]>::try_from(bytes.as_slice())
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::LinkInfo;

    fn vxlan_message(data: Vec<InfoVxlan>) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(data)),
        ]));
        msg
    }

    #[test]
    fn parse_reads_a_point_to_point_tunnel() {
        let msg = vxlan_message(vec![
            InfoVxlan::Id(1001),
            InfoVxlan::Group(Ipv4Addr::new(198, 51, 100, 2)),
            InfoVxlan::Local(Ipv4Addr::new(198, 51, 100, 1)),
            InfoVxlan::Learning(false),
            InfoVxlan::Port(14789),
        ]);
        assert_eq!(
            parse(&msg),
            Some(Vxlan {
                vni: 1001,
                port: 14789,
                local: "198.51.100.1".parse().unwrap(),
                remote: Some("198.51.100.2".parse().unwrap()),
                learning: false,
            })
        );
    }

    #[test]
    fn parse_reads_a_bridge_port_over_ipv6() {
        let msg = vxlan_message(vec![
            InfoVxlan::Id(7),
            InfoVxlan::Local6("2001:db8::1".parse().unwrap()),
            InfoVxlan::Learning(true),
            InfoVxlan::Port(4789),
        ]);
        let vx = parse(&msg).unwrap();
        assert_eq!(vx.local, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (vx.vni, vx.port, vx.remote, vx.learning),
            (7, 4789, None, true)
        );
    }

    #[test]
    fn parse_is_none_for_other_kinds_and_incomplete_data() {
        let mut veth = LinkMessage::default();
        veth.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Veth,
            )]));
        assert_eq!(parse(&veth), None);
        assert_eq!(parse(&LinkMessage::default()), None);
        assert_eq!(
            parse(&vxlan_message(vec![InfoVxlan::Id(5)])),
            None,
            "no port"
        );
    }

    #[test]
    fn flood_entries_are_read_from_bytes_or_addresses() {
        let mut msg = flood_message(4, "198.51.100.2".parse().unwrap());
        assert_eq!(flood_remote(&msg), Some("198.51.100.2".parse().unwrap()));
        // As a dump of the bridge family decodes it.
        msg.attributes[1] = NeighbourAttribute::Destination(NeighbourAddress::Other(
            "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets().to_vec(),
        ));
        assert_eq!(flood_remote(&msg), Some("2001:db8::2".parse().unwrap()));
        msg.attributes[0] = NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 1]);
        assert_eq!(flood_remote(&msg), None, "not the all-zero entry");
    }

    #[test]
    fn flood_message_is_what_bridge_fdb_append_sends() {
        let msg = flood_message(9, "198.51.100.3".parse().unwrap());
        assert_eq!(msg.header.family, AddressFamily::Bridge);
        assert_eq!(msg.header.ifindex, 9);
        assert_eq!(u16::from(msg.header.state), 0xc0);
        assert_eq!(msg.header.flags, NeighbourFlags::Own);
    }
}
