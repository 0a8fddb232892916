//! The cashier page over HTTP (no browser): what each device is offered,
//! H5 redirects with the way back, Native QR and the status poll, WeChat
//! OAuth → JSAPI in the WeChat browser (against the sandbox's OAuth), a QR
//! of the page for phone-only channels on a computer, result pages for
//! every state, unknown and expired tokens, headers, and that a paid
//! order's token never pays twice. The browser runs are in `browser.rs`.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_SECURITY_POLICY, LOCATION, USER_AGENT};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, otn, spawn_app};

backend_tests!(
    page_shows_the_order_and_the_channels_for_the_device,
    unknown_expired_and_closed_tokens,
    h5_redirects_to_the_channel_with_a_way_back,
    native_qr_and_the_status_poll_and_no_second_payment,
    wechat_browser_pays_with_jsapi_after_oauth,
    computer_gets_a_qr_of_the_page_for_phone_channels,
    static_files_and_status_errors,
    alipay_wap_goes_to_alipay_and_comes_back_to_the_result,
    alipay_page_and_qr_on_a_computer,
    lakala_h5_and_native_through_the_page,
);

pub const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
pub const WECHAT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";

/// A browser-like client that does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The demo app's WeChat Pay channel id for an API version and scene.
pub fn demo_channel(app: &TestApp, version: &str, scene: &str) -> String {
    find_demo_channel(app, "wx-pay", Some(version), scene)
}

/// The demo app's channel id for a channel type and scene.
pub fn demo_channel_of(app: &TestApp, channel_type: &str, scene: &str) -> String {
    find_demo_channel(app, channel_type, None, scene)
}

fn find_demo_channel(
    app: &TestApp,
    channel_type: &str,
    version: Option<&str>,
    scene: &str,
) -> String {
    let demo: Value =
        serde_json::from_slice(&std::fs::read(app.config.demo_app_file()).expect("demo file"))
            .expect("json");
    demo["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| {
            c["channelType"] == channel_type
                && version.is_none_or(|v| c["apiVersion"] == v)
                && c["sceneCode"] == scene
        })
        .and_then(|c| c["channelId"].as_str())
        .expect("demo channel")
        .to_owned()
}

struct Order {
    no: String,
    order_id: String,
    token: String,
    cashier_url: String,
}

async fn order(app: &TestApp, amount: i64, return_url: Option<&str>) -> Order {
    let no = otn();
    let mut req = cashdesk_sdk::CreateOrderRequest::new(&no, amount, "Latte & cake");
    req.return_url = return_url.map(str::to_owned);
    let created = app.client.create_order(&req).await.expect("order");
    Order {
        no,
        order_id: created.order_id,
        token: created.token,
        cashier_url: created.cashier_url,
    }
}

pub async fn get(
    url: &str,
    ua: &str,
    lang: &str,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let resp = browser()
        .get(url)
        .header(USER_AGENT, ua)
        .header(ACCEPT_LANGUAGE, lang)
        .send()
        .await
        .expect("GET");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, resp.text().await.expect("text"), headers)
}

pub async fn choose(
    app: &TestApp,
    token: &str,
    channel_id: &str,
    ua: &str,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let resp = browser()
        .post(format!("{}/cashier-desk-web/payment", app.base_url))
        .header(USER_AGENT, ua)
        .form(&[("token", token), ("channelId", channel_id)])
        .send()
        .await
        .expect("POST");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, resp.text().await.expect("text"), headers)
}

pub fn location(h: &reqwest::header::HeaderMap) -> String {
    h.get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned()
}

/// The `value` of every channel button, in page order.
fn channel_buttons(html: &str) -> Vec<String> {
    html.split("name=\"channelId\" value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The `src` of the QR image.
fn qr_src(html: &str) -> String {
    html.split("class=\"qr\" src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("QR image")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

async fn status(app: &TestApp, token: &str) -> Value {
    browser()
        .get(format!(
            "{}/cashier-desk-web/payment/status?token={token}",
            app.base_url
        ))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("JSON")
}

async fn page_shows_the_order_and_the_channels_for_the_device(b: Backend) {
    let app = spawn_app(b).await;
    let o = order(&app, 1234, None).await;
    let (st, html, headers) = get(&o.cashier_url, ANDROID, "zh-CN,zh;q=0.9").await;
    assert_eq!(st, StatusCode::OK);
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().expect("csp");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    // The token never leaves in a Referer; the origin does (WeChat H5
    // checks it against the merchant's registered H5 domain).
    assert_eq!(
        headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    assert!(html.contains(r#"<meta name="referrer" content="strict-origin-when-cross-origin">"#));
    assert!(html.contains("lang=\"zh-CN\""));
    assert!(html.contains("¥12.34") && html.contains("Demo shop"));
    assert!(html.contains("Latte &#38; cake") || html.contains("Latte &amp; cake"));
    assert!(html.contains(&o.no) && html.contains("id=\"countdown\""));
    assert!(html.contains("选择支付方式") && html.contains("微信支付"));
    // A phone outside WeChat: Native/QR, H5/WAP and Alipay's PC page, by
    // sort (WeChat v2 0..4, v3 10..14, Alipay 20..24, Lakala 30..33).
    assert_eq!(
        channel_buttons(&html),
        vec![
            demo_channel(&app, "v2", "native"),
            demo_channel(&app, "v2", "h5"),
            demo_channel(&app, "v3", "native"),
            demo_channel(&app, "v3", "h5"),
            demo_channel_of(&app, "ali-pay", "wap"),
            demo_channel_of(&app, "ali-pay", "page"),
            demo_channel_of(&app, "ali-pay", "qr"),
            demo_channel_of(&app, "lakala", "native"),
            demo_channel_of(&app, "lakala", "h5"),
        ]
    );
    assert!(html.contains("支付宝") && html.contains("拉卡拉"), "{html}");
    // English on request.
    let (_, html, _) = get(&o.cashier_url, ANDROID, "en-US,en;q=0.9,zh;q=0.5").await;
    assert!(html.contains("lang=\"en\"") && html.contains("Choose how to pay"));
    assert!(html.contains("WeChat Pay"));
    // In WeChat: JSAPI and the QR codes, no H5/WAP (WeChat blocks them).
    let (_, html, _) = get(&o.cashier_url, WECHAT, "zh-CN").await;
    assert_eq!(
        channel_buttons(&html),
        vec![
            demo_channel(&app, "v2", "jsapi"),
            demo_channel(&app, "v2", "native"),
            demo_channel(&app, "v3", "jsapi"),
            demo_channel(&app, "v3", "native"),
            demo_channel_of(&app, "ali-pay", "qr"),
            demo_channel_of(&app, "lakala", "native"),
        ]
    );
    // Mini-program and app scenes are never offered on the web.
    let (_, html, _) = get(&o.cashier_url, DESKTOP, "zh-CN").await;
    let buttons = channel_buttons(&html);
    assert_eq!(
        buttons.len(),
        11,
        "WeChat jsapi, native, h5 of both versions; Alipay wap, page, qr; Lakala native, h5"
    );
    assert!(!buttons.contains(&demo_channel(&app, "v2", "mini")));
    assert!(!buttons.contains(&demo_channel(&app, "v3", "app")));
    assert!(!buttons.contains(&demo_channel_of(&app, "ali-pay", "mini")));
    assert!(!buttons.contains(&demo_channel_of(&app, "ali-pay", "app")));
    assert!(!buttons.contains(&demo_channel_of(&app, "lakala", "mini")));
    assert!(!buttons.contains(&demo_channel_of(&app, "lakala", "jsapi")));
}

async fn unknown_expired_and_closed_tokens(b: Backend) {
    let app = spawn_app(b).await;
    for url in [
        format!("{}/cashier-desk-web/payment?token=nope", app.base_url),
        format!("{}/cashier-desk-web/payment", app.base_url),
        format!("{}/cashier-desk-web/payment?token=a%27%3Cb", app.base_url),
        format!("{}/cashier-desk-web/result?token=nope", app.base_url),
    ] {
        let (st, html, _) = get(&url, ANDROID, "zh-CN").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{url}");
        assert!(html.contains("支付链接无效"), "{html}");
    }
    let (_, html, _) = get(
        &format!("{}/cashier-desk-web/payment?token=nope", app.base_url),
        ANDROID,
        "en",
    )
    .await;
    assert!(html.contains("Payment link not valid"));

    // Expired: the order's time is up.
    let token = app.insert_expired_order().await;
    let url = format!("{}/cashier-desk-web/payment?token={token}", app.base_url);
    let (st, html, _) = get(&url, ANDROID, "zh-CN").await;
    assert_eq!(st, StatusCode::GONE);
    assert!(html.contains("订单已过期") && !html.contains("channelId"));
    let (st, _, h) = choose(&app, &token, &demo_channel(&app, "v2", "h5"), ANDROID).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "an expired order is not paid");
    assert!(location(&h).starts_with("/cashier-desk-web/result?token="));
    // Final and unpaid: CREATED, or CLOSED if the expiry job (every
    // second) got to it first.
    let s = status(&app, &token).await;
    assert_eq!(s["final"].as_bool(), Some(true), "{s}");
    assert!(
        matches!(s["state"].as_str(), Some("CREATED" | "CLOSED")),
        "{s}"
    );

    // Closed by the merchant.
    let o = order(&app, 5, None).await;
    app.client.close_order(&o.no).await.expect("close");
    let (st, html, _) = get(&o.cashier_url, ANDROID, "en").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("Order closed") && !html.contains("channelId"));
}

async fn h5_redirects_to_the_channel_with_a_way_back(b: Backend) {
    let app = spawn_app(b).await;
    let o = order(&app, 88, None).await;
    let h5 = demo_channel(&app, "v2", "h5");
    let (st, _, h) = choose(&app, &o.token, &h5, ANDROID).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let target = reqwest::Url::parse(&location(&h)).expect("absolute URL");
    assert!(
        target
            .as_str()
            .starts_with(&format!("{}/sandbox/wechat/pay/", app.base_url)),
        "{target}"
    );
    let back = target
        .query_pairs()
        .find(|(k, _)| k == "redirect_url")
        .map(|(_, v)| v.into_owned())
        .expect("redirect_url");
    assert_eq!(
        back,
        format!("{}/cashier-desk-web/result?token={}", app.base_url, o.token)
    );
    let r = app
        .client
        .query_pay_result(&o.no, false)
        .await
        .expect("query");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "PAYING");
    assert_eq!(r.channel_id.as_deref(), Some(h5.as_str()));
    // The way back shows the wait, then the result.
    let (st, html, _) = get(&back, ANDROID, "en").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("Waiting for the payment result"), "{html}");
    app.sandbox_pay(&o.order_id).await;
    app.wait_state(&app.client, &o.no, "SUCCESS").await;
    let (_, html, _) = get(&back, ANDROID, "en").await;
    assert!(html.contains("Payment successful") && html.contains("¥0.88"));
}

async fn native_qr_and_the_status_poll_and_no_second_payment(b: Backend) {
    let app = spawn_app(b).await;
    let o = order(&app, 1234, Some("https://shop.example.com/done?o=1")).await;
    let native = demo_channel(&app, "v3", "native");
    let (st, html, _) = choose(&app, &o.token, &native, ANDROID).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("扫码支付") && html.contains("data-status-url"));
    let src = qr_src(&html);
    assert!(
        src.starts_with("/cashier-desk-web/qr/"),
        "same origin: {src}"
    );
    let svg = browser()
        .get(format!("{}{src}", app.base_url))
        .send()
        .await
        .expect("qr");
    assert_eq!(svg.status(), StatusCode::OK);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    // The QR code reads as the channel's code URL: on the sandbox, its
    // payer page for this order.
    let code_url = crate::qr::decode_svg(&svg.text().await.expect("svg"));
    assert!(
        code_url.starts_with(&format!("{}/sandbox/wechat/pay/", app.base_url)),
        "{code_url}"
    );
    let (st, payer, _) = get(&code_url, ANDROID, "zh-CN").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        payer.contains("SANDBOX") && payer.contains("12.34"),
        "{payer}"
    );
    let s = status(&app, &o.token).await;
    assert_eq!(
        (s["final"].as_bool(), s["state"].as_str()),
        (Some(false), Some("PAYING"))
    );

    // While it is being paid with Native, only Native is offered.
    let (_, html, _) = get(&o.cashier_url, ANDROID, "zh-CN").await;
    assert_eq!(channel_buttons(&html), vec![native.clone()]);
    let (st, _, _) = choose(&app, &o.token, &demo_channel(&app, "v3", "h5"), ANDROID).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "another channel is refused");

    app.sandbox_pay(&o.order_id).await;
    let paid = app.wait_state(&app.client, &o.no, "SUCCESS").await;
    let s = status(&app, &o.token).await;
    assert_eq!(
        (s["final"].as_bool(), s["state"].as_str()),
        (Some(true), Some("SUCCESS"))
    );
    assert_eq!(
        s["resultUrl"],
        format!("/cashier-desk-web/result?token={}", o.token)
    );
    // The token now only shows the result, and sends the buyer back.
    let (st, html, _) = get(&o.cashier_url, ANDROID, "zh-CN").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("支付成功") && !html.contains("channelId"));
    assert!(
        html.contains("3;url=https://shop.example.com/done?o=1"),
        "{html}"
    );
    // Choosing again — any channel — never starts a second payment.
    for ch in [native.clone(), demo_channel(&app, "v2", "h5")] {
        let (st, _, h) = choose(&app, &o.token, &ch, ANDROID).await;
        assert_eq!(st, StatusCode::SEE_OTHER);
        assert!(location(&h).starts_with("/cashier-desk-web/result?token="));
    }
    let (st, _) = app
        .sandbox_post(
            "/sandbox/api/pay",
            serde_json::json!({"channelType": "wx-pay", "outTradeNo": o.order_id, "result": "SUCCESS"}),
        )
        .await;
    assert_eq!(st, 409, "the channel order is paid once");
    let again = app
        .client
        .query_pay_result(&o.no, false)
        .await
        .expect("query");
    assert_eq!(again.transaction_id, paid.transaction_id);
    // The QR code is gone once paid.
    let gone = browser()
        .get(format!("{}{src}", app.base_url))
        .send()
        .await
        .expect("qr");
    assert_ne!(gone.status(), StatusCode::OK);
}

async fn wechat_browser_pays_with_jsapi_after_oauth(b: Backend) {
    let app = spawn_app(b).await;
    let o = order(&app, 301, None).await;
    let jsapi = demo_channel(&app, "v3", "jsapi");
    let (st, _, h) = choose(&app, &o.token, &jsapi, WECHAT).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let authorize = location(&h);
    assert!(
        authorize.starts_with(&format!(
            "{}/sandbox/wechat/connect/oauth2/authorize?appid=wx",
            app.base_url
        )) && authorize.ends_with("#wechat_redirect"),
        "{authorize}"
    );
    assert!(authorize.contains("scope=snsapi_base"));
    // Nothing is paid before the openid is known.
    let r = app
        .client
        .query_pay_result(&o.no, false)
        .await
        .expect("query");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "CREATED");

    let (st, _, h) = get(&authorize, WECHAT, "zh-CN").await;
    assert_eq!(st, StatusCode::FOUND);
    let callback = location(&h);
    assert!(callback.starts_with(&format!("{}/cashier-desk-web/wechat-oauth?", app.base_url)));
    // A forged state is refused.
    let forged = callback.replace("state=", "state=0");
    let (st, html, _) = get(&forged, WECHAT, "zh-CN").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{html}");

    let (st, html, _) = get(&callback, WECHAT, "zh-CN").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let pay = jsapi_pay_data(&html);
    assert!(
        pay["package"]
            .as_str()
            .is_some_and(|p| p.starts_with("prepay_id=")),
        "{pay}"
    );
    assert_eq!(pay["signType"], "RSA");
    // The code was used once: replaying the callback cannot pay again.
    let (st, _, _) = get(&callback, WECHAT, "zh-CN").await;
    assert_eq!(st, StatusCode::BAD_GATEWAY);

    app.sandbox_pay(&o.order_id).await;
    app.wait_state(&app.client, &o.no, "SUCCESS").await;
    let (_, html, _) = get(&o.cashier_url, WECHAT, "zh-CN").await;
    assert!(html.contains("支付成功"));
}

/// The `wx.requestPayment` params on the JSAPI bridge page.
pub fn jsapi_pay_data(html: &str) -> Value {
    assert!(html.contains("正在调起微信支付"), "{html}");
    let pay = html
        .split("data-pay=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("data-pay")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    serde_json::from_str(&pay).expect("payData JSON")
}

async fn computer_gets_a_qr_of_the_page_for_phone_channels(b: Backend) {
    let app = spawn_app(b).await;
    let o = order(&app, 100, None).await;
    let (st, html, _) = choose(&app, &o.token, &demo_channel(&app, "v2", "h5"), DESKTOP).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("请在手机上继续"));
    let src = qr_src(&html);
    assert_eq!(
        src,
        format!("/cashier-desk-web/payment/page-qr.svg?token={}", o.token)
    );
    let svg = browser()
        .get(format!("{}{src}", app.base_url))
        .send()
        .await
        .expect("svg");
    assert_eq!(svg.status(), StatusCode::OK);
    // It reads as this very cashier page, for the phone to open.
    assert_eq!(
        crate::qr::decode_svg(&svg.text().await.expect("svg")),
        o.cashier_url
    );
    // Nothing was started at the channel: the phone chooses.
    let r = app
        .client
        .query_pay_result(&o.no, false)
        .await
        .expect("query");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "CREATED");
    let bad = browser()
        .get(format!(
            "{}/cashier-desk-web/payment/page-qr.svg?token=nope",
            app.base_url
        ))
        .send()
        .await
        .expect("svg");
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);
}

async fn static_files_and_status_errors(b: Backend) {
    let app = spawn_app(b).await;
    for (file, ty) in [
        ("cashier.css", "text/css; charset=utf-8"),
        ("cashier.js", "text/javascript; charset=utf-8"),
    ] {
        let resp = browser()
            .get(format!("{}/cashier-desk-web/static/{file}", app.base_url))
            .send()
            .await
            .expect("static");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], ty);
    }
    let resp = browser()
        .get(format!(
            "{}/cashier-desk-web/static/../Cargo.toml",
            app.base_url
        ))
        .send()
        .await
        .expect("static");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = browser()
        .get(format!(
            "{}/cashier-desk-web/payment/status?token=nope",
            app.base_url
        ))
        .send()
        .await
        .expect("status");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let v: Value = resp.json().await.expect("envelope");
    assert_eq!(v["code"], 4041);
    // A channel id that is not offered: the page again, with a notice.
    let o = order(&app, 1, None).await;
    let (st, html, _) = choose(&app, &o.token, "C-nope", ANDROID).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(html.contains("role=\"alert\"") && html.contains("channelId"));
}

/// The value of `name` in a URL's query.
fn query_value(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `action` of the sandbox payer page's form.
fn payer_form_action(html: &str) -> String {
    html.split("<form method=\"post\" action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("payer form")
        .to_owned()
}

async fn alipay_wap_goes_to_alipay_and_comes_back_to_the_result(b: Backend) {
    let app = spawn_app(b).await;
    let o = order(&app, 1010, Some("https://shop.example.com/done?o=2")).await;
    let wap = demo_channel_of(&app, "ali-pay", "wap");
    let (st, _, h) = choose(&app, &o.token, &wap, ANDROID).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    // To the signed alipay.trade.wap.pay URL at the (sandbox) gateway.
    let target = location(&h);
    assert!(
        target.starts_with(&format!("{}/sandbox/alipay/gateway.do?", app.base_url)),
        "{target}"
    );
    assert_eq!(
        query_value(&target, "method").as_deref(),
        Some("alipay.trade.wap.pay")
    );
    // Alipay sends the buyer back to the cashier's result page (which
    // forwards to the order's returnUrl once paid), and there on quitting.
    let result = format!("{}/cashier-desk-web/result?token={}", app.base_url, o.token);
    assert_eq!(query_value(&target, "return_url"), Some(result.clone()));
    let biz: Value =
        serde_json::from_str(&query_value(&target, "biz_content").expect("biz")).expect("json");
    assert_eq!(biz["quit_url"], result);
    assert_eq!(biz["total_amount"], "10.10");
    let r = app.client.query_pay_result(&o.no, false).await.expect("q");
    assert_eq!(serde_json::to_value(r.state).expect("state"), "PAYING");
    assert_eq!(r.channel_id.as_deref(), Some(wap.as_str()));

    // The buyer at Alipay: the gateway shows the payer page; paying there
    // notifies cashdesk and offers the signed way back.
    let (st, html, _) = get(&target, ANDROID, "zh-CN").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(html.contains("10.10"), "{html}");
    let paid = browser()
        .post(format!("{}{}", app.base_url, payer_form_action(&html)))
        .form(&[("action", "pay")])
        .send()
        .await
        .expect("pay at Alipay");
    assert_eq!(paid.status(), StatusCode::OK);
    let html = paid.text().await.expect("html");
    let back = html
        .split("<a href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("back link")
        .replace("&amp;", "&");
    assert!(back.starts_with(&result), "{back}");
    assert_eq!(
        query_value(&back, "method").as_deref(),
        Some("alipay.trade.wap.pay.return")
    );
    app.wait_state(&app.client, &o.no, "SUCCESS").await;
    let (st, html, _) = get(&back, ANDROID, "en").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("Payment successful") && html.contains("¥10.10"));
    assert!(
        html.contains("3;url=https://shop.example.com/done?o=2"),
        "{html}"
    );
    // In WeChat's browser Alipay's wap is not offered (WeChat blocks it).
    let o2 = order(&app, 5, None).await;
    let (st, _, _) = choose(&app, &o2.token, &wap, WECHAT).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

async fn alipay_page_and_qr_on_a_computer(b: Backend) {
    let app = spawn_app(b).await;
    // The PC page payment: a redirect to alipay.trade.page.pay.
    let o = order(&app, 300, None).await;
    let (st, _, h) = choose(
        &app,
        &o.token,
        &demo_channel_of(&app, "ali-pay", "page"),
        DESKTOP,
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let target = location(&h);
    assert_eq!(
        query_value(&target, "method").as_deref(),
        Some("alipay.trade.page.pay")
    );
    let (st, _, _) = get(&target, DESKTOP, "zh-CN").await;
    assert_eq!(st, StatusCode::OK);
    app.sandbox_pay_with(
        serde_json::json!({"channelType": "ali-pay", "orderString": target, "result": "SUCCESS"}),
    )
    .await;
    app.wait_state(&app.client, &o.no, "SUCCESS").await;

    // The QR: precreate's qr_code, drawn by cashdesk, and the status poll.
    let o = order(&app, 301, None).await;
    let (st, html, _) = choose(
        &app,
        &o.token,
        &demo_channel_of(&app, "ali-pay", "qr"),
        DESKTOP,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let src = qr_src(&html);
    assert!(src.starts_with("/cashier-desk-web/qr/"), "{src}");
    let svg = browser()
        .get(format!("{}{src}", app.base_url))
        .send()
        .await
        .expect("qr");
    assert_eq!(svg.status(), StatusCode::OK);
    assert!(svg.text().await.expect("svg").contains("<svg"));
    let s = status(&app, &o.token).await;
    assert_eq!(s["state"], "PAYING");
    app.sandbox_pay_with(serde_json::json!({"channelType": "ali-pay", "outTradeNo": o.order_id, "result": "SUCCESS"}))
        .await;
    app.wait_state(&app.client, &o.no, "SUCCESS").await;
    let s = status(&app, &o.token).await;
    assert_eq!(
        (s["final"].as_bool(), s["state"].as_str()),
        (Some(true), Some("SUCCESS"))
    );
    // Alipay's wap on a computer: carry on on a phone.
    let o = order(&app, 302, None).await;
    let (st, html, _) = choose(
        &app,
        &o.token,
        &demo_channel_of(&app, "ali-pay", "wap"),
        DESKTOP,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(qr_src(&html).contains("page-qr.svg"), "{html}");
}

async fn lakala_h5_and_native_through_the_page(b: Backend) {
    let app = spawn_app(b).await;
    // H5 (Alipay H5 through Lakala) on a phone: to Lakala's page, pay there.
    let o = order(&app, 520, None).await;
    let h5 = demo_channel_of(&app, "lakala", "h5");
    let (st, _, h) = choose(&app, &o.token, &h5, ANDROID).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let target = location(&h);
    assert!(
        target.starts_with(&format!("{}/sandbox/lakala/pay/", app.base_url)),
        "{target}"
    );
    let (st, html, _) = get(&target, ANDROID, "zh-CN").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("5.20"), "{html}");
    let paid = browser()
        .post(format!("{}{}", app.base_url, payer_form_action(&html)))
        .form(&[("action", "pay")])
        .send()
        .await
        .expect("pay at Lakala");
    assert_eq!(paid.status(), StatusCode::OK);
    let done = app.wait_state(&app.client, &o.no, "SUCCESS").await;
    assert_eq!(done.channel_type.as_deref(), Some("lakala"));
    let (_, html, _) = get(
        &format!("{}/cashier-desk-web/result?token={}", app.base_url, o.token),
        ANDROID,
        "zh-CN",
    )
    .await;
    assert!(html.contains("支付成功"), "{html}");

    // Native: Lakala's code drawn by cashdesk.
    let o = order(&app, 521, None).await;
    let native = demo_channel_of(&app, "lakala", "native");
    let (st, html, _) = choose(&app, &o.token, &native, WECHAT).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let src = qr_src(&html);
    let svg = browser()
        .get(format!("{}{src}", app.base_url))
        .send()
        .await
        .expect("qr")
        .text()
        .await
        .expect("svg");
    assert!(svg.contains("<svg"));
    app.sandbox_pay_with(
        serde_json::json!({"channelType": "lakala", "outTradeNo": o.order_id, "result": "SUCCESS"}),
    )
    .await;
    app.wait_state(&app.client, &o.no, "SUCCESS").await;
    let s = status(&app, &o.token).await;
    assert_eq!(s["state"], "SUCCESS");
}
