//! The official account's web OAuth as an adapter capability: present only
//! with `appSecret`, its authorize URL and code exchange against a double
//! of `sns/oauth2/access_token`, and the secret never in an error.

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use cashdesk_channels::*;
use cashdesk_core::ChannelType;
use serde_json::{Value, json};

use crate::support::*;

const SECRET: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// WeChat's answers: the openid for code `good` with the right secret,
/// `40029 invalid code` for any other code, `40125` for a wrong secret.
async fn token(Query(q): Query<HashMap<String, String>>) -> axum::Json<Value> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    axum::Json(
        match (get("appid"), get("secret"), get("code"), get("grant_type")) {
            (APP_ID, SECRET, "good", "authorization_code") => {
                json!({"access_token": "AT", "expires_in": 7200, "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "scope": "snsapi_base"})
            }
            (APP_ID, SECRET, _, _) => json!({"errcode": 40029, "errmsg": "invalid code"}),
            _ => json!({"errcode": 40125, "errmsg": "invalid appsecret"}),
        },
    )
}

async fn double() -> String {
    let app = Router::new().route("/wx/sns/oauth2/access_token", get(token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/wx")
}

fn channel(version: &str, secret: Option<&str>, oauth_base: &str) -> std::sync::Arc<dyn Channel> {
    let mut creds = match version {
        "v2" => json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5"}),
        _ => crate::v3::creds(),
    };
    if let Some(s) = secret {
        creds["appSecret"] = json!(s);
    }
    let mut env = env();
    env.oauth_base_url = Some(oauth_base.to_owned());
    build_channel(ChannelType::WxPay, version, MCH_ID, &creds, None, &env).unwrap()
}

#[tokio::test]
async fn the_code_is_exchanged_for_the_openid_with_the_secret() {
    let base = double().await;
    for version in ["v2", "v3"] {
        assert!(
            channel(version, None, &base).payer_oauth().is_none(),
            "{version}: no appSecret, no OAuth"
        );
        let ch = channel(version, Some(SECRET), &base);
        assert_eq!(ch.meta().payer_oauth, Some(OAuthApp::WeChat));
        let oauth = ch.payer_oauth().expect("OAuth with appSecret");
        assert_eq!(oauth.app_id(), APP_ID);
        let url = oauth.authorize_url("https://pay.example.com/back?token=t", "st");
        assert!(
            url.starts_with(&format!(
                "{base}/connect/oauth2/authorize?appid={APP_ID}&redirect_uri=https%3A%2F%2Fpay.example.com%2Fback%3Ftoken%3Dt&response_type=code&scope=snsapi_base&state=st"
            )) && url.ends_with("#wechat_redirect"),
            "{url}"
        );
        assert!(!url.contains(SECRET));
        assert_eq!(
            oauth.payer_id("good").await.unwrap(),
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        );
        let e = oauth.payer_id("used-or-expired").await.unwrap_err();
        assert_eq!(e.business_kind(), Some(BusinessKind::Other), "{e}");
        assert_eq!(e.code(), Some("40029"));
        assert!(!e.to_string().contains(SECRET), "{e}");
        let wrong = channel(version, Some("not-the-secret"), &base)
            .payer_oauth()
            .unwrap()
            .payer_id("good")
            .await
            .unwrap_err();
        assert_eq!(wrong.kind(), ChannelErrorKind::Config, "{wrong}");
        assert!(!wrong.to_string().contains("not-the-secret"), "{wrong}");
    }
}

#[tokio::test]
async fn a_failed_exchange_never_shows_the_url_with_the_secret() {
    // Nothing listens there: the transport error must not carry the URL.
    let ch = channel("v2", Some(SECRET), "http://127.0.0.1:9/wx");
    let e = ch
        .payer_oauth()
        .unwrap()
        .payer_id("good")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable, "{e}");
    assert!(!e.to_string().contains(SECRET), "{e}");
    assert!(!e.to_string().contains("secret="), "{e}");
}
