//! Who may do what: the console's and the operator API's roles and the one
//! permission matrix both check (docs/console.md prints it).
//!
//! A role is a fixed set of permissions ([`Role::allows`]). Every route of
//! the operator API and of the console names the one [`Permission`] it
//! needs; a `merchant` account additionally sees only the apps it is
//! scoped to (the server enforces the scope, this module only says that
//! the role is scoped: [`Role::is_scoped`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state::string_enum;

string_enum!(
    /// An account's role.
    Role {
        /// Everything, accounts included.
        Admin = "admin",
        /// Day-to-day operations: bindings, refund review, notification
        /// resends, stores, channels (never their secrets).
        Operator = "operator",
        /// Reconciliation, statements and exports; reads orders and refunds.
        Finance = "finance",
        /// Reads everything, the audit log included; changes nothing.
        Auditor = "auditor",
        /// A merchant's staff: their own apps' orders, refunds, stores,
        /// bindings, notifications, key rotation and statements.
        Merchant = "merchant",
    }
);

string_enum!(
    /// One thing a route does. Reads and writes are separate permissions
    /// so that the auditor's role is "every read".
    Permission {
        AppsRead = "apps.read",
        /// Create apps, change their settings, enable and disable them.
        AppsWrite = "apps.write",
        /// Rotate an app's key (the new key is shown once).
        AppsRotateKey = "apps.rotate_key",
        /// Channel configs and channels, secrets never included.
        ChannelsRead = "channels.read",
        /// Create channel configs and channels, enable and disable them.
        ChannelsWrite = "channels.write",
        /// Replace a channel config's credentials (write-only secrets).
        ChannelSecretsWrite = "channels.secrets",
        StoresRead = "stores.read",
        StoresWrite = "stores.write",
        BindingsRead = "bindings.read",
        /// Apply for a channel on an app's behalf (its staff, an admin).
        BindingsApply = "bindings.apply",
        /// Approve or reject a binding application.
        BindingsDecide = "bindings.decide",
        OrdersRead = "orders.read",
        /// Ask the channel about an unpaid order (sync) and close it.
        OrdersManage = "orders.manage",
        RefundsRead = "refunds.read",
        /// Refund a paid order (the app's review rules apply).
        RefundsCreate = "refunds.create",
        /// Approve or reject a refund in review.
        RefundsReview = "refunds.review",
        NotificationsRead = "notifications.read",
        NotificationsResend = "notifications.resend",
        ReconRead = "recon.read",
        /// Start a reconciliation run.
        ReconRun = "recon.run",
        /// Resolve a reconciliation finding with a note.
        ReconResolve = "recon.resolve",
        StatementsRead = "statements.read",
        AuditRead = "audit.read",
        /// Create, change and disable accounts; reset passwords.
        AccountsManage = "accounts.manage",
    }
);

impl Permission {
    /// A permission that only reads.
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            Permission::AppsRead
                | Permission::ChannelsRead
                | Permission::StoresRead
                | Permission::BindingsRead
                | Permission::OrdersRead
                | Permission::RefundsRead
                | Permission::NotificationsRead
                | Permission::ReconRead
                | Permission::StatementsRead
                | Permission::AuditRead
        )
    }
}

impl Role {
    /// The permission matrix: whether this role may do `p`.
    pub const fn allows(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => true,
            Role::Auditor => p.is_read(),
            Role::Operator => matches!(
                p,
                P::AppsRead
                    | P::ChannelsRead
                    | P::ChannelsWrite
                    | P::StoresRead
                    | P::StoresWrite
                    | P::BindingsRead
                    | P::BindingsDecide
                    | P::OrdersRead
                    | P::OrdersManage
                    | P::RefundsRead
                    | P::RefundsReview
                    | P::NotificationsRead
                    | P::NotificationsResend
            ),
            Role::Finance => matches!(
                p,
                P::AppsRead
                    | P::OrdersRead
                    | P::RefundsRead
                    | P::ReconRead
                    | P::ReconRun
                    | P::ReconResolve
                    | P::StatementsRead
            ),
            Role::Merchant => matches!(
                p,
                P::AppsRead
                    | P::AppsRotateKey
                    | P::StoresRead
                    | P::StoresWrite
                    | P::BindingsRead
                    | P::BindingsApply
                    | P::OrdersRead
                    | P::OrdersManage
                    | P::RefundsRead
                    | P::RefundsCreate
                    | P::NotificationsRead
                    | P::NotificationsResend
                    | P::StatementsRead
            ),
        }
    }

    /// Whether accounts of this role see only the apps they are scoped to.
    pub const fn is_scoped(self) -> bool {
        matches!(self, Role::Merchant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_may_do_everything_and_the_auditor_only_reads() {
        for &p in Permission::ALL {
            assert!(Role::Admin.allows(p), "{p}");
            assert_eq!(Role::Auditor.allows(p), p.is_read(), "{p}");
        }
    }

    #[test]
    fn only_admins_manage_accounts_and_secrets() {
        for &r in Role::ALL {
            let admin = r == Role::Admin;
            assert_eq!(r.allows(Permission::AccountsManage), admin, "{r}");
            assert_eq!(r.allows(Permission::ChannelSecretsWrite), admin, "{r}");
        }
    }

    #[test]
    fn merchants_are_scoped_and_never_see_channels_reconciliation_or_the_audit_log() {
        assert!(Role::Merchant.is_scoped());
        for p in [
            Permission::ChannelsRead,
            Permission::ReconRead,
            Permission::AuditRead,
            Permission::BindingsDecide,
            Permission::RefundsReview,
        ] {
            assert!(!Role::Merchant.allows(p), "{p}");
        }
        for &r in Role::ALL {
            assert_eq!(r.is_scoped(), r == Role::Merchant, "{r}");
        }
    }

    /// docs/console.md prints the matrix; it must be this one.
    #[test]
    fn the_documented_matrix_is_the_code() {
        let doc = include_str!("../../../docs/console.md");
        let header = "| permission | admin | operator | finance | auditor | merchant |";
        assert!(doc.contains(header), "the table's header changed");
        let roles = [
            Role::Admin,
            Role::Operator,
            Role::Finance,
            Role::Auditor,
            Role::Merchant,
        ];
        for &p in Permission::ALL {
            let prefix = format!("| `{p}` |");
            let line = doc
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("docs/console.md has no row for {p}"));
            let cells: Vec<&str> = line.split('|').map(str::trim).skip(2).take(5).collect();
            for (role, cell) in roles.iter().zip(&cells) {
                let documented = match *cell {
                    "✓" => true,
                    "—" => false,
                    other => panic!("{p}: cell `{other}`"),
                };
                assert_eq!(documented, role.allows(p), "{p} for {role}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for &r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for &p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
    }
}
