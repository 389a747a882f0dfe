//! Attacks on the host's file system and resources from inside a node, each of which worked
//! once: symbolic links planted in a `rootfs` for topo to follow on the next start, host
//! mounts propagating into a node, unbounded tmpfs and task counts, and host firmware
//! tables readable in `/proc` and `/sys`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A busybox tree for `rootfs:` at `root`; `None` (the test is skipped) without busybox.
pub(crate) fn busybox_rootfs(root: &Path) -> Option<()> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    for d in ["bin", "etc", "proc", "sys", "tmp", "run", "dev", "srv"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for applet in [
        "sh", "cat", "ls", "mv", "mkdir", "ln", "rm", "echo", "grep", "touch", "awk",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("applet");
    }
    Some(())
}

/// A directory on the host, outside every rootfs, removed on drop.
struct Outside(PathBuf);

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Node root replaces `/etc` (so that `/etc/hosts` becomes a link to a host path) and `/srv`
/// (a link, so that the bind target `/srv/data` leads to a host directory) in its rootfs;
/// when the node restarts, topo must create nothing outside the rootfs, and the node either
/// comes up or fails with a clear error. The rootfs is mounted nosuid in the node.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn links_planted_in_a_rootfs_lead_topo_nowhere_outside_it() {
    let yaml = |v: u32| {
        format!(
            "name: tf-rsym\nnodes:\n  a:\n    rootfs: ./root\n    binds: ['./data:/srv/data']\n    env: {{V: '{v}'}}\n"
        )
    };
    let lab = TestLab::new("tf-rsym", &yaml(1));
    if busybox_rootfs(&lab.dir.join("root")).is_none() {
        eprintln!("skipping: busybox-static is not installed");
        return;
    }
    std::fs::create_dir_all(lab.dir.join("data")).expect("bind source");
    let outside = Outside(PathBuf::from(format!(
        "/tmp/topo-outside-{}",
        std::process::id()
    )));
    std::fs::create_dir_all(&outside.0).expect("outside dir");
    lab.up();
    let root_line = lab.exec(
        "a",
        &["/bin/awk", "$5 == \"/\" {print $6}", "/proc/self/mountinfo"],
    );
    assert!(
        stdout(&root_line).contains("nosuid"),
        "the node's rootfs is mounted nosuid: {}",
        text(&root_line)
    );
    let victim = outside.0.join("victim");
    let script = format!(
        "mv /etc /etc.old && mkdir /etc && ln -s {victim} /etc/hosts && \
         mv /srv /srv.old && ln -s {outside} /srv && ls -l /etc/hosts /srv",
        victim = victim.display(),
        outside = outside.0.display()
    );
    let plant = lab.exec("a", &["/bin/sh", "-c", &script]);
    assert!(plant.status.success(), "planting: {}", text(&plant));
    // A changed env restarts the node: its init sets up the rootfs again.
    lab.rewrite(&yaml(2));
    let up = topo(&["up", path(&lab.file)]);
    assert!(
        !victim.exists(),
        "topo created {} outside the rootfs through /etc/hosts:\n{}",
        victim.display(),
        text(&up)
    );
    assert!(
        !outside.0.join("data").exists(),
        "topo created {}/data outside the rootfs through /srv:\n{}",
        outside.0.display(),
        text(&up)
    );
    assert!(
        up.status.success() || text(&up).contains("symbolic link"),
        "the node came up, or failed naming the link: {}",
        text(&up)
    );
}

/// `rootfs: /`, or a relative path that climbs to `/`, is refused by `validate` (exit 2).
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_rootfs_that_is_the_host_root_is_refused() {
    let lab = TestLab::new("tf-rroot", "name: tf-rroot\nnodes:\n  a: {}\n");
    let up_to_root = "../".repeat(lab.dir.components().count() + 2);
    for rootfs in ["/", up_to_root.as_str()] {
        lab.rewrite(&format!(
            "name: tf-rroot\nnodes:\n  a:\n    rootfs: {rootfs}\n"
        ));
        let v = topo(&["validate", path(&lab.file)]);
        assert_eq!(v.status.code(), Some(2), "rootfs: {rootfs}: {}", text(&v));
        assert!(
            text(&v).contains("lab.yaml:4:13") && text(&v).contains("host's root directory"),
            "{}",
            text(&v)
        );
        let up = topo(&["up", path(&lab.file)]);
        assert_eq!(up.status.code(), Some(2), "{}", text(&up));
        assert!(netns_with_prefix("tf-rroot-").is_empty(), "nothing made");
    }
}

/// A shared scratch mount on the host, unmounted and removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let m = self.0.join("m");
        let _ = Command::new("umount").arg("-l").arg(&m).status();
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .expect("run command");
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
}

/// A mount the host makes after a node started, under a mount that is shared (as systemd
/// makes `/`), must not appear in the node, also not through a bind of that shared mount.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_host_mount_made_after_the_node_started_stays_out_of_it() {
    let scratch = Scratch(PathBuf::from(format!(
        "/tmp/topo-prop-{}",
        std::process::id()
    )));
    std::fs::create_dir_all(scratch.0.join("m")).expect("scratch");
    let dir = path(&scratch.0).to_string();
    run(&["mount", "--bind", &dir, &dir]);
    run(&["mount", "--make-shared", &dir]);
    // b has the shared directory bound in (a copy of a shared mount, made private).
    let yaml =
        format!("name: tf-prop\nnodes:\n  a: {{}}\n  b:\n    binds: ['{dir}:/run/shared']\n");
    let lab = TestLab::new("tf-prop", &yaml);
    lab.up();
    let probe = format!("tf-prop-probe-{}", std::process::id());
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        &probe,
        &format!("{dir}/m"),
    ]);
    for node in ["a", "b"] {
        let mi = lab.exec(node, &["cat", "/proc/self/mountinfo"]);
        assert!(mi.status.success(), "{}", text(&mi));
        assert!(
            !stdout(&mi).contains(&probe),
            "the host's new mount {probe} appeared in node {node}:\n{}",
            stdout(&mi)
        );
    }
}

/// The node's tmpfs sizes: topo's defaults, one from `defaults:` and two of the node's own.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn tmpfs_sizes_are_bounded_by_default_and_settable() {
    let yaml = "name: tf-tmpfs\ndefaults:\n  tmpfs: {/run: 32Mi}\nnodes:\n  a: {tmpfs: {/run: 64Mi}}\n  b: {tmpfs: {/tmp: 8Mi, /dev/shm: 16Mi}}\n";
    let lab = TestLab::new("tf-tmpfs", yaml);
    lab.up();
    let sizes = |node: &str| {
        let o = lab.exec(
            node,
            &[
                "/usr/bin/python3",
                "-c",
                "import os\nfor p in ['/tmp', '/run', '/dev', '/dev/shm']:\n    s = os.statvfs(p); print(s.f_blocks * s.f_frsize)",
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        stdout(&o)
            .lines()
            .map(|l| l.parse::<u64>().expect("size"))
            .collect::<Vec<_>>()
    };
    const MI: u64 = 1 << 20;
    assert_eq!(
        sizes("a"),
        [256 * MI, 64 * MI, MI, 64 * MI],
        "the documented defaults (/run declared as the default)"
    );
    assert_eq!(
        sizes("b"),
        [8 * MI, 32 * MI, MI, 16 * MI],
        "declared sizes and the one from defaults"
    );
    let fill = lab.exec(
        "b",
        &["sh", "-c", "head -c 20000000 /dev/zero > /tmp/big; echo $?"],
    );
    assert_ne!(stdout(&fill), "0", "20 MB fit in an 8 MiB /tmp");
}

/// The directory of a node's pids group (v1 or v2).
fn pids_group(lab: &str, node: &str) -> PathBuf {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/pids/topo/{lab}/{node}"));
    let v2 = PathBuf::from(format!("/sys/fs/cgroup/topo/{lab}/{node}"));
    [v1, v2]
        .into_iter()
        .find(|p| p.join("pids.max").exists())
        .expect("a pids group")
}

/// Every node gets a pids limit unless it says `max`; a fork loop stops at the limit.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_fork_loop_stops_at_the_default_or_declared_pids_limit() {
    let yaml =
        "name: tf-pids\nnodes:\n  a: {}\n  b: {limits: {pids: 64}}\n  c: {limits: {pids: max}}\n";
    let lab = TestLab::new("tf-pids", yaml);
    lab.up();
    let max = |node: &str| {
        std::fs::read_to_string(pids_group("tf-pids", node).join("pids.max"))
            .expect("pids.max")
            .trim()
            .to_string()
    };
    assert_eq!(max("a"), "4096", "the default limit");
    assert_eq!(max("b"), "64");
    assert_eq!(max("c"), "max", "pids: max is no limit");
    let forks = lab.exec(
        "b",
        &[
            "/usr/bin/python3",
            "-c",
            "import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            time.sleep(3); os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('refused after', n, e.errno)\n",
        ],
    );
    let said = stdout(&forks);
    let n: u32 = said
        .strip_prefix("refused after ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    assert!(
        n < 64 && said.ends_with(" 11"),
        "fork stops with EAGAIN below 64 tasks: {}",
        text(&forks)
    );
}

/// The host's ACPI tables and firmware are not readable in a node.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn proc_acpi_and_sys_firmware_are_masked() {
    let lab = TestLab::new("tf-mask", "name: tf-mask\nnodes:\n  a: {}\n");
    lab.up();
    let probe = lab.exec(
        "a",
        &[
            "sh",
            "-c",
            "stat -f -c %T /proc/acpi; ls -A /proc/acpi | wc -l; ls -A /sys/firmware 2>/dev/null | wc -l; touch /proc/acpi/x 2>/dev/null || echo ro",
        ],
    );
    assert_eq!(
        stdout(&probe).split_whitespace().collect::<Vec<_>>(),
        ["tmpfs", "0", "0", "ro"],
        "/proc/acpi is an empty read-only tmpfs, /sys/firmware lists nothing: {}",
        text(&probe)
    );
}

/// Node root holds SYS_ADMIN over its own mount namespace, where the read-only binds and the
/// read-only host tree were made (so their flags are not locked). The attack: copy such a
/// mount with the read-only flag cleared (`open_tree_attr`, one call that copies and changes
/// flags, or `open_tree` then `mount_setattr`) and write through the copy's descriptor,
/// which needs no `mount` or `move_mount`. Every one of these calls is refused (EPERM), and
/// the host file is unchanged.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_read_only_bind_cannot_be_copied_writable() {
    let lab = TestLab::new("tf-ota", "name: tf-ota\nnodes:\n  a: {}\n");
    let ro = lab.dir.join("ro");
    std::fs::create_dir_all(&ro).expect("mkdir");
    std::fs::write(ro.join("file"), "original\n").expect("write");
    lab.rewrite("name: tf-ota\nnodes:\n  a:\n    binds: ['./ro:/mnt:ro']\n");
    lab.up();
    // Each attempt prints its errno (0: the copy was made and written through).
    let attack = r#"
import ctypes, os, struct
l = ctypes.CDLL(None, use_errno=True)
l.syscall.restype = ctypes.c_long
clear_ro = ctypes.create_string_buffer(struct.pack("QQQQ", 0, 1, 0, 0), 32)
def write_through(fd):
    f = os.open("file", os.O_WRONLY | os.O_TRUNC, dir_fd=fd)
    os.write(f, b"written by the node\n")
for path in (b"/mnt", b"/usr"):
    fd = l.syscall(467, -100, path, 1, clear_ro, ctypes.c_size_t(32))
    if fd < 0:
        print("open_tree_attr", ctypes.get_errno())
    else:
        print("open_tree_attr", 0)
        if path == b"/mnt":
            write_through(fd)
fd = l.syscall(428, -100, b"/mnt", 1)
print("open_tree", ctypes.get_errno() if fd < 0 else 0)
r = l.syscall(442, -100, b"/mnt", 0, clear_ro, ctypes.c_size_t(32))
print("mount_setattr", ctypes.get_errno() if r < 0 else 0)
"#;
    let out = lab.exec("a", &["python3", "-c", attack]);
    assert_eq!(
        stdout(&out),
        "open_tree_attr 1\nopen_tree_attr 1\nopen_tree 1\nmount_setattr 1",
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(ro.join("file")).expect("read"),
        "original\n"
    );
}

/// Node root tries to rewrite the records `topo exec` reads to confine what it starts in the
/// node (its file under `nodes/`, `state.json`): truncating, replacing by rename, planting a link
/// or a new file. Every attempt fails, the records are unchanged, and the next `topo exec`
/// still runs under the node's seccomp filter and without capabilities outside its set.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_root_cannot_rewrite_the_records_that_confine_exec() {
    let lab = TestLab::new("tf-rec", "name: tf-rec\nnodes:\n  a: {}\n");
    lab.up();
    let nodes = Path::new("/run/topo/tf-rec/nodes");
    // One node: one record file, whatever its name.
    let files: Vec<_> = std::fs::read_dir(nodes)
        .expect("the node records exist after up")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let record = files[0].clone();
    let before = std::fs::read(&record).expect("the node's own record exists after up");
    let state_before = std::fs::read("/run/topo/tf-rec/state.json").expect("state");
    let attacks = [
        format!(": > {}", record.display()),
        format!("echo '{{}}' > {}", record.display()),
        format!(
            "echo '{{}}' > /tmp/x.json && mv /tmp/x.json {}",
            record.display()
        ),
        format!("ln -s /tmp/x.json {}/b.json", nodes.display()),
        format!("touch {}/b.json", nodes.display()),
        format!("rm {}", record.display()),
        // The records are not even in view: the node's `/run` is its own.
        "test -e /run/topo/tf-rec".to_string(),
        ": > /run/topo/tf-rec/state.json".to_string(),
    ];
    for attack in &attacks {
        let o = lab.exec("a", &["/bin/sh", "-c", attack]);
        assert!(
            !o.status.success(),
            "`{attack}` must fail in the node: {}",
            text(&o)
        );
    }
    assert_eq!(
        std::fs::read(&record).expect("record"),
        before,
        "the node's record is unchanged"
    );
    assert!(!nodes.join("b.json").exists(), "nothing was planted");
    assert_eq!(
        std::fs::read("/run/topo/tf-rec/state.json").expect("state"),
        state_before
    );
    let o = lab.exec(
        "a",
        &[
            "/bin/sh",
            "-c",
            "grep -E '^(Seccomp|CapEff):' /proc/self/status",
        ],
    );
    let out = stdout(&o);
    assert!(out.contains("Seccomp:\t2"), "still filtered: {out}");
    assert!(
        !out.contains("CapEff:\t000001ffffffffff"),
        "not every capability: {out}"
    );
}
