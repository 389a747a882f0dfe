//! The process's table of descriptors.
//!
//! The kernel grows a process's descriptor table by doubling it when a descriptor is opened
//! past its end, and in a process with more than one thread each growth first waits for an
//! RCU grace period (`expand_fdtable`). [`reserve`] grows it once, to the size needed; called
//! before the process starts other threads, it waits for nothing.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg};

/// Makes room in the descriptor table for `more` descriptors beyond the lowest free one, in
/// one growth (none when the table is large enough already), within the soft limit on open
/// files. Nothing is left open; a failure only leaves the table to grow as descriptors come.
pub fn reserve(more: usize) {
    let stderr = std::io::stderr();
    let fd = stderr.as_fd();
    // The lowest free descriptor: where the next ones opened go.
    let Some(low) = duplicate_at_or_above(fd, 0) else {
        return;
    };
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let want = u64::try_from(low)
        .unwrap_or(0)
        .saturating_add(more as u64)
        .min(limit.saturating_sub(1));
    match i32::try_from(want) {
        // A duplicate at `want` or above makes the table hold it; closing it keeps the table.
        Ok(want) if want > low => {
            duplicate_at_or_above(fd, want);
        }
        _ => {}
    }
}

/// Duplicates `fd` at the lowest free descriptor from `at` on (`F_DUPFD_CLOEXEC`), closes the
/// duplicate and says where it was.
fn duplicate_at_or_above(fd: BorrowedFd<'_>, at: RawFd) -> Option<RawFd> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(at)).ok()?;
    // SAFETY: `raw` was just made by F_DUPFD_CLOEXEC for this function alone; nothing else
    // knows or owns it, and the OwnedFd closes it once.
    drop(unsafe { OwnedFd::from_raw_fd(raw) });
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's size, from `FDSize` in `/proc/self/status`.
    fn table_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("FDSize")
    }

    #[test]
    fn reserve_grows_the_table_at_once_and_leaves_nothing_open() {
        let before = table_size();
        reserve(before + 300);
        let after = table_size();
        assert!(after > before + 300, "{before} -> {after}");
        // The duplicate that made it grow is closed (other tests of this process open a few
        // descriptors meanwhile, none that high).
        let highest = std::fs::read_dir("/proc/self/fd")
            .expect("fd dir")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        assert!(highest < before + 300, "descriptor {highest} left open");
        // Within the table already: no growth.
        reserve(10);
        assert_eq!(table_size(), after);
    }
}
