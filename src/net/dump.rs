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
    DefaultNla, Emitable, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, NlaBuffer, NlasIterator, ParseableParametrized, NLMSG_DONE, NLMSG_ERROR,
    NLM_F_DUMP, NLM_F_MULTIPART, NLM_F_REQUEST,
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

/// `RTM_GETNETCONF` and its answer, `RTM_NEWNETCONF` (`linux/rtnetlink.h`).
const RTM_GETNETCONF: u16 = 82;
const RTM_NEWNETCONF: u16 = 80;
/// `struct netconfmsg` (one byte, the family), aligned as netlink aligns what follows it.
const NETCONF_HEADER_LEN: usize = 4;
/// `NETCONFA_IFINDEX`: which settings a netconf request asks for.
const NETCONFA_IFINDEX: u16 = 1;

/// A request for one set of a family's settings in the namespace (`RTM_GETNETCONF`): the
/// namespace's `all` or `default` ones, or an interface's. netlink-packet-route does not
/// model this message; it is framed and its attribute emitted with netlink-packet-core.
struct NetconfGet {
    family: u8,
    ifindex: i32,
}

impl NetconfGet {
    fn index(&self) -> DefaultNla {
        DefaultNla::new(NETCONFA_IFINDEX, self.ifindex.to_ne_bytes().to_vec())
    }
}

impl NetlinkSerializable for NetconfGet {
    fn message_type(&self) -> u16 {
        RTM_GETNETCONF
    }
    fn buffer_len(&self) -> usize {
        NETCONF_HEADER_LEN + self.index().buffer_len()
    }
    fn serialize(&self, buffer: &mut [u8]) {
        let (header, rest) = buffer.split_at_mut(NETCONF_HEADER_LEN.min(buffer.len()));
        header.fill(0);
        if let Some(family) = header.first_mut() {
            *family = self.family;
        }
        let index = self.index();
        if rest.len() >= index.buffer_len() {
            index.emit(rest);
        }
    }
}

/// A netconf answer: its integer attributes, by `NETCONFA_*` kind.
pub type NetconfAnswer = Vec<(u16, i32)>;

/// The integer attributes (`NETCONFA_*` kind and value) of an `RTM_NEWNETCONF` answer.
fn netconf_values(payload: &[u8]) -> Result<NetconfAnswer, NetError> {
    const WHAT: &str = "read netconf";
    let Some(rest) = payload.get(NETCONF_HEADER_LEN..) else {
        return Err(bad(WHAT)("shorter than its header"));
    };
    let mut out = Vec::new();
    for nla in NlasIterator::new(rest) {
        let nla: NlaBuffer<&[u8]> = nla.map_err(bad(WHAT))?;
        if let Ok(v) = <[u8; 4]>::try_from(nla.value()) {
            out.push((nla.kind(), i32::from_ne_bytes(v)));
        }
    }
    Ok(out)
}

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
    fn request<M: NetlinkSerializable>(
        &mut self,
        msg: M,
        dump: bool,
        what: &str,
        mut each: impl FnMut(u16, &[u8]) -> Result<(), NetError>,
    ) -> Result<(), NetError> {
        self.seq = self.seq.wrapping_add(1);
        let mut req =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(msg));
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
            let (_, from) = self
                .socket
                .recv_from(&mut self.buf, 0)
                .map_err(|e| NetError::io(what, e))?;
            // Only the kernel answers. Any socket of the namespace may send here if its
            // process has CAP_NET_ADMIN over the namespace, as node root has over its node's:
            // what it sends is dropped, as netlink-proto drops it for the runtime sockets.
            if from.port_number() != 0 {
                continue;
            }
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

    /// The settings the kernel keeps for `family` in this namespace under `ifindex`
    /// ([`super::sysctl::NETCONF_ALL`], [`super::sysctl::NETCONF_DEFAULT`] or an interface's
    /// index): forwarding, rp_filter and the others of `RTM_GETNETCONF`, by `NETCONFA_*`
    /// kind. The same values as their sysctl files, without a path walk through `/proc`.
    pub fn netconf(&mut self, family: u8, ifindex: i32) -> Result<NetconfAnswer, NetError> {
        let mut out = Vec::new();
        let msg = NetconfGet { family, ifindex };
        self.request(msg, false, "read netconf", |kind, p| {
            if kind == RTM_NEWNETCONF {
                out = netconf_values(p)?;
            }
            Ok(())
        })?;
        Ok(out)
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
    fn a_netconf_request_is_a_netconfmsg_and_its_ifindex() {
        let mut req = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(NetconfGet {
                family: libc::AF_INET6 as u8,
                ifindex: -2,
            }),
        );
        req.header.flags = NLM_F_REQUEST;
        req.header.sequence_number = 7;
        req.finalize();
        let mut bytes = vec![0; req.buffer_len()];
        req.serialize(&mut bytes);
        let mut want = Vec::new();
        want.extend(28u32.to_ne_bytes()); // length
        want.extend(RTM_GETNETCONF.to_ne_bytes());
        want.extend(NLM_F_REQUEST.to_ne_bytes());
        want.extend(7u32.to_ne_bytes()); // sequence
        want.extend(0u32.to_ne_bytes()); // port
        want.extend([libc::AF_INET6 as u8, 0, 0, 0]); // struct netconfmsg, aligned
        want.extend(8u16.to_ne_bytes()); // NETCONFA_IFINDEX, 4 bytes
        want.extend(NETCONFA_IFINDEX.to_ne_bytes());
        want.extend((-2i32).to_ne_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_netconf_answer_gives_its_integer_attributes_and_bad_ones_are_errors() {
        let mut answer = vec![libc::AF_INET as u8, 0, 0, 0];
        for (kind, value) in [(1u16, -1i32), (2, 1), (3, 2)] {
            answer.extend(8u16.to_ne_bytes());
            answer.extend(kind.to_ne_bytes());
            answer.extend(value.to_ne_bytes());
        }
        // An attribute that is not a 32-bit value is skipped.
        answer.extend(5u16.to_ne_bytes());
        answer.extend(9u16.to_ne_bytes());
        answer.extend([1, 0, 0, 0]);
        assert_eq!(
            netconf_values(&answer).expect("decodes"),
            vec![(1, -1), (2, 1), (3, 2)]
        );
        assert!(netconf_values(&answer[..2]).is_err());
        // An attribute cut short is an error, never a panic.
        for cut in 0..answer.len() {
            let _ = netconf_values(&answer[..cut]);
        }
        assert!(netconf_values(&answer[..10]).is_err());
    }

    #[test]
    #[cfg_attr(not(kernel_tests), ignore = "needs root")]
    fn what_another_socket_sends_is_not_taken_for_the_kernels_answer() {
        std::thread::spawn(|| {
            // A namespace of this thread's own, which ends with it.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let mut r = Requester::open_here().expect("socket");
            let port = r.socket.bind_auto().expect("bind").port_number();
            // A link dump's first answer as the kernel would send it, with the sequence
            // number of the requester's first request, queued before the request is sent.
            let mut forged = LinkMessage::default();
            forged.header.index = 99;
            forged
                .attributes
                .push(LinkAttribute::IfName("forged0".into()));
            let mut msg = NetlinkMessage::new(
                NetlinkHeader::default(),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(forged)),
            );
            msg.header.flags = NLM_F_MULTIPART;
            msg.header.sequence_number = 1;
            msg.finalize();
            let mut bytes = vec![0; msg.buffer_len()];
            msg.serialize(&mut bytes);
            let other = Socket::new(NETLINK_ROUTE).expect("socket");
            let sent = other
                .send_to(&bytes, &SocketAddr::new(port, 0), 0)
                .expect("send to the requester");
            assert_eq!(sent, bytes.len());
            let names: Vec<String> = r
                .links()
                .expect("dump links")
                .iter()
                .flat_map(|l| &l.attributes)
                .filter_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(names, vec!["lo".to_string()]);
        })
        .join()
        .expect("the test thread");
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
