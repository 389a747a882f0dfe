//! Unit tests on fake cgroup trees in a temp dir (as Firecracker's jailer tests do), pure
//! detection tests, and one test against this host's kernel (root only).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::*;

const EXT4_MAGIC: i64 = 0xef53;
const MI: u64 = 1 << 20;

fn limits(memory: Option<u64>, pids: Option<u64>, cpu: Option<f64>) -> Limits {
    Limits {
        memory,
        pids,
        cpu,
        pids_default: false,
    }
}

fn full_limits() -> Limits {
    limits(Some(64 * MI), Some(16), Some(0.5))
}

// ---------------------------------------------------------------- detection (pure)

/// `classify` over a table of file system types and cgroup2 controller lists.
fn classify_table(
    types: &[(&str, i64)],
    controllers: &[(&str, &str)],
) -> Result<Layout, CgroupError> {
    let root = Path::new("/cg");
    let types: HashMap<PathBuf, i64> = types.iter().map(|(p, t)| (root.join(p), *t)).collect();
    let controllers: HashMap<PathBuf, Vec<String>> = controllers
        .iter()
        .map(|(p, c)| {
            (
                root.join(p),
                c.split_whitespace().map(String::from).collect(),
            )
        })
        .collect();
    classify(
        root,
        |p| types.get(p).copied(),
        |p| controllers.get(p).cloned().unwrap_or_default(),
    )
}

#[test]
fn cgroup2_root_is_unified_and_uses_offered_controllers() {
    let layout = classify_table(
        &[("", CGROUP2_SUPER_MAGIC)],
        &[("", "cpuset io memory pids")],
    )
    .unwrap();
    assert_eq!(layout.mode, Mode::Unified);
    assert_eq!(layout.unified.as_deref(), Some(Path::new("/cg")));
    assert_eq!(layout.memory, Placement::V2);
    assert_eq!(layout.pids, Placement::V2);
    assert_eq!(
        layout.cpu,
        Placement::Absent,
        "cpu is not in cgroup.controllers"
    );
}

#[test]
fn tmpfs_root_without_unified_is_legacy_and_finds_combined_cpu_cpuacct() {
    let layout = classify_table(
        &[
            ("", TMPFS_MAGIC),
            ("memory", CGROUP_SUPER_MAGIC),
            ("cpu,cpuacct", CGROUP_SUPER_MAGIC),
            ("pids", CGROUP_SUPER_MAGIC),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(layout.mode, Mode::Legacy);
    assert_eq!(layout.unified, None);
    assert_eq!(layout.memory, Placement::V1("/cg/memory".into()));
    assert_eq!(layout.cpu, Placement::V1("/cg/cpu,cpuacct".into()));
    assert_eq!(layout.pids, Placement::V1("/cg/pids".into()));
}

#[test]
fn hybrid_prefers_v1_and_falls_back_to_unified_for_the_rest() {
    let layout = classify_table(
        &[
            ("", TMPFS_MAGIC),
            ("memory", CGROUP_SUPER_MAGIC),
            ("cpu", CGROUP_SUPER_MAGIC),
            // A directory named like a hierarchy but not a cgroup mount does not count.
            ("pids", TMPFS_MAGIC),
            ("unified", CGROUP2_SUPER_MAGIC),
        ],
        // Unified offers memory too, but v1 holds it, so v1 wins.
        &[("unified", "memory pids")],
    )
    .unwrap();
    assert_eq!(layout.mode, Mode::Hybrid);
    assert_eq!(layout.unified.as_deref(), Some(Path::new("/cg/unified")));
    assert_eq!(layout.memory, Placement::V1("/cg/memory".into()));
    assert_eq!(layout.cpu, Placement::V1("/cg/cpu".into()));
    assert_eq!(layout.pids, Placement::V2);
}

#[test]
fn hybrid_with_every_controller_on_v1_like_this_host() {
    let layout = classify_table(
        &[
            ("", TMPFS_MAGIC),
            ("memory", CGROUP_SUPER_MAGIC),
            ("cpu", CGROUP_SUPER_MAGIC),
            ("pids", CGROUP_SUPER_MAGIC),
            ("unified", CGROUP2_SUPER_MAGIC),
        ],
        &[("unified", "hugetlb")],
    )
    .unwrap();
    assert_eq!(layout.mode, Mode::Hybrid);
    for c in Controller::ALL {
        assert!(matches!(layout.placement(c), Placement::V1(_)), "{c}");
    }
}

#[test]
fn root_that_is_not_a_cgroup_fs_is_refused() {
    let err = classify_table(&[("", EXT4_MAGIC)], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::NotCgroupFs {
                magic: EXT4_MAGIC,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0xef53"), "{err}");
    let err = classify_table(&[], &[]).unwrap_err();
    assert!(matches!(err, CgroupError::NoCgroupFs { .. }), "{err}");
}

// ---------------------------------------------------------------- fake trees

/// A fake cgroup root in a temp dir: directories and pre-created control files stand in for
/// the kernel's; `types` plays statfs. Removed on drop.
struct FakeRoot {
    dir: PathBuf,
    types: HashMap<PathBuf, i64>,
}

impl FakeRoot {
    fn new(name: &str) -> FakeRoot {
        let dir = std::env::temp_dir().join(format!("topo-cgroup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        FakeRoot {
            dir,
            types: HashMap::new(),
        }
    }

    /// A mount (`""` for the root) of the given type, with control files.
    fn mount(mut self, rel: &str, magic: i64, files: &[(&str, &str)]) -> FakeRoot {
        let at = self.dir.join(rel);
        std::fs::create_dir_all(&at).unwrap();
        for (name, content) in files {
            std::fs::write(at.join(name), content).unwrap();
        }
        self.types.insert(at, magic);
        self
    }

    /// A pure v2 host: the root offers and delegates `delegated`.
    fn v2(name: &str, offered: &str, delegated: &str) -> FakeRoot {
        FakeRoot::new(name).mount(
            "",
            CGROUP2_SUPER_MAGIC,
            &[
                ("cgroup.controllers", offered),
                ("cgroup.subtree_control", delegated),
                ("cgroup.procs", "1\n"),
                ("memory.stat", ""),
            ],
        )
    }

    /// A v1 host with memory, `cpu,cpuacct` and pids hierarchies.
    fn v1(name: &str) -> FakeRoot {
        FakeRoot::new(name)
            .mount("", TMPFS_MAGIC, &[])
            .mount(
                "memory",
                CGROUP_SUPER_MAGIC,
                &[
                    ("cgroup.procs", "1\n"),
                    ("memory.limit_in_bytes", "9223372036854771712"),
                ],
            )
            .mount(
                "cpu,cpuacct",
                CGROUP_SUPER_MAGIC,
                &[("cgroup.procs", "1\n"), ("cpu.cfs_quota_us", "-1")],
            )
            .mount("pids", CGROUP_SUPER_MAGIC, &[("cgroup.procs", "1\n")])
    }

    fn cgroups(&self) -> Cgroups {
        let types = self.types.clone();
        Cgroups::fake(&self.dir, move |p| {
            types.get(p).copied().or(Some(EXT4_MAGIC))
        })
        .unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Every file (with its content) and directory outside any `topo` group.
    fn outside_topo(&self) -> BTreeMap<PathBuf, Option<String>> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Option<String>>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.file_name().is_some_and(|n| n == TOPO_GROUP) {
                    continue;
                }
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                if p.is_dir() {
                    out.insert(rel, None);
                    walk(&p, base, out);
                } else {
                    out.insert(rel, Some(std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir, &self.dir, &mut out);
        out
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- v2

#[test]
fn v2_create_writes_limits_and_enables_controllers_only_under_topo() {
    let fake = FakeRoot::v2(
        "v2-create",
        "cpuset cpu io memory pids",
        "cpu io memory pids",
    );
    let before = fake.outside_topo();
    let node = fake.cgroups().create("lab1", "r1", &full_limits()).unwrap();

    assert_eq!(
        fake.read("topo/cgroup.subtree_control"),
        "+memory +cpu +pids"
    );
    assert_eq!(
        fake.read("topo/lab1/cgroup.subtree_control"),
        "+memory +cpu +pids"
    );
    assert_eq!(fake.read("topo/lab1/r1/memory.max"), "67108864");
    assert_eq!(fake.read("topo/lab1/r1/pids.max"), "16");
    assert_eq!(fake.read("topo/lab1/r1/cpu.max"), "50000 100000");
    assert!(
        !fake.exists("topo/lab1/r1/memory.swap.max"),
        "swap.max is only written where the kernel has it"
    );
    assert!(
        !fake.exists("topo/lab1/r1/cgroup.subtree_control"),
        "a node enables nothing"
    );
    assert_eq!(node.paths(), [fake.path("topo/lab1/r1")]);
    assert_eq!(
        fake.outside_topo(),
        before,
        "nothing outside topo/ is written"
    );
}

#[test]
fn v2_memory_limit_turns_swap_off_where_swap_is_accounted() {
    let fake = FakeRoot::v2("v2-swap", "memory pids", "memory pids");
    fake.write("topo/lab1/r1/memory.swap.max", "max");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &limits(Some(64 * MI), None, None))
        .unwrap();
    assert_eq!(fake.read("topo/lab1/r1/memory.swap.max"), "0");
}

#[test]
fn v2_recreate_rewrites_limits_and_removed_limits_become_max() {
    let fake = FakeRoot::v2("v2-again", "cpu memory pids", "cpu memory pids");
    fake.write("topo/lab1/r1/memory.swap.max", "max");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &full_limits()).unwrap();
    cg.create("lab1", "r1", &limits(Some(128 * MI), None, None))
        .unwrap();
    assert_eq!(fake.read("topo/lab1/r1/memory.max"), "134217728");
    assert_eq!(fake.read("topo/lab1/r1/pids.max"), "max");
    assert_eq!(fake.read("topo/lab1/r1/cpu.max"), "max 100000");
    cg.create("lab1", "r1", &Limits::default()).unwrap();
    assert_eq!(fake.read("topo/lab1/r1/memory.max"), "max");
    assert_eq!(fake.read("topo/lab1/r1/memory.swap.max"), "max");
}

#[test]
fn v2_without_limits_creates_the_group_for_accounting_and_writes_no_limit() {
    let fake = FakeRoot::v2("v2-nolimits", "cpu memory pids", "cpu memory pids");
    fake.cgroups()
        .create("lab1", "r1", &Limits::default())
        .unwrap();
    assert!(fake.path("topo/lab1/r1").is_dir());
    // No node of the lab limits memory: no memory cgroups (each costs the kernel O(N)).
    assert_eq!(fake.read("topo/lab1/cgroup.subtree_control"), "+cpu +pids");
    for file in ["memory.max", "pids.max", "cpu.max"] {
        assert!(
            !fake.exists(&format!("topo/lab1/r1/{file}")),
            "{file} written"
        );
    }
}

#[test]
fn v2_memory_is_enabled_for_the_lab_once_a_node_limits_it_and_stays() {
    let fake = FakeRoot::v2("v2-lazymem", "cpu memory pids", "cpu memory pids");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &Limits::default()).unwrap();
    cg.create("lab1", "r2", &limits(Some(64 << 20), None, None))
        .unwrap();
    assert_eq!(
        fake.read("topo/lab1/cgroup.subtree_control"),
        "+memory +cpu +pids"
    );
    assert_eq!(fake.read("topo/lab1/r2/memory.max"), "67108864");
    // Another node of the same lab, without a limit, keeps the lab's memory controller.
    fake.write("topo/lab1/cgroup.subtree_control", "cpu memory pids");
    cg.create("lab1", "r3", &Limits::default()).unwrap();
    assert_eq!(
        fake.read("topo/lab1/cgroup.subtree_control"),
        "+memory +cpu +pids"
    );
    // Another lab without memory limits does not get it.
    cg.create("lab2", "r1", &Limits::default()).unwrap();
    assert_eq!(fake.read("topo/lab2/cgroup.subtree_control"), "+cpu +pids");
}

#[test]
fn v1_memory_and_cpu_groups_only_for_a_node_that_limits_them_or_did() {
    let fake = FakeRoot::v1("v1-lazy");
    let cg = fake.cgroups();
    let plain = cg.create("lab1", "r1", &Limits::default()).unwrap();
    assert!(!fake.exists("memory/topo/lab1/r1"));
    assert!(!fake.exists("cpu,cpuacct/topo/lab1/r1"));
    assert_eq!(plain.paths(), [fake.path("pids/topo/lab1/r1")]);
    assert_eq!(cg.usage("lab1", "r1").memory_bytes, None);
    assert_eq!(cg.limits_in_kernel("lab1", "r1"), Limits::default());
    // A CPU limit added later makes that group only.
    let cpu = cg
        .create("lab1", "r1", &limits(None, None, Some(0.5)))
        .unwrap();
    assert_eq!(cpu.paths().len(), 2);
    assert_eq!(
        fake.read("cpu,cpuacct/topo/lab1/r1/cpu.cfs_quota_us"),
        "50000"
    );
    assert!(!fake.exists("memory/topo/lab1/r1"));
    // A memory limit makes the third; removed again, both groups stay, unlimited.
    let limited = cg
        .create("lab1", "r1", &limits(Some(64 << 20), None, None))
        .unwrap();
    assert_eq!(limited.paths().len(), 3);
    assert_eq!(
        fake.read("memory/topo/lab1/r1/memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(fake.read("cpu,cpuacct/topo/lab1/r1/cpu.cfs_quota_us"), "-1");
    let again = cg.create("lab1", "r1", &Limits::default()).unwrap();
    assert_eq!(again.paths().len(), 3);
    assert_eq!(fake.read("memory/topo/lab1/r1/memory.limit_in_bytes"), "-1");
    // Another node without limits still gets its pids group only.
    let other = cg.create("lab1", "r2", &Limits::default()).unwrap();
    assert_eq!(other.paths(), [fake.path("pids/topo/lab1/r2")]);
    cg.remove_lab("lab1").unwrap();
    assert!(!fake.exists("memory/topo"));
    assert!(!fake.exists("cpu,cpuacct/topo"));
}

#[test]
fn v2_limit_on_a_controller_the_root_does_not_delegate_names_it() {
    let fake = FakeRoot::v2("v2-nodelegate", "cpu memory pids", "memory pids");
    let before = fake.outside_topo();
    let cg = fake.cgroups();
    let err = cg.create("lab1", "r1", &full_limits()).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::NotDelegated {
                controller: Controller::Cpu,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cpu cgroup controller"), "{err}");
    assert!(!fake.exists("topo"), "nothing is made before the refusal");

    // Without a cpu limit the group is made with what the root does delegate.
    cg.create("lab1", "r1", &limits(Some(64 * MI), Some(16), None))
        .unwrap();
    assert_eq!(fake.read("topo/cgroup.subtree_control"), "+memory +pids");
    assert_eq!(fake.outside_topo(), before);
}

#[test]
fn limit_on_a_controller_the_kernel_lacks_is_refused() {
    let fake = FakeRoot::v2("v2-missing", "cpu memory", "cpu memory");
    let err = fake
        .cgroups()
        .create("lab1", "r1", &limits(None, Some(16), None))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::ControllerMissing {
                controller: Controller::Pids
            }
        ),
        "{err}"
    );
    assert!(!fake.exists("topo"));
}

#[test]
fn names_that_would_leave_topo_are_refused() {
    let fake = FakeRoot::v2("v2-names", "memory", "memory");
    let cg = fake.cgroups();
    for (lab, node) in [("..", "r1"), ("lab1", "../../x"), ("", "r1"), ("lab1", ".")] {
        let err = cg.create(lab, node, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{lab}/{node}: {err}"
        );
        assert!(cg.remove(lab, node).is_err());
    }
    assert!(!fake.exists("topo"));
}

#[test]
fn add_writes_the_pid_and_add_self_writes_zero_in_every_group() {
    let fake = FakeRoot::v1("v1-add");
    let node = fake.cgroups().create("lab1", "r1", &full_limits()).unwrap();
    assert_eq!(node.paths().len(), 3);
    node.add(4242).unwrap();
    for p in node.paths() {
        assert_eq!(
            std::fs::read_to_string(p.join("cgroup.procs")).unwrap(),
            "4242"
        );
    }
    node.add_self().unwrap();
    for p in node.paths() {
        assert_eq!(
            std::fs::read_to_string(p.join("cgroup.procs")).unwrap(),
            "0"
        );
    }
    assert!(node.add(-1).is_err());
}

#[test]
fn remove_deletes_exactly_the_groups_it_made() {
    let fake = FakeRoot::v2("v2-remove", "cpu memory pids", "cpu memory pids");
    let before = fake.outside_topo();
    let cg = fake.cgroups();
    for (lab, node) in [("a", "n1"), ("a", "n2"), ("b", "n1")] {
        cg.create(lab, node, &full_limits()).unwrap();
    }
    assert_eq!(cg.labs_nodes("a"), ["n1", "n2"]);

    cg.remove("a", "n1").unwrap();
    assert!(!fake.exists("topo/a/n1"));
    assert!(fake.exists("topo/a/n2") && fake.exists("topo/b/n1"));
    cg.remove("a", "n1").unwrap(); // already gone: fine

    cg.remove_lab("a").unwrap();
    assert!(!fake.exists("topo/a"));
    assert!(fake.exists("topo/b/n1"), "another lab's groups stay");
    assert_eq!(
        fake.read("topo/cgroup.subtree_control"),
        "+memory +cpu +pids"
    );
    assert!(cg.labs_nodes("a").is_empty());

    cg.remove_lab("b").unwrap();
    assert!(
        !fake.exists("topo"),
        "the topo group goes with the last lab"
    );
    assert_eq!(fake.outside_topo(), before);
    cg.remove_lab("b").unwrap();
}

#[test]
fn remove_refuses_a_group_with_children_it_did_not_make() {
    let fake = FakeRoot::v2("v2-busy", "memory", "memory");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &Limits::default()).unwrap();
    // Someone nested a group inside ours: cgroupfs says EBUSY; never delete it.
    fake.write("topo/lab1/r1/inner/cgroup.procs", "");
    let err = cg.remove("lab1", "r1").unwrap_err();
    assert_eq!(err.errno(), Some(libc::EBUSY), "{err}");
    assert!(fake.exists("topo/lab1/r1/inner/cgroup.procs"));
}

#[test]
fn v2_usage_and_limits_read_back_from_the_files() {
    let fake = FakeRoot::v2("v2-read", "cpu memory pids", "cpu memory pids");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &full_limits()).unwrap();
    fake.write("topo/lab1/r1/memory.current", "1234\n");
    fake.write("topo/lab1/r1/pids.current", "3\n");
    assert_eq!(
        cg.usage("lab1", "r1"),
        Usage {
            memory_bytes: Some(1234),
            pids: Some(3)
        }
    );
    assert_eq!(cg.limits_in_kernel("lab1", "r1"), full_limits());
    assert_eq!(cg.limits_in_kernel("lab1", "nope"), Limits::default());
    assert_eq!(
        cg.limits_in_kernel_of("lab1", &["nope", "r1", "../lab1/r1"]),
        [Limits::default(), full_limits(), Limits::default()]
    );
    assert_eq!(cg.limits_in_kernel_of("lab2", &["r1"]), [Limits::default()]);
    assert_eq!(cg.usage("lab1", "nope"), Usage::default());
}

// ---------------------------------------------------------------- v1 and hybrid

#[test]
fn v1_create_writes_each_hierarchy_and_no_subtree_control() {
    let fake = FakeRoot::v1("v1-create");
    let before = fake.outside_topo();
    let cg = fake.cgroups();
    let node = cg.create("lab1", "r1", &full_limits()).unwrap();

    assert_eq!(
        fake.read("memory/topo/lab1/r1/memory.limit_in_bytes"),
        "67108864"
    );
    assert!(!fake.exists("memory/topo/lab1/r1/memory.memsw.limit_in_bytes"));
    assert_eq!(
        fake.read("cpu,cpuacct/topo/lab1/r1/cpu.cfs_period_us"),
        "100000"
    );
    assert_eq!(
        fake.read("cpu,cpuacct/topo/lab1/r1/cpu.cfs_quota_us"),
        "50000"
    );
    assert_eq!(fake.read("pids/topo/lab1/r1/pids.max"), "16");
    for h in ["memory", "cpu,cpuacct", "pids"] {
        assert!(!fake.exists(&format!("{h}/topo/cgroup.subtree_control")));
    }
    let expect: Vec<PathBuf> = ["memory", "cpu,cpuacct", "pids"]
        .iter()
        .map(|h| fake.path(&format!("{h}/topo/lab1/r1")))
        .collect();
    assert_eq!(node.paths(), expect);
    assert_eq!(cg.limits_in_kernel("lab1", "r1"), full_limits());
    assert_eq!(
        cg.limits_in_kernel_of("lab1", &["r1", "r2"]),
        [full_limits(), Limits::default()]
    );
    assert_eq!(fake.outside_topo(), before);

    cg.remove_lab("lab1").unwrap();
    assert_eq!(fake.outside_topo(), before);
    for h in ["memory", "cpu,cpuacct", "pids"] {
        assert!(!fake.exists(&format!("{h}/topo")));
    }
}

#[test]
fn v1_memsw_follows_the_memory_limit_where_swap_is_accounted() {
    let fake = FakeRoot::v1("v1-memsw");
    fake.write(
        "memory/topo/lab1/r1/memory.memsw.limit_in_bytes",
        "9223372036854771712",
    );
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &limits(Some(64 * MI), None, None))
        .unwrap();
    assert_eq!(
        fake.read("memory/topo/lab1/r1/memory.memsw.limit_in_bytes"),
        "67108864"
    );
    cg.create("lab1", "r1", &Limits::default()).unwrap();
    assert_eq!(fake.read("memory/topo/lab1/r1/memory.limit_in_bytes"), "-1");
    assert_eq!(
        fake.read("memory/topo/lab1/r1/memory.memsw.limit_in_bytes"),
        "-1"
    );
}

#[test]
fn v1_removed_limits_are_reset_to_unlimited() {
    let fake = FakeRoot::v1("v1-reset");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &full_limits()).unwrap();
    cg.create("lab1", "r1", &Limits::default()).unwrap();
    assert_eq!(fake.read("memory/topo/lab1/r1/memory.limit_in_bytes"), "-1");
    assert_eq!(fake.read("cpu,cpuacct/topo/lab1/r1/cpu.cfs_quota_us"), "-1");
    assert_eq!(fake.read("pids/topo/lab1/r1/pids.max"), "max");
    assert_eq!(cg.limits_in_kernel("lab1", "r1"), Limits::default());
}

#[test]
fn v1_usage_reads_usage_in_bytes_and_pids_current() {
    let fake = FakeRoot::v1("v1-usage");
    let cg = fake.cgroups();
    cg.create("lab1", "r1", &Limits::default()).unwrap();
    fake.write("memory/topo/lab1/r1/memory.usage_in_bytes", "4096\n");
    fake.write("pids/topo/lab1/r1/pids.current", "2\n");
    assert_eq!(
        cg.usage("lab1", "r1"),
        Usage {
            memory_bytes: Some(4096),
            pids: Some(2)
        }
    );
}

#[test]
fn hybrid_uses_unified_only_for_controllers_v1_lacks() {
    let fake = FakeRoot::new("hybrid")
        .mount("", TMPFS_MAGIC, &[])
        .mount("memory", CGROUP_SUPER_MAGIC, &[("cgroup.procs", "")])
        .mount("cpu", CGROUP_SUPER_MAGIC, &[("cgroup.procs", "")])
        .mount(
            "unified",
            CGROUP2_SUPER_MAGIC,
            &[
                ("cgroup.controllers", "pids hugetlb"),
                ("cgroup.subtree_control", "pids"),
                ("cgroup.procs", ""),
            ],
        );
    let before = fake.outside_topo();
    let cg = fake.cgroups();
    assert_eq!(cg.layout().mode, Mode::Hybrid);
    let node = cg.create("lab1", "r1", &full_limits()).unwrap();
    assert_eq!(fake.read("unified/topo/cgroup.subtree_control"), "+pids");
    assert_eq!(
        fake.read("unified/topo/lab1/cgroup.subtree_control"),
        "+pids"
    );
    assert_eq!(fake.read("unified/topo/lab1/r1/pids.max"), "16");
    assert_eq!(
        fake.read("memory/topo/lab1/r1/memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(fake.read("cpu/topo/lab1/r1/cpu.cfs_quota_us"), "50000");
    assert_eq!(node.paths().len(), 3);
    cg.remove_lab("lab1").unwrap();
    assert_eq!(fake.outside_topo(), before);
}

#[test]
fn hybrid_without_controllers_on_unified_leaves_it_alone() {
    let fake = FakeRoot::v1("hybrid-v1only").mount(
        "unified",
        CGROUP2_SUPER_MAGIC,
        &[
            ("cgroup.controllers", "hugetlb"),
            ("cgroup.subtree_control", ""),
        ],
    );
    let cg = fake.cgroups();
    let node = cg.create("lab1", "r1", &full_limits()).unwrap();
    assert_eq!(node.paths().len(), 3);
    assert!(!fake.exists("unified/topo"));
}

// ---------------------------------------------------------------- small parts

#[test]
fn cpu_quota_is_cpus_times_period_and_at_least_a_millisecond() {
    assert_eq!(quota_us(0.5), 50_000);
    assert_eq!(quota_us(2.0), 200_000);
    assert_eq!(quota_us(0.0001), 1_000);
}

#[test]
fn node_cgroup_round_trips_as_its_paths() {
    let node = NodeCgroup::from_paths(vec!["/a/topo/l/n".into(), "/b/topo/l/n".into()]).unwrap();
    let json = serde_json::to_string(&node).unwrap();
    assert_eq!(json, r#"["/a/topo/l/n","/b/topo/l/n"]"#);
    let back: NodeCgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, node);
}

#[test]
fn decimal_formats_without_allocating() {
    let mut buf = [0u8; 10];
    assert_eq!(decimal(0, &mut buf), b"0");
    assert_eq!(decimal(4_194_304, &mut buf), b"4194304");
    assert_eq!(decimal(u32::MAX, &mut buf), b"4294967295");
}

// ---------------------------------------------------------------- the real kernel

/// Kills the test's children and removes its lab's groups, even when the test fails.
struct KernelLab {
    cg: Cgroups,
    lab: String,
    children: Vec<std::process::Child>,
}

impl Drop for KernelLab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(e) = self.cg.remove_lab(&self.lab) {
            eprintln!("cleanup of cgroup lab {}: {e}", self.lab);
        }
    }
}

/// Why the kernel test cannot run here, if it cannot.
fn kernel_skip_reason(cg: &Cgroups) -> Option<String> {
    for c in Controller::ALL {
        match (cg.layout().placement(c), &cg.layout().unified) {
            (Placement::Absent, _) => return Some(format!("kernel has no cgroup controller {c}")),
            (Placement::V2, Some(u)) if !v2::delegated(u).contains(&c) => {
                return Some(format!("the cgroup v2 root does not delegate {c}"))
            }
            _ => {}
        }
    }
    None
}

/// The control file holding controller `c`'s limit in `cg`'s node group, and what it must
/// say for [`full_limits`].
fn kernel_limit_files(cg: &Cgroups, lab: &str) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    for c in Controller::ALL {
        let Some((dir, v2)) = cg.controller_dir(c, lab, "n1") else {
            continue;
        };
        let files: &[(&str, &'static str)] = match (c, v2) {
            (Controller::Memory, false) => &[("memory.limit_in_bytes", "67108864")],
            (Controller::Memory, true) => &[("memory.max", "67108864")],
            (Controller::Cpu, false) => &[
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
            ],
            (Controller::Cpu, true) => &[("cpu.max", "50000 100000")],
            (Controller::Pids, _) => &[("pids.max", "16")],
        };
        out.extend(files.iter().map(|(f, v)| (dir.join(f), *v)));
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if c == Controller::Memory && !v2 && memsw.exists() {
            out.push((memsw, "67108864"));
        }
    }
    out
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn kernel_group_holds_limits_and_processes_and_is_removed() {
    let cg = match Cgroups::detect() {
        Ok(cg) => cg,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    if let Some(reason) = kernel_skip_reason(&cg) {
        eprintln!("skipping: {reason}");
        return;
    }
    let mut lab = KernelLab {
        cg: cg.clone(),
        lab: format!("cgtest-{}", std::process::id()),
        children: Vec::new(),
    };
    let node = cg.create(&lab.lab, "n1", &full_limits()).unwrap();
    for (file, want) in kernel_limit_files(&cg, &lab.lab) {
        let got = std::fs::read_to_string(&file).unwrap();
        assert_eq!(got.trim(), want, "{}", file.display());
    }
    assert_eq!(cg.limits_in_kernel(&lab.lab, "n1"), full_limits());
    assert_eq!(cg.limits_in_kernel_of(&lab.lab, &["n1"]), [full_limits()]);
    // Idempotent: creating again converges to the same files.
    cg.create(&lab.lab, "n1", &full_limits()).unwrap();

    // One process moved in by PID from outside, one that joins itself between fork and exec.
    let outside = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let outside_pid = outside.id();
    lab.children.push(outside);
    node.add(outside_pid as i32).unwrap();
    let joiner = node.clone();
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("30");
    // SAFETY: the closure runs in the forked child before exec and only calls add_self,
    // which opens, writes and closes files without allocating or taking locks.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || joiner.add_self());
    }
    let inside = cmd.spawn().unwrap();
    let inside_pid = inside.id();
    lab.children.push(inside);

    for dir in node.paths() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        let pids: Vec<u32> = procs.lines().map(|l| l.parse().unwrap()).collect();
        assert!(pids.contains(&outside_pid), "{}: {pids:?}", dir.display());
        assert!(pids.contains(&inside_pid), "{}: {pids:?}", dir.display());
    }
    let usage = cg.usage(&lab.lab, "n1");
    assert_eq!(usage.pids, Some(2));
    assert!(usage.memory_bytes.is_some_and(|b| b > 0), "{usage:?}");
    assert_eq!(cg.labs_nodes(&lab.lab), ["n1"]);

    for mut child in lab.children.drain(..) {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    cg.remove(&lab.lab, "n1").unwrap();
    for dir in node.paths() {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    let lab_dirs: Vec<PathBuf> = node
        .paths()
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    drop(lab);
    for dir in lab_dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}
