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
//!
//! Bill files are the one body that is not read into memory:
//! `download_to` streams it into the caller's sink, with its own size cap
//! and a longer timeout.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::error::ChannelError;

/// Largest response body an adapter reads (channel answers are a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Whole-request timeout of a bill download: the client's own (seconds,
/// sized for API answers) is too short for a file of tens of megabytes.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);

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

/// Sends `req` (built on an adapter's client: TLS as configured, redirects
/// not followed) and streams a 2xx body into `sink`, chunk by chunk,
/// refusing more than `max` bytes (a stated `Content-Length` above it is
/// refused before the body is read). Returns the bytes written.
///
/// Errors: transport failures (also in mid-body) are retryable, as in
/// [`send`]; HTTP 5xx and 429 retryable; any other non-2xx status (a
/// redirect too) and a body over `max` are [`ChannelError::BadResponse`];
/// a sink that cannot be written is retryable (a local disk, not the
/// channel). On an error the sink holds a partial file, to be discarded.
/// `what` names the call in errors and logs; the URL is never shown, as
/// download URLs carry a token.
pub(crate) async fn download_to(
    req: reqwest::RequestBuilder,
    what: &str,
    sink: &mut (dyn std::io::Write + Send),
    max: u64,
) -> Result<u64, ChannelError> {
    let fail = |e: reqwest::Error| transport_error(what, &e.without_url());
    let mut resp = req.timeout(DOWNLOAD_TIMEOUT).send().await.map_err(fail)?;
    let status = resp.status().as_u16();
    if status >= 500 || status == 429 {
        return Err(ChannelError::retryable(
            Some(format!("HTTP_{status}")),
            format!("{what}: the download answered HTTP {status}"),
        ));
    }
    if !(200..300).contains(&status) {
        return Err(ChannelError::bad_response(format!(
            "{what}: the download answered HTTP {status}"
        )));
    }
    let too_large = || ChannelError::bad_response(format!("{what}: file larger than {max} bytes"));
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut written: u64 = 0;
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
        written = written
            .checked_add(chunk.len() as u64)
            .filter(|n| *n <= max)
            .ok_or_else(too_large)?;
        sink.write_all(&chunk).map_err(|e| {
            ChannelError::retryable(None, format!("{what}: cannot write the file: {e}"))
        })?;
    }
    sink.flush().map_err(|e| {
        ChannelError::retryable(None, format!("{what}: cannot write the file: {e}"))
    })?;
    Ok(written)
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::error::ChannelErrorKind;

    /// A server that answers every connection with `response` as is.
    async fn serve(response: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = conn.write_all(&response).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        format!("http://{addr}/bill?token=secret")
    }

    fn with_length(status: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// A chunked body: no length is stated up front.
    fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
        let mut r =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        for c in chunks {
            r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            r.extend_from_slice(c);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    }

    async fn download(url: &str, max: u64) -> (Result<u64, ChannelError>, Vec<u8>) {
        let client = build_client(&HttpSettings::default(), &[], None).unwrap();
        let mut sink = Vec::new();
        let r = download_to(client.get(url), "bill download", &mut sink, max).await;
        (r, sink)
    }

    #[tokio::test]
    async fn a_file_is_streamed_into_the_sink() {
        let body = vec![7u8; 100_000];
        let url = serve(with_length("200 OK", &body)).await;
        let (r, sink) = download(&url, 100_000).await;
        assert_eq!(r.unwrap(), 100_000);
        assert_eq!(sink, body);
        let url = serve(chunked(&[b"PK", b"\x03\x04", b"rest"])).await;
        let (r, sink) = download(&url, 8).await;
        assert_eq!(r.unwrap(), 8);
        assert_eq!(sink, b"PK\x03\x04rest");
    }

    #[tokio::test]
    async fn a_file_over_the_cap_is_refused() {
        // Stated length over the cap: refused before the body is read.
        let url = serve(with_length("200 OK", &[1u8; 101])).await;
        let (r, sink) = download(&url, 100).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "{e}");
        assert!(e.to_string().contains("larger than 100 bytes"), "{e}");
        assert!(sink.is_empty());
        // No length stated: refused at the chunk that crosses the cap.
        let url = serve(chunked(&[&[1u8; 60], &[2u8; 60]])).await;
        let (r, sink) = download(&url, 100).await;
        assert_eq!(r.unwrap_err().kind(), ChannelErrorKind::BadResponse);
        assert!(sink.len() <= 100);
    }

    #[tokio::test]
    async fn statuses_and_transport_failures_are_classified() {
        let url = serve(with_length("503 Service Unavailable", b"busy")).await;
        assert_eq!(
            download(&url, 100).await.0.unwrap_err().kind(),
            ChannelErrorKind::Retryable
        );
        let redirect = b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec();
        let url = serve(redirect).await;
        let (r, sink) = download(&url, 100).await;
        let e = r.unwrap_err();
        assert_eq!(
            e.kind(),
            ChannelErrorKind::BadResponse,
            "a redirect is not followed"
        );
        assert!(sink.is_empty());
        assert!(
            !e.to_string().contains("secret"),
            "the URL's token stays out: {e}"
        );
        // Nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/bill?token=secret",
            listener.local_addr().unwrap()
        );
        drop(listener);
        let e = download(&url, 100).await.0.unwrap_err();
        assert_eq!(e.kind(), ChannelErrorKind::Retryable);
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
