//! Bill download links: a bill made at the apply call (WeChat v3
//! `tradebill`, Alipay's URL query) is kept here under a random token
//! until its link expires, so the file a merchant downloads is the one
//! whose hash it was told, faults and all.
//!
//! Anyone can ask for bills, so this is bounded: at most
//! [`MAX_DOWNLOADS`] links and [`MAX_DOWNLOAD_BYTES`] of files at once;
//! past either, the oldest links go first (their downloads then fail like
//! expired ones). Expired links are dropped whenever a new one is made.
//! A link may be used any number of times while it lives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

/// The most links alive at once.
pub const MAX_DOWNLOADS: usize = 256;

/// The most bytes of files held at once.
pub const MAX_DOWNLOAD_BYTES: usize = 64 * 1024 * 1024;

/// A file behind a link.
#[derive(Debug, Clone)]
pub struct Download {
    pub token: String,
    /// Who may fetch it: the WeChat merchant that applied (its download is
    /// signed), or the Alipay pid (the link alone suffices there).
    pub owner: String,
    pub expires_at: DateTime<Utc>,
    /// The file as served (WeChat: the text, gzipped at download when
    /// `gzip`; Alipay: the zip).
    pub body: Arc<Vec<u8>>,
    pub gzip: bool,
}

#[derive(Default)]
pub struct Downloads {
    inner: Mutex<VecDeque<Download>>,
}

impl Downloads {
    /// Keep `body` for `ttl` from `now`; the link's token.
    pub fn issue(
        &self,
        owner: &str,
        body: Vec<u8>,
        gzip: bool,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> String {
        let token = cashdesk_crypto::random::nonce_str(40);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.retain(|d| d.expires_at > now);
        let mut held: usize = inner.iter().map(|d| d.body.len()).sum();
        while !inner.is_empty()
            && (inner.len() >= MAX_DOWNLOADS || held + body.len() > MAX_DOWNLOAD_BYTES)
        {
            if let Some(old) = inner.pop_front() {
                held -= old.body.len();
            }
        }
        inner.push_back(Download {
            token: token.clone(),
            owner: owner.to_owned(),
            expires_at: now + ttl,
            body: Arc::new(body),
            gzip,
        });
        token
    }

    /// The live file behind `token`.
    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Download> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .iter()
            .find(|d| d.token == token && d.expires_at > now)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_expire_and_are_capped() {
        let d = Downloads::default();
        let now = Utc::now();
        let t = d.issue("m", b"bill".to_vec(), false, TimeDelta::minutes(5), now);
        assert_eq!(d.get(&t, now).unwrap().body.as_slice(), b"bill");
        assert!(d.get(&t, now + TimeDelta::minutes(5)).is_none());
        assert!(d.get("nope", now).is_none());
        for _ in 0..MAX_DOWNLOADS + 10 {
            d.issue("m", vec![0; 10], false, TimeDelta::minutes(5), now);
        }
        assert_eq!(d.len(), MAX_DOWNLOADS);
        assert!(d.get(&t, now).is_none(), "the oldest went first");
        let big = d.issue(
            "m",
            vec![0; MAX_DOWNLOAD_BYTES - 5],
            false,
            TimeDelta::minutes(5),
            now,
        );
        assert_eq!(d.len(), 1, "room was made for the big one");
        assert!(d.get(&big, now).is_some());
    }
}
