//! Mini-program subscribe messages (订阅消息) at `api.weixin.qq.com`: the
//! building blocks the gateway's message queue uses. Nothing here keeps
//! state: the token cache (shared by every instance, refreshed before
//! expiry, one refresh in flight per AppID) and the queue are the
//! server's.
//!
//! - [`SubscribeClient`] (`client`): `POST /cgi-bin/stable_token` →
//!   [`AccessToken`], and `POST /cgi-bin/message/subscribe/send` of a
//!   [`SubscribeMessage`]. The base URL is WeChat's or the sandbox's
//!   stand-in (`<public_url>/sandbox/wechat`, the same base as the web
//!   OAuth's: [`SubscribeClient::from_env`]).
//! - [`SubscribeError`] (`error`): WeChat's errcodes sorted by what the
//!   caller does next ([`SubscribeErrorKind`]): refresh the token and send
//!   once more, retry later, fix the credentials, or record the message as
//!   final with its errcode.
//! - [`format_value`] and friends (`format`): values cut and formatted to
//!   each key type's limits (`thing` ≤ 20 characters, `amount` `¥12.34`
//!   from fen, `time` `2019年10月1日 15:01`…) so our data never earns 47003.
//! - [`render_page`] (`page`): the `page` from a configured pattern with
//!   `{orderId}`-style placeholders, values percent-encoded.
//!
//! The send loop the caller writes:
//!
//! ```text
//! token = cache.get(appid) or client.stable_token(appid, secret, false)
//! match client.send(token, msg):
//!   Err(e) if e.kind() == TokenInvalid:
//!       fresh = client.stable_token(appid, secret, false)
//!       if fresh == token: fresh = client.stable_token(appid, secret, true)
//!       cache.put(fresh); client.send(fresh, msg)   // once
//!   Err(e) if e.kind() == Retryable: schedule again with backoff
//!   Err(e): final, record e.errcode() / e.errmsg()
//! ```

mod client;
mod error;
mod format;
mod page;

pub use client::{
    AccessToken, Lang, MiniprogramState, PRODUCTION_BASE_URL, SubscribeClient, SubscribeMessage,
};
pub use error::{SubscribeError, SubscribeErrorKind, kind_of};
pub use format::{KeyType, format_amount, format_date, format_time, format_value, value_fits};
pub use page::{MAX_PAGE_BYTES, PageError, render_page};
