//! Prometheus metrics owned by one [`crate::Application`]: a recorder per
//! application instead of the process-global one, so several applications in
//! one process (the integration tests) never fight over a global and each
//! `/metrics` shows its own traffic.

use metrics::{Key, Label, Level, Metadata, Recorder as _};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const HTTP_REQUESTS: &str = "cashdesk_http_requests_total";
pub const HTTP_DURATION: &str = "cashdesk_http_request_duration_seconds";
pub const ORDERS_CREATED: &str = "cashdesk_orders_created_total";
pub const CHANNEL_NOTIFICATIONS: &str = "cashdesk_channel_notifications_total";
pub const ORDERS_PAID: &str = "cashdesk_orders_paid_total";
pub const REFUNDS_CREATED: &str = "cashdesk_refunds_created_total";
pub const REFUNDS_FINISHED: &str = "cashdesk_refunds_finished_total";
pub const NOTIFICATION_ATTEMPTS: &str = "cashdesk_notification_attempts_total";
pub const ORDERS_CLOSED: &str = "cashdesk_orders_closed_total";
pub const WARNINGS: &str = "cashdesk_warnings_total";
pub const WARNINGS_LOGGED: &str = "cashdesk_warnings_logged_total";
pub const RATE_LIMITED: &str = "cashdesk_rate_limited_total";
pub const CONNECTIONS_OPEN: &str = "cashdesk_connections_open";
pub const CONNECTIONS_SHED: &str = "cashdesk_connections_shed_total";
pub const CONNECTIONS_CLOSED: &str = "cashdesk_connections_closed_total";
pub const RECON_OPEN_FINDINGS: &str = "cashdesk_recon_open_findings";
pub const RECON_LAST_SUCCESS: &str = "cashdesk_recon_last_success_timestamp_seconds";
pub const RECON_FETCH_FAILURES: &str = "cashdesk_recon_bill_fetch_failures_total";

const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: Metadata<'static> =
    Metadata::new("cashdesk_server", Level::INFO, Some(module_path!()));

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        Ok(Self { recorder, handle })
    }

    /// One finished HTTP request. `route` is the matched route pattern (never
    /// the raw path, which would explode the label space).
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = vec![
            Label::new("route", route.to_owned()),
            Label::new("method", method.to_owned()),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(&Key::from_parts(HTTP_REQUESTS, labels.clone()), &METADATA)
            .increment(1);
        self.recorder
            .register_histogram(&Key::from_parts(HTTP_DURATION, labels), &METADATA)
            .record(seconds);
    }

    pub fn order_created(&self) {
        self.recorder
            .register_counter(&Key::from_name(ORDERS_CREATED), &METADATA)
            .increment(1);
    }

    /// One channel notification and what became of it (`applied`,
    /// `duplicate`, `paid_after_close`, `unverifiable`, `mismatch`…).
    pub fn channel_notification(&self, channel_type: &str, result: &str) {
        let labels = vec![
            Label::new("channel_type", channel_type.to_owned()),
            Label::new("result", result.to_owned()),
        ];
        self.recorder
            .register_counter(&Key::from_parts(CHANNEL_NOTIFICATIONS, labels), &METADATA)
            .increment(1);
    }

    /// An order moved to SUCCESS; `source` is `notify`, `query` (a sync or
    /// a channel answer), `poller` or `expiry`.
    pub fn order_paid(&self, source: &str) {
        let labels = vec![Label::new("source", source.to_owned())];
        self.recorder
            .register_counter(&Key::from_parts(ORDERS_PAID, labels), &METADATA)
            .increment(1);
    }

    /// A refund was stored; `state` is where it starts (`PROCESSING` or
    /// `PENDING_REVIEW`).
    pub fn refund_requested(&self, state: &str) {
        let labels = vec![Label::new("state", state.to_owned())];
        self.recorder
            .register_counter(&Key::from_parts(REFUNDS_CREATED, labels), &METADATA)
            .increment(1);
    }

    /// A refund became final (`SUCCESS`, `FAIL`, `REJECTED`).
    pub fn refund_finished(&self, state: &str) {
        let labels = vec![Label::new("state", state.to_owned())];
        self.recorder
            .register_counter(&Key::from_parts(REFUNDS_FINISHED, labels), &METADATA)
            .increment(1);
    }

    /// One merchant notification attempt recorded: `delivered`, `retry`,
    /// `failed` (schedule used up) or `lease_lost`.
    pub fn notification_attempt(&self, outcome: &str) {
        let labels = vec![Label::new("outcome", outcome.to_owned())];
        self.recorder
            .register_counter(&Key::from_parts(NOTIFICATION_ATTEMPTS, labels), &METADATA)
            .increment(1);
    }

    /// An order moved to CLOSED; `source` is `merchant`, `expiry` or
    /// `channel` (the channel said it is closed).
    pub fn order_closed(&self, source: &str) {
        let labels = vec![Label::new("source", source.to_owned())];
        self.recorder
            .register_counter(&Key::from_parts(ORDERS_CLOSED, labels), &METADATA)
            .increment(1);
    }

    /// A sampled warning ([`crate::edge::sampled`]): every occurrence, and
    /// again in the `logged` counter when it was written to the log.
    pub fn warning(&self, kind: &'static str, logged: bool) {
        let name = if logged { WARNINGS_LOGGED } else { WARNINGS };
        self.recorder
            .register_counter(
                &Key::from_parts(name, vec![Label::new("kind", kind)]),
                &METADATA,
            )
            .increment(1);
    }

    /// A request refused by a rate limit: `surface` is `public`, `api`,
    /// `app` or `notify`.
    pub fn rate_limited(&self, surface: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(RATE_LIMITED, vec![Label::new("surface", surface)]),
                &METADATA,
            )
            .increment(1);
    }

    /// Open connections of a listener (`public`, `sandbox`), up or down.
    pub fn connections_open(&self, listener: &'static str, delta: f64) {
        self.recorder
            .register_gauge(
                &Key::from_parts(CONNECTIONS_OPEN, vec![Label::new("listener", listener)]),
                &METADATA,
            )
            .increment(delta);
    }

    /// A connection refused at the cap (answered 503 and closed).
    pub fn connection_shed(&self, listener: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(CONNECTIONS_SHED, vec![Label::new("listener", listener)]),
                &METADATA,
            )
            .increment(1);
    }

    /// A connection closed by a timeout: `reason` is `header_timeout` or
    /// `idle`.
    pub fn connection_closed(&self, listener: &'static str, reason: &'static str) {
        let labels = vec![
            Label::new("listener", listener),
            Label::new("reason", reason),
        ];
        self.recorder
            .register_counter(&Key::from_parts(CONNECTIONS_CLOSED, labels), &METADATA)
            .increment(1);
    }

    /// The number of open reconciliation findings of one kind (set after
    /// each run, for every kind, so a kind that reached 0 shows 0).
    pub fn recon_open_findings(&self, kind: &'static str, n: i64) {
        self.recorder
            .register_gauge(
                &Key::from_parts(RECON_OPEN_FINDINGS, vec![Label::new("kind", kind)]),
                &METADATA,
            )
            .set(n as f64);
    }

    /// A reconciliation of `config_id` finished (`DONE`) at `unix_seconds`.
    pub fn recon_succeeded(&self, config_id: &str, unix_seconds: i64) {
        self.recorder
            .register_gauge(
                &Key::from_parts(
                    RECON_LAST_SUCCESS,
                    vec![Label::new("config_id", config_id.to_owned())],
                ),
                &METADATA,
            )
            .set(unix_seconds as f64);
    }

    /// A bill could not be fetched or read, or a trade not asked about
    /// (`reason`: `channel`, `file`, `query`).
    pub fn recon_fetch_failed(&self, config_id: &str, reason: &'static str) {
        let labels = vec![
            Label::new("config_id", config_id.to_owned()),
            Label::new("reason", reason),
        ];
        self.recorder
            .register_counter(&Key::from_parts(RECON_FETCH_FAILURES, labels), &METADATA)
            .increment(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram buffers; called periodically by a worker.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
