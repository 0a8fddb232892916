//! Opening SQLite: URL forms, file creation, pragmas; and URLs no backend
//! takes.

use cashdesk_core::AppId;
use cashdesk_store::{ConnectOptions, StoreError, connect};
use chrono::{Duration, Utc};
use sqlx::{Connection, Row};

#[tokio::test]
async fn file_is_created_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    let store = connect(&url, &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert!(path.exists(), "database file created");

    // journal_mode is persistent in the file; a raw connection sees it.
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    raw.close().await.unwrap();

    // Foreign keys are enforced on the store's connections.
    let orphan = cashdesk_store::Channel {
        channel_id: cashdesk_core::ChannelId::generate(),
        config_id: cashdesk_core::ConfigId::generate(),
        scene_code: cashdesk_core::SceneCode::Native,
        channel_name: "x".into(),
        sort: 0,
        enabled: true,
        created_at: Utc::now(),
    };
    assert!(matches!(
        store.insert_channel(&orphan).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn url_without_slashes_and_reopen_keep_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("data.db").display());
    let app = AppId::parse("app-1").unwrap();
    let t = Utc::now();
    {
        let store = connect(&url, &ConnectOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        assert!(
            store
                .use_nonce(&app, "n", t, t + Duration::minutes(15))
                .await
                .unwrap()
        );
    }
    let store = connect(&url, &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    assert!(
        !store
            .use_nonce(&app, "n", t, t + Duration::minutes(15))
            .await
            .unwrap(),
        "nonce survived a reopen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_url_works_and_serialises_access() {
    let store = connect("sqlite::memory:", &ConnectOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.put_setting_if_absent("k", "v").await.unwrap(), "v");
    let t = Utc::now();
    let app = AppId::parse("app-1").unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        let app = app.clone();
        set.spawn(async move {
            store
                .use_nonce(&app, "n", t, t + Duration::minutes(1))
                .await
                .unwrap()
        });
    }
    assert_eq!(set.join_all().await.into_iter().filter(|x| *x).count(), 1);
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_echoing_credentials() {
    for url in [
        "mysql://root:hunter2@127.0.0.1/db",
        "redis://:hunter2@h",
        "cashdesk.db",
        "",
    ] {
        match connect(url, &ConnectOptions::default()).await {
            Err(e @ StoreError::UnsupportedUrl(_)) => {
                assert!(!e.to_string().contains("hunter2"), "{e}");
            }
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
}

#[tokio::test]
async fn missing_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("no/such/dir/x.db").display());
    let r = connect(&url, &ConnectOptions::default()).await;
    assert!(matches!(r, Err(StoreError::Database(_))));
}
