//! Per-network-namespace sysctls, read and written through `/proc/sys/net`. The kernel
//! resolves `/proc/sys/net` against the network namespace of the calling *thread*, so these
//! functions run on the dedicated namespace thread after `setns` (see `netns::enter_each`).

use std::collections::BTreeMap;

use super::NetError;
use crate::plan::names::sysctl_path;

/// Reads the given keys in the current thread's namespace; a key the kernel does not have is
/// left out (so the plan shows it as to be set, and setting it reports the kernel's error).
pub fn read_here(keys: &[&String]) -> BTreeMap<String, String> {
    keys.iter()
        .filter_map(|k| {
            std::fs::read_to_string(sysctl_path(k))
                .ok()
                .map(|v| ((*k).clone(), v.trim().to_string()))
        })
        .collect()
}

/// Writes one key in the current thread's namespace (`sysctl -w KEY=VALUE`).
pub fn write_here(key: &str, value: &str, who: &str) -> Result<(), NetError> {
    std::fs::write(sysctl_path(key), value.as_bytes())
        .map_err(|e| NetError::io(format!("set sysctl {key}={value} in {who}"), e))
}
