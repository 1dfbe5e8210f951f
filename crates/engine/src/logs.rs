//! The container log: Docker's json-file format, one JSON object per line
//! (`{"log":"...","stream":"stdout","time":"RFC3339Nano"}`), written by the monitor and read
//! by `berth logs`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One log line.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogEntry {
    /// The bytes, including the trailing newline when there was one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When the monitor read it, RFC 3339 with nanoseconds.
    pub time: String,
}

/// Splits a stream into lines and appends them to the log file.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    stream: &'static str,
    partial: Vec<u8>,
}

impl LogWriter {
    /// Appends to `file` for `stream` (`stdout`/`stderr`).
    pub fn new(file: File, stream: &'static str) -> Self {
        Self {
            file,
            stream,
            partial: Vec::new(),
        }
    }

    /// Logs every complete line of `data`; keeps a trailing partial line for later.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.partial.extend_from_slice(data);
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.emit(&line)?;
        }
        Ok(())
    }

    /// Logs the partial line left at end of stream.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line)?;
        }
        Ok(())
    }

    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: self.stream.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let mut buf = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        buf.push(b'\n');
        // One write per line with O_APPEND keeps lines of the two streams whole.
        self.file.write_all(&buf)
    }
}

/// Prints the log to `out`/`err`: the last `tail` lines (all if `None`), then, with `follow`,
/// new lines until `still_running` says the container is gone and the file is drained.
pub fn print(
    path: &Path,
    tail: Option<usize>,
    follow: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
    mut still_running: impl FnMut() -> bool,
) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if line.ends_with('\n') {
            lines.push(std::mem::take(&mut line));
        } else {
            break;
        }
    }
    let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
    for l in &lines[skip..] {
        emit(l, out, err)?;
    }
    if !follow {
        return Ok(());
    }
    // Re-read from the last complete line.
    let mut pos = lines.iter().map(|l| l.len() as u64).sum::<u64>();
    loop {
        let running = still_running();
        let mut f = reader.into_inner();
        f.seek(SeekFrom::Start(pos))?;
        reader = BufReader::new(f);
        let mut buf = String::new();
        while reader.read_line(&mut buf)? > 0 {
            if !buf.ends_with('\n') {
                break;
            }
            pos += buf.len() as u64;
            emit(&buf, out, err)?;
            buf.clear();
        }
        out.flush()?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn emit(line: &str, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let Ok(entry) = serde_json::from_str::<LogEntry>(line) else {
        return Ok(());
    };
    if entry.stream == "stderr" {
        err.write_all(entry.log.as_bytes())
    } else {
        out.write_all(entry.log.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let f = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap()
        };
        let mut o = LogWriter::new(f(), "stdout");
        let mut e = LogWriter::new(f(), "stderr");
        o.write(b"one\ntw").unwrap();
        e.write(b"err\n").unwrap();
        o.write(b"o\nthree").unwrap();
        o.finish().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print(&p, None, false, &mut out, &mut err, || false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree");
        assert_eq!(String::from_utf8(err).unwrap(), "err\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print(&p, Some(1), false, &mut out, &mut err, || false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "three");
    }
}
