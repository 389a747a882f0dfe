//! On the real kernel, in a scratch namespace `qd-test-<pid>` with a veth pair: tbf applied,
//! replaced in place, dumped and deleted; netem either applied or refused with an error that
//! names `sch_netem`, as the probe predicted.

use super::super::*;
use crate::net::link::{self, VethEnd};
use crate::net::{connect_here, netns};

/// Deletes the scratch namespace (and the veth pair in it) however the test ends.
struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

fn root_of(qdiscs: &[ObservedQdisc], ifindex: u32) -> Option<&ObservedQdisc> {
    qdiscs.iter().find(|q| q.ifindex == ifindex && q.is_root())
}

fn ours(qdiscs: &[ObservedQdisc], ifindex: u32) -> Option<&ObservedQdisc> {
    root_of(qdiscs, ifindex).filter(|q| q.kind == "tbf" || q.kind == "netem")
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn tbf_is_replaced_in_place_and_netem_matches_the_probe() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    netns::ensure_dir().unwrap();
    let name = format!("qd-test-{}", std::process::id());
    let _guard = NsGuard(name.clone());
    let names = vec![name];
    let rth = rt.handle().clone();
    let mut made =
        std::thread::spawn(move || netns::create_each(&names, |_, _| connect_here(&rth)))
            .join()
            .unwrap()
            .unwrap();
    let (_ns, handle) = made.remove(0);
    rt.block_on(exercise(&handle));
}

async fn ifindex(handle: &Handle, name: &str) -> u32 {
    let links = link::dump(handle).await.unwrap();
    let msg = links.iter().find(|m| link::name_of(m) == Some(name));
    msg.expect("veth end exists").header.index
}

async fn exercise(handle: &Handle) {
    let end = |name| VethEnd {
        name,
        index: 0,
        group: 0,
        netns: None,
        mac: [0x02, 0, 0, 0, 0, if name == "qa" { 1 } else { 2 }],
    };
    link::add_veth(handle, &end("qa"), &end("qb"), 1500, true)
        .await
        .unwrap();
    let qa = ifindex(handle, "qa").await;
    let psched = Psched::read().unwrap();

    replace_root(
        handle,
        qa,
        &QdiscKind::Tbf(Tbf::for_rate(10_000_000)),
        &psched,
    )
    .await
    .unwrap();
    let dumped = dump(handle, &psched).await.unwrap();
    let first = root_of(&dumped, qa).expect("a root qdisc").clone();
    assert_eq!(first.kind, "tbf");
    let QdiscParams::Tbf(tbf) = first.params else {
        panic!("tbf options not decoded: {first:?}");
    };
    assert_eq!(tbf.rate_bps, 10_000_000);
    assert_eq!(tbf.limit_bytes, 77_500);
    assert!(tbf.burst_bytes.abs_diff(15_000) < 150, "{tbf:?}");

    replace_root(
        handle,
        qa,
        &QdiscKind::Tbf(Tbf::for_rate(20_000_000)),
        &psched,
    )
    .await
    .unwrap();
    let dumped = dump(handle, &psched).await.unwrap();
    let second = root_of(&dumped, qa).expect("a root qdisc");
    assert_eq!(second.impair().and_then(|i| i.rate_bps), Some(20_000_000));
    assert_eq!(
        second.handle, first.handle,
        "changed in place, not recreated"
    );
    assert_eq!(ifindex(handle, "qa").await, qa);

    delete_root(handle, qa).await.unwrap();
    assert!(ours(&dump(handle, &psched).await.unwrap(), qa).is_none());
    delete_root(handle, qa).await.unwrap(); // none left: converged, not an error

    assert!(kernel_has_qdisc(handle, QdiscType::Tbf).await.unwrap());
    let has_netem = kernel_has_qdisc(handle, QdiscType::Netem).await.unwrap();
    let after_probe = dump(handle, &psched).await.unwrap();
    assert!(
        ours(&after_probe, 1).is_none(),
        "the probe left a qdisc on lo"
    );

    let impair = Impair {
        delay_us: Some(10_000),
        loss_ppm: Some(5_000),
        ..Impair::default()
    };
    let applied = replace_root(handle, qa, &QdiscKind::Netem(impair.clone()), &psched).await;
    if has_netem {
        applied.unwrap();
        let dumped = dump(handle, &psched).await.unwrap();
        let got = root_of(&dumped, qa).and_then(ObservedQdisc::impair);
        assert_eq!(got, Some(impair));
    } else {
        let err = applied.expect_err("netem refused without sch_netem");
        assert!(err.to_string().contains("module sch_netem"), "{err}");
        assert!(ours(&dump(handle, &psched).await.unwrap(), qa).is_none());
    }
}
