//! WeChat web OAuth for JSAPI payments on the cashier page: the buyer's
//! WeChat browser is sent to the channel's authorize page (scope
//! `snsapi_base`: silent, openid only) and comes back to
//! `/cashier-desk-web/wechat-oauth` with a `code`, which the channel
//! adapter exchanges for the openid with the official account's AppSecret.
//! The OAuth itself (URLs, the exchange, the secret) belongs to the
//! adapter ([`cashdesk_channels::PayerOAuth`], got with
//! [`crate::service::cashier::payer_oauth`]); where it goes is
//! [`crate::config::Config::wechat_oauth_base_url`] when set, otherwise the
//! sandbox when it runs (where it answers: the public URL, or its own
//! loopback listener), WeChat itself when it does not (see
//! [`crate::channel_cache::channel_env`]).
//!
//! What stays here is the session binding: the `state` parameter ties the
//! callback to the token and the channel ([`oauth_state`]): a digest of
//! both, so a callback cannot be replayed for another order or channel by
//! someone who does not hold the token.

/// The `state` for a token and channel: 32 hex characters (WeChat allows
/// up to 128 letters and digits).
pub fn oauth_state(token: &str, channel_id: &str) -> String {
    let d = cashdesk_crypto::digest::sha256(
        format!("cashdesk cashier oauth\n{token}\n{channel_id}").as_bytes(),
    );
    hex::encode(&d[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_binds_token_and_channel() {
        let s = oauth_state("tok", "C1");
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(s, oauth_state("tok", "C2"));
        assert_ne!(s, oauth_state("tok2", "C1"));
        assert_eq!(s, oauth_state("tok", "C1"));
    }
}
