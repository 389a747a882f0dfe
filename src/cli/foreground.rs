//! `topo up --foreground` and `topo wait`: a lab held by a process that a supervisor
//! (Kubernetes, systemd, Nomad) starts and stops, and the wait for a lab to be up and ready.
//!
//! The foreground owns its lab: whenever it ends, except by SIGKILL or an `up` that failed
//! before it changed anything, the lab is down. See docs/commands.md.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::{FileArgs, LabArgs, Output, HOW};
use crate::lab::foreground::Ended;
use crate::lab::{self, LabError};

// The options of `topo up` that keep it running with its lab.
#[derive(Args)]
pub(super) struct ForegroundArgs {
    /// Stay running once the lab is up and ready; SIGTERM or SIGINT take the lab down (as
    /// `topo down`) and exit 0; a node's init that dies takes it down and exits 1
    #[arg(long)]
    pub(super) foreground: bool,
    /// With --foreground: write PATH (the lab's name) once the lab is up and ready; removed
    /// when the foreground stops, and at its start
    #[arg(long, value_name = "PATH", requires = "foreground")]
    ready_file: Option<PathBuf>,
}

// The options of `topo wait`.
#[derive(Args)]
pub(super) struct WaitArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Give up after DURATION (us, ms or s: `30s`, `1.5s`; `0` looks once); default: no limit
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

/// The exit status of `topo wait` when its timeout ends before the lab is up and ready.
const NOT_READY: i32 = 3;

/// How often `topo wait` looks at the lab's ready marker.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// What ended the foreground.
enum Stop {
    Signal(&'static str),
    Watch(Ended),
}

/// The first SIGTERM or SIGINT, from handlers installed when it is made.
type StopSignal = Pin<Box<dyn std::future::Future<Output = &'static str> + Send>>;

/// `topo up [FILE|-] [--name NAME] --foreground [--ready-file PATH]`
pub(super) fn cmd_up_foreground(
    input: &FileArgs,
    host: &super::HostArg,
    output: Output,
    hold: &ForegroundArgs,
) -> Result<i32, LabError> {
    let started = Instant::now();
    let ready_file = hold.ready_file.as_deref();
    if let Some(p) = ready_file {
        remove_ready_file(p).map_err(|e| {
            LabError::Usage(format!(
                "--ready-file {}: cannot remove what is there: {e}",
                p.display()
            ))
        })?;
    }
    let rt = super::runtime()?;
    // Installed before anything else: from here on, SIGTERM and SIGINT never kill the process
    // half-way; they take the lab down.
    let mut stop: StopSignal = {
        let _in = rt.enter();
        Box::pin(super::interrupted_up())
    };
    let lab = host.apply(input.load_prescanned(&rt)?)?;
    let name = lab.name().to_string();
    note(
        &name,
        &format!("up in the foreground (pid {})", std::process::id()),
    );
    let changing = Arc::new(AtomicBool::new(false));
    let (bar, show) = super::up_progress();
    let began = changing.clone();
    let progress = Arc::new(move |phase: &str, done: usize, total: usize| {
        began.store(true, Ordering::Relaxed);
        show(phase, done, total);
    });
    let outcome = rt.block_on(async {
        tokio::select! {
            biased;
            sig = &mut stop => {
                Err(sig)
            }
            r = lab.up_with_progress(Some(progress)) => Ok(r),
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Lets go of the lab's lock (held by the prescan or by `up`), which `down` takes.
    drop(lab);
    let report = match outcome {
        Err(sig) => {
            // What the interrupted `up` still had under way ends (at its next check) with
            // its runtime, before `down` looks at the lab.
            drop(rt);
            note(&name, &format!("{sig} during up: taking the lab down"));
            return teardown(&name, ready_file, 0);
        }
        Ok(Err(e)) if !changing.load(Ordering::Relaxed) => {
            // Nothing was changed: as a plain `up`, with its status.
            return Err(e);
        }
        Ok(Err(e)) => {
            drop(rt);
            errln!("{}", super::render_error(&e));
            note(&name, "up failed: taking the lab down");
            return teardown(&name, ready_file, 1);
        }
        Ok(Ok(report)) => report,
    };
    super::print_up(output, &name, &report.plan, started.elapsed());
    if let Some(p) = ready_file {
        if let Err(e) = write_ready_file(p, &name) {
            errln!("topo: error: --ready-file {}: {e}", p.display());
            drop(rt);
            note(&name, "taking the lab down");
            return teardown(&name, ready_file, 1);
        }
    }
    note(
        &name,
        &format!(
            "up and ready{}; in the foreground until SIGTERM or SIGINT",
            ready_file
                .map(|p| format!(" ({} written)", p.display()))
                .unwrap_or_default()
        ),
    );
    let stopped = rt.block_on(async {
        tokio::select! {
            biased;
            sig = &mut stop => Stop::Signal(sig),
            ended = lab::foreground::watch(&name) => Stop::Watch(ended),
        }
    });
    drop(rt);
    match stopped {
        Stop::Signal(sig) => {
            note(&name, &format!("{sig}: taking the lab down"));
            teardown(&name, ready_file, 0)
        }
        Stop::Watch(Ended::LabGone) => {
            if let Some(p) = ready_file {
                let _ = remove_ready_file(p);
            }
            note(&name, &format!("{}; stopping", Ended::LabGone));
            Ok(1)
        }
        Stop::Watch(ended) => {
            note(&name, &format!("{ended}: taking the lab down"));
            teardown(&name, ready_file, 1)
        }
    }
}

/// A line of the foreground's own on standard error (what a pod's or a unit's log shows).
fn note(lab: &str, what: &str) {
    errln!("topo: lab {lab}: {what}");
}

/// Takes the lab down as `topo down` does (logs archived), on a runtime of its own; returns
/// `code` when it is down. Further SIGTERM and SIGINT are noted and change nothing: the
/// teardown always runs to its end.
fn teardown(name: &str, ready_file: Option<&Path>, code: i32) -> Result<i32, LabError> {
    if let Some(p) = ready_file {
        if let Err(e) = remove_ready_file(p) {
            errln!("topo: warning: --ready-file {}: {e}", p.display());
        }
    }
    if let Err(e) = crate::state::clear_ready(name) {
        errln!("topo: warning: {e}");
    }
    let had_run_dir = crate::state::has_run_dir(name);
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let lab = name.to_string();
        let notes = tokio::spawn(async move {
            loop {
                let sig = super::interrupted().await;
                note(&lab, &format!("{sig} again: the lab is being taken down"));
            }
        });
        // A supervisor that stops this process counts on everything of the share being gone
        // when it has exited.
        let options = lab::DownOptions {
            wait: true,
            ..Default::default()
        };
        let r = lab::down_with(name, options).await;
        notes.abort();
        r
    });
    drop(rt);
    match result {
        Ok(report) => {
            super::print_down(name, had_run_dir, true, &report)?;
            note(name, "down; stopping");
            Ok(code)
        }
        Err(e) => {
            errln!("{}", super::render_error(&e));
            note(
                name,
                &format!("not all down: `topo down --lab {name}` finishes it"),
            );
            Ok(1)
        }
    }
}

/// Removes the ready file; one that is not there is fine.
fn remove_ready_file(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Writes the ready file atomically (beside it, then renamed): it appears complete or not
/// at all.
fn write_ready_file(p: &Path, lab: &str) -> std::io::Result<()> {
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{lab}\n"))?;
    std::fs::rename(&tmp, p).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `--timeout` of `topo wait`: a duration with its unit, or `0`.
fn parse_timeout(text: &str) -> Result<Duration, LabError> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    crate::spec::parse_duration_us(text)
        .map(Duration::from_micros)
        .map_err(|e| LabError::Usage(format!("--timeout: {}; {}", e.message, e.hint)))
}

/// `topo wait [-f FILE [--name NAME] | --lab NAME] [--timeout DURATION]`
pub(super) fn cmd_wait(args: WaitArgs) -> Result<i32, LabError> {
    let timeout = args.timeout.as_deref().map(parse_timeout).transpose()?;
    let name = args.lab.resolve(HOW)?;
    lab::foreground::check_lab_name(&name)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if crate::state::is_ready(&name) {
            outln!("lab {name}: up and ready");
            return Ok(0);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let why = if crate::state::has_run_dir(&name) {
                "an `up` of it has not finished, or failed"
            } else {
                "it has no run directory"
            };
            let after = match timeout {
                Some(t) if !t.is_zero() => format!(" after {}", humanize(t)),
                _ => String::new(),
            };
            errln!("topo: error: lab {name} is not up and ready{after}: {why}");
            return Ok(NOT_READY);
        }
        let left = deadline.map_or(WAIT_POLL, |d| {
            d.saturating_duration_since(Instant::now()).min(WAIT_POLL)
        });
        std::thread::sleep(left);
    }
}

/// A timeout as the user wrote it, roughly: `30s`, `1.5s`, `250ms`.
fn humanize(d: Duration) -> String {
    if d.as_micros() % 1_000 != 0 {
        format!("{}us", d.as_micros())
    } else if d.as_millis() % 1_000 != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(args: &[&str]) -> bool {
        use clap::Parser;
        super::super::Cli::try_parse_from(std::iter::once("topo").chain(args.iter().copied()))
            .is_ok()
    }

    #[test]
    fn the_ready_file_needs_the_foreground_and_wait_names_a_lab_as_status_does() {
        assert!(parses(&["up", "x.yaml", "--foreground"]));
        assert!(parses(&[
            "up",
            "-f",
            "x.yaml",
            "--foreground",
            "--ready-file",
            "/r"
        ]));
        assert!(!parses(&["up", "x.yaml", "--ready-file", "/r"]));
        assert!(parses(&["wait", "--lab", "y", "--timeout", "0"]));
        assert!(parses(&["wait", "-f", "x.yaml", "--name", "y"]));
        assert!(parses(&["wait"]));
        assert!(!parses(&["wait", "--lab", "y", "-f", "x.yaml"]));
    }

    #[test]
    fn a_timeout_takes_a_unit_or_is_zero() {
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("250ms").unwrap(), Duration::from_millis(250));
        let e = parse_timeout("30").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("has no unit"), "{e}");
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn a_timeout_is_shown_in_its_largest_whole_unit() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_millis(1500)), "1500ms");
        assert_eq!(humanize(Duration::from_micros(10)), "10us");
    }

    #[test]
    fn the_ready_file_is_written_whole_and_removed_when_missing_too() {
        let dir = std::env::temp_dir().join(format!("topo-ready-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ready");
        remove_ready_file(&p).unwrap();
        write_ready_file(&p, "lab1").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "lab1\n");
        write_ready_file(&p, "lab1").unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        remove_ready_file(&p).unwrap();
        assert!(!p.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
