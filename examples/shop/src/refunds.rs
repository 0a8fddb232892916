//! Refund applications: the buyer asks, the shop decides (issue 17 §2).
//!
//! NOT BUILT YET. cashdesk's `POST /api/cashier-desk/refund-applications`
//! (with `GET` and `…/{outRefundNo}/approve|reject`) is being added to the
//! gateway and the SDK in parallel; until the SDK has it, this route
//! answers 501 and changes nothing. What goes here, once it exists:
//!
//! 1. `POST /orders/{id}/refund-application {amount, reason, buyerRemark?}`
//!    for a `PAID` order → the SDK's refund-application call with
//!    `outTradeNo` = the order id and a new `outRefundNo` (kept with the
//!    order, so a retry sends the same one) → `APPLIED`;
//! 2. the shop's staff approve or reject it (`…/approve|reject {remark}`);
//! 3. `REFUND_SUCCESS` / `REFUND_FAIL` arrive at the notify endpoint
//!    (crate::orders::on_notification logs them today) and would put the
//!    refunded quantity back into stock.

use crate::orders::ShopError;

/// Where the shop will call cashdesk's refund applications.
pub async fn apply(_order_id: &str) -> Result<(), ShopError> {
    // TODO(issue 17 §2): call cashdesk's POST /api/cashier-desk/refund-applications
    // through the SDK once it has the endpoint.
    Err(ShopError::NotImplemented(
        "refund applications need cashdesk's /api/cashier-desk/refund-applications",
    ))
}
