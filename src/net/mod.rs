//! `net`: the kernel's network objects, over netlink only (rtnetlink / netlink-packet-route),
//! and `/proc/sys/net` for per-namespace sysctls. No `ip`, `tc` or `sysctl` processes.
//!
//! Namespaces are per thread: everything that must run *inside* a network namespace (opening
//! its netlink socket, creating it, reading its sysctls) runs on a dedicated `std::thread`
//! that `setns`es, never on a tokio worker. A netlink socket stays bound to the namespace it
//! was opened in, so the sockets that make changes are then driven from tokio; the
//! observation's are used synchronously by the threads that opened them (`dump.rs`).

pub mod addr;
pub mod dump;
pub mod link;
pub mod netns;
pub mod observe;
pub mod probe;
pub mod qdisc;
pub mod route;
pub mod sysctl;
pub mod vxlan;

use std::io;

use thiserror::Error;

/// An error from the kernel or from our use of it, with what we were doing.
#[derive(Debug, Error)]
pub enum NetError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {message}")]
    Netlink {
        what: String,
        /// The kernel's errno, when it sent one (positive, e.g. `libc::EEXIST`).
        errno: Option<i32>,
        message: String,
    },
}

impl NetError {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        NetError::Io {
            what: what.into(),
            source,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Io { source, .. } => source.raw_os_error(),
            NetError::Netlink { errno, .. } => *errno,
        }
    }
}

/// Wraps an rtnetlink error with context, keeping the kernel's errno reachable and its text
/// readable ("File exists (os error 17)" rather than a debug dump of the message).
pub(crate) fn nl_err(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let what = what.into();
    move |e| match e {
        rtnetlink::Error::NetlinkError(msg) => {
            let errno = msg.code.map(|c| -c.get());
            let message = match errno {
                Some(n) => io::Error::from_raw_os_error(n).to_string(),
                None => msg.to_string(),
            };
            NetError::Netlink {
                what,
                errno,
                message,
            }
        }
        other => NetError::Netlink {
            what,
            errno: None,
            message: other.to_string(),
        },
    }
}

/// The routing protocol number that marks routes `topo` installed (`ip route` shows
/// `proto 200`); routes of any other protocol are never changed by `topo`.
pub const RTPROT_TOPO: u8 = 200;

/// The address protocol (IFA_PROTO, Linux 5.18+) that marks addresses `topo` added; other
/// addresses on a node's interfaces (added by hand, by `exec:` or by a daemon) are left alone.
pub const IFAPROT_TOPO: u8 = 200;

/// Opens a netlink route socket in the calling thread's current network namespace and spawns
/// its connection on the runtime. The socket stays bound to this namespace for its life.
pub fn connect_here(rt: &tokio::runtime::Handle) -> Result<rtnetlink::Handle, NetError> {
    let _guard = rt.enter();
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| NetError::io("open netlink socket", e))?;
    rt.spawn(conn);
    Ok(handle)
}

/// Opens one netlink socket inside each namespace, on a dedicated thread (`setns` is per
/// thread and must never run on a tokio worker).
pub fn connect_in(
    rt: &tokio::runtime::Handle,
    namespaces: Vec<netns::NsId>,
) -> Result<Vec<rtnetlink::Handle>, NetError> {
    let rt = rt.clone();
    std::thread::spawn(move || netns::enter_each(&namespaces, |_| connect_here(&rt)))
        .join()
        .map_err(|_| NetError::io("netns thread", io::Error::other("panicked")))?
}

/// Whether the kernel has a qdisc kind, asked in a throwaway network namespace (made on a
/// dedicated thread and gone with it), so that no interface of the host or of a lab is
/// touched by the probe.
pub fn kernel_has_qdisc(
    rt: &tokio::runtime::Handle,
    ty: qdisc::QdiscType,
) -> Result<bool, NetError> {
    let rt = rt.clone();
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::io("unshare a probe netns", e.into()))?;
        let handle = connect_here(&rt)?;
        rt.block_on(qdisc::kernel_has_qdisc(&handle, ty))
    })
    .join()
    .map_err(|_| NetError::io("probe thread", io::Error::other("panicked")))?
}
