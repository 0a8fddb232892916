//! Rate limits (GCRA token buckets of `governor`), by surface:
//!
//! | surface | key | limit | refused with |
//! |---|---|---|---|
//! | public: cashier pages, registration, payment list, platform keys, the sandbox, unknown routes | client address | `rate_limit_public` | 429, code 4290 |
//! | channel notifications | client address | `rate_limit_public` (same bucket) | 429 with the channel's own failure reply ([`crate::notify`]) |
//! | signed merchant API, binding applications, admin API | client address, before any credential is checked | `rate_limit_api` | 429, code 4290 |
//! | signed merchant API, binding applications | the verified app | `rate_limit_api` | 429, code 4290, signed ([`crate::auth`]) |
//! | console sign-in (`POST /console/login`) | client address | 10 a minute, always on ([`LOGIN_PER_MINUTE`]) | 429 page |
//! | `/healthz`, `/metrics`, API docs | — | none | — |
//!
//! Every refusal has `Retry-After` (whole seconds) and is counted in
//! `cashdesk_rate_limited_total{surface}`; the log gets a sampled warning
//! per address ([`super::sampled`]). Addresses are the client's
//! ([`super::client_ip`]); IPv6 addresses count per /64, the block one
//! subscriber usually has. No address is exempt, loopback included: a
//! proxy on the same host is loopback too (set `trusted_proxies`), and
//! load tests set the limits they need (`cashdesk bench` does).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::client_ip;
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Which limit a path is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Exempt,
    Public,
    /// Limited by the notify handler, which answers in the channel's format.
    Notify,
    Api,
}

impl Surface {
    pub fn of(path: &str) -> Surface {
        match path {
            "/healthz" | "/metrics" | "/api/openapi.json" | "/api/docs" => Surface::Exempt,
            "/api/cashier-desk/payment/list"
            | "/api/cashier-desk/platform-keys"
            | "/api/cashier-desk-sa/register" => Surface::Public,
            p if p.starts_with("/api/cashier-desk/notify/") => Surface::Notify,
            p if p.starts_with("/api/admin/")
                || p.starts_with("/api/cashier-desk/")
                || p.starts_with("/api/cashier-desk-sa/") =>
            {
                Surface::Api
            }
            _ => Surface::Public,
        }
    }
}

/// A refusal and when to come back.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub retry_after: Duration,
}

impl Refused {
    /// `Retry-After` in whole seconds, at least 1.
    pub fn seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    /// The 429 envelope (code 4290, `data.retryAfterSeconds`; the
    /// response gets `Retry-After` from it).
    pub fn error(&self) -> ApiError {
        let n = self.seconds();
        ApiError::with_data(
            ErrorCode::RateLimited,
            format!("too many requests; retry after {n} s"),
            json!({ "retryAfterSeconds": n }),
        )
    }
}

/// Console sign-in attempts a client address may make a minute (on top
/// of each account's own lock after repeated failures).
pub const LOGIN_PER_MINUTE: u32 = 10;

pub struct RateLimits {
    public: Option<DefaultKeyedRateLimiter<IpAddr>>,
    login: Option<DefaultKeyedRateLimiter<IpAddr>>,
    api: Option<DefaultKeyedRateLimiter<IpAddr>>,
    app: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

fn keyed<K: std::hash::Hash + Eq + Clone>(
    rate: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// IPv4 as is; IPv6 by its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

impl RateLimits {
    pub fn new(config: &Config) -> RateLimits {
        RateLimits {
            public: keyed(config.rate_limit_public, config.rate_limit_public_burst),
            api: keyed(config.rate_limit_api, config.rate_limit_api_burst),
            login: NonZeroU32::new(LOGIN_PER_MINUTE)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
            app: keyed(config.rate_limit_api, config.rate_limit_api_burst),
            clock: DefaultClock::default(),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &Option<DefaultKeyedRateLimiter<K>>,
        key: &K,
    ) -> Result<(), Refused> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| Refused {
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// One request on the public surfaces (notifications included).
    pub fn public(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.public, &ip_key(ip))
    }

    /// One request on a credentialed surface, before its credentials.
    pub fn api(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.api, &ip_key(ip))
    }

    /// One console sign-in attempt from `ip`.
    pub fn login(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.login, &ip_key(ip))
    }

    /// One verified request of `app_id`.
    pub fn app(&self, app_id: &str) -> Result<(), Refused> {
        match &self.app {
            None => Ok(()),
            Some(_) => self.check(&self.app, &app_id.to_owned()),
        }
    }

    /// Drops the buckets that are full again (memory: only keys active
    /// lately are kept).
    pub fn retain_recent(&self) {
        for l in [&self.public, &self.api, &self.login].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.app {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Middleware: the per-address limit of the request's surface.
pub async fn by_surface(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let surface = Surface::of(req.uri().path());
    let Some(ip) = client_ip::of(&req) else {
        return next.run(req).await;
    };
    let (verdict, label) = match surface {
        Surface::Public => (state.edge.limits.public(ip), "public"),
        Surface::Api => (state.edge.limits.api(ip), "api"),
        Surface::Exempt | Surface::Notify => (Ok(()), ""),
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(refused) => {
            refuse_logged(&state, label, &ip.to_string());
            refused.error().into_response()
        }
    }
}

/// Counts and (sampled) logs one refusal on `surface` for `key`.
pub fn refuse_logged(state: &AppState, surface: &'static str, key: &str) {
    state.metrics.rate_limited(surface);
    crate::sampled_warn!(
        state,
        "rate_limited",
        key,
        surface,
        client = key,
        "requests refused by the rate limit"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces() {
        for (path, surface) in [
            ("/healthz", Surface::Exempt),
            ("/metrics", Surface::Exempt),
            ("/api/docs", Surface::Exempt),
            ("/api/cashier-desk/unified/orders", Surface::Api),
            ("/api/cashier-desk/payment", Surface::Api),
            ("/api/cashier-desk/refunds/R1", Surface::Api),
            ("/api/cashier-desk-sa/apply/binding-channel", Surface::Api),
            ("/api/admin/apps", Surface::Api),
            ("/api/cashier-desk/payment/list", Surface::Public),
            ("/api/cashier-desk/platform-keys", Surface::Public),
            ("/api/cashier-desk-sa/register", Surface::Public),
            ("/api/cashier-desk/notify/C1", Surface::Notify),
            ("/cashier-desk-web/payment", Surface::Public),
            ("/sandbox/api/pay", Surface::Public),
            ("/nowhere", Surface::Public),
        ] {
            assert_eq!(Surface::of(path), surface, "{path}");
        }
    }

    #[test]
    fn burst_then_refused_with_a_retry_time() {
        let config = Config {
            rate_limit_public: 1,
            rate_limit_public_burst: 3,
            rate_limit_api: 0,
            ..Config::default()
        };
        let l = RateLimits::new(&config);
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        let b: IpAddr = "203.0.113.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(l.public(a).is_ok());
        }
        let refused = l.public(a).expect_err("over the burst");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(refused.seconds(), 1);
        assert!(l.public(b).is_ok(), "another address has its own bucket");
        for _ in 0..100 {
            assert!(l.api(a).is_ok() && l.app("A1").is_ok(), "0 = no limit");
        }
    }

    #[test]
    fn ipv6_counts_per_64() {
        let config = Config {
            rate_limit_public: 1,
            rate_limit_public_burst: 1,
            ..Config::default()
        };
        let l = RateLimits::new(&config);
        assert!(l.public("2001:db8:1:2::1".parse().expect("ip")).is_ok());
        assert!(
            l.public("2001:db8:1:2:ffff::9".parse().expect("ip"))
                .is_err()
        );
        assert!(l.public("2001:db8:1:3::1".parse().expect("ip")).is_ok());
    }
}
