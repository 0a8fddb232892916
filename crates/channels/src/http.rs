//! The outbound HTTP client every adapter uses, and the mapping of transport
//! failures to [`ChannelError`].
//!
//! TLS verification is never disabled: extra trust (the sandbox's CA) is
//! added as root certificates on top of the built-in web PKI roots. Redirects
//! are not followed (a payment API that redirects is misconfigured), bodies
//! are size-limited, and every transport failure — connect error, timeout,
//! reset — is [`ChannelError::Retryable`], because the request may or may not
//! have reached the channel; a TLS certificate failure is
//! [`ChannelError::Config`] (trusted CA or client certificate to fix).

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::error::ChannelError;

/// Largest response body an adapter reads (channel answers are a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Client settings from the server's configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, receive).
    pub timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Build a client trusting the web PKI roots plus every certificate in
/// `extra_roots` (PEM texts, each possibly a bundle), presenting `identity`
/// (PEM private key + certificate chain) when given.
pub(crate) fn build_client(
    settings: &HttpSettings,
    extra_roots: &[&str],
    identity_pem: Option<&[u8]>,
) -> Result<reqwest::Client, ChannelError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cashdesk/", env!("CARGO_PKG_VERSION")));
    for pem in extra_roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            ChannelError::config(format!("trusted CA certificate is not valid PEM: {e}"))
        })?;
        if certs.is_empty() {
            return Err(ChannelError::config("trusted CA PEM holds no certificate"));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(pem) = identity_pem {
        let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
            ChannelError::config(format!("client certificate or key is not usable: {e}"))
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| ChannelError::config(format!("cannot build the HTTP client: {e}")))
}

/// A response read in full.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send and read the whole body (bounded); transport failures are retryable.
pub(crate) async fn send(
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<RawResponse, ChannelError> {
    send_inner(req, what, false).await
}

/// [`send`] for a request whose URL carries a secret (WeChat's OAuth code
/// exchange puts the AppSecret in the query, as WeChat requires): errors
/// and logs never show the URL.
pub(crate) async fn send_secret_url(
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<RawResponse, ChannelError> {
    send_inner(req, what, true).await
}

async fn send_inner(
    req: reqwest::RequestBuilder,
    what: &str,
    hide_url: bool,
) -> Result<RawResponse, ChannelError> {
    let fail = |e: reqwest::Error| {
        let e = if hide_url { e.without_url() } else { e };
        transport_error(what, &e)
    };
    let mut resp = req.send().await.map_err(fail)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ChannelError::bad_response(format!(
                "{what}: response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn transport_error(what: &str, e: &reqwest::Error) -> ChannelError {
    let cause = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "transport error".to_owned()
    };
    // The full cause chain helps operators (certificate problems show here);
    // reqwest errors carry the URL and the cause, never a header or body.
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if !detail.is_empty() {
            detail.push_str(": ");
        }
        detail.push_str(&s.to_string());
        source = s.source();
    }
    tracing::warn!(call = what, error = %detail, "channel call failed");
    // A TLS handshake that fails on a certificate (theirs untrusted, ours
    // refused) never reached the API and will not heal by retrying: it is
    // the config's trusted CA or client certificate.
    if detail.contains("invalid peer certificate") || detail.contains("received fatal alert") {
        return ChannelError::config(format!("{what}: TLS certificate problem ({detail})"));
    }
    ChannelError::retryable(None, format!("{what}: {cause} ({detail})"))
}
