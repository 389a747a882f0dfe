//! Observation: what each namespace of the lab holds (links, addresses, routes, root qdiscs,
//! sysctls) and the lab's host links. Two threads (`OBSERVE_THREADS`) each enter their
//! share of the namespaces in turn and read each through a plain netlink socket opened there
//! for that read alone ([`dump`](super::dump)); the host is read through the session's own
//! socket. The [`Session`] keeps each namespace's identity (name and inode), without a
//! socket or an open file: the apply connects runtime sockets ([`Session::connect`]) only in
//! the namespaces where the plan changes something, and opens a namespace's file again only
//! for the moment it needs one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rtnetlink::Handle;

use super::dump::Requester;
use super::qdisc::{self, Psched};
use super::{addr, connect_here, link, netns, route, sysctl, NetError};
use crate::plan::{names, Desired, LinkObs, NsObserved, NsState, Observed, QdiscObs};

/// How many namespaces are dumped or configured at once.
pub const PARALLEL: usize = 64;

/// A namespace of the run: its identity (its file is opened again when needed, e.g. to
/// create a veth in it by fd) and, once something is to be changed in it, its socket (see
/// [`Session::connect`]).
pub struct NsConn {
    pub id: netns::NsId,
    pub handle: Option<Handle>,
}

/// Netlink sockets of a lab run: the host's and one per namespace.
pub struct Session {
    pub rt: tokio::runtime::Handle,
    pub host: Handle,
    pub ns: BTreeMap<String, NsConn>,
    /// The procfs to reach a namespace's sysctls through, where it is not the host's: the
    /// one of the node's init (see [`sysctl`](super::sysctl)).
    pub procs: BTreeMap<String, PathBuf>,
    /// Namespaces already known to be the lab's, by name and inode (see
    /// [`Depth::Ownership`]): an ownership observation takes them as they are, without
    /// entering them, when the name still holds that inode.
    pub proven: BTreeMap<String, u64>,
}

impl Session {
    pub fn new(rt: tokio::runtime::Handle) -> Result<Self, NetError> {
        let host = connect_here(&rt)?;
        Ok(Session {
            rt,
            host,
            ns: BTreeMap::new(),
            procs: BTreeMap::new(),
            proven: BTreeMap::new(),
        })
    }

    /// The procfs through which a namespace's sysctls are read and written.
    pub fn proc_dir(&self, ns: &str) -> PathBuf {
        self.procs
            .get(ns)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(sysctl::HOST_PROC))
    }

    /// The socket of a namespace (opened by [`connect`](Self::connect) or when the namespace
    /// was made), or the host's for `None`.
    pub fn handle(&self, ns: Option<&str>) -> Result<&Handle, NetError> {
        let Some(ns) = ns else {
            return Ok(&self.host);
        };
        self.ns
            .get(ns)
            .and_then(|c| c.handle.as_ref())
            .ok_or_else(|| NetError::Netlink {
                what: format!("use netns {ns}"),
                errno: Some(libc::ENOENT),
                message: "the namespace has no socket open".into(),
            })
    }

    /// Opens a socket in each of `names` that is open in the session without one: the
    /// observation reads namespaces through sockets of its own, and only the namespaces
    /// where something changes need one that the runtime drives.
    pub fn connect<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), NetError> {
        let mut which = Vec::new();
        let mut ids = Vec::new();
        for name in names {
            if let Some(c) = self.ns.get(name) {
                if c.handle.is_none() && !which.iter().any(|n| n == name) {
                    ids.push(c.id.clone());
                    which.push(name.to_string());
                }
            }
        }
        if which.is_empty() {
            return Ok(());
        }
        for (name, handle) in which.into_iter().zip(super::connect_in(&self.rt, ids)?) {
            if let Some(c) = self.ns.get_mut(&name) {
                c.handle = Some(handle);
            }
        }
        Ok(())
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

/// Opens the namespaces that exist among `names`, each with a socket.
pub fn open_namespaces(session: &mut Session, names: &[String]) -> Result<(), NetError> {
    for (id, new) in open_files(session, names, &[], &mut Vec::new())? {
        if new {
            session
                .ns
                .insert(id.name.clone(), NsConn { id, handle: None });
        }
    }
    session.connect(names.iter().map(String::as_str))
}

/// The namespaces that exist among `candidates`: those known to the session already
/// (`false`) and those found now (`true`). A file that is not a namespace is
/// left out: removed if it is a placeholder of ours, else listed in `broken`.
fn open_files(
    session: &Session,
    candidates: &[String],
    adopt: &[String],
    broken: &mut Vec<String>,
) -> Result<Vec<(netns::NsId, bool)>, NetError> {
    let mut out = Vec::new();
    for name in candidates {
        if let Some(c) = session.ns.get(name) {
            out.push((c.id.clone(), false));
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
            out.push((netns::NsId::of(name, &f)?, true));
        }
    }
    Ok(out)
}

/// Reads the sysctls `desired` sets in each namespace open in `session` that are not among
/// `known` (read already, by an observation made before the desired state was known), on a
/// thread that enters each such namespace in turn.
pub async fn read_sysctls(
    session: &Session,
    desired: &Desired,
    known: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, NetError> {
    let mut jobs = Vec::new();
    for (name, conn) in &session.ns {
        let keys: Vec<String> = sysctl_keys(Some(desired), name)
            .into_iter()
            .filter(|k| !known.contains(k))
            .collect();
        if keys.is_empty() {
            continue;
        }
        jobs.push((name.clone(), conn.id.clone(), session.proc_dir(name), keys));
    }
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    on_thread(move || {
        let ids: Vec<netns::NsId> = jobs.iter().map(|(_, id, _, _)| id.clone()).collect();
        let values = netns::enter_each(&ids, |i| {
            let (_, _, proc_dir, keys) = &jobs[i];
            let k: Vec<&String> = keys.iter().collect();
            Ok(sysctl::read_here(proc_dir, &k))
        })?;
        Ok(jobs.iter().map(|(n, ..)| n.clone()).zip(values).collect())
    })
    .await
}

/// Runs `work` on a thread of its own (one that may enter namespaces: never a runtime
/// thread, which would go on to run other tasks there if `work` stopped half-way).
async fn on_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NetError> + Send + 'static,
) -> Result<T, NetError> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        // The receiver is gone only if the caller stopped waiting.
        let _ = tx.send(work());
    });
    rx.await
        .map_err(|_| NetError::io("namespace thread", std::io::Error::other("it panicked")))?
}

/// How much of each namespace [`observe`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Links, addresses, routes, qdiscs and sysctls: what `plan` and `up` compare.
    Full,
    /// Only whether it is the lab's (its loopback's marker): what `down` needs.
    Ownership,
}

/// How many threads read the namespaces of a lab (each enters its share in turn).
const OBSERVE_THREADS: usize = 2;

/// Observes the lab: which namespaces exist and are ours, and their links, addresses,
/// routes and sysctls (with `Depth::Full`: the keys `desired` sets in each, and `also` in
/// all); and the host links that are ours or in the way of ours. Namespaces found here are
/// kept in the session, without a socket (see [`Session::connect`]).
pub async fn observe(
    session: &mut Session,
    lab: &str,
    desired: Option<&Desired>,
    also: &[String],
    adopt: &[String],
    depth: Depth,
) -> Result<Observed, NetError> {
    let candidates = candidate_namespaces(lab, desired)?;
    observe_namespaces(session, lab, candidates, desired, also, adopt, depth).await
}

/// [`observe`] of the namespaces named `candidates` alone (and of the host's links of the
/// lab), for a reader that needs only some of the lab's nodes.
pub async fn observe_namespaces(
    session: &mut Session,
    lab: &str,
    candidates: Vec<String>,
    desired: Option<&Desired>,
    also: &[String],
    adopt: &[String],
    depth: Depth,
) -> Result<Observed, NetError> {
    let psched = Psched::read()?;
    let mut broken = Vec::new();
    let t = std::time::Instant::now();
    let marker_prefix = names::marker_prefix(lab);
    // Proven the lab's (by whoever filled `session.proven`, just before): taken as observed,
    // without opening or reading them, for an ownership observation.
    let (proven, candidates): (Vec<String>, Vec<String>) = candidates
        .into_iter()
        .partition(|n| depth == Depth::Ownership && session.proven.contains_key(n));
    let proven: Vec<(netns::NsId, bool)> = proven
        .into_iter()
        .filter_map(|name| {
            let inode = *session.proven.get(&name)?;
            Some((netns::NsId { name, inode }, true))
        })
        .collect();
    // The namespaces the session knows are checked to be the same when entered; the others
    // are opened by name by the thread that enters them (each file opened once, on the
    // threads rather than before them).
    let targets: Vec<Target> = candidates
        .iter()
        .map(|name| match session.ns.get(name) {
            Some(c) => Target::Known(c.id.clone()),
            None => Target::Name(name.clone()),
        })
        .collect();
    let jobs: Vec<NsJob> = candidates
        .iter()
        .map(|name| NsJob {
            expected: names::ns_marker(lab, name),
            // A namespace `up` was creating when it was stopped, before it could mark it.
            adoptable: adopt.iter().any(|a| a == name),
            proc_dir: session.proc_dir(name),
            keys: match depth {
                Depth::Full => {
                    let mut keys = sysctl_keys(desired, name);
                    keys.extend(
                        also.iter()
                            .filter(|k| !keys.contains(k))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                    keys
                }
                Depth::Ownership => Vec::new(),
            },
        })
        .collect();
    // Each thread enters its share of the namespaces in turn and reads each through a
    // socket of its own, synchronously: at 1000 namespaces, a tokio connection each cost
    // more than the dumps. The namespaces travel with the work and come back with the results.
    let per_thread = jobs.len().div_ceil(OBSERVE_THREADS).max(1);
    let mut shares = Vec::new();
    let mut jobs = jobs.into_iter();
    let mut targets = targets.into_iter();
    loop {
        let share: Vec<NsJob> = jobs.by_ref().take(per_thread).collect();
        if share.is_empty() {
            break;
        }
        let share_targets: Vec<Target> = targets.by_ref().take(share.len()).collect();
        shares.push(on_thread(move || {
            enter_targets(share_targets, |i| {
                let job = &share[i];
                let mut r = Requester::open_here()?;
                let observed = match depth {
                    Depth::Full => observe_here(&mut r, job, &psched)?,
                    Depth::Ownership => ownership_here(&mut r, job)?,
                };
                let k: Vec<&String> = job.keys.iter().collect();
                Ok((observed, sysctl::read_with(&mut r, &job.proc_dir, &k)))
            })
        }));
    }
    let mut results: Vec<_> = proven
        .into_iter()
        .map(|id| (id, (NsObserved::Ours(NsState::default()), BTreeMap::new())))
        .collect();
    for share in futures::future::join_all(shares).await {
        for (name, found) in share? {
            match found {
                Found::Entered(id, new, read) => results.push(((id, new), read)),
                Found::Missing => {}
                // A placeholder left by an `up` stopped between creating the file and
                // mounting the namespace on it: removed if that `up` recorded it or it is
                // exactly what `topo` creates (empty, mode 0444); else left (and reported as
                // in the way).
                Found::NotNamespace { placeholder } => {
                    if placeholder || adopt.contains(&name) {
                        netns::delete(&name)?;
                    } else {
                        broken.push(name);
                    }
                }
            }
        }
    }
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
    for ((id, new), (mut o, sysctls)) in results {
        if let NsObserved::Ours(state) = &mut o {
            state.sysctls = sysctls;
        }
        let name = id.name.clone();
        if new {
            session.ns.insert(name.clone(), NsConn { id, handle: None });
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
        let all = ours_qdiscs(qdisc::dump(&session.host, &psched).await?);
        out.host_qdiscs = all
            .into_iter()
            .filter(|q| host_indexes.contains(&q.index))
            .collect();
    }
    Ok(out)
}

/// What the observation needs to know of one namespace.
struct NsJob {
    /// The marker its loopback carries if it is the lab's.
    expected: String,
    adoptable: bool,
    proc_dir: PathBuf,
    /// The sysctls to read in it.
    keys: Vec<String>,
}

/// A namespace to observe: one the session knows (checked to be the same when entered), or a
/// name to open.
enum Target {
    Known(netns::NsId),
    Name(String),
}

/// What a thread found at a [`Target`].
enum Found<T> {
    /// Entered and read (`true`: found now, not known to the session).
    Entered(netns::NsId, bool, T),
    /// No file under the name.
    Missing,
    /// A file that is no namespace; `placeholder`: exactly what `topo` makes before mounting
    /// one on it.
    NotNamespace { placeholder: bool },
}

/// Enters each target in turn on this thread (a dedicated one) and runs `each` there with its
/// index, then returns to the thread's own namespace. Returns each target's name with what
/// was found.
fn enter_targets<T>(
    targets: Vec<Target>,
    mut each: impl FnMut(usize) -> Result<T, NetError>,
) -> Result<Vec<(String, Found<T>)>, NetError> {
    use std::os::fd::AsFd;
    netns::returning_home(|| {
        let mut out = Vec::with_capacity(targets.len());
        for (i, target) in targets.into_iter().enumerate() {
            let (id, new, file) = match target {
                Target::Known(id) => {
                    let file = id.open()?;
                    (id, false, file)
                }
                Target::Name(name) => match netns::open(&name)? {
                    None => {
                        out.push((name, Found::Missing));
                        continue;
                    }
                    Some(f) if !netns::is_namespace(&f) => {
                        let placeholder = netns::is_placeholder(&f);
                        out.push((name, Found::NotNamespace { placeholder }));
                        continue;
                    }
                    Some(f) => (netns::NsId::of(&name, &f)?, true, f),
                },
            };
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::io(format!("enter netns {}", id.name), e.into()))?;
            // A joined namespace needs no descriptor.
            drop(file);
            let read = each(i)?;
            out.push((id.name.clone(), Found::Entered(id, new, read)));
        }
        Ok(out)
    })
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
fn ownership_here(r: &mut Requester, job: &NsJob) -> Result<NsObserved, NetError> {
    let lo = r.link("lo")?.map(|m| to_obs(&m));
    if let Some(f) = foreign(
        lo.as_ref().and_then(|l| l.alias.clone()),
        &job.expected,
        job.adoptable,
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

fn observe_here(r: &mut Requester, job: &NsJob, psched: &Psched) -> Result<NsObserved, NetError> {
    let dumped = r.links()?;
    // Each link names its root qdisc's kind: without a netem or tbf root anywhere, there is
    // nothing of `topo`'s to find in a qdisc dump (a quarter of a no-op `up`'s requests).
    let impaired = dumped
        .iter()
        .any(|m| matches!(link::root_qdisc_of(m), Some("netem" | "tbf")));
    let mut links: Vec<LinkObs> = dumped.iter().map(to_obs).collect();
    // A bridge's VXLAN port reaches the other hosts through its flood entries. (A tunnel
    // with a remote has the kernel's own entry for it, which is not one of them.)
    if links
        .iter()
        .any(|l| l.vxlan.as_ref().is_some_and(|v| v.remote.is_none()))
    {
        for (index, remote) in r.flood_entries()? {
            if let Some(v) = links
                .iter_mut()
                .find(|l| l.index == index)
                .and_then(|l| l.vxlan.as_mut())
            {
                if v.remote != Some(remote) {
                    v.flood.push(remote);
                }
            }
        }
    }
    let lo_alias = links
        .iter()
        .find(|l| l.name == "lo")
        .and_then(|l| l.alias.clone());
    if let Some(f) = foreign(lo_alias, &job.expected, job.adoptable) {
        return Ok(f);
    }
    let addrs = addr::observed(&r.addresses()?);
    let routes = route::observed(r.routes()?);
    let qdiscs = if impaired {
        ours_qdiscs(
            r.qdiscs()?
                .iter()
                .map(|m| qdisc::observe(m, psched))
                .collect(),
        )
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
pub fn ours_qdiscs(all: Vec<qdisc::ObservedQdisc>) -> Vec<QdiscObs> {
    all.into_iter()
        .filter(|q| q.is_root() && (q.kind == "netem" || q.kind == "tbf"))
        .filter_map(|q| {
            q.impair().map(|impair| QdiscObs {
                index: q.ifindex,
                kind: q.kind.clone(),
                impair,
            })
        })
        .collect()
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
        // Read from the link's info data (and FDB) by the VXLAN observation, not here.
        vxlan: super::vxlan::parse(m).map(|v| crate::plan::VxlanSpec {
            vni: v.vni,
            port: v.port,
            local: v.local,
            remote: v.remote,
            learning: v.learning,
            flood: Vec::new(),
        }),
    }
}
