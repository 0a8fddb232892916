//! Console accounts, API tokens and sessions.

use std::sync::Arc;

use cashdesk_core::{AccountId, AppId, Role, TokenId};
use cashdesk_store::{Account, AccountUpdate, ApiToken, AuditEntry, Session, Store, StoreError};
use chrono::Duration;
use serde_json::json;
use tokio::task::JoinSet;

use super::{now, seed};
use crate::harness::TestDb;

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        at: now(),
        actor: "root".into(),
        action: action.into(),
        target: target.into(),
        detail: json!({}),
        role: Some("admin".into()),
        ip: Some("198.51.100.4".into()),
        before: None,
        after: Some(json!({"username": target})),
    }
}

fn account(username: &str, role: Role, apps: Vec<AppId>) -> Account {
    Account {
        account_id: AccountId::generate(),
        username: username.into(),
        role,
        apps,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        totp_sealed: None,
        totp_enabled: false,
        disabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: now(),
        updated_at: now(),
    }
}

pub async fn accounts_round_trip_with_their_audit(db: &TestDb) {
    let store = &*db.store;
    let (app, _, _) = seed(store).await;
    let m = account("shop.staff", Role::Merchant, vec![app.app_id.clone()]);
    store
        .create_account(&m, &audit("account.create", "shop.staff"))
        .await
        .unwrap();
    assert_eq!(
        store.get_account(&m.account_id).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(
        store.find_account("shop.staff").await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(store.find_account("Shop.Staff").await.unwrap(), None);
    // A taken username is a conflict, and its audit entry is not written.
    let before = store.list_audit(100).await.unwrap().len();
    let dup = account("shop.staff", Role::Admin, vec![]);
    assert!(matches!(
        store
            .create_account(&dup, &audit("account.create", "dup"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_audit(100).await.unwrap().len(), before);
    let a = account("alice", Role::Admin, vec![]);
    store
        .create_account(&a, &audit("account.create", "alice"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["alice", "shop.staff"]);
    let last = store.list_audit(1).await.unwrap().remove(0);
    assert_eq!(
        (last.role.as_deref(), last.ip.as_deref()),
        (Some("admin"), Some("198.51.100.4"))
    );
}

pub async fn account_changes_end_sessions_and_are_audited(db: &TestDb) {
    let store = &*db.store;
    let a = account("bob", Role::Operator, vec![]);
    store
        .create_account(&a, &audit("account.create", "bob"))
        .await
        .unwrap();
    let session = Session {
        account_id: a.account_id.clone(),
        csrf: "c".into(),
        ip: None,
        created_at: now(),
        last_seen_at: now(),
    };
    store.create_session("h1", &session).await.unwrap();
    // TOTP on: sessions stay.
    let u = AccountUpdate {
        totp: Some(Some((vec![1, 2, 3], true))),
        ..AccountUpdate::default()
    };
    let b = store
        .update_account(&a.account_id, &u, now(), &audit("account.totp", "bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.totp_sealed.as_deref(), b.totp_enabled),
        (Some(&[1u8, 2, 3][..]), true)
    );
    assert!(store.get_session("h1").await.unwrap().is_some());
    // A new role ends them.
    let u = AccountUpdate {
        role: Some(Role::Finance),
        ..AccountUpdate::default()
    };
    let b = store
        .update_account(&a.account_id, &u, now(), &audit("account.update", "bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.role, Role::Finance);
    assert!(store.get_session("h1").await.unwrap().is_none());
    let u = AccountUpdate {
        totp: Some(None),
        ..AccountUpdate::default()
    };
    let b = store
        .update_account(&a.account_id, &u, now(), &audit("account.totp", "bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.totp_sealed, b.totp_enabled), (None, false));
    assert_eq!(
        store
            .update_account(&AccountId::generate(), &u, now(), &audit("x", "y"))
            .await
            .unwrap(),
        None
    );
}

pub async fn login_failures_lock_and_race_without_losing_a_count(db: &TestDb) {
    let a = account("carol", Role::Finance, vec![]);
    db.store
        .create_account(&a, &audit("account.create", "carol"))
        .await
        .unwrap();
    let until = now() + Duration::minutes(15);
    let stores: [Arc<dyn Store>; 2] = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&stores[i % 2]);
        let id = a.account_id.clone();
        set.spawn(async move { store.record_login_failure(&id, 5, until).await.unwrap() });
    }
    let mut counts = Vec::new();
    while let Some(r) = set.join_next().await {
        let (n, locked) = r.unwrap();
        assert_eq!(locked.is_some(), n >= 5, "{n}");
        counts.push(n);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=8).collect::<Vec<_>>());
    let locked = db.store.get_account(&a.account_id).await.unwrap().unwrap();
    assert_eq!(
        (locked.failed_logins, locked.locked_until),
        (8, Some(until))
    );
    db.store.record_login_success(&a.account_id).await.unwrap();
    let clear = db.store.get_account(&a.account_id).await.unwrap().unwrap();
    assert_eq!((clear.failed_logins, clear.locked_until), (0, None));
}

pub async fn tokens_are_found_by_hash_until_revoked(db: &TestDb) {
    let store = &*db.store;
    let a = account("dave", Role::Auditor, vec![]);
    store
        .create_account(&a, &audit("account.create", "dave"))
        .await
        .unwrap();
    let t = ApiToken {
        token_id: TokenId::generate(),
        account_id: a.account_id.clone(),
        name: "ci".into(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    store
        .create_token(&t, "hash-1", &audit("token.create", "ci"))
        .await
        .unwrap();
    let (found, owner) = store.find_token("hash-1").await.unwrap().unwrap();
    assert_eq!((found, owner.username.as_str()), (t.clone(), "dave"));
    assert!(store.find_token("hash-2").await.unwrap().is_none());
    let used = now();
    store.touch_token(&t.token_id, used).await.unwrap();
    assert_eq!(
        store
            .get_token(&t.token_id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(used)
    );
    assert!(
        store
            .revoke_token(&t.token_id, now(), &audit("token.revoke", "ci"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_token(&t.token_id, now(), &audit("token.revoke", "ci"))
            .await
            .unwrap()
    );
    assert!(store.find_token("hash-1").await.unwrap().is_none());
    let listed = store.list_tokens(&a.account_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
}

pub async fn sessions_expire_by_idle_and_absolute_time(db: &TestDb) {
    let store = &*db.store;
    let a = account("erin", Role::Admin, vec![]);
    store
        .create_account(&a, &audit("account.create", "erin"))
        .await
        .unwrap();
    let t = now();
    let s = |created, seen| Session {
        account_id: a.account_id.clone(),
        csrf: "token".into(),
        ip: Some("127.0.0.1".into()),
        created_at: created,
        last_seen_at: seen,
    };
    store.create_session("fresh", &s(t, t)).await.unwrap();
    store
        .create_session("idle", &s(t, t - Duration::hours(1)))
        .await
        .unwrap();
    store
        .create_session("old", &s(t - Duration::hours(13), t))
        .await
        .unwrap();
    assert_eq!(store.get_session("fresh").await.unwrap(), Some(s(t, t)));
    let later = t + Duration::seconds(5);
    store.touch_session("fresh", later).await.unwrap();
    assert_eq!(
        store
            .get_session("fresh")
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );
    let purged = store
        .purge_sessions(t - Duration::minutes(30), t - Duration::hours(12))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert!(store.get_session("idle").await.unwrap().is_none());
    assert!(store.get_session("old").await.unwrap().is_none());
    store.delete_session("fresh").await.unwrap();
    assert!(store.get_session("fresh").await.unwrap().is_none());
}

/// Mini-program tokens (issue 17 §1): racing refresh claims from two
/// instances, one wins; the token and its expiry round-trip; a refused
/// token is forgotten only if it is still the stored one, and forces the
/// next refresh; an expired lease can be taken again.
pub async fn mp_token_refresh_is_claimed_once(db: &TestDb) {
    let t = now();
    let stores: [Arc<dyn Store>; 2] = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&stores[i % 2]);
        set.spawn(async move {
            store
                .claim_mp_token_refresh(
                    "wxapp1",
                    &format!("owner{i}"),
                    t,
                    t + Duration::seconds(15),
                )
                .await
                .unwrap()
        });
    }
    let mut won = 0;
    while let Some(r) = set.join_next().await {
        won += usize::from(r.unwrap());
    }
    assert_eq!(won, 1, "one refresh in flight");
    let row = db.store.get_mp_token("wxapp1").await.unwrap().unwrap();
    assert!(row.token_sealed.is_none() && row.refresh_until.is_some());
    // Stored: the lease is free again, the token kept.
    let expires = t + Duration::seconds(7200);
    db.store
        .store_mp_token("wxapp1", b"sealed-1", expires, t)
        .await
        .unwrap();
    let row = db.store.get_mp_token("wxapp1").await.unwrap().unwrap();
    assert_eq!(
        (
            row.token_sealed.as_deref(),
            row.expires_at,
            row.refresh_owner,
            row.force_refresh
        ),
        (Some(&b"sealed-1"[..]), Some(expires), None, false)
    );
    // Forgetting another token changes nothing; this one clears it.
    db.store
        .forget_mp_token("wxapp1", b"sealed-0", t)
        .await
        .unwrap();
    assert!(
        db.store
            .get_mp_token("wxapp1")
            .await
            .unwrap()
            .unwrap()
            .token_sealed
            .is_some()
    );
    db.store
        .forget_mp_token("wxapp1", b"sealed-1", t)
        .await
        .unwrap();
    let row = db.store.get_mp_token("wxapp1").await.unwrap().unwrap();
    assert_eq!((row.token_sealed, row.force_refresh), (None, true));
    // A lease held is refused until it runs out; released, it is free.
    assert!(
        db.store
            .claim_mp_token_refresh("wxapp1", "a", t, t + Duration::seconds(15))
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .claim_mp_token_refresh(
                "wxapp1",
                "b",
                t + Duration::seconds(5),
                t + Duration::seconds(20)
            )
            .await
            .unwrap()
    );
    assert!(
        db.store
            .claim_mp_token_refresh(
                "wxapp1",
                "b",
                t + Duration::seconds(16),
                t + Duration::seconds(31)
            )
            .await
            .unwrap()
    );
    db.store
        .release_mp_token_refresh("wxapp1", "a")
        .await
        .unwrap();
    assert_eq!(
        db.store
            .get_mp_token("wxapp1")
            .await
            .unwrap()
            .unwrap()
            .refresh_owner
            .as_deref(),
        Some("b"),
        "only the owner releases"
    );
    db.store
        .release_mp_token_refresh("wxapp1", "b")
        .await
        .unwrap();
    assert!(
        db.store
            .claim_mp_token_refresh(
                "wxapp1",
                "c",
                t + Duration::seconds(17),
                t + Duration::seconds(32)
            )
            .await
            .unwrap()
    );
}
