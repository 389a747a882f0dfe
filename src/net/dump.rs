//! Blocking netlink requests on a plain socket, made by the thread that opened the socket
//! inside a namespace: how the observation reads many namespaces. Compared with a tokio
//! connection per namespace there is no connection task to spawn, no wake-up across threads
//! and one receive buffer per thread; link messages are decoded only as far as `topo` reads
//! them (the per-family settings and statistics of each link are most of its bytes).

use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkHeader, LinkMessage};
use netlink_packet_route::neighbour::NeighbourMessage;
use netlink_packet_route::route::{RouteHeader, RouteMessage, RouteProtocol, RouteType};
use netlink_packet_route::tc::TcMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlaBuffer, NlasIterator,
    ParseableParametrized, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST,
};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::{NetError, RTPROT_TOPO};

/// A dump's datagrams are at most 32 KiB (the kernel's cap); twice that, as netlink-proto.
const RECV_BUF: usize = 64 * 1024;
/// `struct ifinfomsg`.
const LINK_HEADER_LEN: usize = 16;
/// The link attributes `topo` reads (`IFLA_*`): address, name, MTU, qdisc, controller, link
/// info, alias, group.
const LINK_ATTRS: [u16; 8] = [1, 3, 4, 6, 10, 18, 20, 27];

/// A netlink route socket of the calling thread's namespace, used synchronously.
pub struct Requester {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Requester {
    /// Opens a socket in the calling thread's current network namespace. Route dumps are
    /// filtered by the kernel where it can (`NETLINK_GET_STRICT_CHK`, Linux 4.20+); the
    /// results are filtered again here, so an older kernel only sends more.
    pub fn open_here() -> Result<Self, NetError> {
        let socket =
            Socket::new(NETLINK_ROUTE).map_err(|e| NetError::io("open netlink socket", e))?;
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(Requester {
            socket,
            seq: 0,
            buf: Vec::new(),
        })
    }

    /// Sends `msg` and hands the type and payload of each answer to `each`, until the dump
    /// ends (`dump`) or the one answer came.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        dump: bool,
        what: &str,
        mut each: impl FnMut(u16, &[u8]) -> Result<(), NetError>,
    ) -> Result<(), NetError> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        req.header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        req.header.sequence_number = self.seq;
        req.finalize();
        self.buf.clear();
        self.buf.resize(req.buffer_len(), 0);
        req.serialize(&mut self.buf);
        self.socket
            .send_to(&self.buf, &SocketAddr::new(0, 0), 0)
            .map_err(|e| NetError::io(what, e))?;
        loop {
            self.buf.clear();
            self.buf.reserve(RECV_BUF);
            self.socket
                .recv(&mut self.buf, 0)
                .map_err(|e| NetError::io(what, e))?;
            let mut at = 0;
            while at < self.buf.len() {
                let msg = NetlinkBuffer::new_checked(&self.buf[at..]).map_err(bad(what))?;
                let len = msg.length() as usize;
                at += len.next_multiple_of(4).max(4);
                if msg.sequence_number() != self.seq {
                    continue;
                }
                match msg.message_type() {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = msg
                            .payload()
                            .first_chunk::<4>()
                            .map_or(0, |b| i32::from_ne_bytes(*b));
                        if code == 0 {
                            return Ok(());
                        }
                        let errno = code.saturating_neg();
                        return Err(NetError::Netlink {
                            what: what.to_string(),
                            errno: Some(errno),
                            message: std::io::Error::from_raw_os_error(errno).to_string(),
                        });
                    }
                    kind => {
                        each(kind, msg.payload())?;
                        if !dump && msg.flags() & NLM_F_MULTIPART == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Every link, without counters, decoded only as far as `topo` reads (see
    /// [`link_message`]).
    pub fn links(&mut self) -> Result<Vec<LinkMessage>, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let mut out = Vec::new();
        self.request(
            RouteNetlinkMessage::GetLink(msg),
            true,
            "dump links",
            |_, p| {
                out.push(link_message(p)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// One link by name; `None` if there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkMessage>, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let mut out = None;
        let what = format!("get {name}");
        let got = self.request(RouteNetlinkMessage::GetLink(msg), false, &what, |_, p| {
            out = Some(link_message(p)?);
            Ok(())
        });
        match got {
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => Ok(out),
        }
    }

    /// A dump, each answer decoded whole and kept if `pick` takes it.
    pub(crate) fn dump<T>(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
        pick: impl Fn(RouteNetlinkMessage) -> Option<T>,
    ) -> Result<Vec<T>, NetError> {
        let mut out = Vec::new();
        self.request(msg, true, what, |kind, p| {
            let msg = RouteNetlinkMessage::parse_with_param(p, kind).map_err(bad(what))?;
            out.extend(pick(msg));
            Ok(())
        })?;
        Ok(out)
    }

    pub fn addresses(&mut self) -> Result<Vec<AddressMessage>, NetError> {
        let msg = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        self.dump(msg, "dump addresses", |m| match m {
            RouteNetlinkMessage::NewAddress(m) => Some(m),
            _ => None,
        })
    }

    /// The main table's unicast routes of `topo`'s protocol, both families (the kernel's
    /// own routes are left out by the kernel where it filters dumps).
    pub fn routes(&mut self) -> Result<Vec<RouteMessage>, NetError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Unspec;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Other(RTPROT_TOPO);
        msg.header.kind = RouteType::Unicast;
        self.dump(
            RouteNetlinkMessage::GetRoute(msg),
            "dump routes",
            |m| match m {
                RouteNetlinkMessage::NewRoute(m) => Some(m),
                _ => None,
            },
        )
    }

    /// The flood entries (all-zero MAC, see [`super::vxlan::flood_add`]) of every VXLAN
    /// interface of the namespace, by interface index.
    pub fn flood_entries(&mut self) -> Result<Vec<(u32, std::net::IpAddr)>, NetError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        let all = self.dump(
            RouteNetlinkMessage::GetNeighbour(msg),
            "dump forwarding entries",
            |m| match m {
                RouteNetlinkMessage::NewNeighbour(m) => Some(m),
                _ => None,
            },
        )?;
        Ok(all
            .iter()
            .filter_map(|m| super::vxlan::flood_entry(m).map(|a| (m.header.ifindex, a)))
            .collect())
    }

    pub fn qdiscs(&mut self) -> Result<Vec<TcMessage>, NetError> {
        let msg = RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default());
        self.dump(msg, "dump qdiscs", |m| match m {
            RouteNetlinkMessage::NewQueueDiscipline(m) => Some(m),
            _ => None,
        })
    }
}

fn bad<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> NetError + '_ {
    move |e| NetError::Netlink {
        what: what.to_string(),
        errno: None,
        message: format!("undecodable answer: {e}"),
    }
}

/// A link message with only the attributes in [`LINK_ATTRS`] decoded.
pub fn link_message(payload: &[u8]) -> Result<LinkMessage, NetError> {
    const WHAT: &str = "dump links";
    let header = LinkHeader::parse(payload).map_err(bad(WHAT))?;
    let family = header.interface_family;
    let mut msg = LinkMessage::default();
    msg.header = header;
    let rest = payload.get(LINK_HEADER_LEN..).unwrap_or_default();
    for nla in NlasIterator::new(rest) {
        let nla: NlaBuffer<&[u8]> = nla.map_err(bad(WHAT))?;
        if LINK_ATTRS.contains(&nla.kind()) {
            msg.attributes
                .push(LinkAttribute::parse_with_param(&nla, family).map_err(bad(WHAT))?);
        }
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{LinkFlags, LinkInfo, LinkLayerType, State};
    use rtnetlink::packet_core::Emitable;

    #[test]
    fn link_messages_keep_exactly_the_attributes_topo_reads() {
        let mut full = LinkMessage::default();
        full.header.index = 7;
        full.header.link_layer_type = LinkLayerType::Ether;
        full.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        full.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::TxQueueLen(1000),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Mtu(9000),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::Controller(3),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                netlink_packet_route::link::InfoKind::Veth,
            )]),
            LinkAttribute::IfAlias("topo:lab:a:eth0".into()),
            LinkAttribute::Group(42),
            LinkAttribute::Qdisc("netem".into()),
            LinkAttribute::NumTxQueues(4),
        ];
        let mut bytes = vec![0; full.buffer_len()];
        full.emit(&mut bytes);
        let got = link_message(&bytes).expect("decodes");
        assert_eq!(got.header, full.header);
        let kept: Vec<&LinkAttribute> = full
            .attributes
            .iter()
            .filter(|a| {
                !matches!(
                    a,
                    LinkAttribute::TxQueueLen(_)
                        | LinkAttribute::OperState(_)
                        | LinkAttribute::NumTxQueues(_)
                )
            })
            .collect();
        assert_eq!(got.attributes.iter().collect::<Vec<_>>(), kept);
    }

    #[test]
    fn a_truncated_link_message_is_an_error_not_a_panic() {
        let mut full = LinkMessage::default();
        full.attributes = vec![LinkAttribute::IfName("eth0".into())];
        let mut bytes = vec![0; full.buffer_len()];
        full.emit(&mut bytes);
        for cut in 0..bytes.len() {
            let _ = link_message(&bytes[..cut]);
        }
        assert!(link_message(&bytes[..8]).is_err());
    }
}
