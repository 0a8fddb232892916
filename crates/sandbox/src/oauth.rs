//! WeChat web OAuth (网页授权) as an official account sees it, for the
//! cashier page's JSAPI payments: the buyer's WeChat browser is sent to
//! `connect/oauth2/authorize`, comes back to the merchant's `redirect_uri`
//! with a `code`, and the merchant's server exchanges the code for the
//! buyer's openid at `sns/oauth2/access_token` with the account's AppSecret.
//!
//! - `GET /sandbox/wechat/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state`
//!   → 302 to `redirect_uri` with `code` and `state` added. The sandbox has
//!   one simulated WeChat user per official account and asks nothing:
//!   `snsapi_base` is silent in WeChat too; `snsapi_userinfo` would show a
//!   consent screen there, here it is granted at once. A bad request
//!   (unknown appid, a `redirect_uri` that is not http(s), another
//!   `response_type` or scope) gets an error page, as WeChat shows one.
//!   So does a `redirect_uri` outside the account's web OAuth domains
//!   (网页授权域名, [`Domains`]): "redirect_uri域名与后台配置不一致"
//!   (errcode 10003), so `authorize` is no open redirect.
//! - `GET /sandbox/wechat/sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
//!   → `{access_token, expires_in, refresh_token, openid, scope}`, or
//!   WeChat's error shape `{errcode, errmsg}` with HTTP 200: 40013 invalid
//!   appid, 40125 invalid appsecret, 40029 invalid code (unknown, expired
//!   after five minutes, or issued to another appid), 40163 code been used,
//!   40002 invalid grant_type.
//!
//! The AppSecret is [`crate::merchants::Merchant::app_secret`], handed out
//! as `appSecret` in both credential shapes; the openid is the same one the
//! sandbox's payer would have for that appid every time, like a real user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::reqlog::NewEntry;

/// How long a code can be exchanged (WeChat: five minutes, once).
const CODE_TTL: Duration = Duration::from_secs(300);

/// The most codes kept at once: `authorize` needs no credentials, so a
/// flood must not grow the map without end (past it the oldest go).
const MAX_CODES: usize = 10_000;

/// The web OAuth domains (网页授权域名) registered for the sandbox's
/// official accounts. At WeChat each official account registers its own in
/// the admin console, and `redirect_uri`'s host must be one of them
/// exactly (no subdomains). In the sandbox every account has the same
/// ones: the `host[:port]` of the sandbox's public URL (so the cashier page
/// of the cashdesk that mounts it works) and what the operator adds
/// ([`crate::SandboxConfig::oauth_domains`]). No API adds one: anyone can
/// open a sandbox merchant, so a domain registered by a merchant would make
/// `authorize` an open redirect again.
#[derive(Debug, Clone)]
pub struct Domains(Vec<(url::Host<String>, Option<u16>)>);

impl Domains {
    pub fn new(public_url: &url::Url, extra: &[String]) -> anyhow::Result<Self> {
        let mut domains = Vec::new();
        if let Some(host) = public_url.host() {
            domains.push((host.to_owned(), public_url.port()));
        }
        for d in extra {
            let d = d.trim();
            let u = url::Url::parse(&format!("http://{d}/"))
                .ok()
                .filter(|u| !d.is_empty() && !d.contains(['/', '?', '#', '@']) && u.path() == "/")
                .with_context(|| format!("sandbox OAuth domain `{d}` is not a host[:port]"))?;
            let host = u
                .host()
                .with_context(|| format!("sandbox OAuth domain `{d}` has no host"))?;
            domains.push((host.to_owned(), u.port()));
        }
        Ok(Self(domains))
    }

    /// Whether `redirect`'s host (and port, when one is registered) is a
    /// registered domain. A domain without a port stands for the scheme's
    /// default port.
    pub fn allows(&self, redirect: &url::Url) -> bool {
        let Some(host) = redirect.host() else {
            return false;
        };
        let host = host.to_owned();
        self.0.iter().any(|(h, port)| {
            *h == host
                && match port {
                    Some(p) => redirect.port_or_known_default() == Some(*p),
                    None => redirect.port().is_none(),
                }
        })
    }
}

struct Issued {
    app_id: String,
    openid: String,
    scope: String,
    at: Instant,
    /// Issue order (the oldest go first at [`MAX_CODES`]).
    seq: u64,
    used: bool,
}

/// Codes issued by `authorize`, until exchanged or expired.
#[derive(Default)]
pub struct Codes(Mutex<IssuedCodes>);

#[derive(Default)]
struct IssuedCodes {
    next: u64,
    map: HashMap<String, Issued>,
}

impl Codes {
    fn issue(&self, app_id: &str, scope: &str) -> String {
        let code = cashdesk_crypto::random::nonce_str(32);
        let mut codes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let IssuedCodes { next, map } = &mut *codes;
        if map.len() >= MAX_CODES {
            map.retain(|_, i| i.at.elapsed() < CODE_TTL);
        }
        while map.len() >= MAX_CODES {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, i)| i.seq)
                .map(|(code, _)| code.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        *next += 1;
        map.insert(
            code.clone(),
            Issued {
                app_id: app_id.to_owned(),
                openid: openid_for(app_id),
                scope: scope.to_owned(),
                at: Instant::now(),
                seq: *next,
                used: false,
            },
        );
        code
    }

    fn redeem(&self, app_id: &str, code: &str) -> Result<(String, String), (u32, &'static str)> {
        let mut codes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(issued) = codes.map.get_mut(code) else {
            return Err((40029, "invalid code"));
        };
        if issued.app_id != app_id || issued.at.elapsed() >= CODE_TTL {
            return Err((40029, "invalid code"));
        }
        if issued.used {
            return Err((40163, "code been used"));
        }
        issued.used = true;
        Ok((issued.openid.clone(), issued.scope.clone()))
    }
}

/// The simulated user's openid for an official account: 28 characters,
/// stable per appid (a user has one openid per account in WeChat).
pub fn openid_for(app_id: &str) -> String {
    let d = cashdesk_crypto::digest::sha256(format!("sandbox openid\n{app_id}").as_bytes());
    format!("{OPENID_PREFIX}{}", &hex::encode(d)[..24])
}

const OPENID_PREFIX: &str = "oSbx";

/// Whether `openid` may pay under `app_id`. An openid is one user's id
/// under one AppID: one this sandbox's OAuth issued ([`openid_for`]) pays
/// only under the AppID it was issued for, as at WeChat, where another
/// AppID's openid is refused ("openid和appid不匹配"). Any other openid is a
/// test's made-up payer and is taken as it is.
pub fn openid_matches(openid: &str, app_id: &str) -> bool {
    !openid.starts_with(OPENID_PREFIX) || openid == openid_for(app_id)
}

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/wechat/connect/oauth2/authorize", get(authorize))
        .route("/sandbox/wechat/sns/oauth2/access_token", get(access_token))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    appid: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
}

fn error_page(msg: &str) -> Response {
    let body = format!(
        "<p class=\"msg\">OAuth error</p><p class=\"muted\">{}</p>",
        cashdesk_core::html::escape(msg)
    );
    (
        StatusCode::BAD_REQUEST,
        crate::page::wechat_page("WeChat authorization", &body),
    )
        .into_response()
}

async fn authorize(State(s): State<Arc<Shared>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let app_id = q.appid.unwrap_or_default();
    if s.merchants.by_app_id(&app_id).is_none() {
        return error_page("appid is not a sandbox official account (errcode 10003)");
    }
    let Some(mut redirect) = q
        .redirect_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
    else {
        return error_page("redirect_uri must be an absolute http(s) URL (errcode 10003)");
    };
    if !s.oauth_domains.allows(&redirect) {
        return error_page(
            "redirect_uri域名与后台配置不一致，错误码：10003 (redirect_uri's host is not a web OAuth domain of this official account)",
        );
    }
    if q.response_type.as_deref() != Some("code") {
        return error_page("response_type must be code (errcode 10004)");
    }
    let scope = q.scope.unwrap_or_default();
    if !matches!(scope.as_str(), "snsapi_base" | "snsapi_userinfo") {
        return error_page("scope must be snsapi_base or snsapi_userinfo (errcode 10005)");
    }
    let state = q.state.unwrap_or_default();
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return error_page("state must be at most 128 letters and digits");
    }
    let code = s.oauth.issue(&app_id, &scope);
    redirect
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    s.log.push(NewEntry {
        kind: "api",
        method: "GET",
        target: "connect/oauth2/authorize",
        mch_id: None,
        status: 302,
        result: "CODE",
        detail: Some(format!("appid {app_id}")),
        request_body: None,
    });
    (
        StatusCode::FOUND,
        [(header::LOCATION, redirect.to_string())],
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    appid: Option<String>,
    secret: Option<String>,
    code: Option<String>,
    grant_type: Option<String>,
}

fn wx_error(code: u32, msg: &str) -> Response {
    axum::Json(json!({"errcode": code, "errmsg": msg})).into_response()
}

async fn access_token(State(s): State<Arc<Shared>>, Query(q): Query<TokenQuery>) -> Response {
    let app_id = q.appid.unwrap_or_default();
    let Some(m) = s.merchants.by_app_id(&app_id) else {
        return wx_error(40013, "invalid appid");
    };
    if q.grant_type.as_deref() != Some("authorization_code") {
        return wx_error(40002, "invalid grant_type");
    }
    let secret = q.secret.unwrap_or_default();
    if !cashdesk_crypto::ct_eq(secret.as_bytes(), m.app_secret().as_bytes()) {
        return wx_error(40125, "invalid appsecret");
    }
    let result = s
        .oauth
        .redeem(&app_id, q.code.as_deref().unwrap_or_default());
    s.log.push(NewEntry {
        kind: "api",
        method: "GET",
        target: "sns/oauth2/access_token",
        mch_id: Some(&m.mch_id),
        status: 200,
        result: if result.is_ok() { "OPENID" } else { "REFUSED" },
        detail: None,
        request_body: None,
    });
    match result {
        Ok((openid, scope)) => axum::Json(json!({
            "access_token": cashdesk_crypto::random::nonce_str(64),
            "expires_in": 7200,
            "refresh_token": cashdesk_crypto::random::nonce_str(64),
            "openid": openid,
            "scope": scope,
        }))
        .into_response(),
        Err((code, msg)) => wx_error(code, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_and_bound_to_the_appid() {
        let codes = Codes::default();
        let code = codes.issue("wx1", "snsapi_base");
        assert_eq!(codes.redeem("wx2", &code), Err((40029, "invalid code")));
        let (openid, scope) = codes.redeem("wx1", &code).expect("first use");
        assert_eq!(openid, openid_for("wx1"));
        assert_eq!(openid.len(), 28);
        assert_eq!(scope, "snsapi_base");
        assert_eq!(codes.redeem("wx1", &code), Err((40163, "code been used")));
        assert_eq!(codes.redeem("wx1", "nope"), Err((40029, "invalid code")));
        assert_ne!(openid_for("wx1"), openid_for("wx2"));
    }

    #[test]
    fn codes_are_capped() {
        let codes = Codes::default();
        let first = codes.issue("wx1", "snsapi_base");
        for _ in 0..MAX_CODES {
            codes.issue("wx1", "snsapi_base");
        }
        assert_eq!(codes.0.lock().unwrap().map.len(), MAX_CODES);
        // The oldest went first.
        assert_eq!(codes.redeem("wx1", &first), Err((40029, "invalid code")));
    }

    #[test]
    fn domains_match_host_and_port_exactly() {
        let public = url::Url::parse("http://127.0.0.1:8080").unwrap();
        let d = Domains::new(&public, &["pay.example.com".into()]).unwrap();
        let ok = |u: &str| d.allows(&url::Url::parse(u).unwrap());
        assert!(ok("http://127.0.0.1:8080/cashier-desk-web/wechat-oauth"));
        assert!(ok("https://pay.example.com/x"));
        assert!(ok("http://pay.example.com/x"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("https://a.pay.example.com/"));
        assert!(!ok("https://pay.example.com:444/"));
        for bad in ["", "a/b", "x.com/path", "u@x.com", "x.com?q"] {
            assert!(Domains::new(&public, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
