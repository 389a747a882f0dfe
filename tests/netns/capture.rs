//! `topo capture`: real packets of a lab's links, read back from the pcapng it writes with
//! tcpdump (reading a file only) and with a pcapng parser.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

use crate::common::*;

/// Two nodes on one link, a:eth1 192.0.2.1 — b:eth1 192.0.2.2.
fn pair(name: &str) -> String {
    format!(
        "name: {name}\nnodes:\n  a:\n    interfaces: {{eth1: {{addresses: [192.0.2.1/30]}}}}\n  b:\n    interfaces: {{eth1: {{addresses: [192.0.2.2/30]}}}}\nlinks:\n  - endpoints: [a:eth1, b:eth1]\n"
    )
}

/// A running `topo capture`, killed (by its PID) and reaped if the test ends early.
struct Capturing {
    child: Child,
    stderr: BufReader<ChildStderr>,
}

impl Capturing {
    /// Starts `topo capture ARGS` and waits until it says it is capturing (its sockets are
    /// open), so that what the test sends next is captured.
    fn start(args: &[&str], stdout: Stdio) -> Capturing {
        let mut child = Command::new(TOPO)
            .arg("capture")
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("run topo capture");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("read stderr");
        assert!(line.contains("capturing"), "capture did not start: {line}");
        Capturing { child, stderr }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal topo capture");
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the end (at most 10 s): its exit status and the rest of its standard error.
    fn finish(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = self.child.try_wait().ok().flatten().and_then(|s| s.code());
        let mut rest = String::new();
        if status.is_some() {
            let _ = self.stderr.read_to_string(&mut rest);
        }
        (status, rest)
    }
}

impl Drop for Capturing {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One ping from a to b (true when answered).
fn ping_b(lab: &TestLab) -> bool {
    netns_exec(&lab.ns("a"), &["ping", "-c", "1", "-W", "1", "192.0.2.2"])
        .status
        .success()
}

/// The interface names and the packets (interface id, bytes) of a pcapng stream; panics on a
/// block that does not parse (a truncated or corrupt file).
fn parse(bytes: &[u8]) -> (Vec<String>, Vec<(u32, Vec<u8>)>) {
    let mut r = PcapNgReader::new(bytes).expect("a pcapng section header");
    let mut names = Vec::new();
    let mut packets = Vec::new();
    while let Some(block) = r.next_block() {
        match block.expect("a whole pcapng block") {
            Block::InterfaceDescription(i) => names.push(
                i.options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Block::EnhancedPacket(p) => packets.push((p.interface_id, p.data.to_vec())),
            _ => {}
        }
    }
    (names, packets)
}

/// The packets in the whole blocks at the start of a pcapng stream that may end inside a
/// block (0 before the section header is whole).
fn whole_packets(bytes: &[u8]) -> usize {
    let Ok(mut r) = PcapNgReader::new(bytes) else {
        return 0;
    };
    let mut n = 0;
    while let Some(Ok(block)) = r.next_block() {
        if matches!(block, Block::EnhancedPacket(_)) {
            n += 1;
        }
    }
    n
}

/// `tcpdump -r FILE -nn`: what tcpdump reads in the file.
fn tcpdump_read(file: &Path) -> String {
    let out = Command::new("tcpdump")
        .args(["-r", path(file), "-nn"])
        .output()
        .expect("run tcpdump -r");
    assert!(out.status.success(), "tcpdump -r failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn capture_with_a_count_records_the_echo_request_and_reply_of_a_ping() {
    let lab = TestLab::new("cap-count", &pair("cap-count"));
    lab.up();
    let file = lab.dir.join("a.pcapng");
    let mut cap = Capturing::start(
        &["--lab", "cap-count", "a:eth1", "-w", path(&file), "-c", "6"],
        Stdio::null(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while cap.running() && Instant::now() < deadline {
        ping_b(&lab);
    }
    let (status, stderr) = cap.finish();
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.contains("a:eth1: 6 packets"), "{stderr}");
    let dump = tcpdump_read(&file);
    assert!(
        dump.contains("192.0.2.1 > 192.0.2.2: ICMP echo request"),
        "{dump}"
    );
    assert!(
        dump.contains("192.0.2.2 > 192.0.2.1: ICMP echo reply"),
        "{dump}"
    );
    let (names, packets) = parse(&std::fs::read(&file).expect("read the capture"));
    assert_eq!(names, ["a:eth1"]);
    assert_eq!(packets.len(), 6, "exactly the count");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn two_endpoints_give_two_named_interfaces_with_packets_of_each() {
    let lab = TestLab::new("cap-two", &pair("cap-two"));
    lab.up();
    let file = lab.dir.join("two.pcapng");
    let mut cap = Capturing::start(
        &["--lab", "cap-two", "a:eth1,b:eth1", "-w", path(&file)],
        Stdio::null(),
    );
    assert!(ping_b(&lab), "a reaches b");
    // The last packet is read and written by the capture's thread a moment later.
    std::thread::sleep(Duration::from_millis(300));
    cap.signal(nix::sys::signal::Signal::SIGINT);
    let (status, stderr) = cap.finish();
    assert_eq!(status, Some(0), "{stderr}");
    let (names, packets) = parse(&std::fs::read(&file).expect("read the capture"));
    assert_eq!(names, ["a:eth1", "b:eth1"]);
    for iface in [0, 1] {
        assert!(
            packets.iter().any(|(i, _)| *i == iface),
            "packets of {}: {packets:?}",
            names[iface as usize]
        );
    }
    assert!(
        stderr.contains("a:eth1: ") && stderr.contains("b:eth1: "),
        "{stderr}"
    );
    let dump = tcpdump_read(&file);
    assert_eq!(
        dump.matches("192.0.2.1 > 192.0.2.2: ICMP echo request")
            .count(),
        2,
        "the request leaves a:eth1 and enters b:eth1: {dump}"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn standard_output_streams_packets_while_the_capture_runs() {
    let lab = TestLab::new("cap-pipe", &pair("cap-pipe"));
    lab.up();
    let mut cap = Capturing::start(&["--lab", "cap-pipe", "a:eth1", "-w", "-"], Stdio::piped());
    let mut stdout = cap.child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    assert!(ping_b(&lab), "a reaches b");
    let mut bytes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while seen == 0 && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            // The stream so far may end inside a block: count the whole packets before it.
            Ok(chunk) => {
                bytes.extend(chunk);
                seen = whole_packets(&bytes);
            }
            // Nothing yet (the capture may have started after the first ping): ping again.
            Err(_) => {
                ping_b(&lab);
            }
        }
    }
    assert!(
        seen > 0,
        "no packet on standard output ({} bytes)",
        bytes.len()
    );
    assert!(cap.running(), "packets came while the capture runs");
    cap.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, stderr) = cap.finish();
    assert_eq!(status, Some(0), "{stderr}");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn sigterm_ends_the_capture_with_a_whole_file() {
    let lab = TestLab::new("cap-term", &pair("cap-term"));
    lab.up();
    let file = lab.dir.join("term.pcapng");
    let mut cap = Capturing::start(
        &["--lab", "cap-term", "b:eth1", "-w", path(&file)],
        Stdio::null(),
    );
    assert!(ping_b(&lab), "a reaches b");
    std::thread::sleep(Duration::from_millis(300));
    cap.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, stderr) = cap.finish();
    assert_eq!(status, Some(0), "{stderr}");
    let (names, packets) = parse(&std::fs::read(&file).expect("read the capture"));
    assert_eq!(names, ["b:eth1"]);
    assert!(
        stderr.contains(&format!("b:eth1: {} packets", packets.len())),
        "{stderr}"
    );
    assert!(
        tcpdump_read(&file).contains("192.0.2.2 > 192.0.2.1: ICMP echo reply"),
        "the reply leaves b:eth1"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn an_unknown_interface_is_exit_2_listing_the_nodes_interfaces_and_writes_nothing() {
    let lab = TestLab::new("cap-typo", &pair("cap-typo"));
    lab.up();
    let file = lab.dir.join("typo.pcapng");
    let out = topo(&["capture", "--lab", "cap-typo", "a:eht1", "-w", path(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a:eht1: no such interface") && stderr.contains("eth1, lo"),
        "{stderr}"
    );
    assert!(!file.exists(), "no file is created");
    let out = topo(&["capture", "--lab", "cap-typo", "c:eth1", "-w", path(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!file.exists(), "no file is created");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn down_ends_a_running_capture_and_leaves_no_namespace() {
    let lab = TestLab::new("cap-down", &pair("cap-down"));
    lab.up();
    let file = lab.dir.join("down.pcapng");
    let mut cap = Capturing::start(
        &["--lab", "cap-down", "a:eth1,b:eth1", "-w", path(&file)],
        Stdio::null(),
    );
    let out = lab.down();
    assert!(out.status.success(), "{}", text(&out));
    let (status, stderr) = cap.finish();
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.contains("topo: note: a:eth1"), "{stderr}");
    parse(&std::fs::read(&file).expect("read the capture"));
    assert!(netns_with_prefix("cap-down-").is_empty());
}
