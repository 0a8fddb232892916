//! Operator subcommands: each one is a call of the operator HTTP API
//! through the SDK's [`AdminClient`], so the CLI can never do what the API
//! would refuse, works against a remote server, and is audited like any
//! other admin call. Answers are printed as pretty JSON on stdout.
//!
//! The token comes from `--token` / `CASHDESK_ADMIN_TOKEN`, else the
//! config's `admin_token`, else `<data_dir>/admin.token` (the file
//! `cashdesk serve` generates), so an operator on the server host needs no
//! flags at all.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use cashdesk_sdk::{
    AdminClient, AppSettings, BindingQuery, CreateChannelConfigRequest, CreateChannelRequest,
    CreateStoreRequest, NotificationQuery, OrderQuery, RefundQuery, RegisterAppRequest,
};
use cashdesk_server::Config;
use serde_json::Value;

use crate::cli::{
    AdminOpts, AppAction, AuditAction, BindingAction, ChannelAction, ChannelConfigAction,
    NotificationAction, OrderAction, RefundAction, StoreAction,
};

/// The operator token, from the first place that has one.
fn resolve_token(config_file: Option<&Path>, opts: &AdminOpts) -> anyhow::Result<String> {
    if let Some(token) = opts
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(token.to_owned());
    }
    let config =
        Config::load(config_file).context("loading the configuration to find the admin token")?;
    if let Some(token) = config
        .admin_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(token.to_owned());
    }
    let file = config.admin_token_file();
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => bail!("the admin token file {} is empty", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no admin token: pass --token, set CASHDESK_ADMIN_TOKEN, or run where the data folder is \
             ({} does not exist; set CASHDESK_DATA_DIR)",
            file.display()
        ),
        Err(e) => {
            Err(e).with_context(|| format!("cannot read the admin token file {}", file.display()))
        }
    }
}

pub(crate) fn client(config_file: Option<&Path>, opts: &AdminOpts) -> anyhow::Result<AdminClient> {
    let token = resolve_token(config_file, opts)?;
    AdminClient::new(&opts.url, token).with_context(|| format!("cannot use --url {}", opts.url))
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn show(result: cashdesk_sdk::Result<Value>) -> anyhow::Result<()> {
    print_json(&result?)
}

pub async fn app(config: Option<&Path>, opts: &AdminOpts, action: AppAction) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        AppAction::List => show(c.list_apps().await),
        AppAction::Show { app_id } => show(c.get_app(&app_id).await),
        AppAction::Disable { app_id } => show(c.disable_app(&app_id).await),
        AppAction::Enable { app_id } => show(c.enable_app(&app_id).await),
        AppAction::Settings {
            app_id,
            refund_review,
            auto_refund_paid_after_close,
            notify_url,
        } => {
            if refund_review.is_none()
                && auto_refund_paid_after_close.is_none()
                && notify_url.is_none()
            {
                bail!(
                    "give --refund-review, --auto-refund-paid-after-close (true or false) and/or --notify-url"
                );
            }
            let settings = AppSettings {
                refund_review,
                auto_refund_paid_after_close,
                notify_url,
            };
            show(c.update_app_settings(&app_id, &settings).await)
        }
        AppAction::Create {
            name,
            notify_url,
            sign_type,
            public_key_pem_file,
            refund_review,
            auto_refund_paid_after_close,
        } => {
            let public_key_pem = read_public_key(public_key_pem_file.as_deref())?;
            if sign_type.is_some_and(|t| t.is_asymmetric()) && public_key_pem.is_none() {
                bail!("RSA2 and SM2 apps need --public-key-pem-file");
            }
            let req = RegisterAppRequest {
                app_name: name,
                notify_url,
                sign_type,
                public_key_pem,
                refund_review: refund_review.then_some(true),
                auto_refund_paid_after_close: auto_refund_paid_after_close.then_some(true),
            };
            print_json(&serde_json::to_value(c.create_app(&req).await?)?)
        }
        AppAction::RotateKey {
            app_id,
            overlap_seconds,
            public_key_pem_file,
        } => {
            let public_key_pem = read_public_key(public_key_pem_file.as_deref())?;
            show(
                c.rotate_app_key(&app_id, overlap_seconds, public_key_pem.as_deref())
                    .await,
            )
        }
    }
}

/// The app's public key (PEM) from `--public-key-pem-file`, when given.
fn read_public_key(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    file.map(|f| std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display())))
        .transpose()
}

/// The credentials JSON object from a file, or stdin for `-`.
fn read_credentials(path: &Path) -> anyhow::Result<Value> {
    read_json_object(path, "--credentials-file")
}

/// A JSON object (credentials, a store identity) from a file, or stdin for
/// `-`. Errors never quote the input: it may hold secrets.
fn read_json_object(path: &Path, flag: &str) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .with_context(|| format!("cannot read {flag} from stdin"))?;
        s
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {flag} {}", path.display()))?
    };
    // The parse error may quote the input; the input is a secret.
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {} is not valid JSON (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if !value.is_object() {
        bail!("{flag} {} must hold a JSON object", path.display());
    }
    Ok(value)
}

pub async fn store(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: StoreAction,
) -> anyhow::Result<()> {
    match action {
        StoreAction::SetIdentity {
            app_id,
            store_id,
            config_id,
            identity_file,
        } => {
            // Local input first: a bad file fails before anything is sent.
            let identity = read_json_object(&identity_file, "--identity-file")?;
            let c = client(config, opts)?;
            show(
                c.put_store_identity(&app_id, &store_id, &config_id, &identity)
                    .await,
            )
        }
        StoreAction::Create {
            app_id,
            store_id,
            name,
            disabled,
        } => {
            let req = CreateStoreRequest {
                app_id,
                store_id,
                name,
                enabled: disabled.then_some(false),
            };
            show(client(config, opts)?.create_store(&req).await)
        }
        StoreAction::List { app_id } => {
            show(client(config, opts)?.list_stores(app_id.as_deref()).await)
        }
        StoreAction::Show { app_id, store_id } => {
            show(client(config, opts)?.get_store(&app_id, &store_id).await)
        }
        StoreAction::Rename {
            app_id,
            store_id,
            name,
        } => show(
            client(config, opts)?
                .rename_store(&app_id, &store_id, &name)
                .await,
        ),
        StoreAction::Disable { app_id, store_id } => show(
            client(config, opts)?
                .disable_store(&app_id, &store_id)
                .await,
        ),
        StoreAction::Enable { app_id, store_id } => {
            show(client(config, opts)?.enable_store(&app_id, &store_id).await)
        }
        StoreAction::Identities { app_id, store_id } => show(
            client(config, opts)?
                .list_store_identities(&app_id, &store_id)
                .await,
        ),
        StoreAction::DeleteIdentity {
            app_id,
            store_id,
            config_id,
        } => show(
            client(config, opts)?
                .delete_store_identity(&app_id, &store_id, &config_id)
                .await,
        ),
    }
}

pub async fn channel_config(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: ChannelConfigAction,
) -> anyhow::Result<()> {
    match action {
        ChannelConfigAction::Create {
            channel_type,
            name,
            mch_id,
            api_version,
            credentials_file,
            base_url,
        } => {
            // Local input first: a bad file fails before anything is sent.
            let req = CreateChannelConfigRequest {
                channel_type,
                name,
                mch_id,
                api_version,
                credentials: read_credentials(&credentials_file)?,
                base_url,
            };
            let c = client(config, opts)?;
            print_json(&serde_json::to_value(c.create_channel_config(&req).await?)?)
        }
        ChannelConfigAction::Credentials {
            config_id,
            credentials_file,
        } => {
            let patch = read_credentials(&credentials_file)?;
            show(
                client(config, opts)?
                    .replace_channel_credentials(&config_id, &patch)
                    .await,
            )
        }
        ChannelConfigAction::List => show(client(config, opts)?.list_channel_configs().await),
        ChannelConfigAction::Show { config_id } => {
            show(client(config, opts)?.get_channel_config(&config_id).await)
        }
        ChannelConfigAction::Disable { config_id } => show(
            client(config, opts)?
                .disable_channel_config(&config_id)
                .await,
        ),
        ChannelConfigAction::Enable { config_id } => show(
            client(config, opts)?
                .enable_channel_config(&config_id)
                .await,
        ),
    }
}

pub async fn channel(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: ChannelAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        ChannelAction::Create {
            config_id,
            scene_code,
            name,
            sort,
        } => {
            let req = CreateChannelRequest {
                config_id,
                scene_code,
                channel_name: name,
                sort,
            };
            print_json(&serde_json::to_value(c.create_channel(&req).await?)?)
        }
        ChannelAction::List => show(c.list_channels().await),
        ChannelAction::Show { channel_id } => show(c.get_channel(&channel_id).await),
        ChannelAction::Disable { channel_id } => show(c.disable_channel(&channel_id).await),
        ChannelAction::Enable { channel_id } => show(c.enable_channel(&channel_id).await),
    }
}

pub async fn binding(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: BindingAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        BindingAction::List { state, app_id } => {
            show(c.list_bindings(&BindingQuery { state, app_id }).await)
        }
        BindingAction::Approve { binding_id } => show(c.approve_binding(&binding_id).await),
        BindingAction::Reject { binding_id } => show(c.reject_binding(&binding_id).await),
    }
}

pub async fn order(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: OrderAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        OrderAction::List {
            app_id,
            store_id,
            state,
            limit,
            before,
        } => show(
            c.list_orders(&OrderQuery {
                app_id,
                store_id,
                state,
                limit,
                before,
                ..OrderQuery::default()
            })
            .await,
        ),
        OrderAction::Show { id, app_id } => {
            // cashdesk's orderId (P + 26 characters), else the merchant's
            // outTradeNo: unique per app, so it may name orders of several.
            let is_order_id = id.len() == 27
                && id.starts_with('P')
                && id[1..].bytes().all(|b| b.is_ascii_alphanumeric());
            if is_order_id && app_id.is_none() {
                return show(c.get_order(&id).await);
            }
            let found = c
                .list_orders(&OrderQuery {
                    app_id: app_id.clone(),
                    out_trade_no: Some(id.clone()),
                    limit: Some(50),
                    ..OrderQuery::default()
                })
                .await?;
            match found.as_array().map(Vec::as_slice).unwrap_or_default() {
                [] if is_order_id => show(c.get_order(&id).await),
                [] => bail!(
                    "no order with outTradeNo {id}{}",
                    app_id.map_or_else(String::new, |a| format!(" in app {a}"))
                ),
                [one] => print_json(one),
                several => {
                    let apps: Vec<&str> =
                        several.iter().filter_map(|o| o["appId"].as_str()).collect();
                    bail!(
                        "{} orders have outTradeNo {id} (apps {}): add --app-id",
                        several.len(),
                        apps.join(", ")
                    )
                }
            }
        }
    }
}

pub async fn refund(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: RefundAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        RefundAction::List {
            state,
            app_id,
            order_id,
            limit,
            before,
        } => show(
            c.list_refunds(&RefundQuery {
                app_id,
                order_id,
                state,
                limit,
                before,
            })
            .await,
        ),
        RefundAction::Show { refund_id } => show(c.get_refund(&refund_id).await),
        RefundAction::Approve { refund_id } => show(c.approve_refund(&refund_id).await),
        RefundAction::Reject { refund_id } => show(c.reject_refund(&refund_id).await),
    }
}

pub async fn notification(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: NotificationAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        NotificationAction::List {
            app_id,
            order_id,
            state,
            limit,
            before,
        } => show(
            c.list_notifications(&NotificationQuery {
                app_id,
                order_id,
                state,
                limit,
                before,
            })
            .await,
        ),
        NotificationAction::Show { notify_id } => show(c.get_notification(&notify_id).await),
        NotificationAction::Resend { notify_id } => show(c.resend_notification(&notify_id).await),
    }
}

pub async fn audit(
    config: Option<&Path>,
    opts: &AdminOpts,
    action: AuditAction,
) -> anyhow::Result<()> {
    let c = client(config, opts)?;
    match action {
        AuditAction::List { limit } => show(c.list_audit(limit).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_must_be_a_json_object_and_errors_do_not_echo_them() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"apiKey":"k"}"#).unwrap();
        assert_eq!(read_credentials(&good).unwrap()["apiKey"], "k");
        let array = dir.path().join("array.json");
        std::fs::write(&array, "[1]").unwrap();
        assert!(read_credentials(&array).is_err());
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, r#"{"apiKey": topsecret"#).unwrap();
        let err = format!("{:#}", read_credentials(&broken).unwrap_err());
        assert!(!err.contains("topsecret"), "{err}");
        assert!(read_credentials(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn an_explicit_token_wins() {
        let opts = AdminOpts {
            url: "http://127.0.0.1:8080".into(),
            token: Some("  explicit-token  ".into()),
        };
        assert_eq!(resolve_token(None, &opts).unwrap(), "explicit-token");
    }
}
