//! Routes of the main table (`ip route …`), marked with `topo`'s protocol number.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, RouteMessageBuilder, RouteNextHopBuilder};

use super::{nl_err, NetError, RTPROT_TOPO};
use crate::plan::{RouteObs, RouteSpec};

/// Builds the kernel message for a route: one gateway, several (ECMP, `nexthop via … nexthop
/// via …`), or none (a direct route through `dev`). `oif` is the index of `dev`, if any.
pub fn message(route: &RouteSpec, oif: Option<u32>) -> Result<RouteMessage, NetError> {
    let bad = invalid(route);
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.dst.ip(), route.dst.prefix())
        .map_err(&bad)?
        .protocol(RouteProtocol::Other(RTPROT_TOPO))
        .priority(route.metric);
    if let Some(oif) = oif {
        b = b.output_interface(oif);
    }
    match route.via.as_slice() {
        [] => {}
        [one] => b = b.gateway(*one).map_err(&bad)?,
        many => {
            let mut hops = Vec::with_capacity(many.len());
            for via in many {
                let mut hop = if via.is_ipv4() {
                    RouteNextHopBuilder::new_ipv4()
                } else {
                    RouteNextHopBuilder::new_ipv6()
                };
                if let Some(oif) = oif {
                    hop = hop.interface(oif);
                }
                hops.push(hop.via(*via).map_err(&bad)?.build());
            }
            b = b.multipath(hops);
        }
    }
    let mut msg = b.build();
    if route.via.is_empty() {
        msg.header.scope = netlink_packet_route::route::RouteScope::Link;
    }
    Ok(msg)
}

fn invalid<E: std::fmt::Display>(route: &RouteSpec) -> impl Fn(E) -> NetError + '_ {
    move |e| NetError::Netlink {
        what: format!("build route {route}"),
        errno: None,
        message: e.to_string(),
    }
}

/// Adds a route, or replaces the one with the same destination and metric
/// (`ip route add|replace …`).
pub async fn add(
    handle: &Handle,
    msg: RouteMessage,
    replace: bool,
    what: &str,
) -> Result<(), NetError> {
    let mut req = handle.route().add(msg);
    if replace {
        req = req.replace();
    }
    req.execute()
        .await
        .map_err(nl_err(format!("add route {what}")))
}

/// Deletes our route to `dst` with `metric` (`ip route del DST metric M proto 200`).
pub async fn del(handle: &Handle, dst: IpNetwork, metric: u32, what: &str) -> Result<(), NetError> {
    let spec = RouteSpec {
        dst,
        via: Vec::new(),
        dev: None,
        metric,
    };
    let mut msg = message(&spec, None)?;
    msg.header.scope = netlink_packet_route::route::RouteScope::NoWhere;
    match handle.route().del(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let err = nl_err(format!("delete route {what}"))(e);
            if err.errno() == Some(libc::ESRCH) {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// The main table's unicast routes of `topo`'s protocol among dumped ones (both families).
/// IPv6 ECMP routes may come back as one route per next hop: they are merged by destination
/// and metric.
pub fn observed(routes: Vec<RouteMessage>) -> Vec<RouteObs> {
    let mut out: Vec<RouteObs> = Vec::new();
    for r in routes {
        if r.header.protocol != RouteProtocol::Other(RTPROT_TOPO)
            || r.header.table != RouteHeader::RT_TABLE_MAIN
            || r.header.kind != RouteType::Unicast
        {
            continue;
        }
        if let Some(obs) = to_obs(&r) {
            match out
                .iter_mut()
                .find(|o| o.dst == obs.dst && o.metric == obs.metric)
            {
                Some(o) => {
                    o.via.extend(obs.via);
                    o.oifs.extend(obs.oifs);
                }
                None => out.push(obs),
            }
        }
    }
    out
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn to_obs(r: &RouteMessage) -> Option<RouteObs> {
    let dst_ip = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => ip_of(d),
        _ => None,
    });
    let dst_ip = dst_ip.unwrap_or(match r.header.address_family {
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    });
    let dst = IpNetwork::new(dst_ip, r.header.destination_prefix_length).ok()?;
    let mut via = Vec::new();
    let mut oifs = Vec::new();
    let mut metric = 0;
    for a in &r.attributes {
        match a {
            RouteAttribute::Gateway(g) => via.extend(ip_of(g)),
            RouteAttribute::Oif(i) => oifs.push(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::MultiPath(hops) => {
                for h in hops {
                    oifs.push(h.interface_index);
                    for ha in &h.attributes {
                        if let RouteAttribute::Gateway(g) = ha {
                            via.extend(ip_of(g));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(RouteObs {
        dst,
        via,
        oifs,
        metric,
    })
}
