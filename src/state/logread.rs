//! Reading logs, live (the run directory's `logs/`) or archived (see `archive.rs`): which logs
//! a directory holds, the last lines of a log over its rotated parts, and following a log as
//! its writer appends to it and rotates it. Every file is opened relative to the opened
//! directory, without following symbolic links, and only as a regular file with one link.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use nix::fcntl::{AtFlags, OFlag};

use super::archive::{self, ArchiveName};
use super::{safe, StateError};
use crate::spec::Logs;

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

/// A directory of logs, opened.
pub struct LogDir {
    pub path: PathBuf,
    fd: OwnedFd,
}

/// `NAME.log` is `(NAME, 0)`, a rotated `NAME.log.N` is `(NAME, N)`; anything else `None`.
pub fn parse_log_file(file: &str) -> Option<(&str, u32)> {
    if let Some(name) = file.strip_suffix(".log") {
        return (!name.is_empty()).then_some((name, 0));
    }
    let (name, n) = file.rsplit_once(".log.")?;
    let ok = !name.is_empty()
        && !n.is_empty()
        && n.len() <= 9
        && !n.starts_with('0')
        && n.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| n.parse().ok().map(|n| (name, n)))?
}

/// `(device, inode)` of a file.
type Ident = (u64, u64);

impl LogDir {
    /// The `logs/` of a lab's run directory; `None` when the lab has none (it is not up).
    pub fn live(lab: &str) -> Result<Option<LogDir>, StateError> {
        let top = super::root();
        let Some(root_fd) = super::open_root(false)? else {
            return Ok(None);
        };
        let lab_path = top.join(lab);
        let Some(dir) = safe::open_subdir(root_fd.as_fd(), lab, &lab_path, false)? else {
            return Ok(None);
        };
        let path = lab_path.join("logs");
        Ok(safe::open_subdir(dir.as_fd(), "logs", &path, false)?.map(|fd| LogDir { path, fd }))
    }

    /// The `logs/` of the lab's newest archive, and its name; `None` when it has none.
    pub fn archived(lab: &str) -> Result<Option<(LogDir, ArchiveName)>, StateError> {
        Ok(archive::newest_logs(lab)?.map(|(fd, path, name)| (LogDir { path, fd }, name)))
    }

    /// Whether this is (still) the `logs/` of the lab's run directory: a `down` moves it
    /// away, and a later `up` makes a new one.
    pub fn is_live(&self, lab: &str) -> bool {
        let here = nix::sys::stat::fstat(&self.fd).map(|st| (st.st_dev, st.st_ino));
        let there = std::fs::symlink_metadata(super::root().join(lab).join("logs"))
            .map(|m| (m.dev(), m.ino()));
        matches!((here, there), (Ok(a), Ok(b)) if a == b)
    }

    /// The logs in the directory: each name (`web.http`, `web.exec`) with the numbers of its
    /// parts (0 for `NAME.log`, N for `NAME.log.N`), in order.
    pub fn logs(&self) -> Result<BTreeMap<String, Vec<u32>>, StateError> {
        let names = archive::list(self.fd.as_fd()).map_err(|e| StateError::Io {
            what: format!("read {}", self.path.display()),
            source: e.into(),
        })?;
        let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for n in &names {
            if let Some((name, i)) = n.to_str().and_then(parse_log_file) {
                out.entry(name.to_string()).or_default().push(i);
            }
        }
        for parts in out.values_mut() {
            parts.sort_unstable();
        }
        Ok(out)
    }

    /// The parts of a log, opened, oldest first: `NAME.log.N` … `NAME.log.1`, `NAME.log`.
    /// A part that cannot be opened (rotated away meanwhile) is left out.
    pub fn parts(&self, name: &str, numbers: &[u32]) -> Vec<Part> {
        let mut numbers = numbers.to_vec();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        numbers
            .into_iter()
            .filter_map(|i| {
                self.open(&part_name(name, i))
                    .map(|p| Part { index: i, ..p })
            })
            .collect()
    }

    fn open(&self, file: &str) -> Option<Part> {
        let f = safe::open_file(
            self.fd.as_fd(),
            file,
            &self.path.join(file),
            OFlag::O_RDONLY,
            0,
        )
        .ok()?;
        let m = f.metadata().ok()?;
        Some(Part {
            index: 0,
            size: m.len(),
            ident: (m.dev(), m.ino()),
            file: f,
        })
    }

    /// The identity of a regular file of the directory, without following a link.
    fn ident(&self, file: &str) -> Option<Ident> {
        let st = nix::sys::stat::fstatat(&self.fd, OsStr::new(file), AtFlags::AT_SYMLINK_NOFOLLOW)
            .ok()?;
        (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((st.st_dev, st.st_ino))
    }
}

fn part_name(name: &str, i: u32) -> String {
    if i == 0 {
        format!("{name}.log")
    } else {
        format!("{name}.log.{i}")
    }
}

/// Something of a known size that can be read at an offset.
pub trait ReadAt {
    fn size(&self) -> u64;
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

impl ReadAt for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// One file of a log, opened, with its size when opened.
pub struct Part {
    /// 0 for `NAME.log`, N for `NAME.log.N`.
    index: u32,
    size: u64,
    ident: Ident,
    file: File,
}

impl ReadAt for Part {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(&self.file, buf, offset)
    }
}

/// Fills `buf` from `offset`; a part that ends early (it never should) is an error.
fn read_exact_at<R: ReadAt>(r: &R, buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match r.read_at(&mut buf[done..], offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                done += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where the last `lines` lines of `parts` (one stream, oldest part first) start: the part
/// and the offset in it. A last line without its newline counts as a line, as in `tail -n`.
/// The parts are read backwards from their end, a chunk at a time.
pub fn tail_start<R: ReadAt>(parts: &[R], lines: usize) -> std::io::Result<(usize, u64)> {
    if lines == 0 {
        return Ok((parts.len(), 0));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut last_byte = true;
    let mut seen = 0;
    for (i, p) in parts.iter().enumerate().rev() {
        let mut hi = p.size();
        while hi > 0 {
            let lo = hi.saturating_sub(CHUNK as u64);
            let chunk = &mut buf[..(hi - lo) as usize];
            read_exact_at(p, chunk, lo)?;
            for (k, &b) in chunk.iter().enumerate().rev() {
                // The newline that ends the stream ends the last line; it does not start one.
                if b == b'\n' && !last_byte {
                    seen += 1;
                    if seen == lines {
                        return Ok((i, lo + k as u64 + 1));
                    }
                }
                last_byte = false;
            }
            hi = lo;
        }
    }
    Ok((0, 0))
}

/// Passes `parts` to `out` from `start` (see [`tail_start`]) to the size each had when it was
/// opened.
pub fn copy_parts<R: ReadAt>(
    parts: &[R],
    start: (usize, u64),
    out: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    for (i, p) in parts.iter().enumerate().skip(start.0) {
        let mut at = if i == start.0 { start.1 } else { 0 };
        while at < p.size() {
            let n = usize::try_from(p.size() - at).unwrap_or(CHUNK).min(CHUNK);
            read_exact_at(p, &mut buf[..n], at)?;
            out(&buf[..n]);
            at += n as u64;
        }
    }
    Ok(())
}

/// Follows one log after what [`copy_parts`] printed of it: what is appended to `NAME.log`,
/// and, when the writer rotates it (renames it to `NAME.log.1` and starts a new one), the
/// rest of the old file, any part rotated past unseen, then the new file from its start.
pub struct Follower {
    name: String,
    current: Option<(File, Ident)>,
    pos: u64,
}

impl Follower {
    /// A follower of the log `name` whose `parts` were printed up to their sizes.
    pub fn after(name: &str, parts: Vec<Part>) -> Follower {
        let current = parts.into_iter().last().filter(|p| p.index == 0);
        let pos = current.as_ref().map_or(0, |p| p.size);
        Follower {
            name: name.to_string(),
            current: current.map(|p| (p.file, p.ident)),
            pos,
        }
    }

    /// Passes to `out` what was written since the last call.
    pub fn poll(&mut self, dir: &LogDir, out: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        self.drain(out)?;
        let live = part_name(&self.name, 0);
        let Some(now) = dir.ident(&live) else {
            // Between the writer's rename and its new file (or a log removed with `keep: 0`).
            return Ok(());
        };
        let old = self.current.as_ref().map(|(_, id)| *id);
        if old == Some(now) {
            return Ok(());
        }
        if let Some(old) = old {
            // What the writer put in the old file before it moved on, then what it rotated
            // past since.
            self.drain(out)?;
            self.current = None;
            self.unseen_parts(dir, old, out)?;
        }
        let Some(p) = dir.open(&live) else {
            return Ok(());
        };
        self.current = Some((p.file, p.ident));
        self.pos = 0;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        let Some((f, _)) = &self.current else {
            return Ok(());
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            match FileExt::read_at(f, &mut buf, self.pos) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    out(&buf[..n]);
                    self.pos += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Parts rotated since `old` was the current file, that were never printed: those newer
    /// than `old` (`NAME.log.1` … up to where `old` now is), or every rotated part when `old`
    /// was dropped as the oldest. Printed oldest first.
    fn unseen_parts(
        &mut self,
        dir: &LogDir,
        old: Ident,
        out: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<()> {
        let mut newer = Vec::new();
        for i in 1..=Logs::MAX_KEEP {
            let Some(id) = dir.ident(&part_name(&self.name, i)) else {
                break;
            };
            if id == old {
                break;
            }
            newer.push(i);
        }
        for i in newer.into_iter().rev() {
            if let Some(p) = dir.open(&part_name(&self.name, i)) {
                copy_parts(&[p], (0, 0), out)?;
            }
        }
        Ok(())
    }
}

/// Splits what a log gives into lines, each written with a prefix (`http| `). A line without
/// its newline yet waits for the rest; [`finish`](Self::finish) ends it.
pub struct Prefixed {
    prefix: Vec<u8>,
    partial: Vec<u8>,
}

impl Prefixed {
    pub fn new(prefix: &str) -> Prefixed {
        Prefixed {
            prefix: prefix.as_bytes().to_vec(),
            partial: Vec::new(),
        }
    }

    /// Writes every line that `bytes` completes.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        let mut text = Vec::new();
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            text.extend_from_slice(&self.prefix);
            text.append(&mut self.partial);
            text.extend_from_slice(&bytes[..=nl]);
            bytes = &bytes[nl + 1..];
        }
        self.partial.extend_from_slice(bytes);
        if !text.is_empty() {
            out(&text);
        }
    }

    /// Writes a last line that has no newline, with one.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let mut text = self.prefix.clone();
            text.append(&mut self.partial);
            text.push(b'\n');
            out(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(parts: &[&[u8]], n: usize) -> String {
        let start = tail_start(parts, n).expect("tail");
        let mut out = Vec::new();
        copy_parts(parts, start, &mut |b| out.extend_from_slice(b)).expect("copy");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_tail_spans_rotated_parts() {
        let one: &[&[u8]] = &[b"a\nb\nc\n"];
        assert_eq!(tail(one, 0), "");
        assert_eq!(tail(one, 1), "c\n");
        assert_eq!(tail(one, 2), "b\nc\n");
        assert_eq!(tail(one, 3), "a\nb\nc\n");
        assert_eq!(tail(one, 10), "a\nb\nc\n");
        // A last line without its newline is a line.
        let open: &[&[u8]] = &[b"a\nb\nc"];
        assert_eq!(tail(open, 1), "c");
        assert_eq!(tail(open, 2), "b\nc");
        // The writer rotates at a byte count, so a line may span two parts.
        let rotated: &[&[u8]] = &[b"one\ntw", b"o\nthr", b"", b"ee\nfour\n"];
        assert_eq!(tail(rotated, 1), "four\n");
        assert_eq!(tail(rotated, 2), "three\nfour\n");
        assert_eq!(tail(rotated, 3), "two\nthree\nfour\n");
        assert_eq!(tail(rotated, 4), "one\ntwo\nthree\nfour\n");
        assert_eq!(tail(&[], 3), "");
        assert_eq!(tail(&[b"\n\n".as_slice()], 1), "\n");
    }

    #[test]
    fn the_tail_of_a_long_log_reads_chunks_backwards() {
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let parts: &[&[u8]] = &[text.as_bytes()];
        assert_eq!(tail(parts, 2), "line 19998\nline 19999\n");
        let t = tail(parts, 15_000);
        assert!(t.starts_with("line 5000\n"), "{}", &t[..20]);
    }

    #[test]
    fn log_file_names() {
        assert_eq!(parse_log_file("web.http.log"), Some(("web.http", 0)));
        assert_eq!(parse_log_file("web.http.log.2"), Some(("web.http", 2)));
        assert_eq!(parse_log_file("web.exec.log.10"), Some(("web.exec", 10)));
        assert_eq!(parse_log_file("init.log"), Some(("init", 0)));
        for bad in [
            ".log",
            "a.log.",
            "a.log.0",
            "a.log.01",
            "a.log.x",
            "a.txt",
            "a.log.1.tmp",
        ] {
            assert_eq!(parse_log_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_are_prefixed_and_partial_lines_wait() {
        let mut out = Vec::new();
        let mut p = Prefixed::new("http| ");
        p.feed(b"GET / 200\nGET /a", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"http| GET / 200\n");
        p.feed(b"bc 404\n\nx", &mut |b| out.extend_from_slice(b));
        p.finish(&mut |b| out.extend_from_slice(b));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "http| GET / 200\nhttp| GET /abc 404\nhttp| \nhttp| x\n"
        );
    }
}
