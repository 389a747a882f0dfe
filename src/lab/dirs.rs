//! A node's private directories (`dirs:`). Each is a directory of the lab's run directory,
//! `dirs/NODE/NAME` (`kept/NODE/NAME` with `keep: true`, which `down` keeps with the logs),
//! NAME being its path in the node with `%` written `%25` and `/` written `%2F`, so that no
//! node's directory is inside another's. `up` makes it before the node's init starts, with
//! the declared owner and mode, and the init binds it read-write on its path.
//!
//! Owners are the node's users: looked up in the node's `/etc/passwd` and `/etc/group` (its
//! rootfs's, or the host's), and, for a node with a user namespace, shifted into the node's
//! host id range, so that the node sees the ids it was given. The bind is not idmapped: it
//! works the same on every kernel and file system (`/run` is a tmpfs, which older kernels
//! cannot idmap).
//!
//! `from: DIR` fills a new directory with a copy of DIR (a copy, not an overlay: overlayfs's
//! copy-up would give a node with a user namespace files it does not own). The copy's files
//! keep their owners, shifted the same way, and their modes; symbolic links are copied as
//! links, other special files are left out.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{fchown, Gid, Uid};

use super::LabError;
use crate::node::userns::RANGE;
use crate::node::NodeError;
use crate::spec::{Bind, Node};
use crate::state::RunDir;

/// The default mode of a private directory.
const DEFAULT_MODE: u32 = 0o755;
/// The largest `/etc/passwd` or `/etc/group` read.
const MAX_DB: u64 = 4 << 20;
/// The deepest directory a `from:` copy descends into.
const MAX_DEPTH: usize = 64;

/// The name of a private directory in its node's area of the run directory.
pub fn name(target: &Path) -> String {
    let text = target.to_string_lossy();
    let rel = text.trim_start_matches('/');
    rel.replace('%', "%25").replace('/', "%2F")
}

/// Where the private directory `target` of `node` is on the host.
pub fn host_path(run: &Path, node: &str, target: &Path, keep: bool) -> PathBuf {
    let area = if keep { "kept" } else { "dirs" };
    run.join(area).join(node).join(name(target))
}

/// Makes (or readies again) the private directories of a node whose init is about to start;
/// returns them as binds, in the order of their paths (a parent before what is below it).
/// `base` is the first host id of the node's user namespace, `None` without one.
pub(super) fn prepare(
    run: &RunDir,
    node: &str,
    spec: &Node,
    base: Option<u32>,
) -> Result<Vec<Bind>, LabError> {
    let fail = |message: String| {
        LabError::Node(NodeError::Failed {
            node: node.to_string(),
            message,
        })
    };
    let mut out = Vec::with_capacity(spec.dirs.len());
    for (target, dir) in &spec.dirs {
        let shown = target.display();
        let (uid, gid) = owner_ids(spec.rootfs.as_deref(), dir.owner.as_deref())
            .map_err(|e| fail(format!("private directory {shown}: {e}")))?;
        let area = if dir.keep { "kept" } else { "dirs" };
        let (parent, parent_path) = run.node_area(area, node)?;
        let leaf = name(target);
        let path = parent_path.join(&leaf);
        let fresh = match mkdirat(
            parent.as_fd(),
            leaf.as_str(),
            Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(fail(format!("make {}: {e}", path.display()))),
        };
        let fd: OwnedFd = openat(
            parent.as_fd(),
            leaf.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(format!("open {}: {e}", path.display())))?;
        if fresh {
            if let Some(from) = &dir.from {
                copy_tree(from, &path, base).map_err(|e| {
                    fail(format!(
                        "copy {} into private directory {shown}: {e}",
                        from.display()
                    ))
                })?;
            }
        }
        let (huid, hgid) = (shift(uid, base), shift(gid, base));
        fchown(&fd, Some(Uid::from_raw(huid)), Some(Gid::from_raw(hgid)))
            .map_err(|e| fail(format!("chown {}: {e}", path.display())))?;
        fchmod(
            &fd,
            Mode::from_bits_truncate(dir.mode.unwrap_or(DEFAULT_MODE)),
        )
        .map_err(|e| fail(format!("chmod {}: {e}", path.display())))?;
        out.push(Bind {
            host: path,
            node: target.clone(),
            read_only: false,
        });
    }
    Ok(out)
}

/// A node id as the host stores it: shifted into the node's range with a user namespace;
/// an id beyond the range is the overflow id (`nobody`) there.
fn shift(id: u32, base: Option<u32>) -> u32 {
    match base {
        None => id,
        Some(b) if id < RANGE => b.saturating_add(id),
        Some(_) => 65534,
    }
}

/// The uid and gid `USER[:GROUP]` stands for in the node (root without an owner). A user
/// without a group gets the user's primary group.
fn owner_ids(rootfs: Option<&Path>, owner: Option<&str>) -> Result<(u32, u32), String> {
    let Some(owner) = owner else {
        return Ok((0, 0));
    };
    let (user, group) = match owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (owner, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => {
            let db = read_db(rootfs, "etc/passwd")?;
            let (uid, gid) = lookup(&db, user, true)
                .ok_or_else(|| format!("no user '{user}' in {}", shown_db(rootfs, "passwd")))?;
            (uid, Some(gid))
        }
    };
    let gid = match group {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let db = read_db(rootfs, "etc/group")?;
                lookup(&db, g, false)
                    .map(|(gid, _)| gid)
                    .ok_or_else(|| format!("no group '{g}' in {}", shown_db(rootfs, "group")))?
            }
        },
    };
    Ok((uid, gid))
}

fn shown_db(rootfs: Option<&Path>, file: &str) -> String {
    match rootfs {
        Some(r) => format!("{}/etc/{file}", r.display()),
        None => format!("/etc/{file}"),
    }
}

/// An entry of a passwd (`NAME:x:UID:GID:…`, with its gid) or group file (`NAME:x:GID:…`).
fn lookup(db: &str, name: &str, passwd: bool) -> Option<(u32, u32)> {
    db.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let id = f.nth(1)?.parse().ok()?;
        let gid = if passwd { f.next()?.parse().ok()? } else { id };
        Some((id, gid))
    })
}

/// `/etc/passwd` or `/etc/group` as the node will see it: the rootfs's, looked up inside
/// the rootfs (a link there cannot lead to a host file), or the host's.
fn read_db(rootfs: Option<&Path>, rel: &str) -> Result<String, String> {
    use std::io::Read;
    let file = match rootfs {
        None => {
            std::fs::File::open(Path::new("/").join(rel)).map_err(|e| format!("/{rel}: {e}"))?
        }
        Some(root) => {
            use nix::fcntl::{openat2, OpenHow, ResolveFlag};
            let dir = std::fs::File::open(root).map_err(|e| format!("{}: {e}", root.display()))?;
            let how = OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            let fd =
                openat2(&dir, rel, how).map_err(|e| format!("{}/{rel}: {e}", root.display()))?;
            std::fs::File::from(fd)
        }
    };
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(format!("{rel} is not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_DB)
        .read_to_string(&mut text)
        .map_err(|e| format!("{rel}: {e}"))?;
    Ok(text)
}

/// Copies the contents of the directory `from` into the new, empty directory `to` (see the
/// module's description), without following a symbolic link in `from`.
fn copy_tree(from: &Path, to: &Path, base: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt};
    let mut stack: Vec<(PathBuf, PathBuf, usize)> = vec![(from.to_path_buf(), to.to_path_buf(), 0)];
    while let Some((src, dst, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let (s, d) = (entry.path(), dst.join(entry.file_name()));
            let meta = std::fs::symlink_metadata(&s)?;
            let kind = meta.file_type();
            if kind.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(std::io::Error::other(format!(
                        "{} is more than {MAX_DEPTH} directories deep",
                        s.display()
                    )));
                }
                std::fs::create_dir(&d)?;
                std::fs::set_permissions(&d, meta.permissions())?;
                stack.push((s, d.clone(), depth + 1));
            } else if kind.is_file() {
                std::fs::copy(&s, &d)?;
            } else if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
            } else {
                continue;
            }
            lchown(
                &d,
                Some(shift(meta.uid(), base)),
                Some(shift(meta.gid(), base)),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_flat_and_unambiguous() {
        assert_eq!(name(Path::new("/var/lib/frr")), "var%2Flib%2Ffrr");
        assert_eq!(name(Path::new("/a%2Fb")), "a%252Fb");
        assert_ne!(name(Path::new("/a/b")), name(Path::new("/a%2Fb")));
    }

    #[test]
    fn ids_shift_into_the_range() {
        assert_eq!(shift(100, None), 100);
        assert_eq!(shift(100, Some(1 << 30)), (1 << 30) + 100);
        assert_eq!(shift(RANGE, Some(1 << 30)), 65534);
    }

    #[test]
    fn passwd_and_group_lookups() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nfrr:x:101:104::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(lookup(passwd, "frr", true), Some((101, 104)));
        assert_eq!(lookup(passwd, "fr", true), None);
        let group = "frr:x:104:\nfrrvty:x:105:frr\n";
        assert_eq!(lookup(group, "frrvty", false), Some((105, 105)));
    }

    #[test]
    fn owners_by_number_need_no_database() {
        let none = Path::new("/nonexistent-rootfs");
        assert_eq!(owner_ids(Some(none), Some("7:9")), Ok((7, 9)));
        assert_eq!(owner_ids(Some(none), Some("7")), Ok((7, 7)));
        assert_eq!(owner_ids(Some(none), None), Ok((0, 0)));
        assert!(owner_ids(Some(none), Some("frr")).is_err());
    }
}
