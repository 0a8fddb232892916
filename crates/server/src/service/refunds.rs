//! Refunds. The refund API (`POST /api/cashier-desk/refunds`,
//! `GET …/refunds/{outRefundNo}`) and the refund store land with the next
//! piece of work; this module is where they go.
//!
//! For now it holds the one entry point the notification handler needs:
//! [`handle_notification`] receives refund notifications that the adapter
//! has already verified (v2: `req_info` decrypted with the config's key;
//! v3: signed and decrypted), checks that they name an order of this
//! config, logs them and acknowledges. Nothing is changed yet, because no
//! refund is ever started by this version.

use cashdesk_channels::RefundNotification;
use cashdesk_core::OrderId;
use cashdesk_store::ChannelConfig;

use crate::error::ApiResult;
use crate::state::AppState;

/// A verified refund notification for `config`. `Ok(true)` acknowledges it;
/// `Ok(false)` gets the channel's failure reply (it will retry).
pub async fn handle_notification(
    state: &AppState,
    config: &ChannelConfig,
    n: &RefundNotification,
) -> ApiResult<bool> {
    let Some(order_id) = OrderId::parse(&n.out_trade_no) else {
        tracing::warn!(config_id = %config.config_id, out_trade_no = %n.out_trade_no, "refund notification names no cashdesk order");
        return Ok(false);
    };
    let Some(order) = state.store.get_order(&order_id).await? else {
        tracing::warn!(config_id = %config.config_id, order_id = %order_id, "refund notification for an unknown order");
        return Ok(false);
    };
    if order
        .channel
        .as_ref()
        .is_none_or(|c| c.config_id != config.config_id)
    {
        tracing::warn!(config_id = %config.config_id, order_id = %order_id, "refund notification for an order of another config");
        return Ok(false);
    }
    tracing::info!(
        config_id = %config.config_id,
        order_id = %order_id,
        out_refund_no = %n.out_refund_no,
        outcome = ?n.outcome,
        refund_amount = n.refund_amount.get(),
        "verified refund notification (refund bookkeeping arrives with the refund API)"
    );
    Ok(true)
}
