//! The node's mount namespace. Runs in the node's PID 1 after `unshare(CLONE_NEWNS)`.
//!
//! Without `rootfs`, the node sees the host's filesystem **read-only**, with its own `/tmp`
//! and `/run` (tmpfs), a minimal `/dev` (with its own devpts and `/dev/shm`), a fresh `/proc`
//! (its PID namespace; host-wide parts read-only or hidden, as runc does) and `/sys` (its
//! network namespace; mounted on first entry, see [`ensure_sysfs`]), the lab's `/etc/hosts`
//! and the declared binds. With `rootfs: DIR`, the node's root is DIR (pivot_root), with the
//! same private mounts.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::{InitConfig, NodeError, TmpfsSizes};

/// Device nodes a node gets in its minimal `/dev` (made with the host's numbers).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// A device node of the minimal `/dev`, as the host has it.
#[derive(Debug, Clone, Copy)]
pub struct Device {
    name: &'static str,
    rdev: u64,
    perm: u32,
}

/// The host's numbers and permissions of the minimal `/dev`'s devices, read once by the
/// spawner for every init (each would otherwise open and stat the six itself); `None` unless
/// all are character devices.
pub fn host_devices() -> Option<[Device; 6]> {
    let mut out = [Device {
        name: "",
        rdev: 0,
        perm: 0,
    }; 6];
    for (slot, name) in out.iter_mut().zip(DEVICES) {
        *slot = char_device(
            name,
            &nix::sys::stat::stat(&Path::new("/dev").join(name)).ok()?,
        )?;
    }
    Some(out)
}

/// `name` as the character device `st` describes; `None` if it is something else.
fn char_device(name: &'static str, st: &nix::sys::stat::FileStat) -> Option<Device> {
    use nix::sys::stat::SFlag;
    (SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR).then_some(Device {
        name,
        rdev: st.st_rdev,
        perm: st.st_mode & 0o777,
    })
}

/// Makes `d` in the directory `dev` with `mknod`.
fn make_device(dev: &Path, d: &Device) -> Result<(), NodeError> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let perm = Mode::from_bits_truncate(d.perm);
    mknod(&dev.join(d.name), SFlag::S_IFCHR, perm, d.rdev)
        .map_err(|e| NodeError::sys(format!("mknod /dev/{}", d.name), e))
}

/// What the spawner prepared for a node.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// The host's devices (`None`: the init reads them itself).
    pub devices: Option<[Device; 6]>,
    /// `/etc/hosts` of the spawner's mount namespace, which the node's is a copy of, is this
    /// node's hosts file already (see [`share_hosts`]).
    pub hosts: bool,
    /// For a node with a user namespace: its rootfs and bind sources as detached trees.
    pub trees: Option<Trees>,
}

/// Detached copies (`open_tree(OPEN_TREE_CLONE)`) of a node's rootfs and bind sources,
/// idmapped to the node's user namespace where the file system allows it, so that host
/// files keep their owners as seen from the node (host uid 0 is the node's root). Only root
/// of the host's user namespace may idmap a mount of a host file system, so the spawner's
/// child makes them before it joins the node's user namespace; the init moves them into
/// place (`move_mount`) instead of binding the host paths.
#[derive(Debug, Clone, Default)]
pub struct Trees {
    /// The rootfs, mounted `nosuid`.
    pub rootfs: Option<RawFd>,
    /// One per bind, in the file's order; read-only ones are read-only already.
    pub binds: Vec<RawFd>,
    /// One per private directory, in `InitConfig::dirs`'s order; not idmapped.
    pub dirs: Vec<RawFd>,
}

impl Trees {
    /// The descriptors, which the init must keep open until it has moved them.
    pub fn fds(&self) -> Vec<RawFd> {
        self.rootfs
            .iter()
            .chain(&self.binds)
            .chain(&self.dirs)
            .copied()
            .collect()
    }
}

/// Makes a node's [`Trees`] for the user namespace `userns`. A file system that cannot be
/// idmapped (tmpfs before Linux 6.3, NFS, FUSE, …) is copied as it is: its files show as
/// owned by `nobody` in the node, which gets their "other" permissions.
pub fn detached_trees(config: &InitConfig, userns: &File) -> Result<Trees, NodeError> {
    let rootfs = match &config.rootfs {
        Some(dir) => Some(detached_tree(dir, Some(userns), MOUNT_ATTR_NOSUID)?),
        None => None,
    };
    let mut binds = Vec::with_capacity(config.binds.len());
    for b in &config.binds {
        let attr = if b.read_only { MOUNT_ATTR_RDONLY } else { 0 };
        binds.push(detached_tree(&b.host, Some(userns), attr)?);
    }
    let mut dirs = Vec::with_capacity(config.dirs.len());
    for d in &config.dirs {
        dirs.push(detached_tree(
            &d.host,
            None,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        )?);
    }
    Ok(Trees {
        rootfs,
        binds,
        dirs,
    })
}

/// A detached recursive copy of `path` with `attr` set, idmapped to `userns` (if given) if
/// it can be, and private: a copy of a shared mount (on a host whose `/` is shared, as systemd makes it)
/// would otherwise stay in its peer group, and mounts would cross between the node and the
/// host under it.
fn detached_tree(path: &Path, userns: Option<&File>, attr: u64) -> Result<RawFd, NodeError> {
    use std::os::unix::ffi::OsStrExt;
    let what = || format!("copy the mount tree of {}", path.display());
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| NodeError::sys(what(), Errno::EINVAL))?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: open_tree(dirfd, path, flags) reads the NUL-terminated `c_path`, which outlives
    // the call, and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(NodeError::sys(what(), std::io::Error::last_os_error()));
    }
    // SAFETY: open_tree returned a fresh descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let private = libc::MS_PRIVATE;
    let plain = MountAttr {
        attr_set: attr,
        attr_clr: 0,
        propagation: private,
        userns_fd: 0,
    };
    let recursive = (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint;
    let set = |a: &MountAttr| mount_setattr(tree.as_raw_fd(), c"", recursive, a);
    let Some(userns) = userns else {
        set(&plain).map_err(|e| NodeError::sys(what(), e))?;
        return Ok(tree.into_raw_fd());
    };
    let idmap = MountAttr {
        attr_set: attr | libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: private,
        userns_fd: userns.as_raw_fd() as u64,
    };
    match set(&idmap) {
        Ok(()) => {}
        // The file system cannot be idmapped: copied as it is.
        Err(Errno::EINVAL) | Err(Errno::EPERM) | Err(Errno::EOPNOTSUPP) => {
            set(&plain).map_err(|e| NodeError::sys(what(), e))?;
        }
        Err(e) => return Err(NodeError::sys(what(), e)),
    }
    Ok(tree.into_raw_fd())
}

/// Ownership of a descriptor of [`Trees`].
fn take_tree(fd: RawFd) -> OwnedFd {
    // SAFETY: the spawner made the descriptors of a node's `Trees` for that node's init alone,
    // which takes each once, in `set_up`.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Attaches the detached tree `tree` at `target` (`move_mount`), following a link there: a
/// target in a rootfs is its opened object's `/proc/self/fd/N`.
fn move_tree(tree: &OwnedFd, target: &Path) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c_target =
        std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: move_mount(from_dfd, from_path, to_dfd, to_path, flags) reads the two
    // NUL-terminated paths, which outlive the call; `tree` is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_SYMLINKS,
        )
    };
    Errno::result(rc).map(drop)
}

/// Binds the lab's hosts file on `/etc/hosts` of the calling process's mount namespace (the
/// spawner's private one), once for every node's copy of it; read-only in the nodes like the
/// rest of the host's tree, instead of an open and two mount calls in every init.
pub fn share_hosts(hosts: &Path) -> Result<(), NodeError> {
    bind(&open_path(hosts)?, Path::new("/etc/hosts"), true)
}

/// Whether `a` and `b` name the same file (as a file bound on another does).
pub fn is_same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn open_devices() -> Result<Vec<(&'static str, File)>, NodeError> {
    DEVICES
        .iter()
        .map(|&d| Ok((d, open_path(&Path::new("/dev").join(d))?)))
        .collect()
}

/// Sets up the init's mounts. `node_net`: the init lives outside its node's network
/// namespace, so what must be mounted from that namespace is mounted by a child that joins it.
pub fn set_up(config: &InitConfig, shared: &Shared, node_net: bool) -> Result<(), NodeError> {
    // A node with its own root has its own /etc/hosts below it.
    let shared_hosts = shared.hosts && config.rootfs.is_none();
    // No mount event crosses in either direction: nothing mounted here reaches the host,
    // and nothing the host mounts later (on a host whose `/` is shared, as systemd makes it)
    // appears in the node.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| NodeError::sys("make / rprivate", e))?;
    // The copies of other namespaces' mounts are of no use here, and would make the mount
    // table of N nodes grow as N².
    let _ = umount2("/run/netns", MntFlags::MNT_DETACH);
    // Open what we bind before /run and /tmp are covered by the node's own tmpfs.
    let hosts = match shared_hosts {
        true => None,
        false => Some(open_path(&config.hosts)?),
    };
    // In a user namespace mknod is refused: the devices are bound from the host's then.
    let known = shared.devices.filter(|_| !config.ctx.userns);
    let opened = match known {
        Some(_) => Vec::new(),
        None => open_devices()?,
    };
    let trees = shared.trees.as_ref();
    let bind_trees: Vec<OwnedFd> = trees
        .map(|t| t.binds.iter().map(|fd| take_tree(*fd)).collect())
        .unwrap_or_default();
    let dir_trees: Vec<OwnedFd> = trees
        .map(|t| t.dirs.iter().map(|fd| take_tree(*fd)).collect())
        .unwrap_or_default();
    let rootfs_tree = trees.and_then(|t| t.rootfs).map(take_tree);
    // Binds, then private directories: each with its source and its detached tree, if any.
    let mounts: Vec<(&crate::spec::Bind, Option<&OwnedFd>)> = config
        .binds
        .iter()
        .enumerate()
        .map(|(i, b)| (b, bind_trees.get(i)))
        .chain(
            config
                .dirs
                .iter()
                .enumerate()
                .map(|(i, d)| (d, dir_trees.get(i))),
        )
        .collect();
    let mut sources = Vec::with_capacity(mounts.len());
    for (b, tree) in &mounts {
        sources.push(match tree {
            Some(tree) => tree
                .try_clone()
                .map(File::from)
                .map_err(|e| NodeError::sys(format!("open {}", b.host.display()), e))?,
            None => open_path(&b.host)?,
        });
    }
    let root = match &config.rootfs {
        Some(dir) => {
            let dir = dir.as_path();
            match &rootfs_tree {
                Some(tree) => move_tree(tree, dir).map_err(|e| {
                    NodeError::sys(format!("mount the rootfs {}", dir.display()), e)
                })?,
                None => {
                    bind_path(dir, dir, false)?;
                    // Set-user-ID bits and file capabilities in the node's tree mean nothing
                    // in the node (`no_new_privs`); nosuid says so for every program started
                    // from it.
                    set_attr(dir, MOUNT_ATTR_NOSUID, "mount the rootfs nosuid")?;
                }
            }
            Root::own(dir)?
        }
        None => {
            set_attr(
                Path::new("/"),
                MOUNT_ATTR_RDONLY,
                "make the host's filesystem read-only in the node",
            )?;
            Root::Host
        }
    };
    let sizes = &config.tmpfs;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_at(
        "proc",
        &root.existing("/proc")?,
        "proc",
        nosuid | MsFlags::MS_NOEXEC,
        None,
    )?;
    // The node's own sysfs is mounted by the first process that enters it (see
    // `ensure_sysfs`), except in a rootfs with a user namespace: there the kernel mounts a
    // sysfs only where a full one is visible, which after `pivot_root` the host's is not.
    if config.rootfs.is_some() && config.ctx.userns {
        let sys = root.existing("/sys")?;
        let mut mount_sysfs = || mount_at("sysfs", &sys, "sysfs", SYSFS_FLAGS, None);
        if node_net {
            super::init::in_node_net(&mut mount_sysfs)?;
        } else {
            mount_sysfs()?;
        }
        // Looked up again: the descriptor of the target is the directory under the mount.
        mask_dirs(&root.existing("/sys")?.at, &SYS_MASKED_DIRS)?;
    }
    let data = |mode: &str, size: u64| format!("mode={mode},size={size}");
    mount_at(
        "tmpfs",
        &root.existing("/tmp")?,
        "tmpfs",
        nosuid,
        Some(&data("1777", sizes.tmp)),
    )?;
    mount_at(
        "tmpfs",
        &root.existing("/run")?,
        "tmpfs",
        nosuid,
        Some(&data("755", sizes.run)),
    )?;
    harden_proc(&root.existing("/proc")?.at)?;
    // A minimal /dev in every node: the host's /dev would offer its disks and /dev/kmsg
    // (a read-only mount does not stop writes to a device).
    minimal_dev(&root, known, &opened, !config.ctx.userns, sizes)?;
    if let Some(hosts) = hosts {
        let etc_hosts = match root {
            Root::Host => root.existing("/etc/hosts")?,
            Root::Own { .. } => root.file("/etc/hosts")?,
        };
        bind_to(&root, &hosts, &etc_hosts, Path::new("/etc/hosts"), true)?;
    }
    for ((b, tree), src) in mounts.iter().zip(&sources) {
        let target = make_target(&root, &b.node, src)?;
        match tree {
            Some(tree) => move_tree(tree, &target.at).map_err(|e| {
                NodeError::sys(format!("bind mount onto {}", target.shown.display()), e)
            })?,
            None => bind_to(&root, src, &target, &b.node, b.read_only)?,
        }
    }
    if let Some(dir) = &config.rootfs {
        pivot_into(dir)?;
    }
    Ok(())
}

/// Where a node's mounts go: the host's tree, or the node's own `rootfs`, opened.
///
/// Node root owns a rootfs and may have planted symbolic links in it (`/etc/hosts ->
/// /etc/shadow`, `/tmp -> /`), also while this init runs (another node sharing the tree).
/// Before `pivot_root` the init's root is the host's, so a link followed there would lead
/// out of the tree. Every path below a rootfs is therefore looked up by the kernel inside
/// it, following no symbolic link (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`),
/// what is missing is made with `mkdirat` and `O_CREAT | O_EXCL`, and mounts go onto the
/// opened object through `/proc/self/fd/N`, never by name again.
enum Root {
    Host,
    Own { dir: PathBuf, fd: OwnedFd },
}

/// A place to mount on: `at` is what `mount(2)` is given (for a rootfs, `/proc/self/fd/N`
/// of the object opened, kept open in `_fd`), `shown` the path for messages.
struct Target {
    at: PathBuf,
    shown: PathBuf,
    _fd: Option<OwnedFd>,
}

impl Target {
    fn path(p: &Path) -> Target {
        Target {
            at: p.to_path_buf(),
            shown: p.to_path_buf(),
            _fd: None,
        }
    }

    fn opened(fd: OwnedFd, shown: PathBuf) -> Target {
        Target {
            at: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            shown,
            _fd: Some(fd),
        }
    }
}

impl Root {
    fn own(dir: &Path) -> Result<Root, NodeError> {
        // The rootfs itself is the file's (trusted) path, opened once it is a mount of its
        // own: lookups from this descriptor cross the mounts made on it next.
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| NodeError::sys(format!("open rootfs {}", dir.display()), e))?;
        Ok(Root::Own {
            dir: dir.to_path_buf(),
            fd,
        })
    }

    /// The host path of `p` (a path in the node), for messages.
    fn shown(&self, p: &Path) -> PathBuf {
        match self {
            Root::Host => p.to_path_buf(),
            Root::Own { dir, .. } => dir.join(p.strip_prefix("/").unwrap_or(p)),
        }
    }

    fn error(&self, what: &str, p: &Path, e: Errno) -> NodeError {
        let shown = self.shown(p);
        match e {
            Errno::ELOOP | Errno::EXDEV => NodeError::sys(
                format!(
                    "{what} {} (inside a rootfs, topo follows no symbolic link)",
                    shown.display()
                ),
                e,
            ),
            // The node's mounts are made inside its user namespace, where the host's root
            // is nobody: a directory only root may enter hides what is below it.
            Errno::EACCES => NodeError::sys(
                format!(
                    "{what} {} (the node's root cannot enter a directory on the way: with a user namespace it has no rights of the host's root; make the directories searchable, e.g. chmod o+x, or set userns: false)",
                    shown.display()
                ),
                e,
            ),
            _ => NodeError::sys(format!("{what} {}", shown.display()), e),
        }
    }

    /// `p` as it is; `ENOENT` when missing.
    fn lookup(&self, p: &Path) -> Result<Target, Errno> {
        match self {
            Root::Host => match std::fs::symlink_metadata(p) {
                Ok(_) => Ok(Target::path(p)),
                Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT))),
            },
            Root::Own { fd, .. } => {
                resolve(fd, p, OFlag::empty()).map(|o| Target::opened(o, self.shown(p)))
            }
        }
    }

    /// An existing file or directory to mount on.
    fn existing(&self, p: &str) -> Result<Target, NodeError> {
        let p = Path::new(p);
        match self {
            // The host's own paths: looked up by `mount(2)` itself.
            Root::Host => Ok(Target::path(p)),
            Root::Own { .. } => self.lookup(p).map_err(|e| self.error("open", p, e)),
        }
    }

    /// The directory `p`, made with its parents where missing.
    fn dir(&self, p: &Path) -> Result<Target, NodeError> {
        match self {
            Root::Host => {
                std::fs::create_dir_all(p)
                    .map_err(|e| NodeError::sys(format!("create {}", p.display()), e))?;
                Ok(Target::path(p))
            }
            Root::Own { fd, .. } => make_dirs(fd, p)
                .map(|d| Target::opened(d, self.shown(p)))
                .map_err(|e| self.error("create", p, e)),
        }
    }

    /// The file `p`, made empty (with its directory) where missing; an existing one is
    /// left as it is, never truncated.
    fn file(&self, p: &str) -> Result<Target, NodeError> {
        let p = Path::new(p);
        match self {
            Root::Host => {
                if !p.exists() {
                    make_file(p)?;
                }
                Ok(Target::path(p))
            }
            Root::Own { fd, .. } => make_file_in(fd, p)
                .map(|f| Target::opened(f, self.shown(p)))
                .map_err(|e| self.error("create", p, e)),
        }
    }
}

/// How every path below a rootfs is opened: inside it, through no symbolic link (a link as
/// the last component too is refused, `ELOOP`).
fn in_root(flags: OFlag) -> OpenHow {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
    // openat2 refuses a mode without O_CREAT.
    match flags.contains(OFlag::O_CREAT) {
        true => how.mode(Mode::from_bits_truncate(0o644)),
        false => how,
    }
}

/// Opens `p` (a path in the node) below the rootfs `root`, as an `O_PATH` descriptor.
fn resolve(root: &OwnedFd, p: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let rel = p.strip_prefix("/").unwrap_or(p);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root, rel, in_root(OFlag::O_PATH | flags))
}

/// The directory `p` below the rootfs `root`, made one component at a time where missing
/// (`mkdirat` makes no link's target), each opened as above before the next.
fn make_dirs(root: &OwnedFd, p: &Path) -> Result<OwnedFd, Errno> {
    match resolve(root, p, OFlag::O_DIRECTORY) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let mut cur = resolve(root, Path::new("."), OFlag::O_DIRECTORY)?;
    for c in p.components() {
        let name = match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(name) => Path::new(name),
            // `..` is resolved by the kernel above; here it would climb out of `cur`'s view.
            Component::ParentDir | Component::Prefix(_) => return Err(Errno::EINVAL),
        };
        cur = match resolve(&cur, name, OFlag::O_DIRECTORY) {
            Err(Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(&cur, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                resolve(&cur, name, OFlag::O_DIRECTORY)?
            }
            other => other?,
        };
    }
    Ok(cur)
}

/// The file `p` below the rootfs `root`: made with `O_CREAT | O_EXCL` (which follows no
/// link) where missing, then opened as above.
fn make_file_in(root: &OwnedFd, p: &Path) -> Result<OwnedFd, Errno> {
    match resolve(root, p, OFlag::empty()) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let name = p.file_name().map(Path::new).ok_or(Errno::EINVAL)?;
    let parent = make_dirs(root, p.parent().unwrap_or(Path::new("/")))?;
    let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW;
    match openat2(&parent, name, in_root(create)) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    resolve(&parent, name, OFlag::empty())
}

/// `statfs(2)` f_type of sysfs (linux/magic.h).
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// The device of the caller's `/sys`, read before entering a node: a node whose `/sys` is
/// still that one has no sysfs of its own yet.
pub fn host_sys_dev() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/sys").ok().map(|m| m.dev())
}

/// How a node's sysfs is mounted: read-only, nothing to run or open as a device there.
const SYSFS_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_RDONLY);

/// Mounts the node's own sysfs (read-only) on `/sys` unless it is there already. Runs in a
/// process entering the node, in the node's network and mount namespaces, before it drops
/// its capabilities.
///
/// sysfs shows the network devices of the namespace that mounts it, so every node needs one,
/// and the kernel finds or makes its superblock by comparing every sysfs superblock of the
/// machine under a global lock: O(N) per node, O(N²) per lab. The inits therefore leave
/// `/sys` alone, and the first process to enter a node from outside (`exec:`, a service,
/// `topo exec`) mounts it: a node nobody runs anything in costs nothing. The init, which
/// never reads `/sys`, starts commands of its own (`super::channel`) only once it is there.
/// Two processes entering at once may both mount it; the second mount covers the first with
/// the same view.
pub fn ensure_sysfs(host_sys: Option<u64>) -> Result<(), NodeError> {
    if has_own_sysfs(host_sys) {
        return Ok(());
    }
    let sys = Path::new("/sys");
    mount_fs("sysfs", sys, "sysfs", SYSFS_FLAGS, None)?;
    mask_dirs(sys, &SYS_MASKED_DIRS)
}

/// Whether `/sys`, as this process sees it, is a sysfs other than the host's (whose device
/// is `host_sys`): the node's own, mounted.
pub fn has_own_sysfs(host_sys: Option<u64>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let sys = Path::new("/sys");
    // f_type is i64 on 64-bit glibc but narrower on other targets: keep the conversion.
    #[allow(clippy::useless_conversion)]
    let is_sysfs = nix::sys::statfs::statfs(sys)
        .is_ok_and(|s| i64::from(s.filesystem_type().0) == SYSFS_MAGIC);
    is_sysfs
        && match (host_sys, std::fs::metadata(sys)) {
            (Some(host), Ok(m)) => m.dev() != host,
            _ => false,
        }
}

fn open_path(p: &Path) -> Result<File, NodeError> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
        .map_err(|e| NodeError::sys(format!("open {}", p.display()), e))
}

fn mount_fs(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), NodeError> {
    mount(Some(src), target, Some(fstype), flags, data)
        .map_err(|e| NodeError::sys(format!("mount {fstype} on {}", target.display()), e))
}

fn mount_at(
    src: &str,
    target: &Target,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), NodeError> {
    mount(Some(src), &target.at, Some(fstype), flags, data)
        .map_err(|e| NodeError::sys(format!("mount {fstype} on {}", target.shown.display()), e))
}

/// Bind-mounts an opened path (through its `/proc/self/fd` link, so the source is the object
/// opened earlier even if its path is now covered).
fn bind(src: &File, target: &Path, read_only: bool) -> Result<(), NodeError> {
    bind_to(&Root::Host, src, &Target::path(target), target, read_only)
}

/// Binds `src` on `target` (`in_node` in `root`), read-only or writable as asked. A bind
/// copies the flags of the mount it comes from, which for a host path is the host's tree,
/// read-only by then: a writable bind has the flag cleared again. Either change must name the
/// new mount, so it goes to `in_node` looked up again (the target's own descriptor is the
/// object under it).
fn bind_to(
    root: &Root,
    src: &File,
    target: &Target,
    in_node: &Path,
    read_only: bool,
) -> Result<(), NodeError> {
    let what = |e| NodeError::sys(format!("bind mount onto {}", target.shown.display()), e);
    let from = PathBuf::from(format!("/proc/self/fd/{}", src.as_raw_fd()));
    bind_path(&from, &target.at, false).map_err(what)?;
    let top = match root {
        Root::Host => Target::path(in_node),
        Root::Own { .. } => root
            .lookup(in_node)
            .map_err(|e| root.error("open", in_node, e))?,
    };
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &top.at, None::<&str>, flags, None::<&str>).map_err(what)?;
    } else {
        // Only the read-only flag: a remount would also clear nosuid, nodev and noexec.
        let attr = MountAttr {
            attr_set: 0,
            attr_clr: MOUNT_ATTR_RDONLY,
            propagation: 0,
            userns_fd: 0,
        };
        mount_setattr_path(&top.at, 0, &attr).map_err(what)?;
    }
    Ok(())
}

fn bind_path(from: &Path, target: &Path, read_only: bool) -> Result<(), Errno> {
    mount(
        Some(from),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>)?;
    }
    Ok(())
}

/// `mount_setattr(2)` argument (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `mount_setattr(dirfd, path, flags, attr)`: on the mount at `path` (relative to `dirfd`;
/// with `AT_EMPTY_PATH`, `dirfd` itself), and with `AT_RECURSIVE` on every mount below it.
fn mount_setattr(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: mount_setattr(dirfd, path, flags, attr, size) reads `size` bytes of `attr`, a
    // live `struct mount_attr`, and the NUL-terminated `path`; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// [`mount_setattr`] on a path.
fn mount_setattr_path(path: &Path, flags: libc::c_uint, attr: &MountAttr) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    mount_setattr(libc::AT_FDCWD, &c_path, flags, attr)
}

/// Sets `attr` on every mount at and below `path` in this mount namespace (Linux 5.12+).
fn set_attr(path: &Path, attr: u64, what: &str) -> Result<(), NodeError> {
    let attr = MountAttr {
        attr_set: attr,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr_path(path, libc::AT_RECURSIVE as libc::c_uint, &attr)
        .map_err(|e| NodeError::sys(what, e))
}

/// A minimal `/dev`: a tmpfs with the usual device nodes (`known`, or else made like the
/// host's `opened` ones, which were opened before this may cover the host's /dev), a private
/// devpts, `/dev/shm`, and the standard links. Without `may_mknod` (in a user namespace,
/// where the kernel refuses to make a device) the devices are bound at once.
fn minimal_dev(
    root: &Root,
    known: Option<[Device; 6]>,
    opened: &[(&'static str, File)],
    may_mknod: bool,
    sizes: &TmpfsSizes,
) -> Result<(), NodeError> {
    let mount_point = root.dir(Path::new("/dev"))?;
    let data = format!("mode=755,size={}", sizes.dev);
    let tmpfs = || {
        mount_at(
            "tmpfs",
            &mount_point,
            "tmpfs",
            MsFlags::MS_NOSUID,
            Some(&data),
        )?;
        // The new tmpfs, looked up again (the mount point's descriptor is the directory
        // under it); everything below is made in it, which the node has not seen yet.
        root.existing("/dev")
    };
    let mut fresh = tmpfs()?;
    // Device nodes are made with the host's numbers and modes, as runc does; where that is
    // not allowed (a node with its own user namespace) they are bound from the host's. Made,
    // they cost far less than a bind each (which creates the bind's target in the tmpfs,
    // then mounts).
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = match known {
        Some(known) => known.iter().try_for_each(|d| make_device(&fresh.at, d)),
        None => make_like(&fresh.at, opened, may_mknod),
    };
    let made = match made {
        // mknod refused after all (a device cgroup, say): this tmpfs goes, the host's
        // devices are opened under it, and a new one gets them like the host's, or bound.
        Err(_) if known.is_some() => {
            let _ = umount2(&fresh.at, MntFlags::MNT_DETACH);
            open_devices().and_then(|opened| {
                fresh = tmpfs()?;
                make_like(&fresh.at, &opened, false)
            })
        }
        other => other,
    };
    nix::sys::stat::umask(umask);
    made?;
    let dev = fresh.at.as_path();
    let mkdir = |p: PathBuf| {
        std::fs::create_dir_all(&p)
            .map_err(|e| NodeError::sys(format!("create {}", p.display()), e))
    };
    mkdir(dev.join("pts"))?;
    mount_fs(
        "devpts",
        &dev.join("pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mkdir(dev.join("shm"))?;
    mount_fs(
        "tmpfs",
        &dev.join("shm"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("mode=1777,size={}", sizes.dev_shm)),
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link))
            .map_err(|e| NodeError::sys(format!("link /dev/{link}"), e))?;
    }
    Ok(())
}

/// Device nodes in `dev` (an existing directory) like the host's `opened` ones: made where
/// allowed (`may_mknod`, and the kernel agrees), else bound.
fn make_like(
    dev: &Path,
    opened: &[(&'static str, File)],
    may_mknod: bool,
) -> Result<(), NodeError> {
    opened.iter().try_for_each(|(d, src)| {
        let made = may_mknod
            && nix::sys::stat::fstat(src)
                .ok()
                .and_then(|st| char_device(d, &st))
                .is_some_and(|device| make_device(dev, &device).is_ok());
        if made {
            return Ok(());
        }
        let target = dev.join(d);
        File::create(&target)
            .map_err(|e| NodeError::sys(format!("create {}", target.display()), e))?;
        bind(src, &target, false)
    })
}

/// Files of `/proc` that reach beyond the node, made read-only as runc does: host-wide
/// sysctls (all of `/proc/sys` but the node's own `/proc/sys/net`), `sysrq-trigger`, IRQ,
/// bus and filesystem settings.
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// Files of `/proc` that show host kernel state, hidden behind `/dev/null` as runc does.
const PROC_MASKED: [&str; 7] = [
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "kpageflags",
    "latency_stats",
    "timer_stats",
];
/// Directories of `/proc` about the host's hardware (ACPI, sound cards, SCSI devices),
/// covered by an empty read-only tmpfs as runc does.
const PROC_MASKED_DIRS: [&str; 3] = ["acpi", "asound", "scsi"];
/// Directories of a node's `/sys` about the host's firmware (ACPI tables, EFI variables,
/// memory map) and power use (RAPL counters), covered the same way when `/sys` is mounted.
const SYS_MASKED_DIRS: [&str; 2] = ["firmware", "devices/virtual/powercap"];

fn harden_proc(proc_dir: &Path) -> Result<(), NodeError> {
    let remount = |target: &Path, flags: MsFlags| {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            .map_err(|e| NodeError::sys(format!("remount {}", target.display()), e))
    };
    for p in PROC_READ_ONLY {
        let target = proc_dir.join(p);
        if bind_if_there(&target, &target)? {
            remount(&target, MsFlags::MS_RDONLY)?;
        }
    }
    // The node's network namespace is its own: its sysctls stay writable. A bind mount
    // starts with its source's flags: the read-only one is cleared explicitly.
    let net = proc_dir.join("sys/net");
    if bind_if_there(&net, &net)? {
        remount(&net, MsFlags::empty())?;
    }
    // As runc does, a plain bind: /dev/null discards what is written and reads as empty, so
    // a read-only remount (a second mount call each) would add nothing.
    let null = open_path(Path::new("/dev/null"))?;
    let from = PathBuf::from(format!("/proc/self/fd/{}", null.as_raw_fd()));
    for p in PROC_MASKED {
        bind_if_there(&from, &proc_dir.join(p))?;
    }
    mask_dirs(proc_dir, &PROC_MASKED_DIRS)
}

/// Covers each directory of `dirs` (below `base`) that exists with an empty read-only
/// tmpfs: one tmpfs on the first, bound on the others (one superblock per node, not one per
/// directory).
fn mask_dirs(base: &Path, dirs: &[&str]) -> Result<(), NodeError> {
    let mut first: Option<PathBuf> = None;
    for d in dirs {
        let target = base.join(d);
        match &first {
            Some(from) => {
                bind_if_there(from, &target)?;
            }
            None => {
                let flags = MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC;
                match mount(
                    Some("tmpfs"),
                    &target,
                    Some("tmpfs"),
                    flags,
                    Some("size=0k,nr_inodes=1,mode=0555"),
                ) {
                    Ok(()) => first = Some(target),
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(NodeError::sys(format!("mask {}", target.display()), e)),
                }
            }
        }
    }
    Ok(())
}

/// Bind-mounts `from` on `target` if `target` exists (`false` if this kernel's /proc lacks
/// it). Without a lookup first: in a fresh /proc, that costs as much as the mount itself.
fn bind_if_there(from: &Path, target: &Path) -> Result<bool, NodeError> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    match mount(Some(from), target, None::<&str>, flags, None::<&str>) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(NodeError::sys(format!("bind onto {}", target.display()), e)),
    }
}

/// Makes `root` the root of this mount namespace and drops the old root entirely.
fn pivot_into(root: &Path) -> Result<(), NodeError> {
    nix::unistd::chdir(root).map_err(|e| NodeError::sys(format!("chdir {}", root.display()), e))?;
    // pivot_root(".", "."): the old root ends up on top of the new one, and is detached next
    // (as runc does), so no directory for it is needed in the node's tree.
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| NodeError::sys(format!("pivot_root into {}", root.display()), e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| NodeError::sys("detach the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| NodeError::sys("chdir /", e))
}

fn make_file(p: &Path) -> Result<(), NodeError> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| NodeError::sys(format!("create {}", parent.display()), e))?;
    }
    File::create(p)
        .map(|_| ())
        .map_err(|e| NodeError::sys(format!("create {}", p.display()), e))
}

/// A bind target must exist. Under the node's own `/tmp` and `/run` (and anywhere in a
/// node's own `rootfs`) it is created, a directory or an empty file like the source;
/// elsewhere that would write to the host's filesystem, so a missing target is an error.
fn make_target(root: &Root, in_node: &Path, src: &File) -> Result<Target, NodeError> {
    match root.lookup(in_node) {
        Err(Errno::ENOENT) => {}
        found => return found.map_err(|e| root.error("open bind target", in_node, e)),
    }
    let private = in_node.starts_with("/tmp")
        || in_node.starts_with("/run")
        || matches!(root, Root::Own { .. });
    if !private {
        return Err(NodeError::sys(
            format!(
                "bind target {} (it must exist in the node, or be under /tmp or /run)",
                in_node.display()
            ),
            std::io::Error::from_raw_os_error(libc::ENOENT),
        ));
    }
    let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", src.as_raw_fd()))
        .map(|m| m.is_dir())
        .unwrap_or(true);
    if is_dir {
        root.dir(in_node)
    } else {
        root.file(&in_node.to_string_lossy())
    }
}
