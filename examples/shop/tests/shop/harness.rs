//! `spawn()`: a real cashdesk (the server crate in-process, development
//! mode, sandbox channels, SQLite in a temporary folder, 127.0.0.1:0) and
//! the shop on it (its own SQLite file, 127.0.0.1:0), with the demo app and
//! its sandbox WeChat Pay v2 mini-program channel, as `cashdesk serve` and
//! `cashdesk-shop --demo-app …` would run them.

use std::future::Future;
use std::time::Duration;

use cashdesk_sdk::{AdminClient, Client, Credentials, NotificationQuery};
use cashdesk_shop::{Db, Shop, ShopConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const WAIT: Duration = Duration::from_secs(15);

pub struct World {
    pub sandbox_url: String,
    pub app_id: String,
    pub app_key: String,
    /// The demo app's own client (what an operator script would use).
    pub gateway: Client,
    pub admin: AdminClient,
    pub gateway_config: cashdesk_server::Config,
    pub shop_url: String,
    pub db: Db,
    /// The running shop's state (to call its services directly).
    pub state: cashdesk_shop::AppState,
    http: reqwest::Client,
    _stops: Vec<oneshot::Sender<()>>,
    // Dropped last.
    _dir: tempfile::TempDir,
}

pub async fn spawn() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = cashdesk_server::Config::for_tests(dir.path().join("cashdesk"));
    let app = cashdesk_server::Application::build(config.clone())
        .await
        .expect("cashdesk builds");
    let report = app.startup_report().clone();
    let gateway_url = report.listen_url.clone();
    let sandbox_url = report
        .sandbox
        .as_ref()
        .map_or_else(|| gateway_url.clone(), |s| s.base_url.clone());
    let demo = report
        .demo_app
        .as_ref()
        .expect("a fresh start makes a demo app");
    let (app_id, app_key) = (demo.app_id.clone(), demo.app_key.expose().to_owned());
    let channel_id = report
        .demo_channels
        .iter()
        .find(|c| {
            c.channel_type.as_str() == "wx-pay"
                && c.api_version == "v2"
                && c.scene_code.as_str() == "mini"
        })
        .expect("the demo WeChat v2 mini-program channel")
        .channel_id
        .clone();
    let admin_token = match &config.admin_token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(config.admin_token_file())
            .expect("admin token file")
            .trim()
            .to_owned(),
    };
    let (stop_gateway, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));

    let mut shop_config =
        ShopConfig::for_tests(dir.path().join("shop.db"), &gateway_url, &app_id, &app_key);
    shop_config.channel_id = Some(channel_id);
    let shop = Shop::build(shop_config).await.expect("shop builds");
    let shop_url = shop.url();
    let state = shop.state().clone();
    let db = state.db.clone();
    db.add_goods("cup", "Cup", 150, 10).await.expect("goods");
    let (stop_shop, rx) = oneshot::channel::<()>();
    tokio::spawn(shop.run_until_stopped(async move {
        let _ = rx.await;
    }));

    World {
        gateway: Client::new(
            &gateway_url,
            &app_id,
            Credentials::hmac_sha256(app_key.clone()),
        )
        .expect("client"),
        admin: AdminClient::new(&gateway_url, &admin_token).expect("admin client"),
        sandbox_url,
        app_id,
        app_key,
        gateway_config: config,
        shop_url,
        db,
        state,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        _stops: vec![stop_gateway, stop_shop],
        _dir: dir,
    }
}

impl World {
    /// A JSON request to the shop: (status, body).
    pub async fn shop(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.shop_url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("shop answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn buy(&self, user: &str, qty: i64) -> (u16, Value) {
        self.shop(
            reqwest::Method::POST,
            "/buy-now",
            Some(json!({"userId": user, "goodsId": "cup", "qty": qty})),
        )
        .await
    }

    /// `(stock, reserved)` of the test goods, from the shop's own API.
    pub async fn cup(&self) -> (i64, i64) {
        let (status, goods) = self.shop(reqwest::Method::GET, "/goods", None).await;
        assert_eq!(status, 200, "{goods}");
        let cup = goods
            .as_array()
            .and_then(|a| a.iter().find(|g| g["goodsId"] == "cup"))
            .expect("cup listed")
            .clone();
        let (stock, reserved) = (cup["stock"].as_i64(), cup["reserved"].as_i64());
        assert_eq!(
            cup["available"].as_i64(),
            Some(stock.unwrap_or(0) - reserved.unwrap_or(0))
        );
        (stock.expect("stock"), reserved.expect("reserved"))
    }

    /// The shop's order once its state is `state` (panics after [`WAIT`]).
    pub async fn wait_order_state(&self, order_id: &str, state: &str) -> Value {
        let path = format!("/orders/{order_id}");
        let (ok, order) = poll(
            || self.shop(reqwest::Method::GET, &path, None),
            |(_, o)| o["state"] == state,
        )
        .await;
        assert!(ok, "order {order_id} did not become {state}: {order:?}");
        order.1
    }

    /// The buyer pays cashdesk's order at the sandbox (what
    /// `wx.requestPayment` does in WeChat).
    pub async fn sandbox_pay(&self, gateway_order_id: &str) {
        let resp = self
            .http
            .post(format!("{}/sandbox/api/pay", self.sandbox_url))
            .json(&json!({"channelType": "wx-pay", "outTradeNo": gateway_order_id, "result": "SUCCESS"}))
            .send()
            .await
            .expect("sandbox answers");
        let status = resp.status().as_u16();
        assert_eq!(status, 200, "{:?}", resp.text().await);
    }

    /// cashdesk's notifications of its order, as the operator lists them,
    /// once one of `notify_type` is delivered.
    pub async fn delivered(&self, gateway_order_id: &str, notify_type: &str) -> Value {
        let (ok, list) = poll(
            || async {
                self.admin
                    .list_notifications(&NotificationQuery {
                        order_id: Some(gateway_order_id.to_owned()),
                        ..NotificationQuery::default()
                    })
                    .await
                    .expect("list notifications")
            },
            |l: &Value| {
                l.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|n| n["notifyType"] == notify_type && n["state"] == "DELIVERED")
                })
            },
        )
        .await;
        assert!(ok, "no delivered {notify_type}: {list}");
        list.as_array()
            .and_then(|a| a.iter().find(|n| n["notifyType"] == notify_type).cloned())
            .expect("the notification")
    }

    /// `(deliveries, applied)` the shop logged for a notifyId, once it has
    /// seen it at least `deliveries` times.
    pub async fn shop_saw(&self, notify_id: &str, deliveries: i64) -> (i64, bool) {
        let (ok, seen) = poll(
            || async { self.db.notification(notify_id).await.expect("read log") },
            |s| s.is_some_and(|(d, _)| d >= deliveries),
        )
        .await;
        assert!(
            ok,
            "the shop saw {notify_id} {seen:?}, wanted {deliveries} deliveries"
        );
        seen.expect("seen")
    }
}

/// Calls `read` until `done` holds (or [`WAIT`] passes): `(held?, last)`.
pub async fn poll<T, F, Fut>(mut read: F, done: impl Fn(&T) -> bool) -> (bool, T)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = read().await;
        if done(&v) || tokio::time::Instant::now() > deadline {
            return (done(&v), v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
