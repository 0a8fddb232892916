//! Delivery of merchant notifications: the worker step that claims due
//! outbox rows, POSTs them signed, and records each attempt.
//!
//! # One delivery at a time, nothing lost
//!
//! A row is claimed with a lease ([`cashdesk_store::Outbox::claim_due_notifications`]:
//! PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite its single writer) to this
//! instance's owner id (`host:pid:random`), for twice the request timeout
//! plus a second. Only as many rows are claimed as there are free sending
//! slots ([`crate::slots`], [`CONCURRENCY`] per instance), each is sent at
//! once, and a row whose lease would run out before the request could time
//! out is left alone, so while a lease lives nobody else sends that row,
//! and no instance sends a row whose lease another instance could already
//! hold.
//!
//! The slots are a pipeline, not rounds: a slot is refilled as soon as its
//! attempt ends, so one merchant endpoint that answers slowly (or not at
//! all, until the timeout) holds one slot, and the notifications of every
//! other merchant keep flowing through the rest. The attempt is recorded only if the lease is still ours
//! ([`cashdesk_store::Outbox::record_notification_attempt`]); a dead
//! instance's rows come due again when its lease runs out. The one
//! unavoidable repeat — an instance dies after the merchant acknowledged
//! but before the acknowledgement was recorded — is why the `notifyId` is
//! kept: merchants deduplicate on it.
//!
//! # The request
//!
//! `POST <url>` with the stored JSON body and the five `Cashdesk-*`
//! headers, signed like a request (ARCHITECTURE.md §5.1) over method
//! `POST` and the URL's path and query (the rule of
//! `cashdesk_sdk::notification::notify_path_and_query`), afresh for every
//! attempt. No redirects (the signature names the path), no proxy, TLS
//! verified, `CASHDESK_NOTIFY_TIMEOUT_MS` for the whole exchange.
//!
//! # The address (unless `allow_private_notify_urls` is on)
//!
//! Checked when it is used, not only when the URL was accepted (a URL
//! stored before the policy changed, or a name whose DNS changed since, is
//! caught here), with the one rule of [`super::address`]:
//!
//! - an IP literal must be public (checked in `prepare`, before any
//!   request: the HTTP client never resolves a literal);
//! - a host name is resolved once per connection by the client's own
//!   resolver, [`Vetted`], which looks the name up, keeps the public
//!   addresses and hands the client only those. The connection is made to
//!   an address from that very answer: there is no second lookup whose
//!   answer could differ (DNS rebinding), no proxy and no redirect. A
//!   pooled connection is reused only for the same host and port, and it
//!   was opened to a vetted address.
//!
//! # The answer
//!
//! Acknowledged = HTTP 200 and a body that is `{"code":1000,…}` (JSON, the
//! number 1000) or the text `success` (trimmed, any case). Anything else
//! is a failed attempt: the next one is the schedule's n-th wait later
//! after the n-th attempt (`CASHDESK_NOTIFY_SCHEDULE`), and after the last
//! wait's attempt the notification is `FAILED`. An operator's resend makes
//! any notification due now; it keeps its attempt count, so a pending one
//! continues its schedule and one whose schedule was used up gets one
//! attempt per resend. A resend while an attempt is in flight keeps that
//! attempt's lease: the attempt finishes and its outcome applies (the
//! deliveries of one notification never overlap).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cashdesk_crypto::apisig;
use cashdesk_crypto::random;
use cashdesk_store::{AttemptOutcome, NewAttempt, Notification};
use chrono::Utc;
use serde_json::Value;

use crate::auth::sign_for_app;
use crate::service::address::{is_public_ip, is_refused_host};
use crate::service::error::ServiceResult;
use crate::slots::Taken;
use crate::state::AppState;

/// How many notifications one instance sends at once (and claims per round).
pub const CONCURRENCY: usize = 32;

/// The most of a reply that is read (an acknowledgement is a few bytes).
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// What one instance's delivery worker needs: its lease owner id, the HTTP
/// client, the schedule and the lease length.
pub struct Deliverer {
    owner: String,
    client: reqwest::Client,
    schedule: Vec<Duration>,
    timeout: Duration,
    lease: chrono::Duration,
}

impl Deliverer {
    pub fn new(state: &AppState) -> anyhow::Result<Deliverer> {
        let timeout = Duration::from_millis(state.config.notify_timeout_ms);
        let vetted = (!state.config.allow_private_notify_urls).then(Vetted::public);
        let lease = chrono::Duration::from_std(timeout * 2 + Duration::from_secs(1))?;
        Ok(Deliverer {
            owner: state.instance_id.clone(),
            client: notify_client(timeout, vetted)?,
            schedule: state.config.notify_schedule(),
            timeout,
            lease,
        })
    }

    /// The shortest wait of the schedule (how often the worker polls for
    /// rows other instances queued or that came due).
    pub fn shortest_wait(&self) -> Option<Duration> {
        self.schedule.iter().min().copied()
    }

    /// What an attempt that was not acknowledged leads to: `attempts` is
    /// the number of attempts before this one.
    fn after_failure(&self, attempts: u32, now: chrono::DateTime<Utc>) -> AttemptOutcome {
        let wait = usize::try_from(attempts)
            .ok()
            .and_then(|i| self.schedule.get(i))
            .and_then(|w| chrono::Duration::from_std(*w).ok());
        match wait {
            Some(w) => AttemptOutcome::RetryAt(now + w),
            None => AttemptOutcome::Failed,
        }
    }
}

/// The HTTP client notifications are sent with (module comment): no
/// redirects, no proxy, and with `vetted` its only way to turn a name into
/// an address.
fn notify_client(timeout: Duration, vetted: Option<Vetted>) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("cashdesk/", env!("CARGO_PKG_VERSION")));
    if let Some(v) = vetted {
        builder = builder.dns_resolver(Arc::new(v));
    }
    builder.build()
}

/// Looks a host name up: the system resolver in production; tests bring
/// their own to show that the address checked is the address called.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(
        &self,
        host: String,
    ) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (`getaddrinfo`, on tokio's blocking pool).
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// The delivery client's resolver when private addresses are refused: one
/// lookup, the allowed addresses of its answer, nothing else (module
/// comment).
struct Vetted {
    lookup: Arc<dyn Lookup>,
    allowed: fn(IpAddr) -> bool,
}

impl Vetted {
    fn public() -> Vetted {
        Vetted {
            lookup: Arc::new(SystemLookup),
            allowed: is_public_ip,
        }
    }
}

impl reqwest::dns::Resolve for Vetted {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let (lookup, allowed) = (Arc::clone(&self.lookup), self.allowed);
        Box::pin(async move {
            let all = lookup.lookup(host.clone()).await?;
            let public: Vec<SocketAddr> = all
                .into_iter()
                .filter(|ip| allowed(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (loopback, private, link-local and \
                     other special-purpose addresses are refused unless allow_private_notify_urls is on)"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether a reply acknowledges a notification (see the module comment).
pub fn is_ack(status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.eq_ignore_ascii_case("success") {
        return true;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .is_some_and(|v| v.get("code").and_then(Value::as_i64) == Some(1000))
}

/// The path and query a notification to `url` is signed over.
pub fn path_and_query(url: &url::Url) -> String {
    let mut out = url.path().to_owned();
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `e` and its causes, for the attempt log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// A signed, checked request for `n`, or why none can be made.
async fn prepare(
    state: &AppState,
    d: &Deliverer,
    n: &Notification,
) -> Result<reqwest::RequestBuilder, String> {
    let url = url::Url::parse(n.url.as_str())
        .map_err(|e| format!("the notify URL does not parse: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the notify URL is not http(s)".to_owned());
    }
    if !state.config.allow_private_notify_urls && url.host().is_some_and(|h| is_refused_host(&h)) {
        return Err(format!("the notify URL {}", super::NOT_PUBLIC));
    }
    let app = state
        .store
        .get_app(&n.app_id)
        .await
        .map_err(|e| format!("loading the app: {e}"))?
        .ok_or_else(|| format!("app {} does not exist", n.app_id))?;
    let timestamp = Utc::now().timestamp().to_string();
    let nonce = random::nonce_str(32);
    let message = apisig::request_message(
        "POST",
        &path_and_query(&url),
        &timestamp,
        &nonce,
        n.body.as_bytes(),
    );
    let signature = sign_for_app(state, &app, &message).map_err(|e| format!("signing: {e}"))?;
    Ok(d.client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(apisig::HEADER_APP_ID, app.app_id.as_str())
        .header(apisig::HEADER_TIMESTAMP, timestamp)
        .header(apisig::HEADER_NONCE, nonce)
        .header(apisig::HEADER_SIGN_TYPE, app.sign_type.as_str())
        .header(apisig::HEADER_SIGNATURE, signature)
        .body(n.body.clone()))
}

/// Reads at most [`MAX_REPLY_BYTES`] of a reply.
async fn read_reply(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_REPLY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_REPLY_BYTES {
            break;
        }
    }
    Ok(body)
}

/// One attempt: `(what happened, acknowledged?)`.
#[tracing::instrument(name = "deliver", level = "info", skip_all, fields(notify_id = %n.notify_id, app_id = %n.app_id, order_id = %n.order_id, notify_type = %n.notify_type))]
async fn attempt(state: &AppState, d: &Deliverer, n: &Notification) -> (NewAttempt, bool) {
    let at = Utc::now();
    let started = Instant::now();
    let elapsed =
        |started: Instant| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let failed = |error: String, started: Instant| NewAttempt {
        at,
        http_status: None,
        latency_ms: elapsed(started),
        response_excerpt: None,
        error: Some(error),
    };
    let req = match prepare(state, d, n).await {
        Ok(r) => r,
        Err(e) => return (failed(e, started), false),
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            let msg = format!("timed out after {} ms", d.timeout.as_millis());
            return (failed(msg, started), false);
        }
        Err(e) => return (failed(format!("no answer: {}", chain(&e)), started), false),
    };
    let status = resp.status().as_u16();
    let (body, read_error) = match read_reply(resp).await {
        Ok(b) => (b, None),
        Err(e) => (
            Vec::new(),
            Some(format!("reading the reply: {}", chain(&e))),
        ),
    };
    let acked = read_error.is_none() && is_ack(status, &body);
    let excerpt = (!body.is_empty())
        .then(|| String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned());
    let error = if acked {
        None
    } else {
        read_error.or_else(|| {
            Some(if status == 200 {
                "HTTP 200 but the reply is not an acknowledgement ({\"code\":1000,…} or success)"
                    .to_owned()
            } else {
                format!("HTTP {status}")
            })
        })
    };
    (
        NewAttempt {
            at,
            http_status: Some(status),
            latency_ms: elapsed(started),
            response_excerpt: excerpt,
            error,
        },
        acked,
    )
}

/// Sends one claimed notification and records the attempt.
async fn deliver(state: &AppState, d: &Deliverer, n: Notification) {
    // Claimed a while ago (e.g. the store was slow): if the lease could
    // run out while the request is in flight, leave it to whoever takes it.
    if n.lease_until.is_none_or(|until| {
        Utc::now() + chrono::Duration::from_std(d.timeout).unwrap_or_default() >= until
    }) {
        tracing::warn!(notify_id = %n.notify_id, "lease too short to send safely; left for the next claim");
        return;
    }
    let (attempt, acked) = attempt(state, d, &n).await;
    let outcome = if acked {
        AttemptOutcome::Delivered
    } else {
        d.after_failure(n.attempts, Utc::now())
    };
    let label = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Failed => "failed",
    };
    match state
        .store
        .record_notification_attempt(&n.notify_id, &d.owner, &attempt, outcome)
        .await
    {
        Ok(true) => {
            state.metrics.notification_attempt(label);
            match outcome {
                AttemptOutcome::Delivered => tracing::info!(
                    notify_id = %n.notify_id, order_id = %n.order_id, notify_type = %n.notify_type,
                    attempt = n.attempts + 1, latency_ms = attempt.latency_ms, "merchant notification delivered"
                ),
                AttemptOutcome::RetryAt(t) => tracing::info!(
                    notify_id = %n.notify_id, attempt = n.attempts + 1, error = attempt.error.as_deref().unwrap_or(""),
                    retry_at = %t, "merchant notification not acknowledged; will retry"
                ),
                AttemptOutcome::Failed => tracing::warn!(
                    notify_id = %n.notify_id, order_id = %n.order_id, attempt = n.attempts + 1,
                    error = attempt.error.as_deref().unwrap_or(""),
                    "merchant notification FAILED: schedule used up (an operator can resend it)"
                ),
            }
        }
        Ok(false) => {
            state.metrics.notification_attempt("lease_lost");
            tracing::warn!(notify_id = %n.notify_id, "the lease was lost (resent or taken over) before the attempt was recorded");
        }
        Err(e) => {
            tracing::error!(notify_id = %n.notify_id, error = %e, "recording a notification attempt failed; it will be sent again when the lease runs out");
        }
    }
}

/// Claims as many due notifications as `slots` holds and starts sending
/// each in a slot of its own; the slots left over are freed. Returns
/// whether every slot was used (more rows may be due).
pub async fn send_due(state: &AppState, d: &Arc<Deliverer>, slots: Taken) -> ServiceResult<bool> {
    let limit = u32::try_from(slots.count()).unwrap_or(1);
    let claimed = state
        .store
        .claim_due_notifications(&d.owner, Utc::now(), d.lease, limit)
        .await?;
    // The lease keeps a row from being claimed again while it is sent, so
    // no row is skipped here.
    Ok(slots.start_each(claimed, |row| {
        let (state, d) = (state.clone(), Arc::clone(d));
        Some(async move { deliver(&state, &d, row).await })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements() {
        assert!(is_ack(200, r#"{"code":1000,"msg":"操作成功"}"#.as_bytes()));
        assert!(is_ack(200, b" {\"code\": 1000} \n"));
        assert!(is_ack(200, b"success"));
        assert!(is_ack(200, b"  SUCCESS\r\n"));
        assert!(is_ack(200, b"Success"));
        assert!(!is_ack(201, b"success"), "only HTTP 200");
        assert!(!is_ack(500, br#"{"code":1000}"#));
        assert!(!is_ack(200, b""));
        assert!(!is_ack(200, b"ok"));
        assert!(!is_ack(200, b"successful"));
        assert!(!is_ack(200, br#"{"code":"1000"}"#), "the number 1000");
        assert!(!is_ack(200, br#"{"code":1001}"#));
        assert!(!is_ack(200, br#"[1000]"#));
    }

    /// A lookup with a scripted answer per call (the last repeats).
    struct Scripted {
        answers: Vec<Vec<IpAddr>>,
        calls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Scripted {
        fn new(answers: &[&[&str]]) -> Scripted {
            Scripted {
                answers: answers
                    .iter()
                    .map(|a| a.iter().map(|ip| ip.parse().expect("ip")).collect())
                    .collect(),
                calls: Arc::default(),
            }
        }
    }

    impl Lookup for Scripted {
        fn lookup(
            &self,
            _host: String,
        ) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = self.answers[n.min(self.answers.len() - 1)].clone();
            Box::pin(async move { Ok(answer) })
        }
    }

    async fn resolve(v: &Vetted, name: &str) -> Result<Vec<IpAddr>, String> {
        use reqwest::dns::Resolve as _;
        match v.resolve(name.parse().expect("name")).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Names that resolve to private addresses are refused; a name with
    /// public and private addresses is called on the public ones only.
    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let vetted = |answer: &[&str]| Vetted {
            lookup: Arc::new(Scripted::new(&[answer])),
            allowed: is_public_ip,
        };
        for answer in [
            &["10.0.0.8"][..],
            &["127.0.0.1", "::1"],
            &["169.254.169.254"],
            &["::ffff:192.168.1.1"],
            &["64:ff9b::7f00:1"],
            &["2002:7f00:1::"],
            &["::127.0.0.1"],
            &["fec0::1", "198.18.0.1", "192.0.0.8"],
        ] {
            let err = resolve(&vetted(answer), "shop.example.com")
                .await
                .expect_err("refused");
            assert!(err.contains("no public address"), "{answer:?}: {err}");
        }
        let mixed = resolve(&vetted(&["10.0.0.8", "8.8.8.8", "::1"]), "shop.example.com").await;
        assert_eq!(mixed, Ok(vec!["8.8.8.8".parse().expect("ip")]));
        // The system resolver behind the production policy: localhost is
        // loopback whatever /etc/hosts says.
        let err = resolve(&Vetted::public(), "localhost")
            .await
            .expect_err("refused");
        assert!(err.contains("no public address"), "{err}");
    }

    /// A receiver on `ip:port` that counts the requests it answers.
    async fn counting_receiver(
        listener: tokio::net::TcpListener,
    ) -> Arc<std::sync::atomic::AtomicUsize> {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let router = axum::Router::new().fallback(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "success"
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        hits
    }

    /// DNS rebinding: the name first resolves to an address the policy
    /// allows (127.0.0.1 in this test), then to one it refuses
    /// (127.0.0.2, where an "internal" service listens on the same port).
    /// The first delivery reaches the allowed address with one lookup (a
    /// second lookup by the client, or the system resolver, would show);
    /// the second, on a fresh connection, is refused: the refused address
    /// is never connected to.
    #[tokio::test]
    async fn the_address_checked_is_the_address_called() {
        let allowed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = allowed.local_addr().expect("addr").port();
        let Ok(inside) = tokio::net::TcpListener::bind(("127.0.0.2", port)).await else {
            eprintln!("skipping: cannot bind 127.0.0.2:{port} here");
            return;
        };
        let allowed_hits = counting_receiver(allowed).await;
        let inside_hits = counting_receiver(inside).await;
        let lookup = Scripted::new(&[&["127.0.0.1"], &["127.0.0.2"]]);
        let calls = Arc::clone(&lookup.calls);
        let lookup: Arc<dyn Lookup> = Arc::new(lookup);
        let client = |lookup: &Arc<dyn Lookup>| {
            notify_client(
                Duration::from_secs(5),
                Some(Vetted {
                    lookup: Arc::clone(lookup),
                    allowed: |ip| ip == IpAddr::from([127, 0, 0, 1]),
                }),
            )
            .expect("client")
        };
        let url = format!("http://rebind.test:{port}/notify");
        let first = client(&lookup)
            .post(&url)
            .body("{}")
            .send()
            .await
            .expect("sent");
        assert_eq!(first.status(), 200);
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one lookup"
        );
        let second = client(&lookup).post(&url).body("{}").send().await;
        let err = second.err().map(|e| chain(&e)).unwrap_or_default();
        assert!(err.contains("no public address"), "{err}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(allowed_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            inside_hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the refused address was never called"
        );
    }

    #[test]
    fn path_and_query_follows_the_sdk_rule() {
        for (url, want) in [
            (
                "https://shop.example.com/pay/cb?shop=1&x=a%20b#frag",
                "/pay/cb?shop=1&x=a%20b",
            ),
            ("http://shop.example.com", "/"),
            ("http://127.0.0.1:9000/n", "/n"),
        ] {
            let u = url::Url::parse(url).expect("url");
            assert_eq!(path_and_query(&u), want);
            assert_eq!(
                cashdesk_sdk::notify_path_and_query(url).expect("sdk"),
                want,
                "the SDK verifies over the same path and query"
            );
        }
    }
}
