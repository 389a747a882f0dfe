//! Opening the run directory and the files in it without following symbolic links.
//!
//! The run directory's path is walked one component at a time from `/` with `openat` and
//! `O_NOFOLLOW`, so a symbolic link anywhere in it is refused rather than followed. Every
//! directory on the way must belong to root (or to the user running `topo`) and must not be
//! writable by anyone else, unless it is sticky (as `/tmp` is); the run directory itself, a
//! lab's directory and its `logs/` must not be writable by anyone else at all. Files in them
//! are then opened relative to the opened directory, again with `O_NOFOLLOW`, new files with
//! `O_EXCL`, and only regular files with one link are accepted.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::StateError;

/// Why a path of the run directory is refused.
fn unsafe_path(path: &Path, why: impl Into<String>) -> StateError {
    StateError::Unsafe {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn sys(path: &Path, what: &str) -> impl FnOnce(Errno) -> StateError {
    let what = format!("{what} {}", path.display());
    move |e| StateError::Io {
        what,
        source: e.into(),
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// How strictly a directory's owner and mode are checked.
#[derive(Clone, Copy, PartialEq)]
enum Trust {
    /// A directory above the run directory: others may write to it only if it is sticky.
    Ancestor,
    /// A directory above the log archive: as [`Trust::Ancestor`], but its group may write
    /// (Ubuntu's `/var/log` is `root:syslog`, mode 0775).
    LogAncestor,
    /// The run directory and what is in it: nobody else may write.
    Own,
}

fn check_dir(st: &FileStat, path: &Path, trust: Trust) -> Result<(), StateError> {
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != me {
        return Err(unsafe_path(
            path,
            format!("owned by uid {}, not by root", st.st_uid),
        ));
    }
    let mode = st.st_mode;
    let sticky = mode & libc::S_ISVTX != 0;
    let others_write = match trust {
        Trust::LogAncestor => mode & 0o002 != 0,
        Trust::Ancestor | Trust::Own => mode & 0o022 != 0,
    };
    if others_write && (trust == Trust::Own || !sticky) {
        return Err(unsafe_path(
            path,
            format!("writable by group or others (mode {:o})", mode & 0o7777),
        ));
    }
    Ok(())
}

/// Opens the directory `name` in `parent` (whose path is `path`'s parent) without following a
/// symbolic link, creating it first if asked, and checks it.
fn open_child(
    parent: BorrowedFd<'_>,
    name: &Path,
    path: &Path,
    create: bool,
    trust: Trust,
) -> Result<Option<OwnedFd>, StateError> {
    if create {
        match nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(sys(path, "create")(e)),
        }
    }
    let fd = match nix::fcntl::openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err(unsafe_path(path, "it is a symbolic link")),
        Err(Errno::ENOTDIR) => {
            let link = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFLNK
                });
            let why = if link {
                "it is a symbolic link"
            } else {
                "it is not a directory"
            };
            return Err(unsafe_path(path, why));
        }
        Err(e) => return Err(sys(path, "open")(e)),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(sys(path, "stat"))?;
    check_dir(&st, path, trust)?;
    Ok(Some(fd))
}

/// Opens the absolute directory `path` (creating what is missing if `create`), walking it
/// from `/` without following symbolic links and checking every directory on the way.
/// `None` when it does not exist and `create` is false.
pub(super) fn open_dir(path: &Path, create: bool) -> Result<Option<OwnedFd>, StateError> {
    walk(path, create, Trust::Ancestor)
}

/// [`open_dir`] for the log archive (`/var/log/topo`): the directories above it may also be
/// writable by their group.
pub(super) fn open_archive_dir(path: &Path, create: bool) -> Result<Option<OwnedFd>, StateError> {
    walk(path, create, Trust::LogAncestor)
}

fn walk(path: &Path, create: bool, ancestor: Trust) -> Result<Option<OwnedFd>, StateError> {
    if !path.is_absolute() {
        return Err(unsafe_path(path, "not an absolute path"));
    }
    let mut fd =
        nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(sys(Path::new("/"), "open"))?;
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Ok(n)),
            Component::RootDir | Component::CurDir => None,
            Component::ParentDir | Component::Prefix(_) => Some(Err(())),
        })
        .collect::<Result<_, ()>>()
        .map_err(|()| unsafe_path(path, "it holds '..'"))?;
    let mut walked = std::path::PathBuf::from("/");
    for (i, part) in parts.iter().enumerate() {
        walked.push(part);
        let trust = if i + 1 == parts.len() {
            Trust::Own
        } else {
            ancestor
        };
        match open_child(fd.as_fd(), Path::new(part), &walked, create, trust)? {
            Some(next) => fd = next,
            None => return Ok(None),
        }
    }
    if parts.is_empty() {
        return Err(unsafe_path(path, "the run directory cannot be /"));
    }
    Ok(Some(fd))
}

/// Opens (creating if asked) the directory `name` inside the checked directory `parent`.
pub(super) fn open_subdir(
    parent: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    create: bool,
) -> Result<Option<OwnedFd>, StateError> {
    check_name(name, path)?;
    open_child(parent, Path::new(name), path, create, Trust::Own)
}

/// A name directly in a directory: one component, not `.` or `..`.
pub(super) fn check_name(name: &str, path: &Path) -> Result<(), StateError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(unsafe_path(
            path,
            format!("'{name}' is not a plain file name"),
        ));
    }
    Ok(())
}

/// Checks that an opened file is a regular file with one link (no hard link to a file
/// elsewhere).
fn check_file(fd: &OwnedFd, path: &Path) -> Result<(), StateError> {
    let st = nix::sys::stat::fstat(fd).map_err(sys(path, "stat"))?;
    if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) != SFlag::S_IFREG {
        return Err(unsafe_path(path, "it is not a regular file"));
    }
    if st.st_nlink > 1 {
        return Err(unsafe_path(path, "it has other hard links"));
    }
    Ok(())
}

/// Opens the file `name` in `dir` with `flags` (plus `O_NOFOLLOW`, `O_CLOEXEC` and
/// `O_NONBLOCK`, so a FIFO never blocks), refusing a symbolic link or anything but a regular
/// file with one link.
pub(super) fn open_file(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    flags: OFlag,
    mode: u32,
) -> Result<File, StateError> {
    check_name(name, path)?;
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match nix::fcntl::openat(dir, name, flags, Mode::from_bits_truncate(mode)) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err(unsafe_path(path, "it is a symbolic link")),
        Err(e) => return Err(sys(path, "open")(e)),
    };
    check_file(&fd, path)?;
    // Back to blocking I/O for the caller (a regular file never blocks anyway).
    let fl = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).map_err(sys(path, "fcntl"))?;
    let fl = OFlag::from_bits_truncate(fl) & !OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(fl)).map_err(sys(path, "fcntl"))?;
    Ok(File::from(fd))
}

/// Creates the new file `name` in `dir` (`O_EXCL`), first removing whatever has that name
/// (a leftover, or a symbolic link: the link itself is removed, never its target).
pub(super) fn create_new(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    mode: u32,
) -> Result<File, StateError> {
    check_name(name, path)?;
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys(path, "remove")(e)),
    }
    open_file(
        dir,
        name,
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        mode,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("topo-safe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn symlinks_and_writable_dirs_are_refused() {
        let d = scratch("dirs");
        let run = d.join("run");
        assert!(open_dir(&run, false).unwrap().is_none());
        let fd = open_dir(&run, true).unwrap().unwrap();
        // A symbolic link in place of a lab directory.
        std::os::unix::fs::symlink("/etc", run.join("lab")).unwrap();
        let e = open_subdir(fd.as_fd(), "lab", &run.join("lab"), true)
            .err()
            .unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A symbolic link as the run directory, and in the middle of its path.
        std::os::unix::fs::symlink(&run, d.join("link")).unwrap();
        let e = open_dir(&d.join("link"), true).err().unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = open_dir(&d.join("link/x"), true).err().unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Writable by others.
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_dir(&run, true).err().unwrap();
        assert!(e.to_string().contains("writable"), "{e}");
        // '..' and names with a slash.
        assert!(open_dir(&d.join("run/../run"), false).is_err());
        assert!(check_name("a/b", &d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn files_are_opened_without_following_links() {
        let d = scratch("files");
        let fd = open_dir(&d, false).unwrap().unwrap();
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("hosts")).unwrap();
        let e = open_file(
            fd.as_fd(),
            "hosts",
            &d.join("hosts"),
            OFlag::O_WRONLY | OFlag::O_CREAT,
            0o644,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A hard link to a file elsewhere.
        std::fs::hard_link(&victim, d.join("hard")).unwrap();
        let e = open_file(fd.as_fd(), "hard", &d.join("hard"), OFlag::O_RDONLY, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("hard links"), "{e}");
        // A new file replaces the link itself.
        std::os::unix::fs::symlink(&victim, d.join("tmp")).unwrap();
        let mut f = create_new(fd.as_fd(), "tmp", &d.join("tmp"), 0o644).unwrap();
        std::io::Write::write_all(&mut f, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(d.join("tmp")).unwrap(), "new");
        let _ = std::fs::remove_dir_all(&d);
    }
}
