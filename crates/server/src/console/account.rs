//! The account pages: one's own (`/console/account`: password, two-step
//! sign-in, API tokens) and the administrator's (`/console/accounts`:
//! create, role and apps, disable, password reset, TOTP reset, unlock).
//!
//! A secret is shown once, on the answer of the POST that made it (a new
//! API token, the TOTP set-up), never after a redirect: the page that
//! shows it is not a page a link or the history can bring back (`no-store`).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use cashdesk_core::{AppId, Permission, Role};
use cashdesk_crypto::Secret;
use cashdesk_store::{Account, AccountUpdate, ApiToken};
use chrono::Utc;

use super::BASE;
use super::layout::{Ctx, Section, redirect};
use crate::cashier::i18n::Lang;
use crate::service::accounts::{self, NewAccount};
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::payments::render_qr_svg;
use crate::state::AppState;
use crate::wire::time;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/account"), get(own))
        .route(&format!("{BASE}/account/password"), post(change_password))
        .route(&format!("{BASE}/account/totp/start"), post(totp_start))
        .route(&format!("{BASE}/account/totp/confirm"), post(totp_confirm))
        .route(&format!("{BASE}/account/totp/off"), post(totp_off))
        .route(&format!("{BASE}/account/tokens"), post(token_create))
        .route(
            &format!("{BASE}/account/tokens/{{id}}/revoke"),
            post(token_revoke),
        )
        .route(&format!("{BASE}/accounts"), get(list).post(create))
        .route(&format!("{BASE}/accounts/{{id}}"), get(detail).post(change))
}

fn form(body: &Bytes) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(f: &'a std::collections::HashMap<String, String>, k: &str) -> &'a str {
    f.get(k).map_or("", String::as_str)
}

/// The signed-in account (a console session is always an account's).
async fn me(state: &AppState, ctx: &Ctx) -> ServiceResult<Account> {
    let id = ctx.session.principal.account_id.as_deref().unwrap_or("");
    accounts::get(state, id).await
}

struct Texts {
    account: &'static str,
    accounts: &'static str,
    username: &'static str,
    role: &'static str,
    apps: &'static str,
    apps_hint: &'static str,
    password: &'static str,
    current_password: &'static str,
    new_password: &'static str,
    change_password: &'static str,
    totp: &'static str,
    totp_on: &'static str,
    totp_off: &'static str,
    totp_start: &'static str,
    totp_scan: &'static str,
    totp_code: &'static str,
    totp_confirm: &'static str,
    totp_disable: &'static str,
    tokens: &'static str,
    token_name: &'static str,
    token_create: &'static str,
    token_once: &'static str,
    revoke: &'static str,
    revoked: &'static str,
    last_used: &'static str,
    created: &'static str,
    never: &'static str,
    create: &'static str,
    save: &'static str,
    disabled: &'static str,
    enabled: &'static str,
    locked: &'static str,
    disable: &'static str,
    enable: &'static str,
    reset_password: &'static str,
    reset_totp: &'static str,
    unlock: &'static str,
    done: &'static str,
    wrong_password: &'static str,
    wrong_code: &'static str,
}

const ZH: Texts = Texts {
    account: "我的账号",
    accounts: "账号管理",
    username: "用户名",
    role: "角色",
    apps: "应用",
    apps_hint: "商户账号可见的应用 ID，逗号分隔",
    password: "密码",
    current_password: "当前密码",
    new_password: "新密码（12–128 个字符）",
    change_password: "修改密码",
    totp: "两步验证（TOTP）",
    totp_on: "已开启：登录时需要输入动态验证码。",
    totp_off: "未开启。",
    totp_start: "开启两步验证",
    totp_scan: "用验证器 App 扫描二维码（或手动输入密钥），然后输入 App 显示的 6 位验证码确认。",
    totp_code: "6 位验证码",
    totp_confirm: "确认开启",
    totp_disable: "关闭两步验证",
    tokens: "API 令牌",
    token_name: "令牌名称",
    token_create: "创建令牌",
    token_once: "请立即复制此令牌，它只显示这一次：",
    revoke: "吊销",
    revoked: "已吊销",
    last_used: "最近使用",
    created: "创建时间",
    never: "从未",
    create: "创建",
    save: "保存",
    disabled: "已停用",
    enabled: "正常",
    locked: "已锁定",
    disable: "停用",
    enable: "启用",
    reset_password: "重置密码",
    reset_totp: "移除两步验证",
    unlock: "解锁",
    done: "已完成。",
    wrong_password: "当前密码不正确。",
    wrong_code: "验证码不正确，请重试。",
};

const EN: Texts = Texts {
    account: "My account",
    accounts: "Accounts",
    username: "Username",
    role: "Role",
    apps: "Apps",
    apps_hint: "App ids a merchant account sees, comma-separated",
    password: "Password",
    current_password: "Current password",
    new_password: "New password (12–128 characters)",
    change_password: "Change password",
    totp: "Two-step sign-in (TOTP)",
    totp_on: "On: sign-in asks for a one-time code.",
    totp_off: "Off.",
    totp_start: "Turn on two-step sign-in",
    totp_scan: "Scan the QR code with an authenticator app (or type the secret), then confirm with the 6-digit code it shows.",
    totp_code: "6-digit code",
    totp_confirm: "Confirm",
    totp_disable: "Turn off two-step sign-in",
    tokens: "API tokens",
    token_name: "Token name",
    token_create: "Create token",
    token_once: "Copy this token now; it is shown only this once:",
    revoke: "Revoke",
    revoked: "revoked",
    last_used: "Last used",
    created: "Created",
    never: "never",
    create: "Create",
    save: "Save",
    disabled: "disabled",
    enabled: "active",
    locked: "locked",
    disable: "Disable",
    enable: "Enable",
    reset_password: "Reset password",
    reset_totp: "Remove two-step sign-in",
    unlock: "Unlock",
    done: "Done.",
    wrong_password: "The current password is wrong.",
    wrong_code: "That code is wrong; try again.",
};

fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

struct TokenRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    revoked: bool,
}

fn token_rows(t: &Texts, tokens: &[ApiToken]) -> Vec<TokenRow> {
    tokens
        .iter()
        .map(|k| TokenRow {
            id: k.token_id.to_string(),
            name: k.name.clone(),
            created: time(k.created_at),
            last_used: k.last_used_at.map_or_else(|| t.never.to_owned(), time),
            revoked: k.revoked_at.is_some(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct OwnPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    username: &'a str,
    role: &'a str,
    apps: String,
    totp_enabled: bool,
    /// The set-up in progress: the QR code (a data: URL) and the secret.
    totp_setup: Option<(String, String)>,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
}

async fn own_page(
    state: &AppState,
    ctx: &Ctx,
    totp_setup: Option<(String, String)>,
    new_token: Option<Secret>,
) -> Response {
    let t = texts(ctx.session.lang);
    let account = match me(state, ctx).await {
        Ok(a) => a,
        Err(e) => return ctx.fail(&e),
    };
    let tokens = match state.store.list_tokens(&account.account_id).await {
        Ok(k) => k,
        Err(e) => return ctx.fail(&e.into()),
    };
    let page = OwnPage {
        t,
        csrf: ctx.csrf(),
        username: &account.username,
        role: account.role.as_str(),
        apps: join_apps(&account.apps),
        totp_enabled: account.totp_enabled,
        totp_setup,
        tokens: token_rows(t, &tokens),
        new_token: new_token.map(|s| s.expose().to_owned()),
    };
    ctx.render(None, t.account, &page)
}

fn join_apps(apps: &[AppId]) -> String {
    apps.iter()
        .map(AppId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn own(State(state): State<AppState>, ctx: Ctx) -> Response {
    own_page(&state, &ctx, None, None).await
}

const OWN: &str = "/console/account";

async fn change_password(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let t = texts(ctx.session.lang);
    let f = form(&body);
    let result = async {
        let account = me(&state, &ctx).await?;
        if !accounts::verify_password(field(&f, "current"), &account.password_hash) {
            return Err(ServiceError::invalid_as("current", t.wrong_password));
        }
        let new = field(&f, "password");
        accounts::check_password("password", new)?;
        let update = AccountUpdate {
            password_hash: Some(accounts::hash_password(new)?),
            ..AccountUpdate::default()
        };
        let by = &ctx.session.principal;
        accounts::update(&state, &account, update, "account.password_change", by).await
    }
    .await;
    // A new password ends every session of the account, this one too.
    match result {
        Ok(_) => redirect(&format!("{BASE}/login"), None),
        Err(e) => ctx.done(OWN, Err::<(), _>(e), t.done),
    }
}

fn qr_data_url(url: &str) -> ServiceResult<String> {
    let svg = render_qr_svg(url)?;
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// The otpauth URL's `secret=` (base32), to type in by hand.
fn secret_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "secret")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

/// Starts (or restarts) the set-up: a new secret, kept sealed and not yet
/// asked at sign-in; the page shows it this once.
async fn totp_start(State(state): State<AppState>, ctx: Ctx) -> Response {
    let result = async {
        let account = me(&state, &ctx).await?;
        if account.totp_enabled {
            return Err(ServiceError::state_not_allowed(
                "two-step sign-in is already on",
            ));
        }
        let (sealed, url) = accounts::new_totp(&state, &account)?;
        let update = AccountUpdate {
            totp: Some(Some((sealed, false))),
            ..AccountUpdate::default()
        };
        let by = &ctx.session.principal;
        accounts::update(&state, &account, update, "account.totp_start", by).await?;
        Ok((qr_data_url(&url)?, secret_of(&url)))
    }
    .await;
    match result {
        Ok(setup) => own_page(&state, &ctx, Some(setup), None).await,
        Err(e) => ctx.done(OWN, Err::<(), _>(e), ""),
    }
}

async fn totp_confirm(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let t = texts(ctx.session.lang);
    let f = form(&body);
    let result = async {
        let account = me(&state, &ctx).await?;
        let Some(sealed) = account.totp_sealed.clone() else {
            return Err(ServiceError::state_not_allowed("start the set-up first"));
        };
        if !accounts::check_totp_code(&state, &account, field(&f, "code"))? {
            return Err(ServiceError::invalid_as("code", t.wrong_code));
        }
        let update = AccountUpdate {
            totp: Some(Some((sealed, true))),
            ..AccountUpdate::default()
        };
        let by = &ctx.session.principal;
        accounts::update(&state, &account, update, "account.totp_enable", by).await
    }
    .await;
    ctx.done(OWN, result, t.done)
}

/// Turning the second factor off asks for the password again.
async fn totp_off(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let t = texts(ctx.session.lang);
    let f = form(&body);
    let result = async {
        let account = me(&state, &ctx).await?;
        if !accounts::verify_password(field(&f, "current"), &account.password_hash) {
            return Err(ServiceError::invalid_as("current", t.wrong_password));
        }
        let update = AccountUpdate {
            totp: Some(None),
            ..AccountUpdate::default()
        };
        let by = &ctx.session.principal;
        accounts::update(&state, &account, update, "account.totp_disable", by).await
    }
    .await;
    ctx.done(OWN, result, t.done)
}

async fn token_create(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = form(&body);
    let result = async {
        let account = me(&state, &ctx).await?;
        let by = &ctx.session.principal;
        accounts::create_token(&state, &account, field(&f, "name"), by).await
    }
    .await;
    match result {
        Ok((_, clear)) => own_page(&state, &ctx, None, Some(clear)).await,
        Err(e) => ctx.done(OWN, Err::<(), _>(e), ""),
    }
}

async fn token_revoke(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let t = texts(ctx.session.lang);
    let result = async {
        let account = me(&state, &ctx).await?;
        let by = &ctx.session.principal;
        accounts::revoke_token(&state, &id, Some(&account.account_id), by).await
    }
    .await;
    ctx.done(OWN, result, t.done)
}

// --- the administrator's pages ------------------------------------------

struct AccountRow {
    id: String,
    username: String,
    role: &'static str,
    apps: String,
    disabled: bool,
    locked: bool,
    totp: bool,
}

fn row(a: &Account) -> AccountRow {
    AccountRow {
        id: a.account_id.to_string(),
        username: a.username.clone(),
        role: a.role.as_str(),
        apps: join_apps(&a.apps),
        disabled: a.disabled,
        locked: accounts::locked_until(a, Utc::now()).is_some(),
        totp: a.totp_enabled,
    }
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct ListPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    rows: Vec<AccountRow>,
    roles: &'static [Role],
}

#[derive(Template)]
#[template(path = "console/account_detail.html")]
struct DetailPage<'a> {
    t: &'static Texts,
    csrf: &'a str,
    a: AccountRow,
    roles: &'static [Role],
    tokens: Vec<TokenRow>,
}

async fn list(State(state): State<AppState>, ctx: Ctx) -> Response {
    if let Err(r) = ctx.require(Permission::AccountsManage) {
        return r;
    }
    let t = texts(ctx.session.lang);
    let rows = match state.store.list_accounts().await {
        Ok(list) => list.iter().map(row).collect(),
        Err(e) => return ctx.fail(&e.into()),
    };
    let page = ListPage {
        t,
        csrf: ctx.csrf(),
        rows,
        roles: Role::ALL,
    };
    ctx.render(Some(Section::Accounts), t.accounts, &page)
}

/// `apps`: app ids, separated by commas or spaces.
fn parse_apps(s: &str) -> ServiceResult<Vec<AppId>> {
    s.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            AppId::parse(a)
                .map_err(|_| ServiceError::invalid("apps", format!("{a} is not an app id")))
        })
        .collect()
}

fn parse_role(s: &str) -> ServiceResult<Role> {
    Role::parse(s).ok_or_else(|| ServiceError::invalid("role", "is not a role"))
}

async fn create(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    if let Err(r) = ctx.require(Permission::AccountsManage) {
        return r;
    }
    let t = texts(ctx.session.lang);
    let f = form(&body);
    let result = async {
        let new = NewAccount {
            username: field(&f, "username").trim().to_owned(),
            role: parse_role(field(&f, "role"))?,
            apps: parse_apps(field(&f, "apps"))?,
            password: Secret::new(field(&f, "password").to_owned()),
        };
        accounts::create(&state, new, &ctx.session.principal).await
    }
    .await;
    ctx.done(&format!("{BASE}/accounts"), result, t.done)
}

async fn detail(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    if let Err(r) = ctx.require(Permission::AccountsManage) {
        return r;
    }
    let t = texts(ctx.session.lang);
    let account = match accounts::get(&state, &id).await {
        Ok(a) => a,
        Err(ServiceError::NotFound { .. }) => return ctx.not_found(),
        Err(e) => return ctx.fail(&e),
    };
    let tokens = match state.store.list_tokens(&account.account_id).await {
        Ok(k) => k,
        Err(e) => return ctx.fail(&e.into()),
    };
    let page = DetailPage {
        t,
        csrf: ctx.csrf(),
        a: row(&account),
        roles: Role::ALL,
        tokens: token_rows(t, &tokens),
    };
    ctx.render(Some(Section::Accounts), &account.username, &page)
}

/// `POST /console/accounts/{id}` with `action` = `settings` (role, apps),
/// `disable`, `enable`, `password`, `totp_reset` or `unlock`.
async fn change(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = ctx.require(Permission::AccountsManage) {
        return r;
    }
    if cashdesk_core::AccountId::parse(&id).is_none() {
        return ctx.not_found();
    }
    let t = texts(ctx.session.lang);
    let f = form(&body);
    let by = &ctx.session.principal;
    let result = async {
        let account = accounts::get(&state, &id).await?;
        let (update, action) = match field(&f, "action") {
            "settings" => (
                AccountUpdate {
                    role: Some(parse_role(field(&f, "role"))?),
                    apps: Some(parse_apps(field(&f, "apps"))?),
                    ..AccountUpdate::default()
                },
                "account.update",
            ),
            "disable" | "enable" => {
                let disable = field(&f, "action") == "disable";
                if disable && by.account_id.as_deref() == Some(account.account_id.as_str()) {
                    return Err(ServiceError::invalid(
                        "disabled",
                        "an account cannot disable itself",
                    ));
                }
                (
                    AccountUpdate {
                        disabled: Some(disable),
                        ..AccountUpdate::default()
                    },
                    "account.update",
                )
            }
            "password" => {
                let p = field(&f, "password");
                accounts::check_password("password", p)?;
                (
                    AccountUpdate {
                        password_hash: Some(accounts::hash_password(p)?),
                        unlock: true,
                        ..AccountUpdate::default()
                    },
                    "account.password_reset",
                )
            }
            "totp_reset" => (
                AccountUpdate {
                    totp: Some(None),
                    ..AccountUpdate::default()
                },
                "account.totp_reset",
            ),
            "unlock" => (
                AccountUpdate {
                    unlock: true,
                    ..AccountUpdate::default()
                },
                "account.unlock",
            ),
            _ => return Err(ServiceError::invalid("action", "is not an account action")),
        };
        accounts::update(&state, &account, update, action, by).await
    }
    .await;
    ctx.done(&format!("{BASE}/accounts/{id}"), result, t.done)
}
