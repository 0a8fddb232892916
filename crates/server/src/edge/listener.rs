//! The accept loop: HTTP/1.1 connections served by hyper, with the limits
//! `axum::serve` does not have.
//!
//! - **Connection cap** (`max_connections`): a connection accepted above
//!   it is answered `503` (envelope code 5030) with `Retry-After: 1` and
//!   `Connection: close` without reading its request, then closed; at most
//!   [`MAX_SHEDDING`] such answers are in progress at once, further
//!   connections are closed at once. Shedding at accept, before any
//!   parsing, costs the least; a balancer retries elsewhere on 503.
//! - **Header read timeout** (`header_read_timeout_ms`): from the first
//!   byte of a request to the end of its headers. A slower client
//!   (slowloris) is disconnected.
//! - **Idle timeout** (`idle_timeout_ms`): a keep-alive connection with
//!   no request in progress and no byte received for this long is closed.
//! - **Body deadline** (`body_read_timeout_ms`): the whole body must
//!   arrive within it after the headers; reading it fails then
//!   ([`BodyTimedOut`], answered 408 code 4080 by [`crate::input`]).
//! - **Graceful shutdown**: when the shutdown future fires the listener
//!   closes, idle connections close, in-flight requests finish (the
//!   timeouts bound how long that can take), then [`serve`] returns.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive
//! connection waits for its next request, so it would be the idle timeout
//! too: a balancer keeping upstream connections idle for 60 s would then
//! see them closed under it. The two are told apart here by watching the
//! connection's reads ([`Activity`]). HTTP/2 is not served (balancers
//! speak HTTP/1.1 to their upstreams; TLS ends before cashdesk).
//!
//! Each request gets [`ConnectInfo<SocketAddr>`] (the peer address, which
//! [`super::client_ip`] starts from).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::state::AppState;

/// Connections being answered 503 at once, beyond the cap.
pub const MAX_SHEDDING: usize = 256;

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout(),
            idle_timeout: config.idle_timeout(),
            body_read_timeout: config.body_read_timeout(),
        }
    }
}

/// The process's soft limit of open files (Linux), to warn when
/// `max_connections` cannot be reached: accepting then fails with EMFILE
/// before the cap sheds anything.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `shutdown` fires, then drains.
/// `name` labels the metrics (`public`, `sandbox`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    name: &'static str,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let shedding = Arc::new(Semaphore::new(MAX_SHEDDING));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: say so (once
                    // in a while) and give the process a moment.
                    crate::sampled_warn!(state, "accept_failed", name, error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let conn = Connection {
                    router: router.clone(),
                    state: state.clone(),
                    name,
                    limits,
                    peer,
                };
                let stop = stop_rx.clone();
                tokio::spawn(async move {
                    conn.state.metrics.connections_open(name, 1.0);
                    conn.run(stream, stop).await;
                    conn.state.metrics.connections_open(name, -1.0);
                    drop(slot);
                });
            }
            Err(_) => {
                state.metrics.connection_shed(name);
                crate::sampled_warn!(
                    state,
                    "connection_shed",
                    name,
                    max_connections = limits.max_connections,
                    "connection refused: too many open connections"
                );
                if let Ok(permit) = shedding.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        shed(stream).await;
                        drop(permit);
                    });
                }
                // else: dropped, closed at once.
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// `503` without reading the request, then a lingering close (reading
/// what the client sends for a moment, so the answer is not lost to a
/// reset).
async fn shed(mut stream: TcpStream) {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        let body = crate::envelope::body(
            crate::error::ErrorCode::Unavailable.code(),
            "the server has too many open connections; retry in a moment",
            None,
        )
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let linger = async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => total += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), linger).await;
}

struct Connection {
    router: Router,
    state: AppState,
    name: &'static str,
    limits: Limits,
    peer: SocketAddr,
}

impl Connection {
    async fn run(&self, stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            io: stream,
            activity: activity.clone(),
        });
        let router = self.router.clone();
        let peer = self.peer;
        let body_timeout = self.limits.body_read_timeout;
        let service_activity = activity.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = InFlight::start(service_activity.clone());
            let router = router.clone();
            async move {
                let _guard = guard;
                let deadline = Instant::now() + body_timeout;
                let mut req = req.map(|b| Body::new(DeadlineBody::new(b, deadline)));
                req.extensions_mut().insert(ConnectInfo(peer));
                router.oneshot(req).await
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            let (deadline, _) = activity.next_deadline(&self.limits);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = stop.changed(), if !draining => {
                    let _ = changed;
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep_until(deadline) => {
                    // Re-read: a byte or a request may have come meanwhile.
                    let (deadline, expiry) = activity.next_deadline(&self.limits);
                    if deadline > Instant::now() {
                        continue;
                    }
                    match expiry {
                        Expiry::Recheck => {}
                        Expiry::Header => {
                            self.state.metrics.connection_closed(self.name, "header_timeout");
                            crate::sampled_warn!(self.state, "header_timeout", self.name, peer = %self.peer, "connection closed: request headers too slow");
                            return;
                        }
                        Expiry::Idle if !draining => {
                            self.state.metrics.connection_closed(self.name, "idle");
                            draining = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        // Still there an idle period after a graceful close.
                        Expiry::Idle => return,
                    }
                }
            }
        }
    }
}

/// What a connection's watchdog waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// A request is in progress (its body has its own deadline): look again
    /// later.
    Recheck,
    /// The headers of a started request did not arrive in time.
    Header,
    /// Nothing happened for the idle timeout.
    Idle,
}

const NONE: u64 = u64::MAX;

/// A connection's reads and requests, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    /// When the first byte of a request not yet handed to the router came.
    head_started: AtomicU64,
    /// When a byte last came or a request last ended.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    /// A new connection is a request started: a client that connects and
    /// sends nothing has the header timeout, not the idle one.
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            head_started: AtomicU64::new(0),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn bytes_in(&self) {
        let now = self.now_ms();
        self.last.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn next_deadline(&self, limits: &Limits) -> (Instant, Expiry) {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return (Instant::now() + limits.idle_timeout, Expiry::Recheck);
        }
        match self.head_started.load(Ordering::Acquire) {
            NONE => (
                self.at(self.last.load(Ordering::Relaxed)) + limits.idle_timeout,
                Expiry::Idle,
            ),
            started => (
                self.at(started) + limits.header_read_timeout,
                Expiry::Header,
            ),
        }
    }
}

/// Marks a request in progress from its headers to its response.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_started.store(NONE, Ordering::Release);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, telling [`Activity`] about every read that brought bytes.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_in();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The request body read past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body with a deadline for the whole of it (tower-http's
/// `TimeoutBody` restarts its timer at every frame, so a client sending a
/// byte now and then would never hit it).
struct DeadlineBody {
    body: Incoming,
    deadline: Instant,
    /// Armed the first time the body is not ready (most bodies are, or
    /// are empty: no timer for them).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    fn new(body: Incoming, deadline: Instant) -> DeadlineBody {
        DeadlineBody {
            body,
            deadline,
            timer: None,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
