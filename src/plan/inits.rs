//! Which node inits of a lab live on and which are strays, decided from what was read of the
//! machine's processes and of the lab's namespaces.

use std::collections::{BTreeMap, HashSet};

use super::observed::ProcId;

use super::names;

/// A node's init as the lab's record names it, with what was read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedInit {
    pub node: String,
    pub init: ProcId,
    /// The inode of the network namespace it was started in.
    pub netns_inode: u64,
    /// The inode of the node's network namespace now, when it is open.
    pub current_netns: Option<u64>,
    /// The init runs (the same PID and start time).
    pub alive: bool,
    /// The file's process settings for the node are those it was started with (or the file
    /// no longer names the node).
    pub same_config: bool,
}

/// What a node's inits are found to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInits {
    /// The recorded init runs, holds the node's current network namespace and was started
    /// with the file's settings: it is kept.
    pub init_alive: bool,
    /// The recorded init, if it is still running.
    pub init: Option<ProcId>,
    /// Other inits in the node's namespace: stopped by the plan.
    pub strays: Vec<ProcId>,
}

/// Whether `inits` (node inits, each with the inode of its network namespace) stand for
/// every node init in the lab's namespaces (`lab_netns`, by inode): they were read from all
/// of /proc (`scanned`), the lab has no namespaces, or each of its node namespaces (all but
/// the bridges') holds one of them. When not, all of /proc is to be read.
pub fn inits_cover_lab(
    lab: &str,
    lab_netns: &BTreeMap<u64, String>,
    inits: &[(ProcId, u64)],
    scanned: bool,
) -> bool {
    if lab_netns.is_empty() || scanned {
        return true;
    }
    let held: HashSet<u64> = inits.iter().map(|(_, ino)| *ino).collect();
    let bridges = names::bridge_netns(lab);
    lab_netns
        .iter()
        .all(|(ino, ns)| *ns == bridges || held.contains(ino))
}

/// The inits of each node: every recorded one, and the nodes whose namespace (among
/// `lab_netns`, by inode) holds an init of `inits` other than its recorded running one.
pub fn node_inits(
    lab: &str,
    recorded: &[RecordedInit],
    lab_netns: &BTreeMap<u64, String>,
    inits: &[(ProcId, u64)],
) -> BTreeMap<String, NodeInits> {
    let mut nodes: BTreeMap<String, NodeInits> = recorded
        .iter()
        .map(|r| {
            (
                r.node.clone(),
                NodeInits {
                    init_alive: r.alive && r.current_netns == Some(r.netns_inode) && r.same_config,
                    init: r.alive.then_some(r.init),
                    strays: Vec::new(),
                },
            )
        })
        .collect();
    // Inits that no record knows.
    let prefix = names::netns_prefix(lab);
    for (id, ino) in inits {
        let Some(node) = lab_netns.get(ino).and_then(|ns| ns.strip_prefix(&prefix)) else {
            continue;
        };
        let found = nodes.entry(node.to_string()).or_default();
        if found.init != Some(*id) {
            found.strays.push(*id);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(pid: i32) -> ProcId {
        ProcId {
            pid,
            start: 1000 + pid as u64,
        }
    }

    fn rec(node: &str, pid: i32, netns_inode: u64) -> RecordedInit {
        RecordedInit {
            node: node.into(),
            init: id(pid),
            netns_inode,
            current_netns: Some(netns_inode),
            alive: true,
            same_config: true,
        }
    }

    /// The lab `l`'s namespaces: node `a` (inode 10), node `b` (11) and the bridges (12).
    fn lab_netns() -> BTreeMap<u64, String> {
        [(10, "l-a"), (11, "l-b"), (12, "l.br")]
            .into_iter()
            .map(|(i, n)| (i, n.to_string()))
            .collect()
    }

    #[test]
    fn a_running_recorded_init_in_its_namespace_lives_on() {
        let nodes = node_inits("l", &[rec("a", 1, 10)], &lab_netns(), &[(id(1), 10)]);
        let a = NodeInits {
            init_alive: true,
            init: Some(id(1)),
            strays: vec![],
        };
        assert_eq!(nodes, BTreeMap::from([("a".to_string(), a)]));
    }

    #[test]
    fn a_recorded_init_is_replaced_if_dead_moved_or_started_with_other_settings() {
        let dead = RecordedInit {
            alive: false,
            ..rec("a", 1, 10)
        };
        let moved = RecordedInit {
            current_netns: Some(99),
            ..rec("a", 1, 10)
        };
        let gone = RecordedInit {
            current_netns: None,
            ..rec("a", 1, 10)
        };
        let changed = RecordedInit {
            same_config: false,
            ..rec("a", 1, 10)
        };
        let nodes = node_inits("l", &[dead], &lab_netns(), &[]);
        assert_eq!(nodes["a"], NodeInits::default());
        for r in [moved, gone, changed] {
            let nodes = node_inits("l", std::slice::from_ref(&r), &lab_netns(), &[(id(1), 10)]);
            let a = &nodes["a"];
            assert!(!a.init_alive, "{r:?}");
            // Still running: the plan stops it, not as a stray.
            assert_eq!(a.init, Some(id(1)), "{r:?}");
            assert!(a.strays.is_empty(), "{r:?}");
        }
    }

    #[test]
    fn inits_no_record_names_are_strays_of_their_node() {
        let inits = [
            (id(1), 10), // a's recorded init
            (id(2), 10), // another in a's namespace
            (id(3), 11), // b has no record
            (id(4), 12), // in the bridges' namespace: not a node's
            (id(5), 77), // not in the lab's namespaces
        ];
        let nodes = node_inits("l", &[rec("a", 1, 10)], &lab_netns(), &inits);
        assert_eq!(nodes.len(), 2);
        assert!(nodes["a"].init_alive);
        assert_eq!(nodes["a"].strays, vec![id(2)]);
        let b = NodeInits {
            init_alive: false,
            init: None,
            strays: vec![id(3)],
        };
        assert_eq!(nodes["b"], b);
    }

    #[test]
    fn a_dead_recorded_init_makes_a_same_pid_init_with_another_start_a_stray() {
        let dead = RecordedInit {
            alive: false,
            ..rec("a", 1, 10)
        };
        let reused = ProcId { pid: 1, start: 5 };
        let nodes = node_inits("l", &[dead], &lab_netns(), &[(reused, 10)]);
        assert_eq!(nodes["a"].init, None);
        assert_eq!(nodes["a"].strays, vec![reused]);
    }

    #[test]
    fn found_inits_cover_the_lab_when_each_node_namespace_holds_one() {
        let netns = lab_netns();
        // The bridges' namespace holds no init.
        assert!(inits_cover_lab(
            "l",
            &netns,
            &[(id(1), 10), (id(2), 11)],
            false
        ));
        // b's namespace holds none of them: /proc is read whole.
        assert!(!inits_cover_lab("l", &netns, &[(id(1), 10)], false));
        // Unless it already was, or the lab has no namespaces.
        assert!(inits_cover_lab("l", &netns, &[(id(1), 10)], true));
        assert!(inits_cover_lab("l", &BTreeMap::new(), &[], false));
    }
}
