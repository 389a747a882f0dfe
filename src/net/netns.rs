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

/// [`create_each_made`] with each namespace made by [`create_here`].
#[cfg(test)]
pub fn create_each<T>(
    names: &[String],
    each: impl FnMut(&str, &File) -> Result<T, NetError>,
) -> Result<Vec<(NsId, T)>, NetError> {
    create_each_made(names, |_, name| create_here(name), each)
}

/// Creates named namespaces, each on this thread in turn: `make(i, name)` makes the `i`th
/// and mounts it on its placeholder `path(name)` (removing the placeholder if it fails;
/// [`create_here`] gives the thread a fresh namespace with `unshare(CLONE_NEWNET)` and
/// bind-mounts it), which is then opened and entered for `each` (to open its netlink socket,
/// write its sysctls). The thread returns to its original namespace at the end. Call this on
/// a dedicated thread, never on a tokio worker. A name that exists already is an error
/// (EEXIST), never reused.
pub fn create_each_made<T>(
    names: &[String],
    mut make: impl FnMut(usize, &str) -> Result<(), NetError>,
    mut each: impl FnMut(&str, &File) -> Result<T, NetError>,
) -> Result<Vec<(NsId, T)>, NetError> {
    let home =
        File::open("/proc/thread-self/ns/net").map_err(|e| NetError::io("open own netns", e))?;
    let mut out = Vec::with_capacity(names.len());
    // How many placeholders are mounted on or removed (`make` removes its own when it
    // fails); those after them are left to remove when something fails.
    let mut used = 0;
    let result = make_placeholders(names).and_then(|()| {
        for (i, name) in names.iter().enumerate() {
            used = i + 1;
            make(i, name)?;
            let file = File::open(path(name))
                .map_err(|e| NetError::io(format!("open netns {name}"), e))?;
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::io(format!("enter netns {name}"), e.into()))?;
            let value = each(name, &file)?;
            out.push((NsId::of(name, &file)?, value));
        }
        Ok(())
    });
    if result.is_err() && used > 0 {
        for name in &names[used..] {
            let _ = std::fs::remove_file(path(name));
        }
    }
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("return to own netns", e.into()))?;
    result.map(|()| out)
}

/// Makes the empty files that `names` are to be mounted on, all links to one inode.
///
/// A new file costs a new inode, and ext4 without a journal (as `/run` may be where it is
/// not a tmpfs) looks at each inode freed in the last half minute before it reuses one: after
/// a `down`, each placeholder of the next `up` would pay that, one by one on the thread that
/// creates the namespaces; a link needs no new inode. A name that exists is an error
/// (EEXIST), as for a single file; where links are refused, each file is made on its own.
fn make_placeholders(names: &[String]) -> Result<(), NetError> {
    let create = |target: &Path| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(target)
            .map(drop)
            .map_err(|e| NetError::io(format!("create {}", target.display()), e))
    };
    let Some(first) = names.first().map(|n| path(n)) else {
        return Ok(());
    };
    create(&first)?;
    for (i, name) in names.iter().enumerate().skip(1) {
        let target = path(name);
        let made = match std::fs::hard_link(&first, &target) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => create(&target),
            linked => linked.map_err(|e| NetError::io(format!("create {}", target.display()), e)),
        };
        if let Err(e) = made {
            for earlier in &names[..i] {
                let _ = std::fs::remove_file(path(earlier));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Makes a namespace on this thread and mounts it on its placeholder (see
/// [`make_placeholders`]); a `make` for [`create_each_made`].
pub fn create_here(name: &str) -> Result<(), NetError> {
    let target = path(name);
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
    if made.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    made
}

/// A named namespace of a lab, known by its name and inode. Its file is opened only while it
/// is used, and then checked to be the same namespace: a run holds no descriptor per
/// namespace beside its netlink socket, so that a lab of 10 000 nodes stays within the usual
/// limits on open files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsId {
    pub name: String,
    pub inode: u64,
}

impl NsId {
    /// The identity of the namespace open as `file` under `name`.
    pub fn of(name: &str, file: &File) -> Result<NsId, NetError> {
        Ok(NsId {
            name: name.to_string(),
            inode: inode(file)?,
        })
    }

    /// Opens the namespace again; an error if its name now holds another one (or none).
    pub fn open(&self) -> Result<File, NetError> {
        let file = File::open(path(&self.name))
            .map_err(|e| NetError::io(format!("open netns {}", self.name), e))?;
        if !is_namespace(&file) || inode(&file)? != self.inode {
            return Err(NetError::io(
                format!("open netns {}", self.name),
                io::Error::other("it was replaced while topo was running"),
            ));
        }
        Ok(file)
    }
}

/// A namespace to enter: an open file, or an [`NsId`] opened for the moment it is entered.
pub trait Enter {
    fn enter(&self) -> Result<(), NetError>;
}

impl Enter for &File {
    fn enter(&self) -> Result<(), NetError> {
        setns(self.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::io("enter netns", e.into()))
    }
}

impl Enter for NsId {
    fn enter(&self) -> Result<(), NetError> {
        // The file is closed right after: a joined namespace needs no descriptor.
        setns(self.open()?.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::io(format!("enter netns {}", self.name), e.into()))
    }
}

/// Runs `each` inside every given namespace in turn, on this thread (a dedicated one), then
/// returns to the thread's own namespace.
pub fn enter_each<N: Enter, T>(
    namespaces: &[N],
    mut each: impl FnMut(usize) -> Result<T, NetError>,
) -> Result<Vec<T>, NetError> {
    returning_home(|| {
        let mut out = Vec::with_capacity(namespaces.len());
        for (i, ns) in namespaces.iter().enumerate() {
            ns.enter()?;
            out.push(each(i)?);
        }
        Ok(out)
    })
}

/// Runs `work`, which may enter other network namespaces, on this thread (a dedicated one),
/// and returns the thread to its own network namespace afterwards, also when `work` fails.
pub fn returning_home<T>(work: impl FnOnce() -> Result<T, NetError>) -> Result<T, NetError> {
    let home =
        File::open("/proc/thread-self/ns/net").map_err(|e| NetError::io("open own netns", e))?;
    let result = work();
    setns(home.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io("return to own netns", e.into()))?;
    result
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes the named namespaces (or files) however the test ends.
    struct Guard(Vec<String>);

    impl Drop for Guard {
        fn drop(&mut self) {
            for name in &self.0 {
                let _ = delete(name);
            }
        }
    }

    /// Three scratch names `TAG-PID-{a,b,c}` and the guard that removes them.
    fn scratch(tag: &str) -> (Vec<String>, Guard) {
        ensure_dir().unwrap();
        let names: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|n| format!("{tag}-{}-{n}", std::process::id()))
            .collect();
        (names.clone(), Guard(names))
    }

    #[test]
    #[cfg_attr(not(kernel_tests), ignore = "needs root")]
    fn each_name_gets_a_namespace_of_its_own() {
        let (names, _guard) = scratch("nsp");
        let list = names.clone();
        let made = std::thread::spawn(move || create_each(&list, |_, f| inode(f)))
            .join()
            .unwrap()
            .unwrap();
        let mut inodes = Vec::new();
        for (name, (id, ino)) in names.iter().zip(&made) {
            assert_eq!(&id.name, name);
            assert_eq!(
                id.inode, *ino,
                "{name}: the identity is the namespace entered"
            );
            assert!(is_namespace(&id.open().unwrap()), "{name} is a namespace");
            // What `ip netns exec` opens: the mount, not the placeholder under it.
            let by_path = open(name).unwrap().expect("name exists");
            assert!(is_namespace(&by_path));
            assert_eq!(inode(&by_path).unwrap(), *ino);
            inodes.push(*ino);
        }
        inodes.sort_unstable();
        inodes.dedup();
        assert_eq!(inodes.len(), 3, "three distinct namespaces");
        for name in &names {
            delete(name).unwrap();
            assert!(!path(name).exists(), "{name} removed");
        }
    }

    #[test]
    #[cfg_attr(not(kernel_tests), ignore = "needs root")]
    fn a_name_in_the_way_stops_creation_and_leaves_no_placeholder() {
        let (names, _guard) = scratch("nsq");
        // Someone else's file under the third name.
        std::fs::write(path(&names[2]), b"not ours").unwrap();
        let list = names.clone();
        let err = std::thread::spawn(move || create_each(&list, |_, _| Ok(())))
            .join()
            .unwrap()
            .expect_err("the third name exists");
        assert!(err.to_string().contains(&names[2]), "{err}");
        assert!(!path(&names[0]).exists(), "first placeholder removed");
        assert!(!path(&names[1]).exists(), "second placeholder removed");
        assert_eq!(std::fs::read(path(&names[2])).unwrap(), b"not ours");

        // A failure inside the second namespace: the first stays (the caller records it), the
        // second is mounted (removed by `delete`), the third's placeholder is removed.
        std::fs::remove_file(path(&names[2])).unwrap();
        let list = names.clone();
        let second = names[1].clone();
        let err = std::thread::spawn(move || {
            create_each(&list, |name, _| {
                if name == second {
                    Err(NetError::io("test", io::Error::other("refused")))
                } else {
                    Ok(())
                }
            })
        })
        .join()
        .unwrap()
        .expect_err("the second namespace fails");
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(!path(&names[2]).exists(), "third placeholder removed");
        for name in &names[..2] {
            let f = open(name).unwrap().expect("made");
            assert!(is_namespace(&f), "{name} is a namespace");
        }
    }
}
