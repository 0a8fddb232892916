//! WeChat web OAuth (网页授权) for JSAPI payments from a browser: the
//! official account's `snsapi_base` (silent, openid only). The buyer's
//! WeChat browser goes to `connect/oauth2/authorize`, comes back with a
//! `code`, and [`WechatOAuth`] exchanges it for the openid at
//! `sns/oauth2/access_token` with the official account's AppSecret
//! (`appSecret` in either credential shape). The secret never leaves this
//! module: the exchange puts it in the query string, as WeChat requires,
//! so the call goes through [`http::send_secret_url`] and no error or log
//! line shows the URL.
//!
//! Where: [`ChannelEnv::oauth_base_url`] when set
//! (`<base>/connect/oauth2/authorize`, `<base>/sns/oauth2/access_token`:
//! the sandbox, a test double), else WeChat's own hosts.

use async_trait::async_trait;
use cashdesk_crypto::Secret;
use serde::Deserialize;
use url::Url;

use crate::channel::PayerOAuth;
use crate::error::{BusinessKind, ChannelError};
use crate::http;
use crate::registry::ChannelEnv;
use crate::support::{join_url, parse_base_url};

const WECHAT_OPEN: &str = "https://open.weixin.qq.com";
const WECHAT_API: &str = "https://api.weixin.qq.com";
const WHAT: &str = "sns/oauth2/access_token";

/// One official account's OAuth.
pub(crate) struct WechatOAuth {
    app_id: String,
    secret: Secret,
    authorize: String,
    token: Url,
    http: reqwest::Client,
}

impl std::fmt::Debug for WechatOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatOAuth")
            .field("app_id", &self.app_id)
            .field("authorize", &self.authorize)
            .finish_non_exhaustive()
    }
}

impl WechatOAuth {
    /// The OAuth of the config's AppID, when the credentials hold its
    /// `appSecret` (`None` otherwise: JSAPI then cannot work in a browser).
    pub(crate) fn from_credentials(
        app_id: &str,
        secret: Option<&Secret>,
        http: &reqwest::Client,
        env: &ChannelEnv,
    ) -> Result<Option<Self>, ChannelError> {
        let app_id = app_id.trim();
        let Some(secret) = secret.filter(|s| !s.expose().trim().is_empty()) else {
            return Ok(None);
        };
        if app_id.is_empty() {
            return Ok(None);
        }
        let (open, api) = match env.oauth_base_url.as_deref() {
            Some(base) => {
                let b = parse_base_url(base)
                    .map_err(|e| ChannelError::config(format!("OAuth base URL: {e}")))?;
                (b.clone(), b)
            }
            None => (
                parse_base_url(WECHAT_OPEN).map_err(ChannelError::config)?,
                parse_base_url(WECHAT_API).map_err(ChannelError::config)?,
            ),
        };
        let token = Url::parse(&join_url(&api, WHAT))
            .map_err(|e| ChannelError::config(format!("OAuth token URL: {e}")))?;
        Ok(Some(Self {
            app_id: app_id.to_owned(),
            secret: Secret::new(secret.expose().trim()),
            authorize: join_url(&open, "connect/oauth2/authorize"),
            token,
            http: http.clone(),
        }))
    }
}

/// `sns/oauth2/access_token`'s answer (HTTP 200 either way).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// A refused exchange by `errcode`: the AppID or AppSecret is wrong →
/// the config; WeChat busy → retry; anything else (a bad, used or expired
/// code) → the buyer must authorize again.
fn refusal(errcode: i64, errmsg: &str) -> ChannelError {
    let detail = format!("{WHAT}: errcode {errcode}: {errmsg}");
    match errcode {
        -1 | 45009 => ChannelError::retryable(Some(errcode.to_string()), detail),
        40001 | 40013 | 40125 | 40164 | 41002 | 41004 => ChannelError::config(detail),
        _ => ChannelError::business(BusinessKind::Other, errcode.to_string(), detail),
    }
}

#[async_trait]
impl PayerOAuth for WechatOAuth {
    fn app_id(&self) -> &str {
        &self.app_id
    }

    fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", &self.app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "snsapi_base")
            .append_pair("state", state)
            .finish();
        // WeChat documents the fragment as required on this URL.
        format!("{}?{q}#wechat_redirect", self.authorize)
    }

    async fn payer_id(&self, code: &str) -> Result<String, ChannelError> {
        // The code comes from the buyer's browser: only a plausible one
        // is sent on (WeChat's are 32 letters and digits).
        if code.is_empty() || code.len() > 128 || !code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ChannelError::invalid_request(
                "code",
                "the OAuth code is not a WeChat code",
            ));
        }
        let mut url = self.token.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.app_id)
            .append_pair("secret", self.secret.expose())
            .append_pair("code", code)
            .append_pair("grant_type", "authorization_code");
        let resp = http::send_secret_url(self.http.get(url), WHAT).await?;
        if resp.status >= 500 || resp.status == 429 {
            return Err(ChannelError::retryable(
                Some(format!("HTTP_{}", resp.status)),
                format!("{WHAT}: WeChat answered HTTP {}", resp.status),
            ));
        }
        if !(200..300).contains(&resp.status) {
            return Err(ChannelError::bad_response(format!(
                "{WHAT}: unexpected HTTP {}",
                resp.status
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&resp.body)
            .map_err(|e| ChannelError::bad_response(format!("{WHAT}: unreadable answer: {e}")))?;
        match (answer.openid, answer.errcode) {
            (Some(openid), None | Some(0)) if !openid.is_empty() && openid.len() <= 128 => {
                Ok(openid)
            }
            (_, Some(code)) if code != 0 => {
                Err(refusal(code, answer.errmsg.as_deref().unwrap_or("")))
            }
            _ => Err(ChannelError::bad_response(format!(
                "{WHAT}: answer has no usable openid"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChannelErrorKind as K;
    use crate::http::HttpSettings;

    fn env(base: Option<&str>) -> ChannelEnv {
        ChannelEnv {
            public_url: "https://pay.example.com".into(),
            notify_url: "https://pay.example.com/api/cashier-desk/notify/C1".into(),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
            oauth_base_url: base.map(str::to_owned),
        }
    }

    fn oauth(base: Option<&str>) -> Option<WechatOAuth> {
        let http = reqwest::Client::new();
        WechatOAuth::from_credentials("wxAPP", Some(&Secret::new("S3CRET")), &http, &env(base))
            .unwrap()
    }

    #[test]
    fn authorize_url_is_wechats_or_the_configured_base() {
        let prod = oauth(None).unwrap();
        assert_eq!(
            prod.authorize_url("https://pay.example.com/back?token=t", "abc"),
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxAPP&redirect_uri=https%3A%2F%2Fpay.example.com%2Fback%3Ftoken%3Dt&response_type=code&scope=snsapi_base&state=abc#wechat_redirect"
        );
        assert_eq!(
            prod.token.as_str(),
            "https://api.weixin.qq.com/sns/oauth2/access_token"
        );
        let sandbox = oauth(Some("http://127.0.0.1:9/sandbox/wechat")).unwrap();
        assert!(sandbox.authorize_url("https://x/", "s").starts_with(
            "http://127.0.0.1:9/sandbox/wechat/connect/oauth2/authorize?appid=wxAPP&"
        ));
        assert_eq!(
            sandbox.token.as_str(),
            "http://127.0.0.1:9/sandbox/wechat/sns/oauth2/access_token"
        );
        assert!(!format!("{sandbox:?}").contains("S3CRET"));
    }

    #[test]
    fn no_secret_no_oauth() {
        let http = reqwest::Client::new();
        for secret in [None, Some(Secret::new(" "))] {
            assert!(
                WechatOAuth::from_credentials("wxAPP", secret.as_ref(), &http, &env(None))
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn refusals_by_errcode() {
        assert_eq!(refusal(40125, "invalid appsecret").kind(), K::Config);
        assert_eq!(refusal(-1, "system error").kind(), K::Retryable);
        let e = refusal(40029, "invalid code");
        assert_eq!(e.business_kind(), Some(BusinessKind::Other));
        assert_eq!(e.code(), Some("40029"));
    }

    #[tokio::test]
    async fn implausible_codes_are_not_sent() {
        // An unroutable base: a code that passed the check would fail on
        // the network (retryable), not as an invalid request.
        let o = oauth(Some("http://127.0.0.1:9")).unwrap();
        for bad in ["", "a b", &"x".repeat(129)] {
            let e = o.payer_id(bad).await.unwrap_err();
            assert_eq!(e.kind(), K::InvalidRequest, "{bad:?}");
        }
    }
}
