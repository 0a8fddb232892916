//! Operations: healthz, metrics, OpenAPI and docs, startup secrets and
//! their files, graceful shutdown, production mode (`CASHDESK_SANDBOX=false`).

use cashdesk_sdk::{HeaderMap, Method};
use cashdesk_server::{Application, Config};

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(
    healthz_metrics_openapi_docs,
    startup_creates_secrets_once,
    graceful_shutdown,
    sandbox_off_mounts_nothing_and_binds_no_demo_channels,
);

async fn healthz_metrics_openapi_docs(b: Backend) {
    let app = spawn_app(b).await;
    let resp = app
        .raw(Method::GET, "/healthz", b"", HeaderMap::new())
        .await;
    assert_eq!(resp.status.as_u16(), 200);
    assert_eq!(
        resp.json().expect("json"),
        serde_json::json!({"status": "ok", "db": "ok"})
    );

    app.client
        .create_order(&order(&otn(), 1))
        .await
        .expect("order");
    let resp = app
        .raw(Method::GET, "/metrics", b"", HeaderMap::new())
        .await;
    assert_eq!(resp.status.as_u16(), 200);
    let text = String::from_utf8(resp.body.clone()).expect("utf8");
    assert!(text.contains("cashdesk_orders_created_total 1"), "{text}");
    assert!(
        text.contains(r#"cashdesk_http_requests_total{route="/api/cashier-desk/unified/orders",method="POST",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("cashdesk_http_request_duration_seconds_bucket"),
        "{text}"
    );

    let resp = app
        .raw(Method::GET, "/api/openapi.json", b"", HeaderMap::new())
        .await;
    assert_eq!(resp.status.as_u16(), 200);
    let doc = resp.json().expect("json");
    assert!(doc["paths"]["/api/cashier-desk/unified/orders"]["post"].is_object());

    let resp = app
        .raw(Method::GET, "/api/docs", b"", HeaderMap::new())
        .await;
    assert_eq!(resp.status.as_u16(), 200);
    let html = String::from_utf8(resp.body.clone()).expect("utf8");
    assert!(html.contains("/api/cashier-desk/unified/orders"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}

async fn startup_creates_secrets_once(b: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let pg = match &b {
        Backend::Postgres(url) => Some(PgDatabase::create(url).await),
        Backend::Sqlite => None,
    };
    let mut config = Config::for_tests(dir.path().join("nested/data"));
    config.database_url = pg.as_ref().map(|p| p.url.clone());
    let first = Application::build(config.clone())
        .await
        .expect("first start");
    let report = first.startup_report();
    let token = report
        .admin_token
        .clone()
        .expect("token generated on first start");
    let demo = report
        .demo_app
        .clone()
        .expect("demo app created on first start");
    assert_eq!(
        report.listen_url,
        format!("http://127.0.0.1:{}", first.port())
    );
    assert_eq!(report.public_url, first.public_url());
    let printed = report.to_string();
    assert!(printed.contains(token.expose()) && printed.contains(demo.app_key.expose()));
    assert!(
        !format!("{report:?}").contains(token.expose()),
        "Debug never shows secrets"
    );
    let data = dir.path().join("nested/data");
    assert_eq!(
        std::fs::read_to_string(data.join("admin.token"))
            .expect("token file")
            .trim(),
        token.expose()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["admin.token", "master.key", "demo-app.json"] {
            let mode = std::fs::metadata(data.join(f))
                .expect("file")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        let mode = std::fs::metadata(&data).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    drop(first);
    let second = Application::build(config.clone())
        .await
        .expect("second start");
    assert!(
        second.startup_report().admin_token.is_none(),
        "token not regenerated"
    );
    assert!(
        second.startup_report().demo_app.is_none(),
        "demo app not recreated"
    );
    assert_eq!(second.store().list_apps().await.expect("apps").len(), 1);
    drop(second);

    // An explicit token is used as given and not written anywhere.
    let dir2 = tempfile::tempdir().expect("dir");
    let mut c2 = Config::for_tests(dir2.path());
    c2.database_url = None;
    c2.admin_token = Some("operator-token-0123456789".into());
    let third = Application::build(c2).await.expect("start");
    assert!(third.startup_report().admin_token.is_none());
    assert!(!dir2.path().join("admin.token").exists());
    drop(third);

    // A master key that does not match the database is refused clearly.
    let mut wrong = config.clone();
    wrong.master_key = Some(
        cashdesk_crypto::secretbox::MasterKey::generate()
            .to_base64()
            .expose()
            .to_owned(),
    );
    let err = Application::build(wrong).await.err().expect("refused");
    assert!(
        format!("{err:#}").contains("master key does not match"),
        "{err:#}"
    );
}

async fn graceful_shutdown(b: Backend) {
    // A second instance on the first one's folder and database.
    let app = spawn_app(b).await;
    let application = Application::build(app.config.clone()).await.expect("start");
    let url = format!("{}/healthz", application.public_url());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let ok = reqwest::get(&url).await.expect("up");
    assert_eq!(ok.status().as_u16(), 200);
    tx.send(()).expect("signal");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "server stops cleanly: {ended:?}"
    );
    assert!(reqwest::get(&url).await.is_err(), "no longer listening");
}

/// `CASHDESK_SANDBOX=false`: no `/sandbox/*` route answers (404 envelope,
/// whatever the method), the demo app exists but is bound to nothing, and
/// no channel config or channel was created.
async fn sandbox_off_mounts_nothing_and_binds_no_demo_channels(b: Backend) {
    let app = spawn_app_with(b, |c| c.sandbox = Some(false)).await;
    for (method, path) in [
        (Method::POST, "/sandbox/api/merchants"),
        (Method::POST, "/sandbox/api/pay"),
        (Method::GET, "/sandbox/api/requests"),
        (Method::POST, "/sandbox/api/faults"),
        (Method::GET, "/sandbox/wechat/pay/wx0000"),
        (Method::POST, "/sandbox/wechat/pay/unifiedorder"),
        (Method::GET, "/sandbox/wechat/connect/oauth2/authorize"),
        (Method::POST, "/sandbox/alipay/gateway.do"),
        (Method::GET, "/sandbox/"),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().expect("ct"));
        let resp = app
            .raw(
                method.clone(),
                path,
                br#"{"channelType":"wx-pay"}"#,
                headers,
            )
            .await;
        assert_envelope(&resp, 404, 4040);
        assert!(
            !String::from_utf8_lossy(&resp.body).contains("SANDBOX"),
            "{method} {path}"
        );
    }
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.config.demo_app_file()).expect("demo file"))
            .expect("json");
    assert!(
        demo["channels"].as_array().is_none_or(Vec::is_empty),
        "{demo}"
    );
    let count = |v: serde_json::Value| v.as_array().map(Vec::len);
    assert_eq!(
        count(app.admin.list_channel_configs().await.expect("configs")),
        Some(0)
    );
    assert_eq!(
        count(app.admin.list_channels().await.expect("channels")),
        Some(0)
    );
    let created = app
        .client
        .create_order(&order(&otn(), 1))
        .await
        .expect("order");
    assert!(created.channels.is_empty(), "{created:?}");
}
