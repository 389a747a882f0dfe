//! The far ends of a share's links to other hosts: this host cannot see them, so `plan` and
//! `status` ask each one directly, over the tunnel, with an ARP request or an IPv6 neighbour
//! solicitation for the far end's address (see `net::probe`).

use std::net::IpAddr;
use std::time::Duration;

use crate::net::observe::Session;
use crate::net::probe;
use crate::plan::{Crossing, Desired, NsObserved, Observed};

/// How long the far ends have to answer, all probes together.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// What a probe of one crossing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FarEnd {
    Answers,
    /// Asked, and no answer within [`PROBE_TIMEOUT`].
    Silent,
    /// Not asked: the link is down in the file, or this end is missing or down (the plan
    /// repairs that first).
    Skipped,
    /// The probe could not be sent or awaited.
    Failed(String),
}

/// The address a probe asks for: the far end's first IPv4 address in the file, else its
/// first IPv6 address, else the IPv6 link-local address of its MAC.
pub fn target(c: &Crossing) -> IpAddr {
    let v4 = c.peer_addresses.iter().find(|a| a.is_ipv4());
    let v6 = c
        .peer_addresses
        .iter()
        .find(|a| a.is_ipv6() && !is_link_local(a.ip()));
    match v4.or(v6) {
        Some(a) => a.ip(),
        None => IpAddr::V6(probe::link_local(c.peer_mac)),
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Probes every crossing of the share whose local end is up, all at once. The result is in
/// the order of `desired.crossings`.
pub async fn probe_all(
    session: &Session,
    desired: &Desired,
    observed: &Observed,
) -> Vec<(Crossing, FarEnd)> {
    let mut out: Vec<(Crossing, FarEnd)> = Vec::new();
    let mut asked = Vec::new();
    for c in &desired.crossings {
        let local_up = match observed.namespaces.get(&c.ns) {
            Some(NsObserved::Ours(s)) => s.link(&c.local.iface).is_some_and(|l| l.up),
            _ => false,
        };
        match session.ns.get(&c.ns) {
            Some(conn) if c.up && local_up => {
                asked.push((out.len(), conn.id.clone(), c.local.iface.clone(), target(c)));
                out.push((c.clone(), FarEnd::Silent));
            }
            _ => out.push((c.clone(), FarEnd::Skipped)),
        }
    }
    if asked.is_empty() {
        return out;
    }
    let results = tokio::task::spawn_blocking(move || {
        let probes: Vec<_> = asked
            .iter()
            .map(|(_, id, iface, ip)| (id.clone(), iface.as_str(), *ip))
            .collect();
        let results = probe::probe_all(&probes, PROBE_TIMEOUT);
        asked
            .iter()
            .map(|(i, ..)| *i)
            .zip(results)
            .collect::<Vec<_>>()
    })
    .await;
    match results {
        Ok(results) => {
            for (i, r) in results {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = match r {
                        Ok(true) => FarEnd::Answers,
                        Ok(false) => FarEnd::Silent,
                        Err(e) => FarEnd::Failed(e.to_string()),
                    };
                }
            }
        }
        Err(e) => {
            for slot in out.iter_mut().filter(|s| s.1 == FarEnd::Silent) {
                slot.1 = FarEnd::Failed(format!("probe: {e}"));
            }
        }
    }
    out
}

/// The lines `plan` shows for far ends that did not answer (or could not be asked while
/// their end is up): drift on another host, which this host's `up` does not repair.
pub fn drift_lines(found: &[(Crossing, FarEnd)]) -> Vec<String> {
    found
        .iter()
        .filter_map(|(c, f)| match f {
            FarEnd::Silent => Some(format!("{}: no answer", c.label())),
            FarEnd::Failed(why) => Some(format!("{}: not probed: {why}", c.label())),
            FarEnd::Answers | FarEnd::Skipped => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Endpoint;

    fn crossing(addresses: &[&str]) -> Crossing {
        Crossing {
            local: Endpoint {
                node: "r1".into(),
                iface: "eth1".into(),
            },
            ns: "lab-r1".into(),
            peer: Endpoint {
                node: "r2".into(),
                iface: "eth1".into(),
            },
            peer_host: "right".into(),
            peer_addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            peer_mac: [0x02, 0, 0, 0, 0, 1],
            vni: 1001,
            up: true,
        }
    }

    #[test]
    fn the_target_is_ipv4_first_then_ipv6_then_the_link_local_of_the_mac() {
        let c = crossing(&["2001:db8::2/64", "192.0.2.2/30"]);
        assert_eq!(target(&c), "192.0.2.2".parse::<IpAddr>().unwrap());
        let c = crossing(&["fe80::5/64", "2001:db8::2/64"]);
        assert_eq!(target(&c), "2001:db8::2".parse::<IpAddr>().unwrap());
        let c = crossing(&[]);
        assert_eq!(target(&c), "fe80::ff:fe00:1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn only_silent_far_ends_and_failed_probes_are_drift() {
        let found = vec![
            (crossing(&[]), FarEnd::Answers),
            (crossing(&[]), FarEnd::Silent),
            (crossing(&[]), FarEnd::Skipped),
            (crossing(&[]), FarEnd::Failed("enter netns: EPERM".into())),
        ];
        assert_eq!(
            drift_lines(&found),
            vec![
                "r1:eth1 -> r2:eth1 on host right: no answer".to_string(),
                "r1:eth1 -> r2:eth1 on host right: not probed: enter netns: EPERM".to_string()
            ]
        );
    }
}
