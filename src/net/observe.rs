//! Observation: one dump of links, addresses and routes per namespace of the lab, in
//! parallel, through sockets opened once and kept for the apply that follows.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

use futures::stream::{self, StreamExt, TryStreamExt};
use rtnetlink::Handle;

use super::qdisc::{self, Psched};
use super::{addr, connect_here, link, netns, nl_err, route, sysctl, NetError};
use crate::plan::{names, Desired, LinkObs, NsObserved, NsState, Observed, QdiscObs};

/// How many namespaces are dumped or configured at once.
pub const PARALLEL: usize = 64;

/// An open namespace: its file (keeps it open for veth creation by fd) and its socket.
pub struct NsConn {
    pub file: File,
    pub handle: Handle,
}

/// Netlink sockets of a lab run: the host's and one per namespace.
pub struct Session {
    pub rt: tokio::runtime::Handle,
    pub host: Handle,
    pub ns: BTreeMap<String, NsConn>,
    /// The procfs to reach a namespace's sysctls through, where it is not the host's: the
    /// one of the node's init (see [`sysctl`](super::sysctl)).
    pub procs: BTreeMap<String, PathBuf>,
}

impl Session {
    pub fn new(rt: tokio::runtime::Handle) -> Result<Self, NetError> {
        let host = connect_here(&rt)?;
        Ok(Session {
            rt,
            host,
            ns: BTreeMap::new(),
            procs: BTreeMap::new(),
        })
    }

    /// The procfs through which a namespace's sysctls are read and written.
    pub fn proc_dir(&self, ns: &str) -> PathBuf {
        self.procs
            .get(ns)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(sysctl::HOST_PROC))
    }

    /// The socket of a namespace, or the host's for `None`.
    pub fn handle(&self, ns: Option<&str>) -> Result<&Handle, NetError> {
        match ns {
            None => Ok(&self.host),
            Some(ns) => self
                .ns
                .get(ns)
                .map(|c| &c.handle)
                .ok_or_else(|| NetError::Netlink {
                    what: format!("use netns {ns}"),
                    errno: Some(libc::ENOENT),
                    message: "the namespace is not open".into(),
                }),
        }
    }
}

/// Every namespace name that belongs or may belong to the lab: the desired ones and those on
/// disk with the lab's prefix (whose ownership the loopback marker then decides).
pub fn candidate_namespaces(lab: &str, desired: Option<&Desired>) -> Result<Vec<String>, NetError> {
    let mut names_found = netns::list_with_prefix(&names::netns_prefix(lab))?;
    let br = names::bridge_netns(lab);
    if netns::path(&br).exists() {
        names_found.push(br);
    }
    if let Some(d) = desired {
        names_found.extend(d.namespaces.keys().cloned());
    }
    names_found.sort();
    names_found.dedup();
    Ok(names_found)
}

/// Opens the namespaces that exist among `candidates`, with a socket in each, and reads the
/// desired sysctls of each while inside it.
pub fn open_namespaces(
    session: &mut Session,
    candidates: &[String],
    desired: Option<&Desired>,
    adopt: &[String],
    broken: &mut Vec<String>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, NetError> {
    start_opening(session, candidates, desired, adopt, broken, None)?.finish(session)
}

/// Namespaces being opened on a thread of their own (see [`start_opening`]).
pub struct Opening {
    which: Vec<String>,
    thread: std::thread::JoinHandle<Result<Vec<OpenedNs>, NetError>>,
}

type OpenedNs = (File, (Handle, BTreeMap<String, String>));

impl Opening {
    /// Waits for the thread and keeps the namespaces open in the session; returns the
    /// sysctls read in each.
    pub fn finish(
        self,
        session: &mut Session,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, NetError> {
        let opened = self
            .thread
            .join()
            .map_err(|_| NetError::io("netns thread", std::io::Error::other("panicked")))??;
        let mut sysctls = BTreeMap::new();
        for (name, (file, (handle, values))) in self.which.into_iter().zip(opened) {
            session.ns.insert(name.clone(), NsConn { file, handle });
            sysctls.insert(name, values);
        }
        Ok(sysctls)
    }
}

/// Starts opening the namespaces that exist among `candidates` on a thread of its own: a
/// socket in each, and the desired sysctls read while inside it. Each namespace's socket is
/// also sent on `ready` as soon as it is open, so its dump can start while the others are
/// opened.
pub fn start_opening(
    session: &mut Session,
    candidates: &[String],
    desired: Option<&Desired>,
    adopt: &[String],
    broken: &mut Vec<String>,
    ready: Option<futures::channel::mpsc::UnboundedSender<(String, Handle)>>,
) -> Result<Opening, NetError> {
    let mut files = Vec::new();
    let mut which = Vec::new();
    for name in candidates {
        if session.ns.contains_key(name) {
            continue;
        }
        if let Some(f) = netns::open(name)? {
            if !netns::is_namespace(&f) {
                // A placeholder left by an `up` stopped between creating the file and
                // mounting the namespace on it: removed if that `up` recorded it or it is
                // exactly what `topo` creates (empty, mode 0444); else left (and reported as
                // in the way).
                if adopt.contains(name) || netns::is_placeholder(&f) {
                    netns::delete(name)?;
                } else {
                    broken.push(name.clone());
                }
                continue;
            }
            files.push(f);
            which.push(name.clone());
        }
    }
    let keys: Vec<(String, PathBuf, Vec<String>)> = which
        .iter()
        .map(|n| (n.clone(), session.proc_dir(n), sysctl_keys(desired, n)))
        .collect();
    let rt = session.rt.clone();
    let thread = std::thread::spawn(move || {
        let refs: Vec<&File> = files.iter().collect();
        let per_ns = netns::enter_each(&refs, |i| {
            let handle = connect_here(&rt)?;
            let (name, proc_dir, keys) = &keys[i];
            if let Some(tx) = &ready {
                // The receiver may have stopped at an error: nothing more to do then.
                let _ = tx.unbounded_send((name.clone(), handle.clone()));
            }
            let k: Vec<&String> = keys.iter().collect();
            Ok((handle, sysctl::read_here(proc_dir, &k)))
        })?;
        Ok::<_, NetError>(files.into_iter().zip(per_ns).collect::<Vec<_>>())
    });
    Ok(Opening { which, thread })
}

/// Reads the desired sysctls of each namespace open in `session` (for an observation made
/// before the desired state was known), on a thread that enters each namespace in turn.
pub async fn read_sysctls(
    session: &Session,
    desired: &Desired,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, NetError> {
    let mut jobs = Vec::new();
    for (name, conn) in &session.ns {
        let keys = sysctl_keys(Some(desired), name);
        if keys.is_empty() {
            continue;
        }
        let file = conn
            .file
            .try_clone()
            .map_err(|e| NetError::io(format!("netns {name}"), e))?;
        jobs.push((name.clone(), file, session.proc_dir(name), keys));
    }
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&File> = jobs.iter().map(|(_, f, _, _)| f).collect();
        let values = netns::enter_each(&refs, |i| {
            let (_, _, proc_dir, keys) = &jobs[i];
            let k: Vec<&String> = keys.iter().collect();
            Ok(sysctl::read_here(proc_dir, &k))
        })?;
        Ok(jobs.iter().map(|(n, ..)| n.clone()).zip(values).collect())
    })
    .await
    .map_err(|e| NetError::io("sysctl thread", std::io::Error::other(e.to_string())))?
}

/// How much of each namespace [`observe`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Links, addresses, routes, qdiscs and sysctls: what `plan` and `up` compare.
    Full,
    /// Only whether it is the lab's (its loopback's marker): what `down` needs.
    Ownership,
}

/// Observes the lab: which namespaces exist and are ours, and their links, addresses,
/// routes and sysctls (with `Depth::Full`); and the host links that are ours or in the way
/// of ours.
pub async fn observe(
    session: &mut Session,
    lab: &str,
    desired: Option<&Desired>,
    adopt: &[String],
    depth: Depth,
) -> Result<Observed, NetError> {
    let psched = Psched::read()?;
    let psched = &psched;
    let candidates = candidate_namespaces(lab, desired)?;
    let mut broken = Vec::new();
    let t = std::time::Instant::now();
    let marker_prefix = names::marker_prefix(lab);
    // Namespaces opened earlier in this session are dumped at once; the others as soon as
    // the opening thread has a socket in each.
    let open_before: Vec<(String, Handle)> = session
        .ns
        .iter()
        .filter(|(n, _)| candidates.binary_search(n).is_ok())
        .map(|(n, c)| (n.clone(), c.handle.clone()))
        .collect();
    let (ready, opened) = futures::channel::mpsc::unbounded();
    let opening = start_opening(
        session,
        &candidates,
        desired,
        adopt,
        &mut broken,
        Some(ready),
    )?;
    let results: Result<Vec<(String, NsObserved)>, NetError> = stream::iter(open_before)
        .chain(opened)
        .map(|(name, handle)| {
            let expected = names::ns_marker(lab, &name);
            // A namespace `up` was creating when it was stopped, before it could mark it.
            let adoptable = adopt.contains(&name);
            let psched = *psched;
            // On the runtime's workers, next to the socket's connection task: polled from
            // this thread instead, every reply would cost a wake-up across threads.
            let task = tokio::spawn(async move {
                let observed = match depth {
                    Depth::Full => observe_ns(&handle, &expected, adoptable, &psched).await?,
                    Depth::Ownership => ownership(&handle, &expected, adoptable).await?,
                };
                Ok::<_, NetError>((name, observed))
            });
            async move {
                task.await.map_err(|e| {
                    NetError::io("observe a namespace", std::io::Error::other(e.to_string()))
                })?
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await;
    let mut sysctls = opening.finish(session)?;
    let results = results?;
    tracing::info!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        namespaces = results.len(),
        "opened and dumped namespaces"
    );
    let mut out = Observed::default();
    for name in broken {
        out.namespaces.insert(
            name,
            NsObserved::Foreign {
                marker: Some("not a namespace".into()),
            },
        );
    }
    for (name, mut o) in results {
        if let NsObserved::Ours(state) = &mut o {
            state.sysctls = sysctls.remove(&name).unwrap_or_default();
        }
        out.namespaces.insert(name, o);
    }
    let host_names: Vec<&String> = desired
        .map(|d| d.host_ifaces.keys().collect())
        .unwrap_or_default();
    out.host_links = link::dump(&session.host)
        .await?
        .iter()
        .map(to_obs)
        .filter(|l| {
            l.alias
                .as_deref()
                .is_some_and(|a| a.starts_with(&marker_prefix))
                || (l.alias.is_none() && l.group == names::lab_group(lab))
                || host_names.contains(&&l.name)
        })
        .collect();
    let host_indexes: Vec<u32> = out.host_links.iter().map(|l| l.index).collect();
    if !host_indexes.is_empty() {
        let all = ours_qdiscs(&session.host, psched).await?;
        out.host_qdiscs = all
            .into_iter()
            .filter(|q| host_indexes.contains(&q.index))
            .collect();
    }
    Ok(out)
}

/// The sysctl keys the desired state sets in a namespace.
fn sysctl_keys(desired: Option<&Desired>, ns: &str) -> Vec<String> {
    desired
        .and_then(|d| d.namespaces.get(ns))
        .map(|s| s.sysctls.keys().cloned().collect())
        .unwrap_or_default()
}

/// `Foreign` unless the namespace's loopback carries the lab's marker (or none, where `up`
/// was creating it when it was stopped).
fn foreign(lo_alias: Option<String>, expected_marker: &str, adoptable: bool) -> Option<NsObserved> {
    let ours = lo_alias.as_deref() == Some(expected_marker) || (adoptable && lo_alias.is_none());
    (!ours).then_some(NsObserved::Foreign { marker: lo_alias })
}

/// Whether the namespace is the lab's, from its loopback alone (one request, no dumps).
async fn ownership(
    handle: &Handle,
    expected_marker: &str,
    adoptable: bool,
) -> Result<NsObserved, NetError> {
    let mut lo = handle.link().get().match_name("lo".to_string()).execute();
    let lo = match lo.try_next().await {
        Ok(m) => m.map(|m| to_obs(&m)),
        Err(e) => {
            let err = nl_err("get lo")(e);
            if err.errno() == Some(libc::ENODEV) {
                None
            } else {
                return Err(err);
            }
        }
    };
    if let Some(f) = foreign(
        lo.as_ref().and_then(|l| l.alias.clone()),
        expected_marker,
        adoptable,
    ) {
        return Ok(f);
    }
    Ok(NsObserved::Ours(NsState {
        links: lo.into_iter().collect(),
        addrs: Vec::new(),
        routes: Vec::new(),
        qdiscs: Vec::new(),
        sysctls: BTreeMap::new(),
    }))
}

async fn observe_ns(
    handle: &Handle,
    expected_marker: &str,
    adoptable: bool,
    psched: &Psched,
) -> Result<NsObserved, NetError> {
    let dumped = link::dump(handle).await?;
    // Each link names its root qdisc's kind: without a netem or tbf root anywhere, there is
    // nothing of `topo`'s to find in a qdisc dump (a quarter of a no-op `up`'s requests).
    let impaired = dumped
        .iter()
        .any(|m| matches!(link::root_qdisc_of(m), Some("netem" | "tbf")));
    let links: Vec<LinkObs> = dumped.iter().map(to_obs).collect();
    let lo_alias = links
        .iter()
        .find(|l| l.name == "lo")
        .and_then(|l| l.alias.clone());
    if let Some(f) = foreign(lo_alias, expected_marker, adoptable) {
        return Ok(f);
    }
    let addrs = addr::dump(handle).await?;
    let routes = route::dump(handle).await?;
    let qdiscs = if impaired {
        ours_qdiscs(handle, psched).await?
    } else {
        Vec::new()
    };
    Ok(NsObserved::Ours(NsState {
        links,
        addrs,
        routes,
        qdiscs,
        sysctls: BTreeMap::new(),
    }))
}

/// Root qdiscs of the kinds `topo` puts on links (netem, tbf), with what they apply.
pub async fn ours_qdiscs(handle: &Handle, psched: &Psched) -> Result<Vec<QdiscObs>, NetError> {
    Ok(qdisc::dump(handle, psched)
        .await?
        .into_iter()
        .filter(|q| q.is_root() && (q.kind == "netem" || q.kind == "tbf"))
        .filter_map(|q| {
            q.impair().map(|impair| QdiscObs {
                index: q.ifindex,
                kind: q.kind.clone(),
                impair,
            })
        })
        .collect())
}

pub fn to_obs(m: &netlink_packet_route::link::LinkMessage) -> LinkObs {
    LinkObs {
        index: m.header.index,
        name: link::name_of(m).unwrap_or_default().to_string(),
        alias: link::alias_of(m).map(str::to_string),
        mtu: link::mtu_of(m).unwrap_or(0),
        up: link::is_up(m),
        mac: link::mac_of(m),
        controller: link::controller_of(m),
        kind: link::kind_of(m),
        group: link::group_of(m),
    }
}
