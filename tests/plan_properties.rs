//! Property tests of the pure core: for random labs (every generated shape and size, dual
//! stack or not, with links set down, impaired and given MTUs at random), the plan against
//! the kernel state a flawless `up` leaves is empty; and planning from nothing never fails.
//! The same labs spread over several hosts: each host's share plans nothing against its own
//! result, the shares hold every node once, and every link is a veth pair on one host or a
//! tunnel whose two ends agree.

use std::path::Path;

use proptest::prelude::*;
use topo::plan::{compile, diff, simulate, IfaceKind, Observed};
use topo::shapes::{generate, GenArgs, Shape};
use topo::spec::{Host, Impair, LinkImpair, LinkState, Topology};

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (2u64..12).prop_map(|nodes| Shape::Chain { nodes }),
        (3u64..10).prop_map(|nodes| Shape::Ring { nodes }),
        (1u64..8).prop_map(|nodes| Shape::Star { nodes }),
        (1u64..3, 1u64..3).prop_map(|(depth, fanout)| Shape::Tree { depth, fanout }),
        (1u64..3, 1u64..4, 0u64..2).prop_map(|(spines, leaves, hosts_per_leaf)| Shape::Clos {
            spines,
            leaves,
            hosts_per_leaf
        }),
    ]
}

/// A link change: (which link, state down?, impairment kind 0..3, mtu choice).
fn tweaks() -> impl Strategy<Value = Vec<(usize, bool, u8, u8)>> {
    proptest::collection::vec((0usize..64, any::<bool>(), 0u8..4, 0u8..3), 0..6)
}

fn lab(shape: Shape, ipv6: bool, bare: bool, tweaks: &[(usize, bool, u8, u8)]) -> Topology {
    let args = GenArgs {
        shape,
        name: Some("prop".into()),
        ipv6,
        bare,
    };
    let yaml = generate(&args).expect("generate");
    let mut t =
        topo::spec::parse_str(&yaml, Path::new("prop.yaml")).expect("generated labs are valid");
    let n = t.links.len();
    for (i, down, impair, mtu) in tweaks {
        let Some(link) = t.links.get_mut(i % n.max(1)) else {
            continue;
        };
        if *down {
            link.state = LinkState::Down;
        }
        link.impair = match impair {
            1 => Some(LinkImpair::Both(Impair {
                rate_bps: Some(10_000_000),
                ..Impair::default()
            })),
            2 => Some(LinkImpair::Both(Impair {
                delay_us: Some(5_000),
                loss_ppm: Some(10_000),
                ..Impair::default()
            })),
            3 => {
                let end = link.endpoints[0].to_string();
                Some(LinkImpair::PerEndpoint(
                    [(
                        end,
                        Impair {
                            delay_us: Some(1_000),
                            ..Impair::default()
                        },
                    )]
                    .into(),
                ))
            }
            _ => None,
        };
        link.mtu = [None, Some(1400), Some(9000)][*mtu as usize];
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn plan_against_the_result_of_up_is_empty(shape in shape(), ipv6 in any::<bool>(), bare in any::<bool>(), tweaks in tweaks()) {
        let t = lab(shape, ipv6, bare, &tweaks);
        let desired = compile(&t, None);
        let observed = simulate(&t, &desired);
        let plan = diff(&t, &desired, &observed);
        prop_assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
        prop_assert!(plan.actions.is_empty(), "a finished lab plans changes:\n{}", plan);
    }

    #[test]
    fn planning_from_nothing_creates_every_namespace_and_link(shape in shape(), ipv6 in any::<bool>(), tweaks in tweaks()) {
        let t = lab(shape, ipv6, false, &tweaks);
        let desired = compile(&t, None);
        let plan = diff(&t, &desired, &Observed::default());
        let netns = plan.actions.iter().filter(|a| matches!(a, topo::plan::Action::CreateNetns { .. })).count();
        let veths = plan.actions.iter().filter(|a| matches!(a, topo::plan::Action::CreateVeth { .. })).count();
        prop_assert_eq!(netns, desired.namespaces.len());
        prop_assert_eq!(veths, desired.veths.len());
    }
}

/// `t` spread over `hosts` machines (`h0`, `h1`, …): node `i` (in name order) on host
/// `placement[i % len] % hosts`.
fn spread(mut t: Topology, hosts: usize, placement: &[usize]) -> Topology {
    for h in 0..hosts {
        let host = Host {
            address: std::net::IpAddr::from([198, 51, 100, h as u8 + 1]),
            mtu: 1500,
        };
        t.hosts.insert(format!("h{h}"), host);
    }
    for (i, node) in t.nodes.values_mut().enumerate() {
        let h = placement
            .get(i % placement.len().max(1))
            .copied()
            .unwrap_or(0)
            % hosts;
        node.host = Some(format!("h{h}"));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, .. ProptestConfig::default() })]

    #[test]
    fn shares_plan_nothing_against_their_result_and_agree_on_every_tunnel(
        shape in shape(),
        ipv6 in any::<bool>(),
        tweaks in tweaks(),
        hosts in 2usize..4,
        placement in proptest::collection::vec(0usize..4, 1..8),
    ) {
        let t = spread(lab(shape, ipv6, false, &tweaks), hosts, &placement);
        let shares: Vec<_> = t.hosts.keys().map(|h| (h.clone(), compile(&t, Some(h)))).collect();
        for (host, desired) in &shares {
            let plan = diff(&t, desired, &simulate(&t, desired));
            prop_assert!(plan.is_empty(), "{host}: a finished share plans changes:\n{}", plan);
            let fresh = diff(&t, desired, &Observed::default());
            prop_assert!(fresh.conflicts.is_empty());
        }
        // Every node in exactly one share, the one its host names.
        for (name, node) in &t.nodes {
            let holders: Vec<&String> = shares.iter().filter(|(_, d)| d.has_node(name)).map(|(h, _)| h).collect();
            let want: Vec<&String> = node.host.iter().collect();
            prop_assert_eq!(holders, want);
        }
        // Every link: a veth pair in one share, or in each of two a veth end stitched to a
        // VXLAN interface in the bridge namespace.
        for link in &t.links {
            let [a, b] = &link.endpoints;
            let end = |d: &topo::plan::Desired, ep: &topo::spec::Endpoint| {
                d.namespaces.get(&format!("{}-{}", t.name, ep.node)).and_then(|n| n.ifaces.get(&ep.iface)).cloned()
            };
            let (ha, hb) = (&t.nodes[&a.node].host, &t.nodes[&b.node].host);
            let share = |h: &Option<String>| shares.iter().find(|(n, _)| Some(n) == h.as_ref()).map(|(_, d)| d);
            let (Some(da), Some(db)) = (share(ha), share(hb)) else {
                prop_assert!(false, "a node without a share");
                continue;
            };
            let (Some(ea), Some(eb)) = (end(da, a), end(db, b)) else {
                prop_assert!(false, "an end of {}-{} is missing", a, b);
                continue;
            };
            if ha == hb {
                prop_assert_eq!(ea.kind, IfaceKind::Veth);
                prop_assert_eq!(da.veths.iter().filter(|v| v.label == format!("{a} <-> {b}")).count(), 1);
                continue;
            }
            prop_assert_eq!(ea.kind, IfaceKind::Veth);
            prop_assert_eq!(eb.kind, IfaceKind::Veth);
            prop_assert_eq!(&ea.marker, &eb.marker);
            let tunnel = |d: &topo::plan::Desired| {
                let c = d.crossings.iter().find(|c| c.local == *a || c.local == *b)?;
                d.namespaces.get(&format!("{}.br", t.name))?.ifaces.get(&format!("V{}", c.vni)).cloned()
            };
            let (Some(ta), Some(tb)) = (tunnel(da), tunnel(db)) else {
                prop_assert!(false, "a crossing of {}-{} without its tunnel", a, b);
                continue;
            };
            prop_assert_eq!(ta.kind, IfaceKind::Vxlan);
            let (Some(va), Some(vb)) = (ta.vxlan, tb.vxlan) else {
                prop_assert!(false, "a tunnel end without its tunnel");
                continue;
            };
            prop_assert_eq!(va.vni, vb.vni);
            prop_assert_eq!(Some(va.local), vb.remote);
            prop_assert_eq!(Some(vb.local), va.remote);
        }
        // VNIs distinct across the lab's tunnels.
        let vnis: Vec<u32> = shares.iter()
            .flat_map(|(_, d)| d.crossings.iter().map(|c| c.vni))
            .collect();
        let distinct: std::collections::BTreeSet<u32> = vnis.iter().copied().collect();
        prop_assert_eq!(distinct.len() * 2, vnis.len());
    }
}
