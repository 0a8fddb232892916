//! Append-only JSON-lines files: the sandbox's order book
//! (`ledger.jsonl`) and its merchants (`merchants.jsonl`) are kept as one
//! record per change, replayed in order at start, so a change costs one
//! appended line instead of a rewrite of everything.
//!
//! A crash can leave a half-written last line: opening a journal cuts the
//! file back to its last complete line (the half record is lost, and
//! logged), so the next append starts on a line of its own. A line that
//! does not parse is skipped and counted, never fatal: the files are a
//! simulator's state. [`Journal::rewrite`] replaces the file with a
//! compact set of records (temp file + rename) when the owner finds it has
//! grown well past what it describes.
//!
//! Durability is the owner's choice: [`Journal::append`] only buffers;
//! [`Journal::flush`] hands the lines to the OS (a process crash keeps
//! them), [`Journal::sync`] also fsyncs (a machine crash keeps them).

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{private_options, write_private_with};

pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
    /// Lines appended but not yet flushed.
    unflushed: bool,
}

/// What [`Journal::open`] read.
pub struct Replayed<T> {
    pub records: Vec<T>,
    /// Lines that did not parse (skipped).
    pub bad_lines: u64,
}

impl Journal {
    /// Read every record of `path` (created 0600 if missing) and open it
    /// for appending.
    pub fn open<T: DeserializeOwned>(path: &Path) -> anyhow::Result<(Journal, Replayed<T>)> {
        let mut file = private_options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut records = Vec::new();
        let mut bad_lines = 0u64;
        let mut lines = 0u64;
        // Byte offset after the last complete line.
        let mut complete = 0u64;
        {
            let mut reader = BufReader::new(&mut file);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .with_context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    break;
                }
                if !line.ends_with('\n') {
                    tracing::warn!(
                        file = %path.display(),
                        bytes = n,
                        "dropping a half-written last line (the process stopped while writing it)"
                    );
                    break;
                }
                complete += n as u64;
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                lines += 1;
                match serde_json::from_str(text) {
                    Ok(r) => records.push(r),
                    Err(e) => {
                        bad_lines += 1;
                        tracing::warn!(file = %path.display(), error = %e, "skipping a journal line that does not parse");
                    }
                }
            }
        }
        let len = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("reading {}", path.display()))?;
        if len != complete {
            file.set_len(complete)
                .with_context(|| format!("truncating {}", path.display()))?;
        }
        Ok((
            Journal {
                path: path.to_owned(),
                out: BufWriter::with_capacity(64 * 1024, file),
                lines,
                unflushed: false,
            },
            Replayed { records, bad_lines },
        ))
    }

    /// Buffer one record as a line.
    pub fn append<T: Serialize>(&mut self, record: &T) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, record)
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.out
            .write_all(b"\n")
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.lines += 1;
        self.unflushed = true;
        Ok(())
    }

    /// Hand buffered lines to the OS.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.unflushed {
            self.out
                .flush()
                .with_context(|| format!("writing {}", self.path.display()))?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// Whether lines wait in the buffer.
    pub fn unflushed(&self) -> bool {
        self.unflushed
    }

    /// Flush and fsync.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .with_context(|| format!("syncing {}", self.path.display()))
    }

    /// Lines in the file (records and bad lines).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Replace the file with `records` (atomically) and append after them.
    pub fn rewrite<T: Serialize>(
        &mut self,
        records: impl IntoIterator<Item = T>,
    ) -> anyhow::Result<()> {
        self.flush()?;
        let mut lines = 0u64;
        write_private_with(&self.path, |w| {
            for r in records {
                serde_json::to_writer(&mut *w, &r)?;
                w.write_all(b"\n")?;
                lines += 1;
            }
            Ok(())
        })?;
        let file = private_options()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("reopening {}", self.path.display()))?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.lines = lines;
        self.unflushed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_replay_and_half_lines_are_cut() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j.jsonl");
        let (mut j, r) = Journal::open::<u32>(&path).expect("open");
        assert!(r.records.is_empty());
        j.append(&1u32).expect("append");
        j.append(&2u32).expect("append");
        j.flush().expect("flush");
        drop(j);
        // A crash in the middle of a line, and a line that is not a record.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("reopen");
        f.write_all(b"\"x\"\n3").expect("write");
        drop(f);
        let (mut j, r) = Journal::open::<u32>(&path).expect("open");
        assert_eq!(r.records, vec![1, 2]);
        assert_eq!(r.bad_lines, 1);
        j.append(&4u32).expect("append");
        j.flush().expect("flush");
        drop(j);
        let (mut j, r) = Journal::open::<u32>(&path).expect("open");
        assert_eq!(r.records, vec![1, 2, 4]);
        assert_eq!(j.lines(), 4);
        j.rewrite([9u32]).expect("rewrite");
        j.append(&10u32).expect("append");
        j.sync().expect("sync");
        drop(j);
        let (j, r) = Journal::open::<u32>(&path).expect("open");
        assert_eq!(r.records, vec![9, 10]);
        assert_eq!(j.lines(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
