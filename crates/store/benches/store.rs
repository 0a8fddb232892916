//! Micro-benchmarks of the store's order writes on both backends: what one
//! order costs the database on the payment path, one caller at a time (the
//! latency of a single write with all of its guarantees; throughput under
//! concurrent load is `cashdesk bench`'s job).
//!
//! - `store_<backend>/insert_order`: a new order (the unified-order path);
//! - `store_<backend>/created_to_paying`: CREATED → PAYING with the channel
//!   and the poller's first query time (the payment path);
//! - `store_<backend>/paying_to_success`: PAYING → SUCCESS with the
//!   transaction id and pay time (a channel notification);
//! - `store_<backend>/paying_to_success_outbox`: the same through
//!   `transition_order_notify`, with the merchant notification written in
//!   the same transaction (what the server really does on success).
//!
//! Each is a compare-and-set through the real [`connect`]: SQLite on a file
//! (WAL, `synchronous = FULL`: every commit is fsynced) in Cargo's
//! target tmp folder (a real disk, unlike a tmpfs `/tmp`); PostgreSQL on a
//! fresh database `cd_bench_<uuid>` made through
//! `CASHDESK_TEST_POSTGRES_URL` and dropped afterwards (skipped with a
//! message when the variable is unset). The rows an iteration needs (an
//! order in the right state) are made before its timer starts, and every
//! result is checked, so a failing write fails the run instead of being
//! timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cashdesk_core::{
    AppId, ChannelId, ChannelType, ConfigId, Fen, NotifyId, OrderId, OrderState, OutTradeNo,
    SceneCode, SignType, StoreId,
};
use cashdesk_store::{
    App, Channel, ChannelConfig, ConnectOptions, Inserted, NewNotification, NewOrder, NotifyType,
    Order, OrderChannel, OrderTransition, Store, connect,
};
use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection as _;
use tokio::runtime::Runtime;

const PG_ENV: &str = "CASHDESK_TEST_POSTGRES_URL";

/// A migrated store holding one app, channel config and channel.
struct BenchDb {
    store: Arc<dyn Store>,
    app_id: AppId,
    channel: OrderChannel,
    /// Makes out_trade_no and tokens unique within the database.
    counter: AtomicU64,
    _cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// What the server uses (`ConnectOptions::default()`).
fn options() -> ConnectOptions {
    ConnectOptions::default()
}

/// Stored times keep microseconds.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now)
}

impl BenchDb {
    async fn sqlite() -> BenchDb {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("cashdesk.db").display());
        let store = connect(&url, &options()).await.expect("open sqlite");
        Self::seeded(store, Cleanup::Sqlite(dir)).await
    }

    /// `None` (and a note on stderr) when no PostgreSQL URL is configured.
    async fn postgres() -> Option<BenchDb> {
        let Ok(admin_url) = std::env::var(PG_ENV) else {
            eprintln!("skipping the PostgreSQL store benchmarks: {PG_ENV} not set");
            return None;
        };
        let name = format!("cd_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create bench database");
        admin.close().await.ok();
        let cleanup = Cleanup::Postgres {
            admin_url: admin_url.clone(),
            name: name.clone(),
        };
        let mut url = url::Url::parse(&admin_url).expect("PostgreSQL URL");
        url.set_path(&name);
        let store = connect(url.as_str(), &options())
            .await
            .expect("open postgres");
        Some(Self::seeded(store, cleanup).await)
    }

    async fn seeded(store: Arc<dyn Store>, cleanup: Cleanup) -> BenchDb {
        store.migrate().await.expect("migrate");
        let t = now();
        let app_id = AppId::parse("bench-app").expect("app id");
        store
            .insert_app(&App {
                app_id: app_id.clone(),
                app_name: "bench shop".into(),
                sign_type: SignType::HmacSha256,
                app_key_sealed: vec![1; 57],
                public_key_pem: None,
                notify_url: cashdesk_core::NotifyUrl::parse(
                    "notifyUrl",
                    "https://shop.example.com/notify",
                )
                .ok(),
                refund_review: false,
                auto_refund_paid_after_close: false,
                enabled: true,
                created_at: t,
                previous_key: None,
                key_confirmed: true,
                refund_applications: cashdesk_core::RefundApplicationPolicy::default(),
            })
            .await
            .expect("insert app");
        let config = ChannelConfig {
            config_id: ConfigId::generate(),
            channel_type: ChannelType::WxPay,
            name: "wx main".into(),
            mch_id: "1900000109".into(),
            api_version: Some("v2".into()),
            credentials_sealed: vec![9; 120],
            base_url: None,
            enabled: true,
            created_at: t,
            credentials_updated_at: None,
        };
        store
            .insert_channel_config(&config)
            .await
            .expect("insert config");
        let channel = Channel {
            channel_id: ChannelId::generate(),
            config_id: config.config_id.clone(),
            scene_code: SceneCode::Mini,
            channel_name: "mini".into(),
            sort: 10,
            enabled: true,
            created_at: t,
        };
        store
            .insert_channel(&channel)
            .await
            .expect("insert channel");
        BenchDb {
            store,
            app_id,
            channel: OrderChannel {
                channel_id: channel.channel_id,
                channel_type: config.channel_type,
                config_id: config.config_id,
                mch_id: config.mch_id,
                scene_code: channel.scene_code,
            },
            counter: AtomicU64::new(0),
            _cleanup: cleanup,
        }
    }

    /// A unified order as the API stores it.
    fn new_order(&self) -> NewOrder {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = now();
        NewOrder {
            order_id: OrderId::generate(),
            app_id: self.app_id.clone(),
            out_trade_no: OutTradeNo::parse(&format!("BENCH{n:012}")).expect("out_trade_no"),
            amount: Fen::parse_positive("amount", 100).expect("amount"),
            order_title: "Image形象店-深圳腾大-QQ公仔".into(),
            goods_desc: "QQ公仔".into(),
            third_party_user: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
            notify_url: cashdesk_core::NotifyUrl::parse(
                "notifyUrl",
                "https://shop.example.com/notify",
            )
            .ok(),
            return_url: None,
            store_id: Some(StoreId::parse("S01").expect("store id")),
            attach: Some("a=1".into()),
            client_ip: Some("203.0.113.7".into()),
            token: format!("tok{n:012}{}", uuid::Uuid::new_v4().simple()),
            expire_at: t + chrono::Duration::minutes(30),
            request_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            response: serde_json::json!({"orderId": "x", "cashierUrl": "https://pay.example.com/c/x"}),
            created_at: t,
        }
    }

    async fn insert(&self, order: &NewOrder) -> Order {
        match self.store.insert_order(order).await.expect("insert_order") {
            Inserted::New(o) => o,
            Inserted::Existing(_) => panic!("order {} already existed", order.out_trade_no),
        }
    }

    fn to_paying(&self) -> OrderTransition {
        let t = now();
        let mut tr = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t);
        tr.channel = Some(self.channel.clone());
        tr.next_query_at = Some(t + chrono::Duration::seconds(10));
        tr
    }

    fn to_success(order: &Order) -> OrderTransition {
        let t = now();
        let mut tr = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t);
        tr.transaction_id = Some(format!("42000000{}", order.out_trade_no));
        tr.pay_time = Some(t);
        tr
    }

    async fn transition(&self, order: &Order, tr: &OrderTransition) {
        let done = self
            .store
            .transition_order_notify(&order.order_id, tr, None)
            .await
            .expect("transition_order_notify");
        assert_eq!(
            done.map(|(o, _)| o.state),
            Some(tr.to),
            "compare-and-set lost"
        );
    }

    /// `n` orders in CREATED (or PAYING), made before a timer starts.
    async fn orders(&self, n: u64, paying: bool) -> Vec<Order> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let o = self.insert(&self.new_order()).await;
            if paying {
                self.transition(&o, &self.to_paying()).await;
            }
            out.push(o);
        }
        out
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = self else {
            return;
        };
        let (admin_url, sql) = (
            admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        // Possibly inside a runtime: drop from a thread with its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                let done = sqlx::query(&sql).execute(&mut admin).await;
                admin.close().await.ok();
                done.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop bench database {name}");
        }
    }
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, db: &Arc<BenchDb>) {
    let mut g = c.benchmark_group(format!("store_{}", db.store.backend()));
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);

    g.bench_function("insert_order", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let db = db.clone();
            async move {
                let orders: Vec<NewOrder> = (0..iters).map(|_| db.new_order()).collect();
                let start = Instant::now();
                for o in &orders {
                    db.insert(o).await;
                }
                start.elapsed()
            }
        })
    });

    g.bench_function("created_to_paying", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let db = db.clone();
            async move {
                let orders = db.orders(iters, false).await;
                let tr = db.to_paying();
                let start = Instant::now();
                for o in &orders {
                    db.transition(o, &tr).await;
                }
                start.elapsed()
            }
        })
    });

    g.bench_function("paying_to_success", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let db = db.clone();
            async move {
                let orders = db.orders(iters, true).await;
                let trs: Vec<_> = orders.iter().map(BenchDb::to_success).collect();
                let start = Instant::now();
                for (o, tr) in orders.iter().zip(&trs) {
                    db.transition(o, tr).await;
                }
                start.elapsed()
            }
        })
    });

    g.bench_function("paying_to_success_outbox", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let db = db.clone();
            async move {
                let orders = db.orders(iters, true).await;
                let work: Vec<_> = orders
                    .iter()
                    .map(|o| {
                        let notify_id = NotifyId::generate();
                        let body = serde_json::json!({
                            "notifyId": notify_id.as_str(), "notifyType": "PAY_SUCCESS",
                            "orderId": o.order_id.as_str(), "outTradeNo": o.out_trade_no.as_str(),
                            "amount": 100, "state": "SUCCESS",
                        })
                        .to_string();
                        let n = NewNotification {
                            notify_id,
                            app_id: o.app_id.clone(),
                            order_id: o.order_id.clone(),
                            refund_id: None,
                            notify_type: NotifyType::PaySuccess,
                            url: cashdesk_core::NotifyUrl::parse(
                                "notifyUrl",
                                "https://shop.example.com/notify",
                            )
                            .expect("url"),
                            body,
                        };
                        (BenchDb::to_success(o), n)
                    })
                    .collect();
                let start = Instant::now();
                for (o, (tr, n)) in orders.iter().zip(&work) {
                    let done = db
                        .store
                        .transition_order_notify(&o.order_id, tr, Some(n))
                        .await
                        .expect("transition_order_notify");
                    assert!(
                        matches!(&done, Some((o, Some(_))) if o.state == OrderState::Success),
                        "compare-and-set with outbox lost"
                    );
                }
                start.elapsed()
            }
        })
    });
    g.finish();
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sqlite = Arc::new(rt.block_on(BenchDb::sqlite()));
    bench_backend(c, &rt, &sqlite);
    drop(sqlite);
    if let Some(pg) = rt.block_on(BenchDb::postgres()) {
        bench_backend(c, &rt, &Arc::new(pg));
    }
}

fn config() -> Criterion {
    // Short by default; command-line options still win.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = store_benches
}
criterion_main!(benches);
