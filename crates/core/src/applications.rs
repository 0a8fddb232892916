//! Refund applications (issue 17 §2): a buyer asks for a refund through
//! the merchant's backend, and someone decides. The words shared by the
//! store, the server and the SDK.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state::string_enum;

string_enum!(
    /// `APPLIED → APPROVED | REJECTED`, once (compare-and-set).
    RefundApplicationState {
        Applied = "APPLIED",
        Approved = "APPROVED",
        Rejected = "REJECTED",
    }
);

string_enum!(
    /// Who decides an app's refund applications.
    RefundApplicationMode {
        /// Nobody: an application is approved when it is made.
        None = "none",
        /// The merchant (`…/approve` and `…/reject`, signed).
        Merchant = "merchant",
        /// The gateway's operators (console, operator API).
        Operator = "operator",
    }
);

string_enum!(
    /// What happens to an application left undecided for the app's
    /// number of days.
    TimeoutDecision {
        Approve = "approve",
        Reject = "reject",
    }
);

/// An app's rules for refund applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundApplicationPolicy {
    pub mode: RefundApplicationMode,
    /// Days an application may wait for a decision (1 to 30).
    pub days: u32,
    pub on_timeout: TimeoutDecision,
}

impl RefundApplicationPolicy {
    pub const MAX_DAYS: u32 = 30;
}

impl Default for RefundApplicationPolicy {
    /// The merchant decides within 7 days; undecided, the application is
    /// rejected (money leaves only on someone's decision unless the app
    /// chose otherwise).
    fn default() -> Self {
        RefundApplicationPolicy {
            mode: RefundApplicationMode::Merchant,
            days: 7,
            on_timeout: TimeoutDecision::Reject,
        }
    }
}
