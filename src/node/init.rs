//! `topo __spawn`: starts node inits; each becomes PID 1 of its node.
//!
//! The process joins the node's network namespace (or, for a node with a user namespace
//! that keeps `SYS_ADMIN`, the one its inits share, see [`Spawner::parking`]), unshares a
//! PID namespace and forks: the child is PID 1 of the new PID namespace. The child unshares mount, UTS and IPC namespaces,
//! sets the node up (mounts, hostname), reports on a pipe, and then only reaps zombies until it is
//! told to stop; when it exits the kernel kills everything else in the node. The parent
//! prints the child's host PID and start time and exits, so the init is nobody's child in
//! `topo` and outlives it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, setsid, ForkResult, Pid};

use super::security::{self, Steps};
use super::{mounts, InitConfig, NodeError, ProcId};

/// Entry point of `topo __spawn`: starts many node inits without an exec each. Reads one
/// JSON [`InitConfig`] per line on stdin and forks, for each, the node's init, reporting
/// `NODE PID START` or `NODE error: …` on one stdout line. Forking from this small
/// single-threaded process costs far less than executing the `topo` binary once per node.
///
/// The init is forked directly by this process: it joins the node's network namespace and
/// unshares a PID namespace for its next child, forks it (PID 1 of the node), then returns
/// to its own PID namespace for the next node. When this process exits, the inits it made
/// are reparented, so they are nobody's child in `topo`. A node with its own user namespace
/// needs an intermediate process (this one cannot leave a user namespace once joined), which
/// makes the init as this process's child (see [`start_via_intermediate`]), and which
/// joins the inits' network namespace instead of the node's where the init lives outside it.
///
/// Its first argument is the mask of every capability some node keeps (the second the soft
/// open-file limit to give back, or `-`; a `--mounts-fd=N` after them, the mount namespace
/// to join, and a `--parking-fd=N`, the inits' network namespace, see `Spawner::new`). The capabilities not in the mask are dropped
/// from this process's bounding set first, once: each drop commits a new copy of the
/// process's credentials, and every init inherits the result instead of making 27 such
/// drops itself (the default set keeps 14 of 41). The effective and permitted sets, which
/// the set-up needs, are not changed. A node with its own user namespace starts from a full
/// bounding set there and drops for itself; so does every init when this step fails.
pub fn spawn_main(args: &[String]) -> i32 {
    // If `topo up` dies (killed), so does this helper, and so does every node set-up under
    // way: nothing keeps making inits that the next `down` or `up` would not know of.
    die_with_parent();
    // Before anything is opened here: every init started outside its node's network
    // namespace holds that namespace on one descriptor, and this process keeps the inits'
    // namespace on another (given by `topo`, or made here).
    let given_parking = args.iter().any(|a| a.starts_with("--parking-fd="));
    let reserved = reserve_fd(super::procfs::NODE_NET_FD).and_then(|()| {
        if given_parking {
            Ok(())
        } else {
            reserve_fd(PARKING_FD)
        }
    });
    if let Err(e) = reserved {
        let _ = writeln!(std::io::stdout(), "? error: {e}");
        return 1;
    }
    // The caller's open-file limit comes as the second argument: the environment of this
    // process is every init's, and holds nothing.
    super::restore_nofile_limit_to(args.get(1).map(String::as_str));
    // Inherited by every init, which never execs: no process of a node may trace its init.
    if let Err(e) = security::not_dumpable() {
        let _ = writeln!(std::io::stdout(), "? error: {e}");
        return 1;
    }
    if let Some(mask) = args
        .first()
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
    {
        let _ = security::limit_bounding(&security::caps_of_mask(mask), false);
    }
    // The mount namespace to join, if `topo` passed one (see `Spawner::new`).
    let mounts = args
        .iter()
        .find_map(|a| a.strip_prefix("--mounts-fd="))
        .and_then(|fd| fd.parse::<RawFd>().ok())
        // SAFETY: `topo` passes a descriptor it opened for this process alone (the helper's
        // own copy of it); nothing else here owns it.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    // The inits' network namespace, if `topo` passed one (see `Spawner::new`).
    let parking = args
        .iter()
        .find_map(|a| a.strip_prefix("--parking-fd="))
        .and_then(|fd| fd.parse::<RawFd>().ok())
        // SAFETY: as for the mount namespace above.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let spawner = match Spawner::new(mounts, parking) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(std::io::stdout(), "? error: {e}");
            return 1;
        }
    };
    // Configurations are read as they come: `topo up` sends each node's as soon as its
    // network namespace exists, so that creating namespaces and starting inits overlap.
    spawner.run(std::io::stdin().lock());
    0
}

/// Keeps descriptor `at` taken in this process (by `/dev/null`, close-on-exec), so that no
/// descriptor opened here gets it: [`super::procfs::NODE_NET_FD`], where each init puts its
/// node's network namespace, and [`PARKING_FD`].
fn reserve_fd(at: RawFd) -> Result<(), NodeError> {
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| NodeError::sys("open /dev/null", e))?;
    if null.as_raw_fd() == at {
        std::mem::forget(null);
        return Ok(());
    }
    // SAFETY: dup3 onto a descriptor number this process does not use (nothing has been
    // opened here yet but `null`, and `topo` gives its helpers other numbers).
    let rc = unsafe { libc::dup3(null.as_raw_fd(), at, libc::O_CLOEXEC) };
    if rc < 0 {
        return Err(NodeError::sys(
            "reserve a descriptor",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Whether `fd` is a network namespace.
fn is_netns(fd: &OwnedFd) -> bool {
    // SAFETY: ioctl(NS_GET_NSTYPE) takes no argument and only reads the descriptor's file.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    kind == libc::CLONE_NEWNET
}

/// `ioctl(NS_GET_NSTYPE)` (`linux/nsfs.h`): the `CLONE_NEW*` flag of a namespace file.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Makes the inits' network namespace (see [`Spawner::parking`]) and returns to `host`'s,
/// keeping the new one on [`PARKING_FD`]; `None` if it cannot.
fn make_parking(host: &OwnedFd) -> Option<OwnedFd> {
    unshare(CloneFlags::CLONE_NEWNET).ok()?;
    let made = File::open("/proc/thread-self/ns/net");
    // Back first: this process makes the exec sockets in the host's namespace.
    if let Err(e) = setns(host.as_fd(), CloneFlags::CLONE_NEWNET) {
        // Nowhere to return to: better no process at all than one in the wrong namespace.
        let _ = writeln!(
            std::io::stdout(),
            "? error: return to the host's netns: {e}"
        );
        std::process::exit(1);
    }
    let made = made.ok()?;
    if made.as_raw_fd() == PARKING_FD {
        return Some(OwnedFd::from(made));
    }
    // SAFETY: dup3 onto the descriptor reserved for it (see `reserve_fd`).
    let rc = unsafe { libc::dup3(made.as_raw_fd(), PARKING_FD, libc::O_CLOEXEC) };
    // SAFETY: `PARKING_FD` is this new copy now, owned by nothing else.
    (rc == PARKING_FD).then(|| unsafe { OwnedFd::from_raw_fd(PARKING_FD) })
}

/// The descriptor on which a helper keeps the inits' network namespace (see
/// `Spawner::parking`), for `topo` to hand to the next helper.
pub const PARKING_FD: RawFd = 4;

/// How many node inits `topo __spawn` sets up at once.
const SPAWN_PARALLEL: usize = 8;

struct Spawner {
    /// The host's network namespace, which this process starts in: the nodes' exec sockets
    /// are made there.
    host_net: Option<OwnedFd>,
    /// The host's root, opened before this process left the host's mount namespace: node
    /// namespaces are opened through it (a path walked from a file descriptor follows the
    /// mounts of that descriptor's namespace), so none needs to stay open meanwhile.
    host_root: OwnedFd,
    /// This process's own PID namespace, to return to after each node's.
    own_pid: File,
    /// Compiled seccomp filters by profile: every node with the default profile shares one.
    filters: std::collections::HashMap<crate::spec::Seccomp, Option<super::seccomp::Filter>>,
    /// The same for nodes whose init lives outside their network namespace.
    outside_filters:
        std::collections::HashMap<crate::spec::Seccomp, Option<super::seccomp::Outside>>,
    /// The network namespace the inits of nodes with a user namespace live in (on
    /// [`PARKING_FD`]): one for every helper of a `topo up`, made by the first, holding
    /// nothing but a loopback that is down. Each node's own namespace then holds only the
    /// node's programs: a process in a network namespace of its own costs some hosts' agents
    /// CPU all the time it exists (see docs/performance.md), and an init in its node's would
    /// be one per node. `None`: the inits live in their nodes' namespaces.
    parking: Option<OwnedFd>,
    /// Init logs by path, opened here as root (a node with a user namespace could not).
    logs: std::collections::HashMap<std::path::PathBuf, File>,
    /// The host's devices for every node's minimal `/dev`, read once.
    devices: Option<[mounts::Device; 6]>,
    /// The stack of the intermediate that starts a node with a user namespace (see
    /// [`start_via_intermediate`]), made on first use and used by one at a time.
    stack: Option<super::vfork::Stack>,
    /// The hosts file bound on `/etc/hosts` here for every node: `None` until the first
    /// node's is tried, `Some(None)` if it could not be (or this mount namespace is not
    /// private: then it is not tried).
    shared_hosts: Option<Option<std::path::PathBuf>>,
}

/// An init being set up, and the pipe on which it reports.
struct Pending {
    node: String,
    child: Pid,
    report: File,
}

impl Spawner {
    /// Leaves the host's mount namespace for a private one without `/run/netns`: `mounts`,
    /// the one an earlier helper of the same `topo up` made, if given, else a copy made here.
    fn new(mounts: Option<OwnedFd>, parking: Option<OwnedFd>) -> Result<Self, NodeError> {
        let host_root = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| NodeError::sys("open /", e))?;
        let own_pid =
            File::open("/proc/self/ns/pid").map_err(|e| NodeError::sys("open own pid ns", e))?;
        let host_net = nix::fcntl::open(
            "/proc/self/ns/net",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok();
        let parking = host_net
            .as_ref()
            .and_then(|host| parking.filter(is_netns).or_else(|| make_parking(host)));
        // Every node's mount namespace is a copy of this one. The host's holds a bind mount
        // per named network namespace, so copying it N times would cost O(N²); a private
        // copy without /run/netns, made once per `topo up` and joined by its later helpers,
        // keeps each node's copy small.
        let own = nix::sys::stat::stat("/proc/self/ns/mnt").ok();
        let joined = mounts.is_some_and(|fd| setns(&fd, CloneFlags::CLONE_NEWNS).is_ok());
        // A namespace that is the host's after all (the earlier helper could not leave it)
        // is not private: nothing may be mounted in it.
        let left = joined
            && nix::sys::stat::stat("/proc/self/ns/mnt")
                .ok()
                .zip(own)
                .is_some_and(|(now, was)| (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino));
        let mut private = false;
        if left || (!joined && unshare(CloneFlags::CLONE_NEWNS).is_ok()) {
            // Again when joined: cheap, and it says whether this namespace is a slave.
            let slave = nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
                None::<&str>,
            );
            // Only in a slave: in a namespace that still shares its mounts with the host's,
            // these would leave the host's too.
            if !left && slave.is_ok() {
                let _ = nix::mount::umount2("/run/netns", nix::mount::MntFlags::MNT_DETACH);
            }
            // Nothing mounted here reaches the host's namespace.
            private = slave.is_ok();
        }
        Ok(Spawner {
            host_root,
            own_pid,
            host_net,
            filters: std::collections::HashMap::new(),
            outside_filters: std::collections::HashMap::new(),
            parking,
            logs: std::collections::HashMap::new(),
            devices: mounts::host_devices(),
            stack: None,
            shared_hosts: if private { None } else { Some(None) },
        })
    }

    fn run(mut self, mut input: impl std::io::BufRead) {
        let mut pending = std::collections::VecDeque::new();
        // One buffer for every line: written again after each fork, it costs one copied
        // page per node, where a new string per line cost several.
        let mut line = String::with_capacity(16 * 1024);
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => {}
            }
            // A few at a time: node set-up is mostly mount work under one kernel lock, and a
            // thousand processes contending for it are slower than a short queue.
            if pending.len() >= SPAWN_PARALLEL {
                if let Some(p) = pending.pop_front() {
                    finish(p);
                }
            }
            // Freed once its node is started: the memory of this process stays the same
            // size whatever the number of nodes. Every init is a copy of it, so memory kept
            // here grows every later copy: at 10 000 nodes, leaving each configuration
            // allocated made each fork copy page tables for all the ones before it (the
            // number of page-table entries, and of processes sharing each page, grew with
            // the square of the nodes). Nothing below allocates after the fork.
            let config: InitConfig = match serde_json::from_str::<InitConfig>(&line) {
                Ok(c) => c,
                Err(e) => {
                    let _ = writeln!(std::io::stdout(), "? error: bad configuration: {e}");
                    continue;
                }
            };
            match self.start(&config) {
                Ok(p) => pending.push_back(p),
                Err(e) => {
                    let _ = writeln!(std::io::stdout(), "{} error: {}", config.node, one_line(&e));
                }
            }
        }
        while let Some(p) = pending.pop_front() {
            finish(p);
        }
    }

    fn start(&mut self, config: &InitConfig) -> Result<Pending, NodeError> {
        let relative = config.netns.strip_prefix("/").unwrap_or(&config.netns);
        let netns = nix::fcntl::openat(
            &self.host_root,
            relative,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| NodeError::sys(format!("open {}", config.netns.display()), e))?;
        // The node's exec socket, made here in the host's network namespace, where its
        // abstract name lives (the node's is joined next). Without one, `topo exec` enters
        // the node from outside: nothing else depends on it.
        let listener = match (&config.exec_socket, &self.host_net) {
            (Some(name), Some(host)) => setns(host.as_fd(), CloneFlags::CLONE_NEWNET)
                .ok()
                .and_then(|()| super::channel::listen_on(name).ok()),
            _ => None,
        };
        let listener_fd = listener.as_ref().map(|l| l.as_raw_fd());
        let key = &config.ctx.security.seccomp;
        let seccomp_error = |e: super::seccomp::SeccompError| {
            NodeError::sys("seccomp profile", std::io::Error::other(e.to_string()))
        };
        // Outside its node's namespace, an init must be able to join it (for its own set-up,
        // and each command's process for the command): only where the node keeps SYS_ADMIN
        // over its own user namespace.
        let parking = self.parking.as_ref().filter(|_| {
            config.ctx.userns && config.ctx.security.capabilities.contains("SYS_ADMIN")
        });
        if parking.is_some() {
            if !self.outside_filters.contains_key(key) {
                let filter = super::seccomp::compile_outside(key).map_err(seccomp_error)?;
                self.outside_filters.insert(key.clone(), filter);
            }
        } else if !self.filters.contains_key(key) {
            let filter = super::seccomp::compile(key).map_err(seccomp_error)?;
            self.filters.insert(key.clone(), filter);
        }
        if let Some(path) = &config.log {
            if !self.logs.contains_key(path) {
                let f = open_init_log(path)?;
                self.logs.insert(path.clone(), f);
            }
        }
        // The lab's hosts file, bound once for every node's copy of this mount namespace.
        // An earlier helper whose namespace this one joined may have bound it already.
        let hosts = self.shared_hosts.get_or_insert_with(|| {
            let bound = mounts::is_same_file(&config.hosts, std::path::Path::new("/etc/hosts"));
            (bound || mounts::share_hosts(&config.hosts).is_ok()).then(|| config.hosts.clone())
        });
        let shared = mounts::Shared {
            devices: self.devices,
            hosts: hosts.as_deref() == Some(config.hosts.as_path()),
            trees: None,
        };
        let log = config.log.as_ref().and_then(|p| self.logs.get(p));
        let filters = match parking {
            Some(_) => self
                .outside_filters
                .get(key)
                .and_then(|f| f.as_ref())
                .map_or(Filters::default(), |f| Filters {
                    init: Some(&f.init),
                    commands: f.commands.as_ref(),
                }),
            None => Filters {
                init: self.filters.get(key).and_then(|f| f.as_ref()),
                commands: None,
            },
        };
        if config.ctx.userns {
            let stack = match &mut self.stack {
                Some(stack) => stack,
                None => self.stack.insert(super::vfork::Stack::new()?),
            };
            return start_via_intermediate(
                stack,
                config,
                &File::from(netns),
                parking,
                log,
                filters,
                shared,
                listener_fd,
            );
        }
        let (rd, wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| NodeError::sys("pipe", e))?;
        let launched = open_cgroups(config).and_then(|cg| {
            launch(
                config,
                netns,
                cg,
                log,
                filters,
                shared,
                Parent::This,
                wr,
                listener_fd,
                false,
            )
        });
        // The init has its own copy now.
        drop(listener);
        // Back to this process's own PID namespace for the next node's children.
        setns(self.own_pid.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| NodeError::sys("return to the spawner's pid namespace", e))?;
        Ok(Pending {
            node: config.node.clone(),
            child: launched?,
            report: File::from(rd),
        })
    }
}

/// The seccomp filters of a node's processes: the init's, and what each command's process
/// the init starts stacks on it (see [`super::seccomp::Outside`]).
#[derive(Clone, Copy, Default)]
struct Filters<'a> {
    init: Option<&'a super::seccomp::Filter>,
    commands: Option<&'a super::seccomp::Filter>,
}

/// Whose child a new init is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// This process's: it forks the init.
    This,
    /// This process's parent's (`CLONE_PARENT`): an intermediate that ends at once makes it,
    /// for the spawner to wait on.
    Ours,
}

/// Joins the node's network namespace (`outside`: stays in its own, and the init holds the
/// node's on [`super::procfs::NODE_NET_FD`]) and forks its init as PID 1 of a new PID
/// namespace, which reports on `wr` (the caller keeps the read end, and its own copy of `wr`
/// is closed here). The init keeps `listener` (the node's exec socket), if any. Returns the
/// init.
#[allow(clippy::too_many_arguments)]
fn launch(
    config: &InitConfig,
    netns: OwnedFd,
    cgroups: Vec<File>,
    log: Option<&File>,
    filters: Filters,
    shared: mounts::Shared,
    parent: Parent,
    wr: OwnedFd,
    listener: Option<RawFd>,
    outside: bool,
) -> Result<Pid, NodeError> {
    let netns = if outside {
        Some(netns)
    } else {
        setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NodeError::sys("join the node's netns", e))?;
        None
    };
    // The PID namespace applies to the children of the caller; the others are unshared by
    // the child itself, so that its fresh /proc never replaces the one this parent reads.
    unshare(CloneFlags::CLONE_NEWPID)
        .map_err(|e| NodeError::sys("unshare the pid namespace", e))?;
    let forked = match parent {
        // SAFETY: `topo __spawn` is single-threaded (no tokio runtime exists in this mode),
        // so the child may run arbitrary code after fork.
        Parent::This => unsafe { fork() },
        Parent::Ours => super::vfork::fork_sibling(),
    };
    match forked.map_err(|e| NodeError::sys("fork the node init", e))? {
        ForkResult::Child => {
            // Until it reports ready, the init dies with the process that waits for it.
            die_with_parent();
            redirect_stderr(log);
            let mut keep: Vec<RawFd> = cgroups.iter().map(|f| f.as_raw_fd()).collect();
            keep.push(wr.as_raw_fd());
            keep.extend(listener);
            keep.extend(shared.trees.iter().flat_map(|t| t.fds()));
            let node_net = match netns {
                Some(netns) => match hold_node_net(&netns) {
                    Ok(()) => {
                        keep.push(super::procfs::NODE_NET_FD);
                        true
                    }
                    Err(e) => {
                        let _ = writeln!(File::from(wr), "{e}");
                        std::process::exit(1)
                    }
                },
                None => false,
            };
            let code = match close_inherited(&keep) {
                Ok(()) => be_init(config, cgroups, filters, shared, wr, listener, node_net),
                Err(_) => 1,
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            if parent == Parent::This {
                // Closed, but the list itself is not freed: that would write to a page the
                // new init shares (see `Spawner::run`).
                let mut cgroups = std::mem::ManuallyDrop::new(cgroups);
                cgroups.clear();
            }
            Ok(child)
        }
    }
}

/// Puts the node's network namespace on [`super::procfs::NODE_NET_FD`] (close-on-exec), in
/// place of the spawner's placeholder there.
fn hold_node_net(netns: &OwnedFd) -> Result<(), NodeError> {
    let at = super::procfs::NODE_NET_FD;
    // SAFETY: dup3 onto the descriptor the spawner reserved for this (see `reserve_fd`),
    // which nothing of the init uses.
    if unsafe { libc::dup3(netns.as_raw_fd(), at, libc::O_CLOEXEC) } != at {
        return Err(NodeError::sys(
            "hold the node's netns",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// For a node with a user namespace: an intermediate joins it (the PID, mount, UTS and IPC
/// namespaces made next are then owned by it, and node root may mount /proc and set the
/// hostname), makes the init as this process's child, and ends.
///
/// The intermediate shares this process's memory (see [`super::vfork`]): it copies no page
/// table and has none to tear down, and this process waits until it has ended. It frees
/// only what it allocated itself, and leaves its answer in `made`.
#[allow(clippy::too_many_arguments)]
fn start_via_intermediate(
    stack: &mut super::vfork::Stack,
    config: &InitConfig,
    netns: &File,
    parking: Option<&OwnedFd>,
    log: Option<&File>,
    filters: Filters,
    shared: mounts::Shared,
    listener: Option<RawFd>,
) -> Result<Pending, NodeError> {
    let (rd, wr) = pipe2(OFlag::O_CLOEXEC).map_err(|e| NodeError::sys("pipe", e))?;
    let mut made: Option<Result<Pid, NodeError>> = None;
    let mut body = || {
        let result = (|| {
            let cgroups = open_cgroups(config)?;
            let user = super::userns::owner(netns)?;
            // Made while this process is still root of the host's user namespace.
            let shared = mounts::Shared {
                trees: Some(mounts::detached_trees(config, &user)?),
                ..shared.clone()
            };
            // Where the init lives, joined while this process is still root of the host's
            // user namespace (which owns it).
            if let Some(parking) = parking {
                setns(parking.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NodeError::sys("join the inits' netns", e))?;
            }
            setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
                .map_err(|e| NodeError::sys("join the node's user namespace", e))?;
            super::userns::become_root()?;
            // Copies in this process's descriptor table, which ends with it.
            let netns = netns
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| NodeError::sys("dup the node's netns", e))?;
            let wr = wr
                .try_clone()
                .map_err(|e| NodeError::sys("dup the report pipe", e))?;
            launch(
                config,
                netns,
                cgroups,
                log,
                filters,
                shared,
                Parent::Ours,
                wr,
                listener,
                parking.is_some(),
            )
        })();
        made = Some(result);
    };
    super::vfork::run(stack, &mut body)?;
    drop(wr);
    let child = made.unwrap_or_else(|| {
        Err(NodeError::sys(
            "start the node",
            std::io::Error::other("its set-up process ended without an answer"),
        ))
    })?;
    Ok(Pending {
        node: config.node.clone(),
        child,
        report: File::from(rd),
    })
}

/// Waits for a pending init's report and prints the node's line.
fn finish(p: Pending) {
    let mut out = std::io::stdout().lock();
    // One line per node, written with the buffer of stdout (no allocation, see
    // `Spawner::run`), and flushed whole at its newline.
    let _ = match wait_ready(&p.node, p.child, p.report) {
        Ok(id) => writeln!(out, "{} {} {}", p.node, id.pid, id.start),
        Err(e) => writeln!(out, "{} error: {}", p.node, one_line(&e)),
    };
}

fn one_line(e: &NodeError) -> String {
    e.to_string().replace('\n', " ")
}

/// The node's cgroup files, opened while this process is still root of the host: the files
/// are checked against the credentials they were opened with.
fn open_cgroups(config: &InitConfig) -> Result<Vec<File>, NodeError> {
    config
        .ctx
        .cgroups
        .iter()
        .map(|p| security::open_cgroup(p))
        .collect()
}

/// Asks the kernel to kill this process when its parent ends, and covers the case where
/// the parent ended already.
fn die_with_parent() {
    let parent = nix::unistd::getppid();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(1);
    }
}

/// In a new init: closes every file descriptor inherited from the spawner but the standard
/// streams and `keep`, so that no init holds another node's namespace or the spawner's pipes.
fn close_inherited(keep: &[RawFd]) -> Result<(), NodeError> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    let mut from: RawFd = 3;
    for fd in keep.into_iter().chain([RawFd::MAX]) {
        if fd > from {
            let last = if fd == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (fd - 1) as libc::c_uint
            };
            // SAFETY: close_range closes descriptors in [from, last], none of which is in
            // `keep`; the others belong to the spawner's state, which the init never touches
            // again (they are forgotten, not used, after this).
            let rc = unsafe { libc::close_range(from as libc::c_uint, last, 0) };
            if rc != 0 {
                return Err(NodeError::sys(
                    "close_range",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        from = fd.saturating_add(1);
    }
    Ok(())
}

/// Opens the init log for appending without following a symbolic link, and only if it is a
/// regular file with no other hard link (its directory is checked by `topo`, see
/// `state::safe`).
fn open_init_log(path: &std::path::Path) -> Result<File, NodeError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let err = |e: std::io::Error| NodeError::sys(format!("open {}", path.display()), e);
    let f = File::options()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(err)?;
    let m = f.metadata().map_err(err)?;
    if !m.is_file() || m.nlink() > 1 {
        return Err(err(std::io::Error::other("not a regular file of its own")));
    }
    Ok(f)
}

/// The init log becomes standard error of everything the node's init does; without one,
/// /dev/null (never `topo`'s own, which an init would otherwise hold open for its life).
fn redirect_stderr(log: Option<&File>) {
    match log {
        Some(f) => {
            let _ = nix::unistd::dup2_stderr(f);
        }
        None => {
            if let Ok(null) = File::options().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stderr(&null);
            }
        }
    }
}

/// Reads an init's report to its end (the init closes the pipe once it no longer dies with
/// its parent); `ok` means ready. Anything else: the init is killed and reaped.
fn wait_ready(node: &str, child: Pid, mut rd: File) -> Result<ProcId, NodeError> {
    // The usual answer, `ok`, is read without allocating (see `Spawner::run`).
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        match rd.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(NodeError::sys("read the init's report", e)),
        }
    }
    if head[..n].trim_ascii() == b"ok" {
        if let Some(id) = ProcId::of(child.as_raw()) {
            return Ok(id);
        }
    }
    let mut report = String::from_utf8_lossy(&head[..n]).into_owned();
    if n == head.len() {
        rd.take(64 * 1024)
            .read_to_string(&mut report)
            .map_err(|e| NodeError::sys("read the init's report", e))?;
    }
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    Err(NodeError::Failed {
        node: node.to_string(),
        message: if report.is_empty() {
            "init exited during set-up".into()
        } else {
            report.trim().to_string()
        },
    })
}

/// PID 1 of the node. Sets the node up, reports, then reaps until told to stop, serving the
/// node's exec socket (`listener`, a descriptor it owns) if it has one. With `node_net`, the
/// init lives outside the node's network namespace and holds it on
/// [`super::procfs::NODE_NET_FD`].
fn be_init(
    config: &InitConfig,
    cgroups: Vec<File>,
    filters: Filters,
    shared: mounts::Shared,
    report: OwnedFd,
    listener: Option<RawFd>,
    node_net: bool,
) -> i32 {
    // Standard output is `topo`'s pipe: let go of it, or `topo` would wait for our EOF.
    let null = File::options().read(true).write(true).open("/dev/null");
    if let Ok(null) = &null {
        let _ = nix::unistd::dup2_stdout(null);
        let _ = nix::unistd::dup2_stdin(null);
    }
    let _ = setsid();
    // What `ps` shows for PID 1 inside the node.
    let _ = nix::sys::prctl::set_name(c"topo-init");
    let mut report = File::from(report);
    let signals = init_signals();
    // The host's sysfs, which the init's `/sys` is until a process entering the node mounts
    // the node's own (`mounts::ensure_sysfs`): no command starts from here before that.
    let host_sys = listener.and_then(|_| mounts::host_sys_dev());
    let ready = security::harden(
        &mut InitSteps {
            config,
            cgroups,
            filter: filters.init,
            shared,
            node_net,
        },
        &config.ctx.security,
    )
    .and_then(|()| {
        signals
            .thread_block()
            .map_err(|e| NodeError::sys("block signals", e))
    });
    match ready {
        Ok(()) => {
            // The init log took the set-up's errors; no process of the node may reach it
            // (through /proc/1/fd/2) once node programs can run, which is after this report.
            match &null {
                Ok(null) => {
                    let _ = nix::unistd::dup2_stderr(null);
                }
                Err(_) => {
                    let _ = nix::unistd::close(2);
                }
            }
            drop(null);
            let _ = report.write_all(b"ok\n");
            // Ready: from now on the init outlives whoever started it. The report pipe is
            // closed only after this, and the parent waits for that close.
            let _ = nix::sys::prctl::set_pdeathsig(None);
        }
        Err(e) => {
            let _ = writeln!(report, "{e}");
            return 1;
        }
    }
    drop(report);
    let _ = nix::unistd::chdir("/");
    let held = node_net.then_some(super::procfs::NODE_NET_FD);
    let Some(fd) = listener else {
        let _ = match held {
            Some(held) => close_inherited(&[held]),
            None => security::close_extra_fds(),
        };
        return reap_loop(&signals);
    };
    let _ = close_inherited(&[Some(fd), held].into_iter().flatten().collect::<Vec<_>>());
    // SAFETY: the spawner made this descriptor for this init alone and closed its own copy;
    // nothing else in this process owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(fd) };
    let Some(token) = config.exec_token else {
        drop(listener);
        return reap_loop(&signals);
    };
    let join = held.map(|_| super::channel::Join {
        filter: filters.commands,
    });
    match super::channel::serve(listener, &signals, &config.ctx.env, host_sys, token, join) {
        Ok(code) => code,
        Err(_) => reap_loop(&signals),
    }
}

/// Sets `sysctls` through `/proc`.
fn set_sysctls(sysctls: &[(String, String)]) -> Result<(), NodeError> {
    for (key, value) in sysctls {
        let path = crate::net::sysctl::path(std::path::Path::new("/proc"), key);
        crate::net::sysctl::write_file(&path, value)
            .map_err(|e| NodeError::sys(format!("set sysctl {key}={value}"), e))?;
    }
    Ok(())
}

/// Runs `work` in a child that shares this init's memory and joins the node's network
/// namespace (on [`super::procfs::NODE_NET_FD`]) first; this init stays where it lives.
pub(super) fn in_node_net(
    work: &mut dyn FnMut() -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let mut stack = super::vfork::Stack::new()?;
    let mut done: Option<Result<(), NodeError>> = None;
    let mut body = || {
        // SAFETY: the descriptor the init holds the node's namespace on, open for the call.
        let netns = unsafe { std::os::fd::BorrowedFd::borrow_raw(super::procfs::NODE_NET_FD) };
        done = Some(
            setns(netns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| NodeError::sys("join the node's netns", e))
                .and_then(|()| work()),
        );
    };
    super::vfork::run(&mut stack, &mut body)?;
    done.unwrap_or_else(|| {
        Err(NodeError::sys(
            "set up the node's netns",
            std::io::Error::other("its process ended without an answer"),
        ))
    })
}

/// The init's own [`Steps`]: it joins the node's cgroups, makes the node's mount, UTS and
/// IPC namespaces, and is then held to the node's capabilities and seccomp filter.
struct InitSteps<'a> {
    config: &'a InitConfig,
    cgroups: Vec<File>,
    /// Compiled before the mounts (by the spawner, once per profile): a profile file may
    /// live where the node's own /tmp or root then covers it.
    filter: Option<&'a super::seccomp::Filter>,
    /// What the spawner's mount namespace holds for every node already.
    shared: mounts::Shared,
    /// The init lives outside the node's network namespace (see [`be_init`]).
    node_net: bool,
}

impl Steps for InitSteps<'_> {
    fn join_cgroup(&mut self) -> Result<(), NodeError> {
        security::join_cgroups(&mut self.cgroups)
    }
    /// Joined before the fork already (see `start`): the PID namespace must be owned by it.
    fn enter_userns(&mut self) -> Result<(), NodeError> {
        Ok(())
    }
    fn enter_mounts(&mut self) -> Result<(), NodeError> {
        let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
        unshare(flags).map_err(|e| NodeError::sys("unshare mount, uts and ipc namespaces", e))?;
        mounts::set_up(self.config, &self.shared, self.node_net)?;
        // The node's own procfs now; /proc/sys/net stays writable. Its network sysctls are
        // those of the namespace of the process that opens them.
        if self.node_net {
            in_node_net(&mut || set_sysctls(&self.config.sysctls))?;
        } else {
            set_sysctls(&self.config.sysctls)?;
        }
        nix::unistd::sethostname(&self.config.node).map_err(|e| NodeError::sys("sethostname", e))
    }
    fn filter(&self) -> Option<&super::seccomp::Filter> {
        self.filter
    }
    /// With a user namespace of its own (joined before the fork), the set is full: nothing to
    /// read first. Without one, the spawner has narrowed it already.
    fn limit_bounding(&mut self, keep: &caps::CapsHashSet) -> Result<(), NodeError> {
        security::limit_bounding(keep, self.config.ctx.userns)
    }
}

fn init_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Waits for signals: reaps children on SIGCHLD; on SIGTERM, SIGINT or SIGHUP from outside
/// the node, asks every process of the node to stop and exits (the kernel then kills what is
/// left).
pub(super) fn reap_loop(signals: &SigSet) -> i32 {
    loop {
        // SAFETY: siginfo_t is plain data, for which all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigwaitinfo writes one siginfo_t into `info`, which lives on this frame;
        // the set is a valid sigset_t, blocked by the caller.
        let sig = unsafe { libc::sigwaitinfo(signals.as_ref(), &mut info) };
        match Signal::try_from(sig) {
            Ok(Signal::SIGCHLD) | Err(_) => reap_all(),
            // SAFETY: si_pid is valid for a signal sent by kill(2), which the others are.
            Ok(_) if stop_request(unsafe { info.si_pid() }) => {
                let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                return 0;
            }
            Ok(_) => {}
        }
    }
}

/// Whether a SIGTERM, SIGINT or SIGHUP whose sender has PID `sender` in the node's PID
/// namespace asks the init to stop: only from outside the node (the host's processes are not
/// in the namespace, and show as 0). A process of the node, even node root, cannot end its
/// node's init this way, as it cannot with `reboot` (refused by seccomp) or SIGKILL (which
/// the kernel drops for a PID namespace's init from inside it).
pub(super) fn stop_request(sender: libc::pid_t) -> bool {
    sender == 0
}

fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
