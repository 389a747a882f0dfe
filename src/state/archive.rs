//! Logs that outlive their lab. `down` moves the run directory's `logs/` (and `kept/`, where
//! there is one) to `/var/log/topo/LAB/STAMP/` (or `$TOPO_LOG_DIR/LAB/STAMP/`), STAMP being
//! the UTC time of the `down` (`20261204T101530Z`, with `-2`, `-3`, … for a second `down` in
//! the same second), and keeps the newest [`DEFAULT_ARCHIVES`] (or `$TOPO_LOG_ARCHIVES`)
//! archives of each lab.
//!
//! It happens in two steps, each of which a later `down` finishes when one was interrupted:
//!
//! 1. Inside the run directory, `logs/` and `kept/` are renamed into `archiving/.STAMP/`,
//!    which is then renamed to `archiving/STAMP/` (sealed): a rename within one file system,
//!    atomic. A `down` that finds an unsealed `.STAMP` moves into it what is still missing
//!    and seals it; one that finds a sealed `STAMP` goes on with step 2.
//! 2. `archiving/STAMP/` is renamed to the archive's `LAB/STAMP/`, or, on another file system
//!    (`/run` is a tmpfs), copied to `LAB/.partial-STAMP/` (owners, modes and times kept,
//!    symbolic links copied as links and never followed, devices, FIFOs and sockets left out),
//!    which is renamed to `LAB/STAMP/` once complete; then `archiving/STAMP/` is removed. An
//!    existing `LAB/STAMP/` is therefore always complete, and a `.partial-` one is a leftover
//!    that the next `down` of the lab removes.
//!
//! Everything is opened relative to opened directories, without following symbolic links;
//! the archive's path is walked as the run directory's is (see `safe.rs`).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::{safe, RunDir, StateError};

/// Archives of a lab kept when `TOPO_LOG_ARCHIVES` does not say.
pub const DEFAULT_ARCHIVES: usize = 5;

/// The run directory's subdirectory of archives on their way out (step 1).
const PENDING: &str = "archiving";
/// Prefix of an archive being copied in (step 2).
const PARTIAL: &str = ".partial-";
/// Archives of one lab named for the same second, at most.
const MAX_SAME_SECOND: u32 = 1000;
/// Directories nested deeper than this in `kept/` are left out of a copy.
const MAX_DEPTH: usize = 128;

/// The directory that holds every lab's archived logs.
pub fn root() -> PathBuf {
    std::env::var_os("TOPO_LOG_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/log/topo"))
}

/// How many archives of a lab to keep, from the value of `TOPO_LOG_ARCHIVES`: the number,
/// or [`DEFAULT_ARCHIVES`] when unset, with a warning when it is not a number.
pub fn archives_to_keep(value: Option<&OsStr>) -> (usize, Option<String>) {
    let Some(v) = value else {
        return (DEFAULT_ARCHIVES, None);
    };
    match v.to_str().and_then(|s| s.trim().parse::<usize>().ok()) {
        Some(n) => (n, None),
        None => (
            DEFAULT_ARCHIVES,
            Some(format!(
                "TOPO_LOG_ARCHIVES={:?} is not a number of archives; keeping {DEFAULT_ARCHIVES}",
                v.to_string_lossy()
            )),
        ),
    }
}

/// The name of an archive: a UTC time to the second, and a sequence number for archives of
/// one lab made in the same second (1 is written as nothing, 2 as `-2`). Ordered by time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArchiveName {
    stamp: String,
    seq: u32,
}

impl ArchiveName {
    /// The name for an archive made at `unix_secs` (seconds since 1970, UTC).
    pub fn at(unix_secs: u64) -> ArchiveName {
        let days = i64::try_from(unix_secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = unix_secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        ArchiveName {
            stamp: format!(
                "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            ),
            seq: 1,
        }
    }

    /// The name for an archive made now.
    pub fn now() -> ArchiveName {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        ArchiveName::at(secs)
    }

    /// Reads a directory name as an archive's; `None` for anything else.
    pub fn parse(name: &str) -> Option<ArchiveName> {
        let (stamp, seq) = match name.split_once('-') {
            None => (name, 1),
            Some((stamp, seq)) => {
                let ok = !seq.is_empty()
                    && seq.len() <= 9
                    && !seq.starts_with('0')
                    && seq.bytes().all(|b| b.is_ascii_digit());
                match seq.parse::<u32>() {
                    Ok(n) if ok && n >= 2 => (stamp, n),
                    _ => return None,
                }
            }
        };
        let b = stamp.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let ok = b.len() == 16 && digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z';
        ok.then(|| ArchiveName {
            stamp: stamp.to_string(),
            seq,
        })
    }

    /// The directory name.
    pub fn name(&self) -> String {
        if self.seq <= 1 {
            self.stamp.clone()
        } else {
            format!("{}-{}", self.stamp, self.seq)
        }
    }

    /// The time, for people: `2026-12-04 10:15:30 UTC`.
    pub fn time(&self) -> String {
        let s = &self.stamp;
        format!(
            "{}-{}-{} {}:{}:{} UTC",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[9..11],
            &s[11..13],
            &s[13..15]
        )
    }

    fn next(&self) -> ArchiveName {
        ArchiveName {
            stamp: self.stamp.clone(),
            seq: self.seq.saturating_add(1),
        }
    }
}

/// Year, month, day of a day counted from 1970-01-01 (the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// The archives to remove so that the newest `keep` remain: the oldest of those `names` that
/// are archives' (anything else is never chosen).
pub fn to_prune<'a>(names: impl IntoIterator<Item = &'a str>, keep: usize) -> Vec<String> {
    let mut archives: Vec<(ArchiveName, &str)> = names
        .into_iter()
        .filter_map(|n| ArchiveName::parse(n).map(|a| (a, n)))
        .collect();
    archives.sort();
    let drop = archives.len().saturating_sub(keep);
    archives[..drop]
        .iter()
        .map(|(_, n)| n.to_string())
        .collect()
}

/// What `down` did with a lab's logs.
#[derive(Debug, Clone, Default)]
pub struct Archived {
    /// The newest archive made, if any.
    pub path: Option<PathBuf>,
    /// What went wrong; never a reason to stop `down`.
    pub warnings: Vec<String>,
}

fn sys(what: impl std::fmt::Display) -> impl FnOnce(Errno) -> StateError {
    let what = what.to_string();
    move |e| StateError::Io {
        what,
        source: e.into(),
    }
}

fn ioerr(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StateError {
    let what = what.to_string();
    move |source| StateError::Io { what, source }
}

/// A refused path of the archive says so, not that it is the run directory's.
fn archive_path(e: StateError) -> StateError {
    match e {
        StateError::Unsafe { path, why } => StateError::UnsafeArchive { path, why },
        other => other,
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// The names in a directory, `.` and `..` left out.
pub(super) fn list(dir: BorrowedFd<'_>) -> Result<Vec<OsString>, Errno> {
    let mut d = nix::dir::Dir::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
    let mut out = Vec::new();
    for e in d.iter() {
        let name = e?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            out.push(OsString::from(std::ffi::OsStr::from_bytes(&name)));
        }
    }
    Ok(out)
}

fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<FileStat>, Errno> {
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// Whether the run directory holds logs worth an archive: a `logs/` file with something in
/// it, or a `kept/` directory.
fn worth_keeping(run: BorrowedFd<'_>) -> bool {
    if stat_at(run, OsStr::new("kept"))
        .ok()
        .flatten()
        .is_some_and(|st| kind(&st) == SFlag::S_IFDIR)
    {
        return true;
    }
    let Ok(logs) = nix::fcntl::openat(run, "logs", DIR_FLAGS, Mode::empty()) else {
        return false;
    };
    list(logs.as_fd()).is_ok_and(|names| {
        names.iter().any(|n| {
            stat_at(logs.as_fd(), n)
                .ok()
                .flatten()
                .is_some_and(|st| kind(&st) == SFlag::S_IFREG && st.st_size > 0)
        })
    })
}

/// Renames `name` of `from` to `name` of `to`, if `from` has it and `to` does not yet.
fn move_into(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    if stat_at(to, OsStr::new(name))?.is_some() {
        return Ok(());
    }
    match nix::fcntl::renameat(from, name, to, name) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

impl RunDir {
    /// Whether `archive_logs` would keep something: a log with content, kept files, or an
    /// archive an interrupted `down` left half-made.
    pub fn has_logs_to_keep(&self) -> bool {
        worth_keeping(self.dir.as_fd())
            || stat_at(self.dir.as_fd(), OsStr::new(PENDING))
                .ok()
                .flatten()
                .is_some()
    }

    /// Moves the lab's logs (and `kept/`) to the archive, unless `discard`, and keeps the
    /// newest `keep` archives of the lab; also finishes what an interrupted `down` left. Call
    /// it once the lab's processes, and the log writers, are gone. Failures are warnings: the
    /// run directory is removed after this whatever happened.
    pub fn archive_logs(&self, discard: bool, keep: usize) -> Archived {
        let mut out = Archived::default();
        let lost = |e: &dyn std::fmt::Display| {
            format!(
                "logs of lab {} not kept: {e}; they are removed with the run directory",
                self.lab
            )
        };
        if keep == 0 {
            // None to keep: this down's logs go with the run directory, and older archives.
            match open_archive(&self.lab, false) {
                Ok(Some(archive)) => {
                    out.warnings.extend(archive.prune(0));
                    let _ = nix::unistd::unlinkat(
                        archive.parent.as_fd(),
                        self.lab.as_str(),
                        nix::unistd::UnlinkatFlags::RemoveDir,
                    );
                }
                Ok(None) => {}
                Err(e) => out.warnings.push(format!("old logs not removed: {e}")),
            }
            return out;
        }
        let pending_path = self.path.join(PENDING);
        let has_pending = stat_at(self.dir.as_fd(), OsStr::new(PENDING))
            .ok()
            .flatten()
            .is_some();
        if !has_pending && (discard || !worth_keeping(self.dir.as_fd())) {
            return out;
        }
        let archive = match open_archive(&self.lab, true) {
            Ok(Some(a)) => a,
            Ok(None) => return out,
            Err(e) => {
                out.warnings.push(lost(&e));
                return out;
            }
        };
        let pending = match safe::open_subdir(self.dir.as_fd(), PENDING, &pending_path, true) {
            Ok(Some(p)) => p,
            Ok(None) => return out,
            Err(e) => {
                out.warnings.push(lost(&e));
                return out;
            }
        };
        // Step 1, finished for an interrupted `down`, then for this one (with what the first
        // left in the run directory).
        if let Err(e) = self.seal_pending(pending.as_fd(), &pending_path) {
            out.warnings.push(lost(&e));
        }
        if !discard && worth_keeping(self.dir.as_fd()) {
            if let Err(e) = self.seal_fresh(pending.as_fd(), &pending_path, &archive) {
                out.warnings.push(lost(&e));
            }
        }
        // Step 2, oldest first.
        let mut sealed: Vec<ArchiveName> = list(pending.as_fd())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.to_str().and_then(ArchiveName::parse))
            .collect();
        sealed.sort();
        let mut moved = false;
        for name in sealed {
            match archive.take(pending.as_fd(), &pending_path, &name) {
                Ok(skipped) => {
                    moved = true;
                    out.path = Some(archive.path.join(name.name()));
                    if let Some(s) = skipped.describe() {
                        out.warnings.push(format!(
                            "logs of lab {} kept in {}, but {s}",
                            self.lab,
                            archive.path.join(name.name()).display()
                        ));
                    }
                }
                Err(e) => out.warnings.push(lost(&e)),
            }
        }
        if moved {
            out.warnings.extend(archive.prune(keep));
        }
        out
    }

    /// Seals every unsealed `archiving/.STAMP`, moving into it the `logs/` and `kept/` it
    /// lacks: the first step of a `down` that was interrupted.
    fn seal_pending(&self, pending: BorrowedFd<'_>, pending_path: &Path) -> Result<(), StateError> {
        let names = list(pending).map_err(sys(format!("read {}", pending_path.display())))?;
        for n in names {
            let Some(name) = n
                .to_str()
                .and_then(|s| s.strip_prefix('.'))
                .and_then(ArchiveName::parse)
            else {
                continue;
            };
            self.seal(pending, pending_path, &name)?;
        }
        Ok(())
    }

    /// Moves `logs/` and `kept/` into `archiving/.NAME` and seals it as `archiving/NAME`.
    fn seal(
        &self,
        pending: BorrowedFd<'_>,
        pending_path: &Path,
        name: &ArchiveName,
    ) -> Result<(), StateError> {
        let open = format!(".{}", name.name());
        let at = pending_path.join(&open);
        let dir = nix::fcntl::openat(pending, open.as_str(), DIR_FLAGS, Mode::empty())
            .map_err(sys(format!("open {}", at.display())))?;
        for item in ["logs", "kept"] {
            move_into(self.dir.as_fd(), dir.as_fd(), item).map_err(sys(format!(
                "move {} into {}",
                self.path.join(item).display(),
                at.display()
            )))?;
        }
        nix::fcntl::renameat(pending, open.as_str(), pending, name.name().as_str())
            .map_err(sys(format!("rename {}", at.display())))
    }

    /// Step 1 for this `down`: a new name, unused in the archive and in `archiving/`.
    fn seal_fresh(
        &self,
        pending: BorrowedFd<'_>,
        pending_path: &Path,
        archive: &Archive,
    ) -> Result<(), StateError> {
        // A name no archive of the lab has, in the archive or on its way there (one that
        // cannot be checked counts as taken).
        let free = |name: &ArchiveName| {
            let n = name.name();
            [
                stat_at(pending, OsStr::new(&n)),
                stat_at(pending, OsStr::new(&format!(".{n}"))),
                stat_at(archive.dir.as_fd(), OsStr::new(&n)),
            ]
            .iter()
            .all(|r| matches!(r, Ok(None)))
        };
        let mut name = ArchiveName::now();
        let mut tries = 0;
        while !free(&name) {
            tries += 1;
            if tries >= MAX_SAME_SECOND {
                return Err(ioerr(format!(
                    "name an archive in {} or {}",
                    archive.path.display(),
                    pending_path.display()
                ))(std::io::Error::from_raw_os_error(
                    libc::EEXIST,
                )));
            }
            name = name.next();
        }
        let open = format!(".{}", name.name());
        nix::sys::stat::mkdirat(pending, open.as_str(), Mode::from_bits_truncate(0o755)).map_err(
            sys(format!("create {}", pending_path.join(&open).display())),
        )?;
        self.seal(pending, pending_path, &name)
    }
}

/// A lab's directory in the archive, opened, and the archive's root.
struct Archive {
    path: PathBuf,
    dir: OwnedFd,
    parent: OwnedFd,
}

/// Opens (creating it if `create`) the lab's directory in the archive; `None` when it does
/// not exist and `create` is false.
fn open_archive(lab: &str, create: bool) -> Result<Option<Archive>, StateError> {
    let top = root();
    let Some(parent) = safe::open_archive_dir(&top, create).map_err(archive_path)? else {
        return Ok(None);
    };
    let path = top.join(lab);
    let Some(dir) = safe::open_subdir(parent.as_fd(), lab, &path, create).map_err(archive_path)?
    else {
        return Ok(None);
    };
    Ok(Some(Archive { path, dir, parent }))
}

impl Archive {
    /// Step 2: moves the sealed `archiving/NAME` here, by a rename or, across file systems,
    /// by a copy to `.partial-NAME` renamed once complete; then removes it from `archiving/`.
    fn take(
        &self,
        pending: BorrowedFd<'_>,
        pending_path: &Path,
        name: &ArchiveName,
    ) -> Result<Skipped, StateError> {
        let n = name.name();
        let from = pending_path.join(&n);
        let to = self.path.join(&n);
        let mut skipped = Skipped::default();
        let done = stat_at(self.dir.as_fd(), OsStr::new(&n))
            .map_err(sys(format!("stat {}", to.display())))?
            .is_some();
        if !done {
            match nix::fcntl::renameat(pending, n.as_str(), self.dir.as_fd(), n.as_str()) {
                Ok(()) => return Ok(skipped),
                Err(Errno::EXDEV) => {}
                Err(e) => {
                    return Err(sys(format!("move {} to {}", from.display(), to.display()))(
                        e,
                    ))
                }
            }
            let partial = format!("{PARTIAL}{n}");
            let partial_path = self.path.join(&partial);
            remove_all(&partial_path)?;
            copy_entry(
                pending,
                OsStr::new(&n),
                self.dir.as_fd(),
                OsStr::new(&partial),
                0,
                &mut skipped,
            )
            .map_err(|e| {
                let _ = remove_all(&partial_path);
                ioerr(format!(
                    "copy {} to {}",
                    from.display(),
                    partial_path.display()
                ))(e)
            })?;
            nix::fcntl::renameat(
                self.dir.as_fd(),
                partial.as_str(),
                self.dir.as_fd(),
                n.as_str(),
            )
            .map_err(sys(format!("rename {}", partial_path.display())))?;
        }
        remove_all(&from)?;
        Ok(skipped)
    }

    /// Removes the oldest archives beyond the newest `keep`, and copies that never completed.
    fn prune(&self, keep: usize) -> Vec<String> {
        let names: Vec<String> = list(self.dir.as_fd())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .collect();
        let stale = names.iter().filter(|n| n.starts_with(PARTIAL)).cloned();
        let old = to_prune(names.iter().map(String::as_str), keep);
        stale
            .chain(old)
            .filter_map(|n| remove_all(&self.path.join(n)).err())
            .map(|e| format!("old logs not removed: {e}"))
            .collect()
    }
}

/// Removes a file or directory tree (symbolic links in it are removed, never followed);
/// nothing there is no error.
fn remove_all(path: &Path) -> Result<(), StateError> {
    let r = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    r.map_err(ioerr(format!("remove {}", path.display())))
}

/// What a copy left out.
#[derive(Debug, Default, PartialEq)]
struct Skipped {
    /// Devices, FIFOs and sockets.
    special: usize,
    /// Directories nested deeper than [`MAX_DEPTH`].
    deep: usize,
}

impl Skipped {
    fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.special > 0 {
            parts.push(format!(
                "{} devices, FIFOs or sockets were left out",
                self.special
            ));
        }
        if self.deep > 0 {
            parts.push(format!(
                "{} directories nested deeper than {MAX_DEPTH} were left out",
                self.deep
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Copies `name` of `src` to the new `to` of `dst`, without following symbolic links: a
/// directory with what it holds, a regular file, or a symbolic link as a link; owner, mode,
/// and access and modification times are kept. Anything else is counted in `skipped`.
fn copy_entry(
    src: BorrowedFd<'_>,
    name: &OsStr,
    dst: BorrowedFd<'_>,
    to: &OsStr,
    depth: usize,
    skipped: &mut Skipped,
) -> std::io::Result<()> {
    let Some(st) = stat_at(src, name)? else {
        return Ok(());
    };
    let owner = Some(nix::unistd::Uid::from_raw(st.st_uid));
    let group = Some(nix::unistd::Gid::from_raw(st.st_gid));
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    match kind(&st) {
        SFlag::S_IFDIR => {
            if depth >= MAX_DEPTH {
                skipped.deep += 1;
                return Ok(());
            }
            let from = nix::fcntl::openat(src, name, DIR_FLAGS, Mode::empty())?;
            nix::sys::stat::mkdirat(dst, to, Mode::from_bits_truncate(0o700))?;
            let into = nix::fcntl::openat(dst, to, DIR_FLAGS, Mode::empty())?;
            for n in list(from.as_fd())? {
                copy_entry(from.as_fd(), &n, into.as_fd(), &n, depth + 1, skipped)?;
            }
            nix::unistd::fchown(&into, owner, group)?;
            nix::sys::stat::fchmod(&into, mode)?;
            nix::sys::stat::futimens(&into, &atime, &mtime)?;
        }
        SFlag::S_IFREG => {
            // Non-blocking: a FIFO put in the file's place since the stat never blocks.
            let from = nix::fcntl::openat(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            if kind(&nix::sys::stat::fstat(&from)?) != SFlag::S_IFREG {
                skipped.special += 1;
                return Ok(());
            }
            let into = nix::fcntl::openat(
                dst,
                to,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let (mut r, mut w) = (File::from(from), File::from(into));
            std::io::copy(&mut r, &mut w)?;
            // The owner first: a change of owner clears the set-id bits.
            nix::unistd::fchown(&w, owner, group)?;
            nix::sys::stat::fchmod(&w, mode)?;
            nix::sys::stat::futimens(&w, &atime, &mtime)?;
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(src, name)?;
            nix::unistd::symlinkat(target.as_os_str(), dst, to)?;
            nix::unistd::fchownat(dst, to, owner, group, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            nix::sys::stat::utimensat(
                dst,
                to,
                &atime,
                &mtime,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )?;
        }
        _ => skipped.special += 1,
    }
    Ok(())
}

/// The newest archive of a lab that holds logs: its `logs/` directory, opened, with its path
/// and name. `None` when the lab has none.
pub fn newest_logs(lab: &str) -> Result<Option<(OwnedFd, PathBuf, ArchiveName)>, StateError> {
    let top = root();
    let Some(root_fd) = safe::open_archive_dir(&top, false).map_err(archive_path)? else {
        return Ok(None);
    };
    let lab_path = top.join(lab);
    let Some(lab_dir) =
        safe::open_subdir(root_fd.as_fd(), lab, &lab_path, false).map_err(archive_path)?
    else {
        return Ok(None);
    };
    let mut names: Vec<ArchiveName> = list(lab_dir.as_fd())
        .map_err(sys(format!("read {}", lab_path.display())))?
        .iter()
        .filter_map(|n| n.to_str().and_then(ArchiveName::parse))
        .collect();
    names.sort();
    for name in names.into_iter().rev() {
        let path = lab_path.join(name.name());
        let Some(dir) =
            safe::open_subdir(lab_dir.as_fd(), &name.name(), &path, false).map_err(archive_path)?
        else {
            continue;
        };
        let logs_path = path.join("logs");
        if let Some(logs) =
            safe::open_subdir(dir.as_fd(), "logs", &logs_path, false).map_err(archive_path)?
        {
            return Ok(Some((logs, logs_path, name)));
        }
    }
    Ok(None)
}

/// Labs that have archived logs (for a hint when none is up).
pub fn archived_labs() -> Vec<String> {
    let Ok(Some(root_fd)) = safe::open_archive_dir(&root(), false) else {
        return Vec::new();
    };
    let mut labs: Vec<String> = list(root_fd.as_fd())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| {
            stat_at(root_fd.as_fd(), OsStr::new(n))
                .ok()
                .flatten()
                .is_some_and(|st| kind(&st) == SFlag::S_IFDIR)
        })
        .collect();
    labs.sort();
    labs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn archive_names_are_utc_times() {
        assert_eq!(ArchiveName::at(0).name(), "19700101T000000Z");
        // 2026-12-04 10:15:30 UTC
        let t = ArchiveName::at(1_796_379_330);
        assert_eq!(t.name(), "20261204T101530Z");
        assert_eq!(t.time(), "2026-12-04 10:15:30 UTC");
        // A leap day, and the last second of a year.
        assert_eq!(ArchiveName::at(951_825_600).name(), "20000229T120000Z");
        assert_eq!(ArchiveName::at(1_767_225_599).name(), "20251231T235959Z");
        assert_eq!(t.next().name(), "20261204T101530Z-2");
        assert_eq!(t.next().next().name(), "20261204T101530Z-3");
        for good in [
            "20261204T101530Z",
            "20261204T101530Z-2",
            "20261204T101530Z-10",
        ] {
            assert_eq!(
                ArchiveName::parse(good).map(|a| a.name()).as_deref(),
                Some(good)
            );
        }
        for bad in [
            "",
            "latest",
            "20261204T101530",
            "20261204T101530Z-",
            "20261204T101530Z-1",
            "20261204T101530Z-02",
            "20261204T101530Z-x",
            "2026120XT101530Z",
            ".partial-20261204T101530Z",
            ".20261204T101530Z",
        ] {
            assert_eq!(ArchiveName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn retention_removes_the_oldest_beyond_the_newest_n() {
        let names = [
            "20261204T101530Z-10",
            "20261204T101530Z",
            "20251231T235959Z",
            "notes.txt",
            "20261204T101530Z-2",
            ".partial-20270101T000000Z",
            "20261204T101531Z",
        ];
        assert_eq!(
            to_prune(names, 2),
            ["20251231T235959Z", "20261204T101530Z", "20261204T101530Z-2"]
        );
        assert_eq!(to_prune(names, 5), Vec::<String>::new());
        assert_eq!(to_prune(names, 0).len(), 5);
        assert_eq!(to_prune([], 3), Vec::<String>::new());
    }

    #[test]
    fn the_number_of_archives_comes_from_the_environment() {
        assert_eq!(archives_to_keep(None), (DEFAULT_ARCHIVES, None));
        assert_eq!(archives_to_keep(Some(OsStr::new("2"))), (2, None));
        assert_eq!(archives_to_keep(Some(OsStr::new(" 0 "))), (0, None));
        let (n, warning) = archives_to_keep(Some(OsStr::new("many")));
        assert_eq!(n, DEFAULT_ARCHIVES);
        assert!(warning.is_some_and(|w| w.contains("TOPO_LOG_ARCHIVES")));
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("topo-archive-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn a_copy_keeps_modes_and_links_and_leaves_out_fifos() {
        let d = scratch("copy");
        let src = d.join("src");
        std::fs::create_dir_all(src.join("node/etc")).unwrap();
        std::fs::write(src.join("node/etc/conf"), "key=value\n").unwrap();
        std::fs::set_permissions(
            src.join("node/etc/conf"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::set_permissions(src.join("node"), std::fs::Permissions::from_mode(0o711)).unwrap();
        let victim = d.join("victim");
        std::fs::write(&victim, "outside").unwrap();
        std::os::unix::fs::symlink(&victim, src.join("node/link")).unwrap();
        nix::unistd::mkfifo(&src.join("node/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(src.join("node/etc/conf"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let root_is_me = nix::unistd::geteuid().is_root();
        if root_is_me {
            nix::unistd::chown(
                &src.join("node/etc/conf"),
                Some(nix::unistd::Uid::from_raw(1 << 30)),
                Some(nix::unistd::Gid::from_raw(1 << 30)),
            )
            .unwrap();
        }
        let fd = safe::open_dir(&d, false).unwrap().unwrap();
        let mut skipped = Skipped::default();
        copy_entry(
            fd.as_fd(),
            OsStr::new("src"),
            fd.as_fd(),
            OsStr::new("dst"),
            0,
            &mut skipped,
        )
        .unwrap();
        let dst = d.join("dst");
        assert_eq!(
            std::fs::read_to_string(dst.join("node/etc/conf")).unwrap(),
            "key=value\n"
        );
        let m = std::fs::symlink_metadata(dst.join("node/etc/conf")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.modified().unwrap(), old);
        if root_is_me {
            assert_eq!((m.uid(), m.gid()), (1 << 30, 1 << 30));
        }
        let m = std::fs::symlink_metadata(dst.join("node")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o711);
        let link = std::fs::symlink_metadata(dst.join("node/link")).unwrap();
        assert!(link.file_type().is_symlink());
        assert_eq!(std::fs::read_link(dst.join("node/link")).unwrap(), victim);
        assert!(std::fs::symlink_metadata(dst.join("node/fifo")).is_err());
        assert_eq!(
            skipped,
            Skipped {
                special: 1,
                deep: 0
            }
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "outside");
        let _ = std::fs::remove_dir_all(&d);
    }
}
