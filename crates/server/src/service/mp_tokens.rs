//! Mini-program access tokens (issue 17 §1), shared by every instance
//! through the store: a token is fetched with WeChat's `stable_token`
//! once per AppID, kept sealed (AAD `mp-token:<appid>`) with its expiry,
//! refreshed five minutes before it runs out, and one refresh at a time
//! per AppID across instances (the store's lease). An instance that finds
//! the lease taken waits for the other's token (up to [`WAIT`]).
//!
//! When WeChat refuses a token (40001 / 40014 / 42001), the sender calls
//! [`refused`]: the token is forgotten if it is still the stored one and
//! the next refresh forces a new one (`force_refresh`), so a send is
//! retried once with a fresh token.

use std::time::Duration as StdDuration;

use cashdesk_channels::wechat::subscribe::SubscribeClient;
use cashdesk_crypto::Secret;
use chrono::{Duration, Utc};

use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

/// Refreshed this long before WeChat's expiry.
pub const MARGIN: Duration = Duration::minutes(5);
/// How long one refresh may hold the lease.
const LEASE: Duration = Duration::seconds(15);
/// How long a caller waits for another instance's refresh.
const WAIT: StdDuration = StdDuration::from_secs(10);

fn aad(appid: &str) -> String {
    format!("mp-token:{appid}")
}

/// The AppID's access token, from the store while it has more than
/// [`MARGIN`] to live, else refreshed with `secret` (the channel config's
/// `appSecret`).
pub async fn access_token(
    state: &AppState,
    client: &SubscribeClient,
    appid: &str,
    secret: &Secret,
) -> ServiceResult<Secret> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = Utc::now();
        let row = state.store.get_mp_token(appid).await?;
        if let Some(token) = row.as_ref().and_then(|r| {
            let fresh = r.expires_at.is_some_and(|e| e - MARGIN > now);
            r.token_sealed.as_ref().filter(|_| fresh)
        }) {
            return open(state, appid, token);
        }
        let force = row.as_ref().is_some_and(|r| r.force_refresh);
        let owner = &state.instance_id;
        if state
            .store
            .claim_mp_token_refresh(appid, owner, now, now + LEASE)
            .await?
        {
            return match client.stable_token(appid, secret, force).await {
                Ok(t) => {
                    let sealed = state
                        .master_key
                        .seal(t.token.expose().as_bytes(), aad(appid).as_bytes());
                    let expires = Utc::now() + Duration::seconds(i64::from(t.expires_in));
                    state
                        .store
                        .store_mp_token(appid, &sealed, expires, Utc::now())
                        .await?;
                    tracing::info!(
                        appid,
                        expires_in = t.expires_in,
                        force,
                        "mini-program access token refreshed"
                    );
                    Ok(t.token)
                }
                Err(e) => {
                    state.store.release_mp_token_refresh(appid, owner).await?;
                    Err(ServiceError::ChannelAnswer(format!(
                        "mini-program {appid}: {e}"
                    )))
                }
            };
        }
        // Another instance refreshes: a token that has not expired yet is
        // still good meanwhile.
        if let Some(token) = row.as_ref().and_then(|r| {
            let alive = r.expires_at.is_some_and(|e| e > now);
            r.token_sealed.as_ref().filter(|_| alive)
        }) {
            return open(state, appid, token);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServiceError::ChannelAnswer(format!(
                "mini-program {appid}: no access token yet (another instance is refreshing it)"
            )));
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// WeChat refused `token`: forgotten if it is still the stored one, and
/// the next refresh asks for a new one.
pub async fn refused(state: &AppState, appid: &str, token: &Secret) -> ServiceResult<()> {
    let Some(row) = state.store.get_mp_token(appid).await? else {
        return Ok(());
    };
    let Some(sealed) = row.token_sealed else {
        return Ok(());
    };
    if open(state, appid, &sealed)?.expose() == token.expose() {
        state
            .store
            .forget_mp_token(appid, &sealed, Utc::now())
            .await?;
    }
    Ok(())
}

fn open(state: &AppState, appid: &str, sealed: &[u8]) -> ServiceResult<Secret> {
    let plain = state
        .master_key
        .open(sealed, aad(appid).as_bytes())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("mini-program {appid} token: {e}")))?;
    let text = String::from_utf8(plain.to_vec()).map_err(|_| {
        ServiceError::internal(anyhow::anyhow!("mini-program {appid} token is not text"))
    })?;
    Ok(Secret::new(text))
}
