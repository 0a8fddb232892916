//! The access tokens of the sandbox's mini-programs, by WeChat's rules
//! (PROTOCOLS-2.md §2, developers.weixin.qq.com "getStableAccessToken"):
//!
//! - `/cgi-bin/token` issues a new token each call and the previous token
//!   of that call **stops working at once**;
//! - `/cgi-bin/stable_token` is separate from it: in normal mode it hands
//!   out the same token while that one has more than five minutes left,
//!   then a new one, the old one staying valid until its own expiry (the
//!   overlap); `force_refresh` issues a new one and revokes the earlier
//!   stable tokens, at most [`FORCE_PER_DAY`] times in 24 hours and
//!   [`FORCE_GAP`] apart (45009 / 45011 otherwise);
//! - every token lives [`TOKEN_TTL`], by the sandbox's clock
//!   ([`crate::clock`]), so a test moves the clock instead of waiting.
//!
//! A token that was replaced or revoked is unknown (40001); one that ran
//! out is expired (42001). The book is bounded: per AppID (the sandbox's
//! merchants, themselves capped) one `/cgi-bin/token` token, two stable
//! tokens and 20 force-refresh times.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// How long a token lives (`expires_in` of a new token).
pub const TOKEN_TTL: TimeDelta = TimeDelta::seconds(7200);
/// A stable token this close to its expiry is replaced by the next call.
pub const ROTATE_BEFORE: TimeDelta = TimeDelta::seconds(300);
/// Force refreshes allowed in 24 hours, per AppID.
pub const FORCE_PER_DAY: usize = 20;
/// The shortest wait between two force refreshes of an AppID.
pub const FORCE_GAP: TimeDelta = TimeDelta::seconds(30);

struct Issued {
    app_id: String,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
struct App {
    /// The current `/cgi-bin/token` token.
    plain: Option<String>,
    /// Stable tokens, oldest first (at most two: the current one and the
    /// one it replaced, still valid in the overlap).
    stable: Vec<String>,
    /// When force refreshes happened (the last 24 hours).
    forced: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct Book {
    tokens: HashMap<String, Issued>,
    apps: HashMap<String, App>,
}

/// What a token is worth now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// Valid, for this AppID.
    Valid(String),
    Expired,
    Unknown,
}

#[derive(Default)]
pub struct Tokens(Mutex<Book>);

/// A token's text: 136 letters and digits (WeChat's are about that long;
/// callers are told to keep 512 characters).
fn new_token() -> String {
    cashdesk_crypto::random::nonce_str(136)
}

impl Book {
    fn issue(&mut self, app_id: &str, now: DateTime<Utc>) -> String {
        let token = new_token();
        self.tokens.insert(
            token.clone(),
            Issued {
                app_id: app_id.to_owned(),
                expires_at: now + TOKEN_TTL,
            },
        );
        token
    }
}

impl Tokens {
    /// `/cgi-bin/token`: a new token; the previous one of this call stops.
    pub fn issue_plain(&self, app_id: &str, now: DateTime<Utc>) -> (String, i64) {
        let mut book = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let token = book.issue(app_id, now);
        let app = book.apps.entry(app_id.to_owned()).or_default();
        if let Some(old) = app.plain.replace(token.clone()) {
            book.tokens.remove(&old);
        }
        (token, TOKEN_TTL.num_seconds())
    }

    /// `/cgi-bin/stable_token` (module comment); `Err` is WeChat's errcode
    /// and errmsg.
    pub fn stable(
        &self,
        app_id: &str,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), (i64, &'static str)> {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let book = &mut *guard;
        let app = book.apps.entry(app_id.to_owned()).or_default();
        if force {
            app.forced.retain(|t| now - *t < TimeDelta::days(1));
            if app.forced.last().is_some_and(|t| now - *t < FORCE_GAP) {
                return Err((
                    45011,
                    "api minute-quota reach limit  mustslower  retry next minute",
                ));
            }
            if app.forced.len() >= FORCE_PER_DAY {
                return Err((45009, "reach max api daily quota limit"));
            }
            app.forced.push(now);
            for old in std::mem::take(&mut app.stable) {
                book.tokens.remove(&old);
            }
        } else if let Some(current) = app.stable.last() {
            let left = book
                .tokens
                .get(current)
                .map(|i| (i.expires_at - now).num_seconds())
                .unwrap_or(0);
            if left > ROTATE_BEFORE.num_seconds() {
                return Ok((current.clone(), left));
            }
        }
        let token = book.issue(app_id, now);
        let app = book.apps.entry(app_id.to_owned()).or_default();
        app.stable.push(token.clone());
        while app.stable.len() > 2 {
            let old = app.stable.remove(0);
            book.tokens.remove(&old);
        }
        Ok((token, TOKEN_TTL.num_seconds()))
    }

    pub fn check(&self, token: &str, now: DateTime<Utc>) -> TokenState {
        let book = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match book.tokens.get(token) {
            None => TokenState::Unknown,
            Some(i) if i.expires_at <= now => TokenState::Expired,
            Some(i) => TokenState::Valid(i.app_id.clone()),
        }
    }

    /// Every token of `app_id` stops working (the TOKEN_INVALIDATED fault).
    pub fn revoke(&self, app_id: &str) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let book = &mut *guard;
        if let Some(app) = book.apps.get_mut(app_id) {
            for old in app.plain.take().into_iter().chain(app.stable.drain(..)) {
                book.tokens.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_new_plain_token_ends_the_previous_one() {
        let book = Tokens::default();
        let (a, ttl) = book.issue_plain("wx1", t0());
        assert_eq!(ttl, 7200);
        assert_eq!(book.check(&a, t0()), TokenState::Valid("wx1".into()));
        let (b, _) = book.issue_plain("wx1", t0());
        assert_ne!(a, b);
        assert_eq!(book.check(&a, t0()), TokenState::Unknown);
        assert_eq!(
            book.check(&b, t0() + TOKEN_TTL),
            TokenState::Expired,
            "7200 s later"
        );
        // The stable token is another book.
        let (s, _) = book.stable("wx1", false, t0()).unwrap();
        book.issue_plain("wx1", t0());
        assert_eq!(book.check(&s, t0()), TokenState::Valid("wx1".into()));
    }

    #[test]
    fn stable_tokens_rotate_five_minutes_before_expiry_with_an_overlap() {
        let book = Tokens::default();
        let (a, ttl) = book.stable("wx1", false, t0()).unwrap();
        assert_eq!(ttl, 7200);
        let later = t0() + TimeDelta::seconds(6000);
        assert_eq!(book.stable("wx1", false, later).unwrap(), (a.clone(), 1200));
        let rotate = t0() + TimeDelta::seconds(6900);
        let (b, ttl) = book.stable("wx1", false, rotate).unwrap();
        assert_ne!(a, b);
        assert_eq!(ttl, 7200);
        assert_eq!(book.check(&a, rotate), TokenState::Valid("wx1".into()));
        assert_eq!(book.check(&a, t0() + TOKEN_TTL), TokenState::Expired);
        assert_eq!(
            book.check(&b, t0() + TOKEN_TTL),
            TokenState::Valid("wx1".into())
        );
        // Another AppID has its own.
        let (c, _) = book.stable("wx2", false, rotate).unwrap();
        assert_ne!(b, c);
    }

    #[test]
    fn force_refresh_revokes_and_is_limited() {
        let book = Tokens::default();
        let (a, _) = book.stable("wx1", false, t0()).unwrap();
        let (b, _) = book.stable("wx1", true, t0()).unwrap();
        assert_ne!(a, b);
        assert_eq!(book.check(&a, t0()), TokenState::Unknown);
        assert_eq!(
            book.stable("wx1", true, t0() + TimeDelta::seconds(29))
                .unwrap_err()
                .0,
            45011
        );
        let mut at = t0();
        for _ in 1..FORCE_PER_DAY {
            at += FORCE_GAP;
            book.stable("wx1", true, at).unwrap();
        }
        at += FORCE_GAP;
        assert_eq!(book.stable("wx1", true, at).unwrap_err().0, 45009);
        // Normal mode still answers, and a day later force works again.
        assert!(book.stable("wx1", false, at).is_ok());
        assert!(book.stable("wx1", true, t0() + TimeDelta::days(1)).is_ok());
    }

    #[test]
    fn revoke_ends_every_token_of_the_app() {
        let book = Tokens::default();
        let (p, _) = book.issue_plain("wx1", t0());
        let (s, _) = book.stable("wx1", false, t0()).unwrap();
        let (o, _) = book.stable("wx2", false, t0()).unwrap();
        book.revoke("wx1");
        assert_eq!(book.check(&p, t0()), TokenState::Unknown);
        assert_eq!(book.check(&s, t0()), TokenState::Unknown);
        assert_eq!(book.check(&o, t0()), TokenState::Valid("wx2".into()));
        let (n, _) = book.stable("wx1", false, t0()).unwrap();
        assert_ne!(n, s);
    }
}
