//! Reading and writing cgroup control files, making and removing group directories.
//!
//! The same code drives the kernel's cgroupfs and, in unit tests, a plain directory tree that
//! stands in for it ([`Fs::Plain`]). The two differ in exactly three places, all here: a plain
//! `mkdir` does not create control files, so a plain group gets its `cgroup.procs` made for
//! it; writes to plain control files may create them; and a plain `rmdir` must delete the
//! control files first, where cgroupfs ignores them.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CgroupError;

/// How often, and how long at most between tries, `rmdir` is retried while the kernel still
/// counts exiting processes in a group (EBUSY). About one second in all.
const RMDIR_TRIES: u32 = 10;
const RMDIR_MAX_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fs {
    /// The kernel's cgroup file systems.
    Kernel,
    /// An ordinary directory tree standing in for cgroupfs (tests).
    Plain,
}

impl Fs {
    /// Writes one value to a control file in a single `write(2)`, as cgroupfs wants.
    /// Equivalent to `echo -n VALUE > PATH`.
    pub(super) fn write(self, path: &Path, value: &str) -> Result<(), CgroupError> {
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(self == Fs::Plain)
            .open(path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(|e| CgroupError::io(path, e))
    }

    /// `mkdir -p`; on a plain tree also the `cgroup.procs` the kernel would have made.
    pub(super) fn mkdir_p(self, dir: &Path) -> Result<(), CgroupError> {
        std::fs::create_dir_all(dir).map_err(|e| CgroupError::io(dir, e))?;
        if self == Fs::Plain {
            let procs = dir.join("cgroup.procs");
            if !procs.exists() {
                std::fs::write(&procs, "").map_err(|e| CgroupError::io(&procs, e))?;
            }
        }
        Ok(())
    }

    /// Removes a group directory, retrying while it is busy (its last processes are still
    /// exiting). A group that does not exist counts as removed.
    pub(super) fn rmdir(self, dir: &Path) -> Result<(), CgroupError> {
        let mut delay = Duration::from_millis(10);
        for _ in 1..RMDIR_TRIES {
            match self.rmdir_once(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(RMDIR_MAX_DELAY);
                }
                other => return other.map_err(|e| CgroupError::io(dir, e)),
            }
        }
        self.rmdir_once(dir).map_err(|e| CgroupError::io(dir, e))
    }

    /// Removes a group directory if nothing is in it; a busy or missing group is left alone.
    pub(super) fn rmdir_if_unused(self, dir: &Path) -> Result<(), CgroupError> {
        match self.rmdir_once(dir) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => Ok(()),
            other => other.map_err(|e| CgroupError::io(dir, e)),
        }
    }

    fn rmdir_once(self, dir: &Path) -> io::Result<()> {
        let result = match self {
            Fs::Kernel => std::fs::remove_dir(dir),
            Fs::Plain => remove_plain_group(dir),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// A plain stand-in group: refuse, as cgroupfs does (EBUSY), while it has child groups;
/// otherwise delete its control files and the directory.
fn remove_plain_group(dir: &Path) -> io::Result<()> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    if entries.iter().any(|p| p.is_dir()) {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    for file in &entries {
        std::fs::remove_file(file)?;
    }
    std::fs::remove_dir(dir)
}

/// The trimmed contents of a control file; `None` when it is missing or unreadable.
pub(super) fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Where a group's control files are read: its directory by path, or the directory of its lab,
/// open, and the group's name in it (many groups of one lab read without walking the path to
/// the lab once per file).
pub(super) enum Group<'a> {
    Path(&'a Path),
    At(std::os::fd::BorrowedFd<'a>, &'a str),
}

impl Group<'_> {
    /// The trimmed contents of the group's control file `name`; `None` when it is missing or
    /// unreadable.
    pub(super) fn read(&self, name: &str) -> Option<String> {
        match self {
            Group::Path(dir) => read(&dir.join(name)),
            Group::At(lab, group) => {
                use std::io::Read;
                let fd = nix::fcntl::openat(
                    *lab,
                    format!("{group}/{name}").as_str(),
                    nix::fcntl::OFlag::O_RDONLY
                        | nix::fcntl::OFlag::O_CLOEXEC
                        | nix::fcntl::OFlag::O_NOFOLLOW,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()?;
                let mut text = String::new();
                std::fs::File::from(fd).read_to_string(&mut text).ok()?;
                Some(text.trim().to_string())
            }
        }
    }

    /// A control file holding one unsigned number.
    pub(super) fn read_u64(&self, name: &str) -> Option<u64> {
        self.read(name)?.parse().ok()
    }

    /// A control file holding a number or `max`: `None` when unlimited.
    pub(super) fn read_max(&self, name: &str) -> Option<u64> {
        parse_max(&self.read(name)?)
    }
}

/// A number or `max` (unlimited: `None`).
fn parse_max(text: &str) -> Option<u64> {
    match text {
        "max" => None,
        n => n.parse().ok(),
    }
}

/// A control file holding one unsigned number.
pub(super) fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.parse().ok()
}

/// A control file holding a number or `max` (v2 and v1 `pids.max`): `None` when unlimited.
pub(super) fn read_max(path: &Path) -> Option<u64> {
    parse_max(&read(path)?)
}

/// Writes a control file holding a number or `max` (v2 `memory.max`, v1 and v2 `pids.max`):
/// `value` when given; without one, `max` only if the file holds a number, so a fresh group
/// is left untouched.
pub(super) fn write_max(fs: Fs, path: &Path, value: Option<u64>) -> Result<(), CgroupError> {
    match value {
        Some(n) => fs.write(path, &n.to_string()),
        None if read_max(path).is_some() => fs.write(path, "max"),
        None => Ok(()),
    }
}

/// The names of the subdirectories (child groups) of a group; empty when it does not exist.
pub(super) fn child_groups(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}
