//! The checks of `topo test`: what a step asks of a running lab, read from the kernel and
//! from the nodes' daemons.

pub mod daemons;
pub mod icmp;
pub mod json;
pub mod report;
pub mod routes;
