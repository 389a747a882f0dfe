//! `cli`: argument parsing, output and exit codes. Thin: every command is a call into
//! [`crate::lab`].

/// `println!` to standard output that never panics: a closed pipe ends `topo` quietly.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to standard output that never panics (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a message that cannot be written is dropped.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod capture;
mod graph;
mod ls;
mod shapes;
mod status;
mod test;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::lab::{self, Lab, LabError};

#[derive(Parser)]
#[command(
    name = "topo",
    version,
    about = "Declarative network labs on one Linux host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LinkStateArg {
    Up,
    Down,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check a topology file (no kernel access); exit 2 on errors
    Validate { file: PathBuf },
    /// Show what `up` would create, change and delete, against the live kernel
    Plan {
        file: PathBuf,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Make the kernel match the file (idempotent; applies only the difference)
    Up {
        file: PathBuf,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Remove everything of a lab, and nothing else
    Down {
        /// The topology file (its `name` says which lab)
        file: Option<PathBuf>,
        /// The lab's name, when the file is gone
        #[arg(long, conflicts_with = "file")]
        lab: Option<String>,
        /// A lab that is not up is no error: exit 0 (idempotent teardown, e.g. in CI)
        #[arg(long)]
        missing_ok: bool,
        /// Remove the lab's logs instead of keeping them in the archive ($TOPO_LOG_DIR)
        #[arg(long)]
        discard_logs: bool,
    },
    /// Nodes, interfaces, addresses, routes and processes of a lab
    Status {
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        lab: Option<String>,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
        /// Show this node in full (interfaces, routes, limits, security, services)
        node: Option<String>,
        /// More columns in the table: MAC, MTU, impairment, routes, memory
        #[arg(short, long)]
        wide: bool,
    },
    /// The labs on this host: name, nodes, state (up, partial, down) and file
    Ls {
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run a command inside a node; exits with the command's status
    Exec {
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        lab: Option<String>,
        node: String,
        /// The command and its arguments (after `--`); default: an interactive shell
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Print a node's logs (its services and `exec:` commands), live or archived after `down`
    Logs {
        /// The topology file (its `name` says which lab); `-f` is --follow here
        #[arg(long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// The lab's name
        #[arg(long, conflicts_with = "file")]
        lab: Option<String>,
        node: String,
        /// A service of the node, or `exec` for its `exec:` commands; default: every log of
        /// the node, each line prefixed `SERVICE| `
        service: Option<String>,
        /// Keep printing what is written until interrupted, as `tail -f`
        #[arg(short = 'f', long)]
        follow: bool,
        /// Print only the last LINES lines of each log
        #[arg(short = 'n', long, value_name = "LINES")]
        lines: Option<usize>,
    },
    /// Set one interface of a lab up or down, as drift from the file (`up` reverts it)
    Link {
        #[arg(long)]
        lab: Option<String>,
        /// NODE:INTERFACE
        endpoint: String,
        #[arg(value_enum)]
        state: LinkStateArg,
    },
    /// Impair what leaves one interface, as drift from the file (`up` reverts it)
    Impair {
        #[arg(long)]
        lab: Option<String>,
        /// NODE:INTERFACE
        endpoint: String,
        #[command(flatten)]
        impair: ImpairArgs,
        /// Remove the impairment
        #[arg(long, conflicts_with_all = ["delay", "jitter", "loss", "corrupt", "duplicate", "reorder", "rate"])]
        clear: bool,
    },
    /// Run the file's tests against its lab (brought up first, taken down after); exit 0 when
    /// all pass, 1 when a step fails, 2 for a bad file, 3 when the lab cannot come up
    Test(test::TestArgs),
    /// Print the topology as a DOT or Mermaid graph
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        /// Show each end's addresses (from the file) with its interface name
        #[arg(long)]
        addresses: bool,
    },
    /// Capture packets of a lab's interfaces as pcapng (to a file or a pipe)
    Capture(capture::CaptureArgs),
    /// Print the JSON Schema of topology files
    Schema,
    /// Print a generated topology file (chain, ring, star, tree, clos)
    Gen(shapes::GenOptions),
    /// Print a shell completion script (e.g. `topo completions bash > /etc/bash_completion.d/topo`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `topo man | man -l -`)
    Man,
}

/// The impairment options of `topo impair`, read as the file's `impair:` keys are.
#[derive(Args)]
struct ImpairArgs {
    #[arg(long)]
    delay: Option<String>,
    #[arg(long)]
    jitter: Option<String>,
    #[arg(long)]
    loss: Option<String>,
    #[arg(long)]
    corrupt: Option<String>,
    #[arg(long)]
    duplicate: Option<String>,
    #[arg(long)]
    reorder: Option<String>,
    #[arg(long)]
    rate: Option<String>,
}

impl From<ImpairArgs> for crate::spec::ImpairText {
    fn from(a: ImpairArgs) -> Self {
        crate::spec::ImpairText {
            delay: a.delay,
            jitter: a.jitter,
            loss: a.loss,
            corrupt: a.corrupt,
            duplicate: a.duplicate,
            reorder: a.reorder,
            rate: a.rate,
        }
    }
}

/// Set by [`main`]: this process is the `topo` binary (under whatever name), not a program
/// that links the library, such as a test.
static IS_TOPO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is the `topo` binary, whose own executable provides the helpers.
pub(crate) fn is_topo() -> bool {
    IS_TOPO.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    IS_TOPO.store(true, std::sync::atomic::Ordering::Relaxed);
    let args: Vec<String> = std::env::args().collect();
    // Hidden helper modes, dispatched before anything starts a thread (see `node`).
    match args.get(1).map(String::as_str) {
        Some("__enter") => return crate::node::enter::main(&args[2..]),
        Some("__spawn") => return crate::node::init::spawn_main(&args[2..]),
        Some("__log") => return crate::state::log::main(&args[2..]),
        _ => {}
    }
    let cli = Cli::parse();
    crate::node::raise_nofile_limit();
    init_logging();
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            errln!("{}", render_error(&e));
            e.exit_code()
        }
    };
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
    code
}

/// The exit status of a `topo` whose standard output was closed by its reader (`topo status
/// | head`): that of a program killed by SIGPIPE, as the shell reports it.
const CLOSED_PIPE: i32 = 128 + libc::SIGPIPE;

/// Writes to standard output (see [`outln!`]).
fn write_out(args: std::fmt::Arguments) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(e);
    }
}

/// Standard output cannot be written: a reader that went away ends `topo` quietly with
/// [`CLOSED_PIPE`]; any other error (a full disk) is reported, with status 1.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_PIPE);
    }
    errln!("topo: error: write to standard output: {e}");
    std::process::exit(1)
}

/// Colour in log messages only for a person: standard error is a terminal and `NO_COLOR`
/// is not set (<https://no-color.org>).
fn log_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOPO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Commands that work on the kernel's namespaces need root; said first, before anything
/// else fails for want of it.
fn require_root(command: &'static str) -> Result<(), LabError> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot {
            command,
            uid: uid.as_raw(),
        })
    }
}

fn render_error(e: &LabError) -> String {
    match e {
        LabError::Spec(d) => d.to_string(),
        other => format!("topo: error: {other}"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, LabError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(LabError::Runtime)
}

fn run(command: Command) -> Result<i32, LabError> {
    match &command {
        Command::Plan { .. } => require_root("plan")?,
        Command::Up { .. } => require_root("up")?,
        Command::Down { .. } => require_root("down")?,
        Command::Status { .. } => require_root("status")?,
        Command::Ls { .. } => require_root("ls")?,
        Command::Exec { .. } => require_root("exec")?,
        Command::Link { .. } => require_root("link")?,
        Command::Impair { .. } => require_root("impair")?,
        Command::Test(_) => require_root("test")?,
        Command::Capture(_) => require_root("capture")?,
        Command::Validate { .. }
        | Command::Logs { .. }
        | Command::Graph { .. }
        | Command::Schema
        | Command::Gen(_)
        | Command::Completions { .. }
        | Command::Man => {}
    }
    match command {
        Command::Validate { file } => cmd_validate(&file),
        Command::Plan { file, output } => cmd_plan(&file, output),
        Command::Up { file, output } => cmd_up(&file, output),
        Command::Down {
            file,
            lab,
            missing_ok,
            discard_logs,
        } => cmd_down(file, lab, missing_ok, discard_logs),
        Command::Status {
            file,
            lab,
            output,
            node,
            wide,
        } => cmd_status(file, lab, output, node, wide),
        Command::Ls { output } => ls::cmd_ls(output),
        Command::Exec {
            file,
            lab,
            node,
            command,
        } => cmd_exec(file, lab, &node, command),
        Command::Logs {
            file,
            lab,
            node,
            service,
            follow,
            lines,
        } => cmd_logs(file, lab, &node, service.as_deref(), follow, lines),
        Command::Link {
            lab,
            endpoint,
            state,
        } => cmd_link(lab, &endpoint, state),
        Command::Impair {
            lab,
            endpoint,
            impair,
            clear,
        } => cmd_impair(lab, &endpoint, impair.into(), clear),
        Command::Test(args) => test::cmd_test(args),
        Command::Graph {
            file,
            format,
            addresses,
        } => cmd_graph(&file, format, graph::Options { addresses }),
        Command::Capture(args) => capture::cmd_capture(args),
        Command::Schema => cmd_schema(),
        Command::Gen(options) => cmd_gen(&options.into()),
        Command::Completions { shell } => cmd_completions(shell),
        Command::Man => cmd_man(),
    }
}

/// `topo validate FILE`
fn cmd_validate(file: &Path) -> Result<i32, LabError> {
    let lab = Lab::load(file)?;
    let t = &lab.topology;
    outln!(
        "{}: ok: lab {}, {} nodes, {} links, {} bridges",
        file.display(),
        t.name,
        t.nodes.len(),
        t.links.len(),
        t.bridges.len()
    );
    Ok(0)
}

/// `topo plan FILE`
fn cmd_plan(file: &Path, output: Output) -> Result<i32, LabError> {
    let rt = runtime()?;
    let lab = Lab::load_prescanned(file, Some(rt.handle()))?;
    let plan = rt.block_on(lab.plan())?;
    match output {
        Output::Json => print_json(&plan),
        Output::Text if plan.is_empty() => outln!("lab {}: no changes", lab.name()),
        Output::Text => out!("{plan}"),
    }
    Ok(0)
}

/// `topo up FILE`
fn cmd_up(file: &Path, output: Output) -> Result<i32, LabError> {
    let started = std::time::Instant::now();
    let rt = runtime()?;
    let lab = Lab::load_prescanned(file, Some(rt.handle()))?;
    let name = lab.name().to_string();
    let bar = progress_bar();
    let ticker = bar.clone();
    let show = std::sync::Arc::new(move |phase: &str, done: usize, total: usize| {
        if let Some(b) = &ticker {
            b.set_length(total as u64);
            b.set_position(done as u64);
            b.set_message(phase.to_string());
        }
    });
    let report = rt.block_on(async {
        // The handlers are installed before `up` starts, so a signal can never find
        // them missing and kill the process mid-step.
        let stop = interrupted();
        tokio::select! {
            biased;
            sig = stop => Err(LabError::Interrupted {
                lab: name.clone(),
                signal: sig,
                file: file.display().to_string(),
            }),
            r = lab.up_with_progress(Some(show)) => r,
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    // The time shown is the whole command's: reading the file and the kernel, planning,
    // applying, and letting go of the lab and the runtime.
    drop(lab);
    drop(rt);
    let seconds = started.elapsed().as_secs_f64();
    match output {
        Output::Json => print_json(&report.plan),
        Output::Text => {
            print_applied(&report.plan);
            let n = report.plan.visible().count();
            if n == 0 {
                outln!("lab {name}: up to date, no changes ({seconds:.2}s)");
            } else {
                outln!("lab {name}: up, {n} changes ({seconds:.2}s)");
            }
        }
    }
    Ok(0)
}

/// `topo down [FILE | --lab NAME] [--missing-ok] [--discard-logs]`
fn cmd_down(
    file: Option<PathBuf>,
    lab: Option<String>,
    missing_ok: bool,
    discard_logs: bool,
) -> Result<i32, LabError> {
    let name = lab_name(file, lab, "FILE or --lab NAME")?;
    let had_run_dir = crate::state::labs().contains(&name);
    let options = lab::DownOptions { discard_logs };
    let report = runtime()?.block_on(lab::down_with(&name, options))?;
    for f in &report.foreign {
        errln!("topo: note: left {f} alone: it has the lab's prefix but is not this lab's");
    }
    for w in &report.warnings {
        errln!("topo: warning: {w}");
    }
    let found_nothing =
        report.namespaces.is_empty() && report.host_links.is_empty() && report.processes == 0;
    if !had_run_dir && found_nothing {
        if missing_ok {
            outln!("lab {name}: not up, nothing to remove");
            return Ok(0);
        }
        return Err(LabError::Usage(format!(
            "lab {name} is not up: it has no run directory, namespace, host link or node process (--missing-ok: exit 0 for this)"
        )));
    }
    outln!(
        "lab {name}: down ({} namespaces, {} host links, {} node processes removed)",
        report.namespaces.len(),
        report.host_links.len(),
        report.processes
    );
    if let Some(logs) = &report.logs {
        outln!("lab {name}: logs kept in {}", logs.display());
    }
    Ok(0)
}

/// `topo status [-f FILE | --lab NAME] [NODE] [--wide] [-o text|json]`
fn cmd_status(
    file: Option<PathBuf>,
    lab: Option<String>,
    output: Output,
    node: Option<String>,
    wide: bool,
) -> Result<i32, LabError> {
    let name = lab_name(file, lab, "--lab NAME or -f FILE")?;
    let mut status = runtime()?.block_on(lab::status(&name))?;
    if let Some(node) = &node {
        status = status::only_node(status, node)?;
    }
    match output {
        Output::Json => print_json(&status),
        Output::Text => {
            out!("{}", status::heading(&status));
            match status.nodes.first() {
                Some(n) if node.is_some() => out!("{}", status::node_detail(&status, n)),
                _ => {
                    let columns = if wide {
                        status::Columns::Wide
                    } else {
                        status::Columns::Narrow
                    };
                    out!("{}", status::table(&status, columns));
                }
            }
        }
    }
    Ok(0)
}

/// `topo exec [-f FILE | --lab NAME] NODE [-- COMMAND…]`: the command's exit status.
fn cmd_exec(
    file: Option<PathBuf>,
    lab: Option<String>,
    node: &str,
    command: Vec<String>,
) -> Result<i32, LabError> {
    let name = lab_name(file, lab, "--lab NAME or -f FILE")?;
    let argv = if command.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        command
    };
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
    Err(lab::exec_replacing(
        &name,
        node,
        &argv,
        std::io::stdin().is_terminal(),
    ))
}

/// `topo logs [--file FILE | --lab NAME] NODE [SERVICE] [-f] [-n LINES]`
fn cmd_logs(
    file: Option<PathBuf>,
    lab: Option<String>,
    node: &str,
    service: Option<&str>,
    follow: bool,
    lines: Option<usize>,
) -> Result<i32, LabError> {
    let how = "--lab NAME or --file FILE";
    let name = match lab_name(file, lab, how) {
        Err(LabError::Usage(msg)) if crate::state::labs().is_empty() => {
            let archived = crate::state::archive::archived_labs();
            return Err(LabError::Usage(if archived.is_empty() {
                msg
            } else {
                format!("{msg} (labs with archived logs: {})", archived.join(", "))
            }));
        }
        other => other?,
    };
    let selected = lab::logs::select(&name, node, service)?;
    let live = match &selected.source {
        lab::logs::Source::Live => true,
        lab::logs::Source::Archive(when) => {
            errln!(
                "topo: note: lab {name} is down; logs of {} from {}{}",
                when.time(),
                selected.path().display(),
                if follow { " (nothing to follow)" } else { "" }
            );
            false
        }
    };
    if selected.is_empty() {
        errln!(
            "topo: note: node {node} of lab {name} has no logs (no `exec:` commands or services)"
        );
        return Ok(0);
    }
    let mut emit = |bytes: &[u8]| write_bytes(bytes);
    // Blocked before anything is printed, so that an interrupt is always taken as the end of
    // following, whenever it comes.
    let signals = if follow && live {
        Some(FollowSignals::block()?)
    } else {
        None
    };
    let mut printer = selected.print(lines, &mut emit)?;
    let Some(signals) = signals else {
        printer.finish(&mut emit);
        return Ok(0);
    };
    loop {
        if let Err(e) = std::io::stdout().flush() {
            stdout_failed(e);
        }
        if signals.wait(FOLLOW_POLL) {
            printer.finish(&mut emit);
            return Ok(0);
        }
        printer.poll(&mut emit)?;
        if !printer.is_live(&name) {
            // What the last writes left, read through the files still open.
            printer.poll(&mut emit)?;
            printer.finish(&mut emit);
            errln!("topo: note: lab {name} went down; stopped following");
            return Ok(0);
        }
    }
}

/// How often `topo logs -f` looks for what was written.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// SIGINT and SIGTERM, blocked and read from a descriptor: the end of `topo logs -f`.
struct FollowSignals {
    fd: nix::sys::signalfd::SignalFd,
}

impl FollowSignals {
    fn block() -> Result<FollowSignals, LabError> {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        let fail = |e: nix::errno::Errno| {
            LabError::Internal(format!("topo logs -f: cannot take SIGINT and SIGTERM: {e}"))
        };
        set.thread_block().map_err(fail)?;
        let fd = nix::sys::signalfd::SignalFd::with_flags(
            &set,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
        )
        .map_err(fail)?;
        Ok(FollowSignals { fd })
    }

    /// Waits up to `timeout`; true when a signal came. Standard output closed by its reader
    /// ends `topo` as a write to it would ([`CLOSED_PIPE`]), even while nothing is written.
    fn wait(&self, timeout: std::time::Duration) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let stdout = std::io::stdout();
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [
            PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(stdout.as_fd(), PollFlags::empty()),
        ];
        if nix::poll::poll(&mut fds, PollTimeout::from(ms)).is_err() {
            return false;
        }
        let closed = fds[1]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP));
        if closed {
            std::process::exit(CLOSED_PIPE);
        }
        fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
    }
}

/// Writes bytes to standard output as they are (see [`outln!`] for errors).
fn write_bytes(bytes: &[u8]) {
    if let Err(e) = std::io::stdout().lock().write_all(bytes) {
        stdout_failed(e);
    }
}

/// `topo link [--lab NAME] NODE:INTERFACE up|down`
fn cmd_link(lab: Option<String>, endpoint: &str, state: LinkStateArg) -> Result<i32, LabError> {
    let name = lab_name(None, lab, "--lab NAME")?;
    let ep = lab::endpoint(endpoint)?;
    let up = state == LinkStateArg::Up;
    runtime()?.block_on(lab::set_link(&name, &ep, up))?;
    outln!(
        "{ep}: {} (drift from the file until the next `topo up`)",
        if up { "up" } else { "down" }
    );
    Ok(0)
}

/// `topo impair [--lab NAME] NODE:INTERFACE OPTIONS | --clear`
fn cmd_impair(
    lab: Option<String>,
    endpoint: &str,
    text: crate::spec::ImpairText,
    clear: bool,
) -> Result<i32, LabError> {
    let name = lab_name(None, lab, "--lab NAME")?;
    let ep = lab::endpoint(endpoint)?;
    let impair = crate::spec::parse_impair(&text)
        .map_err(|e| LabError::Usage(format!("{}; {}", e.message, e.hint)))?;
    let set = !clear && crate::plan::desired::impairs(&impair);
    if !clear && !set {
        return Err(LabError::Usage("give at least one of --delay, --jitter, --loss, --corrupt, --duplicate, --reorder, --rate, or --clear".into()));
    }
    runtime()?.block_on(lab::set_impair(&name, &ep, set.then_some(&impair)))?;
    if set {
        outln!(
            "{ep}: impair {} (drift from the file until the next `topo up`)",
            crate::plan::fmt_impair(&impair)
        );
    } else {
        outln!("{ep}: no impairment (drift from the file until the next `topo up`)");
    }
    Ok(0)
}

/// `topo graph FILE [--format dot|mermaid] [--addresses]`
fn cmd_graph(file: &Path, format: GraphFormat, options: graph::Options) -> Result<i32, LabError> {
    let lab = Lab::load(file)?;
    let text = match format {
        GraphFormat::Dot => graph::dot(&lab.topology, options),
        GraphFormat::Mermaid => graph::mermaid(&lab.topology, options),
    };
    out!("{text}");
    Ok(0)
}

/// `topo schema`
fn cmd_schema() -> Result<i32, LabError> {
    out!("{}", crate::spec::json_schema());
    Ok(0)
}

/// `topo completions SHELL`
fn cmd_completions(shell: clap_complete::Shell) -> Result<i32, LabError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "topo", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}

/// `topo man`
fn cmd_man() -> Result<i32, LabError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| LabError::Usage(format!("render the manual page: {e}")))?;
    out!("{}", String::from_utf8_lossy(&page));
    Ok(0)
}

/// `topo gen SHAPE OPTIONS`
fn cmd_gen(args: &crate::shapes::GenArgs) -> Result<i32, LabError> {
    let text = crate::shapes::generate(args).map_err(|e| LabError::Usage(e.to_string()))?;
    out!("{text}");
    Ok(0)
}

/// The lab a command is about: named, from a file, or the only one that is up. `how` says
/// how the command names a lab, for the error when none or several are up.
fn lab_name(file: Option<PathBuf>, lab: Option<String>, how: &str) -> Result<String, LabError> {
    match (file, lab) {
        (_, Some(name)) => Ok(name),
        (Some(file), None) => Ok(Lab::load(&file)?.topology.name),
        (None, None) => lab::only_lab(how),
    }
}

/// What `up` did: every action, or for a large plan one line per kind (`topo plan -o json`
/// before `up` lists them all).
fn print_applied(plan: &crate::plan::Plan) {
    const LIST_UP_TO: usize = 100;
    if plan.visible().count() <= LIST_UP_TO {
        out!("{plan}");
        return;
    }
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for a in plan.visible() {
        let text = a.to_string();
        let kind: String = text
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    for (kind, n) in kinds {
        outln!("{kind} ×{n}");
    }
}

/// Installs SIGINT and SIGTERM handlers now (not when first polled) and returns a future
/// that resolves with the name of the first of them to arrive.
fn interrupted() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
}

/// A progress bar on standard error when it is a terminal; nothing otherwise (CI, pipes).
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    // Short runs finish before it shows; long ones tick while a phase works.
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => outln!("{s}"),
        Err(e) => errln!("topo: error: cannot encode JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::log_colour;

    #[test]
    fn log_colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())));
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some("1".into())));
    }
}
