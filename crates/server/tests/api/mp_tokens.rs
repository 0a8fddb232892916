//! Mini-program access tokens shared through the store (issue 17 §1,
//! `service::mp_tokens`) against the sandbox's `stable_token`: racing
//! callers on two instances get one token; a refused token is replaced
//! by a forced refresh; a token near its expiry is refreshed; a wrong
//! secret is an error that leaves the lease free.

use cashdesk_channels::HttpSettings;
use cashdesk_channels::wechat::subscribe::SubscribeClient;
use cashdesk_crypto::Secret;
use cashdesk_server::service::mp_tokens;
use chrono::{Duration, Utc};
use tokio::task::JoinSet;

use crate::backend_tests;
use crate::helpers::*;

backend_tests!(one_token_per_mini_program_for_every_instance);

fn client(app: &TestApp) -> SubscribeClient {
    let base = format!("{}/sandbox/wechat", app.sandbox_url);
    SubscribeClient::new(Some(&base), &HttpSettings::default(), &[]).expect("client")
}

async fn one_token_per_mini_program_for_every_instance(b: Backend) {
    let first = spawn_app(b).await;
    let second = spawn_sibling(&first).await;
    let m = first.open_sandbox_merchant("MD5").await;
    let appid = m["credentialsV3"]["appId"]
        .as_str()
        .expect("appId")
        .to_owned();
    let secret = m["credentialsV3"]["appSecret"]
        .as_str()
        .expect("appSecret")
        .to_owned();

    // Eight callers on two instances: one refresh, one token.
    let mut set = JoinSet::new();
    for i in 0..8 {
        let state = if i % 2 == 0 {
            first.state.clone()
        } else {
            second.state.clone()
        };
        let c = client(&first);
        let (appid, secret) = (appid.clone(), Secret::new(secret.clone()));
        set.spawn(async move {
            mp_tokens::access_token(&state, &c, &appid, &secret)
                .await
                .expect("token")
                .expose()
                .to_owned()
        });
    }
    let mut tokens = Vec::new();
    while let Some(t) = set.join_next().await {
        tokens.push(t.expect("task"));
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token: {}", tokens.len());
    let token = tokens.remove(0);
    let row = first
        .store
        .get_mp_token(&appid)
        .await
        .expect("row")
        .expect("stored");
    assert!(
        row.expires_at
            .is_some_and(|e| e > Utc::now() + Duration::minutes(100))
    );
    assert!(
        !row.token_sealed
            .as_deref()
            .is_some_and(|s| s.windows(token.len()).any(|w| w == token.as_bytes())),
        "sealed, not in clear"
    );

    // Refused by WeChat: forgotten, and the next one is a new token.
    let c = client(&first);
    let secret = Secret::new(secret);
    mp_tokens::refused(&second.state, &appid, &Secret::new("another token"))
        .await
        .expect("refused");
    assert_eq!(
        mp_tokens::access_token(&first.state, &c, &appid, &secret)
            .await
            .expect("same")
            .expose(),
        token,
        "refusing another token changes nothing"
    );
    mp_tokens::refused(&second.state, &appid, &Secret::new(token.clone()))
        .await
        .expect("refused");
    let fresh = mp_tokens::access_token(&first.state, &c, &appid, &secret)
        .await
        .expect("fresh");
    assert_ne!(fresh.expose(), token, "a forced refresh");

    // Near its expiry (inside the five-minute margin): refreshed.
    let row = first
        .store
        .get_mp_token(&appid)
        .await
        .expect("row")
        .expect("stored");
    let sealed = row.token_sealed.expect("sealed");
    first
        .store
        .store_mp_token(
            &appid,
            &sealed,
            Utc::now() + Duration::minutes(4),
            Utc::now(),
        )
        .await
        .expect("aged");
    mp_tokens::access_token(&second.state, &c, &appid, &secret)
        .await
        .expect("refreshed");
    let row = first
        .store
        .get_mp_token(&appid)
        .await
        .expect("row")
        .expect("stored");
    assert!(
        row.expires_at
            .is_some_and(|e| e > Utc::now() + Duration::minutes(10)),
        "{row:?}"
    );

    // A wrong secret: an error naming the mini-program, never the secret,
    // and the lease is free again (a second try is refused at once too).
    let other = "wx0000000000000001";
    let wrong = Secret::new("0123456789abcdef0123456789abcdef");
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let err = mp_tokens::access_token(&first.state, &c, other, &wrong)
            .await
            .expect_err("wrong appid or secret");
        let text = err.to_string();
        assert!(
            text.contains(other) && !text.contains(wrong.expose()),
            "{text}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "no wait for a lease"
        );
    }
}
