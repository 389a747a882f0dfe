//! Imperative shortcuts for experiments (`topo link`, `topo impair`): they change one of the
//! lab's interfaces in place, as drift from the file, which `plan` shows and the next `up`
//! reverts.

use super::down::check_lab_name;
use super::LabError;
use crate::net;
use crate::net::observe::{open_namespaces, Session};
use crate::plan::names;
use crate::spec::Endpoint;
use crate::state::RunDir;

/// Parses `node:iface` (or `host:iface`).
pub fn endpoint(text: &str) -> Result<Endpoint, LabError> {
    match text.split_once(':') {
        Some((node, iface)) if !node.is_empty() && !iface.is_empty() => Ok(Endpoint {
            node: node.into(),
            iface: iface.into(),
        }),
        _ => Err(LabError::Usage(format!("'{text}' is not NODE:INTERFACE"))),
    }
}

/// An interface of the lab, found by name and checked to carry the lab's marker.
pub(super) struct Target {
    pub session: Session,
    pub ns: Option<String>,
    pub index: u32,
    pub label: String,
    _run: RunDir,
}

pub(super) async fn target(lab: &str, ep: &Endpoint) -> Result<Target, LabError> {
    check_lab_name(lab)?;
    let Some(run) = RunDir::lock_existing(lab)? else {
        return Err(LabError::Usage(format!("lab {lab} is not up")));
    };
    let mut session = Session::new(tokio::runtime::Handle::current())?;
    let ns = (!ep.is_host()).then(|| names::node_netns(lab, &ep.node));
    if let Some(ns) = &ns {
        open_namespaces(&mut session, std::slice::from_ref(ns))?;
        if !session.ns.contains_key(ns) {
            let recorded = crate::state::read_record(lab);
            if let Some(e) = recorded.and_then(|r| super::elsewhere(&r, &ep.node)) {
                return Err(e);
            }
            return Err(LabError::Usage(format!(
                "lab {lab} has no node {} (no netns {ns})",
                ep.node
            )));
        }
    }
    let handle = session.handle(ns.as_deref())?.clone();
    let label = ep.to_string();
    let msgs = net::link::dump(&handle).await?;
    let msg = msgs
        .iter()
        .find(|m| net::link::name_of(m) == Some(ep.iface.as_str()))
        .ok_or_else(|| LabError::Usage(format!("{label}: no such interface")))?;
    let ours = net::link::alias_of(msg).is_some_and(|a| a.starts_with(&names::marker_prefix(lab)));
    if !ours {
        return Err(LabError::Usage(format!(
            "{label} is not an interface of lab {lab}"
        )));
    }
    Ok(Target {
        index: msg.header.index,
        session,
        ns,
        label,
        _run: run,
    })
}

/// `topo link NODE:IF up|down`: sets the interface's admin state (only that end; a veth
/// pair carries no traffic when either end is down).
pub async fn set_link(lab: &str, ep: &Endpoint, up: bool) -> Result<(), LabError> {
    let t = target(lab, ep).await?;
    let change = net::link::LinkChange {
        up: Some(up),
        ..Default::default()
    };
    let handle = t.session.handle(t.ns.as_deref())?;
    net::link::set(handle, t.index, &t.label, &change)
        .await
        .map_err(LabError::from)
}

/// `topo impair NODE:IF …`: sets (or with `None` removes) the impairment of what leaves the
/// interface, in place.
pub async fn set_impair(
    lab: &str,
    ep: &Endpoint,
    impair: Option<&crate::spec::Impair>,
) -> Result<(), LabError> {
    use crate::net::qdisc::{self, Psched, QdiscKind};
    let t = target(lab, ep).await?;
    let handle = t.session.handle(t.ns.as_deref())?;
    match impair.and_then(QdiscKind::for_impair) {
        Some(kind) => {
            let ty = kind.qdisc_type();
            if !net::kernel_has_qdisc(&tokio::runtime::Handle::current(), ty)? {
                return Err(LabError::Kernel(format!(
                    "the kernel has no {} qdisc (module {})",
                    ty.name(),
                    ty.module()
                )));
            }
            let psched = Psched::read()?;
            qdisc::replace_root(handle, t.index, &kind, &psched).await?;
        }
        None => qdisc::delete_root(handle, t.index).await?,
    }
    Ok(())
}
