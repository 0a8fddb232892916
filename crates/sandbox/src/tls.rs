//! The sandbox's HTTPS listener, standing in for `api.mch.weixin.qq.com`.
//!
//! It serves the same router as the plain-HTTP mount (every v2 and v3 path),
//! so one `baseUrl` pointing here covers both the ordinary calls and the v2
//! refund. Client certificates are requested and, when sent, verified
//! against the sandbox CA during the handshake; they are optional at the TLS
//! level so ordinary calls work without one, and `secapi/pay/refund` then
//! refuses a request whose connection did not present the merchant's own
//! certificate. The peer certificate reaches handlers as
//! `ConnectInfo<TlsPeer>`, which the plain-HTTP mount never carries.
//!
//! Handshakes run in their own tasks (bounded by a timeout), so a client
//! that stalls mid-handshake cannot hold up the accept loop.
//!
//! # A port that survives restarts
//!
//! Channel configs store the HTTPS URL (`refundBaseUrl`, `tlsBaseUrl`),
//! so without a configured `tls_listen` the listener keeps its port: the
//! first start binds `127.0.0.1:0` and writes the port to
//! `<data_dir>/sandbox/tls-port`; later starts bind that port again. If it
//! has been taken meanwhile, the sandbox binds a new one, remembers it, and
//! logs a warning naming both: configs holding the old URL must be updated
//! (their v2 refunds would fail to connect).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const PORT_FILE: &str = "tls-port";

/// The port the last start bound, if it remembered one (blocking I/O).
pub fn remembered_port(dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(dir.join(PORT_FILE)).ok()?;
    text.trim().parse().ok().filter(|p| *p != 0)
}

/// Bind `127.0.0.1:<remembered>` (or a new port when there is none or it
/// is taken) and remember what was bound.
pub async fn bind_remembered(dir: &Path, remembered: Option<u16>) -> anyhow::Result<TcpListener> {
    let at = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let listener = match remembered {
        Some(port) => match TcpListener::bind(at(port)).await {
            Ok(l) => l,
            Err(e) => {
                let l = TcpListener::bind(at(0))
                    .await
                    .context("binding the sandbox HTTPS listener")?;
                let new = l.local_addr().map(|a| a.port()).unwrap_or_default();
                tracing::warn!(
                    old_port = port,
                    new_port = new,
                    error = %e,
                    "the sandbox HTTPS port of the last start is taken; listening on a new one. \
                     Channel configs whose refundBaseUrl/tlsBaseUrl name https://127.0.0.1:{port} \
                     must be changed to port {new} (or set tls_listen to a fixed address)"
                );
                l
            }
        },
        None => TcpListener::bind(at(0))
            .await
            .context("binding the sandbox HTTPS listener")?,
    };
    let port = listener
        .local_addr()
        .context("sandbox HTTPS listener address")?
        .port();
    if remembered != Some(port) {
        let path = dir.join(PORT_FILE);
        tokio::task::spawn_blocking(move || {
            crate::store::write_private_file(&path, format!("{port}\n").as_bytes())
        })
        .await
        .context("remembering the sandbox HTTPS port")??;
    }
    Ok(listener)
}

/// Who is on the other end of a TLS connection.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub remote: SocketAddr,
    /// DER of the client's leaf certificate, verified against the sandbox CA.
    pub client_cert: Option<Arc<Vec<u8>>>,
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local: SocketAddr,
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The acceptor ended (shutdown): never yield another connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            remote: self.local,
            client_cert: None,
        })
    }
}

/// rustls server config: our certificate chain, client certificates
/// optional but verified against the sandbox CA when presented.
///
/// The provider is ring, explicitly: the workspace already enables rustls'
/// ring backend (reqwest, the channel adapters) and enabling a second
/// backend would make rustls' implicit default ambiguous for everyone else.
pub fn server_config(
    ca_der: &[u8],
    cert_der: &[u8],
    key_der: &[u8],
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .context("adding the sandbox CA to the client-certificate roots")?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .context("building the client-certificate verifier")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![
                CertificateDer::from(cert_der.to_vec()),
                CertificateDer::from(ca_der.to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec())),
        )
        .context("installing the sandbox server certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accept TCP connections and hand finished TLS handshakes to the listener.
pub fn spawn_acceptor(
    tcp: TcpListener,
    config: rustls::ServerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(TlsListener, tokio::task::JoinHandle<()>)> {
    let local = tcp
        .local_addr()
        .context("reading the TLS listener address")?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        loop {
            let (stream, remote) = tokio::select! {
                _ = shutdown.changed() => break,
                accepted = tcp.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!(error = %e, "sandbox TLS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let client_cert = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .map(|c| Arc::new(c.as_ref().to_vec()));
                        let _ = tx
                            .send((
                                tls,
                                TlsPeer {
                                    remote,
                                    client_cert,
                                },
                            ))
                            .await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "sandbox TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%remote, "sandbox TLS handshake timed out"),
                }
            });
        }
    });
    Ok((TlsListener { rx, local }, task))
}
