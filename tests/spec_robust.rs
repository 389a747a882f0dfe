//! Robustness: no panic on mangled input, hostile shapes refused quickly, big labs fast.

use std::path::Path;
use std::time::{Duration, Instant};

use topo::spec;

/// A small deterministic generator (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    ":", "-", "[", "]", "{", "}", ",", "&a ", "*a", "\n", "  ", "'", "\"", "#", "!!str ", "~", "%",
    "/", "lo", "host", "default", "10.0.0.1", "::", "1e999", "-1", "\t", "é", "\\0", "<<: ",
    "group: ",
];

#[test]
fn mangled_files_never_panic() {
    mangle("triangle.yaml", 3000);
    mangle("groups.yaml", 1500);
}

/// Reads `rounds` random manglings of a good file.
fn mangle(name: &str, rounds: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/good");
    let base = std::fs::read_to_string(dir.join(name)).unwrap();
    let file = dir.join("fuzz.yaml");
    let mut rng = Lcg(42);
    for _ in 0..rounds {
        let mut text: Vec<char> = base.chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(text.len());
            match rng.below(3) {
                0 => {
                    text.remove(at);
                }
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    for (i, c) in piece.chars().enumerate() {
                        text.insert(at + i, c);
                    }
                }
                _ => {
                    let other = rng.below(text.len());
                    text.swap(at, other);
                }
            }
        }
        let src: String = text.into_iter().collect();
        // Ok or Err, but an answer; every diagnostic with a position and a hint.
        if let Err(diags) = spec::parse_str(&src, &file) {
            for d in diags.iter() {
                assert!(d.line >= 1 && d.column >= 1, "{d}\n---\n{src}");
                assert!(d.hint.is_some(), "{d}\n---\n{src}");
            }
        }
    }
}

fn refused_quickly(src: &str, needle: &str) {
    let start = Instant::now();
    let err = spec::parse_str(src, Path::new("hostile.yaml")).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn hostile_shapes_are_refused_quickly() {
    let deep = "[".repeat(1_000_000);
    refused_quickly(&format!("name: {deep}"), "nesting deeper");
    let mut block = String::from("name: x\n");
    for i in 0..200 {
        block.push_str(&format!("{}k:\n", " ".repeat(i)));
    }
    refused_quickly(&block, "nesting deeper");
    let big = format!("name: \"{}\"\n", "x".repeat(200_000));
    refused_quickly(&big, "longer than");
    let mut laughs =
        String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..20 {
        let p = if i == 1 {
            "a".to_string()
        } else {
            format!("a{}", i - 1)
        };
        let refs = vec![format!("*{p}"); 8].join(",");
        laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    refused_quickly(&laughs, "alias expansion too large");
    refused_quickly("&a [*a]", "yaml");
    // Odd Unicode: a combining accent and a right-to-left override in node names.
    refused_quickly(
        "name: lab\nnodes:\n  \"r\u{301}1\": {}\n",
        "invalid node name",
    );
    refused_quickly(
        "name: lab\nnodes:\n  \"\u{202e}ab\": {}\n",
        "invalid node name",
    );
    refused_quickly(
        &format!("name: lab\nnodes:\n  {}: {{}}\n", "n".repeat(100_000)),
        "longer than",
    );
}

/// A generated chain of 10 000 nodes (about 3 MiB) reads in well under a few seconds.
#[test]
fn big_chain_is_fast() {
    let n = 10_000;
    let mut src =
        String::from("name: chain\ndefaults: {sysctls: {net.ipv4.ip_forward: 1}}\nnodes:\n");
    for i in 0..n {
        let (a, b) = (i / 250, i % 250);
        src.push_str(&format!("  n{i}:\n    interfaces:\n"));
        if i > 0 {
            let (pa, pb) = ((i - 1) / 250, (i - 1) % 250);
            src.push_str(&format!("      left: {{addresses: [10.{pa}.{pb}.1/30]}}\n"));
        }
        if i + 1 < n {
            src.push_str(&format!("      right: {{addresses: [10.{a}.{b}.2/30]}}\n"));
            src.push_str(&format!(
                "    routes: [{{to: default, via: 10.{a}.{b}.1}}]\n"
            ));
        }
    }
    src.push_str("links:\n");
    for i in 0..n - 1 {
        src.push_str(&format!("  - endpoints: [n{i}:right, n{}:left]\n", i + 1));
    }
    let start = Instant::now();
    let topo = spec::parse_str(&src, Path::new("chain.yaml")).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(topo.nodes.len(), n);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    eprintln!("{} bytes in {elapsed:?}", src.len());
}

/// The same chain with every node in one group: laying the group under 10 000 nodes keeps
/// reading fast.
#[test]
fn big_chain_in_a_group_is_fast() {
    let n = 10_000;
    let mut src = String::from(
        "name: chain\ngroups:\n  r:\n    sysctls: {net.ipv4.ip_forward: 1}\n    \
         env: {ROLE: core, ZONE: a}\n    services: {zebra: zebra -d, bgpd: bgpd -d}\n    \
         limits: {memory: 64Mi, pids: 128}\n    binds: ['/etc/frr:/etc/frr:ro']\nnodes:\n",
    );
    for i in 0..n {
        let (a, b) = (i / 250, i % 250);
        src.push_str(&format!("  n{i}:\n    group: r\n    interfaces:\n"));
        if i > 0 {
            let (pa, pb) = ((i - 1) / 250, (i - 1) % 250);
            src.push_str(&format!("      left: {{addresses: [10.{pa}.{pb}.1/30]}}\n"));
        }
        if i + 1 < n {
            src.push_str(&format!("      right: {{addresses: [10.{a}.{b}.2/30]}}\n"));
            src.push_str(&format!(
                "    routes: [{{to: default, via: 10.{a}.{b}.1}}]\n"
            ));
        }
        if i % 2 == 0 {
            src.push_str("    env: {ZONE: b}\n");
        }
    }
    src.push_str("links:\n");
    for i in 0..n - 1 {
        src.push_str(&format!("  - endpoints: [n{i}:right, n{}:left]\n", i + 1));
    }
    let start = Instant::now();
    let topo = spec::parse_str(&src, Path::new("chain.yaml")).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(topo.nodes.len(), n);
    assert_eq!(topo.groups["r"].len(), n);
    let node = &topo.nodes["n4"];
    assert_eq!((node.services.len(), node.env["ZONE"].as_str()), (2, "b"));
    assert_eq!(topo.nodes["n5"].env["ZONE"], "a");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    eprintln!("{} bytes in {elapsed:?}", src.len());
}
