//! Packet capture on the interfaces of a lab's nodes, written as pcapng.
//!
//! No tcpdump: for each endpoint `node:iface` a thread enters the node's network namespace,
//! checks that the interface is the lab's (its marker) and opens an AF_PACKET socket bound to
//! it ([`packet`]); the socket stays in that namespace. One background thread then `poll`s
//! every socket and writes what they read, in both directions and with the kernel's
//! timestamps, to one pcapng stream ([`pcapng`]), one interface block per endpoint.
//!
//! A packet socket holds its namespace: a lab taken down while a capture runs would keep its
//! namespaces (and their veths) alive. So the capture looks at each node's named namespace
//! every [`WATCH`] and lets go of an endpoint whose namespace is gone or replaced, or whose
//! interface was deleted; it ends by itself when no endpoint is left.

mod packet;
mod pcapng;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::lab::LabError;
use crate::net::dump::Requester;
use crate::net::{link, netns, NetError};
use crate::plan::names;
use crate::spec::Endpoint;

pub use packet::SNAPLEN;

/// How often the capture checks that the nodes' namespaces are still the lab's.
const WATCH: Duration = Duration::from_millis(250);

/// At most this many packets are read from one socket before the others get their turn.
const BURST: usize = 64;

/// A capture running on a background thread; [`Capture::stop`] ends it. Dropped without
/// `stop`, it stops too (and the counts are lost).
pub struct Capture {
    /// Written to (or dropped) to wake the thread and end the capture.
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<Result<CaptureStats, LabError>>>,
}

/// What a capture saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets written per endpoint (`node:iface`), in the order the endpoints were given.
    pub packets: Vec<(String, u64)>,
    /// Why endpoints stopped before the end, one line each (`a:eth1: ...`): their node's
    /// namespace went away (the lab went down) or their interface was deleted.
    pub gone: Vec<String>,
}

/// When a capture ends by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// After this many packets, of all endpoints together.
    pub count: Option<u64>,
}

impl Capture {
    /// Starts capturing `endpoints` (node, iface) of lab `lab`, writing pcapng to `out`.
    #[allow(dead_code)] // the API of the `topo test` runner, which records links with it
    pub fn start(
        lab: &str,
        endpoints: &[Endpoint],
        out: Box<dyn Write + Send>,
    ) -> Result<Capture, LabError> {
        Capture::start_with(lab, endpoints, out, Limits::default())
    }

    /// [`Capture::start`], ending by itself at `limits`.
    ///
    /// Nothing is written to `out` unless every endpoint is found: an unknown node or
    /// interface, or one that is not the lab's, is [`LabError::Usage`].
    pub fn start_with(
        lab: &str,
        endpoints: &[Endpoint],
        out: Box<dyn Write + Send>,
        limits: Limits,
    ) -> Result<Capture, LabError> {
        check_names(lab, endpoints)?;
        let sockets = open_all(lab, endpoints)?;
        let labels: Vec<String> = endpoints.iter().map(Endpoint::to_string).collect();
        let writer = pcapng::Writer::new(out, &labels, SNAPLEN).map_err(write_error)?;
        let (stop, wake) =
            UnixStream::pair().map_err(|e| NetError::io("capture: make the stop channel", e))?;
        let thread = std::thread::Builder::new()
            .name("topo-capture".into())
            .spawn(move || run(sockets, writer, wake, limits))
            .map_err(|e| LabError::Internal(format!("capture: start its thread: {e}")))?;
        Ok(Capture {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Whether the capture has ended by itself (its count reached, every endpoint gone, or
    /// a write failed); [`Capture::stop`] then returns at once.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops, flushes the writer, returns the counts.
    pub fn stop(mut self) -> Result<CaptureStats, LabError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<CaptureStats, LabError> {
        if let Some(mut stop) = self.stop.take() {
            // A thread that has ended already no longer reads it.
            let _ = stop.write_all(b"x");
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| LabError::Internal("capture: its thread panicked".into()))?,
            None => Ok(CaptureStats::default()),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Lab and node names become paths under `/run/netns`: each must be one plain component.
fn check_names(lab: &str, endpoints: &[Endpoint]) -> Result<(), LabError> {
    let lab_ok = !lab.is_empty()
        && lab.len() <= 12
        && lab
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !lab_ok {
        return Err(LabError::Usage(format!(
            "'{lab}' is not a lab name (1 to 12 characters of a-z, 0-9 and -)"
        )));
    }
    if endpoints.is_empty() {
        return Err(LabError::Usage("capture: no endpoint given".into()));
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']);
        if !plain(&ep.node) || !plain(&ep.iface) {
            return Err(LabError::Usage(format!("'{ep}' is not NODE:INTERFACE")));
        }
        if endpoints[..i].contains(ep) {
            return Err(LabError::Usage(format!("{ep} is given twice")));
        }
    }
    Ok(())
}

/// An endpoint being captured.
struct Open {
    label: String,
    socket: packet::PacketSocket,
    /// The node's namespace: its name and the inode it had when the socket was opened.
    netns: Option<(String, u64)>,
}

/// Opens a socket on every endpoint, each from inside its node's namespace, on a thread of
/// its own (`setns` is per thread; see [`netns::enter_each`]).
fn open_all(lab: &str, endpoints: &[Endpoint]) -> Result<Vec<Open>, LabError> {
    let mut files = Vec::with_capacity(endpoints.len());
    let mut watch = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        if ep.is_host() {
            let own = File::open("/proc/self/ns/net")
                .map_err(|e| NetError::io("open the host's netns", e))?;
            files.push(own);
            watch.push(None);
            continue;
        }
        let name = names::node_netns(lab, &ep.node);
        let Some(file) = netns::open(&name)?.filter(netns::is_namespace) else {
            return Err(LabError::Usage(
                if crate::state::labs().iter().any(|l| l == lab) {
                    format!("lab {lab} has no node {} (no netns {name})", ep.node)
                } else {
                    format!("lab {lab} is not up")
                },
            ));
        };
        watch.push(Some((name, netns::inode(&file)?)));
        files.push(file);
    }
    let lab = lab.to_string();
    let eps = endpoints.to_vec();
    let opened = std::thread::spawn(move || {
        let refs: Vec<&File> = files.iter().collect();
        netns::enter_each(&refs, |i| Ok(open_here(&lab, &eps[i])))
    })
    .join()
    .map_err(|_| LabError::Internal("capture: the netns thread panicked".into()))??;
    opened
        .into_iter()
        .zip(endpoints.iter().zip(watch))
        .map(|(socket, (ep, netns))| {
            Ok(Open {
                label: ep.to_string(),
                socket: socket?,
                netns,
            })
        })
        .collect()
}

/// In the endpoint's namespace: finds the interface, checks its marker, opens the socket.
fn open_here(lab: &str, ep: &Endpoint) -> Result<packet::PacketSocket, LabError> {
    let links = Requester::open_here()?.links()?;
    let Some(msg) = links
        .iter()
        .find(|m| link::name_of(m) == Some(ep.iface.as_str()))
    else {
        let mut have: Vec<&str> = links.iter().filter_map(link::name_of).collect();
        have.sort_unstable();
        return Err(LabError::Usage(format!(
            "{ep}: no such interface (node {} has {})",
            ep.node,
            have.join(", ")
        )));
    };
    let ours = link::alias_of(msg).is_some_and(|a| a.starts_with(&names::marker_prefix(lab)));
    if !ours {
        return Err(LabError::Usage(format!(
            "{ep} is not an interface of lab {lab} (it carries no marker of the lab)"
        )));
    }
    packet::PacketSocket::open(msg.header.index)
        .map_err(|e| NetError::io(format!("{ep}: open a packet socket"), e).into())
}

fn write_error(e: io::Error) -> LabError {
    NetError::io("write the capture", e).into()
}

/// The capture thread: reads every socket as packets come, writes and flushes them, until
/// `wake` is written to or closed, the count is reached, or no endpoint is left.
fn run(
    endpoints: Vec<Open>,
    mut writer: pcapng::Writer,
    wake: UnixStream,
    limits: Limits,
) -> Result<CaptureStats, LabError> {
    let mut live: Vec<Option<Open>> = endpoints.into_iter().map(Some).collect();
    let mut stats = CaptureStats {
        packets: live
            .iter()
            .flatten()
            .map(|o| (o.label.clone(), 0))
            .collect(),
        gone: Vec::new(),
    };
    let mut total = 0u64;
    let mut buf = vec![0u8; SNAPLEN];
    let mut watched = Instant::now();
    let timeout = PollTimeout::try_from(WATCH).unwrap_or(PollTimeout::NONE);
    loop {
        let (stop, ready) = wait(&wake, &live, timeout)?;
        if stop {
            break;
        }
        let mut wrote = false;
        for i in ready {
            let Some(open) = live[i].as_ref() else {
                continue;
            };
            for _ in 0..BURST {
                let frame = match open.socket.recv(&mut buf) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                        // Down (it comes back with the link) or deleted (no interface).
                        if open.socket.ifindex().map_or(true, |ix| ix <= 0) {
                            stats
                                .gone
                                .push(format!("{}: the interface is gone", open.label));
                            live[i] = None;
                        }
                        break;
                    }
                    Err(e) => return Err(NetError::io(format!("capture {}", open.label), e).into()),
                };
                let ts = frame.timestamp.unwrap_or_else(now);
                let data = &buf[..frame.caplen];
                let iface = u32::try_from(i).unwrap_or(u32::MAX);
                writer
                    .packet(iface, ts, frame.len, data, frame.outgoing)
                    .map_err(write_error)?;
                stats.packets[i].1 += 1;
                total += 1;
                wrote = true;
                if limits.count.is_some_and(|c| total >= c) {
                    writer.flush().map_err(write_error)?;
                    return Ok(stats);
                }
            }
        }
        if wrote {
            writer.flush().map_err(write_error)?;
        }
        if watched.elapsed() >= WATCH {
            watched = Instant::now();
            for slot in live.iter_mut() {
                if let Some(why) = slot.as_ref().and_then(netns_gone) {
                    stats.gone.push(why);
                    // Closing the socket lets go of the namespace.
                    *slot = None;
                }
            }
        }
        if live.iter().all(Option::is_none) {
            break;
        }
    }
    writer.flush().map_err(write_error)?;
    Ok(stats)
}

/// Polls `wake` and the live sockets: whether to stop, and which sockets have something.
fn wait(
    wake: &UnixStream,
    live: &[Option<Open>],
    timeout: PollTimeout,
) -> Result<(bool, Vec<usize>), LabError> {
    let mut which = Vec::with_capacity(live.len());
    let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
    for (i, open) in live.iter().enumerate() {
        if let Some(o) = open {
            which.push(i);
            fds.push(PollFd::new(o.socket.as_fd(), PollFlags::POLLIN));
        }
    }
    match nix::poll::poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok((false, Vec::new())),
        Err(e) => return Err(NetError::io("capture: poll", e.into()).into()),
    }
    let has = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    let stop = has(&fds[0]);
    let ready = which
        .into_iter()
        .zip(&fds[1..])
        .filter(|(_, fd)| has(fd))
        .map(|(i, _)| i)
        .collect();
    Ok((stop, ready))
}

/// Why an endpoint's node namespace is no longer the one captured, if it is not.
fn netns_gone(open: &Open) -> Option<String> {
    let (name, inode) = open.netns.as_ref()?;
    let now = netns::open(name)
        .ok()
        .flatten()
        .and_then(|f| netns::inode(&f).ok());
    (now != Some(*inode))
        .then(|| format!("{}: netns {name} is gone (the lab went down)", open.label))
}

/// The time now, for a packet that came without the kernel's timestamp.
fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(node: &str, iface: &str) -> Endpoint {
        Endpoint {
            node: node.into(),
            iface: iface.into(),
        }
    }

    #[test]
    fn names_that_would_leave_run_netns_are_refused() {
        assert!(check_names("lab", &[ep("a", "eth1")]).is_ok());
        assert!(check_names("lab", &[ep("host", "lab-a")]).is_ok());
        for bad in [ep("..", "eth1"), ep("a/b", "eth1"), ep("a", "x/y")] {
            let e = check_names("lab", &[bad]).unwrap_err();
            assert!(matches!(e, LabError::Usage(_)), "{e}");
        }
        assert!(matches!(
            check_names("../x", &[ep("a", "eth1")]),
            Err(LabError::Usage(_))
        ));
        assert!(matches!(check_names("lab", &[]), Err(LabError::Usage(_))));
    }

    #[test]
    fn an_endpoint_given_twice_is_refused() {
        let e =
            check_names("lab", &[ep("a", "eth1"), ep("b", "eth1"), ep("a", "eth1")]).unwrap_err();
        assert_eq!(e.to_string(), "a:eth1 is given twice");
    }
}
