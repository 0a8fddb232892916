//! The request log behind `GET /sandbox/api/requests`: the last calls the
//! sandbox answered and the notification attempts it made, newest last, so
//! an integrator can see what their adapter actually sent and whether its
//! notify endpoint acknowledged. Request bodies (what callers sent, and the
//! sandbox's own notifications) are kept as excerpts; they hold signatures
//! and ciphertexts but never a key. What a notified server answers is
//! never kept — only its HTTP status, the latency and `ACKED`/`NOT_ACKED`
//! — so the log cannot be used to read another server's replies. At most
//! [`CAPACITY`] entries of at most [`BODY_EXCERPT`] bytes of body each.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub const CAPACITY: usize = 1000;
pub const BODY_EXCERPT: usize = 4000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub seq: u64,
    pub at: String,
    /// `api` (a channel call), `notify` (an outgoing notification attempt),
    /// `payer` (the payer page or the pay API).
    pub kind: &'static str,
    pub method: String,
    /// The path called, or the notify URL.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mch_id: Option<String>,
    /// HTTP status answered (api) or received (notify; 0 = no response).
    pub status: u16,
    /// `SUCCESS`, an error code, `ACKED`, `NOT_ACKED`, `DROPPED`…
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
}

pub struct NewEntry<'a> {
    pub kind: &'static str,
    pub method: &'a str,
    pub target: &'a str,
    pub mch_id: Option<&'a str>,
    pub status: u16,
    pub result: &'a str,
    pub detail: Option<String>,
    pub request_body: Option<&'a str>,
}

#[derive(Default)]
pub struct RequestLog {
    seq: AtomicU64,
    entries: Mutex<VecDeque<LogEntry>>,
}

fn excerpt(s: &str) -> String {
    if s.len() <= BODY_EXCERPT {
        return s.to_owned();
    }
    let mut end = BODY_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl RequestLog {
    pub fn push(&self, e: NewEntry<'_>) {
        let entry = LogEntry {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind: e.kind,
            method: e.method.to_owned(),
            target: e.target.to_owned(),
            mch_id: e.mch_id.map(str::to_owned),
            status: e.status,
            result: e.result.to_owned(),
            detail: e.detail,
            request_body: e.request_body.map(excerpt),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Entries matching the filters, newest last, at most `limit`.
    pub fn list(&self, mch_id: Option<&str>, kind: Option<&str>, limit: usize) -> Vec<LogEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LogEntry> = entries
            .iter()
            .rev()
            .filter(|e| mch_id.is_none_or(|m| e.mch_id.as_deref() == Some(m)))
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}
