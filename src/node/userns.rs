//! User namespaces (every node's, unless `userns: false`): the node's root is an unprivileged
//! host uid/gid range, and the node's network namespace is owned by its user namespace, so
//! node root can configure its own interfaces while `topo` (root of the parent namespace)
//! still wires and addresses them.
//!
//! Ranges: 65536 ids per node, at `TOPO_USERNS_BASE` (default 2^30, far above the ranges
//! Debian's `/etc/subuid` hands out from 100000) plus a slot derived from the lab and node
//! names (FNV-1a, modulo 16383 slots 65537 ids apart, the highest id stays below 2^31).
//! Slots are unique within a lab (collisions probe to the next free slot, in node name
//! order); two labs may share a slot with a probability of about 1/16383 per pair of nodes.
//!
//! Both are made by one short-lived child cloned with `CLONE_NEWUSER | CLONE_NEWNET` (see
//! [`create_netns`]); `topo` writes its uid and gid maps and bind-mounts its network namespace
//! under /run/netns. The user namespace lives on as the network namespace's owner and is
//! found again with `NS_GET_USERNS`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

use nix::mount::{mount, MsFlags};

use super::NodeError;
use crate::plan::names::fnv1a;

/// Ids per node.
pub const RANGE: u32 = 65536;

/// From one node's first id to the next slot's: one more than [`RANGE`]. The kernel keeps
/// a host uid's accounting (`user_struct`) in a table of 128 buckets, chosen from the uid's
/// low 14 bits; ranges 65536 apart would put the same id of every node, root among them, in
/// one bucket, and each new node root (its `setresuid`) would walk a chain as long as the
/// nodes on the host. One apart, the slots' ids spread evenly over the buckets.
const STRIDE: u32 = RANGE + 1;

/// As many slots as fit below 2^31 from the default base.
const SLOTS: u32 = 16383;

/// The first host id of the range topo allocates from.
pub fn base() -> u32 {
    std::env::var("TOPO_USERNS_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

/// The first host uid/gid of each node's range, for the lab's `userns` nodes.
pub fn allocate(lab: &str, nodes: &[&str]) -> BTreeMap<String, u32> {
    let mut used = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut sorted = nodes.to_vec();
    sorted.sort();
    for node in sorted {
        let mut slot = (fnv1a(format!("{lab}/{node}").as_bytes()) % u64::from(SLOTS)) as u32;
        while !used.insert(slot) {
            slot = (slot + 1) % SLOTS;
        }
        out.insert(
            node.to_string(),
            base().saturating_add(slot.saturating_mul(STRIDE)),
        );
    }
    out
}

/// Children that hold new user and network namespaces, killed at once and reaped together
/// on drop (each child runs on a stack of its own, kept here until it is reaped).
#[derive(Default)]
pub struct Holders {
    children: Vec<(nix::unistd::Pid, Vec<u8>)>,
}

impl Holders {
    /// Creates a network namespace owned by a new user namespace that maps root to
    /// `host_id..host_id+RANGE`, and bind-mounts it on the existing file `target` (blocking);
    /// removes `target` if that fails.
    ///
    /// A child cloned with `CLONE_NEWUSER | CLONE_NEWNET` (the user namespace is made first,
    /// so it owns the network namespace) holds both while this process, root of the parent
    /// user namespace, writes the child's id maps and binds its network namespace; the child
    /// is then killed. It shares this process's memory and descriptor table (`CLONE_VM |
    /// CLONE_FILES`): it copies no page tables, holds no copy of a descriptor (a copy of the
    /// lab's lock would hold the lock for as long as the child lives), and runs nothing but
    /// `pause` on its own stack. It dies with the thread that made it, should that die first.
    pub fn create_netns(
        &mut self,
        target: &std::path::Path,
        host_id: u32,
    ) -> Result<(), NodeError> {
        let mut stack = vec![0u8; HOLDER_STACK];
        let top = stack.as_mut_ptr_range().end;
        // The ABI wants the stack pointer aligned to 16 bytes.
        let top = top.wrapping_sub(top as usize % 16);
        let flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNET
            | libc::CLONE_VM
            | libc::CLONE_FILES
            | libc::SIGCHLD;
        // The child's argument: this process's PID, which `hold` compares with its parent's.
        let parent = std::process::id() as usize as *mut libc::c_void;
        // SAFETY: `hold` touches no memory of this process beyond its own stack frame, on the
        // fresh stack `top` points into; `stack` is kept in `self` until the child is reaped.
        let pid = unsafe { libc::clone(hold, top.cast(), flags, parent) };
        if pid < 0 {
            return Err(NodeError::sys(
                "create the user and network namespaces",
                std::io::Error::last_os_error(),
            ));
        }
        let child = nix::unistd::Pid::from_raw(pid);
        let result = bind_holder(pid, target, host_id);
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        self.children.push((child, stack));
        if result.is_err() && target.exists() {
            let _ = std::fs::remove_file(target);
        }
        result
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for (child, stack) in self.children.drain(..) {
            while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
            drop(stack);
        }
    }
}

/// Bytes of stack for the child that holds new namespaces.
const HOLDER_STACK: usize = 16 * 1024;

/// The body of the child that holds new namespaces until it is killed, or until the thread
/// that made it ends (`parent` is that process's PID, passed as the pointer's value).
extern "C" fn hold(parent: *mut libc::c_void) -> libc::c_int {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // SAFETY: getppid takes no argument. A parent that died before the prctl is not signalled
    // for; the child then has another parent and leaves.
    if unsafe { libc::getppid() } as usize != parent as usize {
        // SAFETY: _exit ends this process at once; it shares nothing it must clean up.
        unsafe { libc::_exit(0) };
    }
    loop {
        // SAFETY: pause takes no argument and only returns after a signal handler ran.
        unsafe { libc::pause() };
    }
}

/// Writes the id maps of the holder `pid` and binds its network namespace at `target`.
fn bind_holder(pid: libc::pid_t, target: &std::path::Path, host_id: u32) -> Result<(), NodeError> {
    let map = format!("0 {host_id} {RANGE}\n");
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{file}"), &map)
            .map_err(|e| NodeError::sys(format!("write {file}"), e))?;
    }
    let src = format!("/proc/{pid}/ns/net");
    mount(
        Some(src.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NodeError::sys(format!("bind mount {}", target.display()), e))
}

nix::ioctl_none!(ns_get_userns, 0xb7, 0x1);

/// The user namespace that owns a namespace (`ioctl(NS_GET_USERNS)`).
pub fn owner(ns: &File) -> Result<File, NodeError> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new file descriptor (or -1);
    // `ns` is an open namespace file that outlives the call.
    let fd = unsafe { ns_get_userns(ns.as_raw_fd()) }
        .map_err(|e| NodeError::sys("find the owning user namespace", e))?;
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// After joining a user namespace the process keeps its host uid (0), which is unmapped
/// there; becoming uid and gid 0 *of the namespace* makes it the node's root (the first id
/// of the node's range on the host).
pub fn become_root() -> Result<(), NodeError> {
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setgroups(&[])
        .map_err(|e| NodeError::sys("setgroups in the user namespace", e))?;
    nix::unistd::setresgid(root_g, root_g, root_g)
        .map_err(|e| NodeError::sys("setgid in the user namespace", e))?;
    nix::unistd::setresuid(root_u, root_u, root_u)
        .map_err(|e| NodeError::sys("setuid in the user namespace", e))?;
    // A change of credentials sets the process's dumpable flag to `fs.suid_dumpable`; it must
    // stay off until exec (see `security::not_dumpable`).
    super::security::not_dumpable()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's `__uidhashfn` (kernel/user.c): the bucket of a host uid's `user_struct`.
    fn uid_bucket(uid: u32) -> u32 {
        ((uid >> 7) + uid) & 127
    }

    #[test]
    fn ranges_stay_below_2_31_and_apart() {
        let first = 1u64 << 30;
        let last_end = first + u64::from(SLOTS - 1) * u64::from(STRIDE) + u64::from(RANGE);
        assert!(last_end <= 1 << 31, "{last_end}");
        let names: Vec<String> = (0..3000).map(|i| format!("n{i}")).collect();
        let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut starts: Vec<u32> = allocate("lab", &nodes).values().copied().collect();
        starts.sort();
        assert_eq!(starts.len(), 3000);
        for w in starts.windows(2) {
            assert!(w[1] - w[0] >= RANGE, "{} and {} overlap", w[0], w[1]);
        }
    }

    #[test]
    fn node_roots_spread_over_the_kernels_uid_buckets() {
        let names: Vec<String> = (0..10_000).map(|i| format!("n{i}")).collect();
        let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
        for inner in [0, 100, 65534] {
            let mut buckets = [0u32; 128];
            for start in allocate("big", &nodes).values() {
                buckets[uid_bucket(start + inner) as usize] += 1;
            }
            let most = buckets.iter().max().copied().unwrap_or(0);
            // 10 000 over 128 is 78 on average.
            assert!(most < 160, "uid {inner}: {most} node ids in one bucket");
        }
    }
}
