//! Routes of a node's kernel table, read over netlink and matched against a check.

// STUB: replaced by the real module.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelRoute {
    pub prefix: ipnetwork::IpNetwork,
    pub nexthops: Vec<Nexthop>,
    pub protocol: String,
    pub metric: Option<u32>,
    pub kind: String,
}
#[derive(Debug, Clone, serde::Serialize)]
pub struct Nexthop {
    pub via: Option<std::net::IpAddr>,
    pub dev: Option<String>,
}
pub fn read(_netns: &std::fs::File) -> Result<Vec<KernelRoute>, crate::net::NetError> {
    Ok(Vec::new())
}
pub struct RouteQuery {
    pub prefix: ipnetwork::IpNetwork,
    pub via: Option<std::net::IpAddr>,
    pub dev: Option<String>,
    pub protocol: Option<String>,
}
pub fn find<'a>(routes: &'a [KernelRoute], _q: &RouteQuery) -> Result<&'a KernelRoute, String> {
    routes.first().ok_or_else(|| "no route".to_string())
}
