//! The console's two languages: Simplified Chinese (the default, like the
//! cashier page) and English, chosen by the session's [`Lang`]. Every
//! string a console user reads is a field of [`Texts`], so a template
//! cannot name a string one language lacks. Values the system itself
//! names (states, ids, role and permission names in the audit log) are
//! shown as they are.

mod en;
mod zh;

use cashdesk_core::Role;

use crate::cashier::i18n::Lang;

/// The texts of `lang`.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Zh => &zh::ZH,
        Lang::En => &en::EN,
    }
}

impl Texts {
    /// A role's name in this language.
    pub fn role(&self, role: Role) -> &'static str {
        match role {
            Role::Admin => self.role_admin,
            Role::Operator => self.role_operator,
            Role::Finance => self.role_finance,
            Role::Auditor => self.role_auditor,
            Role::Merchant => self.role_merchant,
        }
    }

    /// "yes" / "no".
    pub fn yes_no(&self, b: bool) -> &'static str {
        if b { self.yes } else { self.no }
    }

    /// "enabled" / "disabled".
    pub fn on_off(&self, b: impl std::borrow::Borrow<bool>) -> &'static str {
        if *b.borrow() {
            self.enabled
        } else {
            self.disabled
        }
    }
}

/// Everything the console says, in one language.
pub struct Texts {
    /// `lang` attribute of the page.
    pub code: &'static str,
    pub console: &'static str,
    pub nav_label: &'static str,
    /// The name of the other language, in that language (the switch link).
    pub other_lang: &'static str,
    pub logout: &'static str,
    pub role_admin: &'static str,
    pub role_operator: &'static str,
    pub role_finance: &'static str,
    pub role_auditor: &'static str,
    pub role_merchant: &'static str,
    // sections
    pub orders: &'static str,
    pub refunds: &'static str,
    pub bindings: &'static str,
    pub notifications: &'static str,
    pub apps: &'static str,
    pub channels: &'static str,
    pub stores: &'static str,
    pub recon: &'static str,
    pub audit: &'static str,
    pub dashboard: &'static str,
    pub accounts: &'static str,
    // the order's timeline
    pub timeline: &'static str,
    pub time: &'static str,
    pub event: &'static str,
    pub operation: &'static str,
    pub latency: &'static str,
    pub detail: &'static str,
    // message pages
    pub forbidden_title: &'static str,
    pub forbidden_body: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub error_title: &'static str,
    pub error_body: &'static str,
    pub back: &'static str,
    // common words
    pub yes: &'static str,
    pub no: &'static str,
    pub enabled: &'static str,
    pub disabled: &'static str,
    pub enable: &'static str,
    pub disable: &'static str,
    pub search: &'static str,
    pub reset: &'static str,
    pub next_page: &'static str,
    pub first_page: &'static str,
    pub none: &'static str,
    pub all: &'static str,
    pub save: &'static str,
    pub create: &'static str,
    pub approve: &'static str,
    pub reject: &'static str,
    pub details: &'static str,
    pub state: &'static str,
    pub created_at: &'static str,
    pub updated_at: &'static str,
    pub amount: &'static str,
    pub app: &'static str,
    pub store: &'static str,
    pub channel: &'static str,
    pub name: &'static str,
    pub from_date: &'static str,
    pub to_date: &'static str,
    pub nothing_found: &'static str,
    pub done: &'static str,
    pub order: &'static str,
    pub refunded: &'static str,
    pub title: &'static str,
    pub buyer: &'static str,
    pub transaction_id: &'static str,
    pub pay_time: &'static str,
    pub expire_at: &'static str,
    pub error: &'static str,
    pub paid_after_close: &'static str,
    pub synced: &'static str,
    pub refund_applications: &'static str,
    pub decide_by: &'static str,
    pub remark: &'static str,
    pub apply_binding: &'static str,
    pub applied: &'static str,
    pub no_open_channels: &'static str,
    pub optional: &'static str,
    pub test_connection: &'static str,
    pub connection_ok: &'static str,
    pub connection_failed: &'static str,
    pub close_order: &'static str,
    pub closed: &'static str,
    pub refund_amount: &'static str,
    pub refund_order: &'static str,
    pub refundable: &'static str,
    pub refund_asked: &'static str,
    pub sync: &'static str,
    pub reason: &'static str,
    pub attempts: &'static str,
    pub at: &'static str,
    pub outcome: &'static str,
    pub response: &'static str,
    pub resend: &'static str,
    pub not_understood: &'static str,
    pub review_queue: &'static str,
    pub approved: &'static str,
    pub rejected: &'static str,
    pub decided: &'static str,
    pub failing_endpoints: &'static str,
    pub kind: &'static str,
    pub resend_selected: &'static str,
    pub resent: &'static str,
    pub not_resent: &'static str,
    pub actor: &'static str,
    pub action: &'static str,
    pub target: &'static str,
    pub refund_review: &'static str,
    pub auto_refund_paid_after_close: &'static str,
    pub key_confirmed: &'static str,
    pub previous_key_valid_until: &'static str,
    pub settings: &'static str,
    pub rotate_key: &'static str,
    pub rotate_key_hint: &'static str,
    pub overlap_seconds: &'static str,
    pub app_key: &'static str,
    pub app_key_once: &'static str,
    pub channel_configs: &'static str,
    pub credentials: &'static str,
    pub credentials_keys: &'static str,
    pub credentials_hint: &'static str,
    pub replace_credentials: &'static str,
    pub merge_patch_hint: &'static str,
    pub new_config: &'static str,
    pub new_channel: &'static str,
    pub recon_runs: &'static str,
    pub run_day: &'static str,
    pub run: &'static str,
    pub date: &'static str,
    pub findings: &'static str,
    pub resolve: &'static str,
    pub note: &'static str,
    pub statement: &'static str,
    pub download_csv: &'static str,
    pub lines: &'static str,
    pub matched: &'static str,
    pub payments: &'static str,
    pub gross: &'static str,
    pub fees: &'static str,
    pub net: &'static str,
    pub status: &'static str,
    pub subject: &'static str,
    pub resolved: &'static str,
}
