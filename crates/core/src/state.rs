//! Order, refund and binding state machines (ARCHITECTURE.md §4).
//!
//! The store applies every transition as a compare-and-set; this module only
//! says which transitions exist, so the store and the services agree.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Pay order: `CREATED → PAYING → SUCCESS | FAILED | CLOSED`;
    /// `SUCCESS → PART_REFUNDED → REFUNDED` as refunds succeed (a refund in
    /// progress is the refund's state, not the order's). A `CLOSED` or
    /// `FAILED` order that is paid after all becomes `SUCCESS`
    /// (`paidAfterClose`).
    OrderState {
        Created = "CREATED",
        Paying = "PAYING",
        Success = "SUCCESS",
        Failed = "FAILED",
        Closed = "CLOSED",
        PartRefunded = "PART_REFUNDED",
        Refunded = "REFUNDED",
    }
);

string_enum!(
    /// Seed-compatible summary of an order for `query-pay-result`.
    ResultCode {
        Success = "SUCCESS",
        Finish = "FINISH",
        Fail = "FAIL",
        Null = "NULL",
    }
);

string_enum!(
    /// Refund: `PENDING_REVIEW? → PROCESSING → SUCCESS | FAIL`;
    /// a reviewed refund may instead be `REJECTED`.
    RefundState {
        PendingReview = "PENDING_REVIEW",
        Processing = "PROCESSING",
        Success = "SUCCESS",
        Fail = "FAIL",
        Rejected = "REJECTED",
    }
);

string_enum!(
    /// An app's application to use a channel.
    BindingState {
        Pending = "PENDING",
        Approved = "APPROVED",
        Rejected = "REJECTED",
    }
);

impl OrderState {
    /// Whether the order has been paid (whatever happened to it since).
    pub fn is_paid(self) -> bool {
        matches!(self, Self::Success | Self::PartRefunded | Self::Refunded)
    }

    /// Whether a buyer may still start (or restart) a payment.
    pub fn is_payable(self) -> bool {
        matches!(self, Self::Created | Self::Paying)
    }

    /// The transitions that exist. A success for a `CLOSED` or `FAILED`
    /// order is allowed on purpose: a verified payment is never dropped (the
    /// order is flagged `paidAfterClose`).
    pub fn can_become(self, to: OrderState) -> bool {
        use OrderState::*;
        matches!(
            (self, to),
            (Created, Paying)
                | (Created | Paying, Success | Failed | Closed)
                | (Paying, Paying)
                | (Closed | Failed, Success)
                | (Success | PartRefunded, PartRefunded | Refunded)
        )
    }

    pub fn result_code(self) -> ResultCode {
        match self {
            Self::Success | Self::PartRefunded => ResultCode::Success,
            Self::Refunded => ResultCode::Finish,
            Self::Failed | Self::Closed => ResultCode::Fail,
            Self::Created | Self::Paying => ResultCode::Null,
        }
    }
}

impl RefundState {
    /// The transitions that exist. `PROCESSING → PROCESSING` records what
    /// the channel said meanwhile (its refund id, an abnormal state).
    pub fn can_become(self, to: RefundState) -> bool {
        use RefundState::*;
        matches!(
            (self, to),
            (PendingReview, Processing | Rejected) | (Processing, Processing | Success | Fail)
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Fail | Self::Rejected)
    }

    /// Whether the refund's amount still counts against the refundable
    /// amount of its order.
    pub fn holds_amount(self) -> bool {
        matches!(self, Self::PendingReview | Self::Processing | Self::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_names() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(OrderState::parse("success"), None);
    }

    #[test]
    fn transitions() {
        assert!(OrderState::Created.can_become(OrderState::Paying));
        assert!(OrderState::Paying.can_become(OrderState::Success));
        assert!(OrderState::Closed.can_become(OrderState::Success));
        assert!(!OrderState::Success.can_become(OrderState::Closed));
        assert!(!OrderState::Refunded.can_become(OrderState::Success));
        assert_eq!(OrderState::Paying.result_code(), ResultCode::Null);
        assert_eq!(OrderState::Closed.result_code(), ResultCode::Fail);
    }
}

string_enum!(
    /// Where the reconciliation of one (channel config, day) stands.
    ReconState {
        /// Being fetched or matched (or its instance died meanwhile).
        Running = "RUNNING",
        /// The channel has not published the bill yet: tried again later.
        NotReady = "NOT_READY",
        /// The bill could not be fetched or read: tried again later; the
        /// message says why.
        Failed = "FAILED",
        /// Matched; its findings are recorded.
        Done = "DONE",
    }
);

string_enum!(
    /// What a reconciliation found on one line (or on the bill as a whole).
    FindingKind {
        /// The channel took money cashdesk does not show as paid.
        ChannelOnly = "CHANNEL_ONLY",
        /// cashdesk shows a payment the channel's bill does not have.
        LocalOnly = "LOCAL_ONLY",
        /// Both have the payment, with different amounts.
        AmountMismatch = "AMOUNT_MISMATCH",
        /// Both have it; the channel's line says it is not a success.
        StateMismatch = "STATE_MISMATCH",
        /// The channel gave money back that cashdesk does not show as refunded.
        RefundChannelOnly = "REFUND_CHANNEL_ONLY",
        /// cashdesk shows a successful refund the bill does not have.
        RefundLocalOnly = "REFUND_LOCAL_ONLY",
        RefundAmountMismatch = "REFUND_AMOUNT_MISMATCH",
        RefundStateMismatch = "REFUND_STATE_MISMATCH",
        /// The bill's lines do not add up to its own summary row.
        SummaryMismatch = "SUMMARY_MISMATCH",
    }
);

string_enum!(
    /// Where a finding stands.
    FindingStatus {
        /// For an operator to look at.
        Open = "OPEN",
        /// cashdesk repaired it (a payment the channel confirmed was recorded).
        Repaired = "REPAIRED",
        /// An operator looked and closed it with a note.
        Resolved = "RESOLVED",
    }
);
