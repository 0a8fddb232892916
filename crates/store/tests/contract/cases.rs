//! The contract: what every `Store` backend must do. Each case takes a
//! fresh database and talks to it only through `Arc<dyn Store>` (except
//! `corrupt_rows_are_errors`, which plants a bad row with raw SQL).

use std::collections::HashSet;
use std::sync::Arc;

use cashdesk_core::{
    AppId, BindingId, BindingState, ChannelId, ChannelType, ConfigId, Fen, NotifyUrl, OrderId,
    OrderState, OutTradeNo, SceneCode, SignType, StoreId,
};
use cashdesk_store::{
    App, AppSettingsUpdate, AuditEntry, Binding, BindingFilter, Channel, ChannelConfig, Inserted,
    NewOrder, Order, OrderChannel, OrderFilter, OrderTransition, Store, StoreError,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tokio::task::JoinSet;

use crate::harness::{TestDb, TransitionOrder};

mod accounts;
mod outbox;
mod polling;
mod recon;
mod recon_queries;
mod refunds;
mod scopes;
mod stores;
mod timeline;

pub use accounts::*;
pub use outbox::*;
pub use polling::*;
pub use recon::*;
pub use recon_queries::*;
pub use refunds::*;
pub use scopes::*;
pub use stores::*;
pub use timeline::*;

/// How many tasks race in the concurrency cases.
const RACERS: usize = 16;

/// Stored times keep microseconds; test times are built at that precision
/// so round trips compare equal.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 30, 0).unwrap() + Duration::microseconds(123_456)
}

fn app_id(s: &str) -> AppId {
    AppId::parse(s).unwrap()
}

fn store_id(s: &str) -> StoreId {
    StoreId::parse(s).unwrap()
}

/// A notify URL the cases store.
pub(crate) fn url(s: &str) -> NotifyUrl {
    NotifyUrl::parse("notifyUrl", s).expect("notify URL")
}

fn app(id: &str) -> App {
    App {
        app_id: app_id(id),
        app_name: format!("shop {id}"),
        sign_type: SignType::HmacSha256,
        app_key_sealed: vec![1, 2, 3, 0, 255],
        public_key_pem: None,
        notify_url: Some(url("https://shop.example.com/notify")),
        refund_review: false,
        auto_refund_paid_after_close: false,
        enabled: true,
        created_at: t0(),
        previous_key: None,
        key_confirmed: true,
        refund_applications: cashdesk_core::RefundApplicationPolicy::default(),
    }
}

fn config(enabled: bool) -> ChannelConfig {
    ChannelConfig {
        config_id: ConfigId::generate(),
        channel_type: ChannelType::WxPay,
        name: "wx main".into(),
        mch_id: "1900000109".into(),
        api_version: Some("v3".into()),
        credentials_sealed: vec![9; 40],
        base_url: None,
        enabled,
        created_at: t0(),
        credentials_updated_at: None,
    }
}

fn channel(config: &ChannelConfig, sort: i32, enabled: bool) -> Channel {
    Channel {
        channel_id: ChannelId::generate(),
        config_id: config.config_id.clone(),
        scene_code: SceneCode::Mini,
        channel_name: format!("channel sort {sort}"),
        sort,
        enabled,
        created_at: t0(),
    }
}

fn binding(app: &AppId, channel: &ChannelId, store: Option<&str>) -> Binding {
    Binding {
        binding_id: BindingId::generate(),
        app_id: app.clone(),
        channel_id: channel.clone(),
        store_id: store.map(store_id),
        state: BindingState::Pending,
        created_at: t0(),
        auto_approve_at: None,
        decided_at: None,
        decided_by: None,
    }
}

fn new_order(app: &AppId, out_trade_no: &str) -> NewOrder {
    NewOrder {
        order_id: OrderId::generate(),
        app_id: app.clone(),
        out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
        amount: Fen::parse_positive("amount", 1234).unwrap(),
        order_title: "title".into(),
        goods_desc: "goods".into(),
        third_party_user: "openid-1".into(),
        notify_url: Some(url("https://shop.example.com/n")),
        return_url: None,
        store_id: Some(store_id("s1")),
        attach: Some("a=1".into()),
        client_ip: Some("203.0.113.7".into()),
        token: format!("tok-{}", uuid::Uuid::new_v4().simple()),
        expire_at: t0() + Duration::minutes(30),
        request_hash: "hash-1".into(),
        response: json!({"orderId": "x", "channels": [1, 2]}),
        created_at: t0(),
    }
}

/// An app, an enabled config and an enabled channel.
async fn seed(store: &dyn Store) -> (App, ChannelConfig, Channel) {
    let a = app("app-1");
    store.insert_app(&a).await.unwrap();
    let c = config(true);
    store.insert_channel_config(&c).await.unwrap();
    let ch = channel(&c, 10, true);
    store.insert_channel(&ch).await.unwrap();
    (a, c, ch)
}

fn order_channel(config: &ChannelConfig, ch: &Channel) -> OrderChannel {
    OrderChannel {
        channel_id: ch.channel_id.clone(),
        channel_type: config.channel_type,
        config_id: config.config_id.clone(),
        mch_id: config.mch_id.clone(),
        scene_code: ch.scene_code,
    }
}

fn new_or_panic<T: std::fmt::Debug>(r: Inserted<T>) -> T {
    match r {
        Inserted::New(v) => v,
        other => panic!("expected New, got {other:?}"),
    }
}

fn existing_or_panic<T: std::fmt::Debug>(r: Inserted<T>) -> T {
    match r {
        Inserted::Existing(v) => v,
        other => panic!("expected Existing, got {other:?}"),
    }
}

/// Ids are time-ordered at millisecond resolution: wait for the next one.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

/// An order of `amount` fen moved to PAYING at `at` (with the seeded
/// channel).
async fn paying_order(
    store: &dyn Store,
    seeded: &(App, ChannelConfig, Channel),
    out_trade_no: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> Order {
    let (a, c, ch) = seeded;
    let mut o = new_order(&a.app_id, out_trade_no);
    o.amount = Fen::parse_positive("amount", amount).unwrap();
    o.expire_at = at + Duration::hours(2);
    let o = new_or_panic(store.insert_order(&o).await.unwrap());
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, at);
    t.channel = Some(order_channel(c, ch));
    store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap()
}

/// An order of `amount` fen, paid (SUCCESS).
async fn paid_order(
    store: &dyn Store,
    seeded: &(App, ChannelConfig, Channel),
    out_trade_no: &str,
    amount: i64,
) -> Order {
    let o = paying_order(store, seeded, out_trade_no, amount, t0()).await;
    let mut t = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t0());
    t.transaction_id = Some(format!("tx-{out_trade_no}"));
    t.pay_time = Some(t0());
    store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap()
}

fn new_notification(
    order: &Order,
    kind: cashdesk_store::NotifyType,
    refund: Option<&cashdesk_core::RefundId>,
) -> cashdesk_store::NewNotification {
    let notify_id = cashdesk_core::NotifyId::generate();
    cashdesk_store::NewNotification {
        body: json!({"notifyId": notify_id.as_str(), "notifyType": kind.as_str(),
                     "orderId": order.order_id.as_str(), "中": "文"})
        .to_string(),
        notify_id,
        app_id: order.app_id.clone(),
        order_id: order.order_id.clone(),
        refund_id: refund.cloned(),
        notify_type: kind,
        url: url("https://shop.example.com/notify?x=1"),
    }
}

fn new_refund(order: &Order, out_refund_no: &str, amount: i64) -> cashdesk_store::NewRefund {
    cashdesk_store::NewRefund {
        refund_id: cashdesk_core::RefundId::generate(),
        app_id: order.app_id.clone(),
        order_id: order.order_id.clone(),
        out_refund_no: cashdesk_core::OutRefundNo::parse(out_refund_no).unwrap(),
        amount: Fen::parse_positive("amount", amount).unwrap(),
        reason: Some("退货".into()),
        notify_url: Some(url("https://shop.example.com/refund-notify")),
        request_hash: format!("rh-{out_refund_no}-{amount}"),
        created_at: t0() + Duration::minutes(5),
    }
}

// ---------------------------------------------------------------------------

pub async fn migrate_twice_is_a_no_op(db: &TestDb) {
    let store = &*db.store;
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
    store.ping().await.unwrap();
    let a = app("app-1");
    store.insert_app(&a).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.get_app(&a.app_id).await.unwrap(), Some(a));
    store.ping().await.unwrap();
}

pub async fn settings_are_written_once(db: &TestDb) {
    let store = &*db.store;
    assert_eq!(store.get_setting("platform.key").await.unwrap(), None);
    assert_eq!(
        store
            .put_setting_if_absent("platform.key", "first")
            .await
            .unwrap(),
        "first"
    );
    assert_eq!(
        store
            .put_setting_if_absent("platform.key", "second")
            .await
            .unwrap(),
        "first"
    );
    assert_eq!(
        store.get_setting("platform.key").await.unwrap().as_deref(),
        Some("first")
    );
    assert_eq!(
        store.put_setting_if_absent("other", "x").await.unwrap(),
        "x"
    );
}

pub async fn settings_race_has_one_winner(db: &TestDb) {
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&db.store);
        set.spawn(async move {
            store
                .put_setting_if_absent("race", &format!("value-{i}"))
                .await
                .unwrap()
        });
    }
    let seen: HashSet<String> = set.join_all().await.into_iter().collect();
    assert_eq!(
        seen.len(),
        1,
        "every caller must see the same value: {seen:?}"
    );
    let stored = db.store.get_setting("race").await.unwrap().unwrap();
    assert!(seen.contains(&stored));
}

pub async fn nonces_refuse_replays_until_expiry(db: &TestDb) {
    let store = &*db.store;
    let (a, b) = (app_id("app-a"), app_id("app-b"));
    let t = t0();
    let exp = t + Duration::minutes(15);
    assert!(store.use_nonce(&a, "n1", t, exp).await.unwrap());
    assert!(
        !store.use_nonce(&a, "n1", t, exp).await.unwrap(),
        "replay accepted"
    );
    assert!(
        !store
            .use_nonce(
                &a,
                "n1",
                exp - Duration::microseconds(1),
                exp + Duration::minutes(15)
            )
            .await
            .unwrap()
    );
    // Nonces are per app.
    assert!(store.use_nonce(&b, "n1", t, exp).await.unwrap());
    assert!(store.use_nonce(&a, "n2", t, exp).await.unwrap());
    // An expired copy may be reused, and is then live again.
    let later = exp + Duration::seconds(1);
    assert!(
        store
            .use_nonce(&a, "n1", later, later + Duration::minutes(15))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_nonce(&a, "n1", later, later + Duration::minutes(15))
            .await
            .unwrap()
    );
    // Purge removes exactly the expired ones: (b,n1) and (a,n2) expire at
    // `exp`; (a,n1) was renewed.
    assert_eq!(store.purge_nonces(t).await.unwrap(), 0);
    assert_eq!(store.purge_nonces(later).await.unwrap(), 2);
    assert!(
        !store
            .use_nonce(&a, "n1", later, later + Duration::minutes(15))
            .await
            .unwrap()
    );
    assert!(
        store
            .use_nonce(&b, "n1", later, later + Duration::minutes(15))
            .await
            .unwrap()
    );
}

async fn race_nonce(stores: Vec<Arc<dyn Store>>) -> usize {
    let t = now();
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % stores.len()]);
        set.spawn(async move {
            store
                .use_nonce(&app_id("app-1"), "same-nonce", t, t + Duration::minutes(15))
                .await
                .unwrap()
        });
    }
    set.join_all()
        .await
        .into_iter()
        .filter(|fresh| *fresh)
        .count()
}

pub async fn nonce_race_has_one_winner(db: &TestDb) {
    assert_eq!(race_nonce(vec![Arc::clone(&db.store)]).await, 1);
}

pub async fn nonce_race_across_instances_has_one_winner(db: &TestDb) {
    let other = db.second_instance().await;
    assert_eq!(race_nonce(vec![Arc::clone(&db.store), other]).await, 1);
}

pub async fn apps_round_trip(db: &TestDb) {
    let store = &*db.store;
    let mut a = app("app-1");
    a.sign_type = SignType::Sm2;
    a.public_key_pem = Some("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n".into());
    a.refund_review = true;
    a.auto_refund_paid_after_close = true;
    let mut b = app("app-2");
    b.created_at = t0() + Duration::seconds(1);
    b.notify_url = None;
    store.insert_app(&b).await.unwrap();
    store.insert_app(&a).await.unwrap();
    assert_eq!(store.get_app(&a.app_id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_app(&app_id("nope")).await.unwrap(), None);
    assert_eq!(
        store.list_apps().await.unwrap(),
        vec![a.clone(), b.clone()],
        "oldest first"
    );

    let dup = store.insert_app(&a).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    assert!(store.set_app_enabled(&a.app_id, false).await.unwrap());
    assert!(!store.get_app(&a.app_id).await.unwrap().unwrap().enabled);
    assert!(
        store.get_app(&b.app_id).await.unwrap().unwrap().enabled,
        "other app untouched"
    );
    assert!(store.set_app_enabled(&a.app_id, true).await.unwrap());
    assert!(store.get_app(&a.app_id).await.unwrap().unwrap().enabled);
    assert!(!store.set_app_enabled(&app_id("nope"), false).await.unwrap());

    // Settings: only what the update names changes.
    let (updated, _) = store
        .update_app_settings(
            &b.app_id,
            &AppSettingsUpdate {
                auto_refund_paid_after_close: Some(true),
                ..AppSettingsUpdate::default()
            },
        )
        .await
        .unwrap()
        .expect("app exists");
    assert!(updated.auto_refund_paid_after_close);
    assert!(!updated.refund_review, "not named, not changed");
    assert_eq!(
        store.get_app(&b.app_id).await.unwrap(),
        Some(updated.clone())
    );
    let (updated, _) = store
        .update_app_settings(
            &b.app_id,
            &AppSettingsUpdate {
                refund_review: Some(true),
                auto_refund_paid_after_close: Some(false),
                notify_url: None,
                refund_applications: Some(cashdesk_core::RefundApplicationPolicy {
                    mode: cashdesk_core::RefundApplicationMode::Operator,
                    days: 3,
                    on_timeout: cashdesk_core::TimeoutDecision::Approve,
                }),
            },
        )
        .await
        .unwrap()
        .expect("app exists");
    assert!(updated.refund_review && !updated.auto_refund_paid_after_close);
    assert_eq!(
        store
            .update_app_settings(&b.app_id, &AppSettingsUpdate::default())
            .await
            .unwrap(),
        Some((updated, 0)),
        "an empty update changes nothing"
    );
    assert_eq!(
        store.get_app(&a.app_id).await.unwrap(),
        Some(a.clone()),
        "other app untouched"
    );
    assert_eq!(
        store
            .update_app_settings(&app_id("nope"), &AppSettingsUpdate::default())
            .await
            .unwrap(),
        None
    );
}

pub async fn configs_and_channels_round_trip(db: &TestDb) {
    let store = &*db.store;
    let c1 = config(true);
    let mut c2 = config(true);
    c2.channel_type = ChannelType::Lakala;
    c2.api_version = None;
    c2.base_url = Some("http://127.0.0.1:9000".into());
    store.insert_channel_config(&c1).await.unwrap();
    store.insert_channel_config(&c2).await.unwrap();
    assert_eq!(
        store.get_channel_config(&c2.config_id).await.unwrap(),
        Some(c2.clone())
    );
    assert_eq!(
        store
            .get_channel_config(&ConfigId::generate())
            .await
            .unwrap(),
        None
    );
    // Ids are time-ordered to the millisecond only: compare in id order.
    let mut configs = vec![c1.clone(), c2.clone()];
    configs.sort_by(|x, y| x.config_id.cmp(&y.config_id));
    assert_eq!(store.list_channel_configs().await.unwrap(), configs);
    assert!(matches!(
        store.insert_channel_config(&c1).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .set_channel_config_enabled(&c1.config_id, false)
            .await
            .unwrap()
    );
    assert!(
        !store
            .get_channel_config(&c1.config_id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert!(
        !store
            .set_channel_config_enabled(&ConfigId::generate(), false)
            .await
            .unwrap()
    );

    let h1 = channel(&c1, 5, true);
    let mut h2 = channel(&c2, -1, false);
    h2.scene_code = SceneCode::Native;
    store.insert_channel(&h1).await.unwrap();
    store.insert_channel(&h2).await.unwrap();
    assert_eq!(
        store.get_channel(&h2.channel_id).await.unwrap(),
        Some(h2.clone())
    );
    assert_eq!(
        store.get_channel(&ChannelId::generate()).await.unwrap(),
        None
    );
    let mut channels = vec![h1.clone(), h2.clone()];
    channels.sort_by(|x, y| x.channel_id.cmp(&y.channel_id));
    assert_eq!(store.list_channels().await.unwrap(), channels);
    assert!(matches!(
        store.insert_channel(&h1).await,
        Err(StoreError::Conflict(_))
    ));
    let orphan = channel(&config(true), 1, true);
    let r = store.insert_channel(&orphan).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert_eq!(store.get_channel(&orphan.channel_id).await.unwrap(), None);
    assert!(
        store
            .set_channel_enabled(&h2.channel_id, true)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_channel(&h2.channel_id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert!(
        !store
            .set_channel_enabled(&ChannelId::generate(), true)
            .await
            .unwrap()
    );
}

pub async fn bindings_are_unique_per_app_channel_store(db: &TestDb) {
    let store = &*db.store;
    let (a, _, ch) = seed(store).await;
    let other_app = app("app-2");
    store.insert_app(&other_app).await.unwrap();

    let wide = new_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, None))
            .await
            .unwrap(),
    );
    assert_eq!(wide.state, BindingState::Pending);
    assert_eq!(wide.store_id, None);
    assert_eq!(
        store.get_binding(&wide.binding_id).await.unwrap(),
        Some(wide.clone())
    );

    // Applying again (new id) returns the existing application.
    let again = existing_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, None))
            .await
            .unwrap(),
    );
    assert_eq!(again, wide);

    // A store binding is a different key from the app-wide one, and from
    // another store's.
    let s1 = new_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, Some("s1")))
            .await
            .unwrap(),
    );
    assert_eq!(s1.store_id, Some(store_id("s1")));
    let s2 = new_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, Some("s2")))
            .await
            .unwrap(),
    );
    let s1_again = existing_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, Some("s1")))
            .await
            .unwrap(),
    );
    assert_eq!(s1_again.binding_id, s1.binding_id);
    let other = new_or_panic(
        store
            .insert_binding(&binding(&other_app.app_id, &ch.channel_id, None))
            .await
            .unwrap(),
    );

    // Whatever its state, the existing binding is returned.
    store
        .decide_binding(&wide.binding_id, BindingState::Rejected, "op", t0())
        .await
        .unwrap()
        .unwrap();
    let rejected = existing_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, None))
            .await
            .unwrap(),
    );
    assert_eq!(rejected.binding_id, wide.binding_id);
    assert_eq!(rejected.state, BindingState::Rejected);

    // Unknown app or channel.
    let r = store
        .insert_binding(&binding(&app_id("ghost"), &ch.channel_id, None))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .insert_binding(&binding(&a.app_id, &ChannelId::generate(), None))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    // Duplicate id under another key.
    let mut dup = binding(&other_app.app_id, &ch.channel_id, Some("s9"));
    dup.binding_id = s2.binding_id.clone();
    assert!(matches!(
        store.insert_binding(&dup).await,
        Err(StoreError::Conflict(_))
    ));

    let ids = |v: Vec<Binding>| v.into_iter().map(|b| b.binding_id).collect::<Vec<_>>();
    let all = ids(store
        .list_bindings(&BindingFilter::default())
        .await
        .unwrap());
    let mut expected = vec![
        wide.binding_id.clone(),
        s1.binding_id.clone(),
        s2.binding_id.clone(),
        other.binding_id.clone(),
    ];
    expected.sort();
    assert_eq!(all, expected);
    let of_a = ids(store
        .list_bindings(&BindingFilter {
            app_id: Some(a.app_id.clone()),
            state: None,
            ..Default::default()
        })
        .await
        .unwrap());
    assert_eq!(of_a.len(), 3);
    assert!(!of_a.contains(&other.binding_id));
    let pending_of_a = ids(store
        .list_bindings(&BindingFilter {
            app_id: Some(a.app_id.clone()),
            state: Some(BindingState::Pending),
            ..Default::default()
        })
        .await
        .unwrap());
    assert_eq!(pending_of_a, {
        let mut v = vec![s1.binding_id.clone(), s2.binding_id.clone()];
        v.sort();
        v
    });
    let rejected_all = store
        .list_bindings(&BindingFilter {
            app_id: None,
            state: Some(BindingState::Rejected),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(rejected_all), vec![wide.binding_id]);
}

pub async fn decide_binding_is_compare_and_set(db: &TestDb) {
    let store = &*db.store;
    let (a, _, ch) = seed(store).await;
    let b = new_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, None))
            .await
            .unwrap(),
    );
    let t = t0() + Duration::hours(1);

    assert_eq!(
        store
            .decide_binding(&b.binding_id, BindingState::Pending, "op", t)
            .await
            .unwrap(),
        None
    );
    let approved = store
        .decide_binding(&b.binding_id, BindingState::Approved, "operator", t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.state, BindingState::Approved);
    assert_eq!(approved.decided_at, Some(t));
    assert_eq!(approved.decided_by.as_deref(), Some("operator"));
    assert_eq!(
        store.get_binding(&b.binding_id).await.unwrap(),
        Some(approved.clone())
    );
    // Decided bindings stay decided.
    assert_eq!(
        store
            .decide_binding(&b.binding_id, BindingState::Rejected, "x", t)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .decide_binding(&b.binding_id, BindingState::Approved, "x", t)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get_binding(&b.binding_id).await.unwrap(),
        Some(approved)
    );
    assert_eq!(
        store
            .decide_binding(&BindingId::generate(), BindingState::Approved, "x", t)
            .await
            .unwrap(),
        None
    );
}

pub async fn decide_binding_race_has_one_winner(db: &TestDb) {
    let (a, _, ch) = seed(&*db.store).await;
    let b = new_or_panic(
        db.store
            .insert_binding(&binding(&a.app_id, &ch.channel_id, None))
            .await
            .unwrap(),
    );
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&db.store);
        let id = b.binding_id.clone();
        let to = if i % 2 == 0 {
            BindingState::Approved
        } else {
            BindingState::Rejected
        };
        set.spawn(async move {
            store
                .decide_binding(&id, to, &format!("op-{i}"), now())
                .await
                .unwrap()
        });
    }
    let winners: Vec<Binding> = set.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        db.store.get_binding(&b.binding_id).await.unwrap().as_ref(),
        Some(&winners[0])
    );
}

pub async fn approve_due_bindings_approves_only_due_ones(db: &TestDb) {
    let store = &*db.store;
    let (a, c, ch) = seed(store).await;
    let ch2 = channel(&c, 20, true);
    let ch3 = channel(&c, 30, true);
    let ch4 = channel(&c, 40, true);
    for x in [&ch2, &ch3, &ch4] {
        store.insert_channel(x).await.unwrap();
    }
    let t = t0() + Duration::hours(2);
    let mut due = binding(&a.app_id, &ch.channel_id, None);
    due.auto_approve_at = Some(t - Duration::seconds(1));
    let mut exactly_due = binding(&a.app_id, &ch2.channel_id, None);
    exactly_due.auto_approve_at = Some(t);
    let mut not_yet = binding(&a.app_id, &ch3.channel_id, None);
    not_yet.auto_approve_at = Some(t + Duration::seconds(1));
    let manual = binding(&a.app_id, &ch4.channel_id, None);
    let mut rejected = binding(&a.app_id, &ch.channel_id, Some("s1"));
    rejected.auto_approve_at = Some(t - Duration::hours(1));
    for b in [&due, &exactly_due, &not_yet, &manual, &rejected] {
        new_or_panic(store.insert_binding(b).await.unwrap());
    }
    store
        .decide_binding(&rejected.binding_id, BindingState::Rejected, "op", t0())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(store.approve_due_bindings(t).await.unwrap(), 2);
    let state = |id: &BindingId| {
        let id = id.clone();
        async move { store.get_binding(&id).await.unwrap().unwrap() }
    };
    let d = state(&due.binding_id).await;
    assert_eq!(d.state, BindingState::Approved);
    assert_eq!(d.decided_at, Some(t));
    assert!(d.decided_by.is_some());
    assert_eq!(
        state(&exactly_due.binding_id).await.state,
        BindingState::Approved
    );
    assert_eq!(
        state(&not_yet.binding_id).await.state,
        BindingState::Pending
    );
    assert_eq!(state(&manual.binding_id).await.state, BindingState::Pending);
    let r = state(&rejected.binding_id).await;
    assert_eq!(
        (r.state, r.decided_by.as_deref()),
        (BindingState::Rejected, Some("op"))
    );
    // Nothing left to do.
    assert_eq!(store.approve_due_bindings(t).await.unwrap(), 0);
}

pub async fn bound_channels_lists_only_payable_bindings(db: &TestDb) {
    let store = &*db.store;
    let a = app("app-1");
    let other = app("app-2");
    store.insert_app(&a).await.unwrap();
    store.insert_app(&other).await.unwrap();
    let live = config(true);
    let dead = config(true);
    store.insert_channel_config(&live).await.unwrap();
    store.insert_channel_config(&dead).await.unwrap();

    let sort_20 = channel(&live, 20, true); // app-wide, approved
    let sort_10 = channel(&live, 10, true); // app-wide + store s1 binding, approved
    let sort_5_store = channel(&live, 5, true); // only for store s1
    let pending = channel(&live, 1, true); // binding pending
    let rejected = channel(&live, 2, true); // binding rejected
    let disabled = channel(&live, 3, true); // channel disabled later
    let dead_cfg = channel(&dead, 4, true); // config disabled later
    let other_app = channel(&live, 6, true); // bound to the other app only
    let tie_a = channel(&live, 30, true); // equal sort: channel id decides
    let tie_b = channel(&live, 30, true);
    let all = [
        &sort_20,
        &sort_10,
        &sort_5_store,
        &pending,
        &rejected,
        &disabled,
        &dead_cfg,
        &other_app,
        &tie_b,
        &tie_a,
    ];
    for ch in all {
        store.insert_channel(ch).await.unwrap();
    }
    let approve = |b: Binding| async move {
        let b = new_or_panic(store.insert_binding(&b).await.unwrap());
        store
            .decide_binding(&b.binding_id, BindingState::Approved, "op", t0())
            .await
            .unwrap()
            .unwrap()
    };
    let b20 = approve(binding(&a.app_id, &sort_20.channel_id, None)).await;
    let b10 = approve(binding(&a.app_id, &sort_10.channel_id, None)).await;
    let b10_s1 = approve(binding(&a.app_id, &sort_10.channel_id, Some("s1"))).await;
    let b5_s1 = approve(binding(&a.app_id, &sort_5_store.channel_id, Some("s1"))).await;
    new_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &pending.channel_id, None))
            .await
            .unwrap(),
    );
    let r = new_or_panic(
        store
            .insert_binding(&binding(&a.app_id, &rejected.channel_id, None))
            .await
            .unwrap(),
    );
    store
        .decide_binding(&r.binding_id, BindingState::Rejected, "op", t0())
        .await
        .unwrap()
        .unwrap();
    approve(binding(&a.app_id, &disabled.channel_id, None)).await;
    approve(binding(&a.app_id, &dead_cfg.channel_id, None)).await;
    approve(binding(&other.app_id, &other_app.channel_id, None)).await;
    let bta = approve(binding(&a.app_id, &tie_a.channel_id, None)).await;
    let btb = approve(binding(&a.app_id, &tie_b.channel_id, None)).await;

    // Before disabling: both show up.
    let before = store.bound_channels(&a.app_id, None).await.unwrap();
    assert!(
        before
            .iter()
            .any(|b| b.channel.channel_id == disabled.channel_id)
    );
    assert!(
        before
            .iter()
            .any(|b| b.channel.channel_id == dead_cfg.channel_id)
    );
    store
        .set_channel_enabled(&disabled.channel_id, false)
        .await
        .unwrap();
    store
        .set_channel_config_enabled(&dead.config_id, false)
        .await
        .unwrap();

    let ties = {
        let mut t = vec![bta.clone(), btb.clone()];
        t.sort_by(|x, y| x.channel_id.cmp(&y.channel_id));
        t
    };
    let bindings =
        |v: Vec<cashdesk_store::BoundChannel>| v.into_iter().map(|b| b.binding).collect::<Vec<_>>();

    // No store: app-wide bindings only, by sort then channel id.
    let no_store = store.bound_channels(&a.app_id, None).await.unwrap();
    let first = no_store[0].clone();
    assert_eq!(first.channel, sort_10);
    assert_eq!(first.config, live);
    assert_eq!(
        bindings(no_store),
        vec![b10.clone(), b20.clone(), ties[0].clone(), ties[1].clone()]
    );

    // Store s1: its own bindings, and its binding wins over the app-wide one.
    let s1 = bindings(
        store
            .bound_channels(&a.app_id, Some(&store_id("s1")))
            .await
            .unwrap(),
    );
    assert_eq!(
        s1,
        vec![b5_s1, b10_s1, b20.clone(), ties[0].clone(), ties[1].clone()]
    );

    // Another store falls back to the app-wide bindings.
    let s2 = bindings(
        store
            .bound_channels(&a.app_id, Some(&store_id("s2")))
            .await
            .unwrap(),
    );
    assert_eq!(s2, vec![b10, b20, ties[0].clone(), ties[1].clone()]);

    // Other apps see only their own; unknown apps nothing.
    let o = store.bound_channels(&other.app_id, None).await.unwrap();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].channel.channel_id, other_app.channel_id);
    assert!(
        store
            .bound_channels(&app_id("ghost"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

fn expected_order(o: &NewOrder) -> Order {
    Order {
        order_id: o.order_id.clone(),
        app_id: o.app_id.clone(),
        out_trade_no: o.out_trade_no.clone(),
        amount: o.amount,
        order_title: o.order_title.clone(),
        goods_desc: o.goods_desc.clone(),
        third_party_user: o.third_party_user.clone(),
        notify_url: o.notify_url.clone(),
        return_url: o.return_url.clone(),
        store_id: o.store_id.clone(),
        attach: o.attach.clone(),
        client_ip: o.client_ip.clone(),
        token: o.token.clone(),
        expire_at: o.expire_at,
        request_hash: o.request_hash.clone(),
        response: o.response.clone(),
        state: OrderState::Created,
        channel: None,
        transaction_id: None,
        pay_time: None,
        refunded_amount: Fen::ZERO,
        result_error_code: None,
        result_error_msg: None,
        paid_after_close: false,
        created_at: o.created_at,
        updated_at: o.created_at,
        next_query_at: None,
        query_attempts: 0,
        store_identity_sealed: None,
    }
}

pub async fn orders_insert_idempotently_and_look_up(db: &TestDb) {
    let store = &*db.store;
    let (a, _, _) = seed(store).await;
    let other = app("app-2");
    store.insert_app(&other).await.unwrap();

    let o = new_order(&a.app_id, "T-1");
    let created = new_or_panic(store.insert_order(&o).await.unwrap());
    assert_eq!(created, expected_order(&o));

    // Same (app, outTradeNo), another body: the original comes back.
    let mut retry = new_order(&a.app_id, "T-1");
    retry.amount = Fen::parse_positive("amount", 99).unwrap();
    retry.request_hash = "hash-2".into();
    let existing = existing_or_panic(store.insert_order(&retry).await.unwrap());
    assert_eq!(existing, created);
    assert_eq!(
        store.get_order(&retry.order_id).await.unwrap(),
        None,
        "the retry left no row"
    );

    assert_eq!(
        store.get_order(&o.order_id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store
            .get_order_by_out_trade_no(&a.app_id, &o.out_trade_no)
            .await
            .unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store
            .get_order_by_out_trade_no(&other.app_id, &o.out_trade_no)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get_order_by_token(&o.token).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.get_order_by_token("nope").await.unwrap(), None);
    assert_eq!(store.get_order(&OrderId::generate()).await.unwrap(), None);

    // The same outTradeNo under another app is another order.
    let mut minimal = new_order(&other.app_id, "T-1");
    minimal.notify_url = None;
    minimal.store_id = None;
    minimal.attach = None;
    minimal.client_ip = None;
    minimal.response = json!(null);
    let theirs = new_or_panic(store.insert_order(&minimal).await.unwrap());
    assert_eq!(theirs, expected_order(&minimal));

    // Token and order id are unique too.
    let mut same_token = new_order(&a.app_id, "T-2");
    same_token.token = o.token.clone();
    let r = store.insert_order(&same_token).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let mut same_id = new_order(&a.app_id, "T-3");
    same_id.order_id = o.order_id.clone();
    let r = store.insert_order(&same_id).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(
        store
            .get_order_by_out_trade_no(&a.app_id, &OutTradeNo::parse("T-2").unwrap())
            .await
            .unwrap(),
        None
    );

    // Unknown app.
    let r = store
        .insert_order(&new_order(&app_id("ghost"), "T-1"))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

pub async fn insert_order_race_has_one_winner(db: &TestDb) {
    seed(&*db.store).await;
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&db.store);
        set.spawn(async move {
            let mut o = new_order(&app_id("app-1"), "RACE-1");
            o.request_hash = format!("hash-{i}");
            store.insert_order(&o).await.unwrap()
        });
    }
    let results = set.join_all().await;
    let new: Vec<&Order> = results
        .iter()
        .filter_map(|r| {
            if let Inserted::New(o) = r {
                Some(o)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(new.len(), 1, "exactly one insert wins");
    for r in &results {
        let (Inserted::New(o) | Inserted::Existing(o)) = r;
        assert_eq!(o, new[0], "every caller sees the winner");
    }
    let page = db.store.list_orders(&OrderFilter::default()).await.unwrap();
    assert_eq!(page.len(), 1);
}

pub async fn transition_order_is_compare_and_set(db: &TestDb) {
    let store = &*db.store;
    let (a, c, ch) = seed(store).await;
    let ch2 = channel(&c, 2, true);
    store.insert_channel(&ch2).await.unwrap();
    let o = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "T-1"))
            .await
            .unwrap(),
    );
    let t1 = t0() + Duration::minutes(1);

    // Wrong source state: nothing changes.
    let t = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t1);
    assert_eq!(store.transition_order(&o.order_id, &t).await.unwrap(), None);
    assert_eq!(store.get_order(&o.order_id).await.unwrap(), Some(o.clone()));
    // Empty source list, unknown order: not applied.
    let t = OrderTransition::new(&[], OrderState::Paying, t1);
    assert_eq!(store.transition_order(&o.order_id, &t).await.unwrap(), None);
    let t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t1);
    assert_eq!(
        store
            .transition_order(&OrderId::generate(), &t)
            .await
            .unwrap(),
        None
    );

    // CREATED → PAYING with a channel.
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t1);
    t.channel = Some(order_channel(&c, &ch));
    let paying = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paying.state, OrderState::Paying);
    assert_eq!(paying.channel, t.channel);
    assert_eq!(paying.updated_at, t1);
    assert_eq!(paying.created_at, o.created_at);
    assert_eq!(
        store.get_order(&o.order_id).await.unwrap(),
        Some(paying.clone())
    );
    // A repeat of the same CAS loses.
    assert_eq!(store.transition_order(&o.order_id, &t).await.unwrap(), None);

    // PAYING → PAYING switches the channel; an error is recorded.
    let t2 = t1 + Duration::seconds(5);
    let mut t = OrderTransition::new(&[OrderState::Paying], OrderState::Paying, t2);
    t.channel = Some(order_channel(&c, &ch2));
    t.result_error_code = Some("ORDERPAID".into());
    t.result_error_msg = Some("already".into());
    let switched = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(switched.channel, t.channel);
    assert_eq!(switched.result_error_code.as_deref(), Some("ORDERPAID"));

    // PAYING → CLOSED leaves every other field as it was.
    let t3 = t2 + Duration::seconds(5);
    let t = OrderTransition::new(
        &[OrderState::Created, OrderState::Paying],
        OrderState::Closed,
        t3,
    );
    let closed = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        closed,
        Order {
            state: OrderState::Closed,
            updated_at: t3,
            ..switched.clone()
        }
    );

    // A late success for a closed order: SUCCESS, flagged.
    let t4 = t3 + Duration::seconds(5);
    let mut t = OrderTransition::new(
        &[OrderState::Created, OrderState::Paying, OrderState::Closed],
        OrderState::Success,
        t4,
    );
    t.transaction_id = Some("4200001234".into());
    t.pay_time = Some(t4 - Duration::seconds(1));
    t.paid_after_close = Some(true);
    let paid = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid.state, OrderState::Success);
    assert_eq!(paid.transaction_id.as_deref(), Some("4200001234"));
    assert_eq!(paid.pay_time, t.pay_time);
    assert!(paid.paid_after_close);
    assert_eq!(paid.channel, switched.channel, "channel kept");
    assert_eq!(
        paid.result_error_msg.as_deref(),
        Some("already"),
        "None leaves a field unchanged"
    );
    assert_eq!(
        store.get_order(&o.order_id).await.unwrap(),
        Some(paid.clone())
    );

    // A channel that does not exist.
    let mut t = OrderTransition::new(&[OrderState::Success], OrderState::Success, t4);
    t.channel = Some(OrderChannel {
        channel_id: ChannelId::generate(),
        ..order_channel(&c, &ch)
    });
    let r = store.transition_order(&o.order_id, &t).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert_eq!(store.get_order(&o.order_id).await.unwrap(), Some(paid));
}

pub async fn transition_order_race_has_one_winner(db: &TestDb) {
    let (a, c, ch) = seed(&*db.store).await;
    let o = new_or_panic(
        db.store
            .insert_order(&new_order(&a.app_id, "RACE-2"))
            .await
            .unwrap(),
    );
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t0());
    t.channel = Some(order_channel(&c, &ch));
    db.store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();

    // Racing notifications and an expiry: exactly one transition out of
    // PAYING happens.
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&db.store);
        let id = o.order_id.clone();
        set.spawn(async move {
            let to = if i % 3 == 0 {
                OrderState::Closed
            } else {
                OrderState::Success
            };
            let mut t = OrderTransition::new(&[OrderState::Created, OrderState::Paying], to, now());
            t.transaction_id = Some(format!("tx-{i}"));
            store.transition_order(&id, &t).await.unwrap()
        });
    }
    let winners: Vec<Order> = set.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        db.store.get_order(&o.order_id).await.unwrap().as_ref(),
        Some(&winners[0])
    );
}

pub async fn list_orders_filters_and_pages(db: &TestDb) {
    let store = &*db.store;
    let (a, _, _) = seed(store).await;
    let other = app("app-2");
    store.insert_app(&other).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let app = if i == 2 { &other.app_id } else { &a.app_id };
        let o = new_or_panic(
            store
                .insert_order(&new_order(app, &format!("L-{i}")))
                .await
                .unwrap(),
        );
        ids.push(o.order_id);
        // Ids are time-ordered at millisecond resolution.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let t = OrderTransition::new(&[OrderState::Created], OrderState::Closed, t0());
    store.transition_order(&ids[1], &t).await.unwrap().unwrap();
    store.transition_order(&ids[3], &t).await.unwrap().unwrap();

    let got = |f: OrderFilter| async move {
        store
            .list_orders(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>()
    };
    let rev = |idx: &[usize]| idx.iter().map(|i| ids[*i].clone()).collect::<Vec<_>>();
    assert_eq!(
        got(OrderFilter::default()).await,
        rev(&[4, 3, 2, 1, 0]),
        "newest first; 0 = default limit"
    );
    assert_eq!(
        got(OrderFilter {
            limit: 2,
            ..Default::default()
        })
        .await,
        rev(&[4, 3])
    );
    assert_eq!(
        got(OrderFilter {
            before: Some(ids[3].clone()),
            limit: 2,
            ..Default::default()
        })
        .await,
        rev(&[2, 1])
    );
    assert_eq!(
        got(OrderFilter {
            app_id: Some(a.app_id.clone()),
            ..Default::default()
        })
        .await,
        rev(&[4, 3, 1, 0])
    );
    assert_eq!(
        got(OrderFilter {
            state: Some(OrderState::Closed),
            ..Default::default()
        })
        .await,
        rev(&[3, 1])
    );
    assert_eq!(
        got(OrderFilter {
            app_id: Some(a.app_id.clone()),
            state: Some(OrderState::Created),
            before: Some(ids[4].clone()),
            limit: 10,
            ..Default::default()
        })
        .await,
        rev(&[0])
    );
    assert!(
        got(OrderFilter {
            app_id: Some(app_id("ghost")),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

pub async fn audit_is_listed_newest_first(db: &TestDb) {
    let store = &*db.store;
    assert!(store.list_audit(10).await.unwrap().is_empty());
    let entries: Vec<AuditEntry> = (0..4)
        .map(|i| AuditEntry {
            // Inserted out of time order on purpose: the list follows
            // insertion.
            at: t0() - Duration::seconds(i),
            actor: "operator".into(),
            action: format!("binding.approve.{i}"),
            target: format!("B{i}"),
            detail: json!({"i": i, "note": "中文"}),
            // Who, from where and what changed round-trip; entries
            // without them (the system's, older ones) read back as none.
            role: (i % 2 == 0).then(|| "operator".to_owned()),
            ip: (i % 2 == 0).then(|| "203.0.113.7".to_owned()),
            before: (i % 2 == 0).then(|| json!({"state": "PENDING"})),
            after: (i % 2 == 0).then(|| json!({"state": "APPROVED"})),
        })
        .collect();
    for e in &entries {
        store.insert_audit(e).await.unwrap();
    }
    let all = store.list_audit(0).await.unwrap();
    assert_eq!(all, entries.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(
        store.list_audit(2).await.unwrap(),
        vec![entries[3].clone(), entries[2].clone()]
    );
}

pub async fn corrupt_rows_are_errors(db: &TestDb) {
    let store = &*db.store;
    let (a, _, _) = seed(store).await;
    let o = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "BAD-1"))
            .await
            .unwrap(),
    );
    db.raw_execute(&format!(
        "UPDATE orders SET state = 'BOGUS' WHERE order_id = '{}'",
        o.order_id
    ))
    .await;
    let r = store.get_order(&o.order_id).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    let r = store.list_orders(&OrderFilter::default()).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    db.raw_execute("UPDATE apps SET sign_type = 'SHA1'").await;
    let r = store.get_app(&a.app_id).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
}
