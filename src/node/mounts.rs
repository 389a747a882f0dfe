//! The node's mount namespace: private `/tmp` and `/run`, a fresh `/proc` for its PID
//! namespace and a fresh `/sys` for its network namespace, the lab's `/etc/hosts`, and the
//! declared binds. Runs in the node's PID 1 after `unshare(CLONE_NEWNS)`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{InitConfig, NodeError};

pub fn set_up(config: &InitConfig) -> Result<(), NodeError> {
    // Mount events of the host still reach the node (a netns removed on the host is removed
    // here too), but nothing mounted here reaches the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| NodeError::sys("make / rslave", e))?;
    // The copies of other namespaces' mounts are of no use here, and would make the mount
    // table of N nodes grow as N².
    let _ = umount2("/run/netns", MntFlags::MNT_DETACH);
    // Open what we bind before /run and /tmp are covered by the node's own tmpfs.
    let hosts = open_path(&config.hosts)?;
    let mut sources = Vec::with_capacity(config.binds.len());
    for b in &config.binds {
        sources.push(open_path(&b.host)?);
    }
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_fs("proc", "/proc", "proc", nosuid | MsFlags::MS_NOEXEC, None)?;
    // sysfs shows the network devices of the namespace that mounts it.
    mount_fs(
        "sysfs",
        "/sys",
        "sysfs",
        nosuid | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
        None,
    )?;
    mount_fs("tmpfs", "/tmp", "tmpfs", nosuid, Some("mode=1777"))?;
    mount_fs("tmpfs", "/run", "tmpfs", nosuid, Some("mode=755"))?;
    bind(&hosts, Path::new("/etc/hosts"), true)?;
    for (b, src) in config.binds.iter().zip(&sources) {
        make_target(&b.node, src)?;
        bind(src, &b.node, b.read_only)?;
    }
    Ok(())
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
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), NodeError> {
    mount(Some(src), target, Some(fstype), flags, data)
        .map_err(|e| NodeError::sys(format!("mount {fstype} on {target}"), e))
}

/// Bind-mounts an opened path (through its `/proc/self/fd` link, so the source is the object
/// opened earlier even if its path is now covered).
fn bind(src: &File, target: &Path, read_only: bool) -> Result<(), NodeError> {
    let from = format!("/proc/self/fd/{}", src.as_raw_fd());
    let what = || format!("bind mount onto {}", target.display());
    mount(
        Some(from.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| NodeError::sys(what(), e))?;
    if read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            .map_err(|e| NodeError::sys(what(), e))?;
    }
    Ok(())
}

/// A bind target must exist. Under the node's own `/tmp` and `/run` it is created (a
/// directory or an empty file, like the source); elsewhere that would write to the host's
/// filesystem, so a missing target is an error.
fn make_target(target: &Path, src: &File) -> Result<(), NodeError> {
    if target.exists() {
        return Ok(());
    }
    let private = target.starts_with("/tmp") || target.starts_with("/run");
    if !private {
        return Err(NodeError::sys(
            format!(
                "bind target {} (it must exist in the node, or be under /tmp or /run)",
                target.display()
            ),
            std::io::Error::from_raw_os_error(libc::ENOENT),
        ));
    }
    let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", src.as_raw_fd()))
        .map(|m| m.is_dir())
        .unwrap_or(true);
    let made = if is_dir {
        std::fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| NodeError::sys(format!("create {}", parent.display()), e))?;
        }
        File::create(target).map(|_| ())
    };
    made.map_err(|e| NodeError::sys(format!("create {}", target.display()), e))
}
