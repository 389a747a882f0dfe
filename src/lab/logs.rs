//! `topo logs`: the logs of a node's services and `exec:` commands, read from the lab's run
//! directory while it is up, else from its newest archive (see `state::archive`).

use std::collections::BTreeSet;

use super::LabError;
use crate::state::archive::ArchiveName;
use crate::state::logread::{copy_parts, tail_start, Follower, LogDir, Prefixed};

/// The name `topo logs` takes for a node's `exec:` log.
pub const EXEC: &str = "exec";

/// Where the logs are read from.
pub enum Source {
    /// The run directory of a lab that is up.
    Live,
    /// The lab's newest archive.
    Archive(ArchiveName),
}

/// The logs that `topo logs` prints.
pub struct Selected {
    pub source: Source,
    dir: LogDir,
    /// Each log: its label (the service, or `exec`), its file name without `.log`, and the
    /// numbers of its parts.
    logs: Vec<(String, String, Vec<u32>)>,
    /// Lines are prefixed with the label (every log of a node is printed).
    prefixed: bool,
}

/// Finds the logs of `node` (one `service`'s, or `exec`, or every log of the node) in the lab's
/// run directory, or in its newest archive when the lab is not up. An unknown node or service
/// is bad input (exit 2), with the closest name as a hint.
pub fn select(lab: &str, node: &str, service: Option<&str>) -> Result<Selected, LabError> {
    super::down::check_lab_name(lab)?;
    let (dir, source, mut nodes) = match LogDir::live(lab)? {
        Some(dir) => {
            // Nodes that are up but have written no log yet are nodes all the same.
            let recorded: BTreeSet<String> = crate::state::read_record(lab)
                .map(|s| s.nodes.into_keys().collect())
                .unwrap_or_default();
            (dir, Source::Live, recorded)
        }
        None => match LogDir::archived(lab)? {
            Some((dir, name)) => (dir, Source::Archive(name), BTreeSet::new()),
            None => {
                return Err(LabError::Usage(format!(
                    "lab {lab} is not up and has no archived logs (in {})",
                    crate::state::archive::root().join(lab).display()
                )))
            }
        },
    };
    let all = dir.logs()?;
    let mut services: Vec<(String, String, Vec<u32>)> = Vec::new();
    for (file, parts) in all {
        let Some((n, s)) = file.split_once('.') else {
            continue;
        };
        nodes.insert(n.to_string());
        if n == node {
            services.push((s.to_string(), file.clone(), parts));
        }
    }
    if !nodes.contains(node) {
        let mut msg = format!("lab {lab} has no node {node}");
        let looks_like_a_file = node.contains(['.', '/']) && std::path::Path::new(node).is_file();
        if looks_like_a_file {
            msg.push_str(
                "; -f of `topo logs` is --follow: give the topology file with --file FILE",
            );
        } else if let Some(near) = crate::spec::did_you_mean(node, nodes.iter().map(String::as_str))
        {
            msg.push_str(&format!("; did you mean {near}?"));
        }
        if !nodes.is_empty() && !looks_like_a_file {
            msg.push_str(&format!(
                " (nodes: {})",
                nodes.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        return Err(LabError::Usage(msg));
    }
    // The `exec:` log first (its commands run before the services start), then the services.
    services.sort_by(|a, b| (a.0 != EXEC, &a.0).cmp(&(b.0 != EXEC, &b.0)));
    let prefixed = service.is_none();
    let logs = match service {
        None => services,
        Some(want) => match services.iter().position(|s| s.0 == want) {
            Some(i) => vec![services.swap_remove(i)],
            None => {
                let names: Vec<&str> = services.iter().map(|s| s.0.as_str()).collect();
                let mut msg = format!("node {node} of lab {lab} has no log {want}");
                if let Some(near) = crate::spec::did_you_mean(want, names.iter().copied()) {
                    msg.push_str(&format!("; did you mean {near}?"));
                }
                if names.is_empty() {
                    msg.push_str(" (it has no logs: no `exec:` commands or services)");
                } else {
                    msg.push_str(&format!(" (logs: {})", names.join(", ")));
                }
                return Err(LabError::Usage(msg));
            }
        },
    };
    Ok(Selected {
        source,
        dir,
        logs,
        prefixed,
    })
}

impl Selected {
    /// The directory read.
    pub fn path(&self) -> &std::path::Path {
        &self.dir.path
    }

    /// The node has no logs at all.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }

    /// Passes every selected log to `out`, or its last `lines` lines (of each log), one log
    /// after the other, each line prefixed `SERVICE| ` when every log of the node is printed.
    /// Returns what follows the logs from there.
    pub fn print(
        self,
        lines: Option<usize>,
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<Printer, LabError> {
        let io = |path: &std::path::Path| {
            let what = format!("read {}", path.display());
            move |source| LabError::State(crate::state::StateError::Io { what, source })
        };
        let mut streams = Vec::new();
        for (label, file, numbers) in &self.logs {
            let parts = self.dir.parts(file, numbers);
            let start = match lines {
                Some(n) => tail_start(&parts, n).map_err(io(&self.dir.path.join(file)))?,
                None => (0, 0),
            };
            let mut prefix = self.prefixed.then(|| Prefixed::new(&format!("{label}| ")));
            match &mut prefix {
                Some(p) => copy_parts(&parts, start, &mut |b| p.feed(b, out)),
                None => copy_parts(&parts, start, out),
            }
            .map_err(io(&self.dir.path.join(file)))?;
            streams.push(Stream {
                follower: Follower::after(file, parts),
                prefix,
                file: file.clone(),
            });
        }
        Ok(Printer {
            dir: self.dir,
            streams,
        })
    }
}

struct Stream {
    follower: Follower,
    prefix: Option<Prefixed>,
    file: String,
}

/// The selected logs after what was printed of them, to follow.
pub struct Printer {
    dir: LogDir,
    streams: Vec<Stream>,
}

impl Printer {
    /// Passes to `out` what was written to the logs since the last call.
    pub fn poll(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), LabError> {
        for s in &mut self.streams {
            let r = match &mut s.prefix {
                Some(p) => s.follower.poll(&self.dir, &mut |b| p.feed(b, out)),
                None => s.follower.poll(&self.dir, out),
            };
            r.map_err(|source| {
                LabError::State(crate::state::StateError::Io {
                    what: format!("read {}", self.dir.path.join(&s.file).display()),
                    source,
                })
            })?;
        }
        Ok(())
    }

    /// Ends the last line of each log that has no newline yet.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        for s in &mut self.streams {
            if let Some(p) = &mut s.prefix {
                p.finish(out);
            }
        }
    }

    /// Whether the logs read are still those of the lab's run directory (it is still up).
    pub fn is_live(&self, lab: &str) -> bool {
        self.dir.is_live(lab)
    }
}
