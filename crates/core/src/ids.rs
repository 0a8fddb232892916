//! cashdesk's own identifiers: a one-letter prefix and a ULID (26 characters),
//! so they sort by creation time and fit WeChat's 32-character `out_trade_no`.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: char = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            /// Wrap a stored or received id. Returns `None` when it cannot be
            /// one of ours (wrong prefix or shape), so lookups of garbage fail
            /// fast.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?;
                (rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(/// A pay order; also the `out_trade_no` cashdesk sends to the channel.
    OrderId, 'P');
id_type!(/// A refund; also the channel's `out_refund_no`.
    RefundId, 'R');
id_type!(/// A merchant notification; kept across retries and resends.
    NotifyId, 'N');
id_type!(/// A channel configuration (merchant account at a channel).
    ConfigId, 'C');
id_type!(/// A payable channel: a config plus a scene.
    ChannelId, 'H');
id_type!(/// An app's application to use a channel.
    BindingId, 'B');
id_type!(/// A reconciliation finding.
    FindingId, 'F');
id_type!(/// A console account (operator, finance, auditor, merchant staff).
    AccountId, 'U');
id_type!(/// An account's API token (the token itself is never stored).
    TokenId, 'K');
id_type!(/// A buyer's refund application.
    ApplicationId, 'Q');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_prefixed_and_ordered() {
        let a = OrderId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = OrderId::generate();
        assert!(a.as_str().starts_with('P'));
        assert_eq!(a.as_str().len(), 27);
        assert!(a < b);
        assert_eq!(OrderId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(OrderId::parse("R01ARZ3NDEKTSV4RRFFQ69G5FAV"), None);
        assert_eq!(OrderId::parse("P123"), None);
    }
}
