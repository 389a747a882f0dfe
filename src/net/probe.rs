//! Whether the far end of a link answers: an ARP request (IPv4) or a neighbour solicitation
//! (IPv6) sent on the interface, and the matching reply awaited. This tells a live tunnel to
//! another host from one whose far end is missing or down, without any address or program
//! on the far side beyond the interface's own address.
//!
//! The frames go out on an `AF_PACKET` socket of the interface's namespace, opened by a thread
//! that enters the namespace and leaves it again (the socket stays in the namespace for its
//! life), so the local stack's neighbour cache is neither read nor changed. The socket is
//! bound to the interface and to ARP (or IPv6) frames, with a classic BPF filter that passes
//! only ARP replies (neighbour advertisements): nothing else queues on it.
//!
//! What is sent, and why the far end answers it:
//! - IPv4: an ARP probe (RFC 5227): sender hardware address the interface's MAC, sender
//!   protocol address 0.0.0.0. Linux answers a request from 0.0.0.0 for one of its addresses
//!   with a reply to the sender's MAC (its duplicate address detection case, `arp_process`),
//!   under any `arp_ignore` up to 2, and adds no neighbour entry for the prober.
//! - IPv6: a neighbour solicitation to the target's solicited-node multicast address, from
//!   the link-local address derived from the interface's MAC ([`link_local`]), with that MAC
//!   as source link-layer address option; the far end answers with a unicast advertisement to
//!   that MAC. Not from `::`: a solicitation from the unspecified address is duplicate address
//!   detection, and would make a far end that is still verifying its address give it up. A
//!   tentative address (still in duplicate address detection) is not answered for.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::dump::Requester;
use super::link;
use super::netns::Enter;
use super::NetError;

/// How often a request is sent again while no answer came.
const RESEND: Duration = Duration::from_millis(250);
/// Room for any ARP or ICMPv6 packet we read (longer ones are cut; we read their start).
const RECV_BUF: usize = 256;

const ARP_LEN: usize = 28;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const IPV6_HEADER_LEN: usize = 40;
const NEXT_ICMPV6: u8 = 58;
const ND_SOLICIT: u8 = 135;
const ND_ADVERT: u8 = 136;
/// ICMPv6 header, reserved/flags word and target address.
const ND_LEN: usize = 24;
/// The source link-layer address option: type 1, length 1 (8 bytes), a MAC.
const SLLA_LEN: usize = 8;

/// The IPv6 link-local address an interface with MAC `mac` forms by itself (modified EUI-64,
/// RFC 4291 appendix A): `fe80::` and the MAC with `ff:fe` in its middle and the
/// universal/local bit flipped.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8..11].copy_from_slice(&mac[..3]);
    a[8] ^= 0x02;
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13..16].copy_from_slice(&mac[3..]);
    Ipv6Addr::from(a)
}

/// The solicited-node multicast address of `addr` (`ff02::1:ffXX:XXXX`, RFC 4291 2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    let mut a = [0u8; 16];
    a[0] = 0xff;
    a[1] = 0x02;
    a[11] = 0x01;
    a[12] = 0xff;
    a[13..].copy_from_slice(&o[13..]);
    Ipv6Addr::from(a)
}

/// The Ethernet address of an IPv6 multicast address (`33:33` and its last four bytes).
fn multicast_mac(addr: Ipv6Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Whether `target` answers on `iface` of namespace `ns` within `timeout`; see the module's
/// documentation for what is sent. Err when the probe cannot run: no such namespace or
/// interface, the interface down (`ENETDOWN`), no packet socket. Blocking: call it on a
/// thread that may block (not a tokio worker).
pub fn probe<N: Enter + Sync>(
    ns: N,
    iface: &str,
    target: IpAddr,
    timeout: Duration,
) -> Result<bool, NetError> {
    probe_all(&[(ns, iface, target)], timeout)
        .pop()
        .unwrap_or(Ok(false))
}

/// [`probe`] of many links at once: one socket each, the requests sent together and the
/// answers awaited together with `poll`, so probing many links takes about as long as the
/// slowest (at most `timeout`). The sockets are opened by one thread that enters each
/// namespace in turn. The results are in the order of `probes`.
pub fn probe_all<N: Enter + Sync>(
    probes: &[(N, &str, IpAddr)],
    timeout: Duration,
) -> Vec<Result<bool, NetError>> {
    let opened: Vec<Result<Prober, NetError>> = std::thread::scope(|s| {
        s.spawn(|| open_all(probes)).join().unwrap_or_else(|_| {
            probes
                .iter()
                .map(|_| {
                    Err(NetError::io(
                        "probe",
                        io::Error::other("netns thread panicked"),
                    ))
                })
                .collect()
        })
    });
    wait_all(opened, timeout)
}

/// One probe in progress: its socket and what it sends and waits for.
struct Prober {
    socket: OwnedFd,
    ifindex: i32,
    what: String,
    request: Request,
}

/// A request and how its answer is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    /// The packet after the link-layer header.
    packet: Vec<u8>,
    protocol: u16,
    dst_mac: [u8; 6],
    target: IpAddr,
}

impl Request {
    fn new(mac: [u8; 6], target: IpAddr) -> Request {
        match target {
            IpAddr::V4(t) => Request {
                packet: arp_request(mac, t).to_vec(),
                protocol: libc::ETH_P_ARP as u16,
                dst_mac: [0xff; 6],
                target,
            },
            IpAddr::V6(t) => {
                let dst = solicited_node(t);
                Request {
                    packet: neighbour_solicitation(mac, link_local(mac), dst, t),
                    protocol: libc::ETH_P_IPV6 as u16,
                    dst_mac: multicast_mac(dst),
                    target,
                }
            }
        }
    }

    /// Whether a received packet (from its network header on) answers this request.
    fn answered_by(&self, packet: &[u8]) -> bool {
        match self.target {
            IpAddr::V4(t) => is_arp_reply_from(packet, t),
            IpAddr::V6(t) => is_advertisement_of(packet, t),
        }
    }
}

/// Opens a socket per probe, each inside its namespace; a probe that cannot be made is an
/// error of its own. Runs on a thread of its own (it changes namespaces).
fn open_all<N: Enter>(probes: &[(N, &str, IpAddr)]) -> Vec<Result<Prober, NetError>> {
    probes
        .iter()
        .map(|(ns, iface, target)| {
            ns.enter()?;
            open_here(iface, *target)
        })
        .collect()
}

/// In the interface's namespace: finds the interface and opens its socket.
fn open_here(iface: &str, target: IpAddr) -> Result<Prober, NetError> {
    let what = format!("probe {target} on {iface}");
    let links = Requester::open_here()?.links()?;
    let Some(msg) = links.iter().find(|m| link::name_of(m) == Some(iface)) else {
        return Err(NetError::io(
            what,
            io::Error::from_raw_os_error(libc::ENODEV),
        ));
    };
    if !link::is_up(msg) {
        return Err(NetError::io(
            what,
            io::Error::from_raw_os_error(libc::ENETDOWN),
        ));
    }
    let Some(mac) = link::mac_of(msg) else {
        return Err(NetError::io(
            what,
            io::Error::new(io::ErrorKind::Unsupported, "the interface has no MAC"),
        ));
    };
    let ifindex = i32::try_from(msg.header.index)
        .map_err(|_| NetError::io(&what, io::Error::from_raw_os_error(libc::ENODEV)))?;
    let request = Request::new(mac, target);
    let socket = packet_socket(ifindex, request.protocol, filter(target))
        .map_err(|e| NetError::io(format!("{what}: open a packet socket"), e))?;
    Ok(Prober {
        socket,
        ifindex,
        what,
        request,
    })
}

/// Sends every request, again every [`RESEND`], and reads answers until each probe is
/// answered, failed, or `timeout` is over.
fn wait_all(
    opened: Vec<Result<Prober, NetError>>,
    timeout: Duration,
) -> Vec<Result<bool, NetError>> {
    let deadline = Instant::now() + timeout;
    let mut results: Vec<Option<Result<bool, NetError>>> = Vec::with_capacity(opened.len());
    let mut live: Vec<(usize, Prober)> = Vec::new();
    for (i, p) in opened.into_iter().enumerate() {
        match p {
            Ok(p) => {
                results.push(None);
                live.push((i, p));
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    let mut buf = [0u8; RECV_BUF];
    let mut next_send = Instant::now();
    while !live.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_send {
            live.retain(|(i, p)| match send(p) {
                Ok(()) => true,
                Err(e) => {
                    results[*i] = Some(Err(NetError::io(&p.what, e)));
                    false
                }
            });
            next_send = now + RESEND;
        }
        let wait = next_send
            .min(deadline)
            .saturating_duration_since(Instant::now());
        let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = live
                .iter()
                .map(|(_, p)| PollFd::new(p.socket.as_fd(), PollFlags::POLLIN))
                .collect();
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect(),
                Err(e) => {
                    for (i, p) in live.drain(..) {
                        results[i] = Some(Err(NetError::io(&p.what, e.into())));
                    }
                    break;
                }
            }
        };
        let mut k = 0;
        live.retain(|(i, p)| {
            let was_ready = ready.get(k).copied().unwrap_or(false);
            k += 1;
            if !was_ready {
                return true;
            }
            match drain(p, &mut buf) {
                Ok(false) => true,
                Ok(true) => {
                    results[*i] = Some(Ok(true));
                    false
                }
                Err(e) => {
                    results[*i] = Some(Err(NetError::io(&p.what, e)));
                    false
                }
            }
        });
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Ok(false)))
        .collect()
}

/// Sends a probe's request; a full queue is no error (the next round sends again).
fn send(p: &Prober) -> io::Result<()> {
    let mut addr = sockaddr_ll(p.ifindex, p.request.protocol);
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&p.request.dst_mac);
    let packet = &p.request.packet;
    // SAFETY: `packet` and `addr` are live for the call and their sizes are given with them.
    let n = unsafe {
        libc::sendto(
            p.socket.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Reads every packet waiting on a probe's socket; whether one of them is the answer.
fn drain(p: &Prober, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        // SAFETY: `buf` is a live, writable buffer of the length given.
        let n = unsafe { libc::recv(p.socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(false),
                io::ErrorKind::Interrupted => continue,
                _ => Err(e),
            };
        }
        let len = usize::try_from(n).unwrap_or(0).min(buf.len());
        if p.request.answered_by(&buf[..len]) {
            return Ok(true);
        }
    }
}

fn sockaddr_ll(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

/// A non-blocking packet socket of the calling thread's namespace, without link-layer
/// headers (`SOCK_DGRAM`: the kernel adds the interface's own MAC as source), with `filter`
/// attached, bound to `protocol` on interface `ifindex`. It is made with protocol 0, which
/// receives nothing, so that no frame reaches it before the filter and the binding.
fn packet_socket(
    ifindex: i32,
    protocol: u16,
    filter: Vec<libc::sock_filter>,
) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; the result is checked before it is owned.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor just returned by socket() and owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut filter = filter;
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `filter`, both live for the call (the kernel copies the
    // program); the option's size is given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let addr = sockaddr_ll(ifindex, protocol);
    // SAFETY: `addr` is a valid sockaddr_ll that outlives the call, and its size is given.
    let r = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// Classic BPF over the packet from its network header on (a `SOCK_DGRAM` packet socket):
/// passes ARP replies (IPv4 target) or ICMPv6 neighbour advertisements (IPv6 target), drops
/// the rest.
fn filter(target: IpAddr) -> Vec<libc::sock_filter> {
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    match target {
        IpAddr::V4(_) => vec![
            op(LD_H_ABS, 0, 0, 6),
            op(JEQ_K, 0, 1, u32::from(ARP_REPLY)),
            op(RET_K, 0, 0, RECV_BUF as u32),
            op(RET_K, 0, 0, 0),
        ],
        IpAddr::V6(_) => vec![
            op(LD_B_ABS, 0, 0, 6),
            op(JEQ_K, 0, 3, u32::from(NEXT_ICMPV6)),
            op(LD_B_ABS, 0, 0, IPV6_HEADER_LEN as u32),
            op(JEQ_K, 0, 1, u32::from(ND_ADVERT)),
            op(RET_K, 0, 0, RECV_BUF as u32),
            op(RET_K, 0, 0, 0),
        ],
    }
}

/// An ARP probe for `target` from `mac` (RFC 5227: sender protocol address 0.0.0.0).
fn arp_request(mac: [u8; 6], target: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut p = [0u8; ARP_LEN];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&(libc::ETH_P_IP as u16).to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    p[8..14].copy_from_slice(&mac);
    // Sender protocol address 0.0.0.0 (p[14..18]) and target hardware address unknown
    // (p[18..24]).
    p[24..28].copy_from_slice(&target.octets());
    p
}

/// Whether `packet` is an ARP reply (Ethernet, IPv4) sent by `target`.
fn is_arp_reply_from(packet: &[u8], target: Ipv4Addr) -> bool {
    packet.len() >= ARP_LEN
        && packet[0..2] == 1u16.to_be_bytes()
        && packet[2..4] == (libc::ETH_P_IP as u16).to_be_bytes()
        && packet[4] == 6
        && packet[5] == 4
        && packet[6..8] == ARP_REPLY.to_be_bytes()
        && packet[14..18] == target.octets()
}

/// A neighbour solicitation for `target` from `src` (with `mac` as source link-layer
/// address) to `dst`, IPv6 header included.
fn neighbour_solicitation(mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let payload_len = ND_LEN + SLLA_LEN;
    let mut p = Vec::with_capacity(IPV6_HEADER_LEN + payload_len);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(payload_len as u16).to_be_bytes());
    p.push(NEXT_ICMPV6);
    p.push(255); // hop limit: neighbour discovery requires 255 (RFC 4861 7.1.1)
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[ND_SOLICIT, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&[1, 1]);
    p.extend_from_slice(&mac);
    let sum = icmpv6_checksum(src, dst, &p[IPV6_HEADER_LEN..]);
    p[IPV6_HEADER_LEN + 2..IPV6_HEADER_LEN + 4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// Whether `packet` (IPv6 header on) is a valid neighbour advertisement for `target`: hop
/// limit 255, ICMPv6 without extension headers, code 0, checksum right, target `target`.
fn is_advertisement_of(packet: &[u8], target: Ipv6Addr) -> bool {
    let Some(icmp) = packet.get(IPV6_HEADER_LEN..) else {
        return false;
    };
    let (Some(src), Some(dst)) = (
        packet.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok()),
        packet
            .get(24..40)
            .and_then(|b| <[u8; 16]>::try_from(b).ok()),
    ) else {
        return false;
    };
    let declared = packet
        .get(4..6)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let Some(icmp) = icmp.get(..declared) else {
        return false;
    };
    packet[0] >> 4 == 6
        && packet[6] == NEXT_ICMPV6
        && packet[7] == 255
        && icmp.len() >= ND_LEN
        && icmp[0] == ND_ADVERT
        && icmp[1] == 0
        && icmp[8..24] == target.octets()
        && icmpv6_checksum(Ipv6Addr::from(src), Ipv6Addr::from(dst), icmp) == 0
}

/// The ICMPv6 checksum (RFC 4443 2.3) of `icmp` between `src` and `dst`: over the
/// pseudo-header (addresses, length, next header) and the message; 0 over a message that
/// carries a correct one.
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            let hi = c.first().copied().unwrap_or(0);
            let lo = c.get(1).copied().unwrap_or(0);
            sum += u64::from(u16::from_be_bytes([hi, lo]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    const MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

    #[test]
    fn link_local_is_modified_eui64() {
        // The example of RFC 4291 appendix A, and a locally administered MAC.
        assert_eq!(
            link_local([0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e]),
            "fe80::21b:21ff:fe3c:4d5e".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            link_local(MAC),
            "fe80::42:acff:fe11:2".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn solicited_node_keeps_the_last_24_bits() {
        let a: Ipv6Addr = "2001:db8::aabb:ccdd".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ffbb:ccdd".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            [0x33, 0x33, 0xff, 0xbb, 0xcc, 0xdd]
        );
    }

    #[test]
    fn arp_probe_has_an_unspecified_sender() {
        let p = arp_request(MAC, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(
            p,
            [
                0, 1, 8, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
                0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 0, 0, 0, 0, // sender
                0, 0, 0, 0, 0, 0, 192, 0, 2, 2, // target
            ]
        );
        assert!(
            !is_arp_reply_from(&p, Ipv4Addr::new(192, 0, 2, 2)),
            "a request"
        );
    }

    #[test]
    fn arp_reply_is_matched_by_its_sender_address() {
        // What Linux answers an ARP probe: sender the target, target our MAC and 0.0.0.0.
        let mut reply = [0u8; ARP_LEN];
        reply[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        reply[8..14].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
        reply[14..18].copy_from_slice(&[192, 0, 2, 2]);
        reply[18..24].copy_from_slice(&MAC);
        assert!(is_arp_reply_from(&reply, Ipv4Addr::new(192, 0, 2, 2)));
        assert!(!is_arp_reply_from(&reply, Ipv4Addr::new(192, 0, 2, 3)));
        assert!(!is_arp_reply_from(
            &reply[..20],
            Ipv4Addr::new(192, 0, 2, 2)
        ));
        // Padded to the Ethernet minimum, as it arrives.
        let mut padded = reply.to_vec();
        padded.resize(46, 0);
        assert!(is_arp_reply_from(&padded, Ipv4Addr::new(192, 0, 2, 2)));
    }

    #[test]
    fn neighbour_solicitation_is_well_formed() {
        let target: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let src = link_local(MAC);
        let dst = solicited_node(target);
        let p = neighbour_solicitation(MAC, src, dst, target);
        assert_eq!(p.len(), 72);
        assert_eq!(&p[..8], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&p[8..24], &src.octets());
        assert_eq!(&p[24..40], &dst.octets());
        assert_eq!(&p[40..42], &[135, 0]);
        assert_eq!(&p[48..64], &target.octets());
        assert_eq!(&p[64..72], &[1, 1, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(icmpv6_checksum(src, dst, &p[40..]), 0, "checksum verifies");
        assert!(!is_advertisement_of(&p, target), "a solicitation");
    }

    /// An advertisement for `target` from `src` to `dst`, checksum filled in.
    fn advertisement(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
        let mut p = neighbour_solicitation([0x02, 0, 0, 0, 0, 9], src, dst, target);
        p[40] = ND_ADVERT;
        p[41] = 0;
        p[42] = 0;
        p[43] = 0;
        p[44] = 0x60; // solicited, override
        p[104 - 40] = 2; // target link-layer address option
        let sum = icmpv6_checksum(src, dst, &p[40..]);
        p[42..44].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn advertisement_is_matched_by_target_and_checksum() {
        let target: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let ours = link_local(MAC);
        let a = advertisement(target, ours, target);
        assert!(is_advertisement_of(&a, target));
        assert!(!is_advertisement_of(&a, "2001:db8::3".parse().unwrap()));
        let mut bad = a.clone();
        bad[60] ^= 1;
        assert!(!is_advertisement_of(&bad, target), "checksum");
        let mut hop = a.clone();
        hop[7] = 64;
        assert!(!is_advertisement_of(&hop, target), "hop limit");
        assert!(!is_advertisement_of(&a[..50], target), "truncated");
        let mut padded = a.clone();
        padded.extend_from_slice(&[0; 6]);
        assert!(is_advertisement_of(&padded, target), "trailing padding");
    }

    #[test]
    fn filters_end_in_a_verdict_and_jump_within() {
        let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
        let ret = (libc::BPF_RET | libc::BPF_K) as u16;
        for t in ["192.0.2.1", "2001:db8::1"] {
            let f = filter(t.parse().unwrap());
            assert_eq!(f.last().map(|i| i.code), Some(ret), "{t}");
            for (i, insn) in f.iter().enumerate().filter(|(_, i)| i.code == jeq) {
                for j in [insn.jt, insn.jf] {
                    assert!(i + 1 + usize::from(j) < f.len(), "{t}: jump out at {i}");
                }
            }
        }
    }

    #[test]
    fn a_probe_that_cannot_open_is_an_error_of_its_own() {
        // A namespace that cannot be entered: a regular file.
        let f = File::open("/proc/self/status").unwrap();
        let r = probe_all(
            &[(&f, "eth0", "192.0.2.1".parse().unwrap())],
            Duration::from_millis(10),
        );
        assert_eq!(r.len(), 1);
        assert!(r[0].is_err());
    }
}
