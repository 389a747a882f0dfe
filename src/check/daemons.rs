//! Routing daemons' own view of their neighbours: the commands that ask FRR and BIRD, and
//! readers of their answers.

// STUB: replaced by the real module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Daemon {
    Frr,
    Bird,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Family {
    V4,
    V6,
}
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OspfNeighbor {
    pub router_id: String,
    pub address: Option<std::net::IpAddr>,
    pub interface: Option<String>,
    pub state: String,
}
pub fn ospf_command(_d: Daemon, _f: Family) -> String {
    String::new()
}
pub fn parse_ospf(_d: Daemon, _f: Family, _output: &str) -> Result<Vec<OspfNeighbor>, String> {
    Ok(Vec::new())
}
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BgpSession {
    pub peer: String,
    pub address: Option<std::net::IpAddr>,
    pub state: String,
    pub remote_as: Option<u32>,
    pub prefixes_received: Option<u64>,
}
pub fn bgp_command(_d: Daemon) -> String {
    String::new()
}
pub fn parse_bgp(_d: Daemon, _output: &str) -> Result<Vec<BgpSession>, String> {
    Ok(Vec::new())
}
pub fn daemon_of<'a>(_commands: impl IntoIterator<Item = &'a str>) -> Option<Daemon> {
    None
}
