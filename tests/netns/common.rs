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

    /// `topo down`; a lab that is not up (a test brought it down, or `up` made nothing) is
    /// no error.
    pub fn down(&self) -> Output {
        topo(&["down", "--lab", &self.name, "--missing-ok"])
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
