//! `topo capture`: packets of a lab's interfaces as pcapng, to a file or a pipe, through
//! [`crate::capture::Capture`]; this adds the count, the duration, the signals and the
//! summary.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::{FollowSignals, LabArgs, CLOSED_PIPE, HOW};
use crate::capture::{Capture, CaptureStats, Limits};
use crate::lab::{self, LabError};
use crate::net::NetError;
use crate::spec::Endpoint;

// The options of `topo capture`.
#[derive(Args)]
pub(super) struct CaptureArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// NODE:INTERFACE to capture; several as a comma-separated list or several arguments
    #[arg(required = true, value_name = "NODE:IF")]
    endpoints: Vec<String>,
    /// Write the pcapng to FILE, or to standard output with `-` (flushed after each packet:
    /// `topo capture r1:eth1 -w - | wireshark -k -i -`); default: standard output, unless it
    /// is a terminal
    #[arg(short = 'w', value_name = "FILE")]
    write: Option<String>,
    /// Stop after COUNT packets (of all endpoints together)
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after DURATION (us, ms or s: `10s`, `1.5s`)
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
}

/// How often the command looks at the capture, the clock and standard output while it waits
/// for a signal.
const TICK: Duration = Duration::from_millis(100);

/// `topo capture [-f FILE [--name NAME] | --lab NAME] NODE:IF[,NODE:IF…] [-w FILE|-] [-c N] [--duration D]`
pub(super) fn cmd_capture(args: CaptureArgs) -> Result<i32, LabError> {
    let name = args.lab.resolve(HOW)?;
    let endpoints = parse_endpoints(&args.endpoints)?;
    let duration = args
        .duration
        .as_deref()
        .map(|d| {
            crate::spec::parse_duration_us(d)
                .map(Duration::from_micros)
                .map_err(|e| LabError::Usage(format!("--duration: {}; {}", e.message, e.hint)))
        })
        .transpose()?;
    // Where to: a file (`Some`), or standard output.
    let (out, path): (Box<dyn Write + Send>, Option<&str>) = match args.write.as_deref() {
        Some("-") => (Box::new(io::stdout()), None),
        Some(path) => (Box::new(LazyFile::new(path)), Some(path)),
        None if io::stdout().is_terminal() => {
            return Err(LabError::Usage(
                "refusing to write binary pcapng to a terminal; hint: -w FILE, or a pipe: `topo capture … | wireshark -k -i -`".into(),
            ))
        }
        None => (Box::new(io::stdout()), None),
    };
    let to = path.unwrap_or("standard output");
    // Blocked before the capture's thread starts, so that it inherits the mask and an
    // interrupt always ends the capture cleanly.
    let signals = FollowSignals::block()?;
    let limits = Limits { count: args.count };
    let capture = Capture::start_with(&name, &endpoints, out, limits)?;
    let labels: Vec<String> = endpoints.iter().map(Endpoint::to_string).collect();
    errln!(
        "topo: capturing {} of lab {name} to {to}; SIGINT (Ctrl-C) ends it",
        labels.join(", ")
    );
    let started = Instant::now();
    loop {
        if capture.is_finished() {
            break;
        }
        let tick = match duration {
            Some(d) if started.elapsed() >= d => break,
            Some(d) => TICK.min(d.saturating_sub(started.elapsed())),
            None => TICK,
        };
        if wait(&signals, tick, path.is_none()) {
            break;
        }
    }
    match capture.stop() {
        Ok(stats) => {
            summary(&stats);
            Ok(0)
        }
        Err(LabError::Net(NetError::Io { source, .. }))
            if source.kind() == io::ErrorKind::BrokenPipe =>
        {
            Ok(CLOSED_PIPE)
        }
        Err(e) => Err(e),
    }
}

/// Endpoints from the arguments, each `NODE:IF` or a comma-separated list of them.
fn parse_endpoints(args: &[String]) -> Result<Vec<Endpoint>, LabError> {
    let mut out: Vec<Endpoint> = Vec::new();
    for text in args.iter().flat_map(|a| a.split(',')) {
        let ep = lab::endpoint(text.trim())?;
        if out.contains(&ep) {
            return Err(LabError::Usage(format!("{ep} is given twice")));
        }
        out.push(ep);
    }
    if out.is_empty() {
        return Err(LabError::Usage("give at least one NODE:INTERFACE".into()));
    }
    Ok(out)
}

/// Waits up to `timeout` for SIGINT or SIGTERM (true when one came). With the capture on
/// standard output, a reader that went away ends `topo` as a write would ([`CLOSED_PIPE`]),
/// also while no packet comes.
fn wait(signals: &FollowSignals, timeout: Duration, watch_stdout: bool) -> bool {
    if watch_stdout {
        return signals.wait(timeout);
    }
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(signals.fd.as_fd(), PollFlags::POLLIN)];
    if nix::poll::poll(&mut fds, PollTimeout::from(ms)).is_err() {
        return false;
    }
    fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// Packets per endpoint, and the endpoints that went away, on standard error.
fn summary(stats: &CaptureStats) {
    for why in &stats.gone {
        errln!("topo: note: {why}; stopped capturing it");
    }
    let total: u64 = stats.packets.iter().map(|(_, n)| n).sum();
    for (label, n) in &stats.packets {
        errln!("{label}: {n} packets");
    }
    if stats.packets.len() > 1 {
        errln!("total: {total} packets");
    }
}

/// A file created at its first write: a capture that fails before it starts (an unknown
/// interface) leaves no file behind.
struct LazyFile {
    path: PathBuf,
    file: Option<File>,
}

impl LazyFile {
    fn new(path: &str) -> LazyFile {
        LazyFile {
            path: PathBuf::from(path),
            file: None,
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        match &mut self.file {
            Some(f) => Ok(f),
            slot => {
                let f = File::create(&self.path).map_err(|e| {
                    io::Error::new(e.kind(), format!("create {}: {e}", self.path.display()))
                })?;
                Ok(slot.insert(f))
            }
        }
    }
}

impl Write for LazyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn labels(eps: &[Endpoint]) -> Vec<String> {
        eps.iter().map(Endpoint::to_string).collect()
    }

    #[test]
    fn endpoints_come_from_lists_and_several_arguments_in_order() {
        let eps = parse_endpoints(&args(&["r1:eth1,r2:eth1", "h1:eth0"])).unwrap();
        assert_eq!(labels(&eps), ["r1:eth1", "r2:eth1", "h1:eth0"]);
        let eps = parse_endpoints(&args(&["a:eth1, b:eth2"])).unwrap();
        assert_eq!(labels(&eps), ["a:eth1", "b:eth2"]);
    }

    #[test]
    fn malformed_or_repeated_endpoints_are_usage_errors() {
        for bad in [
            &["r1"][..],
            &["r1:"],
            &[":eth1"],
            &["r1:eth1,"],
            &["r1:eth1", "r1:eth1"],
        ] {
            let e = parse_endpoints(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }
}
