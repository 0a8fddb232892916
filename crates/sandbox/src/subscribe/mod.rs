//! A stand-in for `api.weixin.qq.com`'s mini-program subscribe messages
//! (订阅消息), under the same base as the web OAuth (`/sandbox/wechat`):
//!
//! - `GET /sandbox/wechat/cgi-bin/token?grant_type=client_credential&appid&secret`
//!   and `POST /sandbox/wechat/cgi-bin/stable_token`
//!   `{grant_type, appid, secret, force_refresh?}` → `{access_token,
//!   expires_in}`, by WeChat's token rules ([`tokens`]); errors 40013
//!   invalid appid, 40125 invalid appsecret, 40002 invalid grant_type,
//!   41002 / 41004 appid / secret missing, 47001 a body that is not JSON,
//!   45009 / 45011 force refresh over its limits.
//! - `POST /sandbox/wechat/cgi-bin/message/subscribe/send?access_token=`
//!   `{touser, template_id, page?, data, miniprogram_state?, lang?}` →
//!   `{errcode:0, errmsg:"ok", msgid}`, the message kept in the [`inbox`];
//!   errors 41001 no token, 40001 unknown or replaced token, 42001 expired
//!   token, 47001 body not JSON, 40003 openid not a user of this
//!   mini-program, 40037 template id not a sandbox template ([`values`]),
//!   41030 bad page, 47003 `argument invalid! data.<key>.value invalid`
//!   (or `… is empty`, `data is not object`, `miniprogram_state invalid`,
//!   `lang invalid`), and the faults' 43101 / 40001 / 45009 / -1.
//! - `GET /sandbox/wechat/subscribe/messages?appid&openid&limit` (HTML)
//!   and `GET /sandbox/api/subscribe/messages?appId&openid&limit` (JSON
//!   `{"messages":[…]}`): what the users received, newest first;
//!   `GET /sandbox/api/subscribe/templates`: the templates.
//!
//! As at WeChat every error is HTTP 200 `{errcode, errmsg}`, the errmsg
//! ending in a `rid`. Mini-programs are the AppIDs of the sandbox's
//! merchants, with their AppSecrets: a WeChat merchant's `appId` and
//! `appSecret`, a sub-merchant's `subAppId` and a Lakala merchant's
//! `credentials.subAppId`, each with the `subAppSecret` handed out with it
//! ([`crate::merchants::Merchants::mini_program_secret`]).
//! A mini-program's users ([`known_user`]) are its OAuth user
//! ([`crate::oauth::openid_for`]) and every openid that paid or ordered
//! under its AppID in the order book (`openid`, `sub_openid` under
//! `sub_appid`, a Lakala WeChat payer under `sub_appid`). A page is any
//! well-formed path (`pages/order/detail`, segments of letters, digits,
//! `_` and `-`, no leading `/`) with an optional query, at most
//! [`inbox::MAX_PAGE`] bytes: the sandbox mini-program has every page.
//!
//! Faults (`POST /sandbox/api/faults`, [`crate::faults`]): `USER_REFUSED`,
//! `TOKEN_INVALIDATED`, `RATE_LIMITED`; `HTTP_500` / `TIMEOUT` /
//! `SYSTEMERROR` reach these paths too. Bodies are at most [`MAX_BODY`];
//! nothing a caller sends is kept but an accepted message's checked
//! fields. The token and the secret are never logged.

pub mod inbox;
pub mod tokens;
pub mod values;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::faults::{FaultKind, bare_reply};
use crate::ledger::{Order, OrderExt};
use crate::reqlog::NewEntry;
use inbox::{Field, Received};
use tokens::TokenState;

/// The largest request body (a message is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/wechat/cgi-bin/token", get(token))
        .route("/sandbox/wechat/cgi-bin/stable_token", post(stable_token))
        .route("/sandbox/wechat/cgi-bin/message/subscribe/send", post(send))
        .route("/sandbox/wechat/subscribe/messages", get(messages_page))
        .route("/sandbox/api/subscribe/messages", get(messages_json))
        .route("/sandbox/api/subscribe/templates", get(templates))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// WeChat's error answer: HTTP 200, the errmsg ending in a request id.
fn wx_error(errcode: i64, errmsg: &str) -> Response {
    let part = || hex::encode(cashdesk_crypto::random::nonce_str(4));
    let rid = format!("{}-{}-{}", part(), part(), part());
    axum::Json(json!({"errcode": errcode, "errmsg": format!("{errmsg} rid: {rid}")}))
        .into_response()
}

/// The query's pairs (a query that is no form reads as empty).
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .take(32)
        .collect()
}

fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn log(s: &Shared, method: &str, target: &str, app_id: &str, result: &str) {
    let mch = s.merchants.by_app_id(app_id);
    s.log.push(NewEntry {
        kind: "api",
        method,
        target,
        mch_id: mch.as_ref().map(|m| m.mch_id.as_str()),
        status: 200,
        result,
        detail: Some(format!(
            "appid {}",
            app_id.chars().take(64).collect::<String>()
        )),
        request_body: None,
    });
}

/// The AppID and secret check both token calls share; `Err` is WeChat's
/// errcode and errmsg.
fn credentials(
    s: &Shared,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<(), (i64, &'static str)> {
    let appid = appid
        .filter(|a| !a.is_empty())
        .ok_or((41002, "appid missing"))?;
    let secret = secret
        .filter(|a| !a.is_empty())
        .ok_or((41004, "appsecret missing"))?;
    let expected = s
        .merchants
        .mini_program_secret(appid)
        .ok_or((40013, "invalid appid"))?;
    if !cashdesk_crypto::ct_eq(secret.as_bytes(), expected.as_bytes()) {
        return Err((40125, "invalid appsecret"));
    }
    Ok(())
}

async fn token(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let appid = query_get(&pairs, "appid").unwrap_or_default();
    if query_get(&pairs, "grant_type") != Some("client_credential") {
        return wx_error(40002, "invalid grant_type");
    }
    if let Err((code, msg)) = credentials(&s, Some(appid), query_get(&pairs, "secret")) {
        log(&s, "GET", "cgi-bin/token", appid, "REFUSED");
        return wx_error(code, msg);
    }
    let (token, expires_in) = s.subscribe_tokens.issue_plain(appid, s.now());
    log(&s, "GET", "cgi-bin/token", appid, "TOKEN");
    axum::Json(json!({"access_token": token, "expires_in": expires_in})).into_response()
}

async fn stable_token(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(&body) else {
        return wx_error(47001, "data format error");
    };
    let text = |k: &str| b.get(k).and_then(Value::as_str);
    let appid = text("appid").unwrap_or_default();
    if text("grant_type") != Some("client_credential") {
        return wx_error(40002, "invalid grant_type");
    }
    let force = match b.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(f)) => *f,
        Some(_) => return wx_error(47001, "data format error"),
    };
    if let Err((code, msg)) = credentials(&s, Some(appid), text("secret")) {
        log(&s, "POST", "cgi-bin/stable_token", appid, "REFUSED");
        return wx_error(code, msg);
    }
    let answer = s.subscribe_tokens.stable(appid, force, s.now());
    let result = match (&answer, force) {
        (Err(_), _) => "REFUSED",
        (Ok(_), true) => "FORCE_REFRESH",
        (Ok(_), false) => "TOKEN",
    };
    log(&s, "POST", "cgi-bin/stable_token", appid, result);
    match answer {
        Ok((token, expires_in)) => {
            axum::Json(json!({"access_token": token, "expires_in": expires_in})).into_response()
        }
        Err((code, msg)) => wx_error(code, msg),
    }
}

/// Whether `openid` is a user of the mini-program `app_id` (module comment).
pub fn known_user(s: &Shared, app_id: &str, openid: &str) -> bool {
    openid == crate::oauth::openid_for(app_id)
        || s.ledger
            .find_any_by(|o| paid_or_ordered(o, app_id, openid))
            .is_some()
}

fn paid_or_ordered(o: &Order, app_id: &str, openid: &str) -> bool {
    let paid = o.paid().map(|(_, _, p)| p);
    let own = o.appid == app_id && (o.openid.as_deref() == Some(openid) || paid == Some(openid));
    let sub = o.partner().is_some_and(|p| {
        p.sub_app_id.as_deref() == Some(app_id) && p.sub_openid.as_deref() == Some(openid)
    });
    let lakala = matches!(&o.ext, OrderExt::Lakala(l)
        if l.sub_appid.as_deref() == Some(app_id) && paid == Some(openid));
    own || sub || lakala
}

/// A mini-program page: `path[?query]` (module comment).
fn page_ok(page: &str) -> bool {
    let (path, query) = page.split_once('?').unwrap_or((page, ""));
    page.len() <= inbox::MAX_PAGE
        && !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        && query
            .chars()
            .all(|c| !c.is_control() && c != ' ' && c != '#')
}

async fn send(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    const TARGET: &str = "cgi-bin/message/subscribe/send";
    let pairs = query_pairs(q.as_deref());
    let Some(token) = query_get(&pairs, "access_token").filter(|t| !t.is_empty()) else {
        return wx_error(41001, "access_token missing");
    };
    let app_id = match s.subscribe_tokens.check(token, s.now()) {
        TokenState::Valid(app_id) => app_id,
        TokenState::Expired => return wx_error(42001, "access_token expired"),
        TokenState::Unknown => {
            return wx_error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            );
        }
    };
    if let Some(f) = s
        .faults
        .take_call(None, "/sandbox/wechat/cgi-bin/message/subscribe/send")
    {
        log(&s, "POST", TARGET, &app_id, "FAULT");
        if f.kind == FaultKind::SystemError {
            return wx_error(-1, "system error");
        }
        return bare_reply(f).await;
    }
    let answer = deliver(&s, &app_id, &body);
    let result = match &answer {
        Ok(_) => "SENT".to_owned(),
        Err((code, _)) => code.to_string(),
    };
    log(&s, "POST", TARGET, &app_id, &result);
    match answer {
        Ok(msgid) => {
            axum::Json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})).into_response()
        }
        Err((code, msg)) => wx_error(code, &msg),
    }
}

/// The checks of a send after the token's — a JSON object, the
/// subscribe faults, openid, template, page, state and lang, the data —
/// and the message kept when they pass: `Ok` is the msgid. (WeChat does
/// not document its order; a request with two faults gets the first
/// here.)
fn deliver(s: &Shared, app_id: &str, body: &[u8]) -> Result<u64, (i64, String)> {
    let refuse = |code: i64, msg: &str| Err((code, msg.to_owned()));
    let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
        return refuse(47001, "data format error");
    };
    let text = |k: &str| b.get(k).and_then(Value::as_str);
    let touser = text("touser").unwrap_or_default();
    match s.faults.take_subscribe(app_id, touser) {
        Some(FaultKind::UserRefused) => return refuse(43101, "user refuse to accept the msg"),
        Some(FaultKind::TokenInvalidated) => {
            s.subscribe_tokens.revoke(app_id);
            return refuse(
                40001,
                "invalid credential, access_token is invalid or not latest",
            );
        }
        Some(FaultKind::RateLimited) => return refuse(45009, "reach max api daily quota limit"),
        Some(_) | None => {}
    }
    if touser.is_empty() || touser.len() > 128 || !known_user(s, app_id, touser) {
        return refuse(40003, "invalid openid");
    }
    let Some(template) = text("template_id").and_then(values::template) else {
        return refuse(40037, "invalid template_id");
    };
    let page = match b.get("page") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.is_empty() => None,
        Some(Value::String(p)) if page_ok(p) => Some(p.clone()),
        Some(_) => return refuse(41030, "invalid page"),
    };
    let one_of = |k: &str, allowed: &[&str], default: &str| match b.get(k) {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(v.clone()),
        Some(_) => Err((47003, format!("argument invalid! {k} invalid"))),
    };
    let state = one_of(
        "miniprogram_state",
        &["developer", "trial", "formal"],
        "formal",
    )?;
    let lang = one_of("lang", &["zh_CN", "en_US", "zh_HK", "zh_TW"], "zh_CN")?;
    let Some(Value::Object(data)) = b.get("data") else {
        return refuse(47003, "argument invalid! data is not object");
    };
    let data = fields(template, data)?;
    Ok(s.subscribe_inbox.push(Received {
        msgid: 0,
        at: s.now(),
        app_id: app_id.to_owned(),
        openid: touser.to_owned(),
        template_id: template.id.to_owned(),
        title: template.title.to_owned(),
        page,
        miniprogram_state: state,
        lang,
        data,
    }))
}

/// The template's keys from `data`, each value checked by its type; keys
/// the template does not have are ignored, as WeChat ignores them.
fn fields(
    template: &values::Template,
    data: &Map<String, Value>,
) -> Result<Vec<Field>, (i64, String)> {
    let mut out = Vec::with_capacity(template.keys.len());
    for (key, label) in template.keys {
        let value = match data.get(*key).and_then(|e| e.get("value")) {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) if v.is_empty() => None,
            Some(Value::String(v)) => Some(v.as_str()),
            Some(_) => return Err((47003, format!("argument invalid! data.{key}.value invalid"))),
        };
        let Some(value) = value else {
            return Err((
                47003,
                format!("argument invalid! data.{key}.value is empty"),
            ));
        };
        if values::check(key, value) != Some(true) {
            return Err((47003, format!("argument invalid! data.{key}.value invalid")));
        }
        out.push(Field {
            key: (*key).to_owned(),
            label: (*label).to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(out)
}

/// `appid`/`appId`, `openid` and `limit` (default 100, at most 1000).
fn filters(q: Option<&str>) -> (Option<String>, Option<String>, usize) {
    let pairs = query_pairs(q);
    let get = |k: &str| {
        query_get(&pairs, k)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let limit = get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    (get("appid").or_else(|| get("appId")), get("openid"), limit)
}

async fn messages_page(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let (app_id, openid, limit) = filters(q.as_deref());
    let list = s
        .subscribe_inbox
        .list(app_id.as_deref(), openid.as_deref(), limit);
    let filtered = app_id.is_some() || openid.is_some();
    crate::page::wechat_page("Service notifications", &inbox::page_body(&list, filtered))
        .into_response()
}

async fn messages_json(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let (app_id, openid, limit) = filters(q.as_deref());
    let list = s
        .subscribe_inbox
        .list(app_id.as_deref(), openid.as_deref(), limit);
    axum::Json(json!({ "messages": list })).into_response()
}

async fn templates() -> Response {
    axum::Json(json!({ "templates": values::TEMPLATES })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_well_formed_paths() {
        for ok in ["pages/index/index", "pages/order/detail?id=P1&x=2", "a"] {
            assert!(page_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "/pages/index",
            "pages//index",
            "pages/../x",
            "pages/index.html",
            "pages/in dex",
            "pages/a?x=1 2",
            &format!("pages/{}", "a".repeat(600)),
        ] {
            assert!(!page_ok(bad), "{bad}");
        }
    }

    #[test]
    fn fields_follow_the_template() {
        let t = values::template("sbx_pay_success").unwrap();
        let data = json!({
            "character_string1": {"value": "P1"},
            "amount2": {"value": "¥9.90"},
            "thing3": {"value": "咖啡"},
            "time4": {"value": "2019年10月1日 15:01"},
            "extra9": {"value": "ignored"},
        });
        let f = fields(t, data.as_object().unwrap()).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[1].label, "支付金额");
        let mut bad = data.clone();
        bad["thing3"]["value"] = json!("一二三四五六七八九十一二三四五六七八九十一");
        assert_eq!(
            fields(t, bad.as_object().unwrap()).unwrap_err(),
            (47003, "argument invalid! data.thing3.value invalid".into())
        );
        let mut missing = data.clone();
        missing.as_object_mut().unwrap().remove("time4");
        assert_eq!(
            fields(t, missing.as_object().unwrap()).unwrap_err().1,
            "argument invalid! data.time4.value is empty"
        );
        let mut number = data;
        number["amount2"]["value"] = json!(9.9);
        assert_eq!(
            fields(t, number.as_object().unwrap()).unwrap_err().1,
            "argument invalid! data.amount2.value invalid"
        );
    }
}
