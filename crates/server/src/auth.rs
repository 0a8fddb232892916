//! Request signature verification and response signing (ARCHITECTURE.md
//! §5.1) for the merchant API and the `cashier-desk-sa/apply` routes.
//!
//! [`require_signature`] is a route layer: it buffers the body (the
//! signature covers the raw bytes), verifies, hands the handler an
//! [`Authed`] extension, and signs whatever the handler answers, errors
//! included. Refusals before the signature is proven (401s) are unsigned:
//! the server cannot know which key the caller holds.
//!
//! Check order, each step cheaper than the next and nothing written before
//! the signature is good: five headers (4010) → sign type (4011) → timestamp
//! ±300 s (4012) → signature by the app's key (4014, constant time) → app
//! enabled (4030) → nonce unused (4015). The enabled check comes before the
//! nonce is consumed (the spec lists it after) so that a disabled app's
//! request leaves the database exactly as it was; a disabled app learns
//! nothing from this order.
//!
//! # Nothing about an app before its signature
//!
//! An unknown app id, a sign type that is not the app's and a signature
//! that does not verify get one answer: 4014, one message. (They were
//! 4013 UNKNOWN_APP and 4016 SIGN_TYPE_MISMATCH, which told anyone which
//! app ids exist and how each signs.) The time does not tell them apart
//! either: for an unknown app, or the wrong sign type, a signature of the
//! header's type is verified against a decoy key of the same kind (an
//! HMAC/MD5 key, or cashdesk's own RSA or SM2 public key, parsed from PEM
//! like an app's), after the same database lookup. In development mode with the sandbox on, 4014
//! carries `data.expectedStringToSign`, which depends only on the request,
//! so it is given for every 4014 and says nothing about the app either.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cashdesk_core::{AppId, SignType};
use cashdesk_crypto::apisig::{self, Signer, Verifier};
use cashdesk_crypto::rsa::RsaPublicKey;
use cashdesk_crypto::sm::Sm2PublicKey;
use cashdesk_crypto::{Secret, random};
use cashdesk_store::App;
use chrono::Utc;
use serde_json::json;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::input::read_body;
use crate::state::AppState;

/// How far a request timestamp may be from server time.
pub const MAX_SKEW_SECS: i64 = 300;
/// How long a nonce is remembered (longer than the timestamp window).
pub const NONCE_TTL_SECS: i64 = 15 * 60;

/// What a verified request carries to its handler.
#[derive(Clone)]
pub struct Authed {
    pub app: App,
    pub body: Bytes,
}

/// The associated data of a sealed app key.
pub fn app_key_aad(app_id: &AppId) -> String {
    format!("app:{app_id}:key")
}

/// The app key in clear (HMAC/MD5 signing and verification).
pub fn app_key(state: &AppState, app: &App) -> ApiResult<Secret> {
    open_app_key(state, app, &app.app_key_sealed)
}

/// One of the app's sealed keys (current or previous) in clear.
fn open_app_key(state: &AppState, app: &App, sealed: &[u8]) -> ApiResult<Secret> {
    let plain = state
        .master_key
        .open(sealed, app_key_aad(&app.app_id).as_bytes())
        .map_err(|e| {
            ApiError::internal(anyhow::anyhow!(
                "cannot open the key of app {}: {e}",
                app.app_id
            ))
        })?;
    let text = String::from_utf8(plain.to_vec()).map_err(|_| {
        ApiError::internal(anyhow::anyhow!("key of app {} is not UTF-8", app.app_id))
    })?;
    Ok(Secret::new(text))
}

/// The key cashdesk signs with for a shared-key app: after a rotation,
/// the previous key until the app has signed a request with its new one
/// (the merchant may not have it yet), else the current key.
fn outgoing_key(state: &AppState, app: &App) -> ApiResult<Secret> {
    match app.previous_key_at(Utc::now()) {
        Some(previous) if !app.key_confirmed => open_app_key(state, app, &previous.key_sealed),
        _ => app_key(state, app),
    }
}

/// Signs `message` the way cashdesk answers this app: the app key for
/// shared-key apps ([`outgoing_key`]), cashdesk's platform key for
/// RSA2/SM2 apps.
pub fn sign_for_app(state: &AppState, app: &App, message: &[u8]) -> ApiResult<String> {
    let signed = match app.sign_type {
        SignType::Rsa2 => Signer::Rsa(&state.platform.rsa).sign(message),
        SignType::Sm2 => Signer::Sm2(&state.platform.sm2).sign(message),
        shared => {
            let key = outgoing_key(state, app)?;
            Signer::Shared(shared, key.expose().as_bytes()).sign(message)
        }
    };
    signed.map_err(|e| ApiError::internal(anyhow::anyhow!("signing for app {}: {e}", app.app_id)))
}

/// The HMAC/MD5 key a decoy verification uses (never accepted: its result
/// is thrown away).
const DECOY_SHARED_KEY: &[u8] = b"cashdesk-decoy-key-for-unknown-apps";

/// The work of a verification of `sign_type`, against a key no app has:
/// an unknown app id or a wrong sign type takes as long to refuse as a
/// bad signature (module comment). Its outcome is ignored.
fn decoy_verification(state: &AppState, sign_type: SignType, message: &[u8], signature: &str) {
    let outcome = match sign_type {
        SignType::Rsa2 => RsaPublicKey::from_pem(&state.platform.rsa_public_pem)
            .map(|key| Verifier::Rsa(&key).verify(message, signature).is_ok()),
        SignType::Sm2 => Sm2PublicKey::from_pem(&state.platform.sm2_public_pem)
            .map(|key| Verifier::Sm2(&key).verify(message, signature).is_ok()),
        shared => Ok(Verifier::Shared(shared, DECOY_SHARED_KEY)
            .verify(message, signature)
            .is_ok()),
    };
    std::hint::black_box(outcome.is_ok_and(|verified| verified));
}

/// The one answer to an unknown app, a wrong sign type and a bad signature.
fn bad_signature(state: &AppState, message: &[u8]) -> ApiError {
    let data = state
        .edge
        .posture
        .show_string_to_sign
        .then(|| json!({ "expectedStringToSign": String::from_utf8_lossy(message) }));
    ApiError::Client {
        code: ErrorCode::BadSignature,
        msg: "signature does not verify: check the app id, the sign type (the app's registered one), \
              the key, and the string to sign METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n"
            .to_owned(),
        data,
    }
}

/// Verifies `signature` over `message` with one key of the app: its
/// public key (RSA2/SM2) or its sealed shared key.
fn verify_with_key(
    state: &AppState,
    app: &App,
    public_key_pem: Option<&str>,
    key_sealed: &[u8],
    message: &[u8],
    signature: &str,
) -> ApiResult<bool> {
    let result = match app.sign_type {
        SignType::Rsa2 => {
            let key = RsaPublicKey::from_pem(public_key_pem.unwrap_or_default()).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("stored RSA key of app {}: {e}", app.app_id))
            })?;
            Verifier::Rsa(&key).verify(message, signature)
        }
        SignType::Sm2 => {
            let key = Sm2PublicKey::from_pem(public_key_pem.unwrap_or_default()).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("stored SM2 key of app {}: {e}", app.app_id))
            })?;
            Verifier::Sm2(&key).verify(message, signature)
        }
        shared => {
            let key = open_app_key(state, app, key_sealed)?;
            Verifier::Shared(shared, key.expose().as_bytes()).verify(message, signature)
        }
    };
    Ok(result.is_ok())
}

/// The app as the key that verified `signature` sees it, or `None` when
/// no key of the app does: the current key (the first one it signs with
/// after a rotation confirms it, so answers and notifications move to
/// it), else a previous key still inside its overlap window (then the
/// app is seen with that key, so the answer is signed with it too).
async fn verify_app_signature(
    state: &AppState,
    mut app: App,
    message: &[u8],
    signature: &str,
    now: chrono::DateTime<Utc>,
) -> ApiResult<Option<App>> {
    let current_pem = app.public_key_pem.clone();
    if verify_with_key(
        state,
        &app,
        current_pem.as_deref(),
        &app.app_key_sealed,
        message,
        signature,
    )? {
        if !app.key_confirmed {
            state.store.confirm_app_key(&app.app_id).await?;
            app.key_confirmed = true;
        }
        return Ok(Some(app));
    }
    let Some(previous) = app.previous_key_at(now).cloned() else {
        return Ok(None);
    };
    if !verify_with_key(
        state,
        &app,
        previous.public_key_pem.as_deref(),
        &previous.key_sealed,
        message,
        signature,
    )? {
        return Ok(None);
    }
    app.app_key_sealed = previous.key_sealed;
    app.public_key_pem = previous.public_key_pem;
    Ok(Some(app))
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> ApiResult<&'a str> {
    let missing = || {
        ApiError::new(
            ErrorCode::MissingAuthHeader,
            format!("missing header {name}"),
        )
    };
    let value = headers.get(name).ok_or_else(missing)?;
    let text = value
        .to_str()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::MissingAuthHeader,
                format!("header {name} is not ASCII"),
            )
        })?
        .trim();
    if text.is_empty() {
        Err(missing())
    } else {
        Ok(text)
    }
}

/// Why a request was refused, and whether the app was proven (then the
/// refusal is signed).
struct Refusal {
    error: ApiError,
    app: Option<App>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self { error, app: None }
    }
}

async fn verify(state: &AppState, parts: &Parts, body: &[u8]) -> Result<App, Refusal> {
    let h = &parts.headers;
    let app_id = header(h, apisig::HEADER_APP_ID)?;
    let timestamp = header(h, apisig::HEADER_TIMESTAMP)?;
    let nonce = header(h, apisig::HEADER_NONCE)?;
    let sign_type = header(h, apisig::HEADER_SIGN_TYPE)?;
    let signature = header(h, apisig::HEADER_SIGNATURE)?;

    let sign_type = SignType::parse(sign_type).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownSignType,
            format!(
                "unknown sign type `{sign_type}` (use HMAC-SHA256, HMAC-SM3, MD5, RSA2 or SM2)"
            ),
        )
    })?;

    let now = Utc::now();
    let ts: i64 = timestamp.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::TimestampOutOfWindow,
            format!("{} must be unix seconds", apisig::HEADER_TIMESTAMP),
        )
    })?;
    let skew = now.timestamp().abs_diff(ts);
    if skew > MAX_SKEW_SECS.unsigned_abs() {
        return Err(ApiError::with_data(
            ErrorCode::TimestampOutOfWindow,
            format!(
                "timestamp is {skew} s away from server time (at most {MAX_SKEW_SECS} s allowed)"
            ),
            json!({ "serverTime": now.timestamp() }),
        )
        .into());
    }
    if nonce.len() > 64 || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            ErrorCode::MissingAuthHeader,
            format!(
                "header {} must be 1 to 64 printable ASCII characters",
                apisig::HEADER_NONCE
            ),
        )
        .into());
    }

    // The path and query exactly as sent (nesting never rewrites it here,
    // but OriginalUri is the one that is guaranteed untouched).
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map(|o| &o.0)
        .unwrap_or(&parts.uri);
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let message = apisig::request_message(
        parts.method.as_str(),
        path_and_query,
        timestamp,
        nonce,
        body,
    );

    // An id that cannot exist is not looked up; every other id is.
    let app = match AppId::parse(app_id) {
        Ok(id) => state.store.get_app(&id).await.map_err(ApiError::from)?,
        Err(_) => None,
    };
    let app = match app.filter(|a| a.sign_type == sign_type) {
        Some(app) => match verify_app_signature(state, app, &message, signature, now).await? {
            Some(app) => app,
            None => return Err(bad_signature(state, &message).into()),
        },
        None => {
            decoy_verification(state, sign_type, &message, signature);
            return Err(bad_signature(state, &message).into());
        }
    };

    // From here on the caller is proven: refusals are signed.
    if !app.enabled {
        let error = ApiError::new(
            ErrorCode::AppDisabled,
            format!("app {} is disabled", app.app_id),
        );
        return Err(Refusal {
            error,
            app: Some(app),
        });
    }
    // The app's own rate limit, before its nonce is spent (a refused
    // request may be sent again as it was).
    if let Err(refused) = state.edge.limits.app(app.app_id.as_str()) {
        crate::edge::ratelimit::refuse_logged(state, "app", app.app_id.as_str());
        return Err(Refusal {
            error: refused.error(),
            app: Some(app),
        });
    }
    let expires = now + chrono::Duration::seconds(NONCE_TTL_SECS);
    match state
        .store
        .use_nonce(&app.app_id, nonce, now, expires)
        .await
    {
        Ok(true) => Ok(app),
        Ok(false) => {
            let error = ApiError::new(
                ErrorCode::NonceReplayed,
                format!(
                    "nonce already used; send a fresh {} with every request",
                    apisig::HEADER_NONCE
                ),
            );
            Err(Refusal {
                error,
                app: Some(app),
            })
        }
        Err(e) => Err(Refusal {
            error: e.into(),
            app: Some(app),
        }),
    }
}

/// Route layer for signed routes.
pub async fn require_signature(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match read_body(body, state.config.body_limit_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match verify(&state, &parts, &bytes).await {
        Ok(app) => {
            let mut req = Request::from_parts(parts, Body::from(bytes.clone()));
            req.extensions_mut().insert(Authed {
                app: app.clone(),
                body: bytes,
            });
            let resp = next.run(req).await;
            sign_response(&state, &app, resp).await
        }
        Err(Refusal {
            error,
            app: Some(app),
        }) => sign_response(&state, &app, error.into_response()).await,
        Err(Refusal { error, app: None }) => error.into_response(),
    }
}

/// Adds the five `Cashdesk-*` headers, signed over
/// `TIMESTAMP\nNONCE\nBODY\n`.
pub async fn sign_response(state: &AppState, app: &App, resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    // Our own responses: small, already in memory.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::internal(anyhow::anyhow!("buffering a response: {e}"))
                .into_response();
        }
    };
    let timestamp = Utc::now().timestamp().to_string();
    let nonce = random::nonce_str(32);
    let message = apisig::response_message(&timestamp, &nonce, &bytes);
    let signature = match sign_for_app(state, app, &message) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let pairs = [
        (apisig::HEADER_APP_ID, app.app_id.to_string()),
        (apisig::HEADER_TIMESTAMP, timestamp),
        (apisig::HEADER_NONCE, nonce),
        (apisig::HEADER_SIGN_TYPE, app.sign_type.as_str().to_owned()),
        (apisig::HEADER_SIGNATURE, signature),
    ];
    for (name, value) in pairs {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                parts.headers.insert(n, v);
            }
            _ => {
                return ApiError::internal(anyhow::anyhow!("header {name} is not a valid header"))
                    .into_response();
            }
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
