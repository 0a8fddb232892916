//! Stores of an app, their merchant identities per channel config, and
//! the identity an order keeps once it is paying.

use std::sync::Arc;

use cashdesk_core::{ConfigId, OrderState};
use cashdesk_store::{
    MerchantStore, OrderFilter, OrderTransition, Store, StoreError, StoreIdentity, StoreUpdate,
};
use chrono::Duration;
use tokio::task::JoinSet;

use super::{
    RACERS, app, app_id, config, new_or_panic, new_order, order_channel, seed, store_id, t0,
};
use crate::harness::{TestDb, TransitionOrder};

fn shop(app: &str, id: &str) -> MerchantStore {
    MerchantStore {
        app_id: app_id(app),
        store_id: store_id(id),
        name: format!("门店 {id}"),
        enabled: true,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn identity(s: &MerchantStore, config_id: &ConfigId, mch_id: &str) -> StoreIdentity {
    StoreIdentity {
        app_id: s.app_id.clone(),
        store_id: s.store_id.clone(),
        config_id: config_id.clone(),
        mch_id: mch_id.to_owned(),
        identity_sealed: format!("sealed {mch_id}").into_bytes(),
        created_at: t0(),
        updated_at: t0(),
    }
}

pub async fn stores_belong_to_an_app(db: &TestDb) {
    let store = &*db.store;
    store.insert_app(&app("app-1")).await.unwrap();
    store.insert_app(&app("app-2")).await.unwrap();
    let (b, a, other) = (
        shop("app-1", "S-b"),
        shop("app-1", "S-a"),
        shop("app-2", "S-a"),
    );
    for s in [&b, &a, &other] {
        store.insert_store(s).await.unwrap();
    }
    assert_eq!(
        store.get_store(&a.app_id, &a.store_id).await.unwrap(),
        Some(a.clone())
    );
    // The same store id in another app is another store.
    assert_eq!(
        store
            .get_store(&other.app_id, &other.store_id)
            .await
            .unwrap(),
        Some(other.clone())
    );
    assert_eq!(
        store.get_store(&a.app_id, &store_id("S-zz")).await.unwrap(),
        None
    );
    assert_eq!(
        store.list_stores(Some(&a.app_id)).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        store.list_stores(None).await.unwrap(),
        vec![a.clone(), b.clone(), other.clone()]
    );
    assert!(
        store
            .list_stores(Some(&app_id("ghost")))
            .await
            .unwrap()
            .is_empty()
    );

    let dup = store.insert_store(&a).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let orphan = store.insert_store(&shop("ghost", "S-1")).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");

    let t1 = t0() + Duration::minutes(3);
    let disabled = store
        .update_store(
            &a.app_id,
            &a.store_id,
            &StoreUpdate {
                enabled: Some(false),
                ..StoreUpdate::default()
            },
            t1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (disabled.enabled, disabled.name.as_str()),
        (false, "门店 S-a")
    );
    assert_eq!((disabled.created_at, disabled.updated_at), (t0(), t1));
    let renamed = store
        .update_store(
            &a.app_id,
            &a.store_id,
            &StoreUpdate {
                name: Some("Flagship".into()),
                ..StoreUpdate::default()
            },
            t1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.enabled, renamed.name.as_str()),
        (false, "Flagship")
    );
    assert_eq!(
        store.get_store(&a.app_id, &a.store_id).await.unwrap(),
        Some(renamed)
    );
    assert!(
        store
            .get_store(&other.app_id, &other.store_id)
            .await
            .unwrap()
            .unwrap()
            .enabled,
        "the same store id of another app is untouched"
    );
    assert_eq!(
        store
            .update_store(&a.app_id, &store_id("S-zz"), &StoreUpdate::default(), t1)
            .await
            .unwrap(),
        None
    );
}

pub async fn store_identities_round_trip(db: &TestDb) {
    let store = &*db.store;
    let (a, c1, _) = seed(store).await;
    let c2 = config(true);
    store.insert_channel_config(&c2).await.unwrap();
    let (s1, s2) = (shop("app-1", "S-1"), shop("app-1", "S-2"));
    store.insert_store(&s1).await.unwrap();
    store.insert_store(&s2).await.unwrap();

    // Unknown store or config: NotFound, nothing written.
    let ghost_store = store
        .put_store_identity(&identity(&shop("app-1", "S-9"), &c1.config_id, "m"))
        .await;
    assert!(
        matches!(ghost_store, Err(StoreError::NotFound(_))),
        "{ghost_store:?}"
    );
    let ghost_config = store
        .put_store_identity(&identity(&s1, &ConfigId::generate(), "m"))
        .await;
    assert!(
        matches!(ghost_config, Err(StoreError::NotFound(_))),
        "{ghost_config:?}"
    );

    let i2 = store
        .put_store_identity(&identity(&s1, &c2.config_id, "sub-2"))
        .await
        .unwrap();
    let i1 = store
        .put_store_identity(&identity(&s1, &c1.config_id, "sub-1"))
        .await
        .unwrap();
    assert_eq!(i1, identity(&s1, &c1.config_id, "sub-1"));
    let other = store
        .put_store_identity(&identity(&s2, &c1.config_id, "sub-other"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_store_identity(&a.app_id, &s1.store_id, &c1.config_id)
            .await
            .unwrap(),
        Some(i1.clone())
    );
    let mut by_config = vec![i1.clone(), i2.clone()];
    by_config.sort_by(|x, y| x.config_id.cmp(&y.config_id));
    assert_eq!(
        store
            .list_store_identities(&a.app_id, &s1.store_id)
            .await
            .unwrap(),
        by_config
    );

    // A second put replaces the fields and keeps created_at.
    let t1 = t0() + Duration::hours(1);
    let mut replacement = identity(&s1, &c1.config_id, "sub-1b");
    replacement.created_at = t1;
    replacement.updated_at = t1;
    let replaced = store.put_store_identity(&replacement).await.unwrap();
    assert_eq!(
        (
            replaced.mch_id.as_str(),
            replaced.identity_sealed.as_slice(),
            replaced.created_at,
            replaced.updated_at
        ),
        ("sub-1b", b"sealed sub-1b".as_slice(), t0(), t1)
    );
    assert_eq!(
        store
            .list_store_identities(&a.app_id, &s1.store_id)
            .await
            .unwrap()
            .len(),
        2
    );

    assert!(
        store
            .delete_store_identity(&a.app_id, &s1.store_id, &c1.config_id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_store_identity(&a.app_id, &s1.store_id, &c1.config_id)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_store_identity(&a.app_id, &s1.store_id, &c1.config_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_store_identity(&a.app_id, &s2.store_id, &c1.config_id)
            .await
            .unwrap(),
        Some(other),
        "another store's identity at the same config is untouched"
    );
}

pub async fn store_identity_puts_race_to_one_row(db: &TestDb) {
    let (_, c, _) = seed(&*db.store).await;
    let s = shop("app-1", "S-1");
    db.store.insert_store(&s).await.unwrap();
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store: Arc<dyn Store> = db.store.clone();
        let id = identity(&s, &c.config_id, &format!("sub-{i}"));
        set.spawn(async move { store.put_store_identity(&id).await });
    }
    let mut written = Vec::new();
    while let Some(r) = set.join_next().await {
        written.push(r.unwrap().unwrap().mch_id);
    }
    let rows = db
        .store
        .list_store_identities(&s.app_id, &s.store_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(written.contains(&rows[0].mch_id));
}

pub async fn orders_keep_the_identity_they_are_paid_with(db: &TestDb) {
    let store = &*db.store;
    let (a, c, ch) = seed(store).await;
    let t1 = t0() + Duration::minutes(1);
    let o = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "I-1"))
            .await
            .unwrap(),
    );
    assert_eq!(o.store_identity_sealed, None);

    // A transition without the channel cannot set it.
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Created, t1);
    t.store_identity_sealed = Some(b"ignored".to_vec());
    let same = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same.store_identity_sealed, None);

    // CREATED → PAYING with the channel and the store's identity.
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t1);
    t.channel = Some(order_channel(&c, &ch));
    t.store_identity_sealed = Some(b"sealed sub-1".to_vec());
    let paying = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        paying.store_identity_sealed.as_deref(),
        Some(b"sealed sub-1".as_slice())
    );
    // Later transitions keep it.
    let mut t = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t1);
    t.transaction_id = Some("tx-1".into());
    let paid = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid.store_identity_sealed, paying.store_identity_sealed);
    assert_eq!(store.get_order(&o.order_id).await.unwrap(), Some(paid));

    // The channel written again without an identity: the config's own
    // account, so the copy goes.
    let o2 = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "I-2"))
            .await
            .unwrap(),
    );
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t1);
    t.channel = Some(order_channel(&c, &ch));
    t.store_identity_sealed = Some(b"x".to_vec());
    store
        .transition_order(&o2.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    let mut t = OrderTransition::new(&[OrderState::Paying], OrderState::Paying, t1);
    t.channel = Some(order_channel(&c, &ch));
    let again = store
        .transition_order(&o2.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.store_identity_sealed, None);
}

pub async fn list_orders_filters_by_store(db: &TestDb) {
    let store = &*db.store;
    let (a, _, _) = seed(store).await;
    let other = app("app-2");
    store.insert_app(&other).await.unwrap();
    let mut ids = Vec::new();
    for (i, (app, st)) in [
        (&a.app_id, Some("S-1")),
        (&a.app_id, Some("S-2")),
        (&a.app_id, None),
        (&other.app_id, Some("S-1")),
        (&a.app_id, Some("S-1")),
    ]
    .into_iter()
    .enumerate()
    {
        let mut o = new_order(app, &format!("F-{i}"));
        o.store_id = st.map(store_id);
        ids.push(new_or_panic(store.insert_order(&o).await.unwrap()).order_id);
        super::tick().await;
    }
    let got = |f: OrderFilter| async move {
        store
            .list_orders(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got(OrderFilter {
            app_id: Some(a.app_id.clone()),
            store_id: Some(store_id("S-1")),
            ..OrderFilter::default()
        })
        .await,
        vec![ids[4].clone(), ids[0].clone()]
    );
    assert_eq!(
        got(OrderFilter {
            store_id: Some(store_id("S-1")),
            ..OrderFilter::default()
        })
        .await,
        vec![ids[4].clone(), ids[3].clone(), ids[0].clone()],
        "every app's store S-1 without appId"
    );
    assert!(
        got(OrderFilter {
            store_id: Some(store_id("S-9")),
            ..OrderFilter::default()
        })
        .await
        .is_empty()
    );
}
