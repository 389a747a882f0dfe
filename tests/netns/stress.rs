//! Many labs at once and many cycles: no cross-talk, no leak. Counts are bounded for CI;
//! `TOPO_STRESS=full` runs the full lengths (8 labs x 20 rounds; 200 cycles).

use crate::common::*;

fn full() -> bool {
    std::env::var("TOPO_STRESS").is_ok_and(|v| v == "full")
}

fn chain(name: &str, nodes: usize) -> String {
    gen_chain(name, nodes, &[])
}

/// What a leak would grow, for labs whose names start with `prefix` (other tests run
/// alongside): named namespaces, their mounts, topo cgroups, node inits.
fn footprint(prefix: &str) -> [usize; 4] {
    let netns = netns_with_prefix(prefix).len();
    let mounts = mounts_with(&format!("/run/netns/{prefix}")).len();
    let cgroups = ["pids", "memory", "cpu", ""]
        .iter()
        .map(|h| {
            std::fs::read_dir(std::path::Path::new("/sys/fs/cgroup").join(h).join("topo"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum();
    let inits = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "topo-init")
                })
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("cgroup"))
                        .is_ok_and(|c| c.contains(&format!("/topo/{prefix}")))
                })
                .count()
        })
        .unwrap_or(0);
    [netns, mounts, cgroups, inits]
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn eight_labs_in_parallel_rounds_do_not_interfere_or_leak() {
    let rounds = if full() { 20 } else { 3 };
    let labs: Vec<TestLab> = (0..8)
        .map(|i| {
            let name = format!("tn-par{i}");
            TestLab::new(&name, &chain(&name, 6))
        })
        .collect();
    let before = footprint("tn-par");
    for round in 0..rounds {
        std::thread::scope(|s| {
            for lab in &labs {
                s.spawn(move || {
                    lab.up();
                    assert!(
                        ping(&lab.ns("n0"), "10.0.0.9"),
                        "round {round}: {} n0 reaches n5",
                        lab.name
                    );
                    assert!(
                        lab.plan().contains("no changes"),
                        "round {round}: {}",
                        lab.name
                    );
                    let out = lab.down();
                    assert!(out.status.success(), "round {round}: {}", text(&out));
                    assert!(
                        netns_with_prefix(&format!("{}-", lab.name)).is_empty(),
                        "round {round}: {} left namespaces",
                        lab.name
                    );
                });
            }
        });
    }
    assert_eq!(
        footprint("tn-par"),
        before,
        "[netns, mounts, cgroups, inits] after {rounds} rounds of 8 labs"
    );
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn up_down_cycles_leave_no_growth() {
    let cycles = if full() { 200 } else { 15 };
    let test_lab = TestLab::new("tn-soak", &chain("tn-soak", 20));
    // In this process, through the library: its file descriptors are topo's.
    let lab = topo::Lab::load(&test_lab.file).expect("load");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cycle = || {
        rt.block_on(lab.up()).expect("up");
        rt.block_on(topo::lab::down("tn-soak")).expect("down");
    };
    // `down` returns while the killed processes still end; its reaper then removes the
    // cgroups and the run directory: counted once it is done.
    let reaped = || {
        let run = std::path::Path::new("/run/topo/tn-soak");
        assert!(
            eventually(10, || (!run.exists()).then_some(())).is_some(),
            "the reaper of tn-soak did not finish in 10 s"
        );
    };
    cycle();
    reaped();
    let before = footprint("tn-soak");
    let fds_before = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let slab = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("Slab:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let slab_before = slab(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    for _ in 0..cycles {
        cycle();
    }
    reaped();
    let after = footprint("tn-soak");
    let fds_after = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    // Namespaces are freed by a kernel work queue, in batches, seconds after `down` on a busy
    // machine: wait (bounded) for the slab to come back before calling it growth.
    let mut slab_after = slab(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while slab_after >= slab_before + 64 * 1024 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        slab_after = slab(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    }
    eprintln!("soak: {cycles} cycles of a 20-node lab: [netns, mounts, cgroups, inits] {before:?} -> {after:?}; fds {fds_before} -> {fds_after}; Slab {slab_before} -> {slab_after} kB");
    assert_eq!(
        after, before,
        "no growth of [netns, mounts, cgroups, inits]"
    );
    // Other tests of this binary open and close descriptors meanwhile: allow a few, far
    // fewer than one per cycle.
    assert!(
        fds_after <= fds_before + 8,
        "topo's open file descriptors grew: {fds_before} -> {fds_after}"
    );
    assert!(
        slab_after < slab_before + 64 * 1024,
        "kernel slab grew by more than 64 MiB: {slab_before} -> {slab_after} kB"
    );
}
