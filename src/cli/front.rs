//! `topo`, the program a command line starts: a small front to `topo-core`, the program that
//! does everything else, installed next to it.
//!
//! The front serves the plain `topo exec [--lab NAME] NODE [--] COMMAND…` itself, through the
//! node's init ([`crate::node::channel`]), when standard input is not a terminal and
//! `TOPO_LOG` is not set: the form test suites run thousands of times. Anything else, and a
//! plain `topo exec` the channel does not take, it hands to `topo-core` by executing it with
//! the same arguments, environment and process: nothing has run in a node then.
//!
//! Why two programs: what a short command costs is mostly the start of its program, and that
//! grows with the program's size. Each start of a position-independent executable applies its
//! relocations, which writes every page of its relocated data, and maps the code it touches
//! in 64 KiB windows that its exit unmaps again. `topo-core` holds all of `topo`; the front
//! holds only what the exec channel's client needs, and starts in a fraction of the time
//! (docs/performance.md). Both stay position-independent, with address-space randomization.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// The file name of the program that does everything the front does not.
pub const CORE: &str = "topo-core";

/// The front's `main`: the exit status of a command it ran in a node; else it becomes
/// `topo-core` and returns only when that cannot start.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = exec_in_node(&args) {
        return code;
    }
    run_core(&args)
}

/// Runs a plain `topo exec` through the node's init: its exit status, or `None` when the
/// command line is not one, or `topo-core` is to take it.
fn exec_in_node(args: &[OsString]) -> Option<i32> {
    // A terminal takes a relay, and a log is set up by `topo-core`.
    if std::env::var_os("TOPO_LOG").is_some() || std::io::stdin().is_terminal() {
        return None;
    }
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect::<Option<_>>()?;
    let plain = super::read_plain_exec(&args)?;
    let lab = match plain.lab {
        Some(lab) => lab.to_string(),
        // No lab, or more than one: `topo-core` says so.
        None => crate::lab::only_lab(super::HOW).ok()?,
    };
    crate::lab::exec_through_channel(&lab, plain.node, plain.command, &[])
}

/// Becomes `topo-core` (the same PID, arguments and environment); returns only when it
/// cannot, with the status a shell gives a command it cannot run.
fn run_core(args: &[OsString]) -> i32 {
    let core = match core_path() {
        Ok(core) => core,
        Err(e) => {
            eprintln!("topo: error: find this program's directory (for {CORE}): {e}");
            return 126;
        }
    };
    let mut command = std::process::Command::new(&core);
    if let Some(name) = args.first() {
        command.arg0(name);
    }
    command.args(args.iter().skip(1));
    let err = command.exec();
    eprintln!(
        "topo: error: run {}: {err}\n  hint: topo runs {CORE} from its own directory; install both programs together",
        core.display()
    );
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// `topo-core` in the directory of this program (its real path, through `/proc/self/exe`).
fn core_path() -> std::io::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name(CORE))
}
