//! Binds of single files, and binds into a node's own `rootfs`: `:ro` refuses writes, `:rw`
//! (the default) takes them, with and without a user namespace. The directory binds of nodes
//! without a rootfs are tested in security.rs.

use std::os::unix::fs::MetadataExt;

use crate::attacks_fs::busybox_rootfs;
use crate::common::*;

/// A node's shell command; its output.
fn sh(lab: &TestLab, node: &str, cmd: &str) -> std::process::Output {
    lab.exec(node, &["sh", "-c", cmd])
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn file_binds_honour_ro_and_rw_with_and_without_a_user_namespace() {
    let lab = TestLab::new("tb-file", "name: tb-file\nnodes:\n  a: {}\n");
    std::fs::write(lab.dir.join("conf.txt"), "configuration\n").expect("write");
    std::fs::write(lab.dir.join("state.txt"), "state\n").expect("write");
    let binds = "    binds: ['./conf.txt:/run/conf.txt:ro', './state.txt:/run/state.txt']\n";
    lab.rewrite(&format!(
        "name: tb-file\nnodes:\n  a:\n{binds}  h:\n    userns: false\n{binds}"
    ));
    lab.up();
    for node in ["a", "h"] {
        let read = sh(&lab, node, "cat /run/conf.txt /run/state.txt");
        assert_eq!(
            String::from_utf8_lossy(&read.stdout),
            "configuration\nstate\n",
            "{node}: {}",
            text(&read)
        );
    }
    for node in ["a", "h"] {
        let ro = sh(&lab, node, "echo changed > /run/conf.txt");
        assert!(
            !ro.status.success(),
            "{node}: a :ro file bind takes a write"
        );
        assert!(
            String::from_utf8_lossy(&ro.stderr).contains("Read-only file system"),
            "{node}: {}",
            text(&ro)
        );
        let rw = sh(&lab, node, &format!("echo {node} >> /run/state.txt"));
        assert!(rw.status.success(), "{node}: {}", text(&rw));
    }
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("conf.txt")).expect("read"),
        "configuration\n"
    );
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("state.txt")).expect("read"),
        "state\na\nh\n"
    );
    let owner = std::fs::metadata(lab.dir.join("state.txt")).expect("stat");
    assert_eq!((owner.uid(), owner.gid()), (0, 0));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn binds_into_a_rootfs_honour_ro_and_rw_and_make_their_mount_points() {
    let lab = TestLab::new("tb-root", "name: tb-root\nnodes:\n  a: {}\n");
    if busybox_rootfs(&lab.dir.join("root")).is_none() {
        eprintln!("skipped: needs busybox (apt-get install busybox-static)");
        return;
    }
    std::fs::create_dir_all(lab.dir.join("data")).expect("mkdir");
    std::fs::write(lab.dir.join("data/in.txt"), "from the host\n").expect("write");
    std::fs::write(lab.dir.join("out.txt"), "").expect("write");
    // The mount points /opt/data and /var/out.txt are not in the rootfs: topo makes them.
    let node =
        "    rootfs: ./root\n    binds: ['./data:/opt/data:ro', './out.txt:/var/out.txt:rw']\n";
    lab.rewrite(&format!(
        "name: tb-root\nnodes:\n  a:\n{node}  h:\n    userns: false\n{node}"
    ));
    lab.up();
    for n in ["a", "h"] {
        let read = sh(&lab, n, "cat /opt/data/in.txt");
        assert_eq!(
            String::from_utf8_lossy(&read.stdout),
            "from the host\n",
            "{n}: {}",
            text(&read)
        );
        let ro = sh(&lab, n, "echo x > /opt/data/new");
        assert!(
            !ro.status.success(),
            "{n}: a :ro bind into a rootfs takes a write"
        );
        let rw = sh(&lab, n, &format!("echo {n} >> /var/out.txt"));
        assert!(rw.status.success(), "{n}: {}", text(&rw));
        // The node sees its own root, not the host's.
        let own = sh(
            &lab,
            n,
            "ls /bin/busybox && ! ls /usr/lib/os-release 2>/dev/null",
        );
        assert!(own.status.success(), "{n}: {}", text(&own));
    }
    assert!(!lab.dir.join("data/new").exists());
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("out.txt")).expect("read"),
        "a\nh\n"
    );
    assert!(
        lab.dir.join("root/opt/data").is_dir(),
        "mount point made in the rootfs"
    );
}

/// A directory of the host, removed on drop.
struct HostDir(std::path::PathBuf);

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bind target below a directory only the host's root may enter: the node (with a user
/// namespace, its root is not the host's) cannot reach it, and `up` says so, with what to do,
/// rather than "No such file or directory".
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_bind_target_the_node_cannot_reach_is_permission_denied_with_a_hint() {
    use std::os::unix::fs::PermissionsExt;
    let secret = HostDir(std::path::PathBuf::from(format!(
        "/var/tmp/topo-tb-deny-{}",
        std::process::id()
    )));
    std::fs::create_dir_all(secret.0.join("sub")).expect("mkdir");
    std::fs::set_permissions(&secret.0, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let yaml = |userns: bool| {
        format!(
            "name: tb-deny\nnodes:\n  a:\n    userns: {userns}\n    binds: ['./data:{}/sub']\n",
            secret.0.display()
        )
    };
    let lab = TestLab::new("tb-deny", &yaml(true));
    std::fs::create_dir_all(lab.dir.join("data")).expect("mkdir");
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Permission denied") && err.contains("chmod o+x"),
        "{err}"
    );
    assert!(!err.contains("No such file"), "{err}");
    // Without a user namespace the node's root is the host's, and reaches it.
    lab.rewrite(&yaml(false));
    lab.up();
    let seen = lab.exec(
        "a",
        &["sh", "-c", &format!("ls -d {}/sub", secret.0.display())],
    );
    assert!(seen.status.success(), "{}", text(&seen));
}
