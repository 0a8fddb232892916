//! WeChat web OAuth for JSAPI payments on the cashier page: the buyer's
//! WeChat browser is sent to `connect/oauth2/authorize` (scope
//! `snsapi_base`: silent, openid only) and comes back to
//! `/cashier-desk-web/wechat-oauth` with a `code`, which cashdesk exchanges
//! for the openid at `sns/oauth2/access_token` with the official account's
//! AppSecret (`appSecret` in the channel config's credentials).
//!
//! Where: [`crate::config::Config::wechat_oauth_base_url`] when set
//! (`<base>/connect/oauth2/authorize`, `<base>/sns/oauth2/access_token`);
//! otherwise the sandbox when it runs (where it answers: the public URL,
//! or its own loopback listener), WeChat itself when it does not.
//!
//! The `state` parameter ties the callback to the token and the channel
//! ([`oauth_state`]): a digest of both, so a callback cannot be replayed
//! for another order or channel by someone who does not hold the token.

use std::time::Duration;

use cashdesk_crypto::Secret;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;

const WECHAT_OPEN: &str = "https://open.weixin.qq.com";
const WECHAT_API: &str = "https://api.weixin.qq.com";

/// (authorize URL, token URL).
fn endpoints(state: &AppState) -> (String, String) {
    let (open, api) = match &state.config.wechat_oauth_base_url {
        Some(base) => {
            let b = base.trim_end_matches('/').to_owned();
            (b.clone(), b)
        }
        None => match &state.edge.posture.sandbox_url {
            Some(sandbox) => {
                let b = format!("{sandbox}/sandbox/wechat");
                (b.clone(), b)
            }
            None => (WECHAT_OPEN.to_owned(), WECHAT_API.to_owned()),
        },
    };
    (
        format!("{open}/connect/oauth2/authorize"),
        format!("{api}/sns/oauth2/access_token"),
    )
}

/// The `state` for a token and channel: 32 hex characters (WeChat allows
/// up to 128 letters and digits).
pub fn oauth_state(token: &str, channel_id: &str) -> String {
    let d = cashdesk_crypto::digest::sha256(
        format!("cashdesk cashier oauth\n{token}\n{channel_id}").as_bytes(),
    );
    hex::encode(&d[..16])
}

/// Where to send the buyer: WeChat's authorize page, which comes back to
/// `redirect_uri` with `code` and `state`.
pub fn authorize_url(state: &AppState, app_id: &str, redirect_uri: &str, st: &str) -> String {
    let (authorize, _) = endpoints(state);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("appid", app_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "snsapi_base")
        .append_pair("state", st)
        .finish();
    // WeChat documents the fragment as required on this URL.
    format!("{authorize}?{q}#wechat_redirect")
}

#[derive(Deserialize)]
struct TokenAnswer {
    openid: Option<String>,
    errcode: Option<i64>,
    errmsg: Option<String>,
}

/// Exchanges an OAuth `code` for the buyer's openid.
pub async fn openid(
    state: &AppState,
    app_id: &str,
    secret: &Secret,
    code: &str,
) -> ApiResult<String> {
    let (_, token_url) = endpoints(state);
    let mut url = url::Url::parse(&token_url)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("WeChat OAuth token URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("appid", app_id)
        .append_pair("secret", secret.expose())
        .append_pair("code", code)
        .append_pair("grant_type", "authorization_code");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(state.config.channel_timeout_ms))
        .build()
        .map_err(ApiError::internal)?;
    let failed = |what: String| {
        tracing::warn!(app_id, reason = %what, "WeChat OAuth code exchange failed");
        ApiError::new(ErrorCode::ChannelError, format!("WeChat OAuth: {what}"))
    };
    // The URL carries the secret: errors are reported without it.
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(format!("request failed ({})", e.without_url())))?;
    if !resp.status().is_success() {
        return Err(failed(format!("HTTP {}", resp.status())));
    }
    let answer: TokenAnswer = resp
        .json()
        .await
        .map_err(|e| failed(format!("unreadable answer ({})", e.without_url())))?;
    match (answer.openid, answer.errcode) {
        (Some(openid), None | Some(0)) if !openid.is_empty() && openid.len() <= 128 => Ok(openid),
        (_, code) => Err(failed(format!(
            "errcode {} {}",
            code.unwrap_or(-1),
            answer.errmsg.unwrap_or_default()
        ))),
    }
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
