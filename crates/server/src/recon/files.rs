//! Bill files in the data folder: `bills/<configId>/<day>_<scope>.<ext>`,
//! kept as the channel served them when compressed (gzip, zip) and
//! gzipped by cashdesk when served plain, so a rerun reads them without
//! the channel; each with the SHA-1 of its text (the channel's, or
//! computed on receipt), checked on every read. A download goes to a temporary file first and is renamed
//! only once complete: a crash leaves no half file under a final name.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use cashdesk_channels::bill::{
    BillDownload, BillError, BillFile, BillFormat, BillRecord, BillRequest, BillSummary,
    Compression, read_bill,
};
use cashdesk_channels::{Channel, ChannelError, StoreMerchant};
use cashdesk_core::ConfigId;
use cashdesk_store::StoredBill;
use chrono::NaiveDate;
use sha1::{Digest, Sha1};

/// What fetching one scope's bill gave.
pub enum Fetched {
    Stored(StoredBill),
    Empty,
    NotReady(String),
    NoFile,
}

/// Why a bill is not usable.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("bill file: {0}")]
    Io(#[from] std::io::Error),
}

fn scope_name(scope: &str) -> String {
    if scope.is_empty() {
        "own".to_owned()
    } else {
        scope
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(64)
            .collect()
    }
}

fn relative_path(config_id: &ConfigId, day: NaiveDate, scope: &str, ext: &str) -> PathBuf {
    Path::new("bills")
        .join(config_id.as_str())
        .join(format!("{day}_{}.{ext}", scope_name(scope)))
}

fn extension(format: BillFormat, compression: Compression) -> &'static str {
    match (format, compression) {
        (BillFormat::AlipayTrade, Compression::Zip) => "csv.zip",
        (_, Compression::Plain | Compression::Gzip) => "csv.gz",
        (_, Compression::Zip) => "zip",
    }
}

/// Downloads the bill of (`day`, `scope`) into the data folder.
pub async fn fetch(
    data_dir: &Path,
    adapter: &dyn Channel,
    config_id: &ConfigId,
    day: NaiveDate,
    scope: &str,
    store: Option<StoreMerchant>,
) -> Result<Fetched, FetchError> {
    let dir = data_dir.join("bills").join(config_id.as_str());
    crate::data_dir::create_private_dir(&dir)
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
    let mut sink = BufWriter::with_capacity(64 * 1024, tmp.reopen()?);
    let req = BillRequest { date: day, store };
    let answer = adapter.download_bill(&req, &mut sink).await?;
    sink.flush()?;
    drop(sink);
    let file = match answer {
        BillDownload::Written(file) => file,
        BillDownload::Empty => return Ok(Fetched::Empty),
        BillDownload::NotReady(msg) => return Ok(Fetched::NotReady(msg)),
        BillDownload::NoFile => return Ok(Fetched::NoFile),
    };
    let rel = relative_path(
        config_id,
        day,
        scope,
        extension(file.format, file.compression),
    );
    let final_path = data_dir.join(&rel);
    let (compression, size, sha1) = if file.compression == Compression::Plain {
        // Served plain (WeChat v2, without a hash): kept gzipped, with the
        // SHA-1 of the text as received, so a rerun reads what was served.
        let mut src = Sha1Reader(std::io::BufReader::new(tmp.reopen()?), Sha1::new());
        let gz_tmp = tempfile::NamedTempFile::new_in(&dir)?;
        let mut enc = flate2::write::GzEncoder::new(
            BufWriter::new(gz_tmp.reopen()?),
            flate2::Compression::default(),
        );
        std::io::copy(&mut src, &mut enc)?;
        enc.finish()?.flush()?;
        let size = gz_tmp.as_file().metadata()?.len();
        gz_tmp.persist(&final_path).map_err(|e| e.error)?;
        let sha1 = src
            .1
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (Compression::Gzip, size, file.sha1.or(Some(sha1)))
    } else {
        tmp.persist(&final_path).map_err(|e| e.error)?;
        (file.compression, file.size, file.sha1)
    };
    Ok(Fetched::Stored(StoredBill {
        scope: scope.to_owned(),
        path: rel.to_string_lossy().into_owned(),
        format: file.format.as_str().to_owned(),
        compression: compression.as_str().to_owned(),
        sha1,
        size,
    }))
}

/// A reader that hashes what passes through it.
struct Sha1Reader<R>(R, Sha1);

impl<R: std::io::Read> std::io::Read for Sha1Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.update(&buf[..n]);
        Ok(n)
    }
}

/// The stored bill as the reader needs it; `None` if its file is gone or
/// its description is not understood (fetch it again).
pub fn usable(data_dir: &Path, stored: &StoredBill) -> Option<BillFile> {
    let format = BillFormat::parse(&stored.format)?;
    let compression = Compression::parse(&stored.compression)?;
    data_dir.join(&stored.path).is_file().then(|| BillFile {
        format,
        compression,
        sha1: stored.sha1.clone(),
        size: stored.size,
    })
}

/// Reads a stored bill record by record (blocking: call it from
/// `spawn_blocking`).
pub fn read(
    data_dir: &Path,
    stored: &StoredBill,
    on_record: impl FnMut(BillRecord),
) -> Result<BillSummary, BillError> {
    let file = usable(data_dir, stored).ok_or_else(|| BillError {
        line: 0,
        message: format!(
            "the stored bill {} is missing or not understood",
            stored.path
        ),
    })?;
    let src = std::fs::File::open(data_dir.join(&stored.path)).map_err(|e| BillError {
        line: 0,
        message: format!("cannot open {}: {e}", stored.path),
    })?;
    read_bill(&file, std::io::BufReader::new(src), on_record)
}

/// Removes a stored bill that turned out unreadable (the next try fetches
/// it again).
pub fn discard(data_dir: &Path, stored: &StoredBill) {
    if let Err(e) = std::fs::remove_file(data_dir.join(&stored.path)) {
        tracing::warn!(path = %stored.path, error = %e, "could not remove an unreadable bill");
    }
}
