//! The subscribe-message client against a double of `api.weixin.qq.com`
//! for what the sandbox does not do: the exact requests (method, path,
//! query, JSON body) and odd answers (HTML, 5xx, a redirect, a token
//! answer without a token). The sandbox's stand-in tests the protocol
//! itself (`crates/sandbox/tests/sandbox/subscribe.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cashdesk_channels::HttpSettings;
use cashdesk_channels::wechat::subscribe::{
    SubscribeClient, SubscribeError, SubscribeErrorKind as K, SubscribeMessage,
};
use cashdesk_crypto::Secret;
use serde_json::{Value, json};

/// What the double answers next, and what it saw.
#[derive(Default)]
struct Double {
    answer: Mutex<Option<(u16, String)>>,
    seen: Mutex<Vec<(String, Option<String>, String)>>,
}

async fn handle(
    State(d): State<Arc<Double>>,
    uri: axum::http::Uri,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    d.seen.lock().unwrap().push((
        uri.path().to_owned(),
        q,
        String::from_utf8_lossy(&body).into_owned(),
    ));
    let (status, body) = d
        .answer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or((200, r#"{"errcode":0,"errmsg":"ok"}"#.into()));
    let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
    if status == 302 {
        r.headers_mut()
            .insert("location", "http://169.254.169.254/".parse().unwrap());
    }
    r
}

async fn double() -> (Arc<Double>, SubscribeClient) {
    let d = Arc::new(Double::default());
    let app = Router::new()
        .route("/wx/cgi-bin/stable_token", post(handle))
        .route("/wx/cgi-bin/message/subscribe/send", post(handle))
        .with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/wx", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = SubscribeClient::new(Some(&base), &HttpSettings::default(), &[]).unwrap();
    (d, c)
}

fn answer(d: &Double, status: u16, body: &str) {
    *d.answer.lock().unwrap() = Some((status, body.to_owned()));
}

fn message() -> SubscribeMessage {
    SubscribeMessage {
        touser: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
        template_id: "TPL".into(),
        page: None,
        data: BTreeMap::from([
            ("thing1".to_owned(), "咖啡".to_owned()),
            ("amount2".to_owned(), "¥9.90".to_owned()),
        ]),
        miniprogram_state: None,
        lang: None,
    }
}

#[tokio::test]
async fn the_requests_are_wechats() {
    let (d, c) = double().await;
    answer(
        &d,
        200,
        r#"{"access_token":"ACCESS-TOKEN","expires_in":7200}"#,
    );
    let t = c
        .stable_token("wxAPP", &Secret::new("S3CRET"), true)
        .await
        .unwrap();
    assert_eq!(t.token.expose(), "ACCESS-TOKEN");
    assert_eq!(t.expires_in, 7200);
    answer(&d, 200, r#"{"errcode":0,"errmsg":"ok","msgid":1}"#);
    c.send(&t.token, &message()).await.unwrap();
    let seen = d.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/wx/cgi-bin/stable_token");
    assert_eq!(seen[0].1, None, "nothing in the query");
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].2).unwrap(),
        json!({"grant_type": "client_credential", "appid": "wxAPP", "secret": "S3CRET", "force_refresh": true})
    );
    assert_eq!(seen[1].0, "/wx/cgi-bin/message/subscribe/send");
    assert_eq!(seen[1].1.as_deref(), Some("access_token=ACCESS-TOKEN"));
    assert_eq!(
        serde_json::from_str::<Value>(&seen[1].2).unwrap(),
        json!({"touser": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "template_id": "TPL",
            "data": {"thing1": {"value": "咖啡"}, "amount2": {"value": "¥9.90"}}})
    );
}

#[tokio::test]
async fn odd_answers_are_classified_and_show_no_token() {
    let (d, c) = double().await;
    let token = Secret::new("ACCESS-TOKEN");
    let cases: [(u16, &str, K); 5] = [
        (503, "busy", K::Retryable),
        (200, "<html>gateway</html>", K::Retryable),
        (302, "", K::Retryable),
        (
            200,
            r#"{"errcode":43101,"errmsg":"user refuse to accept the msg rid: 1-2-3"}"#,
            K::Final,
        ),
        (
            200,
            r#"{"errcode":40001,"errmsg":"invalid credential"}"#,
            K::TokenInvalid,
        ),
    ];
    for (status, body, kind) in cases {
        answer(&d, status, body);
        let e = c.send(&token, &message()).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{status} {body}: {e}");
        assert!(!e.to_string().contains("ACCESS-TOKEN"), "{e}");
    }
    answer(
        &d,
        200,
        r#"{"errcode":43101,"errmsg":"user refuse to accept the msg rid: 1-2-3"}"#,
    );
    let e = c.send(&token, &message()).await.unwrap_err();
    assert_eq!(e.errmsg(), Some("user refuse to accept the msg rid: 1-2-3"));
    // A token answer without a token or a lifetime is unusable.
    for body in [
        r#"{"errcode":0}"#,
        r#"{"access_token":"T","expires_in":-5}"#,
    ] {
        answer(&d, 200, body);
        let e = c
            .stable_token("wxAPP", &Secret::new("S3CRET"), false)
            .await
            .unwrap_err();
        assert!(
            matches!(e, SubscribeError::BadResponse { .. }),
            "{body}: {e}"
        );
        assert!(!e.to_string().contains("S3CRET"));
    }
}
