//! The `filesystem:` policy of a node, enforced with Landlock (Linux 5.13+).
//!
//! Policy: the whole tree stays readable and executable; writing is allowed only under the
//! node's private mounts (`/tmp`, `/run`, `/dev`), its own network sysctls (`/proc/sys/net`)
//! and the `read_write` paths. `read_only`
//! paths say explicitly what must stay read-only (Landlock rules only add access, so a
//! `read_only` path inside a `read_write` one could not be enforced; the validator refuses
//! that). Everything the running kernel's Landlock ABI can restrict is restricted (best
//! effort across ABI versions); a kernel without Landlock is an error, never a silent pass.

use std::path::PathBuf;

use landlock::{
    path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    ABI,
};

use super::NodeError;
use crate::spec::Filesystem;

/// The newest ABI this code knows; older kernels get what they support.
const ABI_KNOWN: ABI = ABI::V5;

/// Always writable in a node with a policy: its own tmpfs mounts and devices.
const PRIVATE_WRITABLE: [&str; 4] = ["/tmp", "/run", "/dev", "/proc/sys/net"];

/// Restricts the calling thread (and what it execs) to the policy. Paths are resolved in
/// the node's mount namespace, so call this after entering it.
pub fn restrict(policy: &Filesystem) -> Result<(), NodeError> {
    let err = |e: landlock::RulesetError| {
        NodeError::sys("landlock", std::io::Error::other(e.to_string()))
    };
    let all = AccessFs::from_all(ABI_KNOWN);
    let read = AccessFs::from_read(ABI_KNOWN);
    let mut writable: Vec<PathBuf> = PRIVATE_WRITABLE.iter().map(PathBuf::from).collect();
    writable.extend(policy.read_write.iter().cloned());
    let status = Ruleset::default()
        .handle_access(all)
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(["/"], read))
        .map_err(err)?
        .add_rules(path_beneath_rules(&policy.read_only, read))
        .map_err(err)?
        .add_rules(path_beneath_rules(&writable, all))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(NodeError::sys(
            "apply the filesystem policy",
            std::io::Error::other(
                "the kernel has no Landlock (needs Linux 5.13+ with lsm=landlock)",
            ),
        ));
    }
    Ok(())
}
