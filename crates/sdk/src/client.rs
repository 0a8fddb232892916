//! The HTTP client. Every response to a signed request is verified over its
//! raw bytes before it is parsed; an error envelope becomes
//! [`SdkError::Api`].
//!
//! Unsigned answers to signed requests are accepted only when they are error
//! envelopes with HTTP 401 or 413: the server refuses those before it knows
//! (or trusts) the app, so it cannot sign them. Anything else unsigned is
//! [`SdkError::BadResponseSignature`].

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{
    ApplyBindingRequest, ApplyBindingResponse, CreateOrderRequest, CreateOrderResponse,
    CreateRefundRequest, Envelope, PayResult, PaymentList, PaymentRequest, PaymentResponse,
    PlatformKeys, RefundResult,
};
use crate::signing::{Credentials, RequestSigner, SignatureVerifier, SignedHeaders};
use crate::{CODE_OK, Result, SdkError};

/// A response as received, for tests of bad input.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as JSON (e.g. an error envelope).
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| SdkError::InvalidBody(format!("not JSON: {e}")))
    }

    /// The body parsed as an envelope.
    pub fn envelope(&self) -> Result<Envelope<Value>> {
        serde_json::from_slice(&self.body)
            .map_err(|e| SdkError::InvalidBody(format!("not an envelope: {e}")))
    }
}

/// Builder for [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    base_url: String,
    app_id: String,
    credentials: Credentials,
    timeout: Duration,
    verify_responses: bool,
    max_skew: Option<Duration>,
    root_certificates: Vec<Vec<u8>>,
}

impl ClientBuilder {
    /// Whole-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Verify the signature of every response to a signed request
    /// (default true). Turn off only for debugging.
    pub fn verify_responses(mut self, verify: bool) -> Self {
        self.verify_responses = verify;
        self
    }

    /// Allowed response timestamp skew (default ±300 s); `None` disables the
    /// timestamp check but not the signature check.
    pub fn max_response_skew(mut self, max_skew: Option<Duration>) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// Trust an extra root CA (PEM), for a self-hosted cashdesk behind a
    /// private CA. The system's web PKI roots stay trusted; verification is
    /// never disabled.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    pub fn build(self) -> Result<Client> {
        let base_url = normalize_base(&self.base_url)?;
        let signer = RequestSigner::new(self.app_id.clone(), &self.credentials)?;
        let verifier = if self.verify_responses {
            Some(
                SignatureVerifier::new(self.app_id, &self.credentials)?
                    .with_max_skew(self.max_skew),
            )
        } else {
            None
        };
        let http = http_client(self.timeout, &self.root_certificates)?;
        Ok(Client {
            base_url,
            http,
            signer,
            verifier,
        })
    }
}

pub(crate) fn normalize_base(base_url: &str) -> Result<String> {
    let parsed =
        url::Url::parse(base_url).map_err(|e| SdkError::InvalidUrl(format!("{base_url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SdkError::InvalidUrl(format!(
            "{base_url}: scheme must be http or https"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(SdkError::InvalidUrl(format!(
            "{base_url}: no query or fragment allowed"
        )));
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

pub(crate) fn http_client(timeout: Duration, roots: &[Vec<u8>]) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("cashdesk-sdk/", env!("CARGO_PKG_VERSION")));
    for pem in roots {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| SdkError::InvalidCredentials(format!("root certificate: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder.build()?)
}

pub(crate) fn join(base_url: &str, path_and_query: &str) -> Result<String> {
    if !path_and_query.starts_with('/') {
        return Err(SdkError::InvalidUrl(format!(
            "path must start with '/': {path_and_query}"
        )));
    }
    Ok(format!("{base_url}{path_and_query}"))
}

/// Parses an envelope body; a non-1000 code becomes [`SdkError::Api`].
pub(crate) fn parse_envelope<T: DeserializeOwned>(
    status: StatusCode,
    body: &[u8],
) -> Result<Envelope<T>> {
    let raw: Envelope<Value> = serde_json::from_slice(body).map_err(|e| {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
        SdkError::InvalidBody(format!("HTTP {status}: not an envelope ({e}): {excerpt}"))
    })?;
    if raw.code != CODE_OK {
        return Err(SdkError::Api {
            status: status.as_u16(),
            code: raw.code,
            msg: raw.msg,
            data: raw.data,
        });
    }
    let data = match raw.data {
        None => None,
        Some(v) => Some(
            serde_json::from_value(v)
                .map_err(|e| SdkError::InvalidBody(format!("unexpected data: {e}")))?,
        ),
    };
    Ok(Envelope {
        code: raw.code,
        msg: raw.msg,
        data,
        response_time: raw.response_time,
    })
}

fn require_data<T>(env: Envelope<T>) -> Result<T> {
    env.data
        .ok_or_else(|| SdkError::InvalidBody("success envelope without data".to_owned()))
}

/// A cashdesk merchant API client for one app. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    http: reqwest::Client,
    signer: RequestSigner,
    verifier: Option<SignatureVerifier>,
}

impl Client {
    /// `base_url` is the server origin (e.g. `https://pay.example.com`);
    /// paths are appended verbatim and signed as given.
    pub fn new(
        base_url: impl Into<String>,
        app_id: impl Into<String>,
        credentials: Credentials,
    ) -> Result<Self> {
        Self::builder(base_url, app_id, credentials).build()
    }

    pub fn builder(
        base_url: impl Into<String>,
        app_id: impl Into<String>,
        credentials: Credentials,
    ) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            app_id: app_id.into(),
            credentials,
            timeout: Duration::from_secs(30),
            verify_responses: true,
            max_skew: Some(Duration::from_secs(crate::DEFAULT_MAX_SKEW_SECS)),
            root_certificates: Vec::new(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn app_id(&self) -> &str {
        self.signer.app_id()
    }

    pub fn signer(&self) -> &RequestSigner {
        &self.signer
    }

    /// The verifier for responses and notifications (`None` when
    /// `verify_responses(false)`).
    pub fn verifier(&self) -> Option<&SignatureVerifier> {
        self.verifier.as_ref()
    }

    /// The five `Cashdesk-*` headers for a request (also for curl).
    pub fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<SignedHeaders> {
        self.signer.sign_request(method, path_and_query, body)
    }

    /// Sends a signed request with an optional JSON body, verifies the
    /// response signature and returns the success envelope.
    pub fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> impl Future<Output = Result<Envelope<Value>>> + Send {
        let body = body.map(serde_json::to_vec).transpose();
        let path = path_and_query.to_owned();
        async move {
            let body = body.map_err(|e| SdkError::InvalidBody(e.to_string()))?;
            self.send_signed(method, &path, body).await
        }
    }

    async fn send_signed<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Envelope<T>> {
        let bytes = body.clone().unwrap_or_default();
        let signed = self
            .signer
            .sign_request(method.as_str(), path_and_query, &bytes)?;
        let mut headers = signed.to_header_map()?;
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let raw = self
            .send_raw(method, path_and_query, bytes, headers)
            .await?;
        if let Some(verifier) = &self.verifier {
            match verifier.verify_response(&raw.headers, &raw.body) {
                Ok(()) => {}
                Err(reason) => {
                    let unsigned = !raw
                        .headers
                        .contains_key(cashdesk_crypto::apisig::HEADER_SIGNATURE);
                    let pre_auth = matches!(
                        raw.status,
                        StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE
                    );
                    if unsigned && pre_auth {
                        // The error is reported, never trusted as success.
                        if let Ok(env) = raw.envelope()
                            && env.code != CODE_OK
                        {
                            return Err(SdkError::Api {
                                status: raw.status.as_u16(),
                                code: env.code,
                                msg: env.msg,
                                data: env.data,
                            });
                        }
                    }
                    return Err(SdkError::BadResponseSignature(reason));
                }
            }
        }
        parse_envelope(raw.status, &raw.body)
    }

    async fn send_unsigned<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let raw = self
            .send_raw(Method::GET, path_and_query, Vec::new(), HeaderMap::new())
            .await?;
        require_data(parse_envelope(raw.status, &raw.body)?)
    }

    /// Sends exactly these bytes and headers; no signing, no verification,
    /// any status. For tests of bad input and for debugging.
    pub async fn send_raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
        headers: HeaderMap,
    ) -> Result<RawResponse> {
        let url = join(&self.base_url, path_and_query)?;
        let resp = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// `POST /api/cashier-desk/unified/orders`.
    pub async fn create_order(&self, req: &CreateOrderRequest) -> Result<CreateOrderResponse> {
        self.post_json("/api/cashier-desk/unified/orders", req)
            .await
    }

    /// `GET /api/cashier-desk/payment/list?token=` (unsigned: the token is
    /// the credential).
    pub async fn payment_list(&self, token: &str) -> Result<PaymentList> {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        self.send_unsigned(&format!("/api/cashier-desk/payment/list?{q}"))
            .await
    }

    /// `POST /api/cashier-desk/payment`: pays the order with one bound
    /// channel; the answer's [`crate::PayData`] is what the buyer's front
    /// end needs. A channel failure is [`SdkError::Api`] 502 `5020` with
    /// nothing changed (retry); a paid, closed or expired order is 422
    /// `4220`.
    pub async fn pay(&self, req: &PaymentRequest) -> Result<PaymentResponse> {
        self.post_json("/api/cashier-desk/payment", req).await
    }

    /// `GET /api/cashier-desk/out-trade-no/query-pay-result/{outTradeNo}`;
    /// `sync` asks the channel first.
    pub async fn query_pay_result(&self, out_trade_no: &str, sync: bool) -> Result<PayResult> {
        let mut path = format!(
            "/api/cashier-desk/out-trade-no/query-pay-result/{}",
            path_segment(out_trade_no)
        );
        if sync {
            path.push_str("?sync=true");
        }
        require_data(self.send_signed(Method::GET, &path, None).await?)
    }

    /// `POST /api/cashier-desk/out-trade-no/{outTradeNo}/close`.
    pub async fn close_order(&self, out_trade_no: &str) -> Result<PayResult> {
        let path = format!(
            "/api/cashier-desk/out-trade-no/{}/close",
            path_segment(out_trade_no)
        );
        require_data(
            self.send_signed(Method::POST, &path, Some(b"{}".to_vec()))
                .await?,
        )
    }

    /// `POST /api/cashier-desk/refunds`. A refund the channel refused is
    /// answered (state `FAIL`, with `errorCode`/`errorMsg`), not an error;
    /// errors are refusals before anything was stored (400, 404, 409, 422).
    pub async fn create_refund(&self, req: &CreateRefundRequest) -> Result<RefundResult> {
        self.post_json("/api/cashier-desk/refunds", req).await
    }

    /// `GET /api/cashier-desk/refunds/{outRefundNo}`; `sync` asks the
    /// channel first about a `PROCESSING` refund.
    pub async fn get_refund(&self, out_refund_no: &str, sync: bool) -> Result<RefundResult> {
        let mut path = format!("/api/cashier-desk/refunds/{}", path_segment(out_refund_no));
        if sync {
            path.push_str("?sync=true");
        }
        require_data(self.send_signed(Method::GET, &path, None).await?)
    }

    /// `POST /api/cashier-desk/refund-applications` `{outTradeNo,
    /// outRefundNo, amount, reason, buyerRemark?}`: a buyer's refund
    /// application, made by the merchant's backend → the application
    /// (`state` `APPLIED`, or `APPROVED` with its `refund` when the app's
    /// applications are approved when made).
    pub async fn apply_refund(&self, application: &serde_json::Value) -> Result<serde_json::Value> {
        self.post_json("/api/cashier-desk/refund-applications", application)
            .await
    }

    /// `GET /api/cashier-desk/refund-applications/{outRefundNo}`.
    pub async fn get_refund_application(&self, out_refund_no: &str) -> Result<serde_json::Value> {
        let path = format!(
            "/api/cashier-desk/refund-applications/{}",
            path_segment(out_refund_no)
        );
        require_data(self.send_signed(Method::GET, &path, None).await?)
    }

    /// `POST /api/cashier-desk/refund-applications/{outRefundNo}/approve`
    /// (`approve`) or `…/reject` `{remark?}`: the merchant's decision
    /// (compare-and-set; an approval makes the refund).
    pub async fn decide_refund_application(
        &self,
        out_refund_no: &str,
        approve: bool,
        remark: Option<&str>,
    ) -> Result<serde_json::Value> {
        let path = format!(
            "/api/cashier-desk/refund-applications/{}/{}",
            path_segment(out_refund_no),
            if approve { "approve" } else { "reject" }
        );
        self.post_json(&path, &serde_json::json!({ "remark": remark }))
            .await
    }

    /// `POST /api/cashier-desk-sa/apply/binding-channel`.
    pub async fn apply_binding(&self, req: &ApplyBindingRequest) -> Result<ApplyBindingResponse> {
        self.post_json("/api/cashier-desk-sa/apply/binding-channel", req)
            .await
    }

    /// `GET /api/cashier-desk/platform-keys` (unsigned, public). Pin the
    /// result (or compare it with what your operator gave you) before you
    /// trust it.
    pub async fn platform_keys(&self) -> Result<PlatformKeys> {
        self.send_unsigned("/api/cashier-desk/platform-keys").await
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|e| SdkError::InvalidBody(e.to_string()))?;
        require_data(self.send_signed(Method::POST, path, Some(bytes)).await?)
    }
}

/// Percent-encodes one path segment. `outTradeNo` allows `|` and `*`, which
/// stay as they are (the signature covers the path as sent).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~|*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
