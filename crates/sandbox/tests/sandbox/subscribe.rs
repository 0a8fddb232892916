//! The `api.weixin.qq.com` stand-in: tokens, subscribe messages, their
//! error codes and faults, over raw HTTP; then cashdesk's client
//! (`cashdesk_channels::wechat::subscribe`) and its value formatter
//! against it.

use std::collections::BTreeMap;

use cashdesk_channels::HttpSettings;
use cashdesk_channels::wechat::subscribe::{
    SubscribeClient, SubscribeErrorKind as K, SubscribeMessage, format_amount, format_time,
    format_value, render_page,
};
use cashdesk_crypto::Secret;
use cashdesk_crypto::wxv2::WxSignType;

use crate::*;

impl Merchant {
    fn app_secret(&self) -> &str {
        self.creds["credentialsV2"]["appSecret"].as_str().unwrap()
    }
}

struct Mini {
    app: TestApp,
    m: Merchant,
    user: String,
}

async fn mini() -> Mini {
    let app = spawn().await;
    let m = app.open_merchant("MD5").await;
    let user = cashdesk_sandbox::oauth::openid_for(m.app_id());
    Mini { app, m, user }
}

impl Mini {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.m.base_url())
    }

    async fn stable(&self, body: Value) -> Value {
        let r = self
            .app
            .http
            .post(self.url("cgi-bin/stable_token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn token(&self, force: bool) -> String {
        let v = self
            .stable(
                json!({"grant_type": "client_credential", "appid": self.m.app_id(),
                "secret": self.m.app_secret(), "force_refresh": force}),
            )
            .await;
        v["access_token"].as_str().expect("a token").to_owned()
    }

    async fn send_raw(&self, token: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .app
            .http
            .post(self.url("cgi-bin/message/subscribe/send"))
            .query(&[("access_token", token)])
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, token: &str, body: &Value) -> Value {
        let (status, v) = self.send_raw(token, body.to_string()).await;
        assert_eq!(status, 200);
        v
    }

    fn message(&self) -> Value {
        json!({
            "touser": self.user,
            "template_id": "sbx_pay_success",
            "page": "pages/order/detail?orderId=P1",
            "data": {
                "character_string1": {"value": "P2026120700001"},
                "amount2": {"value": "¥9.90"},
                "thing3": {"value": "咖啡 <b>大杯</b>"},
                "time4": {"value": "2026年12月7日 15:01"},
            },
            "miniprogram_state": "trial",
            "lang": "zh_CN",
        })
    }

    async fn inbox(&self, openid: &str) -> Vec<Value> {
        let v: Value = self
            .app
            .http
            .get(format!(
                "{}/sandbox/api/subscribe/messages",
                self.app.origin
            ))
            .query(&[("appId", self.m.app_id()), ("openid", openid)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["messages"].as_array().unwrap().clone()
    }

    fn client(&self) -> SubscribeClient {
        SubscribeClient::new(Some(self.m.base_url()), &HttpSettings::default(), &[]).unwrap()
    }
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn cgi_bin_token_errors_and_a_new_token_ends_the_old() {
    let w = mini().await;
    let get = |q: Vec<(&'static str, String)>| {
        let req = w.app.http.get(w.url("cgi-bin/token")).query(&q);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let good = |secret: &str| {
        vec![
            ("grant_type", "client_credential".to_owned()),
            ("appid", w.m.app_id().to_owned()),
            ("secret", secret.to_owned()),
        ]
    };
    let mut wrong_app = good(w.m.app_secret());
    wrong_app[1].1 = "wx0000000000000000".into();
    assert_eq!(errcode(&get(wrong_app).await), 40013);
    assert_eq!(errcode(&get(good("nope")).await), 40125);
    let mut no_grant = good(w.m.app_secret());
    no_grant.remove(0);
    assert_eq!(errcode(&get(no_grant).await), 40002);
    let first = get(good(w.m.app_secret())).await;
    assert_eq!(first["expires_in"], 7200);
    let first = first["access_token"].as_str().unwrap().to_owned();
    assert!(first.len() >= 100, "{first}");
    assert_eq!(errcode(&w.send(&first, &w.message()).await), 0);
    let second = get(good(w.m.app_secret())).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = w.send(&first, &w.message()).await;
    assert_eq!(errcode(&v), 40001, "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains(" rid: "), "{v}");
    assert_eq!(errcode(&w.send(&second, &w.message()).await), 0);
}

#[tokio::test]
async fn stable_tokens_last_rotate_and_force_refresh_is_limited() {
    let w = mini().await;
    let base = json!({"grant_type": "client_credential", "appid": w.m.app_id(), "secret": w.m.app_secret()});
    let mut bad = base.clone();
    bad["secret"] = json!("wrong");
    assert_eq!(errcode(&w.stable(bad).await), 40125);
    let mut bad = base.clone();
    bad["appid"] = json!("wx_unknown");
    assert_eq!(errcode(&w.stable(bad).await), 40013);
    let mut bad = base.clone();
    bad.as_object_mut().unwrap().remove("secret");
    assert_eq!(errcode(&w.stable(bad).await), 41004);
    let mut bad = base.clone();
    bad["force_refresh"] = json!("yes");
    assert_eq!(errcode(&w.stable(bad).await), 47001);

    let a = w.stable(base.clone()).await;
    assert_eq!(a["expires_in"], 7200);
    let a = a["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.token(false).await, a, "the same token while valid");
    // 6,900 s later (five minutes left): a new one, the old still works.
    w.app
        .sandbox
        .set_clock_offset(chrono::TimeDelta::seconds(6900))
        .unwrap();
    let b = w.token(false).await;
    assert_ne!(a, b);
    assert_eq!(errcode(&w.send(&a, &w.message()).await), 0);
    // At 7,200 s the old one has expired.
    w.app
        .sandbox
        .set_clock_offset(chrono::TimeDelta::seconds(7201))
        .unwrap();
    assert_eq!(errcode(&w.send(&a, &w.message()).await), 42001);
    assert_eq!(errcode(&w.send(&b, &w.message()).await), 0);
    // A forced refresh ends b; a second one within 30 s is refused.
    let c = w.token(true).await;
    assert_ne!(b, c);
    assert_eq!(errcode(&w.send(&b, &w.message()).await), 40001);
    let mut force = base.clone();
    force["force_refresh"] = json!(true);
    assert_eq!(errcode(&w.stable(force).await), 45011);
    assert_eq!(w.token(false).await, c);
}

#[tokio::test]
async fn a_message_is_received_and_shown_escaped() {
    let w = mini().await;
    let t = w.token(false).await;
    let v = w.send(&t, &w.message()).await;
    assert_eq!(v["errcode"], 0, "{v}");
    assert_eq!(v["errmsg"], "ok");
    assert!(v["msgid"].as_u64().is_some());
    let got = w.inbox(&w.user).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["msgid"], v["msgid"]);
    assert_eq!(got[0]["templateId"], "sbx_pay_success");
    assert_eq!(got[0]["page"], "pages/order/detail?orderId=P1");
    assert_eq!(got[0]["miniprogramState"], "trial");
    assert_eq!(got[0]["data"][1]["key"], "amount2");
    assert_eq!(got[0]["data"][1]["value"], "¥9.90");
    let html = w
        .app
        .http
        .get(format!(
            "{}/sandbox/wechat/subscribe/messages",
            w.app.origin
        ))
        .query(&[("openid", w.user.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("支付成功通知") && html.contains("¥9.90"),
        "{html}"
    );
    assert!(html.contains("咖啡 &lt;b&gt;大杯&lt;/b&gt;") && !html.contains("<b>大杯"));
    let templates: Value = w
        .app
        .http
        .get(format!("{}/sandbox/api/subscribe/templates", w.app.origin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(templates["templates"][0]["id"], "sbx_pay_success");
}

#[tokio::test]
async fn each_refusal_has_wechats_code() {
    let w = mini().await;
    let t = w.token(false).await;
    let (_, v) = w.send_raw("", w.message().to_string()).await;
    assert_eq!(errcode(&v), 41001);
    let (_, v) = w.send_raw("made-up", w.message().to_string()).await;
    assert_eq!(errcode(&v), 40001);
    let (_, v) = w.send_raw(&t, "touser=x").await;
    assert_eq!(errcode(&v), 47001);
    let change = |f: &dyn Fn(&mut Value)| {
        let mut m = w.message();
        f(&mut m);
        m
    };
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            change(&|m| m["touser"] = json!("oSbxNotAUserOfThisApp0000000")),
            40003,
            "invalid openid",
        ),
        (
            change(&|m| m["touser"] = json!(cashdesk_sandbox::oauth::openid_for("wx_other"))),
            40003,
            "invalid openid",
        ),
        (
            change(&|m| m["template_id"] = json!("nope")),
            40037,
            "invalid template_id",
        ),
        (
            change(&|m| m["page"] = json!("/pages/index")),
            41030,
            "invalid page",
        ),
        (change(&|m| m["page"] = json!(7)), 41030, "invalid page"),
        (
            change(&|m| {
                m["data"]["thing3"]["value"] = json!("一二三四五六七八九十一二三四五六七八九十一")
            }),
            47003,
            "argument invalid! data.thing3.value invalid",
        ),
        (
            change(&|m| m["data"]["amount2"]["value"] = json!("9.90 dollars")),
            47003,
            "argument invalid! data.amount2.value invalid",
        ),
        (
            change(&|m| m["data"]["time4"]["value"] = json!("yesterday")),
            47003,
            "argument invalid! data.time4.value invalid",
        ),
        (
            change(&|m| {
                m["data"]
                    .as_object_mut()
                    .unwrap()
                    .remove("character_string1");
            }),
            47003,
            "argument invalid! data.character_string1.value is empty",
        ),
        (
            change(&|m| m["data"] = json!(m["data"].to_string())),
            47003,
            "argument invalid! data is not object",
        ),
        (
            change(&|m| m["miniprogram_state"] = json!("prod")),
            47003,
            "argument invalid! miniprogram_state invalid",
        ),
        (
            change(&|m| m["lang"] = json!("fr_FR")),
            47003,
            "argument invalid! lang invalid",
        ),
    ];
    for (body, code, msg) in cases {
        let v = w.send(&t, &body).await;
        assert_eq!(errcode(&v), code, "{body} → {v}");
        assert!(v["errmsg"].as_str().unwrap().starts_with(msg), "{v}");
    }
    assert!(
        w.inbox(&w.user).await.is_empty(),
        "nothing refused was kept"
    );
    // Bodies are bounded; hostile JSON is a format error, not a crash.
    let (status, _) = w.send_raw(&t, vec![b' '; 70 * 1024]).await;
    assert_eq!(status, 413);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (_, v) = w.send_raw(&t, deep).await;
    assert_eq!(errcode(&v), 47001);
    let (_, v) = w.send_raw(&t, vec![0xffu8, 0xfe, 0x00]).await;
    assert_eq!(errcode(&v), 47001);
}

#[tokio::test]
async fn a_payer_of_the_apps_orders_is_a_user() {
    let w = mini().await;
    let t = w.token(false).await;
    let payer = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
    let mut m = w.message();
    m["touser"] = json!(payer);
    assert_eq!(errcode(&w.send(&t, &m).await), 40003, "not yet a user");
    let no = out_trade_no();
    let url = format!("{}/pay/unifiedorder", w.m.base_url());
    let f = v2_call(
        &w.app.http,
        &url,
        &w.m,
        unified("JSAPI", &no, "http://127.0.0.1:9/n"),
        WxSignType::Md5,
    )
    .await;
    assert_eq!(f["result_code"], "SUCCESS", "{f:?}");
    assert_eq!(errcode(&w.send(&t, &m).await), 0);
    assert_eq!(w.inbox(payer).await.len(), 1);
}

#[tokio::test]
async fn faults_refuse_revoke_and_limit() {
    let w = mini().await;
    let t = w.token(false).await;
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "USER_REFUSED", "openid": w.user, "appId": w.m.app_id()}))
        .await;
    let v = w.send(&t, &w.message()).await;
    assert_eq!(errcode(&v), 43101, "{v}");
    assert_eq!(errcode(&w.send(&t, &w.message()).await), 0, "count 1");
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "RATE_LIMITED", "count": 2}))
        .await;
    assert_eq!(errcode(&w.send(&t, &w.message()).await), 45009);
    assert_eq!(errcode(&w.send(&t, &w.message()).await), 45009);
    assert_eq!(errcode(&w.send(&t, &w.message()).await), 0);
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "TOKEN_INVALIDATED"}))
        .await;
    assert_eq!(errcode(&w.send(&t, &w.message()).await), 40001);
    assert_eq!(
        errcode(&w.send(&t, &w.message()).await),
        40001,
        "still revoked"
    );
    let fresh = w.token(false).await;
    assert_ne!(fresh, t);
    assert_eq!(errcode(&w.send(&fresh, &w.message()).await), 0);
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "pathContains": "cgi-bin/message"}))
        .await;
    assert_eq!(errcode(&w.send(&fresh, &w.message()).await), -1);
    w.app
        .fault(
            json!({"channelType": "wx-pay", "fault": "HTTP_500", "pathContains": "subscribe/send"}),
        )
        .await;
    assert_eq!(w.send_raw(&fresh, w.message().to_string()).await.0, 500);
    // Another app's fault does not touch this one.
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "RATE_LIMITED", "appId": "wx_other"}))
        .await;
    assert_eq!(errcode(&w.send(&fresh, &w.message()).await), 0);
    // Fields belong to their faults.
    for bad in [
        json!({"channelType": "wx-pay", "fault": "USER_REFUSED"}),
        json!({"channelType": "wx-pay", "fault": "SYSTEMERROR", "appId": "wx1"}),
        json!({"channelType": "wx-pay", "fault": "RATE_LIMITED", "openid": "o1"}),
        json!({"channelType": "ali-pay", "fault": "RATE_LIMITED"}),
    ] {
        let r = w
            .app
            .http
            .post(format!("{}/sandbox/api/faults", w.app.origin))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

// ---- cashdesk's client against the stand-in ----

fn message(user: &str, data: &[(&str, String)]) -> SubscribeMessage {
    // An order id with characters a page must not carry as they are.
    let page = render_page("pages/order/detail?orderId={orderId}", |name| {
        (name == "orderId").then(|| "P1 &x=<y>/中#".to_owned())
    })
    .unwrap();
    SubscribeMessage {
        touser: user.to_owned(),
        template_id: "sbx_pay_success".into(),
        page: Some(page),
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        miniprogram_state: None,
        lang: None,
    }
}

fn pay_success(user: &str) -> SubscribeMessage {
    let paid_at = chrono::DateTime::from_timestamp(1_796_000_000, 0).unwrap();
    message(
        user,
        &[
            (
                "character_string1",
                format_value("character_string1", "P2026-12-07/0001 订单"),
            ),
            ("amount2", format_amount(1234)),
            (
                "thing3",
                format_value("thing3", "精品挂耳咖啡礼盒（十二种风味 × 2 盒装）"),
            ),
            ("time4", format_time(paid_at)),
        ],
    )
}

#[tokio::test]
async fn the_client_gets_tokens_and_sends() {
    let w = mini().await;
    let c = w.client();
    let secret = Secret::new(w.m.app_secret());
    let t = c.stable_token(w.m.app_id(), &secret, false).await.unwrap();
    assert_eq!(t.expires_in, 7200);
    c.send(&t.token, &pay_success(&w.user)).await.unwrap();
    let got = w.inbox(&w.user).await;
    assert_eq!(got[0]["data"][1]["value"], "¥12.34");
    assert_eq!(
        got[0]["page"],
        "pages/order/detail?orderId=P1%20%26x%3D%3Cy%3E%2F%E4%B8%AD%23"
    );
    assert_eq!(
        got[0]["data"][2]["value"],
        "精品挂耳咖啡礼盒（十二种风味 × 2…"
    );

    let e = c
        .stable_token(w.m.app_id(), &Secret::new("wrong-secret"), false)
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Credentials, Some(40125)));
    assert!(!e.to_string().contains("wrong-secret"), "{e}");
    let e = c
        .stable_token("wx_unknown", &secret, false)
        .await
        .unwrap_err();
    assert_eq!(e.errcode(), Some(40013));

    let e = c
        .send(&t.token, &pay_success("oSbxNotAUserOfThisApp0000000"))
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Final, Some(40003)));
    let mut bad = pay_success(&w.user);
    bad.data.insert("thing3".into(), "x".repeat(21));
    let e = c.send(&t.token, &bad).await.unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Final, Some(47003)));
    assert!(
        e.errmsg().unwrap().contains("data.thing3.value invalid"),
        "{e}"
    );
    assert!(!e.to_string().contains(t.token.expose()), "{e}");
    let mut bad = pay_success(&w.user);
    bad.template_id = "nope".into();
    assert_eq!(
        c.send(&t.token, &bad).await.unwrap_err().errcode(),
        Some(40037)
    );
    let mut bad = pay_success(&w.user);
    bad.page = Some("/x".into());
    assert_eq!(
        c.send(&t.token, &bad).await.unwrap_err().errcode(),
        Some(41030)
    );

    // Expired by the clock: refresh, the new token works.
    w.app
        .sandbox
        .set_clock_offset(chrono::TimeDelta::seconds(7300))
        .unwrap();
    let e = c.send(&t.token, &pay_success(&w.user)).await.unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::TokenInvalid, Some(42001)));
    let fresh = c.stable_token(w.m.app_id(), &secret, false).await.unwrap();
    assert_ne!(fresh.token, t.token);
    c.send(&fresh.token, &pay_success(&w.user)).await.unwrap();
}

#[tokio::test]
async fn the_clients_errors_under_faults() {
    let w = mini().await;
    let c = w.client();
    let secret = Secret::new(w.m.app_secret());
    let t = c.stable_token(w.m.app_id(), &secret, false).await.unwrap();
    let msg = pay_success(&w.user);
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "USER_REFUSED", "openid": w.user}))
        .await;
    let e = c.send(&t.token, &msg).await.unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Final, Some(43101)));
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "RATE_LIMITED"}))
        .await;
    let e = c.send(&t.token, &msg).await.unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Retryable, Some(45009)));
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "HTTP_500", "pathContains": "cgi-bin"}))
        .await;
    let e = c.send(&t.token, &msg).await.unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Retryable, None));
    // Token invalidated: the refresh-once-and-retry the gateway does.
    w.app
        .fault(json!({"channelType": "wx-pay", "fault": "TOKEN_INVALIDATED"}))
        .await;
    let e = c.send(&t.token, &msg).await.unwrap_err();
    assert_eq!(e.kind(), K::TokenInvalid);
    let fresh = c.stable_token(w.m.app_id(), &secret, false).await.unwrap();
    assert_ne!(fresh.token, t.token);
    c.send(&fresh.token, &msg).await.unwrap();
    // A forced refresh too soon after another is retryable.
    c.stable_token(w.m.app_id(), &secret, true).await.unwrap();
    let e = c
        .stable_token(w.m.app_id(), &secret, true)
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.errcode()), (K::Retryable, Some(45011)));
    // Nothing listening: retryable, and the token is not in the error.
    let dead = SubscribeClient::new(
        Some("http://127.0.0.1:9/sandbox/wechat"),
        &HttpSettings::default(),
        &[],
    )
    .unwrap();
    let e = dead.send(&fresh.token, &msg).await.unwrap_err();
    assert_eq!(e.kind(), K::Retryable);
    assert!(!e.to_string().contains(fresh.token.expose()), "{e}");
}

/// Two readings of WeChat's value rules checking each other: whatever the
/// client's formatter makes of hostile text, the stand-in accepts.
#[tokio::test]
async fn formatted_values_pass_the_stand_ins_checks() {
    let w = mini().await;
    let c = w.client();
    let t = c
        .stable_token(w.m.app_id(), &Secret::new(w.m.app_secret()), false)
        .await
        .unwrap();
    let keys = [
        "thing1",
        "number2",
        "letter3",
        "symbol4",
        "character_string5",
        "time6",
        "date7",
        "amount8",
        "phone_number9",
        "car_number10",
        "name11",
        "phrase12",
    ];
    let fallback = [
        "x",
        "1",
        "a",
        "+",
        "A1",
        "15:01",
        "2019年10月1日",
        "¥1.00",
        "110",
        "粤B12345",
        "张三",
        "配送中",
    ];
    let raws = [
        "精品挂耳咖啡礼盒（十二种风味 × 2 盒装）😀😀😀",
        "  line\none\ttwo  ",
        "1,234,567.891 元",
        "¥99999999.99",
        "2026-12-07T23:59:59Z",
        "2026/12/07 08:00",
        "1796000000",
        "+86 (0766) 6688-8866 ext. 12345",
        "粤B·12345学 / 京A-88888",
        "阿卜杜拉·买买提·艾力江·玉素甫 Jr.",
        "Alexander Maximilian Smith-Jones III",
        "<script>alert('x')</script>",
        "订单 P2026-12-07/0001 #已支付",
        "",
    ];
    for raw in raws {
        let data: BTreeMap<String, String> = keys
            .iter()
            .zip(fallback)
            .map(|(k, f)| {
                let v = format_value(k, raw);
                ((*k).to_owned(), if v.is_empty() { f.to_owned() } else { v })
            })
            .collect();
        let msg = SubscribeMessage {
            template_id: "sbx_all_keys".into(),
            data: data.clone(),
            ..pay_success(&w.user)
        };
        if let Err(e) = c.send(&t.token, &msg).await {
            panic!("{raw:?} → {data:?}: {e}");
        }
    }
}

#[tokio::test]
async fn sub_merchant_and_lakala_mini_programs_have_secrets() {
    let app = spawn().await;
    let sp = app.sandbox.open_wechat_service_provider().await.unwrap();
    let sub = app.sandbox.open_wechat_sub_merchant(&sp.mch_id).unwrap();
    let lakala = app.sandbox.open_lakala_merchant().await.unwrap();
    let c =
        SubscribeClient::new(Some(&app.sandbox.base_url()), &HttpSettings::default(), &[]).unwrap();
    let minis = [
        (sub.sub_app_id.clone(), sub.sub_app_secret.clone()),
        (
            lakala.credentials.sub_app_id.clone(),
            lakala.sub_app_secret.clone(),
        ),
    ];
    for (app_id, secret) in &minis {
        assert_eq!(secret.len(), 32);
        let t = c
            .stable_token(app_id, &Secret::new(secret.as_str()), false)
            .await
            .unwrap();
        let user = cashdesk_sandbox::oauth::openid_for(app_id);
        c.send(&t.token, &pay_success(&user)).await.unwrap();
    }
    // One mini-program's secret is not another's.
    let e = c
        .stable_token(&minis[0].0, &Secret::new(minis[1].1.as_str()), false)
        .await
        .unwrap_err();
    assert_eq!(e.errcode(), Some(40125));
}
