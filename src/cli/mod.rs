//! `cli`: argument parsing, output and exit codes. Thin: every command is a call into
//! [`crate::lab`].

mod graph;
mod shapes;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    },
    /// Nodes, interfaces, addresses, routes and processes of a lab
    Status {
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        lab: Option<String>,
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
    /// Print the topology as a DOT or Mermaid graph
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Print the JSON Schema of topology files
    Schema,
    /// Print a generated topology file (chain, ring, star, tree, clos)
    Gen(shapes::GenOptions),
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
        Some("__userns") => return crate::node::userns::helper_main(),
        Some("__spawn") => return crate::node::init::spawn_main(&args[2..]),
        Some("__log") => return crate::state::log::main(&args[2..]),
        _ => {}
    }
    let cli = Cli::parse();
    crate::node::raise_nofile_limit();
    init_logging();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", render_error(&e));
            e.exit_code()
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOPO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
    match command {
        Command::Validate { file } => cmd_validate(&file),
        Command::Plan { file, output } => cmd_plan(&file, output),
        Command::Up { file, output } => cmd_up(&file, output),
        Command::Down { file, lab } => cmd_down(file, lab),
        Command::Status { file, lab, output } => cmd_status(file, lab, output),
        Command::Exec {
            file,
            lab,
            node,
            command,
        } => cmd_exec(file, lab, &node, command),
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
        Command::Graph { file, format } => cmd_graph(&file, format),
        Command::Schema => cmd_schema(),
        Command::Gen(options) => cmd_gen(&options.into()),
    }
}

/// `topo validate FILE`
fn cmd_validate(file: &Path) -> Result<i32, LabError> {
    let lab = Lab::load(file)?;
    let t = &lab.topology;
    println!(
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
        Output::Text if plan.is_empty() => println!("lab {}: no changes", lab.name()),
        Output::Text => print!("{plan}"),
    }
    Ok(0)
}

/// `topo up FILE`
fn cmd_up(file: &Path, output: Output) -> Result<i32, LabError> {
    let rt = runtime()?;
    let lab = Lab::load_prescanned(file, Some(rt.handle()))?;
    let bar = progress_bar();
    let ticker = bar.clone();
    let show = move |phase: &str, done: usize, total: usize| {
        if let Some(b) = &ticker {
            b.set_length(total as u64);
            b.set_position(done as u64);
            b.set_message(phase.to_string());
        }
    };
    let report = rt.block_on(async {
        // The handlers are installed before `up` starts, so a signal can never find
        // them missing and kill the process mid-step.
        let stop = interrupted();
        tokio::select! {
            biased;
            sig = stop => Err(LabError::Interrupted {
                lab: lab.name().to_string(),
                signal: sig,
                file: file.display().to_string(),
            }),
            r = lab.up_with_progress(Some(&show)) => r,
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    match output {
        Output::Json => print_json(&report.plan),
        Output::Text => {
            print_applied(&report.plan);
            let n = report.plan.visible().count();
            if n == 0 {
                println!(
                    "lab {}: up to date, no changes ({:.2}s)",
                    lab.name(),
                    report.elapsed.as_secs_f64()
                );
            } else {
                println!(
                    "lab {}: up, {n} changes ({:.2}s)",
                    lab.name(),
                    report.elapsed.as_secs_f64()
                );
            }
        }
    }
    Ok(0)
}

/// `topo down [FILE | --lab NAME]`
fn cmd_down(file: Option<PathBuf>, lab: Option<String>) -> Result<i32, LabError> {
    let name = lab_name(file, lab)?;
    let report = runtime()?.block_on(lab::down(&name))?;
    println!(
        "lab {name}: down ({} namespaces, {} host links, {} node processes removed)",
        report.namespaces.len(),
        report.host_links.len(),
        report.processes
    );
    for f in &report.foreign {
        eprintln!("topo: note: left {f} alone: it has the lab's prefix but is not this lab's");
    }
    Ok(0)
}

/// `topo status [-f FILE | --lab NAME]`
fn cmd_status(file: Option<PathBuf>, lab: Option<String>, output: Output) -> Result<i32, LabError> {
    let name = lab_name(file, lab)?;
    let status = runtime()?.block_on(lab::status(&name))?;
    match output {
        Output::Json => print_json(&status),
        Output::Text => print_status(&status),
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
    let name = lab_name(file, lab)?;
    let argv = if command.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        command
    };
    lab::exec(&name, node, &argv, std::io::stdin().is_terminal())
}

/// `topo link [--lab NAME] NODE:INTERFACE up|down`
fn cmd_link(lab: Option<String>, endpoint: &str, state: LinkStateArg) -> Result<i32, LabError> {
    let name = lab_name(None, lab)?;
    let ep = lab::endpoint(endpoint)?;
    let up = state == LinkStateArg::Up;
    runtime()?.block_on(lab::set_link(&name, &ep, up))?;
    println!(
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
    let name = lab_name(None, lab)?;
    let ep = lab::endpoint(endpoint)?;
    let impair = crate::spec::parse_impair(&text)
        .map_err(|e| LabError::Usage(format!("{}; {}", e.message, e.hint)))?;
    let set = !clear && crate::plan::desired::impairs(&impair);
    if !clear && !set {
        return Err(LabError::Usage("give at least one of --delay, --jitter, --loss, --corrupt, --duplicate, --reorder, --rate, or --clear".into()));
    }
    runtime()?.block_on(lab::set_impair(&name, &ep, set.then_some(&impair)))?;
    if set {
        println!(
            "{ep}: impair {} (drift from the file until the next `topo up`)",
            crate::plan::fmt_impair(&impair)
        );
    } else {
        println!("{ep}: no impairment (drift from the file until the next `topo up`)");
    }
    Ok(0)
}

/// `topo graph FILE`
fn cmd_graph(file: &Path, format: GraphFormat) -> Result<i32, LabError> {
    let lab = Lab::load(file)?;
    let text = match format {
        GraphFormat::Dot => graph::dot(&lab.topology),
        GraphFormat::Mermaid => graph::mermaid(&lab.topology),
    };
    print!("{text}");
    Ok(0)
}

/// `topo schema`
fn cmd_schema() -> Result<i32, LabError> {
    print!("{}", crate::spec::json_schema());
    Ok(0)
}

/// `topo gen SHAPE OPTIONS`
fn cmd_gen(args: &crate::shapes::GenArgs) -> Result<i32, LabError> {
    let text = crate::shapes::generate(args).map_err(|e| LabError::Usage(e.to_string()))?;
    print!("{text}");
    Ok(0)
}

/// The lab a command is about: named, from a file, or the only one that is up.
fn lab_name(file: Option<PathBuf>, lab: Option<String>) -> Result<String, LabError> {
    match (file, lab) {
        (_, Some(name)) => Ok(name),
        (Some(file), None) => Ok(Lab::load(&file)?.topology.name),
        (None, None) => lab::only_lab(),
    }
}

/// What `up` did: every action, or for a large plan one line per kind (`topo plan -o json`
/// before `up` lists them all).
fn print_applied(plan: &crate::plan::Plan) {
    const LIST_UP_TO: usize = 100;
    if plan.visible().count() <= LIST_UP_TO {
        print!("{plan}");
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
        println!("{kind} ×{n}");
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
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("topo: cannot encode JSON: {e}"),
    }
}

fn print_status(s: &lab::Status) {
    println!(
        "lab {}{}",
        s.lab,
        s.file
            .as_ref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default()
    );
    for n in &s.nodes {
        let proc_ = match (n.init_pid, n.running) {
            (Some(pid), true) => format!("init pid {pid}"),
            (Some(pid), false) => format!("init pid {pid} NOT RUNNING"),
            (None, _) => "no init".into(),
        };
        println!("  {:<12} netns {:<20} {proc_}", n.name, n.netns);
        for i in &n.interfaces {
            let state = if i.up { "up" } else { "DOWN" };
            let impair = i
                .impair
                .as_ref()
                .map(|x| format!("  impair {}", crate::plan::fmt_impair(x)))
                .unwrap_or_default();
            println!(
                "    {:<15} {:<4} mtu {:<5} {}{impair}",
                i.name,
                state,
                i.mtu,
                i.addresses.join(" ")
            );
        }
        for r in &n.routes {
            println!("    route {r}");
        }
        if let Some(line) = limits_line(n) {
            println!("    {line}");
        }
        if let Some(sec) = &n.security {
            let seccomp = match &sec.seccomp {
                crate::spec::Seccomp::Default => "default".to_string(),
                crate::spec::Seccomp::Unconfined => "unconfined".to_string(),
                crate::spec::Seccomp::Profile(p) => p.display().to_string(),
            };
            let default_caps = crate::node::security::Security::default().capabilities;
            let caps = if sec.capabilities == default_caps {
                "default set".to_string()
            } else {
                sec.capabilities
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let mut extra = String::new();
            if n.userns {
                extra.push_str(", userns");
            }
            if sec.filesystem.is_some() {
                extra.push_str(", landlock");
            }
            if let Some(a) = &sec.apparmor {
                extra.push_str(&format!(", apparmor {a}"));
            }
            println!("    security: caps {caps}, seccomp {seccomp}, no_new_privs{extra}");
        }
        for sv in &n.services {
            let st = if sv.running {
                format!("pid {}", sv.pid)
            } else {
                "NOT RUNNING".into()
            };
            println!(
                "    service {:<10} {st:<12} {}  log {}",
                sv.name, sv.command, sv.log
            );
        }
    }
    for h in &s.host_interfaces {
        println!(
            "  host {:<15} {} mtu {}",
            h.name,
            if h.up { "up" } else { "DOWN" },
            h.mtu
        );
    }
}

/// `limits memory 64Mi (used 3.1Mi), pids 16 (used 2), cpu 0.25`, or what is accounted.
fn limits_line(n: &lab::status::NodeStatus) -> Option<String> {
    use crate::spec::format_bytes;
    let mut parts = Vec::new();
    let used_mem = n.usage.memory_bytes.map(format_bytes);
    match (n.limits.memory, &used_mem) {
        (Some(m), Some(u)) => parts.push(format!("memory {} (used {u})", format_bytes(m))),
        (Some(m), None) => parts.push(format!("memory {}", format_bytes(m))),
        (None, Some(u)) => parts.push(format!("memory unlimited (used {u})")),
        (None, None) => {}
    }
    match (n.limits.pids, n.usage.pids) {
        (Some(p), Some(u)) => parts.push(format!("pids {p} (used {u})")),
        (Some(p), None) => parts.push(format!("pids {p}")),
        (None, Some(u)) => parts.push(format!("pids unlimited (used {u})")),
        (None, None) => {}
    }
    if let Some(c) = n.limits.cpu {
        parts.push(format!("cpu {c}"));
    }
    (!parts.is_empty()).then(|| format!("limits {}", parts.join(", ")))
}
