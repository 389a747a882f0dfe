//! Conversion of each field, the warnings, and the fixtures: every converted file goes back
//! through `topo`'s own parser and validator.

use std::path::{Path, PathBuf};

use super::*;
use crate::spec::{self, Topology};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(rel)
}

/// Every host path is reachable: the tests do not depend on the host's tree.
fn anywhere(_: &Path) -> bool {
    true
}

fn valid(out: &Imported) -> Topology {
    match spec::parse_str(&out.yaml, Path::new("converted.yaml")) {
        Ok(t) => t,
        Err(d) => panic!("converted file is not valid:\n{d}\n---\n{}", out.yaml),
    }
}

fn clab(src: &str) -> Imported {
    match containerlab::import(src, Path::new("lab.clab.yml"), None, &anywhere) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

fn warned<'a>(out: &'a Imported, field: &str) -> &'a Warning {
    out.warnings
        .iter()
        .find(|w| w.field == field)
        .unwrap_or_else(|| panic!("no warning about {field}: {:#?}", out.warnings))
}

#[test]
fn containerlab_fields_convert() {
    let out = clab(
        "name: t1\ntopology:\n  defaults:\n    env: {A: '1', B: two}\n  nodes:\n    a:\n      kind: linux\n      \
         env: {B: three}\n      binds: ['cfg:/etc/cfg:ro', '/srv/x:/srv/x']\n      \
         sysctls: {net.ipv4.ip_forward: 1, kernel.pid_max: 100}\n      memory: 1Gb\n      cpu: 1.5\n      \
         exec: ['ip addr add 10.0.0.1/24 dev eth1', 'touch /tmp/ok']\n    b: {kind: linux}\n    \
         br0: {kind: bridge}\n    c: {}\n    d: {}\n  links:\n    - endpoints: ['a:eth1', 'b:eth1']\n      mtu: 9000\n    \
         - endpoints: ['c:eth1', 'br0:p1']\n    - endpoints: ['d:eth1', 'br0:p2']\n    \
         - endpoints: ['b:eth2', 'host:imp-v1']\n",
    );
    let t = valid(&out);
    assert_eq!(t.name, "t1");
    let a = &t.nodes["a"];
    assert_eq!(a.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(a.env.get("B").map(String::as_str), Some("three"));
    assert_eq!(a.binds.len(), 2, "{}", out.yaml);
    assert!(out.yaml.contains("./cfg:/etc/cfg:ro"), "{}", out.yaml);
    assert!(out.yaml.contains("/srv/x:/srv/x"), "{}", out.yaml);
    assert_eq!(a.sysctls.len(), 1);
    assert!(out.yaml.contains("memory: 1Gi"), "{}", out.yaml);
    assert!(out.yaml.contains("cpu: 1.5"), "{}", out.yaml);
    assert_eq!(a.exec, ["touch /tmp/ok"]);
    assert!(out.yaml.contains("10.0.0.1/24"), "{}", out.yaml);
    assert_eq!(t.links.len(), 2);
    assert_eq!(t.links[0].mtu, Some(9000));
    assert!(out.yaml.contains("host:imp-v1"), "{}", out.yaml);
    assert_eq!(t.bridges.len(), 1);
    assert_eq!(t.bridges["br0"].members.len(), 2);
    let w = warned(&out, "topology.nodes.a.sysctls.kernel.pid_max");
    assert_eq!(w.pos, Some((10, 41)), "{w}");
}

#[test]
fn containerlab_warnings_name_field_and_reason() {
    let out = clab(
        "name: t2\nmgmt: {network: x}\ntopology:\n  groups:\n    g: {kind: srl, image: ghcr.io/nokia/srlinux}\n  \
         nodes:\n    a: {group: g, mgmt-ipv4: 172.20.0.2, ports: ['80:80'], startup-config: a.cfg}\n    \
         b: {group: g}\n  links:\n    - endpoints: ['a:e1-1', 'mgmt-net:a-e1']\n    \
         - type: vxlan\n      endpoint: {node: b, interface: e1-1}\n",
    );
    valid(&out);
    assert!(warned(&out, "mgmt").message.contains("management network"));
    // A group's image is one warning, however many nodes take the group.
    let image: Vec<_> = out
        .warnings
        .iter()
        .filter(|w| w.field == "topology.groups.g.image")
        .collect();
    assert_eq!(image.len(), 1, "{:#?}", out.warnings);
    assert!(image[0].message.contains("rootfs"), "{}", image[0]);
    assert!(warned(&out, "topology.groups.g.kind")
        .message
        .contains("kind 'srl'"));
    assert!(warned(&out, "topology.nodes.a.mgmt-ipv4")
        .message
        .contains("management"));
    assert!(warned(&out, "topology.nodes.a.ports")
        .message
        .contains("ports"));
    assert!(warned(&out, "topology.nodes.a.startup-config")
        .message
        .contains("a.cfg"));
    assert!(warned(&out, "topology.links").message.contains("mgmt-net"));
    assert!(warned(&out, "topology.links[2]").message.contains("vxlan"));
    let shown = warned(&out, "mgmt").to_string();
    assert_eq!(
        shown.split(": warning:").next(),
        Some("lab.clab.yml:2:1"),
        "{shown}"
    );
}

#[test]
fn containerlab_invalid_input_gives_a_position() {
    let bad = |src: &str| {
        containerlab::import(src, Path::new("x.clab.yml"), None, &anywhere)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = bad("name: x\ntopology:\n  nodes: [a\n");
    assert!(e.starts_with("x.clab.yml:"), "{e}");
    assert!(e.contains("error:"), "{e}");
    let e = bad("name: x\n");
    assert!(e.contains("missing key 'topology'"), "{e}");
    let e = bad(
        "name: x\ntopology:\n  nodes: {a: {}}\n  links:\n    - endpoints: ['a:eth1', 'z:eth1']\n",
    );
    assert!(e.starts_with("x.clab.yml:5:"), "{e}");
    assert!(e.contains("unknown node 'z'"), "{e}");
    let named = containerlab::import(
        "name: x\ntopology: {nodes: {}}\n",
        Path::new("x.clab.yml"),
        Some("Bad Name"),
        &anywhere,
    );
    assert!(named.is_err());
}

#[test]
fn unreachable_bind_targets_are_warned_not_bound() {
    let none = |_: &Path| false;
    let out = containerlab::import(
        "name: t3\ntopology:\n  nodes:\n    a: {binds: ['x:/etc/frr/daemons', 'y:/tmp/y']}\n",
        Path::new("l.clab.yml"),
        None,
        &none,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&out);
    assert_eq!(t.nodes["a"].binds.len(), 1);
    assert!(warned(&out, "topology.nodes.a.binds")
        .message
        .contains("/etc/frr/daemons"));
}

#[test]
fn containerlab_fixture_converts_and_validates() {
    let path = fixture("clab-frr/frr.clab.yml");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = containerlab::import(&src, &path, Some("imp-frr"), &anywhere)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&out);
    assert_eq!(t.name, "imp-frr");
    assert_eq!(t.nodes.len(), 6);
    assert_eq!(t.links.len(), 6);
    let pc1 = &t.nodes["pc1"];
    assert_eq!(pc1.routes.len(), 2);
    assert!(pc1.exec.is_empty(), "{:?}", pc1.exec);
    assert!(warned(&out, "topology.groups.routers.image")
        .message
        .contains("quay.io/frrouting/frr"));
    warned(&out, "topology.nodes.PC1");
}

#[test]
fn kathara_fixture_converts_and_validates() {
    let out =
        kathara::import(&fixture("kathara-lan"), None, &anywhere).unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&out);
    assert_eq!(t.name, "kathara-lan");
    assert_eq!(t.links.len(), 1, "domain A: two members, a link");
    assert_eq!(t.bridges["B"].members.len(), 3, "domain B: three, a bridge");
    let r1 = &t.nodes["r1"];
    assert_eq!(r1.interfaces["eth1"].addresses.len(), 1);
    assert!(r1.exec.is_empty(), "{:?}", r1.exec);
    assert_eq!(r1.binds.len(), 1, "{:?}", r1.binds);
    assert_eq!(t.nodes["pc1"].routes.len(), 1);
    assert!(out.yaml.contains("memory: 64Mi"), "{}", out.yaml);
    assert_eq!(t.nodes["pc3"].exec[0], "echo pc3 is up");
    let image = warned(&out, "r1[image]");
    assert_eq!(image.pos, Some((7, 11)));
    assert!(warned(&out, "r1[bridged]").message.contains("NAT"));
}

#[test]
fn kathara_lab_conf_errors_have_line_and_column() {
    let dir = std::env::temp_dir().join(format!("topo-import-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("lab.conf"), "a[0]=A\n  b[0=A\n").unwrap_or_else(|e| panic!("{e}"));
    let e = kathara::import(&dir, Some("imp-k"), &anywhere)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    std::fs::write(dir.join("lab.conf"), "a[0]=\"A B\"\n").unwrap_or_else(|e| panic!("{e}"));
    let e2 = kathara::import(&dir, Some("imp-k"), &anywhere)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let missing = kathara::import(&dir.join("nope"), Some("imp-k"), &anywhere).is_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(e.contains("lab.conf:2:3: error:"), "{e}");
    assert!(
        e2.contains("lab.conf:1:6: error: invalid collision domain"),
        "{e2}"
    );
    assert!(missing);
}

#[test]
fn kathara_options_convert_or_warn() {
    let dir = std::env::temp_dir().join(format!("topo-import-opts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("lab.conf"),
        "a[0]=A\na[ipv6]=false\na[sysctl]=kernel.x=1\na[port]=8080\na[0]=A\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dup = kathara::import(&dir, Some("imp-k"), &anywhere);
    std::fs::write(
        dir.join("lab.conf"),
        "a[0]=A\na[ipv6]=false\na[sysctl]=kernel.x=1\na[port]=8080\na[shell]=/bin/bash\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = kathara::import(&dir, Some("imp-k"), &anywhere);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(dup.is_err(), "a[0] twice");
    let out = out.unwrap_or_else(|e| panic!("{e}"));
    let t = valid(&out);
    // One member: a bridge of one.
    assert_eq!(t.bridges["A"].members.len(), 1);
    assert!(
        out.yaml.contains("net.ipv6.conf.all.disable_ipv6: 1"),
        "{}",
        out.yaml
    );
    assert!(warned(&out, "a[sysctl]").message.contains("net.*"));
    assert!(warned(&out, "a[port]").message.contains("ports"));
    assert!(warned(&out, "a[shell]").message.contains("shell"));
}

#[test]
fn names_and_units() {
    assert_eq!(
        lab_name_from("My_Lab.Example-01").as_deref(),
        Some("my-lab-examp")
    );
    assert_eq!(lab_name_from("___"), None);
    assert_eq!(node_name_from("PC1"), "pc1");
    assert_eq!(node_name_from("host"), "n-host");
    assert_eq!(docker_memory("512m").as_deref(), Some("512Mi"));
    assert_eq!(docker_memory("1Gb").as_deref(), Some("1Gi"));
    assert_eq!(docker_memory("1.5GB").as_deref(), Some("1536Mi"));
    assert_eq!(docker_memory("lots"), None);
    assert_eq!(cpu_count("2").as_deref(), Some("2.0"));
    assert_eq!(cpu_count("-1"), None);
}
