//! ICMP echo from inside a node's network namespace, without a `ping` program in the node.
//!
//! A raw ICMP (IPv4) or ICMPv6 socket is opened inside the namespace, by a thread that enters
//! it and leaves again; the socket stays in that namespace for its life, so the echo itself
//! runs on the caller's thread. The kernel's filter on the socket (`ICMP_FILTER`,
//! `ICMP6_FILTER`) passes only echo replies, destination unreachable and time exceeded; of
//! those, only the ones for our own requests count: a reply carries our identifier, one of
//! our sequence numbers and our cookie (the first bytes of the payload, which other pingers
//! in the namespace cannot guess), an error quotes our request to `dst`.
//!
//! Link-local IPv6 targets (`fe80::/10`) need an interface to send on, which [`ping`] does
//! not take: they are refused as invalid input.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::net::{netns, NetError};

/// What one [`ping`] saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Echo {
    pub target: IpAddr,
    /// Echo requests the kernel took.
    pub sent: u32,
    /// Distinct requests answered in time (a duplicate reply counts once).
    pub received: u32,
    /// Round trip of the first reply.
    pub rtt: Option<Duration>,
    /// The first error about our requests: an ICMP error (`destination unreachable (net
    /// unreachable) from 10.0.12.2`) or a request the kernel refused to send (`cannot send
    /// to 198.51.100.1: Network is unreachable (os error 101)`, when there is no route).
    pub error: Option<String>,
}

/// Sends `count` echo requests to `dst` from inside the namespace `netns` (an open netns
/// file), `interval` apart, from `source` if given (one of the node's addresses), and waits
/// up to `timeout` in all, or until every request is answered or refused. Ok even when
/// nothing came back (`received` 0); Err only when the probe itself cannot run (no
/// namespace, no raw socket, `source` not the node's, a link-local or mixed-family target, a
/// `count` above 65535). Blocking: call it on a blocking thread.
pub fn ping(
    netns: &File,
    dst: IpAddr,
    source: Option<IpAddr>,
    count: u32,
    interval: Duration,
    timeout: Duration,
) -> io::Result<Echo> {
    check_target(dst, source, count)?;
    let socket = open_in(netns, dst.is_ipv6())?;
    if let Some(src) = source {
        bind(&socket, src)?;
    }
    let prober = Prober {
        socket,
        matcher: Matcher::new(dst),
    };
    prober.run(count, interval, timeout)
}

fn check_target(dst: IpAddr, source: Option<IpAddr>, count: u32) -> io::Result<()> {
    let invalid = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
    if let IpAddr::V6(v6) = dst {
        if v6.is_unicast_link_local() {
            return invalid(format!("ping {dst}: link-local targets are not supported"));
        }
    }
    if source.is_some_and(|s| s.is_ipv4() != dst.is_ipv4()) {
        return invalid(format!("ping {dst}: source is of the other family"));
    }
    if count > u32::from(u16::MAX) {
        return invalid(format!("ping {dst}: at most {} requests", u16::MAX));
    }
    Ok(())
}

/// `ICMP_FILTER` of `linux/icmp.h`, at level `SOL_RAW`: a bit set per ICMP type to drop.
const ICMP_FILTER: libc::c_int = 1;
/// `ICMP6_FILTER` of `linux/icmpv6.h`, at level `IPPROTO_ICMPV6`: 256 bits, one per type
/// to drop.
const ICMP6_FILTER: libc::c_int = 1;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const UNREACHABLE_V4: u8 = 3;
const TIME_EXCEEDED_V4: u8 = 11;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const UNREACHABLE_V6: u8 = 1;
const TIME_EXCEEDED_V6: u8 = 3;
/// The types a socket lets through, by family (IPv4, IPv6).
const PASSED: [[u8; 3]; 2] = [
    [ECHO_REPLY_V4, UNREACHABLE_V4, TIME_EXCEEDED_V4],
    [ECHO_REPLY_V6, UNREACHABLE_V6, TIME_EXCEEDED_V6],
];

/// Bytes of payload after the ICMP header, as `ping` sends by default; the first 8 are the
/// cookie.
const PAYLOAD_LEN: usize = 56;
/// Big enough for any ICMP error the kernel sends (at most 576 bytes for IPv4, 1280 for
/// IPv6) and for our replies.
const RECV_BUF: usize = 2048;

/// Opens the raw socket inside `netns`, on a thread that enters the namespace and leaves it
/// again, and sets its ICMP filter.
fn open_in(netns: &File, v6: bool) -> io::Result<OwnedFd> {
    let mut opened = std::thread::scope(|s| {
        s.spawn(|| {
            netns::enter_each(&[netns], |_| {
                raw_socket(v6).map_err(|e| NetError::io("open a raw ICMP socket", e))
            })
        })
        .join()
    })
    .map_err(|_| io::Error::other("netns thread panicked"))?
    .map_err(to_io)?;
    let socket = opened
        .pop()
        .ok_or_else(|| io::Error::other("no socket from the netns thread"))?;
    set_filter(&socket, v6)?;
    Ok(socket)
}

/// A `NetError` as an `io::Error` of the same kind, its context kept in the message.
fn to_io(e: NetError) -> io::Error {
    let kind = e.errno().map_or(io::ErrorKind::Other, |n| {
        io::Error::from_raw_os_error(n).kind()
    });
    io::Error::new(kind, e.to_string())
}

fn raw_socket(v6: bool) -> io::Result<OwnedFd> {
    let (domain, protocol) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Lets only echo replies, destination unreachable and time exceeded through. For ICMPv6
/// the kernel computes and checks checksums on a raw socket by itself.
fn set_filter(socket: &OwnedFd, v6: bool) -> io::Result<()> {
    if v6 {
        let mut blocked = [u32::MAX; 8];
        for t in PASSED[1] {
            blocked[usize::from(t >> 5)] &= !(1 << (t & 31));
        }
        setsockopt(socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &blocked)
    } else {
        let mut blocked = u32::MAX;
        for t in PASSED[0] {
            blocked &= !(1 << t);
        }
        setsockopt(socket, libc::SOL_RAW, ICMP_FILTER, &blocked)
    }
}

fn setsockopt<T>(
    socket: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to `len` readable bytes for the duration of the call; the fd is
    // open (borrowed from an `OwnedFd`).
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A socket address for bind(2) and sendto(2).
enum SockAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl SockAddr {
    fn new(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => SockAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                sin_zero: [0; 8],
            }),
            IpAddr::V6(v6) => SockAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                sin6_scope_id: 0,
            }),
        }
    }

    fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            SockAddr::V4(a) => (
                std::ptr::from_ref(a).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            SockAddr::V6(a) => (
                std::ptr::from_ref(a).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

fn bind(socket: &OwnedFd, source: IpAddr) -> io::Result<()> {
    let addr = SockAddr::new(source);
    let (ptr, len) = addr.as_ptr();
    // SAFETY: `ptr` points to a socket address of `len` bytes that outlives the call.
    if unsafe { libc::bind(socket.as_raw_fd(), ptr, len) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind to {source}: {e}")));
    }
    Ok(())
}

/// Which requests are ours: the identifier and cookie of one [`ping`], and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Matcher {
    dst: IpAddr,
    id: u16,
    cookie: [u8; 8],
}

/// What a received packet means for our echo.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Reply { seq: u16 },
    Error { seq: u16, message: String },
}

impl Matcher {
    /// A new identifier and cookie: random per process (std's hash keys come from the OS),
    /// and different for each call.
    fn new(dst: IpAddr) -> Self {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        let r = h.finish();
        Matcher {
            dst,
            id: (r >> 48) as u16,
            cookie: r.to_be_bytes(),
        }
    }

    /// An echo request with sequence number `seq`. The IPv4 checksum is ours to compute; the
    /// kernel fills in the ICMPv6 one (it covers a pseudo-header of addresses the kernel
    /// picks).
    fn request(&self, seq: u16) -> Vec<u8> {
        let kind = if self.dst.is_ipv6() {
            ECHO_REQUEST_V6
        } else {
            ECHO_REQUEST_V4
        };
        let mut p = Vec::with_capacity(8 + PAYLOAD_LEN);
        p.extend_from_slice(&[kind, 0, 0, 0]);
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&self.cookie);
        p.extend((0..PAYLOAD_LEN - self.cookie.len()).map(|i| i as u8));
        if self.dst.is_ipv4() {
            let sum = checksum(&p);
            p[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        p
    }

    /// What a packet from a raw socket of our family means: for IPv4 the packet starts with
    /// the IP header, for IPv6 with the ICMPv6 header. `from` is the sender's address.
    fn classify(&self, packet: &[u8], from: Option<IpAddr>) -> Option<Event> {
        if self.dst.is_ipv6() {
            return self.classify_icmp(packet, from?);
        }
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        if ihl < 20 || *packet.get(9)? != libc::IPPROTO_ICMP as u8 {
            return None;
        }
        let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
        self.classify_icmp(packet.get(ihl..)?, IpAddr::V4(Ipv4Addr::from(src)))
    }

    fn classify_icmp(&self, icmp: &[u8], from: IpAddr) -> Option<Event> {
        let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
        let v6 = self.dst.is_ipv6();
        let reply = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        if kind == reply {
            if !v6 && checksum(icmp) != 0 {
                return None;
            }
            let seq = self.ours(icmp, false)?;
            return Some(Event::Reply { seq });
        }
        let what = error_name(v6, kind, code)?;
        let seq = self.quoted(icmp.get(8..)?)?;
        Some(Event::Error {
            seq,
            message: format!("{what} from {from}"),
        })
    }

    /// The sequence number of an ICMP echo message of ours (`request`: our request, quoted in
    /// an error, else a reply). The cookie is checked if the message is long enough to hold
    /// it (an IPv4 error need quote only 8 bytes of our request).
    fn ours(&self, icmp: &[u8], request: bool) -> Option<u16> {
        let id = u16::from_be_bytes(icmp.get(4..6)?.try_into().ok()?);
        let seq = u16::from_be_bytes(icmp.get(6..8)?.try_into().ok()?);
        let cookie = icmp.get(8..16);
        let cookie_ok = match cookie {
            Some(c) => c == self.cookie,
            None => request,
        };
        (id == self.id && cookie_ok).then_some(seq)
    }

    /// The sequence number of our request quoted in an ICMP error (the offending packet,
    /// from its IP header on), if it is one of ours to `dst`.
    fn quoted(&self, inner: &[u8]) -> Option<u16> {
        let (icmp, dst, request) = match self.dst {
            IpAddr::V4(_) => {
                let ihl = usize::from(inner.first()? & 0x0f) * 4;
                if ihl < 20 || *inner.get(9)? != libc::IPPROTO_ICMP as u8 {
                    return None;
                }
                let dst: [u8; 4] = inner.get(16..20)?.try_into().ok()?;
                (inner.get(ihl..)?, IpAddr::V4(dst.into()), ECHO_REQUEST_V4)
            }
            IpAddr::V6(_) => {
                // No extension headers: we send none.
                if *inner.get(6)? != libc::IPPROTO_ICMPV6 as u8 {
                    return None;
                }
                let dst: [u8; 16] = inner.get(24..40)?.try_into().ok()?;
                (
                    inner.get(40..)?,
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    ECHO_REQUEST_V6,
                )
            }
        };
        if dst != self.dst || *icmp.first()? != request {
            return None;
        }
        self.ours(icmp, true)
    }
}

/// The Internet checksum (RFC 1071) of `data`; 0 over a message that carries a correct one.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// How an ICMP error of type `kind` and `code` is named; None for any other type.
fn error_name(v6: bool, kind: u8, code: u8) -> Option<String> {
    let (what, why) = match (v6, kind) {
        (false, UNREACHABLE_V4) => (
            "destination unreachable",
            match code {
                0 => "net unreachable",
                1 => "host unreachable",
                2 => "protocol unreachable",
                3 => "port unreachable",
                4 => "fragmentation needed",
                5 => "source route failed",
                9 | 10 | 13 => "administratively prohibited",
                _ => "",
            },
        ),
        (false, TIME_EXCEEDED_V4) => (
            "time exceeded",
            match code {
                0 => "ttl exceeded in transit",
                1 => "fragment reassembly time exceeded",
                _ => "",
            },
        ),
        (true, UNREACHABLE_V6) => (
            "destination unreachable",
            match code {
                0 => "no route",
                1 => "administratively prohibited",
                2 => "beyond scope of source address",
                3 => "address unreachable",
                4 => "port unreachable",
                5 => "source address failed policy",
                6 => "reject route",
                _ => "",
            },
        ),
        (true, TIME_EXCEEDED_V6) => (
            "time exceeded",
            match code {
                0 => "hop limit exceeded in transit",
                1 => "fragment reassembly time exceeded",
                _ => "",
            },
        ),
        _ => return None,
    };
    Some(if why.is_empty() {
        format!("{what} (code {code})")
    } else {
        format!("{what} ({why})")
    })
}

/// The socket of one [`ping`] and what counts as ours.
struct Prober {
    socket: OwnedFd,
    matcher: Matcher,
}

/// Where each request stands, by sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Sent(Instant),
    /// Answered, or refused by an ICMP error: nothing more to wait for.
    Settled,
}

impl Prober {
    fn run(&self, count: u32, interval: Duration, timeout: Duration) -> io::Result<Echo> {
        let dst = self.matcher.dst;
        let mut echo = Echo {
            target: dst,
            sent: 0,
            received: 0,
            rtt: None,
            error: None,
        };
        let start = Instant::now();
        let deadline = later(start, timeout);
        let mut requests: Vec<Request> = Vec::with_capacity(count as usize);
        // Sending ends when all are sent, or when the kernel refuses one (no route).
        let mut sending = count > 0;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let next = later(start, interval.saturating_mul(requests.len() as u32));
            if sending && now >= next {
                let seq = requests.len() as u16;
                match self.send(&self.matcher.request(seq)) {
                    Ok(()) => {
                        echo.sent += 1;
                        requests.push(Request::Sent(Instant::now()));
                    }
                    Err(e) if refused(&e) => {
                        echo.error
                            .get_or_insert(format!("cannot send to {dst}: {e}"));
                        sending = false;
                    }
                    Err(e) => return Err(e),
                }
                sending &= requests.len() < count as usize;
                continue;
            }
            if !sending && requests.iter().all(|r| *r == Request::Settled) {
                break;
            }
            let wake = if sending {
                next.min(deadline)
            } else {
                deadline
            };
            if !self.wait(wake.saturating_duration_since(now))? {
                continue;
            }
            while let Some((len, from)) = self.recv(&mut buf)? {
                let Some(event) = self.matcher.classify(&buf[..len], from) else {
                    continue;
                };
                let seq = match &event {
                    Event::Reply { seq } | Event::Error { seq, .. } => usize::from(*seq),
                };
                let Some(Request::Sent(at)) = requests.get(seq).copied() else {
                    continue;
                };
                requests[seq] = Request::Settled;
                match event {
                    Event::Reply { .. } => {
                        echo.received += 1;
                        echo.rtt.get_or_insert(at.elapsed());
                    }
                    Event::Error { message, .. } => {
                        echo.error.get_or_insert(message);
                    }
                }
            }
        }
        Ok(echo)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        let addr = SockAddr::new(self.matcher.dst);
        let (ptr, len) = addr.as_ptr();
        loop {
            // SAFETY: `packet` is readable for its length and `ptr` points to a socket
            // address of `len` bytes; both outlive the call.
            let n = unsafe {
                libc::sendto(
                    self.socket.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    ptr,
                    len,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Waits until a packet can be read or `for_` has passed; whether one can.
    fn wait(&self, for_: Duration) -> io::Result<bool> {
        let ms = for_.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut fds = [libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is one valid pollfd, borrowed mutably for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(n > 0)
    }

    /// One packet, without blocking: its length and, for IPv6, the sender (an IPv4 packet
    /// names its sender in its IP header); None when there is none left.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Option<IpAddr>)>> {
        let mut from = libc::sockaddr_in6 {
            sin6_family: 0,
            sin6_port: 0,
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr { s6_addr: [0; 16] },
            sin6_scope_id: 0,
        };
        let mut from_len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        loop {
            // SAFETY: `buf` is writable for its length; `from` is a sockaddr_in6 of
            // `from_len` bytes (the kernel writes at most that many); all outlive the call.
            let n = unsafe {
                libc::recvfrom(
                    self.socket.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    std::ptr::from_mut(&mut from).cast(),
                    &mut from_len,
                )
            };
            if n >= 0 {
                let sender = (i32::from(from.sin6_family) == libc::AF_INET6)
                    .then(|| IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr)));
                return Ok(Some((n as usize, sender)));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(e),
            }
        }
    }
}

/// `at + by`, or a day after `at` where that overflows.
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .or_else(|| at.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(at)
}

/// Whether the kernel refused to send for a reason that is the check's answer, not a fault
/// of the probe: no route, an unreachable or prohibit route, a down interface.
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EACCES | libc::EPERM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(dst: &str) -> Matcher {
        Matcher {
            dst: dst.parse().unwrap(),
            id: 0x1234,
            cookie: *b"cookie!!",
        }
    }

    /// An IPv4 header of `len` bytes in all, protocol ICMP, from `src` to `dst`.
    fn ipv4_header(src: [u8; 4], dst: [u8; 4], payload: usize) -> Vec<u8> {
        let total = (20 + payload) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    /// `request` turned into the reply the target sends.
    fn reply_to(request: &[u8], v6: bool) -> Vec<u8> {
        let mut r = request.to_vec();
        r[0] = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        r[2..4].copy_from_slice(&[0, 0]);
        if !v6 {
            let sum = checksum(&r);
            r[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        r
    }

    #[test]
    fn checksum_matches_rfc_1071_examples() {
        // RFC 1071 section 3: the one's complement sum of these bytes is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        // An odd length is padded with a zero byte.
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn an_ipv4_request_carries_id_seq_cookie_and_a_valid_checksum() {
        let m = matcher("10.0.0.2");
        let p = m.request(7);
        assert_eq!(p.len(), 8 + PAYLOAD_LEN);
        assert_eq!(&p[..2], &[ECHO_REQUEST_V4, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&p[8..16], b"cookie!!");
        assert_eq!(
            checksum(&p),
            0,
            "the checksum field makes the sum come out 0"
        );
    }

    #[test]
    fn an_ipv6_request_leaves_the_checksum_to_the_kernel() {
        let p = matcher("2001:db8::2").request(1);
        assert_eq!(&p[..4], &[ECHO_REQUEST_V6, 0, 0, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 1]);
    }

    #[test]
    fn an_ipv4_reply_of_ours_is_matched_by_id_seq_and_cookie() {
        let m = matcher("10.0.0.2");
        let reply = reply_to(&m.request(3), false);
        let mut packet = ipv4_header([10, 0, 0, 2], [10, 0, 0, 1], reply.len());
        packet.extend_from_slice(&reply);
        assert_eq!(m.classify(&packet, None), Some(Event::Reply { seq: 3 }));

        let other = Matcher {
            id: 0x4321,
            ..m.clone()
        };
        assert_eq!(other.classify(&packet, None), None, "another identifier");
        let guessed = Matcher {
            cookie: *b"another!",
            ..m.clone()
        };
        assert_eq!(guessed.classify(&packet, None), None, "another cookie");
        let mut corrupt = packet.clone();
        corrupt[30] ^= 0xff;
        assert_eq!(m.classify(&corrupt, None), None, "a bad checksum");
        let mut request = packet.clone();
        request[20] = ECHO_REQUEST_V4;
        assert_eq!(
            m.classify(&request, None),
            None,
            "our own request looped back"
        );
    }

    #[test]
    fn an_ipv4_header_with_options_is_skipped_by_its_length() {
        let m = matcher("10.0.0.2");
        let reply = reply_to(&m.request(0), false);
        let mut packet = ipv4_header([10, 0, 0, 2], [10, 0, 0, 1], reply.len() + 4);
        packet[0] = 0x46;
        packet.extend_from_slice(&[1, 1, 1, 0]); // NOPs, end of options
        packet.extend_from_slice(&reply);
        assert_eq!(m.classify(&packet, None), Some(Event::Reply { seq: 0 }));
    }

    #[test]
    fn an_ipv4_unreachable_quoting_our_request_names_its_sender() {
        let m = matcher("203.0.113.1");
        let request = m.request(2);
        // The router quotes our IP header and the first 8 bytes of our request.
        let mut quoted = ipv4_header([10, 1, 0, 10], [203, 0, 113, 1], request.len());
        quoted.extend_from_slice(&request[..8]);
        let mut icmp = vec![UNREACHABLE_V4, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted);
        let mut packet = ipv4_header([10, 1, 0, 1], [10, 1, 0, 10], icmp.len());
        packet.extend_from_slice(&icmp);
        assert_eq!(
            m.classify(&packet, None),
            Some(Event::Error {
                seq: 2,
                message: "destination unreachable (net unreachable) from 10.1.0.1".into()
            })
        );
        // The same error about a request to another address is not ours.
        let elsewhere = matcher("203.0.113.9");
        assert_eq!(elsewhere.classify(&packet, None), None);
        // Nor a quoted request with a wrong cookie, when the cookie is quoted.
        let mut long = ipv4_header([10, 1, 0, 10], [203, 0, 113, 1], request.len());
        long.extend_from_slice(&request);
        let mut icmp = vec![TIME_EXCEEDED_V4, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&long);
        let mut packet = ipv4_header([10, 0, 12, 2], [10, 1, 0, 10], icmp.len());
        packet.extend_from_slice(&icmp);
        assert_eq!(
            m.classify(&packet, None),
            Some(Event::Error {
                seq: 2,
                message: "time exceeded (ttl exceeded in transit) from 10.0.12.2".into()
            })
        );
        let guessed = Matcher {
            cookie: *b"another!",
            ..m
        };
        assert_eq!(guessed.classify(&packet, None), None);
    }

    #[test]
    fn ipv6_replies_and_errors_are_matched_without_an_ip_header() {
        let m = matcher("2001:db8:9::1");
        let from: IpAddr = "2001:db8:1::1".parse().unwrap();
        let request = m.request(5);
        let reply = reply_to(&request, true);
        assert_eq!(
            m.classify(&reply, Some(from)),
            Some(Event::Reply { seq: 5 })
        );
        assert_eq!(m.classify(&reply, None), None, "no sender");

        let mut quoted = vec![0x60, 0, 0, 0, 0, 64, libc::IPPROTO_ICMPV6 as u8, 64];
        quoted.extend_from_slice(&"2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(&"2001:db8:9::1".parse::<Ipv6Addr>().unwrap().octets());
        quoted.extend_from_slice(&request);
        let mut error = vec![UNREACHABLE_V6, 0, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&quoted);
        assert_eq!(
            m.classify(&error, Some(from)),
            Some(Event::Error {
                seq: 5,
                message: "destination unreachable (no route) from 2001:db8:1::1".into()
            })
        );
        let mut truncated = error.clone();
        truncated.truncate(8 + 40 + 4);
        assert_eq!(m.classify(&truncated, Some(from)), None, "no id quoted");
    }

    #[test]
    fn other_icmp_types_and_short_packets_are_ignored() {
        let m = matcher("10.0.0.2");
        let mut redirect = ipv4_header([10, 0, 0, 1], [10, 0, 0, 9], 8);
        redirect.extend_from_slice(&[5, 1, 0, 0, 10, 0, 0, 3]);
        assert_eq!(m.classify(&redirect, None), None);
        let full = {
            let reply = reply_to(&m.request(1), false);
            let mut p = ipv4_header([10, 0, 0, 2], [10, 0, 0, 1], reply.len());
            p.extend_from_slice(&reply);
            p
        };
        for cut in 0..full.len() {
            assert_eq!(m.classify(&full[..cut], None), None, "cut at {cut}");
        }
    }

    #[test]
    fn error_names_say_type_and_code() {
        assert_eq!(
            error_name(false, 3, 1).as_deref(),
            Some("destination unreachable (host unreachable)")
        );
        assert_eq!(
            error_name(true, 1, 3).as_deref(),
            Some("destination unreachable (address unreachable)")
        );
        assert_eq!(
            error_name(true, 3, 0).as_deref(),
            Some("time exceeded (hop limit exceeded in transit)")
        );
        assert_eq!(
            error_name(false, 3, 99).as_deref(),
            Some("destination unreachable (code 99)")
        );
        assert_eq!(error_name(false, 0, 0), None);
    }

    #[test]
    fn link_local_and_mixed_family_targets_are_refused_before_any_socket() {
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for (dst, src, count) in [(ll, None, 1), (v4, Some(v6), 1), (v4, None, 70_000)] {
            let e = check_target(dst, src, count).expect_err("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(check_target(v6, None, 1).is_ok());
    }

    #[test]
    fn each_call_gets_its_own_identifier_and_cookie() {
        let a = Matcher::new("10.0.0.1".parse().unwrap());
        let b = Matcher::new("10.0.0.1".parse().unwrap());
        assert_ne!(a.cookie, b.cookie);
    }
}
