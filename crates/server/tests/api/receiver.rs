//! A merchant's notification endpoint for tests: an axum server on
//! 127.0.0.1 that records every request, verifies its signature with the
//! SDK (`verify_notification`, as a merchant would), answers as told (ack,
//! HTTP 500, a 200 that is not an ack, or no listener at all) and counts
//! how many deliveries of one notifyId are in flight at once.
//!
//! Shared by the server's and the binary's integration tests (the CLI tests
//! include this file by path), so it depends on nothing but the SDK.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cashdesk_sdk::{
    Credentials, MerchantNotification, NOTIFICATION_ACK_BODY, SignatureVerifier,
    verify_notification,
};
use tokio::sync::oneshot;

/// How the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 `{"code":1000,"msg":"操作成功"}`.
    Ack,
    /// 200 `SUCCESS` (plain text, upper case).
    AckText,
    /// 500 `busy`.
    Http500,
    /// 200 `ok`: not an acknowledgement.
    NotAck,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    /// Verified and parsed, or why not.
    pub notification: Result<MerchantNotification, String>,
    pub status: u16,
    /// Whether the answer was an acknowledgement.
    pub acked: bool,
}

impl Received {
    pub fn notify_id(&self) -> Option<&str> {
        self.notification
            .as_ref()
            .ok()
            .map(|n| n.notify_id.as_str())
    }
}

#[derive(Default)]
struct Shared {
    mode: Mutex<Option<Mode>>,
    delay: Mutex<Duration>,
    /// Answer the first delivery of each notifyId with 500.
    fail_first: Mutex<bool>,
    verifiers: Mutex<HashMap<String, SignatureVerifier>>,
    received: Mutex<Vec<Received>>,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: Mutex<usize>,
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.stop.lock().expect("lock").take() {
            let _ = stop.send(());
            task.abort();
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    let app_id = headers
        .get("Cashdesk-App-Id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let notification = {
        let verifiers = shared.verifiers.lock().expect("lock");
        match verifiers.get(&app_id) {
            Some(v) => verify_notification(v, &path, &headers, &body).map_err(|e| e.to_string()),
            None => Err(format!("no verifier for app `{app_id}`")),
        }
    };
    let notify_id = notification.as_ref().ok().map(|n| n.notify_id.clone());
    let first = notify_id.as_ref().is_some_and(|id| {
        !shared
            .received
            .lock()
            .expect("lock")
            .iter()
            .any(|r| r.notify_id() == Some(id.as_str()))
    });
    if let Some(id) = &notify_id {
        let mut in_flight = shared.in_flight.lock().expect("lock");
        let n = in_flight.entry(id.clone()).or_default();
        *n += 1;
        let mut max = shared.max_in_flight.lock().expect("lock");
        *max = (*max).max(*n);
    }
    let delay = *shared.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = if notification.is_err() {
        None
    } else if first && *shared.fail_first.lock().expect("lock") {
        Some(Mode::Http500)
    } else {
        *shared.mode.lock().expect("lock")
    };
    let (status, text, acked) = match mode {
        None => (StatusCode::UNAUTHORIZED, "bad signature", false),
        Some(Mode::Ack) => (StatusCode::OK, NOTIFICATION_ACK_BODY, true),
        Some(Mode::AckText) => (StatusCode::OK, "SUCCESS\n", true),
        Some(Mode::Http500) => (StatusCode::INTERNAL_SERVER_ERROR, "busy", false),
        Some(Mode::NotAck) => (StatusCode::OK, "ok", false),
    };
    // Recorded before the answer leaves: once the sender sees it, the test
    // sees it.
    shared.received.lock().expect("lock").push(Received {
        at,
        path,
        notification,
        status: status.as_u16(),
        acked,
    });
    if let Some(id) = &notify_id
        && let Some(n) = shared.in_flight.lock().expect("lock").get_mut(id)
    {
        *n -= 1;
    }
    (status, text).into_response()
}

impl Receiver {
    /// Listening on 127.0.0.1 (a free port), acknowledging.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared::default());
        *shared.mode.lock().expect("lock") = Some(Mode::Ack);
        let r = Receiver {
            addr,
            shared,
            stop: Mutex::new(None),
        };
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .fallback(handle)
            .with_state(self.shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        *self.stop.lock().expect("lock") = Some((tx, task));
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Verify notifications of `app_id` with `credentials` (the app key,
    /// or cashdesk's platform public key for RSA2/SM2 apps).
    pub fn trust(&self, app_id: &str, credentials: &Credentials) {
        let v = SignatureVerifier::new(app_id, credentials).expect("verifier");
        self.shared
            .verifiers
            .lock()
            .expect("lock")
            .insert(app_id.to_owned(), v);
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("lock") = Some(mode);
    }

    /// How long each answer takes.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().expect("lock") = delay;
    }

    /// Answer the first delivery of every notifyId with HTTP 500.
    pub fn fail_first_attempts(&self, on: bool) {
        *self.shared.fail_first.lock().expect("lock") = on;
    }

    /// Stop listening: connections are refused until [`Receiver::listen_again`].
    pub async fn refuse(&self) {
        let taken = self.stop.lock().expect("lock").take();
        if let Some((stop, task)) = taken {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Listen again on the same port.
    pub async fn listen_again(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the receiver's port again");
        self.serve(listener);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// Requests for one notifyId, in arrival order.
    pub fn deliveries_of(&self, notify_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.notify_id() == Some(notify_id))
            .collect()
    }

    /// Verified notifications that were acknowledged.
    pub fn acked(&self) -> Vec<MerchantNotification> {
        self.received()
            .into_iter()
            .filter(|r| r.acked)
            .filter_map(|r| r.notification.ok())
            .collect()
    }

    /// The acknowledged notification of `order_id` of `notify_type`, if any.
    pub fn acked_for(&self, order_id: &str, notify_type: &str) -> Vec<MerchantNotification> {
        self.acked()
            .into_iter()
            .filter(|n| n.order_id == order_id && n.notify_type == notify_type)
            .collect()
    }

    /// Requests whose signature did not verify (must stay empty).
    pub fn unverified(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter_map(|r| r.notification.err())
            .collect()
    }

    /// The most deliveries of one notifyId ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        *self.shared.max_in_flight.lock().expect("lock")
    }

    /// Waits until `cond(self)` holds; `false` after `timeout`.
    pub async fn wait(&self, timeout: Duration, cond: impl Fn(&Receiver) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
