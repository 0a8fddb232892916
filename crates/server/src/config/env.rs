//! Which `CASHDESK_*` environment variables are configuration
//! ([`ENV_KEYS`]), which belong to other commands or the tests
//! ([`OTHER_ENV_VARS`]), and the ones `cashdesk serve` warns about
//! ([`unknown_env_vars`]).

/// The environment variable names (after `CASHDESK_`, lowercased) that are
/// configuration.
pub const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "admin_token",
    "public_url",
    "sandbox",
    "open_registration",
    "binding_auto_approve_secs",
    "allow_private_notify_urls",
    "body_limit_bytes",
    "log_format",
    "master_key",
    "sandbox_tls_listen",
    "sandbox_notify_schedule",
    "channel_timeout_ms",
    "wechat_oauth_base_url",
    "query_schedule",
    "recon_window",
    "notify_schedule",
    "notify_timeout_ms",
    "mode",
    "sandbox_listen",
    "trusted_proxies",
    "proxy_header",
    "max_connections",
    "header_read_timeout_ms",
    "idle_timeout_ms",
    "body_read_timeout_ms",
    "rate_limit_public",
    "rate_limit_public_burst",
    "rate_limit_api",
    "rate_limit_api_burst",
    "sandbox_notify_allow",
    "sandbox_oauth_domains",
    "sandbox_merchants_per_minute",
    "sandbox_merchants_per_minute_per_ip",
];

/// `CASHDESK_*` variables that are not configuration of `cashdesk serve`
/// but are read by other commands or by the tests: [`unknown_env_vars`]
/// does not warn about them.
pub const OTHER_ENV_VARS: &[&str] = &[
    "CASHDESK_LOG",
    "CASHDESK_URL",
    "CASHDESK_TEST_POSTGRES_URL",
    "CASHDESK_CHROMIUM",
    "CASHDESK_CHROMEDRIVER",
];
/// `CASHDESK_*` variables in `vars` that are neither configuration
/// ([`ENV_KEYS`]) nor read by another command ([`OTHER_ENV_VARS`]):
/// `cashdesk serve` warns about each (a typo such as `CASHDESK_SANBOX`
/// would otherwise be ignored without a word).
pub fn unknown_env_vars(vars: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = vars
        .into_iter()
        .filter(|name| {
            name.strip_prefix("CASHDESK_").is_some_and(|key| {
                !ENV_KEYS.contains(&key.to_ascii_lowercase().as_str())
                    && !OTHER_ENV_VARS.contains(&name.as_str())
                    && !name.starts_with("CASHDESK_TEST_")
            })
        })
        .collect();
    unknown.sort();
    unknown
}
