//! "Test connection" of a channel config: one harmless, real call to the
//! channel with the config's stored credentials — a query of an order id
//! that exists nowhere (a fresh `OrderId`). The channel has to accept our
//! signature (or key) to answer it, and its answer has to pass our
//! verification (WeChat's platform-key signature, Alipay's public-key
//! signature, Lakala's certificate), so a "no such order" answer proves
//! the address, the merchant id, the keys in both directions and the clock.
//! Nothing is stored, the adapter is built afresh (the stored credentials
//! as they are now, a disabled config too) and the call is in no order's
//! timeline.

use std::time::Instant;

use cashdesk_channels::{ChannelErrorKind, ChannelOrderStatus, QueryRequest};
use cashdesk_core::{ConfigId, Fen, OrderId};
use serde::Serialize;

use crate::channel_cache;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

/// What the test found (`POST /api/admin/channel-configs/{id}/test`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeView {
    pub config_id: String,
    pub channel_type: String,
    pub mch_id: String,
    /// The channel answered and we verified its answer.
    pub ok: bool,
    /// `NOT_FOUND` (what a working config answers), another order state
    /// the channel gave, or the kind of failure: `CONFIG` (the
    /// credentials cannot be used), `UNREACHABLE` (network, timeout, the
    /// channel's 5xx or busy answer), `BAD_RESPONSE` (an answer we could
    /// not verify: wrong platform key or certificate), `REFUSED` (the
    /// channel refused the request: wrong merchant id, key or signature),
    /// `INVALID_REQUEST`.
    pub outcome: String,
    /// The channel's error code, when it gave one.
    pub code: Option<String>,
    /// What happened, in words (the channel's own message for a refusal).
    pub message: String,
    pub latency_ms: u64,
}

/// Tests the config `config_id` (404 if there is none).
pub async fn test_config(state: &AppState, config_id: &str) -> ServiceResult<ProbeView> {
    let missing = || ServiceError::not_found(format!("channel config {config_id}"));
    let id = ConfigId::parse(config_id).ok_or_else(missing)?;
    let config = state
        .store
        .get_channel_config(&id)
        .await?
        .ok_or_else(missing)?;
    let view =
        |ok: bool, outcome: &str, code: Option<String>, message: String, ms: u64| ProbeView {
            config_id: config.config_id.to_string(),
            channel_type: config.channel_type.to_string(),
            mch_id: config.mch_id.clone(),
            ok,
            outcome: outcome.to_owned(),
            code,
            message,
            latency_ms: ms,
        };
    let adapter = match channel_cache::build(state, &config) {
        Ok(a) => a,
        Err(e) => return Ok(view(false, "CONFIG", None, e.to_string(), 0)),
    };
    let probe = QueryRequest {
        order_id: OrderId::generate(),
        amount: Fen::from_stored(1),
        store: None,
    };
    let started = Instant::now();
    let answer = adapter.query(&probe).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let probe_view = match answer {
        Ok(ChannelOrderStatus::NotFound) => view(
            true,
            "NOT_FOUND",
            None,
            "the channel answered a query for an unknown order, and its answer verified".to_owned(),
            ms,
        ),
        // Any verified answer proves the connection; a test order id that
        // exists would be a surprise worth showing.
        Ok(other) => view(
            true,
            "ANSWERED",
            None,
            format!("the channel answered: {other:?}"),
            ms,
        ),
        Err(e) => {
            let outcome = match e.kind() {
                ChannelErrorKind::Business => "REFUSED",
                ChannelErrorKind::Retryable => "UNREACHABLE",
                ChannelErrorKind::BadResponse => "BAD_RESPONSE",
                ChannelErrorKind::Config => "CONFIG",
                ChannelErrorKind::InvalidRequest => "INVALID_REQUEST",
            };
            view(
                false,
                outcome,
                e.code().map(str::to_owned),
                e.message().to_owned(),
                ms,
            )
        }
    };
    tracing::info!(
        config_id = %probe_view.config_id,
        ok = probe_view.ok,
        outcome = %probe_view.outcome,
        latency_ms = probe_view.latency_ms,
        "channel config tested"
    );
    Ok(probe_view)
}
