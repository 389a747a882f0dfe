//! Attacks from inside a node on whoever enters it or runs `topo`: each test plays one escape
//! (a program of `tests/netns/attacks/` run in the node, or a caller holding something a node
//! must not get) and asserts that it fails. See docs/security.md, "Attacks on the way in".

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// The directory of the helper programs, `tests/netns/attacks/`, on the host.
fn attacks_dir() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/netns/attacks");
    p.to_str().expect("utf-8 path").to_string()
}

/// A node's `binds:` line that shows the helper programs at `/run/attacks` (the checkout
/// may be under the host's `/tmp`, which a node replaces by its own).
fn attacks_bind() -> String {
    format!("    binds: ['{}:/run/attacks:ro']\n", attacks_dir())
}

/// A helper program, by its path in a node that has [`attacks_bind`].
fn attack(name: &str) -> String {
    format!("/run/attacks/{name}")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A file a node program wrote in the node's /tmp, once it is there (up to `secs` seconds).
fn node_file(lab: &TestLab, node: &str, path: &str, secs: u64) -> Option<String> {
    eventually(secs, || {
        let o = lab.exec(node, &["cat", path]);
        o.status.success().then(|| stdout(&o))
    })
}

/// The host PID of a node's init (found by its name in the lab's cgroup).
fn init_pid(lab: &str) -> String {
    let inits: Vec<String> = lab_processes(lab)
        .into_iter()
        .filter(|(_, comm)| comm == "topo-init")
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(inits.len(), 1, "one init in {lab}: {inits:?}");
    inits[0].clone()
}

/// Sets a sysctl for the life of the guard, when the kernel has it.
struct Sysctl {
    path: &'static str,
    old: Option<String>,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).ok();
        if old.is_some() {
            std::fs::write(path, value).expect("write sysctl");
        }
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            let _ = std::fs::write(self.path, old.trim());
        }
    }
}

/// Everything read from a pty master, collected by a thread.
fn collect(master: OwnedFd) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    seen
}

fn wait_for(seen: &Arc<Mutex<Vec<u8>>>, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn set_winsize(fd: RawFd, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    assert_eq!(rc, 0, "TIOCSWINSZ");
}

/// A node program run by `topo exec` on the caller's terminal pushes characters into that
/// terminal's input with TIOCSTI (and tries TIOCLINUX), while `topo exec` runs and from a
/// process it leaves behind, after `topo exec` has returned to the caller's "shell" (a
/// session leader on the terminal, as a login shell is). Nothing may reach the terminal's
/// input; the program gets a terminal of its own, relayed, sized as the caller's.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_program_cannot_type_into_the_callers_terminal() {
    let _legacy = Sysctl::set("/proc/sys/dev/tty/legacy_tiocsti", "1");
    let yaml = format!("name: ta-tty\nnodes:\n  a:\n{}", attacks_bind());
    let lab = TestLab::new("ta-tty", &yaml);
    lab.up();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    set_winsize(pty.master.as_raw_fd(), 111, 33);
    let before = nix::sys::termios::tcgetattr(&pty.slave).expect("tcgetattr");
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(r#""$0" exec --lab ta-tty a -- python3 "$1"; echo "topo-exit=$?"; sleep 60"#)
        .arg(TOPO)
        .arg(attack("tiocsti.py"))
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe; the child makes the pty its terminal.
    unsafe {
        shell.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut shell = shell.spawn().expect("start the shell");
    let seen = collect(pty.master.try_clone().unwrap());
    let text = wait_for(&seen, "ready-for-resize", 20);
    assert!(
        text.contains("ready-for-resize"),
        "node program started:\n{text}"
    );
    set_winsize(pty.master.as_raw_fd(), 122, 44);
    let text = wait_for(&seen, "topo-exit=", 20);

    // The program saw the caller's size, then the new one; its exit status came through.
    assert!(text.contains("hello-from-node size=111x33"), "{text}");
    assert!(
        text.contains("resized size=122x44"),
        "window size forwarded:\n{text}"
    );
    assert!(
        text.contains("topo-exit=3"),
        "exit status passed through:\n{text}"
    );
    // The terminal is as it was.
    let after = nix::sys::termios::tcgetattr(&pty.slave).expect("tcgetattr");
    assert_eq!(before.local_flags, after.local_flags, "terminal restored");
    assert_eq!(before.input_flags, after.input_flags, "terminal restored");
    assert_eq!(before.output_flags, after.output_flags, "terminal restored");

    let during = node_file(&lab, "a", "/tmp/tty-during", 10).expect("during attempt");
    let later = node_file(&lab, "a", "/tmp/tty-after", 15).expect("later attempt");
    std::thread::sleep(Duration::from_millis(200));

    // Nothing in the caller's terminal: not in its input queue, not echoed.
    let mut raw = after.clone();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &raw)
        .expect("tcsetattr");
    let flags = nix::fcntl::fcntl(&pty.slave, nix::fcntl::FcntlArg::F_GETFL).expect("getfl");
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pty.slave, nix::fcntl::FcntlArg::F_SETFL(flags)).expect("setfl");
    let mut queued = [0u8; 256];
    let got = nix::unistd::read(pty.slave.as_fd(), &mut queued);
    let _ = shell.kill();
    let _ = shell.wait();
    assert_eq!(
        got,
        Err(nix::errno::Errno::EAGAIN),
        "injected into the caller's terminal: {:?}",
        got.map(|n| String::from_utf8_lossy(&queued[..n]).into_owned())
    );
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        !text.contains("INJECTED"),
        "echoed on the terminal:\n{text}"
    );
    // Refused by the filter, both while `topo exec` ran and after.
    for (when, result) in [("during", &during), ("after", &later)] {
        assert!(result.contains("TIOCSTI=EPERM"), "{when}: {result}");
        assert!(result.contains("TIOCLINUX=EPERM"), "{when}: {result}");
    }
}

/// A tracer left running in a node attaches to every new process of the node as soon as it
/// may (PTRACE_SEIZE on the next PID). A process entering the node must not be attachable
/// before it is the program (before its seccomp filter, where the tracer could skip the
/// filter's installation); the program itself runs under the filter. Node a's init starts
/// `topo exec`'s commands (after the first); node b, with a seccomp profile of its own, is
/// entered from outside each time.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn tracer_in_node_cannot_attach_to_an_entering_process() {
    let node = |name: &str, extra: &str| {
        format!(
            "  {name}:\n{}{extra}    services:\n      tracer: \"exec python3 {}\"\n",
            attacks_bind(),
            attack("tracer.py")
        )
    };
    let yaml = format!(
        "name: ta-ptrace\nnodes:\n{}{}",
        node("a", ""),
        node("b", "    seccomp: ./profile.json\n")
    );
    let lab = TestLab::new("ta-ptrace", &yaml);
    std::fs::write(
        lab.dir.join("profile.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("write the profile");
    lab.up();
    for node in ["a", "b"] {
        let ready = node_file(&lab, node, "/tmp/tracer.log", 10).expect("tracer log");
        assert!(ready.contains("ready"), "{node}: {ready}");
        let mut parents = Vec::new();
        for i in 0..20 {
            let o = lab.exec(
                node,
                &[
                    "/bin/sh",
                    "-c",
                    "grep -E '^(Seccomp|PPid):' /proc/$$/status; sleep 0.2",
                ],
            );
            assert!(o.status.success(), "{node} run {i}: {}", text(&o));
            assert!(
                stdout(&o).contains("Seccomp:\t2"),
                "{node} run {i}: the program runs under the filter:\n{}",
                text(&o)
            );
            parents.extend(
                stdout(&o)
                    .lines()
                    .filter(|l| l.starts_with("PPid:"))
                    .map(String::from),
            );
        }
        let from_init = parents.iter().filter(|p| *p == "PPid:\t1").count();
        let want = if node == "a" { 20 } else { 0 };
        assert_eq!(
            from_init, want,
            "{node}: commands its init started: {parents:?}"
        );
        let log = node_file(&lab, node, "/tmp/tracer.log", 5).expect("tracer log");
        let early: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("comm=topo") || l.contains("seccomp=0"))
            .collect();
        assert!(
            early.is_empty(),
            "{node}: attached before the filter or the exec:\n{log}"
        );
        assert!(
            log.lines().any(|l| l.starts_with("attached")),
            "{node}: the tracer works (it attaches to the programs once they run):\n{log}"
        );
    }
}

/// Runs `cmd` with `fd` as an inheritable descriptor 5 (as a caller that holds it open
/// without close-on-exec).
fn with_fd5(cmd: &mut Command, fd: RawFd) -> &mut Command {
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 5) < 0 || libc::fcntl(5, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A caller of `topo up` and `topo exec` holds a descriptor of a host directory without
/// close-on-exec. No node program may get it: `exec:` lines, services and `topo exec` see only
/// 0, 1 and 2 (and `ls`'s own), write nothing through it, and the init holds nothing of it.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn descriptors_of_the_caller_do_not_reach_the_node() {
    let line = |tag: &str| {
        format!("ls /proc/self/fd > /tmp/{tag}-fds; touch /proc/self/fd/5/pwned-{tag} 2>/dev/null")
    };
    let yaml = format!(
        "name: ta-fds\nnodes:\n  a:\n    exec: [\"{}; true\"]\n    services:\n      fds: \"{}; sleep 600\"\n",
        line("exec"),
        line("svc")
    );
    let lab = TestLab::new("ta-fds", &yaml);
    let victim = lab.dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let host_dir = nix::fcntl::open(
        &victim,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .expect("open the host directory");
    let fd = host_dir.as_raw_fd();

    let up = with_fd5(Command::new(TOPO).args(["up", path(&lab.file)]), fd)
        .output()
        .expect("run topo up");
    assert!(up.status.success(), "topo up:\n{}", text(&up));
    let exec = with_fd5(
        Command::new(TOPO).args([
            "exec",
            "--lab",
            "ta-fds",
            "a",
            "--",
            "/bin/sh",
            "-c",
            &format!("{}; true", line("topo-exec")),
        ]),
        fd,
    )
    .output()
    .expect("run topo exec");
    assert!(exec.status.success(), "topo exec:\n{}", text(&exec));

    for tag in ["exec", "svc", "topo-exec"] {
        let fds = node_file(&lab, "a", &format!("/tmp/{tag}-fds"), 10).expect("fd list");
        let fds: Vec<&str> = fds.split_whitespace().collect();
        assert_eq!(fds, ["0", "1", "2", "3"], "{tag}: only stdio and ls's own");
    }
    let written: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(written.is_empty(), "written on the host: {written:?}");
    assert_eq!(
        init_fds(&init_pid("ta-fds"), "ta-fds", "a"),
        INIT_FDS,
        "the init holds only its standard streams, its exec socket, its node's netns and its \
         signalfd"
    );
}

/// `topo up` and `topo exec` run with a secret in their environment (as in CI). Neither the
/// node's init nor any node program may see it; they get the declared `env:` and the fixed
/// set.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn callers_environment_does_not_reach_the_node() {
    const SECRET: &str = "s3cr3t-ta-env-1b7e";
    let yaml = "name: ta-env\nnodes:\n  a:\n    env: {LAB_VAR: declared-value}\n    exec: [\"env > /tmp/exec-env\"]\n    services:\n      envs: \"env > /tmp/svc-env; sleep 600\"\n";
    let lab = TestLab::new("ta-env", yaml);
    let up = Command::new(TOPO)
        .args(["up", path(&lab.file)])
        .env("TOPO_TEST_SECRET", SECRET)
        .output()
        .expect("run topo up");
    assert!(up.status.success(), "topo up:\n{}", text(&up));

    // The init's own environment, read from the host (the node may not read it at all).
    let environ = std::fs::read(format!("/proc/{}/environ", init_pid("ta-env"))).unwrap();
    let environ = String::from_utf8_lossy(&environ).replace('\0', "\n");
    assert!(!environ.contains(SECRET), "init environment:\n{environ}");
    let inside = lab.exec("a", &["cat", "/proc/1/environ"]);
    assert!(!text(&inside).contains(SECRET), "{}", text(&inside));

    for file in ["/tmp/exec-env", "/tmp/svc-env"] {
        let env = node_file(&lab, "a", file, 10).expect("environment");
        assert!(!env.contains(SECRET), "{file}:\n{env}");
        assert!(env.contains("LAB_VAR=declared-value"), "{file}:\n{env}");
        assert!(env.contains("TOPO_NODE=a"), "{file}:\n{env}");
    }
    let exec = Command::new(TOPO)
        .args(["exec", "--lab", "ta-env", "a", "--", "env"])
        .env("TOPO_TEST_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .expect("run topo exec");
    assert!(exec.status.success(), "{}", text(&exec));
    let env = stdout(&exec);
    let mut keys: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "HOME",
            "HOSTNAME",
            "LAB_VAR",
            "PATH",
            "TOPO_LAB",
            "TOPO_NODE"
        ],
        "{env}"
    );
}

/// A node administering namespaces other than its own: it learns a neighbour's namespace id
/// from its own veth (`link_netnsid`) and sends netlink requests naming it
/// (`IFLA_TARGET_NETNSID`). With its own user namespace (the default) the kernel refuses them
/// (EACCES, EPERM for changes): node root holds no capability over namespaces its user namespace does not own.
/// The same request from a node with `userns: false` (whose root has `NET_ADMIN` in the
/// host's user namespace) lists the neighbour's interfaces, which is what the default stops.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_cannot_reach_other_namespaces_through_netnsid() {
    let yaml = format!(
        "name: ta-nsid\nnodes:\n  a:\n{bind}  b: {{}}\n  c:\n    userns: false\n{bind}links:\n  - endpoints: [a:eth0, b:eth0]\n  - endpoints: [c:eth0, b:eth1]\n",
        bind = attacks_bind()
    );
    let lab = TestLab::new("ta-nsid", &yaml);
    lab.up();
    let peer_id = |node: &str| -> i64 {
        let o = lab.exec(node, &["ip", "-j", "link", "show", "eth0"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ip -j");
        v[0]["link_netnsid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{node}: no link_netnsid in {v}"))
    };
    let list = |node: &str| {
        let id = peer_id(node).to_string();
        stdout(&lab.exec(node, &["python3", &attack("netnsid.py"), &id]))
    };
    // EACCES for a dump, EPERM for a change: the kernel's "not capable there".
    let refused = list("a");
    assert!(
        ["error 13", "error 1"].contains(&refused.trim()),
        "default node: refused, got {refused}"
    );
    let control = list("c");
    assert!(
        control.starts_with("names") && control.contains("eth1"),
        "userns: false reaches the neighbour's namespace: {control}"
    );
}

/// Node root holds `NET_ADMIN` over its node's network namespace, so it may send netlink
/// messages to any socket there, `topo`'s included. A service sends forged address answers
/// (192.0.2.99/24 on lo, `topo`'s protocol), with the sequence numbers of the requests that
/// follow the first, to every new route socket of the namespace and to the ports the next
/// `topo` command's first socket may get (its PID, a little above the last one seen), while
/// `topo plan` observes the node again and again: taken for the kernel's answer, the address
/// would be planned for removal.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_node_cannot_forge_the_kernels_netlink_answers_to_topo() {
    let yaml = format!(
        "name: ta-nlf\nnodes:\n  a:\n{}    services:\n      forge: \"exec python3 {}\"\n",
        attacks_bind(),
        attack("netlink_forge.py")
    );
    let lab = TestLab::new("ta-nlf", &yaml);
    lab.up();
    assert!(
        node_file(&lab, "a", "/tmp/netlink-forge", 10).is_some(),
        "the forger did not start"
    );
    // The attack is played until at least 10 forged answers reached `topo`'s sockets (the
    // forger sees fewer of the short-lived sockets on a busy machine): 200 plans, then more,
    // 1000 at most.
    let sent = || -> u64 {
        node_file(&lab, "a", "/tmp/netlink-forge", 5)
            .and_then(|l| l.trim().strip_prefix("sent ")?.parse().ok())
            .unwrap_or(0)
    };
    let mut plans = 0;
    while plans < 1000 {
        for _ in 0..50 {
            let plan = lab.plan();
            assert!(
                !plan.contains("192.0.2.99"),
                "plan {plans} took a forged answer for the kernel's:\n{plan}"
            );
            assert!(plan.contains("no changes"), "plan {plans}:\n{plan}");
            plans += 1;
        }
        if plans >= 200 && sent() >= 10 {
            break;
        }
    }
    let sent = sent();
    assert!(
        sent >= 10,
        "only {sent} forged answers were sent in {plans} plans"
    );
}

/// A process entering the node is visible in the node's PID namespace from its fork on; were
/// it still in the host's mount namespace then, `/proc/PID/mountinfo` (readable by anyone)
/// would show the node the host's mount table. A service watches for new processes and reads
/// their mount tables while `topo exec` enters the node many times: none shows a host mount.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn entering_processes_never_show_the_hosts_mounts() {
    let yaml = format!(
        "name: ta-mnt\nnodes:\n  a:\n{}    services:\n      watch: \"exec python3 {}\"\n",
        attacks_bind(),
        attack("mountinfo_watch.py")
    );
    let lab = TestLab::new("ta-mnt", &yaml);
    lab.up();
    // The watcher is running (it has written its first count) before the entries.
    assert!(
        node_file(&lab, "a", "/tmp/mountinfo-watch", 10).is_some(),
        "the watcher did not start"
    );
    // Each entry is one new process (the program replaces it); some come and go between two
    // looks, the more so on a busy machine: the entries go on until the watcher has seen 40
    // (at most 400). Each look at its log is one more new process, not counted.
    let looks = std::cell::Cell::new(0);
    let seen_so_far = || {
        looks.set(looks.get() + 1);
        let log = node_file(&lab, "a", "/tmp/mountinfo-watch", 5).unwrap_or_default();
        let seen: usize = log
            .lines()
            .filter_map(|l| l.strip_prefix("seen ")?.parse().ok())
            .max()
            .unwrap_or(0);
        (seen.saturating_sub(looks.get()), log)
    };
    let mut entries = 0;
    while entries < 400 {
        for _ in 0..20 {
            let o = lab.exec("a", &["true"]);
            assert!(o.status.success(), "{}", text(&o));
        }
        entries += 20;
        if seen_so_far().0 >= 40 {
            break;
        }
    }
    let (seen, log) = seen_so_far();
    assert!(
        seen >= 40,
        "the watcher saw {seen} new processes in {entries} entries:\n{log}"
    );
    let leaks: Vec<&str> = log.lines().filter(|l| l.starts_with("LEAK")).collect();
    assert!(
        leaks.is_empty(),
        "host mounts seen in the node:\n{}",
        leaks.join("\n")
    );
}

/// A process of ours, killed (by PID) and reaped when dropped.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A request to an exec socket as `topo exec` makes it, sent by a Python program with the
/// standard streams and, if given, a descriptor of `extra` opened as `how` (`r` for reading,
/// `p` for `O_PATH`); prints `NAME EXTRA` and the answer (`b''`: let go) or the error number.
const EXEC_REQUEST: &str = r#"import array, json, os, socket, sys
req = json.dumps({"run": {"argv": ["/bin/sh", "-c", "touch /tmp/pwned"], "env": [], "limits": [], "umask": 18}}).encode()
for arg in sys.argv[1:]:
    name, extra = arg.split("=", 1)
    fds = [0, 1, 2]
    if extra:
        how, path = extra.split(":", 1)
        fds.append(os.open(path, os.O_RDONLY | (os.O_PATH if how == "p" else 0)))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    try:
        s.connect("\0" + name)
        s.sendmsg([req], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        print(arg, repr(s.recv(100)))
    except OSError as e:
        print(arg, "error", e.errno)
"#;

/// Every node's init listens on its exec socket, and starts what comes through it as a node
/// process. The socket has an abstract name in the host's network namespace: a node process,
/// in its node's, cannot reach it. A host user other than root reaches it, but cannot show
/// what each request must carry, a descriptor of the lab's lock file open for reading: each
/// request is let go and nothing runs. A host user who takes a node's socket name first gets
/// nothing of `topo exec`, which talks only to a socket of root's and enters the node from
/// outside instead. And the init's descriptors are out of the node's reach.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_node_cannot_use_an_exec_socket() {
    let name = |node: &str| exec_socket("ta-sock", node);
    // A host user's socket on c's name before the lab is up: it records what reaches it.
    let squat = r#"import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("\0" + sys.argv[1]); s.listen(8); print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        data, anc, _, _ = c.recvmsg(4096, 1024)
        print("got", len(data), "bytes", len(anc), "ancillary", flush=True)
    except OSError as e:
        print("error", e.errno, flush=True)
    c.close()
"#;
    let lab = TestLab::new(
        "ta-sock",
        "name: ta-sock\nnodes:\n  a: {}\n  b: {}\n  c: {}\n",
    );
    let mut squatter = Reaped(
        Command::new("python3")
            .args(["-c", squat, &name("c")])
            .uid(65534)
            .gid(65534)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the squatter"),
    );
    let mut squatter_out =
        std::io::BufReader::new(squatter.0.stdout.take().expect("squatter stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut squatter_out, &mut line).expect("read");
    assert_eq!(line, "ready\n");
    lab.up();
    // Every init serves `topo exec` (each node has had a command entering from outside).
    for node in ["a", "b"] {
        let o = lab.exec(node, &["true"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(exec_socket_listens("ta-sock", node));
    }
    // From a node: no such name in its network namespace (ECONNREFUSED), with or without
    // the lock file (which is not in its view either).
    let o = lab.exec(
        "a",
        &[
            "python3",
            "-c",
            EXEC_REQUEST,
            &format!("{}=", name("a")),
            &format!("{}=", name("b")),
        ],
    );
    assert_eq!(
        stdout(&o),
        format!("{}= error 111\n{}= error 111\n", name("a"), name("b")),
        "{}",
        text(&o)
    );
    // From the host, as a user other than root: let go without an answer, whatever it shows.
    let lock = "/run/topo/ta-sock/lock";
    let tries: Vec<String> = ["", &format!("p:{lock}"), "r:/etc/passwd"]
        .iter()
        .map(|extra| format!("{}={extra}", name("b")))
        .collect();
    let o = Command::new("python3")
        .arg("-c")
        .arg(EXEC_REQUEST)
        .args(&tries)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run the request as nobody");
    let want: String = tries.iter().map(|t| format!("{t} b''\n")).collect();
    assert_eq!(stdout(&o), want, "{}", text(&o));
    for node in ["a", "b"] {
        let o = lab.exec(
            node,
            &["sh", "-c", "test -e /tmp/pwned && echo pwned; true"],
        );
        assert_eq!(stdout(&o), "", "{node}: nothing ran: {}", text(&o));
    }
    // Root, showing the lock file, is served: the init starts the command.
    let o = lab.exec("b", &["sh", "-c", "grep PPid /proc/$$/status"]);
    assert_eq!(stdout(&o), "PPid:\t1\n", "{}", text(&o));
    // c's name was taken: `topo exec` connects, sees whose socket it is, sends nothing, and
    // enters from outside. It connects twice: the front, then `topo-core`, which it hands the
    // command line to.
    for _ in 0..2 {
        let o = lab.exec("c", &["sh", "-c", "grep PPid /proc/$$/status"]);
        assert_eq!(stdout(&o), "PPid:\t0\n", "{}", text(&o));
    }
    drop(squatter);
    let mut seen = String::new();
    std::io::Read::read_to_string(&mut squatter_out, &mut seen).expect("read the squatter");
    assert_eq!(
        seen,
        "got 0 bytes 0 ancillary\n".repeat(4),
        "the squatter got nothing"
    );
    let pid = lab_processes("ta-sock")
        .into_iter()
        .find(|(pid, comm)| {
            comm == "topo-init"
                && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|c| c.contains("/topo/ta-sock/a"))
        })
        .map(|(pid, _)| pid)
        .expect("a's init");
    assert_eq!(init_fds(&pid, "ta-sock", "a"), INIT_FDS);
    // The init's descriptors are out of reach (it is not dumpable).
    let o = lab.exec("a", &["sh", "-c", "ls /proc/1/fd 2>&1 >/dev/null; echo $?"]);
    assert!(
        stdout(&o).contains("Permission denied") && stdout(&o).trim_end().ends_with('2'),
        "{}",
        text(&o)
    );
}

/// Node root signals its node's init (PID 1 in the node) to end it, and with it the node:
/// SIGTERM, SIGHUP and SIGINT, which the init waits for (blocked, so the kernel queues them
/// even from inside the namespace), and SIGKILL, SIGSTOP and others. The init takes a stop
/// request only from outside the node: it keeps running and serving, with and without an
/// exec socket (b has a seccomp profile of its own), and a SIGTERM from the host still ends
/// it.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_node_cannot_end_its_own_init_with_a_signal() {
    let lab = TestLab::new(
        "ta-sig1",
        "name: ta-sig1\nnodes:\n  a: {}\n  b: {seccomp: ./profile.json}\n",
    );
    std::fs::write(
        lab.dir.join("profile.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("write the profile");
    lab.up();
    let init_of = |node: &str| {
        lab_processes("ta-sig1")
            .into_iter()
            .find(|(pid, comm)| {
                comm == "topo-init"
                    && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                        .is_ok_and(|c| c.contains(&format!("/topo/ta-sig1/{node}")))
            })
            .map(|(pid, _)| pid)
            .unwrap_or_else(|| panic!("{node}'s init is running"))
    };
    for (node, parent) in [("a", "1"), ("b", "0")] {
        let init = init_of(node);
        let o = lab.exec(node, &["true"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = lab.exec(
            node,
            &[
                "sh",
                "-c",
                "for s in TERM HUP INT QUIT USR1 STOP KILL; do kill -$s 1; done; sleep 0.5",
            ],
        );
        assert!(o.status.success(), "{node}: kill sent: {}", text(&o));
        let o = lab.exec(
            node,
            &[
                "sh",
                "-c",
                "grep -h '^State' /proc/1/status; grep PPid /proc/$$/status",
            ],
        );
        // The init may be busy starting this very command (R) or waiting (S); a stop
        // would show T, an end Z or no answer at all.
        let out = stdout(&o);
        assert!(
            [
                format!("State:\tS (sleeping)\nPPid:\t{parent}\n"),
                format!("State:\tR (running)\nPPid:\t{parent}\n"),
            ]
            .contains(&out),
            "{node}: the init runs, not stopped, and serves as before: {}",
            text(&o)
        );
        assert_eq!(init_of(node), init, "{node}: the same init");
    }
    // From the host, SIGTERM still ends an init.
    let a = init_of("a");
    let pid = nix::unistd::Pid::from_raw(a.parse().expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let gone = eventually(5, || {
        (!std::path::Path::new(&format!("/proc/{a}")).exists()
            || std::fs::read_to_string(format!("/proc/{a}/stat")).is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    assert!(gone.is_some(), "the host's SIGTERM ends a's init");
}

/// A default node's init lives outside the node's network namespace, in one that the inits of
/// the `up` share, and holds the node's on a descriptor. Node root (with `SYS_ADMIN` in its
/// user namespace, and once without the seccomp filter) tries to join the init's namespace
/// and to reach the node's through the init's descriptor: nothing opens, nothing is joined,
/// and what the init's `/proc/1/net` shows of its namespace is a loopback alone.
#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_node_cannot_join_its_inits_network_namespace() {
    let yaml = format!(
        "name: ta-inet\nnodes:\n  a:\n{b}    interfaces: {{eth0: {{addresses: [192.0.2.1/24]}}}}\n  u:\n{b}    seccomp: unconfined\n    interfaces: {{eth0: {{addresses: [192.0.2.2/24]}}}}\nlinks:\n  - endpoints: [a:eth0, u:eth0]\n",
        b = attacks_bind()
    );
    let lab = TestLab::new("ta-inet", &yaml);
    lab.up();
    for node in ["a", "u"] {
        let named = std::fs::metadata(format!("/run/netns/{}", lab.ns(node)))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .expect("named netns");
        let out = stdout(&lab.exec(node, &["python3", &attack("init_netns.py")]));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{node}: {out}");
        for line in &lines[..3] {
            // EACCES: the init is not dumpable, so its namespace files and descriptors are
            // closed to the node.
            assert!(line.ends_with(" closed 13"), "{node}: {line}");
        }
        assert_eq!(
            lines[3],
            format!("own net:[{named}]"),
            "{node}: still in its own"
        );
        assert_eq!(lines[4], "init-ifaces lo", "{node}: the inits' namespace");
    }
    // A command the init starts (its parent is PID 1: the first `topo exec` entered from
    // outside and mounted the node's sysfs) joined the node's namespace and stacked the
    // filter that refuses `setns`, which the init's own allows. In the unconfined node it is
    // allowed: the probe can tell.
    let probe = "grep PPid /proc/$$/status; nsenter --net=/proc/self/ns/net true; echo rc=$?";
    for (node, want) in [("a", false), ("u", true)] {
        let seen = eventually(10, || {
            let out = stdout(&lab.exec(node, &["sh", "-c", probe]));
            out.starts_with("PPid:\t1\n").then_some(out)
        })
        .unwrap_or_else(|| panic!("{node}: no command started by the init"));
        assert_eq!(
            seen.ends_with("rc=0\n"),
            want,
            "{node}: setns allowed? {seen}"
        );
    }
}
