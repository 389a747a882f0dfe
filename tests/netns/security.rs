//! Secure by default: what a process in a node may and may not do, read from the kernel
//! (/proc/PID/status, errno of real syscalls, cgroup files).

use crate::common::*;

/// The documented default capability set (docs/security.md), as /proc/PID/status shows it.
const DEFAULT_CAPS: u64 = (1 << 12) // NET_ADMIN
    | (1 << 13) // NET_RAW
    | (1 << 10) // NET_BIND_SERVICE
    | (1 << 11) // NET_BROADCAST
    | (1 << 0) // CHOWN
    | (1 << 1) // DAC_OVERRIDE
    | (1 << 3) // FOWNER
    | (1 << 4) // FSETID
    | (1 << 5) // KILL
    | (1 << 6) // SETGID
    | (1 << 7) // SETUID
    | (1 << 8) // SETPCAP
    | (1 << 18) // SYS_CHROOT
    | (1 << 29) // AUDIT_WRITE
    | (1 << 31); // SETFCAP

/// The default set of a node with its own user namespace (the default): also SYS_ADMIN.
const USERNS_CAPS: u64 = DEFAULT_CAPS | (1 << 21);

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn default_node_has_the_documented_caps_no_new_privs_and_seccomp() {
    let yaml = "name: tn-sec\nnodes:\n  a: {interfaces: {eth0: {addresses: [192.0.2.1/24]}}}\n  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}}}\n  c: {userns: false}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n";
    let lab = TestLab::new("tn-sec", yaml);
    lab.up();
    for (node, want) in [("a", USERNS_CAPS), ("c", DEFAULT_CAPS)] {
        let o = lab.exec(node, &["cat", "/proc/self/status"]);
        assert!(o.status.success(), "{}", text(&o));
        let st = String::from_utf8_lossy(&o.stdout).to_string();
        for key in ["CapEff:", "CapBnd:", "CapAmb:", "CapPrm:"] {
            let v = u64::from_str_radix(&status_field(&st, key), 16).expect("hex caps");
            assert_eq!(v, want, "{node}: {key} {v:#x} in:\n{st}");
        }
        // A user namespace of its own: root is not the host's root.
        let map = String::from_utf8_lossy(&lab.exec(node, &["cat", "/proc/self/uid_map"]).stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let own = map != "0 0 4294967295";
        assert_eq!(own, node == "a", "{node}: uid_map {map}");
    }
    let o = lab.exec("a", &["cat", "/proc/self/status"]);
    let st = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(status_field(&st, "NoNewPrivs:"), "1");
    assert_eq!(status_field(&st, "Seccomp:"), "2", "seccomp filter mode");
    // Not allowed: mounting, keyctl, new namespaces.
    let m = lab.exec("a", &["mount", "-t", "tmpfs", "none", "/mnt"]);
    assert!(!m.status.success(), "mount must fail: {}", out(&m));
    // SYS_ADMIN does not rename the node.
    let h = lab.exec("a", &["hostname", "renamed"]);
    assert!(!h.status.success(), "hostname must fail: {}", out(&h));
    assert_eq!(
        String::from_utf8_lossy(&lab.exec("a", &["hostname"]).stdout).trim(),
        "a"
    );
    let k = lab.exec("a", &["/usr/bin/python3", "-c", "import ctypes,os; l=ctypes.CDLL(None,use_errno=True); r=l.syscall(250,0,0,0,0,0); print(r, ctypes.get_errno())"]);
    assert_eq!(
        String::from_utf8_lossy(&k.stdout).trim(),
        "-1 1",
        "keyctl gives EPERM: {}",
        out(&k)
    );
    let u = lab.exec("a", &["/usr/bin/python3", "-c", "import ctypes; l=ctypes.CDLL(None,use_errno=True); r=l.unshare(0x20000); print(r, ctypes.get_errno())"]);
    assert_eq!(
        String::from_utf8_lossy(&u.stdout).trim(),
        "-1 1",
        "unshare(CLONE_NEWNS) gives EPERM: {}",
        out(&u)
    );
    // Allowed: ping, a TCP server on a privileged port, ip addr add on its own interface.
    assert!(
        lab.exec("a", &["ping", "-c", "1", "-W", "2", "192.0.2.2"])
            .status
            .success(),
        "ping works"
    );
    let add = lab.exec("a", &["ip", "addr", "add", "192.0.2.101/24", "dev", "eth0"]);
    assert!(add.status.success(), "ip addr add: {}", out(&add));
    assert!(addresses(&lab.ns("a"), "eth0").contains(&"192.0.2.101/24".to_string()));
    let srv = lab.exec(
        "b",
        &[
            "python3",
            "-c",
            "import socket; s=socket.socket(); s.bind(('0.0.0.0', 80)); s.listen(); print('bound')",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&srv.stdout).trim(),
        "bound",
        "port 80: {}",
        out(&srv)
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn unconfined_and_sys_admin_do_what_they_say_and_a_custom_profile_denies_exactly_its_syscall() {
    let lab = TestLab::new("tn-sec2", "name: tn-sec2\nnodes:\n  a: {}\n");
    let profile = lab.dir.join("deny-getcwd.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .expect("profile");
    lab.rewrite(&format!(
        "name: tn-sec2\ndefaults: {{userns: false}}\nnodes:\n  open:\n    seccomp: unconfined\n    capabilities: {{add: [SYS_ADMIN]}}\n  custom:\n    seccomp: {}\n",
        profile.display()
    ));
    lab.up();
    let st = String::from_utf8_lossy(&lab.exec("open", &["cat", "/proc/self/status"]).stdout)
        .to_string();
    assert_eq!(status_field(&st, "Seccomp:"), "0", "unconfined: no filter");
    let eff = u64::from_str_radix(&status_field(&st, "CapEff:"), 16).expect("hex");
    assert_eq!(eff, USERNS_CAPS, "SYS_ADMIN added to the default set");
    // The inits too: one helper starts both, and its bounding set keeps what either keeps;
    // the default node's init must still end up with the default set only.
    for (node, want) in [("open", USERNS_CAPS), ("custom", DEFAULT_CAPS)] {
        let init = lab.exec(node, &["cat", "/proc/1/status"]);
        let st = String::from_utf8_lossy(&init.stdout).to_string();
        for key in ["CapBnd:", "CapEff:", "CapAmb:"] {
            let v = u64::from_str_radix(&status_field(&st, key), 16).expect("hex caps");
            assert_eq!(v, want, "{node} init {key} {v:#x} in:\n{st}");
        }
    }
    let m = lab.exec("open", &["mount", "-t", "tmpfs", "none", "/mnt"]);
    assert!(
        m.status.success(),
        "with SYS_ADMIN and no filter, mount works: {}",
        out(&m)
    );
    let cwd = lab.exec("custom", &["/usr/bin/python3", "-c", "import os\ntry:\n  os.getcwd(); print('ok')\nexcept OSError as e:\n  print(e.errno)\nprint(os.getpid() > 0)"]);
    assert_eq!(
        String::from_utf8_lossy(&cwd.stdout).trim(),
        "13\nTrue",
        "getcwd denied with EACCES, getpid allowed: {}",
        out(&cwd)
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_cannot_see_or_signal_host_processes() {
    let lab = TestLab::new("tn-hpid", "name: tn-hpid\nnodes:\n  a: {}\n");
    lab.up();
    let mut host = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = host.id().to_string();
    let ls = lab.exec("a", &["ls", &format!("/proc/{pid}")]);
    let kill = lab.exec("a", &["kill", "-9", &pid]);
    let alive = host.try_wait().expect("wait").is_none();
    let _ = host.kill();
    let _ = host.wait();
    assert!(!ls.status.success(), "host pid {pid} visible in the node");
    assert!(!kill.status.success(), "kill of a host pid succeeded");
    assert!(alive, "the host process survived");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn rootfs_gives_the_node_its_own_tree_and_landlock_keeps_etc_read_only() {
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("skipping rootfs: busybox-static is not installed");
        return;
    };
    let lab = TestLab::new("tn-rfs", "name: tn-rfs\nnodes:\n  a: {}\n");
    let root = lab.dir.join("root");
    for d in ["bin", "etc", "proc", "sys", "tmp", "run", "dev"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "cat", "ls", "ps", "touch", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("applet");
    }
    std::fs::write(root.join("only-in-rootfs"), "tree\n").expect("marker");
    lab.rewrite(
        "name: tn-rfs\nnodes:\n  a:\n    rootfs: ./root\n    filesystem: {read_only: [/etc]}\n",
    );
    lab.up();
    let marker = lab.exec("a", &["/bin/cat", "/only-in-rootfs"]);
    assert_eq!(
        String::from_utf8_lossy(&marker.stdout),
        "tree\n",
        "{}",
        text(&marker)
    );
    let host_file = lab.exec("a", &["/bin/cat", "/etc/os-release"]);
    assert!(
        !host_file.status.success(),
        "a host file outside the tree is visible"
    );
    let procs = lab.exec("a", &["/bin/sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    let n: u32 = String::from_utf8_lossy(&procs.stdout)
        .trim()
        .parse()
        .unwrap_or(99);
    assert!(n <= 4, "/proc shows only the node's processes, saw {n}");
    let etc = lab.exec("a", &["/bin/touch", "/etc/new-file"]);
    assert!(
        !etc.status.success() && out(&etc).contains("Permission denied"),
        "Landlock: /etc read-only (EACCES): {}",
        out(&etc)
    );
    assert!(!root.join("etc/new-file").exists());
    assert!(
        lab.exec("a", &["/bin/touch", "/tmp/ok"]).status.success(),
        "/tmp stays writable"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn apparmor_is_refused_clearly_where_it_is_not_active() {
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        eprintln!("skipping apparmor refusal: AppArmor is active on this kernel");
        return;
    }
    let lab = TestLab::new(
        "tn-aa",
        "name: tn-aa\nnodes:\n  a: {apparmor: topo-default}\n",
    );
    let o = topo(&["up", path(&lab.file)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("AppArmor is not active"), "{}", out(&o));
    assert!(netns_with_prefix("tn-aa-").is_empty(), "nothing created");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn userns_node_root_is_an_unprivileged_host_uid_yet_configures_its_interfaces() {
    let yaml = "name: tn-usr\nnodes:\n  a: {interfaces: {eth0: {addresses: [192.0.2.1/24]}}}\n  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}}}\nlinks:\n  - endpoints: [a:eth0, b:eth0]\n";
    let lab = TestLab::new("tn-usr", yaml);
    lab.up();
    let status: serde_json::Value =
        serde_json::from_slice(&topo(&["status", "--lab", "tn-usr", "-o", "json"]).stdout)
            .expect("json");
    let mut bases = Vec::new();
    for n in status["nodes"].as_array().expect("nodes") {
        let pid = n["init_pid"].as_i64().expect("init pid");
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("uid_map");
        let fields: Vec<u64> = map
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        assert_eq!(fields.len(), 3, "one mapping line: {map}");
        assert_eq!(
            (fields[0], fields[2]),
            (0, 65536),
            "root maps to a 65536-id range: {map}"
        );
        assert!(
            fields[1] >= 65536,
            "mapped to an unprivileged host uid: {map}"
        );
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        assert!(
            st.lines()
                .any(|l| l.starts_with("Uid:") && l.contains(&fields[1].to_string())),
            "host sees uid {}: {st}",
            fields[1]
        );
        bases.push(fields[1]);
    }
    assert_ne!(bases[0], bases[1], "distinct ranges per node");
    let id = lab.exec("a", &["id", "-u"]);
    assert_eq!(
        String::from_utf8_lossy(&id.stdout).trim(),
        "0",
        "{}",
        text(&id)
    );
    let add = lab.exec("a", &["ip", "addr", "add", "192.0.2.77/24", "dev", "eth0"]);
    assert!(
        add.status.success(),
        "node root adds an address: {}",
        text(&add)
    );
    assert!(addresses(&lab.ns("a"), "eth0").contains(&"192.0.2.77/24".to_string()));
    assert!(
        ping(&lab.ns("a"), "192.0.2.2"),
        "topo wired and addressed the userns nodes"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn host_wide_proc_and_devices_are_out_of_reach_while_the_node_netns_sysctls_are_not() {
    let lab = TestLab::new("tn-proc", "name: tn-proc\nnodes:\n  a: {}\n");
    lab.up();
    let before = std::fs::read_to_string("/proc/sys/vm/swappiness").expect("swappiness");
    let vm = lab.exec("a", &["sh", "-c", "echo 17 > /proc/sys/vm/swappiness"]);
    assert!(
        !vm.status.success(),
        "a host-wide sysctl is writable: {}",
        out(&vm)
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/swappiness").expect("swappiness"),
        before
    );
    let net = lab.exec(
        "a",
        &[
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&net.stdout).trim(),
        "1",
        "the node's own net sysctls: {}",
        out(&net)
    );
    let sysrq = lab.exec("a", &["sh", "-c", "echo h > /proc/sysrq-trigger"]);
    assert!(!sysrq.status.success(), "sysrq-trigger is writable");
    let kcore = lab.exec("a", &["sh", "-c", "head -c 16 /proc/kcore | wc -c"]);
    assert_eq!(
        String::from_utf8_lossy(&kcore.stdout).trim(),
        "0",
        "/proc/kcore is masked"
    );
    let dev = lab.exec("a", &["ls", "/dev"]);
    let devs = String::from_utf8_lossy(&dev.stdout).to_string();
    assert!(
        devs.contains("null")
            && devs.contains("pts")
            && !devs.contains("kmsg")
            && !devs.contains("mem\n"),
        "minimal /dev: {devs}"
    );
    // Each device with the host's number and mode, and working.
    let st = lab.exec(
        "a",
        &["sh", "-c", "stat -c '%n %F %t:%T %a' /dev/null /dev/zero /dev/urandom /dev/tty && echo x >/dev/null && head -c 3 /dev/zero | wc -c"],
    );
    assert_eq!(
        String::from_utf8_lossy(&st.stdout).trim(),
        "/dev/null character special file 1:3 666\n/dev/zero character special file 1:5 666\n\
         /dev/urandom character special file 1:9 666\n/dev/tty character special file 5:0 666\n3",
        "{}",
        out(&st)
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn changing_a_running_nodes_security_restarts_it_with_the_new_settings() {
    let lab = TestLab::new("tn-chg", "name: tn-chg\nnodes:\n  a: {}\n  b: {}\n");
    lab.up();
    let b_before = std::fs::read_to_string("/run/topo/tn-chg/state.json").expect("state");
    lab.rewrite(
        "name: tn-chg\nnodes:\n  a: {capabilities: {drop: [ALL], add: [NET_RAW]}}\n  b: {}\n",
    );
    let plan = lab.plan();
    assert!(
        plan.contains("- node a init")
            && plan.contains("+ node a init")
            && !plan.contains("node b"),
        "{plan}"
    );
    lab.up();
    let st =
        String::from_utf8_lossy(&lab.exec("a", &["cat", "/proc/self/status"]).stdout).to_string();
    assert_eq!(status_field(&st, "CapEff:"), "0000000000002000", "{st}");
    let after: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("/run/topo/tn-chg/state.json").expect("state"),
    )
    .expect("json");
    let before: serde_json::Value = serde_json::from_str(&b_before).expect("json");
    assert_eq!(
        before["nodes"]["b"]["init"], after["nodes"]["b"]["init"],
        "node b untouched"
    );
    assert!(lab.plan().contains("no changes"));
}

/// Binds keep their host owners as seen from a node with a user namespace (idmapped): a
/// root-only host file is node root's, a file node root writes through a `:rw` bind is the
/// host's root's. With or without a user namespace, `:rw` takes writes and `:ro` refuses them.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn binds_keep_their_owners_in_a_user_namespace_and_honour_ro_and_rw() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let lab = TestLab::new("tn-idm", "name: tn-idm\nnodes:\n  a: {}\n");
    for d in ["ro", "rw"] {
        let dir = lab.dir.join(d);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let secret = dir.join("secret");
        std::fs::write(&secret, format!("{d} only for root\n")).expect("write");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let binds = "    binds: ['./ro:/run/ro:ro', './rw:/run/rw:rw']\n";
    lab.rewrite(&format!(
        "name: tn-idm\nnodes:\n  a:\n{binds}  h:\n    userns: false\n{binds}"
    ));
    lab.up();
    for node in ["a", "h"] {
        let sh = |cmd: &str| lab.exec(node, &["sh", "-c", cmd]);
        let owner = sh("stat -c %u:%g /run/ro/secret /run/rw/secret");
        assert_eq!(
            String::from_utf8_lossy(&owner.stdout),
            "0:0\n0:0\n",
            "{node}: {}",
            text(&owner)
        );
        for d in ["ro", "rw"] {
            let read = sh(&format!("cat /run/{d}/secret"));
            assert_eq!(
                String::from_utf8_lossy(&read.stdout),
                format!("{d} only for root\n"),
                "{node}: node root reads a root-only file: {}",
                text(&read)
            );
        }
    }
    for node in ["a", "h"] {
        let sh = |cmd: &str| lab.exec(node, &["sh", "-c", cmd]);
        let ro = sh(&format!("echo x > /run/ro/new-{node}"));
        assert!(!ro.status.success(), "{node}: :ro bind must refuse writes");
        assert!(!lab.dir.join(format!("ro/new-{node}")).exists());
        let rw = sh(&format!(
            "echo written > /run/rw/new-{node} && echo {node} >> /run/rw/secret"
        ));
        assert!(
            rw.status.success(),
            "{node}: :rw bind takes writes: {}",
            text(&rw)
        );
        let made = std::fs::metadata(lab.dir.join(format!("rw/new-{node}")))
            .expect("file made through the bind");
        assert_eq!(
            (made.uid(), made.gid()),
            (0, 0),
            "{node}: node root's file is host root's"
        );
    }
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("rw/secret")).expect("read"),
        "rw only for root\na\nh\n"
    );
}
