//! The service layer: everything a handler asks for — validation into
//! domain types, store calls, signing — so handlers stay "extract → call →
//! respond". Services return [`crate::error::ApiError`] directly: the HTTP
//! edge is their only caller, and that keeps each refusal's code next to
//! the rule that causes it.

pub mod apps;
pub mod bindings;
pub mod cashier;
pub mod channels;
pub mod delivery;
pub mod demo;
pub mod notify;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod poller;
pub mod refunds;
pub mod stores;

use std::net::IpAddr;

use cashdesk_core::NotifyUrl;
use cashdesk_store::AuditEntry;
use chrono::Utc;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Records an operator (or registration) action. The action already
/// happened, so a failed audit insert is logged loudly rather than turned
/// into an error that would invite a retry of the action.
pub async fn audit(state: &AppState, actor: &str, action: &str, target: &str, detail: Value) {
    let entry = AuditEntry {
        at: Utc::now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    if let Err(e) = state.store.insert_audit(&entry).await {
        tracing::error!(error = %e, action, target, "could not write the audit entry");
    }
}

/// Whether a host is loopback, private, link-local, unspecified or
/// otherwise not on the public internet. Names are judged as written
/// (`localhost`, `*.localhost`, `*.local`); the delivery worker resolves
/// and checks again at send time.
pub fn is_private_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".local")
                || d.ends_with(".internal")
        }
        url::Host::Ipv4(ip) => is_private_ip(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => is_private_ip(IpAddr::V6(*ip)),
    }
}

pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 carrier-grade NAT
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// A merchant notify URL under the server's policy.
pub fn parse_notify_url(state: &AppState, field: &'static str, s: &str) -> ApiResult<NotifyUrl> {
    let url = NotifyUrl::parse(field, s)?;
    if !state.config.allow_private_notify_urls {
        let parsed = url.url();
        if parsed.host().is_some_and(|h| is_private_host(&h)) {
            return Err(ApiError::invalid(
                field,
                "must not point to a loopback, private or link-local host",
            ));
        }
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
    now: chrono::DateTime<Utc>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_hosts() {
        for h in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            let ip: IpAddr = h.parse().expect("ip");
            assert!(is_private_ip(ip), "{h}");
        }
        for h in ["::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = h.parse().expect("ip");
            assert!(is_private_ip(ip), "{h}");
        }
        for h in ["8.8.8.8", "2001:4860:4860::8888", "100.128.0.1"] {
            let ip: IpAddr = h.parse().expect("ip");
            assert!(!is_private_ip(ip), "{h}");
        }
        assert!(is_private_host(&url::Host::Domain("LOCALHOST.")));
        assert!(is_private_host(&url::Host::Domain("a.localhost")));
        assert!(!is_private_host(&url::Host::Domain("shop.example.com")));
    }
}
