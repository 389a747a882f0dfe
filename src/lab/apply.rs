//! Apply: runs a plan's actions against the kernel, phase by phase (the plan's order), the
//! actions of one phase concurrently. The first error stops the run; what was done is
//! recorded, and the next `up` observes it and finishes the work.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::{Lab, LabError, Progress};
use crate::net::link::{LinkChange, VethEnd};
use crate::net::observe::{NsConn, Session, PARALLEL};
use crate::net::qdisc::{self, Psched, QdiscKind};
use crate::net::{self, netns, NetError};
use std::path::PathBuf;

use crate::node::cgroup::Cgroups;
use crate::node::security::Security;
use crate::node::{self, InitConfig, NodeContext, NodeError, ProcId};
use crate::plan::{names, Action, Desired, IfaceKind, Phase, Plan};
use crate::spec::Limits;
use crate::state::log::LogPipe;
use crate::state::{NodeRecord, RunDir, State};

pub(super) struct Applier<'a> {
    lab: &'a Lab,
    desired: &'a Desired,
    session: &'a mut Session,
    run: &'a RunDir,
    state: &'a mut State,
    index_cache: Mutex<HashMap<(Option<String>, String), u32>>,
    /// The next interface index to give a veth end made in each namespace (one above the
    /// highest it held before the run; 2, above its loopback, in one this run makes), or
    /// `None` once the kernel refused one (see `create_veth`).
    next_index: Mutex<Option<HashMap<String, u32>>>,
    /// Sysctls (namespace, key) that node inits started by this run set themselves.
    set_by_init: std::collections::HashSet<(String, String)>,
    /// The kernel's packet scheduler clock, read once per run (netem encodes in its ticks).
    psched: OnceLock<Psched>,
}

/// Set in every namespace `topo` creates, before any interface exists (see
/// `docs/file-format.md`); a node's own `sysctls` override them.
const NETNS_SYSCTLS: [(&str, &str); 6] = [
    // Addresses in a lab are unique (the validator checks), so duplicate address detection
    // would only delay IPv6 by seconds.
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    // Removing an interface's primary IPv4 address promotes a secondary one instead of
    // deleting every address of the subnet (and the routes through it).
    ("net.ipv4.conf.all.promote_secondaries", "1"),
    ("net.ipv4.conf.default.promote_secondaries", "1"),
    // A link set down (`state: down`, `topo link … down`) keeps its IPv6 addresses, as IPv4
    // ones are kept, so bringing it back up restores it as it was.
    ("net.ipv6.conf.all.keep_addr_on_down", "1"),
    ("net.ipv6.conf.default.keep_addr_on_down", "1"),
];

/// How many link changes are sent at once (see `Applier::set_links`): few, so that the second
/// end of a pair follows the first closely.
const SET_LINKS_AT_ONCE: usize = 2;

/// The interface index of a network namespace's loopback (the kernel's `LOOPBACK_IFINDEX`).
const LOOPBACK_INDEX: u32 = 1;

/// How long a killed process may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

impl<'a> Applier<'a> {
    pub fn new(
        lab: &'a Lab,
        desired: &'a Desired,
        session: &'a mut Session,
        run: &'a RunDir,
        state: &'a mut State,
        observed: &crate::plan::Observed,
    ) -> Self {
        let next_index = observed
            .namespaces
            .iter()
            .filter_map(|(name, o)| match o {
                crate::plan::NsObserved::Ours(st) => {
                    Some((name.clone(), st.links.iter().map(|l| l.index).max()? + 1))
                }
                crate::plan::NsObserved::Foreign { .. } => None,
            })
            .collect();
        Applier {
            lab,
            desired,
            session,
            run,
            state,
            index_cache: Mutex::new(HashMap::new()),
            next_index: Mutex::new(Some(next_index)),
            set_by_init: std::collections::HashSet::new(),
            psched: OnceLock::new(),
        }
    }

    pub async fn run(mut self, plan: &Plan, progress: Option<&Progress>) -> Result<(), LabError> {
        // The observation read the namespaces through sockets of its own: those that exist
        // and have something to change get the socket that carries the changes now (the
        // ones made by this run get theirs as they are made).
        self.session
            .connect(plan.actions.iter().filter_map(Action::netlink_ns))?;
        let mut i = 0;
        while i < plan.actions.len() {
            let phase = plan.actions[i].phase();
            let end = phase_end(&plan.actions, i);
            let started = std::time::Instant::now();
            if let Some(p) = progress {
                p(phase.name(), i, plan.actions.len());
            }
            let starts_end = phase_end(&plan.actions, end);
            if phase == Phase::CreateNetns && starts_end > end {
                if let Some(Phase::StartNodes) = plan.actions.get(end).map(Action::phase) {
                    self.create_and_start(&plan.actions[i..end], &plan.actions[end..starts_end])
                        .await?;
                    tracing::info!(
                        phase = "create namespaces and start nodes",
                        actions = starts_end - i,
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        "applied"
                    );
                    i = starts_end;
                    continue;
                }
            }
            self.phase(phase, &plan.actions[i..end]).await?;
            tracing::info!(
                phase = phase.name(),
                actions = end - i,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "applied"
            );
            i = end;
        }
        if let Some(p) = progress {
            p("done", plan.actions.len(), plan.actions.len());
        }
        Ok(())
    }

    /// Runs the actions of one phase.
    async fn phase(&mut self, phase: Phase, actions: &[Action]) -> Result<(), LabError> {
        match phase {
            Phase::StopServices | Phase::StopNodes => self.stop(actions).await,
            Phase::DeleteNetns => self.delete_netns(actions),
            Phase::CreateNetns => self.create_netns(actions),
            Phase::StartNodes => self.start_nodes(actions).await,
            Phase::SetLimits => self.set_limits(actions),
            Phase::SetSysctls => self.sysctls(actions),
            Phase::RunExec => self.exec(actions).await,
            Phase::StartServices => self.services(actions).await,
            Phase::SetLinks => self.set_links(actions).await,
            Phase::DeleteLinks
            | Phase::CreateBridges
            | Phase::CreateVeths
            | Phase::CreateVxlans
            | Phase::Impairments
            | Phase::AddAddresses
            | Phase::DelAddresses
            | Phase::DelRoutes
            | Phase::AddRoutes => {
                let this = &*self;
                stream::iter(actions)
                    .map(|a| this.kernel(a))
                    .buffer_unordered(PARALLEL)
                    .try_collect::<Vec<()>>()
                    .await?;
                Ok(())
            }
        }
    }

    async fn stop(&mut self, actions: &[Action]) -> Result<(), LabError> {
        let mut victims = Vec::new();
        let mut gone = Vec::new();
        for a in actions {
            if let Action::StopService { node, service, .. } = a {
                if let Some(rec) = self
                    .state
                    .nodes
                    .get_mut(node)
                    .and_then(|n| n.services.remove(service))
                {
                    victims.push(rec.proc);
                }
            } else if let Action::StopNode { node, pid, start } = a {
                let id = ProcId {
                    pid: *pid,
                    start: *start,
                };
                if self.state.nodes.get(node).is_some_and(|r| r.init == id) {
                    self.state.nodes.remove(node);
                }
                victims.push(id);
                // Gone from the file, or from this host's share.
                if !self.desired.has_node(node) {
                    gone.push(node);
                }
            }
        }
        kill_all(victims).await?;
        // Groups of nodes that left the file go once their processes are gone.
        if let (false, Ok(cg)) = (gone.is_empty(), Cgroups::detect()) {
            for node in gone {
                cg.remove(self.lab.name(), node)
                    .map_err(LabError::cgroup(node))?;
            }
        }
        Ok(())
    }

    fn delete_netns(&mut self, actions: &[Action]) -> Result<(), LabError> {
        for a in actions {
            if let Action::DeleteNetns { ns, .. } = a {
                self.session.ns.remove(ns);
                netns::delete(ns)?;
            }
        }
        Ok(())
    }

    /// Creates the namespaces on one dedicated thread, opening a socket in each and marking
    /// its loopback at once, so that a crash right after leaves a namespace `down` knows.
    /// Creates namespaces and starts the inits of `starts` together: each node's init is
    /// handed to the spawner as soon as its namespace exists, so that the kernel's namespace
    /// work and the inits' mount work overlap.
    async fn create_and_start(
        &mut self,
        creates: &[Action],
        starts: &[Action],
    ) -> Result<(), LabError> {
        let mut jobs = self.init_configs(starts)?;
        let exists: std::collections::HashSet<String> = jobs
            .iter()
            .filter(|(_, ns, _)| self.session.ns.contains_key(ns))
            .map(|(_, ns, _)| ns.clone())
            .collect();
        // `/run/netns` is a mount point before the first helper leaves the host's mount
        // namespace, so that its private copy, which later helpers join, can drop it: one
        // made afterwards would reach that copy, with every namespace bound in it.
        netns::ensure_dir()?;
        let feed = node::spawn::SpawnFeed::start(jobs.iter().map(|(c, _, _)| c), super::stopping)?;
        let sender = feed.sender();
        // Cgroups are made on a thread of their own, meanwhile.
        let cg = self.cgroups();
        let lab = self.lab.name().to_string();
        let cg_sender = feed.sender();
        let grouper = std::thread::spawn(move || {
            let made = make_cgroups_and_send(cg, &lab, &mut jobs, &cg_sender, &exists);
            (jobs, made)
        });
        let t = std::time::Instant::now();
        let created = self.create_netns_feeding(creates, Some(sender));
        tracing::debug!(
            ms = t.elapsed().as_secs_f64() * 1e3,
            namespaces = creates.len(),
            "namespaces created"
        );
        let (jobs, grouped) = grouper
            .join()
            .map_err(|_| NodeError::sys("cgroup thread", std::io::Error::other("panicked")))?;
        let results = tokio::task::spawn_blocking(move || feed.finish())
            .await
            .map_err(|e| NodeError::sys("spawner thread", std::io::Error::other(e)))?;
        tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "inits started");
        // Inits that started are recorded even when something else failed.
        let jobs = jobs.into_iter().map(|(c, ns, _)| (c, ns)).collect();
        let recorded = results
            .map_err(LabError::from)
            .and_then(|r| self.record_inits(jobs, r));
        created.and(grouped).and(recorded)
    }

    fn create_netns(&mut self, actions: &[Action]) -> Result<(), LabError> {
        self.create_netns_feeding(actions, None)
    }

    fn create_netns_feeding(
        &mut self,
        actions: &[Action],
        feed: Option<node::spawn::SpawnSender>,
    ) -> Result<(), LabError> {
        netns::ensure_dir()?;
        self.state.creating = actions
            .iter()
            .filter_map(|a| {
                let Action::CreateNetns { ns, .. } = a else {
                    return None;
                };
                Some(ns.clone())
            })
            .collect();
        self.run.save(self.state)?;
        let lab = self.lab.name().to_string();
        // Nodes with a user namespace (all but `userns: false`) get a network namespace owned
        // by it.
        let ids = self.userns_ids();
        let mut plain = Vec::new();
        let mut owned = Vec::new();
        for a in actions {
            if let Action::CreateNetns { ns, who } = a {
                match ids.get(who) {
                    Some(id) if ns == &names::node_netns(&lab, who) => {
                        owned.push((ns.clone(), *id))
                    }
                    _ => plain.push(ns.clone()),
                }
            }
        }
        let rt = self.session.rt.clone();
        let bridge_ns = names::bridge_netns(&lab);
        let created = std::thread::spawn(move || {
            let host_proc = std::path::Path::new(net::sysctl::HOST_PROC);
            let marking = std::cell::RefCell::new(Vec::new());
            let is_bridge_ns = |name: &str| name == bridge_ns;
            // A signal stops the run before the next namespace. What was made is found again
            // without a record (a namespace by the mark on its loopback, an init as the first
            // process of a PID namespace in one of them): the next `up` or `down` finishes
            // from there.
            let go_on = |name: &str| {
                if !super::stopping() {
                    return Ok(());
                }
                let _ = std::fs::remove_file(netns::path(name));
                Err(NetError::io(
                    format!("create netns {name}"),
                    std::io::Error::other("topo is stopping"),
                ))
            };
            // Inside each new namespace: the default sysctls, a socket, the marker on lo.
            let start_init = |name: &str| -> Result<(), NetError> {
                if let Some(sender) = &feed {
                    sender.release(name).map_err(|e| {
                        NetError::io("node spawner", std::io::Error::other(e.to_string()))
                    })?;
                }
                Ok(())
            };
            let setup = |name: &str| {
                // A node's init sets them through its own procfs (see `InitConfig::sysctls`):
                // through the host's, lookups grow with the square of the namespaces.
                if is_bridge_ns(name) {
                    for (key, value) in NETNS_SYSCTLS {
                        net::sysctl::write_here(host_proc, key, value, name)?;
                    }
                }
                let handle = net::connect_here(&rt)?;
                let change = LinkChange {
                    alias: Some(names::ns_marker(&lab, name)),
                    up: Some(true),
                    ..LinkChange::default()
                };
                // Not waited for here: the next namespace is made meanwhile.
                let lo = handle.clone();
                let who = format!("{name}:lo");
                marking.borrow_mut().push(rt.spawn(async move {
                    net::link::set(&lo, LOOPBACK_INDEX, &who, &change).await
                }));
                start_init(name)?;
                Ok(handle)
            };
            let mut out: Vec<(String, (netns::NsId, rtnetlink::Handle))> = Vec::new();
            let made = netns::create_each_made(
                &plain,
                |_, name| {
                    go_on(name)?;
                    netns::create_here(name)
                },
                |name, _| setup(name),
            )?;
            out.extend(plain.into_iter().zip(made));
            // Each node's namespace is set up (and its init released) as soon as it exists, so
            // that the spawner starts inits while the next namespaces are made.
            let (owned_names, owned_ids): (Vec<String>, Vec<u32>) = owned.into_iter().unzip();
            let mut holders = node::userns::Holders::default();
            let made = netns::create_each_made(
                &owned_names,
                |i, name| {
                    go_on(name)?;
                    let id = owned_ids.get(i).copied().ok_or_else(|| {
                        NetError::io(
                            format!("create netns {name}"),
                            std::io::Error::other("no id range"),
                        )
                    })?;
                    holders.create_netns(&netns::path(name), id).map_err(|e| {
                        NetError::io(
                            format!("create netns {name}"),
                            std::io::Error::other(e.to_string()),
                        )
                    })
                },
                |name, _| setup(name),
            );
            drop(holders);
            out.extend(owned_names.into_iter().zip(made?));
            for marked in marking.into_inner() {
                rt.block_on(marked).map_err(|e| {
                    NetError::io("mark a namespace", std::io::Error::other(e.to_string()))
                })??;
            }
            Ok::<_, NetError>(out)
        })
        .join()
        .map_err(|_| NetError::io("netns thread", std::io::Error::other("panicked")))??;
        for (name, (id, handle)) in created {
            self.session.ns.insert(
                name,
                NsConn {
                    id,
                    handle: Some(handle),
                },
            );
        }
        self.state.creating.clear();
        self.run.save(self.state)?;
        Ok(())
    }

    /// The host's cgroups; an error only matters to nodes that declare limits.
    fn cgroups(&self) -> Result<Cgroups, LabError> {
        Cgroups::detect().map_err(|e| LabError::Kernel(format!("cgroups: {e}")))
    }

    fn set_limits(&mut self, actions: &[Action]) -> Result<(), LabError> {
        let cg = self.cgroups();
        for a in actions {
            if let Action::SetLimits { node, limits } = a {
                let groups = node_cgroups(&cg, self.lab.name(), node, limits)?;
                // A memory limit on a running node may have made its memory group just now:
                // move the node's processes in, and join it from now on (`exec`, services).
                if let Ok(cg) = &cg {
                    cg.gather(self.lab.name(), node)
                        .map_err(LabError::cgroup(node))?;
                }
                if let Some(rec) = self.state.nodes.get_mut(node) {
                    rec.ctx.cgroups = groups;
                }
            }
        }
        Ok(())
    }

    async fn start_nodes(&mut self, actions: &[Action]) -> Result<(), LabError> {
        let jobs = self.init_jobs(actions)?;
        let configs: Vec<InitConfig> = jobs.iter().map(|(c, _)| c.clone()).collect();
        let results = tokio::task::spawn_blocking(move || {
            node::spawn::start_inits(&configs, super::stopping)
        })
        .await
        .map_err(|e| NodeError::sys("spawner thread", std::io::Error::other(e)))??;
        self.record_inits(jobs, results)
    }

    /// The init configurations of the nodes to start, with their namespace names; creates
    /// their cgroups.
    fn init_jobs(&self, actions: &[Action]) -> Result<Vec<(InitConfig, String)>, LabError> {
        let cg = self.cgroups();
        let mut jobs = Vec::new();
        for (mut config, ns, limits) in self.init_configs(actions)? {
            config.ctx.cgroups = node_cgroups(&cg, self.lab.name(), &config.node, &limits)?;
            jobs.push((config, ns));
        }
        Ok(jobs)
    }

    /// The first host id of each `userns` node's range.
    fn userns_ids(&self) -> BTreeMap<String, u32> {
        let nodes: Vec<&str> = self
            .lab
            .topology
            .nodes
            .iter()
            .filter(|(_, n)| n.has_userns())
            .map(|(k, _)| k.as_str())
            .collect();
        node::userns::allocate(self.lab.name(), &nodes)
    }

    /// The init configurations of the nodes to start, without their cgroups, with their
    /// namespace names and limits.
    /// Makes their private directories.
    fn init_configs(
        &self,
        actions: &[Action],
    ) -> Result<Vec<(InitConfig, String, Limits)>, LabError> {
        let mut jobs = Vec::new();
        let ids = self.userns_ids();
        // What a client of the nodes' exec sockets shows; without it, `topo exec` enters
        // the nodes from outside.
        let exec_token = self.run.lock_id();
        for a in actions {
            let Action::StartNode { node } = a else {
                continue;
            };
            let Some(spec) = self.lab.topology.nodes.get(node) else {
                continue;
            };
            let ns = names::node_netns(self.lab.name(), node);
            let mut env = node::base_env(self.lab.name(), node);
            env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut security = Security::resolve(
                spec.capabilities.as_ref(),
                spec.seccomp.as_ref(),
                spec.filesystem.as_ref(),
                spec.has_userns(),
            );
            security.apparmor = spec.apparmor.clone();
            // A seccomp profile of the user's may deny what the init's channel loop calls.
            let exec_socket = match (&security.seccomp, exec_token) {
                (crate::spec::Seccomp::Profile(_), _) | (_, None) => None,
                (_, Some(_)) => node::channel::socket_name(&self.run.path, node),
            };
            let ctx = NodeContext {
                env,
                security,
                cgroups: Vec::new(),
                userns: spec.has_userns(),
            };
            let config = InitConfig {
                lab: self.lab.name().to_string(),
                node: node.clone(),
                netns: netns::path(&ns),
                hosts: self.run.hosts_path(),
                binds: spec.binds.clone(),
                log: Some(self.run.log_path("init")),
                rootfs: spec.rootfs.clone(),
                ctx,
                sysctls: init_sysctls(self.desired.namespaces.get(&ns).map(|n| &n.sysctls)),
                tmpfs: (&spec.tmpfs).into(),
                dirs: super::dirs::prepare(self.run, node, spec, ids.get(node).copied())?,
                exec_socket,
                exec_token,
            };
            jobs.push((config, ns, spec.limits.clone()));
        }
        Ok(jobs)
    }

    /// Records the inits that started; an error names every node that did not.
    fn record_inits(
        &mut self,
        jobs: Vec<(InitConfig, String)>,
        results: Vec<node::spawn::InitReport>,
    ) -> Result<(), LabError> {
        let mut results: HashMap<String, Result<ProcId, String>> = results.into_iter().collect();
        let mut failed = Vec::new();
        for (config, ns) in jobs {
            let inode = match self.session.ns.get(&ns) {
                Some(c) => c.id.inode,
                None => {
                    // Its namespace was never made (an earlier error): not started.
                    results.remove(&config.node);
                    continue;
                }
            };
            match results.remove(&config.node) {
                Some(Ok(init)) => {
                    for (key, _) in &config.sysctls {
                        self.set_by_init.insert((ns.clone(), key.clone()));
                    }
                    self.session
                        .procs
                        .insert(ns, net::sysctl::node_proc(init.pid));
                    let digest = self
                        .lab
                        .topology
                        .nodes
                        .get(&config.node)
                        .map(super::node_digest)
                        .unwrap_or_default();
                    let record = NodeRecord {
                        init,
                        netns_inode: inode,
                        ctx: config.ctx,
                        config: digest,
                        services: BTreeMap::new(),
                        exec_done: Some(Vec::new()),
                    };
                    self.state.nodes.insert(config.node, record);
                }
                Some(Err(e)) => failed.push(format!("node {}: {e}", config.node)),
                None => failed.push(format!("node {}: its init did not report", config.node)),
            }
        }
        self.run.save(self.state)?;
        if !failed.is_empty() {
            return Err(LabError::Node(NodeError::Failed {
                node: "init".into(),
                message: format!(
                    "{} node(s) did not start:\n  {}",
                    failed.len(),
                    failed.join("\n  ")
                ),
            }));
        }
        Ok(())
    }

    /// Writes sysctls on one dedicated thread that enters each namespace in turn.
    fn sysctls(&mut self, actions: &[Action]) -> Result<(), LabError> {
        let mut by_ns: BTreeMap<&str, Vec<(&str, &str, &str)>> = BTreeMap::new();
        for a in actions {
            if let Action::SetSysctl {
                ns, who, key, to, ..
            } = a
            {
                if self.set_by_init.contains(&(ns.clone(), key.clone())) {
                    continue;
                }
                by_ns.entry(ns.as_str()).or_default().push((
                    key.as_str(),
                    to.as_str(),
                    who.as_str(),
                ));
            }
        }
        let mut ids = Vec::new();
        let mut work = Vec::new();
        let mut procs = Vec::new();
        for (ns, items) in by_ns {
            procs.push(self.session.proc_dir(ns));
            let conn = self.session.ns.get(ns).ok_or_else(|| {
                NetError::io(
                    format!("netns {ns}"),
                    std::io::Error::from_raw_os_error(libc::ENOENT),
                )
            })?;
            ids.push(conn.id.clone());
            work.push(
                items
                    .into_iter()
                    .map(|(k, v, w)| (k.to_string(), v.to_string(), w.to_string()))
                    .collect::<Vec<_>>(),
            );
        }
        std::thread::spawn(move || {
            netns::enter_each(&ids, |i| {
                for (key, value, who) in &work[i] {
                    net::sysctl::write_here(&procs[i], key, value, who)?;
                }
                Ok(())
            })
        })
        .join()
        .map_err(|_| NetError::io("netns thread", std::io::Error::other("panicked")))??;
        Ok(())
    }

    /// The links' changes, each veth pair's two ends one right after the other
    /// ([`pairs_together`]), at most [`SET_LINKS_AT_ONCE`] at a time.
    async fn set_links(&self, actions: &[Action]) -> Result<(), LabError> {
        stream::iter(pairs_together(actions, &self.desired.veths))
            .map(|a| self.kernel(a))
            .buffered(SET_LINKS_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// One netlink action.
    async fn kernel(&self, a: &Action) -> Result<(), LabError> {
        match a {
            Action::DeleteLink {
                ns,
                who,
                name,
                index,
            } => {
                net::link::del(
                    self.session.handle(ns.as_deref())?,
                    *index,
                    &format!("{who}:{name}"),
                )
                .await?;
            }
            Action::CreateBridge { ns, name } => {
                let spec = self.iface(Some(ns), name);
                let mtu = spec
                    .and_then(|s| s.mtu)
                    .unwrap_or(crate::plan::desired::DEFAULT_MTU);
                let mac = spec
                    .and_then(|s| s.mac)
                    .unwrap_or_else(|| names::mac(self.lab.name(), ns, name));
                net::link::add_bridge(
                    self.session.handle(Some(ns))?,
                    name,
                    mtu,
                    mac,
                    names::lab_group(self.lab.name()),
                )
                .await?;
            }
            Action::CreateVeth { veth } => self.create_veth(veth).await?,
            Action::CreateVxlan {
                ns,
                who,
                name,
                spec,
            } => self.create_vxlan(ns, who, name, spec).await?,
            Action::SetLink {
                ns,
                who,
                name,
                spec,
                implied,
                ..
            } => {
                let handle = self.session.handle(ns.as_deref())?;
                let index = self.index(ns.as_deref(), name).await?;
                let controller = match &spec.controller {
                    Some(c) => Some(self.index(ns.as_deref(), c).await?),
                    None => None,
                };
                let change = LinkChange {
                    mtu: spec.mtu,
                    up: Some(spec.up),
                    alias: Some(spec.marker.clone()),
                    controller,
                    // An interface made in this run has its MAC from its creation; setting
                    // it again would send every listener a change of address (the kernel
                    // flushes neighbours and walks the IPv6 routes for it) for nothing.
                    mac: if spec.kind == IfaceKind::Loopback || *implied {
                        None
                    } else {
                        spec.mac
                    },
                };
                net::link::set(handle, index, &format!("{who}:{name}"), &change).await?;
            }
            Action::AddAddress {
                ns,
                who,
                iface,
                addr,
            }
            | Action::DelAddress {
                ns,
                who,
                iface,
                addr,
            } => {
                let index = self.index(ns.as_deref(), iface).await?;
                let handle = self.session.handle(ns.as_deref())?;
                let what = format!("{who}:{iface}");
                if matches!(a, Action::AddAddress { .. }) {
                    net::addr::add(handle, index, *addr, &what).await?;
                } else {
                    net::addr::del(handle, index, *addr, &what).await?;
                }
            }
            Action::AddRoute {
                ns,
                who,
                route,
                replace,
            } => {
                let oif = match &route.dev {
                    Some(dev) => Some(self.index(Some(ns), dev).await?),
                    None => None,
                };
                let msg = net::route::message(route, oif)?;
                net::route::add(
                    self.session.handle(Some(ns))?,
                    msg,
                    *replace,
                    &format!("{who}: {route}"),
                )
                .await?;
            }
            Action::SetImpair {
                ns,
                who,
                name,
                impair,
            } => {
                let index = self.index(ns.as_deref(), name).await?;
                let Some(kind) = QdiscKind::for_impair(impair) else {
                    return Ok(());
                };
                let psched = match self.psched.get() {
                    Some(p) => *p,
                    None => {
                        let read = Psched::read()?;
                        *self.psched.get_or_init(|| read)
                    }
                };
                qdisc::replace_root(self.session.handle(ns.as_deref())?, index, &kind, &psched)
                    .await
                    .map_err(|e| prefix(e, &format!("{who}:{name}")))?;
            }
            Action::ClearImpair { ns, who, name } => {
                let index = self.index(ns.as_deref(), name).await?;
                qdisc::delete_root(self.session.handle(ns.as_deref())?, index)
                    .await
                    .map_err(|e| prefix(e, &format!("{who}:{name}")))?;
            }
            Action::DelRoute { ns, who, route } => {
                net::route::del(
                    self.session.handle(Some(ns))?,
                    route.dst,
                    route.metric,
                    &format!("{who}: {route}"),
                )
                .await?;
            }
            // Not netlink actions: their phases have handlers of their own.
            Action::StopService { .. }
            | Action::StopNode { .. }
            | Action::DeleteNetns { .. }
            | Action::CreateNetns { .. }
            | Action::StartNode { .. }
            | Action::SetLimits { .. }
            | Action::SetSysctl { .. }
            | Action::RunExec { .. }
            | Action::StartService { .. } => {
                return Err(LabError::Internal(format!("`{a}` is not a netlink action")))
            }
        }
        Ok(())
    }

    async fn create_veth(&self, v: &crate::plan::VethSpec) -> Result<(), LabError> {
        // Each end's namespace, open for the length of this request only.
        let open = |ns: &Option<String>| -> Result<Option<File>, NetError> {
            match ns {
                None => Ok(None),
                Some(ns) => match self.session.ns.get(ns) {
                    Some(c) => c.id.open().map(Some),
                    None => Err(NetError::io(
                        format!("netns {ns}"),
                        std::io::Error::from_raw_os_error(libc::ENOENT),
                    )),
                },
            }
        };
        let (file_a, file_b) = (open(&v.a.ns)?, open(&v.b.ns)?);
        fn fd_of(f: &Option<File>) -> Option<std::os::fd::BorrowedFd<'_>> {
            f.as_ref().map(|f| f.as_fd())
        }
        let spec_a = self.iface(v.a.ns.as_deref(), &v.a.name);
        let spec_b = self.iface(v.b.ns.as_deref(), &v.b.name);
        let group = names::lab_group(self.lab.name());
        let mut a = VethEnd {
            group,
            name: &v.a.name,
            index: 0,
            netns: fd_of(&file_a),
            mac: spec_a.and_then(|s| s.mac).unwrap_or_default(),
        };
        let mut b = VethEnd {
            group,
            name: &v.b.name,
            index: 0,
            netns: fd_of(&file_b),
            mac: spec_b.and_then(|s| s.mac).unwrap_or_default(),
        };
        let mtu = spec_a
            .and_then(|s| s.mtu)
            .unwrap_or(crate::plan::desired::DEFAULT_MTU);
        // Both ends are made down: the links' phase brings the two up one right after the
        // other (see `set_links`).
        let up = false;
        // With both ends in namespaces, each is given its interface index, so that no later
        // step has to ask for it (two requests per pair). The request then goes on the
        // socket of end `a`'s namespace, where the kernel looks the index up first (on the
        // host's socket, a host interface with that index would make it EEXIST).
        let chosen = match (&v.a.ns, &v.b.ns) {
            (Some(na), Some(nb)) => match self.session.handle(Some(na)) {
                Ok(h) => self.choose_indices(na, nb).map(|ix| (h, ix)),
                Err(_) => None,
            },
            _ => None,
        };
        if let Some((handle, (ia, ib))) = chosen {
            (a.index, b.index, a.netns) = (ia, ib, None);
            match net::link::add_veth(handle, &a, &b, mtu, up).await {
                Ok(()) => {
                    if let Ok(mut c) = self.index_cache.lock() {
                        c.insert((v.a.ns.clone(), v.a.name.clone()), ia);
                        c.insert((v.b.ns.clone(), v.b.name.clone()), ib);
                    }
                    return Ok(());
                }
                // Taken, by a device the kernel makes in every namespace (fallback tunnels)
                // or one made meanwhile: the kernel picks indices from now on.
                Err(e) if e.errno() == Some(libc::EBUSY) || e.errno() == Some(libc::EEXIST) => {
                    if let Ok(mut n) = self.next_index.lock() {
                        *n = None;
                    }
                    (a.index, b.index, a.netns) = (0, 0, fd_of(&file_a));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Their indexes are the kernel's choice: an index this run knew under either name is
        // forgotten. Sent on the socket of end `a`'s namespace when it has one, with `b` sent
        // on to its own: kernels before 6.14 look a new interface's name up in the namespace
        // of the request, where the host's socket would meet the host's own `eth0`.
        // With one end in the host's namespace, that end is the one the request makes.
        match (&v.a.ns, &v.b.ns) {
            (Some(na), Some(_)) => {
                a.netns = None;
                net::link::add_veth(self.session.handle(Some(na))?, &a, &b, mtu, up).await?;
            }
            (Some(_), None) => net::link::add_veth(&self.session.host, &b, &a, mtu, up).await?,
            (None, _) => net::link::add_veth(&self.session.host, &a, &b, mtu, up).await?,
        }
        if let Ok(mut c) = self.index_cache.lock() {
            c.remove(&(v.a.ns.clone(), v.a.name.clone()));
            c.remove(&(v.b.ns.clone(), v.b.name.clone()));
        }
        Ok(())
    }

    /// A VXLAN interface: made from the host's namespace, where its UDP socket stays and
    /// finds the underlay, straight into `ns`, under a name of its own that it loses there.
    /// Kernels before 6.14 look the name of a new interface up in the namespace of the
    /// request, so `eth1` made directly would clash with a host's own `eth1`. Then the flood
    /// entries of a bridge's port.
    async fn create_vxlan(
        &self,
        ns: &str,
        who: &str,
        name: &str,
        spec: &crate::plan::IfaceSpec,
    ) -> Result<(), LabError> {
        let what = format!("{who}:{name}");
        let Some(vx) = &spec.vxlan else {
            return Err(LabError::Internal(format!(
                "{what}: a VXLAN without a tunnel"
            )));
        };
        let file = match self.session.ns.get(ns) {
            Some(c) => c.id.open()?,
            None => {
                return Err(NetError::io(
                    format!("netns {ns}"),
                    std::io::Error::from_raw_os_error(libc::ENOENT),
                )
                .into())
            }
        };
        let lab = self.lab.name();
        let temp = names::vxlan_temp_name(lab, ns, name);
        let tunnel = net::vxlan::Vxlan {
            vni: vx.vni,
            port: vx.port,
            local: vx.local,
            remote: vx.remote,
            learning: vx.learning,
        };
        net::vxlan::add(
            &self.session.host,
            Some(file.as_fd()),
            &temp,
            0,
            &tunnel,
            spec.mtu.unwrap_or(crate::plan::desired::DEFAULT_MTU),
            spec.mac.unwrap_or_else(|| names::mac(lab, ns, name)),
            names::lab_group(lab),
        )
        .await
        .map_err(|e| prefix(e, &what))?;
        drop(file);
        let index = self.index(Some(ns), &temp).await?;
        let handle = self.session.handle(Some(ns))?;
        net::link::rename(handle, index, name, &what).await?;
        if let Ok(mut c) = self.index_cache.lock() {
            c.remove(&(Some(ns.to_string()), temp));
            c.insert((Some(ns.to_string()), name.to_string()), index);
        }
        for remote in &vx.flood {
            net::vxlan::flood_add(handle, index, *remote)
                .await
                .map_err(|e| prefix(e, &what))?;
        }
        Ok(())
    }

    /// The next free interface index in each of two namespaces (the same one twice if it
    /// is; see `next_index`); `None` once the kernel refused one.
    fn choose_indices(&self, a: &str, b: &str) -> Option<(u32, u32)> {
        let mut guard = self.next_index.lock().ok()?;
        let next = guard.as_mut()?;
        let mut take = |ns: &str| {
            let n = next.entry(ns.to_string()).or_insert(LOOPBACK_INDEX + 1);
            let i = *n;
            *n += 1;
            i
        };
        let ia = take(a);
        Some((ia, take(b)))
    }

    fn iface(&self, ns: Option<&str>, name: &str) -> Option<&crate::plan::IfaceSpec> {
        match ns {
            None => self.desired.host_ifaces.get(name),
            Some(ns) => self
                .desired
                .namespaces
                .get(ns)
                .and_then(|s| s.ifaces.get(name)),
        }
    }

    /// The ifindex of an interface by name, asked of the kernel once per run.
    async fn index(&self, ns: Option<&str>, name: &str) -> Result<u32, LabError> {
        if ns.is_some() && name == "lo" {
            // The loopback of every network namespace is made with index 1.
            return Ok(LOOPBACK_INDEX);
        }
        let key = (ns.map(str::to_string), name.to_string());
        if let Some(i) = self
            .index_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
        {
            return Ok(i);
        }
        let handle = self.session.handle(ns)?;
        let what = format!("{}:{name}", ns.unwrap_or("host"));
        let mut links = handle.link().get().match_name(name.to_string()).execute();
        let msg = links
            .try_next()
            .await
            .map_err(net::nl_err(format!("find interface {what}")))?
            .ok_or_else(|| {
                NetError::io(
                    format!("find interface {what}"),
                    std::io::Error::from_raw_os_error(libc::ENODEV),
                )
            })?;
        let index = msg.header.index;
        if let Ok(mut c) = self.index_cache.lock() {
            c.insert(key, index);
        }
        Ok(index)
    }

    async fn exec(&mut self, actions: &[Action]) -> Result<(), LabError> {
        let mut jobs = Vec::new();
        for a in actions {
            let Action::RunExec { node, commands } = a else {
                continue;
            };
            let Some(rec) = self.state.nodes.get(node) else {
                continue;
            };
            jobs.push((node.clone(), commands.clone(), rec.init, rec.ctx.clone()));
        }
        let (dir, logs) = (self.run.logs_dir(), self.lab.topology.logs);
        let results: Vec<_> = stream::iter(jobs)
            .map(|(node, commands, init, ctx)| {
                let dir = dir.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let log = match LogPipe::start(&dir, &format!("{node}.exec"), logs) {
                            Ok(l) => l,
                            Err(e) => return (node, Vec::new(), Err(e.into())),
                        };
                        let (done, r) = run_commands(&node, &commands, init, &ctx, &log);
                        // Once the failing command's output is in the log (or after a second,
                        // if a process it left behind still holds the pipe).
                        if r.is_err() {
                            log.close_and_wait(Duration::from_secs(1));
                        }
                        (node, done, r)
                    })
                    .await
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        // Every line that ran is recorded, also when another node's failed: the next `up`
        // runs only the rest.
        let mut first_error = None;
        for r in results {
            let (node, done, result) = r.map_err(|e| {
                LabError::Node(NodeError::sys("exec thread", std::io::Error::other(e)))
            })?;
            if let Some(rec) = self.state.nodes.get_mut(&node) {
                rec.exec_done.get_or_insert_with(Vec::new).extend(done);
            }
            if let Err(mut e) = result {
                if let LabError::ExecFailed { tail, .. } = &mut e {
                    *tail = self.run.log_tail(&format!("{node}.exec"), 20);
                }
                first_error.get_or_insert(e);
            }
        }
        self.run.save(self.state)?;
        match first_error {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    async fn services(&mut self, actions: &[Action]) -> Result<(), LabError> {
        let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for a in actions {
            if let Action::StartService { node, service, .. } = a {
                wanted.entry(node).or_default().push(service.clone());
            }
        }
        let mut jobs = Vec::new();
        for (node, names) in wanted {
            let (Some(spec), Some(rec)) = (
                self.lab.topology.nodes.get(node),
                self.state.nodes.get(node),
            ) else {
                continue;
            };
            let services = super::services::start_order(&spec.services, &names)
                .into_iter()
                .filter_map(|s| spec.services.get(&s).map(|v| (s, v.clone())))
                .collect();
            jobs.push(super::services::NodeJob {
                node: node.to_string(),
                init: rec.init,
                ctx: rec.ctx.clone(),
                services,
            });
        }
        let (dir, logs) = (self.run.logs_dir(), self.lab.topology.logs);
        let results: Vec<_> = stream::iter(jobs)
            .map(|job| {
                let dir = dir.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let (started, failed) = super::services::start_node(&job, &dir, logs);
                        (job.node, started, failed)
                    })
                    .await
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut failures = Vec::new();
        let mut watch = Vec::new();
        for r in results {
            let (node, started, failed) =
                r.map_err(|e| NodeError::sys("service thread", std::io::Error::other(e)))?;
            for s in started {
                if s.settle {
                    watch.push((node.clone(), s.service.clone(), s.record.proc, s.at));
                }
                if let Some(rec) = self.state.nodes.get_mut(&node) {
                    rec.services.insert(s.service, s.record);
                }
            }
            if let Some(f) = failed {
                failures.push((node, f));
            }
        }
        self.run.save(self.state)?;
        // Services without a readiness check: still running a moment after their start.
        if let Some(last) = watch.iter().map(|w| w.3).max() {
            let until = last + super::services::SETTLE;
            tokio::time::sleep(until.saturating_duration_since(std::time::Instant::now())).await;
            for (node, service, proc_, _) in watch {
                if !proc_.alive() {
                    failures.push((
                        node,
                        super::services::Failed {
                            service,
                            reason: "exited during start".into(),
                        },
                    ));
                }
            }
        }
        match failures.into_iter().next() {
            None => Ok(()),
            Some((node, f)) => Err(super::services::failure(self.run, &node, f)),
        }
    }
}

/// Runs `commands` in order until one fails; returns the lines that ran to completion.
fn run_commands(
    node: &str,
    commands: &[String],
    init: ProcId,
    ctx: &NodeContext,
    log: &LogPipe,
) -> (Vec<String>, Result<(), LabError>) {
    use std::io::Write;
    let mut done = Vec::new();
    for command in commands {
        if super::stopping() {
            return (done, Err(LabError::Internal("topo is stopping".into())));
        }
        let mut l = match log.file() {
            Ok(l) => l,
            Err(e) => return (done, Err(e.into())),
        };
        let _ = writeln!(l, "$ {command}");
        let code = match node::spawn::run_shell(init, ctx, command, l) {
            Ok(c) => c,
            Err(e) => return (done, Err(e.into())),
        };
        if code != 0 {
            return (
                done,
                Err(LabError::ExecFailed {
                    node: node.to_string(),
                    command: command.clone(),
                    code,
                    // Read from the log once its writer has it all (see `exec`).
                    tail: String::new(),
                }),
            );
        }
        done.push(command.clone());
    }
    (done, Ok(()))
}

/// Kills processes (each checked by PID and start time) and waits until all are gone.
pub(super) async fn kill_all(victims: Vec<ProcId>) -> Result<(), LabError> {
    signal_all(&victims);
    wait_all(victims).await
}

/// Sends SIGKILL to each victim still alive (the recorded process, not a reused PID).
pub(super) fn signal_all(victims: &[ProcId]) {
    for v in victims {
        if v.alive() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(v.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Waits (bounded) until every victim is gone, killing any still alive.
pub(super) async fn wait_all(victims: Vec<ProcId>) -> Result<(), LabError> {
    if victims.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || {
        for v in &victims {
            node::spawn::kill_and_wait(*v, KILL_TIMEOUT)?;
        }
        Ok::<_, LabError>(())
    })
    .await
    .map_err(|e| NodeError::sys("kill thread", std::io::Error::other(e)))?
}

/// Names the interface an error is about.
fn prefix(e: NetError, what: &str) -> NetError {
    match e {
        NetError::Io { what: w, source } => NetError::Io {
            what: format!("{what}: {w}"),
            source,
        },
        NetError::Netlink {
            what: w,
            errno,
            message,
        } => NetError::Netlink {
            what: format!("{what}: {w}"),
            errno,
            message,
        },
    }
}

/// `actions` in their order, but with the change of each veth end's peer, if it has one
/// among them, right after the end's own.
///
/// A veth end that is up while its peer is down has no carrier. If the kernel's link
/// watcher reaches it then, it deactivates the end's queues, and waits for an expedited RCU
/// grace period holding RTNL, which every netlink request of the machine needs. A new
/// interface stays on the watcher's list for long (it takes at most 100 per run, and those
/// that are down at most once a second), and each end coming up with carrier starts a run at
/// once: with the ends of a pair apart in a queue of requests, nearly every pair met one
/// such wait; with them back to back, few do (measured in `docs/performance.md`).
fn pairs_together<'x>(actions: &'x [Action], veths: &[crate::plan::VethSpec]) -> Vec<&'x Action> {
    // An interface by its namespace (`None`: the host's) and name.
    type Key<'k> = (Option<&'k str>, &'k str);
    fn key(a: &Action) -> Option<Key<'_>> {
        match a {
            Action::SetLink { ns, name, .. } => Some((ns.as_deref(), name.as_str())),
            _ => None,
        }
    }
    let mut peer: HashMap<Key, Key> = HashMap::new();
    for v in veths {
        let a = (v.a.ns.as_deref(), v.a.name.as_str());
        let b = (v.b.ns.as_deref(), v.b.name.as_str());
        peer.insert(a, b);
        peer.insert(b, a);
    }
    let at: HashMap<Key, usize> = actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| key(a).map(|k| (k, i)))
        .collect();
    let mut done = vec![false; actions.len()];
    let mut order = Vec::with_capacity(actions.len());
    for (i, a) in actions.iter().enumerate() {
        if std::mem::replace(&mut done[i], true) {
            continue;
        }
        order.push(a);
        let other = key(a)
            .and_then(|k| peer.get(&k))
            .and_then(|p| at.get(p))
            .copied();
        if let Some(j) = other {
            if !std::mem::replace(&mut done[j], true) {
                order.push(&actions[j]);
            }
        }
    }
    order
}

/// Where the phase of the action at `start` ends.
fn phase_end(actions: &[Action], start: usize) -> usize {
    let Some(phase) = actions.get(start).map(Action::phase) else {
        return start;
    };
    actions[start..]
        .iter()
        .position(|a| a.phase() != phase)
        .map_or(actions.len(), |n| start + n)
}

/// The node's groups (created, limits written) and the `cgroup.procs` files to join.
fn node_cgroups(
    cg: &Result<Cgroups, LabError>,
    lab: &str,
    node: &str,
    limits: &Limits,
) -> Result<Vec<PathBuf>, LabError> {
    let declared = limits.memory.is_some()
        || (limits.pids.is_some() && !limits.pids_default)
        || limits.cpu.is_some();
    match cg {
        Ok(cg) => {
            let group = cg
                .create(lab, node, limits)
                .map_err(LabError::cgroup(node))?;
            Ok(group
                .paths()
                .iter()
                .map(|p| p.join("cgroup.procs"))
                .collect())
        }
        Err(e) if declared => Err(LabError::Kernel(format!(
            "node {node} declares limits, but {e}"
        ))),
        Err(e) => {
            tracing::warn!("node {node}: no cgroup ({e})");
            Ok(Vec::new())
        }
    }
}

/// Creates the nodes' cgroups and fills them into their configurations, handing each to the
/// spawner (to start once its namespace exists) as soon as it is complete.
fn make_cgroups_and_send(
    cg: Result<Cgroups, LabError>,
    lab: &str,
    jobs: &mut [(InitConfig, String, Limits)],
    sender: &node::spawn::SpawnSender,
    exists: &std::collections::HashSet<String>,
) -> Result<(), LabError> {
    for (config, ns, limits) in jobs.iter_mut() {
        config.ctx.cgroups = node_cgroups(&cg, lab, &config.node, limits)?;
        if exists.contains(ns) {
            // Its namespace exists already (a restarted node): it may start now.
            sender.send(config)?;
        } else {
            sender.send_after(ns, config)?;
        }
    }
    Ok(())
}

/// The sysctls a node's init sets in its own procfs before any interface exists: `topo`'s
/// defaults for every namespace, then the node's own keys that name no interface (those
/// wait for the sysctl phase, once the interfaces exist). Through the init, they cost no
/// lookups in the host's procfs (see `net::sysctl`), and they are set before the interfaces
/// are made, so `default` values reach them.
fn init_sysctls(node: Option<&BTreeMap<String, String>>) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = NETNS_SYSCTLS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in node.into_iter().flatten() {
        if !names_interface(k) {
            out.insert(k.clone(), v.clone());
        } else {
            out.remove(k);
        }
    }
    out.into_iter().collect()
}

/// `net.ipv4.conf.eth0.forwarding`, `net.ipv6.neigh.eth1.…`: keys of one interface (not
/// `all` or `default`).
fn names_interface(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    matches!(
        parts.as_slice(),
        ["net", "ipv4" | "ipv6", "conf" | "neigh", dev, _, ..] if *dev != "all" && *dev != "default"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_of_each_veth_pair_are_set_one_after_the_other() {
        // A star: r1's three ends come first in the plan, their peers long after.
        let yaml = "name: pt\nnodes:\n  r1: {}\n  a: {}\n  b: {}\n  c: {}\nlinks:\n  \
                    - endpoints: [r1:eth1, a:eth0]\n  - endpoints: [r1:eth2, b:eth0]\n  \
                    - endpoints: [r1:eth3, c:eth0]\n";
        let t = match crate::spec::parse_str(yaml, std::path::Path::new("pt.yaml")) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let desired = crate::plan::compile(&t, None);
        let plan = crate::plan::diff(&t, &desired, &crate::plan::Observed::default());
        let links: Vec<Action> = plan
            .actions
            .into_iter()
            .filter(|a| a.phase() == Phase::SetLinks)
            .collect();
        let name = |a: &Action| match a {
            Action::SetLink { ns, name, .. } => {
                let ns = ns.as_deref().unwrap_or("host");
                format!("{}:{name}", ns.rsplit('-').next().unwrap_or(ns))
            }
            other => format!("{other}"),
        };
        let before: Vec<String> = links.iter().map(name).collect();
        let after: Vec<String> = pairs_together(&links, &desired.veths)
            .into_iter()
            .map(name)
            .collect();
        let apart = |v: &[String], x: &str, y: &str| {
            let i = v.iter().position(|n| n == x);
            let j = v.iter().position(|n| n == y);
            !matches!((i, j), (Some(i), Some(j)) if i.abs_diff(j) == 1)
        };
        assert!(
            apart(&before, "r1:eth2", "b:eth0"),
            "the plan alone keeps them apart: {before:?}"
        );
        let mut sorted = after.clone();
        sorted.sort();
        let mut all = before.clone();
        all.sort();
        assert_eq!(sorted, all, "every change once");
        for (x, y) in [
            ("r1:eth1", "a:eth0"),
            ("r1:eth2", "b:eth0"),
            ("r1:eth3", "c:eth0"),
        ] {
            let i = after.iter().position(|n| n == x);
            let j = after.iter().position(|n| n == y);
            assert!(
                matches!((i, j), (Some(i), Some(j)) if i.abs_diff(j) == 1),
                "{x} and {y} apart: {after:?}"
            );
        }
    }

    #[test]
    fn inits_set_defaults_and_the_node_keys_that_name_no_interface() {
        let node: BTreeMap<String, String> = [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.accept_dad", "1"),
            ("net.ipv4.conf.eth0.rp_filter", "2"),
            ("net.ipv6.neigh.eth1.retrans_time_ms", "100"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let set: BTreeMap<String, String> = init_sysctls(Some(&node)).into_iter().collect();
        assert_eq!(
            set.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
        // The node's value wins over topo's default.
        assert_eq!(
            set.get("net.ipv6.conf.all.accept_dad").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            set.get("net.ipv4.conf.default.rp_filter")
                .map(String::as_str),
            Some("0")
        );
        assert!(!set.contains_key("net.ipv4.conf.eth0.rp_filter"));
        assert!(!set.contains_key("net.ipv6.neigh.eth1.retrans_time_ms"));
        assert_eq!(
            set.get("net.ipv4.conf.all.promote_secondaries")
                .map(String::as_str),
            Some("1")
        );
        assert_eq!(set.len(), NETNS_SYSCTLS.len() + 2);
    }
}
