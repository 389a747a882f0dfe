//! Named network namespaces under `/run/netns`, made the way `ip netns add` makes them (a
//! bind mount of the namespace file), so `ip netns exec NAME …` works on every node.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::NetError;

/// Where named namespaces live; the same directory `ip netns` uses.
pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Opens a named namespace; `Ok(None)` when there is no such name.
pub fn open(name: &str) -> Result<Option<File>, NetError> {
    match File::open(path(name)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NetError::io(format!("open netns {name}"), e)),
    }
}

/// Names under `/run/netns` that start with `prefix`.
pub fn list_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io(format!("read {NETNS_DIR}"), e)),
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(prefix) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Makes `/run/netns` a shared mount point, as iproute2 does, so that removing a namespace's
/// bind mount also removes the copies that node mount namespaces received.
pub fn ensure_dir() -> Result<(), NetError> {
    std::fs::create_dir_all(NETNS_DIR)
        .map_err(|e| NetError::io(format!("mkdir {NETNS_DIR}"), e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then make it shared.
            let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, bind, None::<&str>)
                .map_err(|e| NetError::io(format!("bind mount {NETNS_DIR}"), e.into()))?;
            mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>)
                .map_err(|e| NetError::io(format!("make {NETNS_DIR} shared"), e.into()))
        }
        Err(e) => Err(NetError::io(format!("make {NETNS_DIR} shared"), e.into())),
    }
}

/// Creates named namespaces, each on this thread in turn: `unshare(CLONE_NEWNET)` gives the
/// thread a fresh namespace, which is bind-mounted to `/run/netns/NAME` and opened; `each`
/// then runs inside it (to open its netlink socket, write its sysctls). The thread returns
/// to its original namespace at the end. Call this on a dedicated thread, never on a tokio
/// worker. A name that exists already is an error (EEXIST), never reused.
pub fn create_each<T>(
    names: &[String],
    mut each: impl FnMut(&str, &File) -> Result<T, NetError>,
) -> Result<Vec<(File, T)>, NetError> {
    let home =
        File::open("/proc/thread-self/ns/net").map_err(|e| NetError::io("open own netns", e))?;
    let mut out = Vec::with_capacity(names.len());
    let result = (|| {
        for name in names {
            let file = create_here(name)?;
            let value = each(name, &file)?;
            out.push((file, value));
        }
        Ok(())
    })();
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("return to own netns", e.into()))?;
    result.map(|()| out)
}

fn create_here(name: &str) -> Result<File, NetError> {
    let target = path(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&target)
        .map_err(|e| NetError::io(format!("create {}", target.display()), e))?;
    let made = unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io(format!("unshare netns for {name}"), e.into()))
        .and_then(|()| {
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| NetError::io(format!("bind mount netns {name}"), e.into()))
        });
    if let Err(e) = made {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    File::open(&target).map_err(|e| NetError::io(format!("open netns {name}"), e))
}

/// Runs `each` inside every given namespace in turn, on this thread (a dedicated one), then
/// returns to the thread's own namespace.
pub fn enter_each<T>(
    namespaces: &[&File],
    mut each: impl FnMut(usize) -> Result<T, NetError>,
) -> Result<Vec<T>, NetError> {
    let home =
        File::open("/proc/thread-self/ns/net").map_err(|e| NetError::io("open own netns", e))?;
    let mut out = Vec::with_capacity(namespaces.len());
    let result = (|| {
        for (i, ns) in namespaces.iter().enumerate() {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::io("enter netns", e.into()))?;
            out.push(each(i)?);
        }
        Ok(())
    })();
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("return to own netns", e.into()))?;
    result.map(|()| out)
}

/// Removes a named namespace: detaches its bind mount and unlinks the file (`ip netns del`).
/// The kernel frees the namespace, with every interface in it, once nothing holds it.
pub fn delete(name: &str) -> Result<(), NetError> {
    let target = path(name);
    match umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetError::io(
                format!("umount {}", target.display()),
                e.into(),
            ))
        }
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io(format!("remove {}", target.display()), e)),
    }
}

/// Whether an open file is a namespace (nsfs), not, say, the empty placeholder file of a
/// namespace whose creation was interrupted before its bind mount.
pub fn is_namespace(file: &File) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    nix::sys::statfs::fstatfs(file).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// An empty file of mode 0444: the placeholder `create_here` makes before it mounts the
/// namespace on it (`ip netns add` uses mode 0, so its placeholders never match).
pub fn is_placeholder(file: &File) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.len() == 0 && m.permissions().mode() & 0o7777 == 0o444)
}

/// The inode of a namespace file: equal inodes mean the same namespace.
pub fn inode(file: &File) -> Result<u64, NetError> {
    use std::os::unix::fs::MetadataExt;
    file.metadata()
        .map(|m| m.ino())
        .map_err(|e| NetError::io("stat netns", e))
}
