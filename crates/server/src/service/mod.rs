//! The service layer: everything a handler asks for — validation into
//! domain types, store calls, signing — so handlers stay "extract → call →
//! respond". Services answer in the domain's words ([`error::ServiceError`]);
//! the HTTP edge alone turns that into a code and a status (`From` in
//! `crate::error`), and the background workers match on it.

pub mod accounts;
pub mod applications;
pub mod apps;
pub mod bindings;
pub mod cashier;
pub mod channel_probe;
pub mod channels;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod mp_tokens;
pub mod notify;
pub mod order_actions;
pub mod orders;
pub mod outbox;
pub mod pay_command;
pub mod payments;
pub mod poller;
pub mod refunds;
pub mod stores;
pub mod timeline;
pub mod timeline_view;

use cashdesk_core::NotifyUrl;
/// The public-address rule (in `cashdesk-core`, where any crate can use it).
pub use cashdesk_core::address;
use cashdesk_store::AuditEntry;
use serde_json::Value;

use crate::access::Principal;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

/// Records an action (by an operator, a merchant's account or the
/// break-glass token: `by`) with no before/after. The action already
/// happened, so a failed audit insert is logged loudly rather than turned
/// into an error that would invite a retry of the action.
pub async fn audit(state: &AppState, by: &Principal, action: &str, target: &str, detail: Value) {
    record(state, by.audit(action, target, detail)).await;
}

/// [`audit`] of a change, with the object (or the part that changed)
/// before and after it.
pub async fn audit_change(
    state: &AppState,
    by: &Principal,
    action: &str,
    target: &str,
    before: Value,
    after: Value,
) {
    record(
        state,
        by.audit(action, target, Value::Null)
            .with_change(before, after),
    )
    .await;
}

/// [`audit_change`] of an enable or disable (`enabled`: what it is now).
pub async fn audit_enabled(
    state: &AppState,
    by: &Principal,
    action: &str,
    target: &str,
    enabled: bool,
) {
    use serde_json::json;
    audit_change(
        state,
        by,
        action,
        target,
        json!({ "enabled": !enabled }),
        json!({ "enabled": enabled }),
    )
    .await;
}

/// Writes an audit entry built by the caller (logged, never an error:
/// see [`audit`]).
pub async fn record(state: &AppState, entry: AuditEntry) {
    if let Err(e) = state.store.insert_audit(&entry).await {
        tracing::error!(error = %e, action = entry.action, target = entry.target, "could not write the audit entry");
    }
}

/// What a refused notify URL is told (when it is accepted and when it is
/// used).
pub const NOT_PUBLIC: &str = "must point to a public address (loopback, private, link-local and \
     other special-purpose addresses are refused unless allow_private_notify_urls is on)";

/// A merchant notify URL under the server's policy: unless private
/// addresses are allowed, its host must not be a local name or a
/// non-public IP literal ([`address`]). Names are resolved and checked
/// again when each notification is sent ([`delivery`]).
pub fn parse_notify_url(
    state: &AppState,
    field: &'static str,
    s: &str,
) -> ServiceResult<NotifyUrl> {
    let url = NotifyUrl::parse(field, s)?;
    if !state.config.allow_private_notify_urls
        && url
            .url()
            .host()
            .is_some_and(|h| address::is_refused_host(&h))
    {
        return Err(ServiceError::invalid(field, NOT_PUBLIC));
    }
    Ok(url)
}

/// An order row as a freshly created order has it, for unit tests that
/// need one without a store: `CREATED`, no channel, nothing paid; tests
/// set what they are about with `Order { …, ..test_order(…) }`.
#[cfg(test)]
pub(crate) fn test_order(
    app_id: cashdesk_core::AppId,
    out_trade_no: &str,
    amount_fen: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> cashdesk_store::Order {
    cashdesk_store::Order {
        order_id: cashdesk_core::OrderId::generate(),
        app_id,
        out_trade_no: cashdesk_core::OutTradeNo::parse(out_trade_no).expect("outTradeNo"),
        amount: cashdesk_core::Fen::from_stored(amount_fen),
        order_title: "t".into(),
        goods_desc: String::new(),
        third_party_user: String::new(),
        notify_url: None,
        return_url: None,
        store_id: None,
        attach: None,
        client_ip: None,
        token: "tok".into(),
        expire_at: now,
        request_hash: String::new(),
        response: Value::Null,
        state: cashdesk_core::OrderState::Created,
        channel: None,
        transaction_id: None,
        pay_time: None,
        refunded_amount: cashdesk_core::Fen::from_stored(0),
        result_error_code: None,
        result_error_msg: None,
        paid_after_close: false,
        created_at: now,
        updated_at: now,
        next_query_at: None,
        query_attempts: 0,
        store_identity_sealed: None,
    }
}
