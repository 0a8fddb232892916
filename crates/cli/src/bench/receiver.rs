//! The merchant's notify endpoint, in this process: it verifies each
//! merchant notification with the SDK (as a merchant would), counts
//! repeats and bad signatures, tells the waiting client when its order's
//! PAY_SUCCESS arrived, and acknowledges.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cashdesk_sdk::SignatureVerifier;
use tokio::sync::oneshot;

#[derive(Default)]
pub(super) struct ReceiverState {
    pub(super) verifier: OnceLock<SignatureVerifier>,
    url: OnceLock<String>,
    /// Orders whose PAY_SUCCESS a client waits for.
    pub(super) waiting: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    /// Notifications received (any type) and those received twice.
    pub(super) received: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) bad_signatures: AtomicU64,
    seen: Mutex<std::collections::HashSet<String>>,
}

pub(super) struct Receiver {
    pub(super) state: Arc<ReceiverState>,
    pub(super) url: String,
}

impl Receiver {
    pub(super) async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the merchant receiver")?;
        let url = format!("http://{}/notify", listener.local_addr()?);
        let state = Arc::new(ReceiverState::default());
        let _ = state.url.set(url.clone());
        let router = axum::Router::new()
            .route("/notify", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Receiver { state, url })
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let at = Instant::now();
    let (Some(verifier), Some(url)) = (state.verifier.get(), state.url.get()) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready");
    };
    let n = match cashdesk_sdk::verify_notification(verifier, url, &headers, &body) {
        Ok(n) => n,
        Err(_) => {
            state.bad_signatures.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::UNAUTHORIZED, "bad signature");
        }
    };
    state.received.fetch_add(1, Ordering::Relaxed);
    let fresh = state
        .seen
        .lock()
        .map(|mut s| s.insert(n.notify_id.clone()))
        .unwrap_or(true);
    if !fresh {
        state.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    if n.notify_type == "PAY_SUCCESS" {
        let waiter = state
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&n.order_id));
        if let Some(tx) = waiter {
            let _ = tx.send(at);
        }
    }
    (StatusCode::OK, cashdesk_sdk::NOTIFICATION_ACK_BODY)
}
