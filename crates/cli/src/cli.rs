//! The command line (clap derive) and the dispatch to the command modules.
//!
//! Operator commands share [`AdminOpts`] (`--url`, `--token`), declared
//! `global` so they may follow any subcommand (`cashdesk app list --url …`).
//! Every operator command prints the API's JSON answer, pretty-printed, on
//! stdout, so scripts can pipe it to `jq`.

use std::path::PathBuf;

use cashdesk_core::{BindingState, SignType};
use clap::{Args, Parser, Subcommand};

use crate::{admin, bench, sandbox, serve, sign};

/// cashdesk: a self-hosted aggregated payment gateway.
#[derive(Debug, Parser)]
#[command(name = "cashdesk", version, about, long_about = None)]
pub struct Cli {
    /// Config file (TOML). Default: ./cashdesk.toml when it exists.
    /// `CASHDESK_*` environment variables override it.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (zero configuration: ./cashdesk-data, SQLite, sandbox).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the channel sandbox alone: WeChat Pay (v2 and v3), Alipay and
    /// Lakala simulators, with their payer pages and test API.
    #[command(after_long_help = sandbox::LONG_HELP)]
    Sandbox(sandbox::SandboxArgs),
    /// Benchmark: a server, the sandbox, a merchant receiver and N
    /// merchant clients running the whole payment cycle on loopback; prints
    /// throughput, per-stage latency, errors and the server's memory.
    /// `bench recon`: a day's reconciliation of a generated bill.
    Bench(bench::BenchArgs),
    /// Print the five Cashdesk-* signature headers for a request (or a
    /// ready curl command line).
    Sign(sign::SignArgs),
    /// Merchant apps.
    App(AppCmd),
    /// Channel configs: a merchant account at WeChat Pay, Alipay or Lakala.
    #[command(name = "channel-config")]
    ChannelConfig(ChannelConfigCmd),
    /// Channels: one scene of a channel config that apps may apply for.
    Channel(ChannelCmd),
    /// Apps' applications to use a channel: list, approve, reject.
    Binding(BindingCmd),
    /// Stores of an app (the shops of a chain) and their own merchant
    /// identity per channel config.
    Store(StoreCmd),
    /// Pay orders.
    Order(OrderCmd),
    /// Refunds: list, show, and review (approve / reject) for apps with
    /// refund review on.
    Refund(RefundCmd),
    /// Merchant notifications: list, show (with every attempt), resend.
    Notification(NotificationCmd),
    /// The operator audit log.
    Audit(AuditCmd),
    /// Reconciliation: run a day against the channels' bills, list runs
    /// and findings, resolve, export CSV.
    Recon(crate::recon::ReconCmd),
    /// Console accounts (roles, passwords, second factor) and their API
    /// tokens.
    Account(crate::account::AccountCmd),
}

/// Where the operator API is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct AdminOpts {
    /// The cashdesk server's base URL.
    #[arg(
        long,
        env = "CASHDESK_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// The operator token. Default: CASHDESK_ADMIN_TOKEN, the config's
    /// admin_token, or <data_dir>/admin.token.
    #[arg(
        long,
        env = "CASHDESK_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct AppCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: AppAction,
}

#[derive(Debug, Subcommand)]
pub enum AppAction {
    /// List all apps.
    List,
    /// Show one app.
    Show { app_id: String },
    /// Register an app; prints its appId and appKey (shown once: keep it).
    Create {
        /// Display name (1..=64 characters).
        #[arg(long)]
        name: String,
        /// Default notify URL for the app's orders.
        #[arg(long)]
        notify_url: Option<String>,
        /// HMAC-SHA256 (default), HMAC-SM3, MD5, RSA2 or SM2.
        #[arg(long, value_parser = parse_sign_type)]
        sign_type: Option<SignType>,
        /// The app's public key (PEM), required for RSA2 and SM2.
        #[arg(long, value_name = "FILE")]
        public_key_pem_file: Option<PathBuf>,
        /// Refunds of this app wait for an operator's review.
        #[arg(long)]
        refund_review: bool,
        /// Refund a payment that arrives for an already closed order
        /// automatically.
        #[arg(long)]
        auto_refund_paid_after_close: bool,
    },
    /// Change an app's settings (only the ones given).
    Settings {
        app_id: String,
        /// Refunds wait for an operator's review: true or false.
        #[arg(long, value_name = "BOOL")]
        refund_review: Option<bool>,
        /// Refund payments for closed orders automatically: true or false.
        #[arg(long, value_name = "BOOL")]
        auto_refund_paid_after_close: Option<bool>,
        /// A new notify URL; its undelivered notifications addressed to the
        /// old one follow it. "" removes the app's URL.
        #[arg(long, value_name = "URL")]
        notify_url: Option<String>,
    },
    /// Give the app a new key; the old one stays valid for
    /// --overlap-seconds (default one day). Shared-key apps: prints the new
    /// appKey (shown once). RSA2/SM2 apps: give the new public key.
    RotateKey {
        app_id: String,
        /// How long the previous key is still accepted (0 to 2592000; 0
        /// ends it at once).
        #[arg(long, value_name = "SECONDS")]
        overlap_seconds: Option<u32>,
        /// RSA2/SM2 apps: the new public key (PEM).
        #[arg(long, value_name = "FILE")]
        public_key_pem_file: Option<PathBuf>,
    },
    /// Refuse the app's requests from now on.
    Disable { app_id: String },
    /// Accept the app's requests again.
    Enable { app_id: String },
}

#[derive(Debug, Args)]
pub struct ChannelConfigCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: ChannelConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ChannelConfigAction {
    /// Add a channel config; credentials are encrypted at rest and never
    /// shown again.
    Create {
        /// wx-pay, ali-pay or lakala.
        #[arg(long)]
        channel_type: String,
        /// A name for operators.
        #[arg(long)]
        name: String,
        /// The merchant id at the channel (WeChat mch_id, Alipay PID,
        /// Lakala merchant_no).
        #[arg(long)]
        mch_id: String,
        /// The channel API version: v2 or v3 for wx-pay (required); ali-pay
        /// (v2) and lakala (v3) have one, the default.
        #[arg(long)]
        api_version: Option<String>,
        /// A JSON object with the channel credentials (keys, certificates);
        /// `-` reads it from stdin.
        #[arg(long, value_name = "FILE")]
        credentials_file: PathBuf,
        /// The channel's API origin (e.g. the built-in sandbox). Default:
        /// the channel's production URL.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Replace credentials (certificate rotation, a new platform key, a
    /// new API key): the file is a JSON merge patch on the stored object
    /// (keys given replace, null removes, the rest stay), validated by the
    /// channel before it is stored; effective at once, audited.
    Credentials {
        config_id: String,
        /// A JSON object with the credentials that change; `-` reads it
        /// from stdin.
        #[arg(long, value_name = "FILE")]
        credentials_file: PathBuf,
    },
    /// List channel configs (credentials masked).
    List,
    /// Show one channel config (credentials masked).
    Show { config_id: String },
    /// Stop using the config (its channels are no longer offered).
    Disable { config_id: String },
    /// Use the config again.
    Enable { config_id: String },
}

#[derive(Debug, Args)]
pub struct ChannelCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: ChannelAction,
}

#[derive(Debug, Subcommand)]
pub enum ChannelAction {
    /// Add a channel (a scene of a config) that apps may apply for.
    Create {
        #[arg(long)]
        config_id: String,
        /// mini, jsapi, native, h5, app, wap, page or qr.
        #[arg(long)]
        scene_code: String,
        /// The name buyers see.
        #[arg(long)]
        name: String,
        /// Position in the cashier's list (lower first).
        #[arg(long)]
        sort: Option<i64>,
    },
    /// List channels.
    List,
    /// Show one channel.
    Show { channel_id: String },
    /// Stop offering the channel to buyers.
    Disable { channel_id: String },
    /// Offer the channel again.
    Enable { channel_id: String },
}

#[derive(Debug, Args)]
pub struct BindingCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: BindingAction,
}

#[derive(Debug, Subcommand)]
pub enum BindingAction {
    /// List binding applications.
    List {
        /// PENDING, APPROVED or REJECTED.
        #[arg(long, value_parser = parse_binding_state)]
        state: Option<BindingState>,
        #[arg(long)]
        app_id: Option<String>,
    },
    /// Approve a pending application: the channel appears in the app's
    /// orders.
    Approve { binding_id: String },
    /// Reject a pending application.
    Reject { binding_id: String },
}

#[derive(Debug, Args)]
pub struct OrderCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: OrderAction,
}

#[derive(Debug, Subcommand)]
pub enum OrderAction {
    /// List orders, newest first.
    List {
        #[arg(long)]
        app_id: Option<String>,
        /// Only this store's orders.
        #[arg(long)]
        store_id: Option<String>,
        /// CREATED, PAYING, SUCCESS, FAILED, CLOSED, …
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// Only orders older than this orderId (paging: the last one shown).
        #[arg(long)]
        before: Option<String>,
    },
    /// Show one order, by cashdesk's orderId (P…) or the merchant's
    /// outTradeNo.
    Show {
        /// orderId or outTradeNo.
        id: String,
        /// The app whose outTradeNo it is (needed only when several apps
        /// used the same one).
        #[arg(long)]
        app_id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct StoreCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Add a store to an app; orders and binding applications name it by
    /// its store id.
    Create {
        #[arg(long)]
        app_id: String,
        /// Letters, digits, _ and - (at most 32).
        #[arg(long)]
        store_id: String,
        /// A name for operators (at most 64 characters).
        #[arg(long)]
        name: String,
        /// Create it disabled (it takes no orders until enabled).
        #[arg(long)]
        disabled: bool,
    },
    /// List stores (of one app with --app-id), with their identities.
    List {
        #[arg(long)]
        app_id: Option<String>,
    },
    /// Show one store and its identities (secrets masked).
    Show { app_id: String, store_id: String },
    /// Rename a store.
    Rename {
        app_id: String,
        store_id: String,
        #[arg(long)]
        name: String,
    },
    /// Refuse the store's new orders, payments and applications.
    Disable { app_id: String, store_id: String },
    /// Accept them again.
    Enable { app_id: String, store_id: String },
    /// Set the store's own merchant identity at a channel config (WeChat
    /// service-provider {"subMchId","subAppId"}, Lakala
    /// {"merchantNo","termNo"}, Alipay {"appAuthToken","authAppId","sellerId"});
    /// it is checked by the channel and encrypted at rest.
    SetIdentity {
        app_id: String,
        store_id: String,
        config_id: String,
        /// A JSON object with the identity's fields; `-` reads it from stdin.
        #[arg(long, value_name = "FILE")]
        identity_file: PathBuf,
    },
    /// List the store's identities (secrets masked).
    Identities { app_id: String, store_id: String },
    /// Remove the store's identity at a config: its orders use the
    /// config's own account again.
    DeleteIdentity {
        app_id: String,
        store_id: String,
        config_id: String,
    },
}

#[derive(Debug, Args)]
pub struct RefundCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: RefundAction,
}

#[derive(Debug, Subcommand)]
pub enum RefundAction {
    /// List refunds, newest first.
    List {
        /// PENDING_REVIEW, PROCESSING, SUCCESS, FAIL or REJECTED.
        #[arg(long, value_parser = parse_refund_state)]
        state: Option<String>,
        #[arg(long)]
        app_id: Option<String>,
        /// Only the refunds of this order (its orderId).
        #[arg(long)]
        order_id: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// Only refunds older than this refundId (paging: the last one shown).
        #[arg(long)]
        before: Option<String>,
    },
    /// Show one refund by its refundId.
    Show { refund_id: String },
    /// Approve a PENDING_REVIEW refund: it goes to the channel.
    Approve { refund_id: String },
    /// Reject a PENDING_REVIEW refund: its amount is refundable again.
    Reject { refund_id: String },
}

#[derive(Debug, Args)]
pub struct NotificationCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: NotificationAction,
}

#[derive(Debug, Subcommand)]
pub enum NotificationAction {
    /// List merchant notifications, newest first.
    List {
        #[arg(long)]
        app_id: Option<String>,
        #[arg(long)]
        order_id: Option<String>,
        /// PENDING, DELIVERED or FAILED.
        #[arg(long, value_parser = parse_notification_state)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// Only notifications older than this notifyId (paging).
        #[arg(long)]
        before: Option<String>,
    },
    /// Show one notification: its body, state and every delivery attempt.
    Show { notify_id: String },
    /// Send it again now, whatever its state, with the same notifyId.
    Resend { notify_id: String },
}

#[derive(Debug, Args)]
pub struct AuditCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// List operator actions, newest first.
    List {
        #[arg(long)]
        limit: Option<u32>,
    },
}

pub fn parse_sign_type(s: &str) -> Result<SignType, String> {
    SignType::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
        format!("unknown sign type `{s}` (use HMAC-SHA256, HMAC-SM3, MD5, RSA2 or SM2)")
    })
}

fn parse_binding_state(s: &str) -> Result<BindingState, String> {
    BindingState::parse(&s.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown state `{s}` (use PENDING, APPROVED or REJECTED)"))
}

fn parse_refund_state(s: &str) -> Result<String, String> {
    cashdesk_core::RefundState::parse(&s.to_ascii_uppercase())
        .map(|st| st.as_str().to_owned())
        .ok_or_else(|| {
            format!(
                "unknown state `{s}` (use PENDING_REVIEW, PROCESSING, SUCCESS, FAIL or REJECTED)"
            )
        })
}

fn parse_notification_state(s: &str) -> Result<String, String> {
    let up = s.to_ascii_uppercase();
    match up.as_str() {
        "PENDING" | "DELIVERED" | "FAILED" => Ok(up),
        _ => Err(format!(
            "unknown state `{s}` (use PENDING, DELIVERED or FAILED)"
        )),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command {
        Command::Serve => serve::serve(config.as_deref()).await,
        Command::Migrate => serve::migrate(config.as_deref()).await,
        Command::Sandbox(args) => sandbox::run(&args).await,
        Command::Bench(args) => bench::run(&args).await,
        Command::Sign(args) => sign::run(&args),
        Command::App(cmd) => admin::app(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::ChannelConfig(cmd) => {
            admin::channel_config(config.as_deref(), &cmd.admin, cmd.action).await
        }
        Command::Channel(cmd) => admin::channel(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Binding(cmd) => admin::binding(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Store(cmd) => admin::store(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Order(cmd) => admin::order(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Refund(cmd) => admin::refund(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Notification(cmd) => {
            admin::notification(config.as_deref(), &cmd.admin, cmd.action).await
        }
        Command::Audit(cmd) => admin::audit(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Recon(cmd) => crate::recon::recon(config.as_deref(), &cmd.admin, cmd.action).await,
        Command::Account(cmd) => {
            crate::account::account(config.as_deref(), &cmd.admin, cmd.action).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn admin_options_may_follow_the_subcommand() {
        let cli = Cli::try_parse_from([
            "cashdesk",
            "app",
            "list",
            "--url",
            "http://h:1",
            "--token",
            "t",
        ])
        .expect("parses");
        match cli.command {
            Command::App(cmd) => {
                assert_eq!(cmd.admin.url, "http://h:1");
                assert_eq!(cmd.admin.token.as_deref(), Some("t"));
                assert!(matches!(cmd.action, AppAction::List));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sign_types_and_states_parse_case_insensitively() {
        assert_eq!(parse_sign_type("hmac-sm3"), Ok(SignType::HmacSm3));
        assert!(parse_sign_type("SHA1").is_err());
        assert_eq!(parse_binding_state("pending"), Ok(BindingState::Pending));
        assert!(parse_binding_state("DONE").is_err());
        assert_eq!(
            parse_refund_state("pending_review").as_deref(),
            Ok("PENDING_REVIEW")
        );
        assert!(parse_refund_state("DONE").is_err());
        assert_eq!(parse_notification_state("failed").as_deref(), Ok("FAILED"));
        assert!(parse_notification_state("LOST").is_err());
    }
}
