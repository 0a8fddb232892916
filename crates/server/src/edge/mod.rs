//! The HTTP edge: what stands between the network and the handlers.
//!
//! - [`listener`]: the accept loop (HTTP/1.1 over hyper) with the
//!   connection cap and load shedding, header, idle and body timeouts,
//!   graceful drain, and the peer address for [`axum::extract::ConnectInfo`];
//! - [`client_ip`]: the client's address (the peer's, or from a trusted
//!   proxy's header), resolved once per request;
//! - [`ratelimit`]: per-address and per-app limits (429);
//! - [`sampled`]: warnings about strangers' input, logged once per
//!   interval with a count instead of once per request;
//! - [`Posture`]: development or production, and what follows from it.
//!
//! Every listener (the public one and the sandbox's own) serves a router
//! wrapped by [`with_layers`], so nothing skips the body limit, the
//! timeouts, the rate limits, catch-panic, tracing or the metrics.

pub mod client_ip;
pub mod listener;
pub mod ratelimit;
pub mod sampled;

use axum::Router;
use axum::middleware::from_fn_with_state;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, Mode};
use crate::state::AppState;
use crate::{input, ops};

/// What this start's posture decided (see `config` "Postures").
#[derive(Debug, Clone)]
pub struct Posture {
    pub mode: Mode,
    /// Why: "listener 0.0.0.0:8080 is not loopback", "set explicitly".
    pub reason: String,
    /// The sandbox's base URL (without `/sandbox`), when it runs.
    pub sandbox_url: Option<String>,
    /// Signature errors carry `expectedStringToSign` (development with
    /// the sandbox on only: it helps a merchant's engineer, and tells a
    /// stranger nothing they could not compute, but production says less).
    pub show_string_to_sign: bool,
}

/// Per-application edge state: posture, limits, proxies, warning sampler.
pub struct Edge {
    pub posture: Posture,
    pub limits: ratelimit::RateLimits,
    pub proxies: client_ip::TrustedProxies,
    pub warnings: sampled::Sampler,
}

impl Edge {
    pub fn new(config: &Config, posture: Posture) -> Edge {
        Edge {
            posture,
            limits: ratelimit::RateLimits::new(config),
            proxies: client_ip::TrustedProxies::new(config),
            warnings: sampled::Sampler::default(),
        }
    }

    /// Forgets rate-limit and sampler entries not seen for a while
    /// (memory stays bounded by the recently active keys).
    pub fn housekeeping(&self) {
        self.limits.retain_recent();
        self.warnings.prune();
    }
}

/// The layers every served router gets. From the inside out: body limit
/// and deadline, rate limit by surface, request metrics (per route, so
/// the matched route is known), panic → 500 envelope, tracing (spans with
/// the client address), and the client address itself, resolved first.
pub fn with_layers(router: Router, state: &AppState) -> Router {
    router
        .layer(from_fn_with_state(state.clone(), input::limit_body))
        .layer(from_fn_with_state(state.clone(), ratelimit::by_surface))
        .layer(from_fn_with_state(state.clone(), ops::track_metrics))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        // Spans carry the path only: a query string may hold a cashier token.
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                let ip = client_ip::of(req);
                tracing::info_span!(
                    "http",
                    method = %req.method(),
                    path = %req.uri().path(),
                    client = ip.map(tracing::field::display)
                )
            },
        ))
        .layer(from_fn_with_state(state.clone(), client_ip::resolve))
}
