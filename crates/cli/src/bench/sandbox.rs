//! The channel sandbox, run in this process on its own loopback port (the
//! server under test reaches it like a real channel), and the
//! notification reports it sends back: when each channel notification
//! went out and when cashdesk acknowledged it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use cashdesk_sandbox::{NotifyObservation, Sandbox, SandboxConfig};
use tokio::sync::mpsc;

pub(super) struct SandboxHost {
    pub(super) sandbox: Arc<Sandbox>,
    pub(super) url: String,
    server: tokio::task::JoinHandle<()>,
}

impl SandboxHost {
    pub(super) async fn start(
        dir: &Path,
        observer: mpsc::UnboundedSender<NotifyObservation>,
    ) -> anyhow::Result<SandboxHost> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the sandbox")?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut config = SandboxConfig::new(dir.join("sandbox"), url.clone());
        config.notify_observer = Some(observer);
        // The server under test is another process on loopback.
        config.notify_targets = cashdesk_sandbox::NotifyTargets::loopback_cashdesks(Vec::new());
        let sandbox = Arc::new(Sandbox::start(config).await?);
        let router = sandbox.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(SandboxHost {
            sandbox,
            url,
            server,
        })
    }
}

impl Drop for SandboxHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The sandbox's notification reports, by the order they were for.
#[derive(Clone, Default)]
pub(super) struct Observed(Arc<Mutex<HashMap<String, NotifyObservation>>>);

impl Observed {
    pub(super) fn collect(mut rx: mpsc::UnboundedReceiver<NotifyObservation>) -> Observed {
        let observed = Observed::default();
        let sink = observed.clone();
        tokio::spawn(async move {
            while let Some(o) = rx.recv().await {
                if o.acked
                    && o.kind == "pay"
                    && let Ok(mut map) = sink.0.lock()
                {
                    map.entry(o.out_trade_no.clone()).or_insert(o);
                }
            }
        });
        observed
    }

    pub(super) fn snapshot(&self) -> HashMap<String, NotifyObservation> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
