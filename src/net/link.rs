//! Links: veth pairs, bridges and their ports, and link attributes (`ip link …`).

use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec};

use super::{nl_err, NetError};

/// One end of a veth pair to create: its name and, unless it stays in the namespace of the
/// socket that sends the request, the namespace it is created in.
pub struct VethEnd<'a> {
    pub name: &'a str,
    /// Interface index to create it with; 0: the kernel picks one.
    pub index: u32,
    /// Device group, set at creation.
    pub group: u32,
    pub netns: Option<BorrowedFd<'a>>,
    pub mac: [u8; 6],
}

/// Creates a veth pair with each end directly in its namespace (no move afterwards), with its
/// MTU and MAC (`ip link add A netns X type veth peer name B netns Y`). `up` applies to end
/// `a` only (see below).
pub async fn add_veth(
    handle: &Handle,
    a: &VethEnd<'_>,
    b: &VethEnd<'_>,
    mtu: u32,
    up: bool,
) -> Result<(), NetError> {
    // The peer cannot be created up: the kernel opens it before the pair is joined, and
    // veth_open() then fails with ENOTCONN. The caller brings it up afterwards.
    let peer = end_message(LinkMessageBuilder::<LinkUnspec>::default(), b, mtu, false).build();
    let mut main = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)));
    main = end_message(main, a, mtu, up);
    handle
        .link()
        .add(main.build())
        .execute()
        .await
        .map_err(nl_err(format!(
            "create veth pair {} <-> {}",
            a.name, b.name
        )))
}

fn end_message(
    mut m: LinkMessageBuilder<LinkUnspec>,
    end: &VethEnd<'_>,
    mtu: u32,
    up: bool,
) -> LinkMessageBuilder<LinkUnspec> {
    // One queue each way: the kernel's default makes one per possible CPU, then (veth_newlink)
    // cuts the pair down to one, with a synchronous RCU grace period per end under RTNL.
    m = m
        .name(end.name)
        .mtu(mtu)
        .address(end.mac.to_vec())
        .link_group(end.group)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1));
    if let Some(fd) = end.netns {
        m = m.setns_by_fd(fd.as_raw_fd());
    }
    if end.index != 0 {
        m = m.index(end.index);
    }
    if up {
        m = m.up();
    }
    m
}

/// Creates a bridge (`ip link add NAME type bridge`), up.
pub async fn add_bridge(
    handle: &Handle,
    name: &str,
    mtu: u32,
    mac: [u8; 6],
    group: u32,
) -> Result<(), NetError> {
    let msg = LinkBridge::new(name)
        .mtu(mtu)
        .address(mac.to_vec())
        .link_group(group)
        .up()
        .build();
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(nl_err(format!("create bridge {name}")))
}

/// What to change on an existing link; `None` leaves a property as it is.
#[derive(Debug, Default, Clone)]
pub struct LinkChange {
    pub mtu: Option<u32>,
    pub up: Option<bool>,
    pub alias: Option<String>,
    pub controller: Option<u32>,
    pub mac: Option<[u8; 6]>,
}

/// Changes attributes of a link in place (`ip link set dev IDX …`); the ifindex is kept.
pub async fn set(
    handle: &Handle,
    index: u32,
    name: &str,
    change: &LinkChange,
) -> Result<(), NetError> {
    let mut m = LinkUnspec::new_with_index(index);
    if let Some(mtu) = change.mtu {
        m = m.mtu(mtu);
    }
    if let Some(alias) = &change.alias {
        m = m.alias(alias.clone());
    }
    if let Some(ctrl) = change.controller {
        m = m.controller(ctrl);
    }
    if let Some(mac) = change.mac {
        m = m.address(mac.to_vec());
    }
    match change.up {
        Some(true) => m = m.up(),
        Some(false) => m = m.down(),
        None => {}
    }
    handle
        .link()
        .set(m.build())
        .execute()
        .await
        .map_err(nl_err(format!("set link {name}")))
}

/// Renames a link that is down (`ip link set dev IDX name NAME`).
pub async fn rename(handle: &Handle, index: u32, to: &str, what: &str) -> Result<(), NetError> {
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .name(to.to_string())
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(format!("rename link {what}")))
}

/// Deletes a link (`ip link del`); deleting one end of a veth pair deletes both.
pub async fn del(handle: &Handle, index: u32, name: &str) -> Result<(), NetError> {
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let err = nl_err(format!("delete link {name}"))(e);
            // Already gone (its peer was deleted first): converged.
            if err.errno() == Some(libc::ENODEV) {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// Dumps every link of the socket's namespace (`ip link show`).
pub async fn dump(handle: &Handle) -> Result<Vec<LinkMessage>, NetError> {
    // Without the counters (about a third of each message), which `topo` never reads.
    handle
        .link()
        .get()
        .set_filter_mask(
            netlink_packet_route::AddressFamily::Unspec,
            vec![netlink_packet_route::link::LinkExtentMask::SkipStats],
        )
        .execute()
        .try_collect()
        .await
        .map_err(nl_err("dump links"))
}

/// The fields of a link message that `topo` compares. The observation decodes only these
/// (`dump::LINK_ATTRS`): an attribute read here must be listed there too.
pub fn name_of(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

pub fn alias_of(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(n) => Some(n.as_str()),
        _ => None,
    })
}

pub fn mtu_of(msg: &LinkMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

pub fn mac_of(msg: &LinkMessage) -> Option<[u8; 6]> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
        _ => None,
    })
}

pub fn controller_of(msg: &LinkMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(c) => Some(*c),
        _ => None,
    })
}

pub fn kind_of(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.to_string()),
            _ => None,
        }),
        _ => None,
    })
}

/// The kind of the link's root qdisc (`IFLA_QDISC`: `noqueue`, `netem`, …), when it has one.
pub fn root_qdisc_of(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Qdisc(q) => Some(q.as_str()),
        _ => None,
    })
}

pub fn group_of(msg: &LinkMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Group(g) => Some(*g),
            _ => None,
        })
        .unwrap_or(0)
}

pub fn is_up(msg: &LinkMessage) -> bool {
    msg.header.flags.contains(LinkFlags::Up)
}
