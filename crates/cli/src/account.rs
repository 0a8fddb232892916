//! `cashdesk account`: console accounts and their API tokens, through the
//! operator API (an administrator's token: the break-glass admin token on
//! the server host, or an admin account's API token).
//!
//! A password is read from stdin with `--password-stdin`; otherwise a
//! random one is made and printed once on stderr. It never appears in the
//! command line (where `ps` and shell history would keep it).

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use cashdesk_sdk::AdminClient;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::admin::{client, show};
use crate::cli::AdminOpts;

#[derive(Debug, Args)]
pub struct AccountCmd {
    #[command(flatten)]
    pub admin: AdminOpts,
    #[command(subcommand)]
    pub action: AccountAction,
}

#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Create an account (the first admin: `--role admin`, on the server
    /// host, where the admin token file is).
    Create {
        #[arg(long)]
        username: String,
        /// admin, operator, finance, auditor or merchant.
        #[arg(long)]
        role: String,
        /// An app a merchant account sees (repeat for several).
        #[arg(long = "app")]
        apps: Vec<String>,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Show one account (id or username).
    Show { account: String },
    /// Change an account's role, apps, or disable / enable it; it is
    /// signed out everywhere.
    Set {
        account: String,
        #[arg(long)]
        role: Option<String>,
        /// Replaces the merchant account's apps (repeat for several).
        #[arg(long = "app")]
        apps: Vec<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Reset an account's password (and unlock it).
    Password {
        account: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account's TOTP second factor (a lost phone).
    TotpReset { account: String },
    /// API tokens of an account.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token; it is printed once.
    Create {
        account: String,
        #[arg(long)]
        name: String,
    },
    /// List an account's tokens (never the tokens themselves).
    List { account: String },
    /// Revoke a token by its id (`K…`).
    Revoke { token_id: String },
}

/// The password from stdin, or a new random one printed on stderr.
fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        let s = s.trim_end_matches(['\r', '\n']).to_owned();
        if s.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(s);
    }
    let p = cashdesk_crypto::random::nonce_str(20);
    eprintln!("password (shown once): {p}");
    Ok(p)
}

/// An account id from an id or a username.
async fn account_id(c: &AdminClient, account: &str) -> anyhow::Result<String> {
    if account.starts_with('U') && account.len() == 27 {
        return Ok(account.to_owned());
    }
    let list = c.list_accounts().await?;
    list.as_array()
        .into_iter()
        .flatten()
        .find(|a| a["username"] == account)
        .and_then(|a| a["accountId"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no account {account}"))
}

pub async fn account(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: AccountAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        AccountAction::Create {
            username,
            role,
            apps,
            password_stdin,
        } => {
            let p = password(password_stdin)?;
            show(c.create_account(&username, &role, &apps, &p).await)
        }
        AccountAction::List => show(c.list_accounts().await),
        AccountAction::Show { account } => {
            let id = account_id(&c, &account).await?;
            show(c.get_account(&id).await)
        }
        AccountAction::Set {
            account,
            role,
            apps,
            disable,
            enable,
        } => {
            let id = account_id(&c, &account).await?;
            let mut changes = json!({});
            if let Some(role) = role {
                changes["role"] = json!(role);
            }
            if !apps.is_empty() {
                changes["apps"] = json!(apps);
            }
            if disable || enable {
                changes["disabled"] = Value::Bool(disable);
            }
            show(c.update_account(&id, &changes).await)
        }
        AccountAction::Password {
            account,
            password_stdin,
        } => {
            let id = account_id(&c, &account).await?;
            let p = password(password_stdin)?;
            show(c.reset_password(&id, &p).await)
        }
        AccountAction::TotpReset { account } => {
            let id = account_id(&c, &account).await?;
            show(c.reset_totp(&id).await)
        }
        AccountAction::Token { action } => match action {
            TokenAction::Create { account, name } => {
                let id = account_id(&c, &account).await?;
                show(c.create_token(&id, &name).await)
            }
            TokenAction::List { account } => {
                let id = account_id(&c, &account).await?;
                show(c.list_tokens(&id).await)
            }
            TokenAction::Revoke { token_id } => show(c.revoke_token(&token_id).await),
        },
    }
}
