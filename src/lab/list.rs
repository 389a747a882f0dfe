//! `ls`: the labs on this host, from their run directories and the kernel's namespaces.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::plan::names;

/// One lab that has a run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabSummary {
    pub name: String,
    /// The topology file the lab was last brought up from.
    pub file: Option<String>,
    /// Nodes the lab's record holds or that have a namespace.
    pub nodes: usize,
    /// Of those, nodes that are there (see [`lab_state`]).
    pub running: usize,
    /// `up`, `partial` or `down` (see [`lab_state`]).
    pub state: &'static str,
}

/// `up`: every node is there (its namespace exists; for a node with an init, it is the one
/// the init was started in, and the init runs); `down`: none is; `partial`: some are, or the lab has no record (an
/// `up` that is under way or was stopped before it wrote one).
pub fn lab_state(nodes: usize, running: usize, has_record: bool) -> &'static str {
    if !has_record {
        "partial"
    } else if running == nodes {
        "up"
    } else if running == 0 {
        "down"
    } else {
        "partial"
    }
}

/// Whether the lab was taken down and its processes are still ending: `topo __reap` holds
/// its lock. (Marked ending with the lock free, a `down` was stopped before its end, and the
/// next `down` finishes it.)
pub(crate) fn is_ending(name: &str) -> bool {
    crate::state::is_ending(name)
        && matches!(
            crate::state::RunDir::try_lock_existing(name),
            Err(crate::state::StateError::Busy { .. })
        )
}

/// The labs of this host, by name.
pub fn list() -> Vec<LabSummary> {
    let labs = crate::state::labs();
    let mut out: Vec<LabSummary> = labs
        .iter()
        .map(|name| {
            let record = crate::state::read_record(name);
            let mut nodes: BTreeMap<String, bool> = BTreeMap::new();
            // Nodes with a namespace: `LAB-NODE`, not one of a lab whose name extends this
            // one's (`LAB-x-NODE` of lab `LAB-x`). A node without an init (`bare`) has no
            // record, only its namespace.
            let prefix = names::netns_prefix(name);
            let netns = crate::net::netns::list_with_prefix(&prefix).unwrap_or_default();
            for ns in &netns {
                let Some(node) = ns.strip_prefix(&prefix) else {
                    continue;
                };
                let longer = labs.iter().any(|other| {
                    other.len() > name.len() && ns.starts_with(&names::netns_prefix(other))
                });
                if !longer {
                    nodes.insert(node.to_string(), true);
                }
            }
            if let Some(state) = &record {
                for (node, rec) in &state.nodes {
                    let ns =
                        Path::new(crate::net::netns::NETNS_DIR).join(names::node_netns(name, node));
                    let same_ns = std::fs::metadata(&ns).is_ok_and(|m| m.ino() == rec.netns_inode);
                    nodes.insert(node.clone(), same_ns && rec.init.alive());
                }
            }
            let running = nodes.values().filter(|there| **there).count();
            let ending = is_ending(name);
            LabSummary {
                state: if ending {
                    "ending"
                } else {
                    lab_state(nodes.len(), running, record.is_some())
                },
                name: name.clone(),
                file: record
                    .as_ref()
                    .and_then(|r| r.file.as_ref())
                    .map(|f| f.display().to_string()),
                nodes: nodes.len(),
                running,
            }
        })
        .collect();
    out.sort_by(|a, b| names::natural_cmp(&a.name, &b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::lab_state;

    #[test]
    fn state_of_a_lab_from_its_nodes() {
        assert_eq!(lab_state(3, 3, true), "up");
        assert_eq!(lab_state(3, 2, true), "partial");
        assert_eq!(lab_state(3, 0, true), "down");
        assert_eq!(lab_state(0, 0, false), "partial");
    }
}
