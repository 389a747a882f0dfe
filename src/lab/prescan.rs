//! The observation started before the file is parsed (see
//! [`Lab::load_prescanned_as`]).
//!
//! [`Lab::load_prescanned_as`]: super::Lab::load_prescanned_as

use std::path::Path;

use crate::net::observe::{observe, Depth, Session};
use crate::plan::Observed;
use crate::state::{RunDir, State};

use super::observe::{node_procs, processes_on_thread, recorded_inits, Scanned};

/// An observation started before the file is parsed, for the lab its `name:` line names.
#[derive(Debug)]
pub(super) struct Prescan {
    pub(super) lab: String,
    /// The processes half, from the record; used only if the record read under the lock
    /// names the same inits.
    pub(super) processes: std::thread::JoinHandle<Scanned>,
    /// The namespaces half, when a runtime was given.
    pub(super) net: Option<NetPrescan>,
}

/// The network half of an observation, made under the lab's lock (so no other `topo`
/// changes the lab meanwhile). Without the desired state it reads no sysctls and no host
/// links by name: the sysctls are read once the file is parsed.
pub(super) struct NetPrescan {
    pub(super) run: RunDir,
    pub(super) state: State,
    pub(super) task: tokio::task::JoinHandle<Result<(Session, Observed), crate::net::NetError>>,
}

impl std::fmt::Debug for NetPrescan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPrescan")
            .field("lab", &self.run.lab)
            .finish()
    }
}

/// Starts the prescan of [`Lab::load_prescanned_as`](super::Lab::load_prescanned_as) for `lab`
/// (the name the file's `name:` line gives, or the one it is run as), when it has a record.
pub(super) fn start(lab: Option<String>, rt: Option<&tokio::runtime::Handle>) -> Option<Prescan> {
    lab.filter(|lab| crate::state::has_record(lab)).map(|lab| {
        let net = rt.and_then(|rt| start_net_prescan(&lab, rt));
        // The record read under the lock, when there is one; else read it here.
        let locked = net.as_ref().map(|n| recorded_inits(&n.state));
        let name = lab.clone();
        let processes = processes_on_thread(lab.clone(), move || match locked {
            Some(r) => Some(r),
            None => Some(recorded_inits(&crate::state::read_record(&name)?)),
        });
        Prescan {
            lab,
            processes,
            net,
        }
    })
}

/// Starts observing the lab's namespaces on `rt`, holding its lock: only for a lab with a
/// record and nothing in creation (whose half-made namespaces the desired state decides).
fn start_net_prescan(lab: &str, rt: &tokio::runtime::Handle) -> Option<NetPrescan> {
    let run = RunDir::lock_existing(lab).ok()??;
    let state = run.load();
    if state.nodes.is_empty() || !state.creating.is_empty() {
        return None;
    }
    let name = lab.to_string();
    let handle = rt.clone();
    // The sysctls of the record's last file: after the parse, only new keys are read.
    let keys = state.sysctl_keys.clone();
    let procs = node_procs(lab, &state);
    let task = rt.spawn(async move {
        let mut session = Session::new(handle)?;
        session.procs = procs;
        let observed = observe(&mut session, &name, None, &keys, &[], Depth::Full).await?;
        Ok((session, observed))
    });
    Some(NetPrescan { run, state, task })
}

/// The lab name a topology file's top-level `name:` line gives, read without parsing the
/// file (a guess: the parsed name decides).
pub(super) fn guess_name(path: &Path) -> Option<String> {
    use std::io::BufRead;
    // Line by line up to the first match (usually near the top): the parser reads the whole
    // file anyway.
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    guess_name_in(file.lines().map_while(Result::ok))
}

/// [`guess_name`] of a text already read (standard input).
pub(super) fn guess_name_in_text(text: &str) -> Option<String> {
    guess_name_in(text.lines().map(str::to_string))
}

fn guess_name_in(mut lines: impl Iterator<Item = String>) -> Option<String> {
    let line = lines.find(|l| l.starts_with("name:"))?;
    let value = line["name:".len()..].split('#').next()?.trim();
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    super::down::check_lab_name(value).ok()?;
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::guess_name;

    fn guess(text: &str) -> Option<String> {
        let dir = std::env::temp_dir().join(format!("topo-guess-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let file = dir.join(format!("{}.yaml", text.len()));
        std::fs::write(&file, text).ok()?;
        let out = guess_name(&file);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn the_name_guess_reads_only_a_plain_top_level_name_line() {
        assert_eq!(
            guess("# lab\nname: lab1\nnodes: {}\n").as_deref(),
            Some("lab1")
        );
        assert_eq!(guess("name: \"q-2\"  # quoted\n").as_deref(), Some("q-2"));
        assert_eq!(guess("name: 'sq'\n").as_deref(), Some("sq"));
        // Indented (not top level), invalid as a lab name, or absent: no guess.
        assert_eq!(guess("nodes:\n  name: r1\n"), None);
        assert_eq!(guess("name: Not/A/Lab\n"), None);
        assert_eq!(guess("name: averyveryverylongname\n"), None);
        assert_eq!(guess("nodes: {}\n"), None);
    }
}
