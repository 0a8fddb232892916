//! The calls: `POST /cgi-bin/stable_token` and `POST
//! /cgi-bin/message/subscribe/send?access_token=…`, over the shared HTTP
//! client ([`crate::http`]: TLS always verified, no redirects, bounded
//! bodies). The token travels in the query string, as WeChat requires, so
//! that call goes through [`http::send_secret_url`]: no error or log line
//! shows the URL. The AppSecret is only in the token call's body.

use std::collections::BTreeMap;

use cashdesk_crypto::Secret;
use serde::{Deserialize, Serialize};
use url::Url;

use super::SubscribeError;
use crate::http::{self, HttpSettings};
use crate::registry::ChannelEnv;
use crate::support::{join_url, parse_base_url};

/// WeChat's API host.
pub const PRODUCTION_BASE_URL: &str = "https://api.weixin.qq.com";

const TOKEN: &str = "cgi-bin/stable_token";
const SEND: &str = "cgi-bin/message/subscribe/send";

/// An access token and how long it lives from the answer (seconds).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_in: u32,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// `miniprogram_state`: which version of the mini-program the message opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MiniprogramState {
    Developer,
    Trial,
    Formal,
}

impl MiniprogramState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "developer" => Some(Self::Developer),
            "trial" => Some(Self::Trial),
            "formal" => Some(Self::Formal),
            _ => None,
        }
    }
}

/// `lang`: the language of the message's template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    #[serde(rename = "zh_CN")]
    ZhCn,
    #[serde(rename = "en_US")]
    EnUs,
    #[serde(rename = "zh_HK")]
    ZhHk,
    #[serde(rename = "zh_TW")]
    ZhTw,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zh_CN" => Some(Self::ZhCn),
            "en_US" => Some(Self::EnUs),
            "zh_HK" => Some(Self::ZhHk),
            "zh_TW" => Some(Self::ZhTw),
            _ => None,
        }
    }
}

/// One subscribe message. `data` maps template keys to values already
/// formatted for their type ([`super::format_value`]); it is sent as
/// WeChat wants it, an object `{"thing1":{"value":"…"}}`. `page` is the
/// mini-program page with its query (`pages/order/detail?id=1`), `None`
/// for a message that opens nothing. `None` state and lang are WeChat's
/// defaults (`formal`, `zh_CN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeMessage {
    pub touser: String,
    pub template_id: String,
    pub page: Option<String>,
    pub data: BTreeMap<String, String>,
    pub miniprogram_state: Option<MiniprogramState>,
    pub lang: Option<Lang>,
}

#[derive(Serialize)]
struct Value<'a> {
    value: &'a str,
}

#[derive(Serialize)]
struct SendBody<'a> {
    touser: &'a str,
    template_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<&'a str>,
    data: BTreeMap<&'a str, Value<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    miniprogram_state: Option<MiniprogramState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<Lang>,
}

#[derive(Serialize)]
struct TokenBody<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

/// WeChat's answer shape: `errcode` absent or 0 on success.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// A client of `api.weixin.qq.com` (or the sandbox's stand-in). Cheap to
/// clone; holds no AppID, secret or token (the caller's token cache does).
#[derive(Debug, Clone)]
pub struct SubscribeClient {
    token_url: Url,
    send_url: Url,
    http: reqwest::Client,
}

impl SubscribeClient {
    /// A client of `base_url` (`None`: [`PRODUCTION_BASE_URL`]; the
    /// sandbox: `<public_url>/sandbox/wechat`), trusting the web PKI roots
    /// plus `extra_root_ca_pems`.
    pub fn new(
        base_url: Option<&str>,
        settings: &HttpSettings,
        extra_root_ca_pems: &[&str],
    ) -> Result<Self, SubscribeError> {
        let invalid = |message: String| SubscribeError::Invalid {
            call: "client",
            message,
        };
        let base = parse_base_url(base_url.unwrap_or(PRODUCTION_BASE_URL)).map_err(invalid)?;
        let url = |path: &str| {
            Url::parse(&join_url(&base, path)).map_err(|e| invalid(format!("{path} URL: {e}")))
        };
        let http = http::build_client(settings, extra_root_ca_pems, None)
            .map_err(|e| SubscribeError::from_transport("client", e))?;
        Ok(Self {
            token_url: url(TOKEN)?,
            send_url: url(SEND)?,
            http,
        })
    }

    /// A client as the channels' environment says: its HTTP settings and
    /// trusted CAs, and WeChat's API host replaced by
    /// [`ChannelEnv::oauth_base_url`] when set (the sandbox mounts
    /// `api.weixin.qq.com`'s paths there, next to the OAuth ones).
    pub fn from_env(env: &ChannelEnv) -> Result<Self, SubscribeError> {
        let roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        Self::new(env.oauth_base_url.as_deref(), &env.http, &roots)
    }

    /// `POST /cgi-bin/stable_token`: the mini-program's access token.
    /// `force_refresh` makes WeChat issue a new one (at most 20 a day, 30
    /// seconds apart): only when the token WeChat keeps handing out is
    /// refused. Never logs `secret` or the token.
    pub async fn stable_token(
        &self,
        appid: &str,
        secret: &Secret,
        force_refresh: bool,
    ) -> Result<AccessToken, SubscribeError> {
        let invalid = |message: &str| SubscribeError::Invalid {
            call: TOKEN,
            message: message.into(),
        };
        if appid.trim().is_empty() || appid.len() > 64 {
            return Err(invalid("the AppID is empty or too long"));
        }
        if secret.expose().trim().is_empty() {
            return Err(invalid("the AppSecret is empty"));
        }
        let body = TokenBody {
            grant_type: "client_credential",
            appid: appid.trim(),
            secret: secret.expose().trim(),
            force_refresh,
        };
        let answer = self
            .call(TOKEN, self.http.post(self.token_url.clone()).json(&body))
            .await?;
        let bad = |message: &str| SubscribeError::BadResponse {
            call: TOKEN,
            message: message.into(),
        };
        let token = answer
            .access_token
            .filter(|t| !t.is_empty() && t.len() <= 2048)
            .ok_or_else(|| bad("no access_token"))?;
        let expires_in = answer
            .expires_in
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("no usable expires_in"))?;
        Ok(AccessToken {
            token: Secret::new(token),
            expires_in,
        })
    }

    /// `POST /cgi-bin/message/subscribe/send?access_token=…`. The message
    /// is checked first (openid, template id, at least one key, short
    /// keys and values); a message that fails is
    /// [`SubscribeError::Invalid`] and nothing is sent.
    pub async fn send(
        &self,
        access_token: &Secret,
        msg: &SubscribeMessage,
    ) -> Result<(), SubscribeError> {
        check(msg)?;
        let body = SendBody {
            touser: &msg.touser,
            template_id: &msg.template_id,
            page: msg.page.as_deref().filter(|p| !p.is_empty()),
            data: msg
                .data
                .iter()
                .map(|(k, v)| (k.as_str(), Value { value: v }))
                .collect(),
            miniprogram_state: msg.miniprogram_state,
            lang: msg.lang,
        };
        let mut url = self.send_url.clone();
        url.query_pairs_mut()
            .append_pair("access_token", access_token.expose());
        self.call(SEND, self.http.post(url).json(&body)).await?;
        Ok(())
    }

    /// Sends, maps transport and HTTP failures, reads WeChat's answer and
    /// turns `errcode` ≠ 0 into [`SubscribeError::Refused`].
    async fn call(
        &self,
        what: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<Answer, SubscribeError> {
        let resp = http::send_secret_url(req, what)
            .await
            .map_err(|e| SubscribeError::from_transport(what, e))?;
        if resp.status >= 500 || resp.status == 429 {
            return Err(SubscribeError::Unavailable {
                call: what,
                message: format!("HTTP {}", resp.status),
            });
        }
        if !(200..300).contains(&resp.status) {
            return Err(SubscribeError::BadResponse {
                call: what,
                message: format!("unexpected HTTP {}", resp.status),
            });
        }
        let answer: Answer =
            serde_json::from_slice(&resp.body).map_err(|e| SubscribeError::BadResponse {
                call: what,
                message: format!("not WeChat's JSON: {e}"),
            })?;
        match answer.errcode {
            None | Some(0) => Ok(answer),
            Some(errcode) => {
                let errmsg = answer.errmsg.unwrap_or_default();
                tracing::info!(call = what, errcode, errmsg = %errmsg, "WeChat refused");
                Err(SubscribeError::Refused {
                    call: what,
                    errcode,
                    errmsg: crate::support::truncate_bytes(&errmsg, 512).to_owned(),
                })
            }
        }
    }
}

/// What the client refuses to send: WeChat would refuse it too, or it is
/// not what a caller meant (a key that is no template key).
fn check(msg: &SubscribeMessage) -> Result<(), SubscribeError> {
    let invalid = |message: String| {
        Err(SubscribeError::Invalid {
            call: SEND,
            message,
        })
    };
    let plain = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
    };
    if !plain(&msg.touser, 128) {
        return invalid("touser must be an openid".into());
    }
    if !plain(&msg.template_id, 128) {
        return invalid("template_id must be a template id".into());
    }
    if msg
        .page
        .as_ref()
        .is_some_and(|p| p.len() > super::page::MAX_PAGE_BYTES)
    {
        return invalid(format!(
            "page is longer than {} bytes",
            super::page::MAX_PAGE_BYTES
        ));
    }
    if msg.data.is_empty() || msg.data.len() > 64 {
        return invalid("data must have 1 to 64 keys".into());
    }
    for (k, v) in &msg.data {
        if k.is_empty()
            || k.len() > 32
            || !k
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return invalid(format!("data key `{k}` is not a template key"));
        }
        if v.len() > 1024 {
            return invalid(format!("data.{k}.value is longer than 1024 bytes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> SubscribeMessage {
        SubscribeMessage {
            touser: "oSbx0123456789abcdef01234567".into(),
            template_id: "sbx_pay_success".into(),
            page: Some("pages/order/detail?id=P1".into()),
            data: BTreeMap::from([
                ("thing1".to_owned(), "咖啡".to_owned()),
                ("amount2".to_owned(), "¥9.90".to_owned()),
            ]),
            miniprogram_state: Some(MiniprogramState::Trial),
            lang: None,
        }
    }

    #[test]
    fn the_body_has_data_as_an_object() {
        let m = msg();
        let body = SendBody {
            touser: &m.touser,
            template_id: &m.template_id,
            page: m.page.as_deref(),
            data: m
                .data
                .iter()
                .map(|(k, v)| (k.as_str(), Value { value: v }))
                .collect(),
            miniprogram_state: m.miniprogram_state,
            lang: m.lang,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "touser": "oSbx0123456789abcdef01234567",
                "template_id": "sbx_pay_success",
                "page": "pages/order/detail?id=P1",
                "data": {"amount2": {"value": "¥9.90"}, "thing1": {"value": "咖啡"}},
                "miniprogram_state": "trial",
            })
        );
        assert_eq!(serde_json::to_value(Lang::ZhHk).unwrap(), "zh_HK");
        assert_eq!(Lang::parse("en_US"), Some(Lang::EnUs));
        assert_eq!(
            MiniprogramState::parse("formal"),
            Some(MiniprogramState::Formal)
        );
        assert_eq!(MiniprogramState::parse("prod"), None);
    }

    #[test]
    fn unsendable_messages_are_refused_before_any_call() {
        assert!(check(&msg()).is_ok());
        let bad = [
            SubscribeMessage {
                touser: String::new(),
                ..msg()
            },
            SubscribeMessage {
                touser: "o 1".into(),
                ..msg()
            },
            SubscribeMessage {
                template_id: String::new(),
                ..msg()
            },
            SubscribeMessage {
                data: BTreeMap::new(),
                ..msg()
            },
            SubscribeMessage {
                data: BTreeMap::from([("Thing1".to_owned(), "x".to_owned())]),
                ..msg()
            },
            SubscribeMessage {
                page: Some("p".repeat(513)),
                ..msg()
            },
        ];
        for m in bad {
            let e = check(&m).unwrap_err();
            assert!(e.is_final(), "{e}");
        }
    }

    #[test]
    fn base_urls_and_no_secrets_in_debug() {
        let c = SubscribeClient::new(None, &HttpSettings::default(), &[]).unwrap();
        assert_eq!(
            c.token_url.as_str(),
            "https://api.weixin.qq.com/cgi-bin/stable_token"
        );
        let c = SubscribeClient::new(
            Some("http://127.0.0.1:9/sandbox/wechat"),
            &HttpSettings::default(),
            &[],
        )
        .unwrap();
        assert_eq!(
            c.send_url.as_str(),
            "http://127.0.0.1:9/sandbox/wechat/cgi-bin/message/subscribe/send"
        );
        assert!(SubscribeClient::new(Some("ftp://x"), &HttpSettings::default(), &[]).is_err());
        let t = AccessToken {
            token: Secret::new("TOKEN-VALUE"),
            expires_in: 7200,
        };
        assert!(!format!("{t:?}").contains("TOKEN-VALUE"));
    }
}
