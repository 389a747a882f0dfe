//! Addresses (`ip addr …`), marked with `topo`'s address protocol.

use ipnetwork::IpNetwork;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
};
use rtnetlink::Handle;

use super::{nl_err, NetError, IFAPROT_TOPO};
use crate::plan::AddrObs;

/// Adds an address marked as ours, without duplicate address detection (a lab's addresses
/// are unique by validation, and DAD would keep IPv6 addresses unusable for a second or so).
/// Equivalent to `ip addr add ADDR dev IDX nodad proto 200`.
pub async fn add(handle: &Handle, index: u32, addr: IpNetwork, what: &str) -> Result<(), NetError> {
    let mut req = handle.address().add(index, addr.ip(), addr.prefix());
    let msg = req.message_mut();
    msg.header.flags = AddressHeaderFlags::Nodad;
    msg.attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    msg.attributes
        .push(AddressAttribute::Protocol(AddressProtocol::Other(
            IFAPROT_TOPO,
        )));
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let err = nl_err(format!("add address {addr} to {what}"))(e);
            if err.errno() == Some(libc::EEXIST) {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// Removes an address (`ip addr del ADDR dev IDX`).
pub async fn del(handle: &Handle, index: u32, addr: IpNetwork, what: &str) -> Result<(), NetError> {
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpNetwork::V4(_) => netlink_packet_route::AddressFamily::Inet,
        IpNetwork::V6(_) => netlink_packet_route::AddressFamily::Inet6,
    };
    msg.header.prefix_len = addr.prefix();
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.ip()));
    if addr.is_ipv6() {
        msg.attributes.clear();
        msg.attributes.push(AddressAttribute::Address(addr.ip()));
    }
    match handle.address().del(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let err = nl_err(format!("delete address {addr} from {what}"))(e);
            if err.errno() == Some(libc::EADDRNOTAVAIL) {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// The addresses `topo` compares among dumped ones (`ip addr show`): all but IPv6 link-local
/// ones and loopback's own 127.0.0.1/8 and ::1/128, which the kernel manages.
pub fn observed(msgs: &[AddressMessage]) -> Vec<AddrObs> {
    msgs.iter().filter_map(to_obs).collect()
}

fn to_obs(m: &AddressMessage) -> Option<AddrObs> {
    let ip = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let ip = ip.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    let addr = IpNetwork::new(ip, m.header.prefix_len).ok()?;
    let kernel_owned = match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() && m.header.prefix_len == 8,
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if kernel_owned {
        return None;
    }
    let ours = m
        .attributes
        .iter()
        .any(|a| matches!(a, AddressAttribute::Protocol(p) if u8::from(*p) == IFAPROT_TOPO));
    Some(AddrObs {
        index: m.header.index,
        addr,
        ours,
    })
}
