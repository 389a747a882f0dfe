//! What a large lab needs from the host: more open files than the usual soft limit, and
//! node inits that hold nothing of each other.

use std::process::Command;

use crate::common::*;

/// Runs topo under a soft open-file limit of `soft` (the hard limit stays).
fn topo_with_nofile(soft: u32, args: &[&str]) -> std::process::Output {
    let script = format!("ulimit -Sn {soft} && exec \"$0\" \"$@\"");
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(TOPO)
        .args(args)
        .output()
        .expect("run topo under sh")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn a_lab_needing_more_files_than_the_soft_limit_comes_up_and_nodes_keep_the_callers_limit() {
    // 150 namespaces: topo holds a namespace file and a netlink socket for each, over 256.
    let lab = TestLab::new("tn-nofile", &gen_chain("tn-nofile", 150, &["--bare"]));
    let out = topo_with_nofile(256, &["up", path(&lab.file)]);
    assert!(
        out.status.success(),
        "up under a soft limit of 256:\n{}",
        text(&out)
    );
    assert_eq!(netns_with_prefix("tn-nofile-").len(), 150);
    assert!(ping(&lab.ns("n0"), "10.0.0.1"), "n0 reaches n1");
    // What runs in a node gets the caller's limit back, not topo's raised one.
    let out = topo_with_nofile(
        256,
        &[
            "exec",
            "--lab",
            "tn-nofile",
            "n3",
            "--",
            "sh",
            "-c",
            "ulimit -Sn",
        ],
    );
    assert!(out.status.success(), "exec:\n{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "256");
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn node_inits_hold_no_descriptor_of_other_nodes_or_of_topo() {
    let lab = TestLab::new("tn-initfd", &gen_chain("tn-initfd", 6, &["--bare"]));
    lab.up();
    let inits = init_pids("tn-initfd");
    assert_eq!(inits.len(), 6);
    for (node, pid) in inits {
        // Standard input, output and error on /dev/null, and its own exec socket.
        assert_eq!(
            init_fds(&pid.to_string(), "tn-initfd", &node),
            INIT_FDS,
            "init {pid} of {node}"
        );
    }
    // A node taken out of the file takes its namespace with it: nothing else holds it, so
    // its neighbour's end of their link is gone too.
    let yaml = gen_chain("tn-initfd", 5, &["--bare"]);
    lab.rewrite(&yaml);
    lab.up();
    assert!(netns_with_prefix("tn-initfd-").len() == 5);
    let n4 = ip_json(Some(&lab.ns("n4")), &["link", "show"]);
    let names: Vec<&str> = n4
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(
        names,
        vec!["lo", "eth0"],
        "n4's link to the removed n5 is gone"
    );
}

/// The physical page frame behind the first anonymous page of the mapping of the `topo`
/// binary that holds the most anonymous memory in `pid` (its relocated read-only data,
/// which an init never writes): two inits show the same frame when they share that memory.
/// Pages of the mapping that no relocation wrote are the file's, shared by every process,
/// and skipped.
fn relocated_data_frame(pid: i64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut current, mut best) = (None, None::<(u64, (u64, u64))>);
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            {
                let file = line.split_whitespace().nth(5).unwrap_or("");
                current = file.ends_with("/topo-core").then_some((start, end));
                continue;
            }
        }
        if let (Some(range), Some(kb)) = (current, line.strip_prefix("Anonymous:")) {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().ok()?;
            if kb > best.map_or(0, |(k, _)| k) {
                best = Some((kb, range));
            }
        }
    }
    let (_, (start, end)) = best?;
    let mut pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).ok()?;
    pagemap.seek(SeekFrom::Start(start / 4096 * 8)).ok()?;
    (start / 4096..end / 4096).find_map(|_| {
        let mut entry = [0u8; 8];
        pagemap.read_exact(&mut entry).ok()?;
        let entry = u64::from_le_bytes(entry);
        // Bit 63: present; bit 61: a file page; bits 0–54: the frame (shown to root only).
        (entry >> 63 == 1 && (entry >> 61) & 1 == 0).then_some(entry & ((1 << 55) - 1))
    })
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn no_init_memory_is_shared_by_more_than_256_nodes() {
    // Past 256 nodes, inits come from another spawner: a page shared by every init of a
    // large lab would cost the kernel a walk over all of them each time reclaim or a memory
    // monitor checks it.
    const NODES: usize = 300;
    let lab = TestLab::new("tn-share", &gen_chain("tn-share", NODES, &["--bare"]));
    lab.up();
    let pids = init_pids("tn-share");
    assert_eq!(pids.len(), NODES);
    let mut sharing: std::collections::BTreeMap<u64, usize> = Default::default();
    for (_, pid) in &pids {
        let frame = relocated_data_frame(*pid)
            .unwrap_or_else(|| panic!("no relocated data page found in init {pid}"));
        *sharing.entry(frame).or_default() += 1;
    }
    assert!(
        sharing.values().all(|n| *n <= 256) && sharing.len() >= 2,
        "inits sharing each page of relocated data: {:?}",
        sharing.values().collect::<Vec<_>>()
    );
    let out = lab.down();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn every_spawner_gives_its_nodes_the_same_small_mount_table() {
    // Past 256 nodes a second spawner starts the inits, in the mount namespace the first
    // one prepared: the lab's hosts file bound once, and no network namespace mounts.
    const NODES: usize = 300;
    let lab = TestLab::new("tn-mnt", &gen_chain("tn-mnt", NODES, &["--bare"]));
    lab.up();
    let pids = init_pids("tn-mnt");
    assert_eq!(pids.len(), NODES);
    let mut sizes = std::collections::BTreeSet::new();
    for (node, pid) in &pids {
        let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap_or_else(|e| panic!("mountinfo of {node}: {e}"));
        let at = |point: &str| {
            table
                .lines()
                .filter(|l| l.split(' ').nth(4) == Some(point))
                .count()
        };
        assert_eq!(at("/etc/hosts"), 1, "{node}'s mounts:\n{table}");
        assert!(!table.contains("/run/netns"), "{node}'s mounts:\n{table}");
        sizes.insert(table.lines().count());
    }
    assert_eq!(sizes.len(), 1, "mount table sizes: {sizes:?}");
    let out = lab.down();
    assert!(out.status.success(), "{}", text(&out));
}
