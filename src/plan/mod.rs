//! `plan`: the difference between the desired lab and what the kernel holds, as an ordered
//! list of actions. Pure: the same inputs always give the same plan, and no syscall is made.

pub mod desired;
pub mod names;
pub mod observed;

mod diff;
mod inits;
#[cfg(test)]
mod scenarios;

pub use desired::{
    compile, Crossing, Desired, End, IfaceKind, IfaceSpec, NsSpec, RouteSpec, VethSpec, VxlanSpec,
};
pub use diff::{diff, fmt_impair, simulate, Action, Phase, Plan};
pub use inits::{inits_cover_lab, node_inits, NodeInits, RecordedInit};
pub use observed::{
    AddrObs, LinkObs, NodeObs, NsObserved, NsState, Observed, ProcId, QdiscObs, RouteObs,
    ServiceObs,
};
