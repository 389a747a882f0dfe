//! Property tests of the pure core: for random labs (every generated shape and size, dual
//! stack or not, with links set down, impaired and given MTUs at random), the plan against
//! the kernel state a flawless `up` leaves is empty; and planning from nothing never fails.

use std::path::Path;

use proptest::prelude::*;
use topo::plan::{compile, diff, simulate, Observed};
use topo::shapes::{generate, GenArgs, Shape};
use topo::spec::{Impair, LinkImpair, LinkState, Topology};

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
        let desired = compile(&t);
        let observed = simulate(&t, &desired);
        let plan = diff(&t, &desired, &observed);
        prop_assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
        prop_assert!(plan.actions.is_empty(), "a finished lab plans changes:\n{}", plan);
    }

    #[test]
    fn planning_from_nothing_creates_every_namespace_and_link(shape in shape(), ipv6 in any::<bool>(), tweaks in tweaks()) {
        let t = lab(shape, ipv6, false, &tweaks);
        let desired = compile(&t);
        let plan = diff(&t, &desired, &Observed::default());
        let netns = plan.actions.iter().filter(|a| matches!(a, topo::plan::Action::CreateNetns { .. })).count();
        let veths = plan.actions.iter().filter(|a| matches!(a, topo::plan::Action::CreateVeth { .. })).count();
        prop_assert_eq!(netns, desired.namespaces.len());
        prop_assert_eq!(veths, desired.veths.len());
    }
}
