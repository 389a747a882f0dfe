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
mod exec;
mod foreground;
pub mod front;
mod graph;
mod import;
mod ls;
mod shapes;
mod status;
mod test;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::lab::{self, Lab, LabError, Source};

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

/// Each subcommand's arguments are built only when it runs (`defer`). Under `defer`, clap
/// would show the doc comment of an argument struct a subcommand flattens as that
/// subcommand's about text, so those structs carry plain comments instead.
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// Parse and check a topology file (no kernel access); exit 2 on errors
    Validate {
        #[command(flatten)]
        input: FileArgs,
        #[command(flatten)]
        host: HostArg,
    },
    /// Show what `up` would create, change and delete, against the live kernel
    Plan {
        #[command(flatten)]
        input: FileArgs,
        #[command(flatten)]
        host: HostArg,
        /// Output format
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Make the kernel match the file (idempotent; applies only the difference)
    Up {
        #[command(flatten)]
        input: FileArgs,
        #[command(flatten)]
        host: HostArg,
        /// Output format
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
        #[command(flatten)]
        hold: foreground::ForegroundArgs,
    },
    /// Wait until a lab is up and ready (its last `up` succeeded); exit 3 if --timeout ends first
    Wait(foreground::WaitArgs),
    /// Remove everything of a lab, and nothing else
    Down {
        /// The lab's topology file, as -f FILE (its `name:` says which lab)
        #[arg(value_name = "FILE", conflicts_with_all = ["file", "lab"])]
        path: Option<PathBuf>,
        #[command(flatten)]
        lab: LabArgs,
        #[command(flatten)]
        host: HostArg,
        /// A lab that is not up is no error: exit 0 (idempotent teardown, e.g. in CI)
        #[arg(long)]
        missing_ok: bool,
        /// Remove the lab's logs instead of keeping them in the archive ($TOPO_LOG_DIR)
        #[arg(long)]
        discard_logs: bool,
        /// Return only once every process of the lab has ended and its cgroups and run
        /// directory are gone (else, for a lab without logs to keep, the kernel finishes the
        /// processes' exits after `down` returns, as it frees namespaces after `ip netns del`)
        #[arg(long)]
        wait: bool,
    },
    /// Nodes, interfaces, addresses, routes and processes of a lab
    Status {
        #[command(flatten)]
        lab: LabArgs,
        #[command(flatten)]
        host: HostArg,
        /// Output format
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
        /// Output format
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run a command inside a node (or several: --nodes, --all); exits with its status
    Exec(ExecArgs),
    /// An interactive shell inside a node, its prompt naming the node
    Shell {
        #[command(flatten)]
        lab: LabArgs,
        /// The node
        node: String,
    },
    /// Print a node's logs (its services and `exec:` commands), live or archived after `down`
    Logs {
        #[command(flatten)]
        lab: LogsLabArgs,
        /// The node
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
        #[command(flatten)]
        lab: LabArgs,
        /// The interface, as NODE:INTERFACE
        endpoint: String,
        /// The state to set
        #[arg(value_enum)]
        state: LinkStateArg,
    },
    /// Impair what leaves one interface, as drift from the file (`up` reverts it)
    Impair {
        #[command(flatten)]
        lab: LabArgs,
        /// The interface, as NODE:INTERFACE
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
        #[command(flatten)]
        input: FileArgs,
        /// Graph language
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
    /// Print a containerlab or Kathará lab as a topology file; warnings on standard error
    Import(import::ImportArgs),
    /// Print a shell completion script (e.g. `topo completions bash > /etc/bash_completion.d/topo`)
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `topo man | man -l -`)
    Man,
}

// The topology file of a command whose main input is a file (`validate`, `plan`, `up`,
// `test`, `graph`), and the lab it runs as.
#[derive(Args)]
pub(super) struct FileArgs {
    /// The topology file; `-` reads standard input; default: topo.yaml or topo.yml in the
    /// current directory, else its only *.topo.yaml or *.topo.yml
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// The topology file, as FILE
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    file_opt: Option<PathBuf>,
    /// Run the file as the lab NAME instead of its `name:` (one file, several labs side by
    /// side)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

// How a command that acts on a running lab names it: by its file, by its name, or (neither
// given) the only lab that is up.
#[derive(Args)]
pub(super) struct LabArgs {
    /// The lab's topology file: its `name:` says which lab (`-` reads standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The lab, by its name (also when its file is gone or broken)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "name"])]
    lab: Option<String>,
    /// The lab, by the name FILE was run as (`up FILE --name NAME`); as --lab NAME
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

// The host whose share of a lab that spans hosts a command is about (`--host`).
#[derive(Args)]
pub(super) struct HostArg {
    /// This machine's share of a lab that spans hosts: one of the file's `hosts:`; default:
    /// the share up here, else (up, plan, validate) $TOPO_HOST
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
}

/// The environment variable that stands for `--host` (for labs that declare `hosts:`).
const TOPO_HOST: &str = "TOPO_HOST";

impl HostArg {
    /// `lab` with this machine's share chosen (`--host`), and `$TOPO_HOST` as the share to
    /// take when neither `--host` nor the lab's record names one (for a lab that declares
    /// `hosts:`: it is ignored for a lab on one machine, so that one variable can serve a
    /// machine that runs both).
    fn apply(&self, lab: Lab) -> Result<Lab, LabError> {
        let env = std::env::var(TOPO_HOST).ok().filter(|h| !h.is_empty());
        let given = format!("{TOPO_HOST}={}", env.as_deref().unwrap_or_default());
        let lab = lab.on_host(self.host.as_deref())?;
        Ok(lab.default_host(env.as_deref(), &given))
    }

    /// Checks `--host` against the share of the running lab `name` (from its record), for a
    /// command on what runs here (`down`, `status`). `$TOPO_HOST` is not checked: what runs
    /// here is taken down or shown whatever the variable says.
    fn check_running(&self, name: &str) -> Result<(), LabError> {
        let Some(host) = &self.host else {
            return Ok(());
        };
        let Some(state) = crate::state::read_record(name) else {
            return Ok(());
        };
        match state.host {
            Some(r) if r != *host => Err(LabError::Usage(format!(
                "--host {host}: lab {name} runs here as host {r}'s share"
            ))),
            None => Err(LabError::Usage(format!(
                "--host {host}: lab {name} runs here on one machine (its file declares no \
                 hosts); leave --host out"
            ))),
            _ => Ok(()),
        }
    }
}

// [`LabArgs`] of `logs`, whose `-f` is --follow (as `tail -f`): its file is `--file` only.
#[derive(Args)]
struct LogsLabArgs {
    /// The lab's topology file: its `name:` says which lab (`--file` only: `-f` is --follow)
    #[arg(long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The lab, by its name (also when it is down and only its logs are archived)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["file", "name"])]
    lab: Option<String>,
    /// The lab, by the name FILE was run as (`up FILE --name NAME`); as --lab NAME
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

impl From<LogsLabArgs> for LabArgs {
    fn from(a: LogsLabArgs) -> LabArgs {
        LabArgs {
            file: a.file,
            lab: a.lab,
            name: a.name,
        }
    }
}

// The options of `topo exec`.
#[derive(Args)]
pub(super) struct ExecArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Run the command on each of these nodes (comma-separated), in parallel
    #[arg(
        long,
        value_name = "NODES",
        value_delimiter = ',',
        conflicts_with = "all"
    )]
    nodes: Vec<String>,
    /// Run the command on every node of the lab, in parallel
    #[arg(long)]
    all: bool,
    /// Output format; json: a list of {node, status, stdout, stderr}, printed when all ended
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
    /// The node (not with --nodes or --all)
    #[arg(value_name = "NODE")]
    node: Option<String>,
    /// The command and its arguments (`--` before it is optional); none: a shell, as `topo
    /// shell NODE`
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

// The impairment options of `topo impair`, read as the file's `impair:` keys are.
#[derive(Args)]
struct ImpairArgs {
    /// Delay of every packet: a duration with its unit (us, ms, s), e.g. 10ms
    #[arg(long, value_name = "DURATION")]
    delay: Option<String>,
    /// Variation of the delay (us, ms, s), e.g. 1ms; needs --delay
    #[arg(long, value_name = "DURATION")]
    jitter: Option<String>,
    /// Packets dropped, a percentage with `%` (0% to 100%), e.g. 0.5%
    #[arg(long, value_name = "PERCENT")]
    loss: Option<String>,
    /// Packets with a bit flipped, a percentage with `%`, e.g. 0.1%
    #[arg(long, value_name = "PERCENT")]
    corrupt: Option<String>,
    /// Packets sent twice, a percentage with `%`, e.g. 1%
    #[arg(long, value_name = "PERCENT")]
    duplicate: Option<String>,
    /// Packets sent at once, ahead of delayed ones, a percentage with `%`; needs --delay
    #[arg(long, value_name = "PERCENT")]
    reorder: Option<String>,
    /// Bandwidth limit in bit/s: bit, kbit, mbit, gbit (powers of 1000) or a plain number of
    /// bits per second, e.g. 100mbit
    #[arg(long, value_name = "RATE")]
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
    // An argument that is not UTF-8 leaves this empty: clap reads the command line and says
    // which argument it is.
    let args: Vec<String> = std::env::args_os()
        .map(std::ffi::OsString::into_string)
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    // Hidden helper modes, dispatched before anything starts a thread (see `node`).
    match args.get(1).map(String::as_str) {
        Some("__enter") => return crate::node::enter::main(&args[2..]),
        Some("__spawn") => return crate::node::init::spawn_main(&args[2..]),
        Some("__log") => return crate::state::log::main(&args[2..]),
        Some("__reap") => return crate::lab::reap_main(&args[2..]),
        _ => {}
    }
    let plain = plain_exec(&args);
    // The plain `topo exec` enters one node: it holds a few descriptors, so it leaves the
    // open-file limit alone (and its command gets the caller's as it is). It logs nothing
    // (what fails is said on standard error): its log is set up only when `TOPO_LOG` asks
    // for one.
    let full = plain.is_none();
    let logs = full || std::env::var_os("TOPO_LOG").is_some();
    let cli = plain.unwrap_or_else(Cli::parse);
    if full {
        crate::node::raise_nofile_limit();
    }
    if logs {
        init_logging();
    }
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

/// `topo exec [--lab NAME] NODE [--] COMMAND…`, the form test suites run thousands of times,
/// read without building the command line: building it and parsing with clap costs a tenth of
/// such a `topo exec`. Anything else (`None`) is read by clap; where this answers, clap reads
/// the same (a unit test compares them).
fn plain_exec(args: &[String]) -> Option<Cli> {
    let plain = read_plain_exec(args)?;
    Some(Cli {
        command: Command::Exec(ExecArgs {
            lab: LabArgs {
                file: None,
                lab: plain.lab.map(str::to_string),
                name: None,
            },
            nodes: Vec::new(),
            all: false,
            output: Output::Text,
            node: Some(plain.node.to_string()),
            command: plain.command.to_vec(),
        }),
    })
}

/// What a plain `topo exec` names: the lab (when it names one), the node and the command.
struct PlainExec<'a> {
    lab: Option<&'a str>,
    node: &'a str,
    command: &'a [String],
}

/// Reads the plain `topo exec` of [`plain_exec`] (also the front's, [`front`]).
fn read_plain_exec(args: &[String]) -> Option<PlainExec<'_>> {
    let mut rest = match args.get(1).map(String::as_str) {
        Some("exec") => &args[2..],
        _ => return None,
    };
    let mut lab = None;
    if let Some(first) = rest.first() {
        if first == "--lab" {
            lab = Some(rest.get(1)?.as_str());
            rest = &rest[2..];
        } else if let Some(name) = first.strip_prefix("--lab=") {
            lab = Some(name);
            rest = &rest[1..];
        }
    }
    if lab.is_some_and(|l| l.is_empty() || l.starts_with('-')) {
        return None;
    }
    let (node, rest) = rest.split_first()?;
    if node.is_empty() || node.starts_with('-') {
        return None;
    }
    let command = match rest.split_first()? {
        (dashes, command) if dashes == "--" => command,
        (first, _) if first.starts_with('-') => return None,
        _ => rest,
    };
    if command.is_empty() {
        return None;
    }
    Some(PlainExec { lab, node, command })
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

/// What is logged when `TOPO_LOG` is unset: warnings, except `netlink_proto`'s. It warns
/// when a reply arrives for a request whose sender has gone, which is what happens when
/// `topo` stops a prescan of the kernel early (bad input, an interrupt): nothing is wrong,
/// and an error on bad input must be the first thing on standard error.
const DEFAULT_LOG: &str = "warn,netlink_proto=error";

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOPO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
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
        Command::Exec(_) => require_root("exec")?,
        Command::Shell { .. } => require_root("shell")?,
        Command::Ls { .. } => require_root("ls")?,
        Command::Link { .. } => require_root("link")?,
        Command::Impair { .. } => require_root("impair")?,
        Command::Test(_) => require_root("test")?,
        Command::Capture(_) => require_root("capture")?,
        Command::Validate { .. }
        | Command::Wait(_)
        | Command::Logs { .. }
        | Command::Graph { .. }
        | Command::Schema
        | Command::Gen(_)
        | Command::Import(_)
        | Command::Completions { .. }
        | Command::Man => {}
    }
    match command {
        Command::Validate { input, host } => cmd_validate(&input, &host),
        Command::Plan {
            input,
            host,
            output,
        } => cmd_plan(&input, &host, output),
        Command::Up {
            input,
            host,
            output,
            hold,
        } if hold.foreground => foreground::cmd_up_foreground(&input, &host, output, &hold),
        Command::Up {
            input,
            host,
            output,
            ..
        } => cmd_up(&input, &host, output),
        Command::Wait(args) => foreground::cmd_wait(args),
        Command::Down {
            path,
            mut lab,
            host,
            missing_ok,
            discard_logs,
            wait,
        } => {
            lab.file = lab.file.or(path);
            cmd_down(lab, &host, missing_ok, discard_logs, wait)
        }
        Command::Status {
            lab,
            host,
            output,
            node,
            wide,
        } => cmd_status(lab, &host, output, node, wide),
        Command::Ls { output } => ls::cmd_ls(output),
        Command::Exec(args) => exec::cmd_exec(args),
        Command::Shell { lab, node } => exec::cmd_shell(lab, &node),
        Command::Logs {
            lab,
            node,
            service,
            follow,
            lines,
        } => cmd_logs(lab.into(), &node, service.as_deref(), follow, lines),
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
            input,
            format,
            addresses,
        } => cmd_graph(&input, format, graph::Options { addresses }),
        Command::Capture(args) => capture::cmd_capture(args),
        Command::Schema => cmd_schema(),
        Command::Gen(options) => cmd_gen(&options.into()),
        Command::Import(args) => import::cmd_import(args),
        Command::Completions { shell } => cmd_completions(shell),
        Command::Man => cmd_man(),
    }
}

/// The file names a file-taking command reads when it is given none, in order; then the only
/// `*.topo.yaml` or `*.topo.yml` of the directory.
const DEFAULT_FILES: [&str; 2] = ["topo.yaml", "topo.yml"];

/// The topology file of `dir` (`""`: the current directory) for a command given none.
fn default_file(dir: &Path) -> Result<PathBuf, LabError> {
    for name in DEFAULT_FILES {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    let listed = if dir.as_os_str().is_empty() {
        std::fs::read_dir(".")
    } else {
        std::fs::read_dir(dir)
    };
    let mut found: Vec<String> = listed
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".topo.yaml") || n.ends_with(".topo.yml"))
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(dir.join(one)),
        [] => Err(LabError::Usage(
            "no topology file given, and the current directory has no topo.yaml, topo.yml or *.topo.yaml; hint: name the file, or `-` to read standard input".into(),
        )),
        many => Err(LabError::Usage(format!(
            "no topology file given, and the current directory has several: {}; hint: name one",
            many.join(", ")
        ))),
    }
}

impl FileArgs {
    /// Where the topology comes from: FILE, standard input (`-`), or the default file.
    fn source(&self) -> Result<Source, LabError> {
        match self.file.as_ref().or(self.file_opt.as_ref()) {
            Some(p) => Ok(Source::from_arg(p)),
            None => default_file(Path::new("")).map(Source::File),
        }
    }

    /// Loads the topology, as the lab `--name` gives when given.
    fn load(&self) -> Result<Lab, LabError> {
        Lab::load_as(&self.source()?, self.name.as_deref())
    }

    /// [`load`](Self::load) with the lab's observation started meanwhile on `rt`.
    fn load_prescanned(&self, rt: &tokio::runtime::Runtime) -> Result<Lab, LabError> {
        Lab::load_prescanned_as(&self.source()?, self.name.as_deref(), Some(rt.handle()))
    }
}

/// What to run to bring `lab` up again: its file, and `--name` when it runs under another name.
fn up_again(lab: &Lab) -> String {
    let stdin = lab.file == Path::new(lab::STDIN_NAME);
    let mut again = if stdin {
        "-".to_string()
    } else {
        lab.file.display().to_string()
    };
    if lab.file_name != lab.name() {
        again.push_str(&format!(" --name {}", lab.name()));
    }
    if stdin {
        again.push_str(" (with the same input)");
    }
    again
}

/// `topo validate [FILE|-] [--name NAME] [--host NAME]`
fn cmd_validate(input: &FileArgs, host: &HostArg) -> Result<i32, LabError> {
    let lab = host.apply(input.load()?)?;
    let t = &lab.topology;
    let hosts = match lab.hosts().as_slice() {
        [] => String::new(),
        names => format!(", hosts {}", names.join(", ")),
    };
    outln!(
        "{}: ok: lab {}, {} nodes, {} links, {} bridges{hosts}",
        input.source()?,
        t.name,
        t.nodes.len(),
        t.links.len(),
        t.bridges.len()
    );
    if let Some(h) = lab.chosen_host()? {
        let share = crate::plan::compile(t, Some(h));
        outln!(
            "host {h}: {} nodes, {} veths, {} tunnel ends",
            t.nodes.len() - share.elsewhere.len(),
            // A crossing's veth only joins the node to its tunnel.
            share.veths.len() - share.crossings.len(),
            (share.namespaces.values())
                .flat_map(|n| n.ifaces.values())
                .filter(|i| i.kind == crate::plan::IfaceKind::Vxlan)
                .count()
        );
    }
    Ok(0)
}

/// `topo plan [FILE|-] [--name NAME] [--host NAME]`
fn cmd_plan(input: &FileArgs, host: &HostArg, output: Output) -> Result<i32, LabError> {
    let rt = runtime()?;
    let lab = host.apply(input.load_prescanned(&rt)?)?;
    let plan = rt.block_on(lab.plan())?;
    match output {
        Output::Json => print_json(&plan),
        Output::Text if plan.is_empty() => outln!("lab {}: no changes", lab.name()),
        Output::Text => out!("{plan}"),
    }
    Ok(0)
}

/// `topo up [FILE|-] [--name NAME] [--host NAME]`
fn cmd_up(input: &FileArgs, host: &HostArg, output: Output) -> Result<i32, LabError> {
    let started = std::time::Instant::now();
    let rt = runtime()?;
    let lab = host.apply(input.load_prescanned(&rt)?)?;
    let name = lab.name().to_string();
    let again = up_again(&lab);
    let (bar, show) = up_progress();
    let report = rt.block_on(async {
        // The handlers are installed before `up` starts, so a signal can never find
        // them missing and kill the process mid-step.
        let stop = interrupted_up();
        tokio::select! {
            biased;
            sig = stop => {
                Err(LabError::Interrupted {
                    lab: name.clone(),
                    signal: sig,
                    file: again.clone(),
                })
            }
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
    print_up(output, &name, &report.plan, started.elapsed());
    Ok(0)
}

/// The progress bar of `up` (on a terminal only) and what moves it.
fn up_progress() -> (
    Option<indicatif::ProgressBar>,
    std::sync::Arc<lab::Progress>,
) {
    let bar = progress_bar();
    let ticker = bar.clone();
    let show = std::sync::Arc::new(move |phase: &str, done: usize, total: usize| {
        if let Some(b) = &ticker {
            b.set_length(total as u64);
            b.set_position(done as u64);
            b.set_message(phase.to_string());
        }
    });
    (bar, show)
}

/// What `up` prints when it succeeded: the plan it applied and a summary with the time taken.
fn print_up(output: Output, name: &str, plan: &crate::plan::Plan, took: std::time::Duration) {
    let seconds = took.as_secs_f64();
    match output {
        Output::Json => print_json(plan),
        Output::Text => {
            print_applied(plan);
            let n = plan.visible().count();
            if n == 0 {
                outln!("lab {name}: up to date, no changes ({seconds:.2}s)");
            } else {
                outln!("lab {name}: up, {n} changes ({seconds:.2}s)");
            }
        }
    }
}

/// `topo down [FILE | -f FILE [--name NAME] | --lab NAME] [--host NAME] [--missing-ok]
/// [--discard-logs] [--wait]`
fn cmd_down(
    lab: LabArgs,
    host: &HostArg,
    missing_ok: bool,
    discard_logs: bool,
    wait: bool,
) -> Result<i32, LabError> {
    let name = lab.resolve("FILE or --lab NAME")?;
    host.check_running(&name)?;
    let had_run_dir = crate::state::labs().contains(&name);
    let options = lab::DownOptions {
        discard_logs,
        wait,
        then_exit: true,
    };
    // Before the runtime's threads exist, so that growing the table waits for nothing.
    lab::reserve_descriptors(&name);
    let rt = runtime()?;
    let report = rt.block_on(lab::down_with(&name, options));
    // Nothing runs on it any more, and the process exits next: its threads are not waited for.
    rt.shutdown_background();
    print_down(&name, had_run_dir, missing_ok, &report?)
}

/// What `down` prints: notes and warnings on standard error, the summary on standard output.
/// A lab that was not up is an error unless `missing_ok`.
fn print_down(
    name: &str,
    had_run_dir: bool,
    missing_ok: bool,
    report: &lab::DownReport,
) -> Result<i32, LabError> {
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

/// `topo status [LAB] [--host NAME] [NODE] [--wide] [-o text|json]`
fn cmd_status(
    lab: LabArgs,
    host: &HostArg,
    output: Output,
    node: Option<String>,
    wide: bool,
) -> Result<i32, LabError> {
    let name = lab.resolve(HOW)?;
    host.check_running(&name)?;
    let status = match &node {
        Some(node) => status::only_node(runtime()?.block_on(lab::node_status(&name, node))?, node)?,
        None => runtime()?.block_on(lab::status(&name))?,
    };
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

/// `topo logs [--file FILE [--name NAME] | --lab NAME] NODE [SERVICE] [-f] [-n LINES]`
fn cmd_logs(
    lab: LabArgs,
    node: &str,
    service: Option<&str>,
    follow: bool,
    lines: Option<usize>,
) -> Result<i32, LabError> {
    let name = match lab.resolve("--lab NAME or --file FILE") {
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

/// `topo link [-f FILE [--name NAME] | --lab NAME] NODE:INTERFACE up|down`
fn cmd_link(lab: LabArgs, endpoint: &str, state: LinkStateArg) -> Result<i32, LabError> {
    let name = lab.resolve(HOW)?;
    let ep = lab::endpoint(endpoint)?;
    let up = state == LinkStateArg::Up;
    runtime()?.block_on(lab::set_link(&name, &ep, up))?;
    outln!(
        "{ep}: {} (drift from the file until the next `topo up`)",
        if up { "up" } else { "down" }
    );
    Ok(0)
}

/// `topo impair [-f FILE [--name NAME] | --lab NAME] NODE:INTERFACE OPTIONS | --clear`
fn cmd_impair(
    lab: LabArgs,
    endpoint: &str,
    text: crate::spec::ImpairText,
    clear: bool,
) -> Result<i32, LabError> {
    let name = lab.resolve(HOW)?;
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

/// `topo graph [FILE|-] [--name NAME] [--format dot|mermaid] [--addresses]`
fn cmd_graph(
    input: &FileArgs,
    format: GraphFormat,
    options: graph::Options,
) -> Result<i32, LabError> {
    let lab = input.load()?;
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

/// The whole command line, every subcommand's arguments included: they are added only when
/// needed (`defer`), since building all of them cost more than `topo exec`'s own work.
fn full_command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// `topo completions SHELL`
fn cmd_completions(shell: clap_complete::Shell) -> Result<i32, LabError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut full_command(), "topo", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}

/// `topo man`
fn cmd_man() -> Result<i32, LabError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(full_command())
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

/// How most commands that act on a running lab name one, for the error when none or
/// several are up.
const HOW: &str = "--lab NAME or -f FILE";

impl LabArgs {
    /// The lab named: by `--lab` or `--name`, by its file's `name:`, or the only one that is
    /// up. `how` says how the command names a lab, for the error when none or several are up.
    fn resolve(self, how: &str) -> Result<String, LabError> {
        match (self.file, self.lab.or(self.name)) {
            (_, Some(name)) => Ok(name),
            (Some(file), None) => Ok(Lab::load_as(&Source::from_arg(&file), None)?.topology.name),
            (None, None) => lab::only_lab(how),
        }
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

/// [`interrupted`] for an `up`: the moment the signal arrives, a task of its own tells the
/// `up`'s steps to stop ([`lab::stop_waiting`]), since the step under way may be one that
/// blocks the thread that polls the `up` (making namespaces) and checks that flag instead.
fn interrupted_up() -> impl std::future::Future<Output = &'static str> {
    let signal = interrupted();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let sig = signal.await;
        lab::stop_waiting();
        let _ = tx.send(sig);
    });
    async move {
        match rx.await {
            Ok(sig) => sig,
            // The task ended without a signal: only when the runtime is shutting down.
            Err(_) => std::future::pending().await,
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
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("topo").chain(args.iter().copied())).map(|c| c.command)
    }

    #[test]
    fn default_log_shows_topos_warnings_but_not_netlink_protos() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::ErrorKind::Other)?
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(DEFAULT_LOG))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "netlink_proto::connection", "dropped reply");
            tracing::error!(target: "netlink_proto::connection", "broken socket");
            tracing::warn!(target: "topo::lab", "a warning of topo's");
            tracing::info!(target: "topo::lab", "an info of topo's");
        });
        let text = String::from_utf8(sink.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(!text.contains("dropped reply"), "{text}");
        assert!(text.contains("broken socket"), "{text}");
        assert!(text.contains("a warning of topo's"), "{text}");
        assert!(!text.contains("an info of topo's"), "{text}");
    }

    #[test]
    fn every_subcommand_has_an_about_of_its_own() {
        let cli = full_command();
        let mut seen: Vec<(String, String)> = Vec::new();
        for sub in cli.get_subcommands() {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            if let Some((other, _)) = seen.iter().find(|(_, a)| *a == about) {
                panic!(
                    "{} and {other} have the same about text: {about:?}",
                    sub.get_name()
                );
            }
            seen.push((sub.get_name().to_string(), about));
        }
        let up = cli.find_subcommand("up").and_then(|c| c.get_about());
        assert!(
            up.is_some_and(|a| a.to_string().starts_with("Make the kernel match the file")),
            "{up:?}"
        );
    }

    #[test]
    fn the_command_line_is_well_formed_and_every_argument_has_help() {
        let cli = full_command();
        cli.clone().debug_assert();
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&cli, "topo", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn exec_takes_its_command_with_or_without_dashes() {
        let argv = |args: &[&str]| match parse(args) {
            Ok(Command::Exec(a)) => (a.node, a.command, a.all, a.nodes),
            Ok(_) => panic!("not exec"),
            Err(e) => panic!("{args:?}: {e}"),
        };
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (node, cmd, ..) = argv(&["exec", "r1", "ip", "-j", "addr"]);
        assert_eq!(
            (node.as_deref(), cmd),
            (Some("r1"), words(&["ip", "-j", "addr"]))
        );
        let (node, cmd, ..) = argv(&["exec", "--lab", "x", "r1", "--", "sh", "-c", "exit 3"]);
        assert_eq!(
            (node.as_deref(), cmd),
            (Some("r1"), words(&["sh", "-c", "exit 3"]))
        );
        let (node, cmd, all, _) = argv(&["exec", "--all", "--", "uname", "-r"]);
        assert!(all);
        assert_eq!((node.as_deref(), cmd), (Some("uname"), words(&["-r"])));
        let (_, _, _, nodes) = argv(&["exec", "--nodes", "a,b", "true"]);
        assert_eq!(nodes, words(&["a", "b"]));
        assert!(parse(&["exec", "--all", "--nodes", "a", "true"]).is_err());
    }

    #[test]
    fn the_plain_exec_reading_agrees_with_clap_wherever_it_answers() {
        // Every command line of up to five words from these, after `exec`.
        let words = [
            "--lab", "--lab=x", "--lab=", "x", "r1", "--", "-o", "json", "sh", "-c", "--all", "",
        ];
        let fields = |c: Command| match c {
            Command::Exec(a) => Some((
                a.lab.file,
                a.lab.lab,
                a.lab.name,
                a.nodes,
                a.all,
                a.output == Output::Json,
                a.node,
                a.command,
            )),
            _ => None,
        };
        let mut answered = 0;
        let mut line = vec![0usize; 0];
        loop {
            let args: Vec<String> = ["topo", "exec"]
                .into_iter()
                .chain(line.iter().map(|&i| words[i]))
                .map(String::from)
                .collect();
            if let Some(plain) = plain_exec(&args) {
                answered += 1;
                let clap = Cli::try_parse_from(&args)
                    .unwrap_or_else(|e| panic!("{args:?}: clap refuses it: {e}"));
                assert_eq!(fields(plain.command), fields(clap.command), "{args:?}");
            }
            // The next line: count in base `words.len()`, one word longer after the last.
            match line.iter().rposition(|&i| i + 1 < words.len()) {
                Some(p) => {
                    line[p] += 1;
                    line[p + 1..].iter_mut().for_each(|i| *i = 0);
                }
                None if line.len() < 5 => line = vec![0; line.len() + 1],
                None => break,
            }
        }
        assert!(answered > 1000, "answered {answered}");
        for common in [
            &["topo", "exec", "--lab", "x", "r1", "--", "true"][..],
            &["topo", "exec", "--lab=x", "r1", "ip", "-j", "addr"],
            &["topo", "exec", "r1", "--", "-x"],
        ] {
            let args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
            assert!(plain_exec(&args).is_some(), "{common:?}");
        }
        for other in [
            &["topo", "exec", "--lab", "x", "r1"][..],
            &["topo", "exec", "--lab", "x", "--all", "true"],
            &["topo", "exec", "r1", "-o", "json", "true"],
            &["topo", "exec", "-f", "x.yaml", "r1", "true"],
            &["topo", "status", "--lab", "x"],
        ] {
            let args: Vec<String> = other.iter().map(|s| s.to_string()).collect();
            assert!(plain_exec(&args).is_none(), "{other:?}");
        }
    }

    #[test]
    fn labs_are_named_the_same_way_on_every_command() {
        for args in [
            &["status", "-f", "x.yaml"][..],
            &["status", "--file", "x.yaml", "--name", "y"],
            &["status", "--lab", "y"],
            &["down", "x.yaml"],
            &["down", "-f", "x.yaml", "--name", "y"],
            &["down", "--lab", "y"],
            &["link", "-f", "x.yaml", "r1:eth1", "up"],
            &["impair", "--name", "y", "r1:eth1", "--clear"],
            &["capture", "-f", "x.yaml", "r1:eth1"],
            &["logs", "--file", "x.yaml", "r1", "-f"],
            &["shell", "--lab", "y", "r1"],
            &["up", "x.yaml", "--name", "y"],
            &["up", "-f", "-"],
            &["plan"],
            &["test", "x.yaml", "--name", "y"],
            &["graph", "-"],
            &["validate", "-f", "x.yaml"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}: {:?}", parse(args).err());
        }
        for args in [
            &["status", "-f", "x.yaml", "--lab", "y"][..],
            &["status", "--lab", "y", "--name", "z"],
            &["down", "x.yaml", "-f", "z.yaml"],
            &["up", "x.yaml", "-f", "z.yaml"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn host_is_taken_by_the_commands_on_a_share_and_only_by_them() {
        for args in [
            &["up", "x.yaml", "--host", "left"][..],
            &["plan", "-f", "x.yaml", "--host", "left"],
            &["validate", "--host", "left"],
            &["down", "x.yaml", "--host", "left"],
            &["down", "--lab", "wan", "--host", "left"],
            &["status", "--host", "left", "r1"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}: {:?}", parse(args).err());
        }
        for args in [
            &["exec", "--host", "left", "r1", "true"][..],
            &["graph", "x.yaml", "--host", "left"],
            &["test", "x.yaml", "--host", "left"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn the_default_file_is_topo_yaml_then_topo_yml_then_the_only_topo_yaml() {
        let dir = std::env::temp_dir().join(format!("topo-default-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let found = || default_file(&dir).map(|p| p.file_name().unwrap().to_owned());
        assert_eq!(found().unwrap_err().exit_code(), 2);
        std::fs::write(dir.join("lab.yaml"), "").unwrap();
        assert!(found().is_err(), "other names are not read");
        std::fs::write(dir.join("a.topo.yaml"), "").unwrap();
        assert_eq!(found().unwrap(), "a.topo.yaml");
        std::fs::write(dir.join("b.topo.yml"), "").unwrap();
        assert!(found()
            .unwrap_err()
            .to_string()
            .contains("a.topo.yaml, b.topo.yml"));
        std::fs::write(dir.join("topo.yml"), "").unwrap();
        assert_eq!(found().unwrap(), "topo.yml");
        std::fs::write(dir.join("topo.yaml"), "").unwrap();
        assert_eq!(found().unwrap(), "topo.yaml");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn log_colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())));
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some("1".into())));
    }
}
