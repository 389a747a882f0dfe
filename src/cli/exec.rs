//! `topo exec` and `topo shell`: a command in one node (this process replaced by the helper
//! that runs it, with the caller's standard streams), or one command in several nodes at once
//! through [`testrun::run_in_node`], each line of output prefixed with its node.

use std::io::{IsTerminal, Write};

use super::{print_json, runtime, stdout_failed, ExecArgs, LabArgs, Output, HOW};
use crate::lab::{self, testrun, LabError};

/// The status of a node `topo exec` could not run the command in (as the helper's own
/// status when it cannot enter a node).
const NOT_RUN: i32 = 126;

/// `topo exec [-f FILE [--name NAME] | --lab NAME] (NODE | --nodes A,B | --all) [--] COMMAND…`
pub(super) fn cmd_exec(args: ExecArgs) -> Result<i32, LabError> {
    let ExecArgs {
        lab,
        nodes,
        all,
        output,
        node,
        mut command,
    } = args;
    let several = all || !nodes.is_empty();
    let node = match (node, several) {
        // With --nodes or --all, the first word is the command's.
        (Some(first), true) => {
            command.insert(0, first);
            None
        }
        (node, _) => node,
    };
    if node.is_none() && !several {
        return Err(LabError::Usage(
            "give the NODE to run the command in (or --nodes NODE,NODE…, or --all)".into(),
        ));
    }
    let name = lab.resolve(HOW)?;
    if let (Some(node), Output::Text) = (&node, output) {
        if command.is_empty() {
            return shell(&name, node);
        }
        flush_stdout();
        return lab::exec_here(&name, node, &command, std::io::stdin().is_terminal(), &[]);
    }
    if command.is_empty() {
        return Err(LabError::Usage(
            "give the COMMAND to run (an interactive shell runs in one node: `topo shell NODE`)"
                .into(),
        ));
    }
    let targets = match node {
        Some(node) => vec![node],
        None if all => lab::node_names(&name)?,
        None => {
            let mut seen = Vec::new();
            for n in nodes.into_iter().filter(|n| !n.is_empty()) {
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            seen
        }
    };
    // Every node is checked before the command runs in any.
    for n in &targets {
        lab::node_target(&name, n)?;
    }
    run_in_nodes(&name, &targets, &command, output)
}

/// One node's result, as `-o json` prints it.
#[derive(serde::Serialize)]
struct NodeResult {
    node: String,
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs `command` in every node of `targets` at once. Text: each line as it comes, prefixed
/// `NODE| `, on standard output or standard error as the command wrote it. JSON: a list of
/// [`NodeResult`], in the order of `targets`, once all have ended. The status: 0 when every
/// node's command exited 0, else that of the first node (in the order of `targets`) whose
/// command did not.
fn run_in_nodes(
    lab: &str,
    targets: &[String],
    command: &[String],
    output: Output,
) -> Result<i32, LabError> {
    let text = output == Output::Text;
    let printers: Vec<_> = targets
        .iter()
        .map(|n| {
            let prefix = format!("{n}| ");
            move |stderr: bool, line: &[u8]| print_line(&prefix, stderr, line)
        })
        .collect();
    let runs = targets.iter().zip(&printers).map(|(node, print)| {
        let on_line: Option<testrun::OnLine> = if text { Some(print) } else { None };
        testrun::run_in_node(lab, node, command, None, on_line)
    });
    let done = runtime()?.block_on(futures::future::join_all(runs));
    let mut results = Vec::with_capacity(targets.len());
    for (node, r) in targets.iter().zip(done) {
        results.push(match r {
            Ok(out) => NodeResult {
                node: node.clone(),
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            },
            Err(e) => {
                let message = format!("topo: error: {e}\n");
                if text {
                    print_line(&format!("{node}| "), true, message.as_bytes());
                }
                NodeResult {
                    node: node.clone(),
                    status: NOT_RUN,
                    stdout: String::new(),
                    stderr: message,
                }
            }
        });
    }
    if !text {
        print_json(&results);
    }
    Ok(overall_status(results.iter().map(|r| r.status)))
}

/// 0 when every status is 0, else the first that is not.
fn overall_status(statuses: impl IntoIterator<Item = i32>) -> i32 {
    statuses.into_iter().find(|&s| s != 0).unwrap_or(0)
}

/// Writes `prefix` and `line` (ended with a newline) in one write, to standard output or
/// standard error: lines of several nodes never mix.
fn print_line(prefix: &str, stderr: bool, line: &[u8]) {
    let mut buf = Vec::with_capacity(prefix.len() + line.len() + 1);
    buf.extend_from_slice(prefix.as_bytes());
    buf.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        buf.push(b'\n');
    }
    if stderr {
        let _ = std::io::stderr().lock().write_all(&buf);
    } else if let Err(e) = std::io::stdout().lock().write_all(&buf) {
        stdout_failed(e);
    }
}

fn flush_stdout() {
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
}

/// `topo shell [-f FILE [--name NAME] | --lab NAME] NODE`
pub(super) fn cmd_shell(lab: LabArgs, node: &str) -> Result<i32, LabError> {
    let name = lab.resolve(HOW)?;
    shell(&name, node)
}

/// What `topo shell` runs in the node, with `/bin/sh -c`: bash when the node has it, without
/// its startup files (which would set a prompt of their own), else `/bin/sh`; interactive
/// (`-i`) also when standard input is not a terminal, so that it keeps `PS1`.
const SHELL: &str = "command -v bash >/dev/null 2>&1 && exec bash --norc -i; exec /bin/sh -i";

/// The prompt of `topo shell` in `node`: the node's name and the working directory.
fn prompt(node: &str) -> String {
    format!("{node}:$PWD# ")
}

/// Runs a shell in the node: `PS1` names the node, and the caller's `TERM` is passed on
/// (also when standard input is not a terminal).
fn shell(lab: &str, node: &str) -> Result<i32, LabError> {
    let tty = std::io::stdin().is_terminal();
    let mut env = vec![("PS1".to_string(), prompt(node))];
    if !tty {
        // On a terminal, `exec_here` passes it on itself.
        if let Ok(term) = std::env::var("TERM") {
            env.push(("TERM".to_string(), term));
        }
    }
    let argv = ["/bin/sh", "-c", SHELL].map(str::to_string);
    flush_stdout();
    lab::exec_here(lab, node, &argv, tty, &env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_of_several_is_the_first_failure_in_node_order() {
        assert_eq!(overall_status([0, 0, 0]), 0);
        assert_eq!(overall_status([0, 3, 1]), 3);
        assert_eq!(overall_status([1, 3]), 1);
        assert_eq!(overall_status([]), 0);
    }

    #[test]
    fn the_prompt_names_the_node() {
        assert_eq!(prompt("r1"), "r1:$PWD# ");
    }
}
