//! `topo test FILE`: brings the lab up when it is not, runs the file's `tests:`, keeps what
//! a CI job needs (JUnit XML, logs, state at failures), and takes the lab down again.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{interrupted, interrupted_up, print_json, runtime, up_again, FileArgs, Output};
use crate::check::report::{self, Outcome, Report};
use crate::lab::{self, testrun, Lab, LabError};

/// Exit status when every step passed.
pub const PASSED: i32 = 0;
/// Exit status when a step failed.
pub const FAILED: i32 = 1;
/// Exit status when the lab could not be brought up (nothing was tested).
pub const NOT_UP: i32 = 3;

#[derive(Args)]
pub(super) struct TestArgs {
    #[command(flatten)]
    input: FileArgs,
    /// Leave the lab up afterwards (a lab that was up before is always left up)
    #[arg(long)]
    keep: bool,
    /// Write a JUnit XML report to PATH (one test case per step)
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Keep what a CI job needs in DIR: every node's logs, the state of each node when a
    /// step failed, the report (report.json, junit.xml)
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

pub(super) fn cmd_test(args: TestArgs) -> Result<i32, LabError> {
    let lab = args.input.load()?;
    let name = lab.name().to_string();
    if !lab.topology.hosts.is_empty() {
        return Err(LabError::Usage(format!(
            "lab {name} spans hosts {}: `topo test` runs a lab whole, on one machine",
            lab.hosts().join(", ")
        )));
    }
    let again = up_again(&lab);
    if lab.topology.tests.is_empty() {
        return Err(LabError::Usage(format!(
            "{}: no tests: add a 'tests:' list of steps (see docs/testing.md)",
            lab.file.display()
        )));
    }
    if let Some(dir) = &args.artifacts {
        std::fs::create_dir_all(dir)
            .map_err(|e| LabError::Usage(format!("create {}: {e}", dir.display())))?;
    }
    let text = args.output == Output::Text;
    let was_up = crate::state::labs().contains(&name);
    let rt = runtime()?;
    let take_down = !was_up && !args.keep;
    let finish = |code: i32, report: Option<&Report>| -> Result<i32, LabError> {
        if let Some(dir) = &args.artifacts {
            keep_logs(&name, dir);
            if let Some(r) = report {
                write_file(&dir.join("report.json"), &json_text(r));
                if let Ok(xml) = report::junit(r) {
                    write_file(&dir.join("junit.xml"), &xml);
                }
            }
        }
        if let (Some(path), Some(r)) = (&args.junit, report) {
            match report::junit(r) {
                Ok(xml) => write_file(path, &xml),
                Err(e) => errln!("topo: warning: cannot write the JUnit report: {e}"),
            }
        }
        if take_down {
            match rt.block_on(lab::down_with(
                &name,
                lab::DownOptions {
                    wait: true,
                    ..Default::default()
                },
            )) {
                Ok(d) => {
                    if let Some(logs) = d.logs {
                        errln!("lab {name}: down; logs kept in {}", logs.display());
                    } else {
                        errln!("lab {name}: down");
                    }
                }
                Err(e) => errln!("topo: error: lab {name}: down failed: {e}"),
            }
        } else {
            errln!("lab {name}: left up");
        }
        Ok(code)
    };
    // Up: the lab as the file describes it, whether it was up or not.
    let up = rt.block_on(async {
        let stop = interrupted_up();
        tokio::select! {
            biased;
            sig = stop => Err(LabError::Interrupted { lab: name.clone(), signal: sig, file: again.clone() }),
            r = lab.up() => r,
        }
    });
    match up {
        Ok(r) => {
            let n = r.plan.visible().count();
            errln!(
                "lab {name}: {} ({n} changes, {:.2}s)",
                if was_up { "up already" } else { "up" },
                r.elapsed.as_secs_f64()
            );
        }
        Err(e) => {
            errln!("topo: error: {e}");
            errln!("lab {name}: could not come up; no tests were run");
            let code = if matches!(e, LabError::Interrupted { .. }) {
                e.exit_code()
            } else {
                NOT_UP
            };
            return finish(code, None);
        }
    }
    let capture = start_capture(&lab, args.artifacts.as_deref());
    let options = testrun::TestOptions {
        artifacts: args.artifacts.clone(),
    };
    let on_step = |s: &report::StepReport| {
        if !text {
            return;
        }
        outln!("{}", report::step_line(s));
        if s.outcome == Outcome::Fail {
            for line in s.failure_text().lines() {
                outln!("       {line}");
            }
        }
    };
    let result = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            biased;
            sig = stop => Err(sig),
            r = testrun::run_steps(&lab, &options, &on_step) => Ok(r),
        }
    });
    if let Some((c, path)) = capture {
        match c.stop() {
            Ok(stats) => {
                let counts: Vec<String> = stats
                    .packets
                    .iter()
                    .map(|(ep, n)| format!("{ep} {n}"))
                    .collect();
                errln!(
                    "lab {name}: capture in {} ({} packets)",
                    path.display(),
                    counts.join(", ")
                );
            }
            Err(e) => errln!("topo: warning: capture: {e}"),
        }
    }
    let report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            errln!("topo: error: {e}");
            return finish(FAILED, None);
        }
        Err(sig) => {
            errln!("topo: {sig}: tests stopped");
            return finish(if sig == "SIGINT" { 130 } else { 143 }, None);
        }
    };
    if text {
        let failed = report.failed();
        outln!(
            "lab {name}: {} steps, {} passed, {failed} failed ({:.1}s)",
            report.steps.len(),
            report.steps.len() - failed,
            report.seconds
        );
    } else {
        print_json(&report);
    }
    finish(if report.passed { PASSED } else { FAILED }, Some(&report))
}

fn json_text(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

fn write_file(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        errln!("topo: warning: cannot write {}: {e}", path.display());
    }
}

/// Copies the lab's logs (services, `exec:` lines) into `DIR/logs`.
fn keep_logs(lab: &str, dir: &Path) {
    let from = crate::state::root().join(lab).join("logs");
    let to = dir.join("logs");
    let Ok(entries) = std::fs::read_dir(&from) else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(&to) {
        errln!("topo: warning: cannot create {}: {e}", to.display());
        return;
    }
    for e in entries.flatten() {
        // Regular files only: the run directory is root's, but a node may have made links.
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file {
            if let Err(err) = std::fs::copy(e.path(), to.join(e.file_name())) {
                errln!("topo: warning: cannot copy {}: {err}", e.path().display());
            }
        }
    }
}

/// Starts recording the endpoints the file marks `capture: true` (a link at its first end,
/// or an interface), into `DIR/capture.pcapng` with `--artifacts`, else into the lab's logs
/// (archived with them by `down`).
fn start_capture(
    lab: &Lab,
    artifacts: Option<&Path>,
) -> Option<(crate::capture::Capture, PathBuf)> {
    let t = &lab.topology;
    let mut endpoints: Vec<crate::spec::Endpoint> = t
        .links
        .iter()
        .filter(|l| l.capture)
        .map(|l| l.endpoints[0].clone())
        .collect();
    for (node, n) in &t.nodes {
        for (iface, i) in &n.interfaces {
            let ep = crate::spec::Endpoint {
                node: node.clone(),
                iface: iface.clone(),
            };
            if i.capture && !endpoints.contains(&ep) {
                endpoints.push(ep);
            }
        }
    }
    if endpoints.is_empty() {
        return None;
    }
    let path = match artifacts {
        Some(dir) => dir.join("capture.pcapng"),
        None => crate::state::root()
            .join(lab.name())
            .join("logs")
            .join("capture.pcapng"),
    };
    let file = match std::fs::File::create(&path) {
        Ok(f) => f,
        Err(e) => {
            errln!("topo: warning: capture: create {}: {e}", path.display());
            return None;
        }
    };
    let out = Box::new(std::io::BufWriter::new(file));
    match crate::capture::Capture::start(lab.name(), &endpoints, out) {
        Ok(c) => Some((c, path)),
        Err(e) => {
            errln!("topo: warning: capture: {e}");
            None
        }
    }
}
