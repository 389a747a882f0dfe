//! AF_PACKET sockets, the kernel's raw view of one interface (what libpcap uses on Linux):
//! thin wrappers over `socket`, `setsockopt`, `bind`, `recvmsg` and `getsockname`.
//!
//! A packet socket belongs to the network namespace of the thread that creates it, for its
//! whole life: made by a thread inside a node's namespace, it keeps reading that node's
//! interface after the thread has left.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The largest part of a packet kept (tcpdump's default snapshot length).
pub const SNAPLEN: usize = 262_144;

/// What the socket asks of the kernel as its receive buffer: a burst of full-size frames
/// waits there while the writer catches up. Root may pass `net.core.rmem_max`.
const RCVBUF: libc::c_int = 4 << 20;

/// One packet read from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Its length on the wire.
    pub len: usize,
    /// How many of its bytes are in the buffer (`len` cut to the buffer's size).
    pub caplen: usize,
    /// When the kernel received or sent it, since the Unix epoch.
    pub timestamp: Option<Duration>,
    /// Sent by this interface (`PACKET_OUTGOING`), not received.
    pub outgoing: bool,
}

/// A packet socket bound to one interface of the calling thread's namespace.
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a non-blocking packet socket for every protocol (`ETH_P_ALL`) on interface
    /// `ifindex`, both directions, with kernel timestamps in nanoseconds (`SO_TIMESTAMPNS`).
    ///
    /// The socket is made with protocol 0, which receives nothing, and given `ETH_P_ALL` by
    /// `bind` with the interface: made with `ETH_P_ALL` it would queue packets of every
    /// interface of the namespace until the `bind`.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let index = libc::c_int::try_from(ifindex)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
        // SAFETY: socket() takes no pointers; the result is checked before it is owned.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor just returned by socket() and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = PacketSocket { fd };
        sock.set_int(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        // More than rmem_max needs CAP_NET_ADMIN (FORCE); without it the default stays.
        if sock
            .set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF)
            .is_err()
        {
            let _ = sock.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
        }
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as libc::c_ushort,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: index,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `addr` is a valid sockaddr_ll that outlives the call, and its size is given.
        let r = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sock)
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        // SAFETY: the option value is a c_int that outlives the call, and its size is given.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Reads the next packet into `buf` (`recvmsg` with `MSG_TRUNC`, so that the length on
    /// the wire is known when the packet is longer than `buf`); `Ok(None)` when none is
    /// waiting. `ENETDOWN` means the interface went down or away (see [`Self::ifindex`]).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Frame>> {
        let mut from = MaybeUninit::<libc::sockaddr_ll>::zeroed();
        // Room for one `cmsghdr` with a `timespec`, aligned as a cmsghdr must be.
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = from.as_mut_ptr().cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: every pointer in `msg` points at a live buffer of the size given with it.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(e),
            };
        }
        let len = n as usize;
        // SAFETY: the kernel filled the sockaddr_ll (zeroed before, so any bytes it did not
        // write are valid too).
        let from = unsafe { from.assume_init() };
        Ok(Some(Frame {
            len,
            caplen: len.min(buf.len()),
            timestamp: timestamp(&msg),
            outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
        }))
    }

    /// The interface the socket is bound to; 0 or less once that interface is gone (the
    /// kernel unbinds a packet socket from an unregistered device).
    pub fn ifindex(&self) -> io::Result<i32> {
        let mut addr = MaybeUninit::<libc::sockaddr_ll>::zeroed();
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `addr` has room for `len` bytes, and `len` outlives the call.
        let r =
            unsafe { libc::getsockname(self.fd.as_raw_fd(), addr.as_mut_ptr().cast(), &mut len) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: zeroed, then (partly) filled by the kernel: valid either way.
        Ok(unsafe { addr.assume_init() }.sll_ifindex)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The `SCM_TIMESTAMPNS` control message of a received message, if there is one.
fn timestamp(msg: &libc::msghdr) -> Option<Duration> {
    // SAFETY: `msg` is the header recvmsg filled; CMSG_FIRSTHDR and CMSG_NXTHDR stay within
    // its control buffer and return null past its end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null, so it points at a whole cmsghdr inside the control buffer.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: a SCM_TIMESTAMPNS message carries a timespec; its data may be
            // unaligned for it, hence the unaligned read.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u32::try_from(ts.tv_nsec).ok()?;
            return Some(Duration::new(secs, nanos));
        }
        // SAFETY: as for CMSG_FIRSTHDR, with `cmsg` a header inside the same buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}
