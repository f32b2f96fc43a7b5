//! The json-file log driver's format, as Docker writes it: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-23T06:00:27.870318289Z"}`, rotated to
//! `<path>.1`, `<path>.2`, … when `max-size` is set (`max-file` files kept in all).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use crate::{Result, ShimError};

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub time: DateTime<Utc>,
    /// The bytes, newline included when the process wrote one.
    pub data: Vec<u8>,
}

/// Appends records to a json-file log, rotating by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ShimError {
    let path = path.to_path_buf();
    move |source| ShimError::Io { op, path, source }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Go's `time.RFC3339Nano` in UTC: nanoseconds with trailing zeros trimmed.
pub fn format_time(t: &DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Appends `data` as a JSON string the way Docker's json-file driver does: `\"`, `\\`,
/// `\n`, `\r`, `\t`, other control characters and `<`, `>`, `&` as `\u00XX`, U+2028/U+2029
/// escaped, invalid UTF-8 replaced by U+FFFD.
pub fn escape_json_into(out: &mut String, data: &[u8]) {
    out.push('"');
    for chunk in data.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' | '>' | '&' => out.push_str(&format!("\\u{:04x}", ch as u32)),
                '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", ch as u32)),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

impl LogWriter {
    /// Opens (appending) the log at `path`. `max_size` None = never rotate; `max_files` ≥ 1.
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io("open log", path))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.filter(|m| *m > 0),
            max_files: max_files.max(1),
        })
    }

    /// Writes one record (the caller splits output at newlines, as Docker does).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        self.write_at(stream, data, Utc::now())
    }

    /// Writes one record with the given timestamp.
    pub fn write_at(&mut self, stream: Stream, data: &[u8], time: DateTime<Utc>) -> Result<()> {
        let mut line = String::with_capacity(data.len() + 80);
        line.push_str("{\"log\":");
        escape_json_into(&mut line, data);
        line.push_str(match stream {
            Stream::Stdout => ",\"stream\":\"stdout\",\"time\":\"",
            Stream::Stderr => ",\"stream\":\"stderr\",\"time\":\"",
        });
        line.push_str(&format_time(&time));
        line.push_str("\"}\n");
        if let Some(max) = self.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file
            .write_all(line.as_bytes())
            .map_err(io("write log", &self.path))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        if self.max_files > 1 {
            let last = rotated(&self.path, self.max_files - 1);
            let _ = std::fs::remove_file(&last);
            for n in (1..self.max_files - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))
                        .map_err(io("rotate log", &from))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))
                .map_err(io("rotate log", &self.path))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io("open log", &self.path))?;
        } else {
            self.file
                .set_len(0)
                .map_err(io("truncate log", &self.path))?;
        }
        self.size = 0;
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Record {
    log: String,
    stream: Stream,
    time: DateTime<Utc>,
}

/// Reads every record of a log (rotated files first, oldest first). Corrupt lines are skipped.
pub fn read_all(path: &Path) -> Result<Vec<LogLine>> {
    let mut files = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        files.push(rotated(path, n));
        n += 1;
    }
    files.reverse();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for f in files {
        let file = match File::open(&f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("open log", &f)(e)),
        };
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(io("read log", &f))?;
            if let Ok(r) = serde_json::from_slice::<Record>(&line) {
                out.push(LogLine {
                    stream: r.stream,
                    time: r.time,
                    data: r.log.into_bytes(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_docker_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&p, None, 1).unwrap();
        let t = DateTime::parse_from_rfc3339("2026-11-23T06:00:27.870318200Z")
            .unwrap()
            .to_utc();
        w.write_at(Stream::Stdout, b"hello\n", t).unwrap();
        w.write_at(Stream::Stderr, b"a\"<b>\x01\xff\n", t).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"log":"hello\n","stream":"stdout","time":"2026-11-23T06:00:27.8703182Z"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"log":"a\"\u003cb\u003e\u0001\ufffd\n","stream":"stderr","time":"2026-11-23T06:00:27.8703182Z"}"#
        );
        let all = read_all(&p).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].data, b"hello\n");
        assert_eq!(all[1].stream, Stream::Stderr);
    }

    #[test]
    fn rotates_and_reads_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = LogWriter::open(&p, Some(200), 3).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(rotated(&p, 1).exists());
        assert!(rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists());
        let all = read_all(&p).unwrap();
        let nums: Vec<String> = all
            .iter()
            .map(|l| String::from_utf8(l.data.clone()).unwrap())
            .collect();
        assert_eq!(nums.last().unwrap(), "line 19\n");
        for w in nums.windows(2) {
            let a: u32 = w[0].trim().trim_start_matches("line ").parse().unwrap();
            let b: u32 = w[1].trim().trim_start_matches("line ").parse().unwrap();
            assert_eq!(a + 1, b);
        }
        for f in [p.clone(), rotated(&p, 1)] {
            assert!(std::fs::metadata(f).unwrap().len() <= 200);
        }
    }

    #[test]
    fn time_format_trims_zeros() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        assert_eq!(format_time(&t), "2026-01-02T03:04:05Z");
    }
}
