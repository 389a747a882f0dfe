//! Helpers for tests that build real labs. Every lab a test makes has its own name and is
//! brought down by a drop guard, also when the test fails. Assertions read the kernel's state
//! with iproute2's JSON output, /proc and real traffic, never topo's own records.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

pub const TOPO: &str = env!("CARGO_BIN_EXE_topo");

/// Where `down` keeps the logs of the tests' labs (`TOPO_LOG_DIR` of [`topo`]), instead of
/// /var/log/topo. A [`TestLab`] removes its lab's archives when dropped.
pub fn archive_root() -> PathBuf {
    std::env::temp_dir().join("topo-test-archive")
}

/// A lab under test: its topology file in a private directory and a guard that brings it
/// down (and removes the directory) on drop.
pub struct TestLab {
    pub name: String,
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl TestLab {
    /// Writes `yaml` (whose `name:` must be `name`) and brings down any leftover of an earlier
    /// crashed run of the same test.
    pub fn new(name: &str, yaml: &str) -> TestLab {
        let dir = std::env::temp_dir().join(format!("topo-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create test dir");
        let file = dir.join("lab.yaml");
        std::fs::write(&file, yaml).expect("write topology");
        let lab = TestLab {
            name: name.to_string(),
            dir,
            file,
        };
        let _ = topo(&["down", "--lab", name]);
        lab
    }

    pub fn rewrite(&self, yaml: &str) {
        std::fs::write(&self.file, yaml).expect("rewrite topology");
    }

    pub fn up(&self) -> Output {
        let out = topo(&["up", path(&self.file)]);
        assert!(out.status.success(), "topo up failed:\n{}", text(&out));
        out
    }

    pub fn plan(&self) -> String {
        let out = topo(&["plan", path(&self.file)]);
        assert!(out.status.success(), "topo plan failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `topo down --wait`, which returns once every process of the lab has ended and its
    /// cgroups and run directory are gone, as the tests then check; a lab that is not up (a
    /// test brought it down, or `up` made nothing) is no error.
    pub fn down(&self) -> Output {
        topo(&["down", "--lab", &self.name, "--missing-ok", "--wait"])
    }

    pub fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }

    /// Runs a command in a node through `topo exec`.
    pub fn exec(&self, node: &str, argv: &[&str]) -> Output {
        let mut args = vec!["exec", "--lab", &self.name, node, "--"];
        args.extend_from_slice(argv);
        topo(&args)
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let out = self.down();
        if !out.status.success() {
            eprintln!("cleanup of {} failed:\n{}", self.name, text(&out));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(archive_root().join(&self.name));
        // Left while another lab's archive is in it.
        let _ = std::fs::remove_dir(archive_root());
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn topo(args: &[&str]) -> Output {
    Command::new(TOPO)
        .args(args)
        .env("TOPO_LOG_DIR", archive_root())
        .output()
        .expect("run topo")
}

/// A chain lab from `topo gen chain` (`extra`: more options, e.g. `--bare`).
pub fn gen_chain(name: &str, nodes: usize, extra: &[&str]) -> String {
    let n = nodes.to_string();
    let mut args = vec!["gen", "chain", "--nodes", &n, "--name", name];
    args.extend_from_slice(extra);
    let out = topo(&args);
    assert!(out.status.success(), "topo gen failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn text(o: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ip -j [-n NS] ARGS…` parsed as JSON (iproute2 reads the kernel over its own netlink).
pub fn ip_json(ns: Option<&str>, args: &[&str]) -> Value {
    let mut c = Command::new("ip");
    c.arg("-j");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    let out = c.args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?} failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(Vec::new()))
}

/// Interface name -> ifindex in a namespace.
pub fn ifindexes(ns: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = ip_json(Some(ns), &["link", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["ifname"].as_str().unwrap_or("").to_string(),
                l["ifindex"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

/// Addresses (`addr/prefix`) of an interface in a namespace, link-local ones left out.
pub fn addresses(ns: &str, dev: &str) -> Vec<String> {
    let mut v: Vec<String> = ip_json(Some(ns), &["addr", "show", "dev", dev])
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["scope"] != "link" && a["scope"] != "host")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect();
    v.sort();
    v
}

/// Runs a command inside a namespace with `ip netns exec` (network namespace only).
pub fn netns_exec(ns: &str, argv: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .output()
        .expect("ip netns exec")
}

pub fn ping(ns: &str, addr: &str) -> bool {
    // Until the first reply, an echo request every half second for up to four seconds:
    // right after `up`, on a machine busy with the other tests, neighbour discovery across
    // three hops once took longer than a single request's two seconds.
    let out = netns_exec(ns, &["ping", "-c", "1", "-i", "0.5", "-w", "4", addr]);
    out.status.success()
}

/// Named network namespaces whose name starts with `prefix`.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Mount points (from /proc/self/mountinfo) that contain `needle`.
pub fn mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// A TCP request from inside a network namespace (a thread that joins it), returning the
/// whole response.
pub fn tcp_request(ns: &str, to: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let ns = ns.to_string();
    let request = request.to_vec();
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(&request)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        Ok(buf)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("thread panicked")))
}

/// Retries `f` for up to `secs` seconds (services take a moment to listen).
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each node of `lab` with its init's PID, as `topo status -o json` reports them.
pub fn init_pids(lab: &str) -> Vec<(String, i64)> {
    let out = topo(&["status", "--lab", lab, "-o", "json"]);
    assert!(out.status.success(), "status:\n{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| Some((n["name"].as_str()?.to_string(), n["init_pid"].as_i64()?)))
        .collect()
}

/// Live processes (no zombies) in the cgroups of `lab`, as (PID, command name).
pub fn lab_processes(lab: &str) -> Vec<(String, String)> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cgroup"))
                .is_ok_and(|c| c.contains(&format!("/topo/{lab}/")))
        })
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (open, close) = (stat.find('(')?, stat.rfind(')')?);
            let state = stat.get(close + 2..close + 3)?;
            (state != "Z").then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    stat[open + 1..close].to_string(),
                )
            })
        })
        .collect()
}

// The example labs of `topologies/` under test names; bounded waits; what a lab leaves.

/// The directory of an example lab in `topologies/`.
pub fn example_dir(lab: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(lab)
}

/// `file` of the example lab `lab` (a directory of `topologies/`) under the name `name`: the
/// file with its `name:` replaced, in a test directory beside a copy of the lab's
/// subdirectories (the routers' configuration, which the file binds relative to itself).
pub fn example_lab(name: &str, lab: &str, file: &str) -> TestLab {
    let src = example_dir(lab);
    let yaml = std::fs::read_to_string(src.join(file)).expect("read the lab file");
    let test_lab = TestLab::new(name, &with_name(&yaml, name));
    for entry in std::fs::read_dir(&src).expect("read the lab directory") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &test_lab.dir.join(entry.file_name()));
        }
    }
    test_lab
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a config directory");
    for entry in std::fs::read_dir(from).expect("read a config directory") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a config file");
        }
    }
}

/// `yaml` with its top-level `name:` line replaced.
pub fn with_name(yaml: &str, name: &str) -> String {
    let mut replaced = false;
    let lines: Vec<String> = yaml
        .lines()
        .map(|l| {
            if !replaced && l.starts_with("name:") {
                replaced = true;
                format!("name: {name}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(replaced, "the lab file has a top-level name: line");
    lines.join("\n") + "\n"
}

/// The last lines of a service's log (`/run/topo/LAB/logs/NODE.SERVICE.log`), for a failure
/// message.
pub fn log_tail(lab: &TestLab, node: &str, service: &str) -> String {
    let path = format!("/run/topo/{}/logs/{node}.{service}.log", lab.name);
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({path}: {e})"));
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    format!("--- {path}\n{tail}")
}

/// A command's output in a node, headed by where it comes from, for a failure message.
pub fn shown(lab: &TestLab, node: &str, argv: &[&str]) -> String {
    let out = lab.exec(node, argv);
    format!(
        "--- {node}: {}\n{}{}",
        argv.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `check` every 250 ms until it returns Ok, for at most `timeout`, and returns how long
/// it took; when the time is up it panics with `what`, the last reason `check` gave and
/// `diagnosis()` (what the daemons and the kernel say). `check` may panic itself on a failure
/// that waiting cannot mend (a daemon that has exited).
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<(), String>,
    diagnosis: impl Fn() -> String,
) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let reason = match check() {
            Ok(()) => return start.elapsed(),
            Err(reason) => reason,
        };
        if start.elapsed() > timeout {
            panic!("{what}: not within {timeout:?}: {reason}\n{}", diagnosis());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The lab's live processes whose command name is one of `names`, as (PID, name), sorted.
pub fn lab_daemons(lab: &str, names: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = lab_processes(lab)
        .into_iter()
        .filter(|(_, comm)| names.contains(&comm.as_str()))
        .collect();
    v.sort();
    v
}

/// A second `up` of the unchanged file changes nothing: `plan` and `up` report no changes,
/// and `daemons` (PID, name) are the lab's `names` processes still, none restarted.
pub fn assert_second_up_is_a_no_op(lab: &TestLab, names: &[&str], daemons: &[(String, String)]) {
    let plan = lab.plan();
    assert!(plan.contains("no changes"), "plan after up:\n{plan}");
    let out = lab.up();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no changes"),
        "second up:\n{}",
        text(&out)
    );
    assert_eq!(
        lab_daemons(&lab.name, names),
        daemons,
        "the daemons after a second up"
    );
}

/// Nothing of lab `name` is left after `down`: none of `pids` (PID, command name) runs (a
/// reused PID has another name), and no process in the lab's cgroups, named namespace, mount
/// of one, cgroup or run directory is left.
pub fn assert_lab_gone(name: &str, pids: &[(String, String)]) {
    for (pid, comm) in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            !stat.contains(&format!("({comm}) ")) || stat.contains(") Z"),
            "lab {name}: {comm} (PID {pid}) still runs after down: {stat}"
        );
    }
    let procs = lab_processes(name);
    assert!(procs.is_empty(), "lab {name}: processes left: {procs:?}");
    let netns: Vec<String> = [format!("{name}-"), format!("{name}.")]
        .iter()
        .flat_map(|p| netns_with_prefix(p))
        .collect();
    assert!(netns.is_empty(), "lab {name}: namespaces left: {netns:?}");
    let mounts: Vec<String> = [format!("/run/netns/{name}-"), format!("/run/topo/{name}/")]
        .iter()
        .flat_map(|m| mounts_with(m))
        .collect();
    assert!(mounts.is_empty(), "lab {name}: mounts left: {mounts:?}");
    for hierarchy in ["", "pids", "memory", "cpu"] {
        let group = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("topo")
            .join(name);
        assert!(
            !group.exists(),
            "lab {name}: cgroup {} left",
            group.display()
        );
    }
    let run = Path::new("/run/topo").join(name);
    assert!(!run.exists(), "lab {name}: {} left", run.display());
}

/// Runs a command, which must succeed.
pub fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run a command");
    assert!(out.status.success(), "{argv:?}: {}", text(&out));
}

/// The UDP ports bound in namespace `ns` (`/proc/net/udp` and `udp6` read inside it).
pub fn udp_ports(ns: &str) -> Vec<u16> {
    let mut ports = udp_ports_of(ns, "udp");
    ports.extend(udp_ports_of(ns, "udp6"));
    ports.sort_unstable();
    ports
}

/// The UDP ports bound in namespace `ns` by sockets of one family (`/proc/net/FILE`).
pub fn udp_ports_of(ns: &str, file: &str) -> Vec<u16> {
    let out = netns_exec(ns, &["cat", &format!("/proc/net/{file}")]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|local| local.rsplit_once(':'))
        .filter_map(|(_, port)| u16::from_str_radix(port, 16).ok())
        .collect()
}

/// The abstract name of the exec socket of `node` in `lab` (under `/run/topo`).
pub fn exec_socket(lab: &str, node: &str) -> String {
    topo::exec_socket_name(&Path::new("/run/topo").join(lab), node).expect("an exec socket name")
}

/// Whether a socket listens on the abstract name of `node`'s exec socket in `lab`, in the
/// host's network namespace (this process's).
pub fn exec_socket_listens(lab: &str, node: &str) -> bool {
    let name = format!("@{}", exec_socket(lab, node));
    std::fs::read_to_string("/proc/net/unix")
        .expect("net/unix")
        .lines()
        .any(|l| l.split_whitespace().nth(7) == Some(name.as_str()))
}

/// The descriptors init `pid` of `node` in `lab` holds, read from the host and named for an
/// assertion, sorted: `null` for `/dev/null` (its standard streams), `exec socket` for a
/// listening socket on the abstract name of its exec socket (read from the host's
/// `/proc/net/unix`), `signalfd`; anything else as its link reads.
/// What [`init_fds`] shows of a default node's init: its standard streams on `/dev/null`,
/// its exec socket, its signalfd and its node's network namespace, which it holds from
/// outside it.
pub const INIT_FDS: [&str; 6] = [
    "exec socket",
    "its netns",
    "null",
    "null",
    "null",
    "signalfd",
];

pub fn init_fds(pid: &str, lab: &str, node: &str) -> Vec<String> {
    // A `topo exec` (the tests' own, to read a node's file) returns once its command has
    // ended, a moment before the init closes that command's connection: a socket other than
    // the exec socket is waited for to go (at most 5 s), and shown if it stays.
    let mut last = Vec::new();
    let _ = eventually(5, || {
        last = init_fds_now(pid, lab, node);
        (!last.iter().any(|f| f.starts_with("socket:"))).then_some(())
    });
    last
}

/// [`init_fds`] as they are at this moment.
fn init_fds_now(pid: &str, lab: &str, node: &str) -> Vec<String> {
    let exec_path = format!("@{}", exec_socket(lab, node));
    let unix = std::fs::read_to_string("/proc/net/unix").expect("net/unix");
    // Num RefCount Protocol Flags Type St Inode Path; flags 00010000: listening.
    let listening: Vec<String> = unix
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[3] == "00010000" && f[7] == exec_path)
                .then(|| format!("socket:[{}]", f[6]))
        })
        .collect();
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("init fds")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| {
            let p = p.to_string_lossy().into_owned();
            match p.as_str() {
                "/null" | "/dev/null" => "null".to_string(),
                "anon_inode:[signalfd]" => "signalfd".to_string(),
                s if listening.iter().any(|l| l == s) => "exec socket".to_string(),
                // The node's network namespace, which its init holds from outside it.
                s if s == format!("/run/netns/{lab}-{node}") => "its netns".to_string(),
                _ => p,
            }
        })
        .collect();
    fds.sort();
    fds
}

/// The inode of the network namespace of the node whose init is `pid`: the one the init holds
/// on descriptor 3, or else the one it is in.
pub fn node_net_inode(pid: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let nsfs = std::fs::metadata("/proc/self/ns/net")
        .expect("own netns")
        .dev();
    std::fs::metadata(format!("/proc/{pid}/fd/3"))
        .ok()
        .filter(|m| m.dev() == nsfs)
        .or_else(|| std::fs::metadata(format!("/proc/{pid}/ns/net")).ok())
        .expect("the init's node netns")
        .ino()
}
