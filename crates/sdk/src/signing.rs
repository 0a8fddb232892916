//! Request signing and verification of what cashdesk signs, on top of
//! [`cashdesk_crypto::apisig`] (never reimplemented here).
//!
//! Keys are parsed once, when a [`RequestSigner`] or [`SignatureVerifier`] is
//! built, so a bad PEM fails at start-up and each request only signs.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cashdesk_core::SignType;
use cashdesk_crypto::apisig::{self, Signer, Verifier};
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use cashdesk_crypto::sm::{Sm2PrivateKey, Sm2PublicKey};
use cashdesk_crypto::{Secret, random};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::{Result, SdkError};

/// How far a response or notification timestamp may be from local time.
pub const DEFAULT_MAX_SKEW_SECS: u64 = 300;

/// An app's key material.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// HMAC-SHA256, HMAC-SM3 or MD5 with the app key from registration; the
    /// same key verifies cashdesk's responses and notifications.
    Shared {
        sign_type: SignType,
        app_key: Secret,
    },
    /// RSA2: the app's private key signs; cashdesk's platform RSA public key
    /// (`GET /api/cashier-desk/platform-keys`) verifies. The platform key may
    /// be empty when nothing is verified (e.g. `cashdesk sign`).
    Rsa {
        private_key_pem: Secret,
        platform_public_key_pem: String,
    },
    /// SM2 (SM3withSM2): as [`Credentials::Rsa`] with SM2 keys.
    Sm2 {
        private_key_pem: Secret,
        platform_public_key_pem: String,
    },
}

impl Credentials {
    /// Shortcut for the default scheme, HMAC-SHA256 with the app key.
    pub fn hmac_sha256(app_key: impl Into<String>) -> Self {
        Self::Shared {
            sign_type: SignType::HmacSha256,
            app_key: Secret::new(app_key),
        }
    }

    pub fn sign_type(&self) -> SignType {
        match self {
            Self::Shared { sign_type, .. } => *sign_type,
            Self::Rsa { .. } => SignType::Rsa2,
            Self::Sm2 { .. } => SignType::Sm2,
        }
    }
}

fn check_shared(sign_type: SignType) -> Result<()> {
    if sign_type.is_asymmetric() {
        return Err(SdkError::InvalidCredentials(format!(
            "{sign_type} is not a shared-key sign type; use Credentials::Rsa or Credentials::Sm2"
        )));
    }
    Ok(())
}

fn key_error(what: &str, e: cashdesk_crypto::CryptoError) -> SdkError {
    SdkError::InvalidCredentials(format!("{what}: {e}"))
}

enum SigningKey {
    Shared(SignType, Secret),
    Rsa(RsaPrivateKey),
    Sm2(Sm2PrivateKey),
}

/// The five `Cashdesk-*` request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub app_id: String,
    pub timestamp: String,
    pub nonce: String,
    pub sign_type: SignType,
    pub signature: String,
}

impl SignedHeaders {
    /// `(header name, value)` in the order of ARCHITECTURE.md §5.1.
    pub fn pairs(&self) -> [(&'static str, String); 5] {
        [
            (apisig::HEADER_APP_ID, self.app_id.clone()),
            (apisig::HEADER_TIMESTAMP, self.timestamp.clone()),
            (apisig::HEADER_NONCE, self.nonce.clone()),
            (apisig::HEADER_SIGN_TYPE, self.sign_type.as_str().to_owned()),
            (apisig::HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// The headers as a `HeaderMap`, ready for any HTTP client.
    pub fn to_header_map(&self) -> Result<HeaderMap> {
        let mut map = HeaderMap::new();
        for (name, value) in self.pairs() {
            let value = HeaderValue::from_str(&value)
                .map_err(|_| SdkError::InvalidUrl(format!("{name} is not a valid header value")))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SdkError::InvalidUrl(format!("{name} is not a header name")))?;
            map.insert(name, value);
        }
        Ok(map)
    }
}

/// Signs requests for one app.
#[derive(Clone)]
pub struct RequestSigner {
    app_id: String,
    key: Arc<SigningKey>,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSigner")
            .field("app_id", &self.app_id)
            .field("sign_type", &self.sign_type())
            .finish_non_exhaustive()
    }
}

impl RequestSigner {
    /// Parses the signing half of `credentials` (the platform key is not
    /// needed to sign).
    pub fn new(app_id: impl Into<String>, credentials: &Credentials) -> Result<Self> {
        let key = match credentials {
            Credentials::Shared { sign_type, app_key } => {
                check_shared(*sign_type)?;
                SigningKey::Shared(*sign_type, app_key.clone())
            }
            Credentials::Rsa {
                private_key_pem, ..
            } => SigningKey::Rsa(
                RsaPrivateKey::from_pem(private_key_pem.expose())
                    .map_err(|e| key_error("RSA private key", e))?,
            ),
            Credentials::Sm2 {
                private_key_pem, ..
            } => SigningKey::Sm2(
                Sm2PrivateKey::from_pem(private_key_pem.expose())
                    .map_err(|e| key_error("SM2 private key", e))?,
            ),
        };
        Ok(Self {
            app_id: app_id.into(),
            key: Arc::new(key),
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn sign_type(&self) -> SignType {
        match &*self.key {
            SigningKey::Shared(t, _) => *t,
            SigningKey::Rsa(_) => SignType::Rsa2,
            SigningKey::Sm2(_) => SignType::Sm2,
        }
    }

    /// Signs `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY\n` with the
    /// current time and a fresh 32-character nonce. `method` is the HTTP
    /// method as sent (uppercase), `path_and_query` exactly as it will appear
    /// on the request line, `body` the exact bytes sent (empty for GET).
    pub fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<SignedHeaders> {
        self.sign_request_at(
            method,
            path_and_query,
            body,
            unix_now(),
            &random::nonce_str(32),
        )
    }

    /// [`Self::sign_request`] with a given timestamp and nonce (tests,
    /// reproducing a signature).
    pub fn sign_request_at(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Result<SignedHeaders> {
        let timestamp = timestamp.to_string();
        let message = apisig::request_message(method, path_and_query, &timestamp, nonce, body);
        let signature = self
            .signer()
            .sign(&message)
            .map_err(|e| key_error("signing failed", e))?;
        Ok(SignedHeaders {
            app_id: self.app_id.clone(),
            timestamp,
            nonce: nonce.to_owned(),
            sign_type: self.sign_type(),
            signature,
        })
    }

    fn signer(&self) -> Signer<'_> {
        match &*self.key {
            SigningKey::Shared(t, k) => Signer::Shared(*t, k.expose().as_bytes()),
            SigningKey::Rsa(k) => Signer::Rsa(k),
            SigningKey::Sm2(k) => Signer::Sm2(k),
        }
    }
}

enum VerifyKey {
    Shared(SignType, Secret),
    Rsa(RsaPublicKey),
    Sm2(Sm2PublicKey),
}

/// Verifies what cashdesk signs for one app: responses and notifications.
#[derive(Clone)]
pub struct SignatureVerifier {
    app_id: String,
    key: Arc<VerifyKey>,
    max_skew: Option<Duration>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("app_id", &self.app_id)
            .field("sign_type", &self.sign_type())
            .field("max_skew", &self.max_skew)
            .finish_non_exhaustive()
    }
}

/// The signature headers of a response or notification.
struct SigHeaders<'a> {
    app_id: Option<&'a str>,
    timestamp: &'a str,
    nonce: &'a str,
    sign_type: Option<&'a str>,
    signature: &'a str,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> std::result::Result<Option<&'a str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| format!("header {name} is not ASCII")),
    }
}

impl SignatureVerifier {
    /// Parses the verifying half of `credentials`: the app key, or
    /// cashdesk's platform public key for RSA2/SM2 apps. Timestamps are
    /// checked against ±[`DEFAULT_MAX_SKEW_SECS`].
    pub fn new(app_id: impl Into<String>, credentials: &Credentials) -> Result<Self> {
        let key = match credentials {
            Credentials::Shared { sign_type, app_key } => {
                check_shared(*sign_type)?;
                VerifyKey::Shared(*sign_type, app_key.clone())
            }
            Credentials::Rsa {
                platform_public_key_pem,
                ..
            } => VerifyKey::Rsa(
                RsaPublicKey::from_pem(platform_public_key_pem)
                    .map_err(|e| key_error("platform RSA public key", e))?,
            ),
            Credentials::Sm2 {
                platform_public_key_pem,
                ..
            } => VerifyKey::Sm2(
                Sm2PublicKey::from_pem(platform_public_key_pem)
                    .map_err(|e| key_error("platform SM2 public key", e))?,
            ),
        };
        Ok(Self {
            app_id: app_id.into(),
            key: Arc::new(key),
            max_skew: Some(Duration::from_secs(DEFAULT_MAX_SKEW_SECS)),
        })
    }

    /// The allowed distance between the signed timestamp and local time;
    /// `None` turns the check off (e.g. replaying a stored notification).
    pub fn with_max_skew(mut self, max_skew: Option<Duration>) -> Self {
        self.max_skew = max_skew;
        self
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn sign_type(&self) -> SignType {
        match &*self.key {
            VerifyKey::Shared(t, _) => *t,
            VerifyKey::Rsa(_) => SignType::Rsa2,
            VerifyKey::Sm2(_) => SignType::Sm2,
        }
    }

    fn verifier(&self) -> Verifier<'_> {
        match &*self.key {
            VerifyKey::Shared(t, k) => Verifier::Shared(*t, k.expose().as_bytes()),
            VerifyKey::Rsa(k) => Verifier::Rsa(k),
            VerifyKey::Sm2(k) => Verifier::Sm2(k),
        }
    }

    /// Verifies a response: headers `Cashdesk-Timestamp`, `-Nonce`,
    /// `-Sign-Type`, `-Signature` (and `-App-Id` when present, which must be
    /// this app) over `TIMESTAMP\nNONCE\nBODY\n` of the raw body bytes.
    /// The error text says why; map it to the error kind of the caller.
    pub fn verify_response(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> std::result::Result<(), String> {
        let h = self.sig_headers(headers)?;
        let message = apisig::response_message(h.timestamp, h.nonce, body);
        self.check(&h, &message)
    }

    /// Verifies a request-layout signature (`METHOD\nPATH_AND_QUERY\n
    /// TIMESTAMP\nNONCE\nBODY\n`): merchant notifications.
    pub fn verify_request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> std::result::Result<(), String> {
        let h = self.sig_headers(headers)?;
        let message = apisig::request_message(method, path_and_query, h.timestamp, h.nonce, body);
        self.check(&h, &message)
    }

    fn sig_headers<'a>(
        &self,
        headers: &'a HeaderMap,
    ) -> std::result::Result<SigHeaders<'a>, String> {
        let required = |name: &str| -> std::result::Result<&'a str, String> {
            match header(headers, name)? {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("missing header {name}")),
            }
        };
        Ok(SigHeaders {
            app_id: header(headers, apisig::HEADER_APP_ID)?,
            timestamp: required(apisig::HEADER_TIMESTAMP)?,
            nonce: required(apisig::HEADER_NONCE)?,
            sign_type: header(headers, apisig::HEADER_SIGN_TYPE)?,
            signature: required(apisig::HEADER_SIGNATURE)?,
        })
    }

    fn check(&self, h: &SigHeaders<'_>, message: &[u8]) -> std::result::Result<(), String> {
        if let Some(app_id) = h.app_id
            && app_id != self.app_id
        {
            return Err(format!("signed for app {app_id}, expected {}", self.app_id));
        }
        let expected_type = self.sign_type();
        match h.sign_type {
            Some(t) if t != expected_type.as_str() => {
                return Err(format!("sign type {t}, expected {expected_type}"));
            }
            None if expected_type != SignType::HmacSha256 => {
                return Err(format!("missing header {}", apisig::HEADER_SIGN_TYPE));
            }
            _ => {}
        }
        let ts: i64 = h
            .timestamp
            .parse()
            .map_err(|_| format!("{} is not unix seconds", apisig::HEADER_TIMESTAMP))?;
        if let Some(max) = self.max_skew {
            let skew = unix_now().abs_diff(ts);
            if skew > max.as_secs() {
                return Err(format!(
                    "timestamp {ts} is {skew} s away from local time (max {} s)",
                    max.as_secs()
                ));
            }
        }
        self.verifier()
            .verify(message, h.signature)
            .map_err(|_| "signature does not verify".to_owned())
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
