//! The operator API client (`/api/admin`, `Authorization: Bearer <token>`).
//!
//! Operators script these calls (the `cashdesk` CLI is built on this type),
//! so the read methods hand back the envelope's `data` as JSON: the listing
//! shapes are documented in `docs/api.md` and an operator tool should print
//! fields it does not know yet rather than drop them. Writes take typed
//! requests, and the three creates return the ids the API promises.
//!
//! Admin responses are not signed (the bearer token over TLS is the trust);
//! a non-1000 envelope is [`SdkError::Api`]. The token never appears in
//! `Debug` output or errors.

use std::time::Duration;

use cashdesk_api::QueryPairs;
use cashdesk_crypto::Secret;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{http_client, join, normalize_base, parse_envelope};
use crate::model::{RegisterAppRequest, RegisterAppResponse};
use crate::{Result, SdkError};

/// The filters of the operator lists: the contract crate's, the names the
/// server reads.
pub use cashdesk_api::{
    BindingQuery, FindingQuery, NotificationQuery, OrderQuery, ReconRunQuery, ReconRunRequest,
    RefundQuery, StatementQuery,
};

/// `POST /api/admin/channel-configs`: a merchant account at a channel.
/// `credentials` is any JSON object (keys, certificates, API v3 key…); the
/// server encrypts it at rest and never returns it in clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChannelConfigRequest {
    /// `wx-pay`, `ali-pay` or `lakala`.
    pub channel_type: String,
    pub name: String,
    pub mch_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub credentials: Value,
    /// The channel's API origin (the sandbox, or production when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// `{configId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelConfigCreated {
    pub config_id: String,
}

/// `POST /api/admin/channels`: one scene of a channel config that apps may
/// apply for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChannelRequest {
    pub config_id: String,
    pub scene_code: String,
    pub channel_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<i64>,
}

/// `{channelId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCreated {
    pub channel_id: String,
}

/// `POST /api/admin/stores`: a store (one shop of a chain) of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStoreRequest {
    pub app_id: String,
    /// What orders and binding applications name (`storeId`).
    pub store_id: String,
    pub name: String,
    /// Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `POST /api/admin/apps/{appId}/settings`: the settings to change
/// (absent ones stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_review: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_refund_paid_after_close: Option<bool>,
    /// A new notify URL for the app (undelivered notifications addressed
    /// to the old one follow it); `Some("")` removes the app's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
}

/// A client for the operator API. Cheap to clone.
#[derive(Clone)]
pub struct AdminClient {
    base_url: String,
    http: reqwest::Client,
    token: Secret,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Encodes one path segment (ids are ASCII; anything else is escaped, and
/// empty or dot segments are refused, so a hostile id cannot change the
/// route).
pub(crate) fn seg(s: &str) -> Result<String> {
    if s.is_empty() || s == "." || s == ".." {
        return Err(SdkError::InvalidUrl(format!("`{s}` is not an id")));
    }
    Ok(url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20"))
}

/// `/api/admin/stores/{appId}/{storeId}{rest}`.
fn store_path(app_id: &str, store_id: &str, rest: &str) -> Result<String> {
    Ok(format!(
        "/api/admin/stores/{}/{}{rest}",
        seg(app_id)?,
        seg(store_id)?
    ))
}

/// `path?name=value&…` with a list filter's set fields.
fn with_filter(path: &str, filter: &impl QueryPairs) -> String {
    let pairs: Vec<(String, Option<String>)> = filter
        .query_pairs()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    with_query(path, &pairs)
}

fn with_query(path: &str, pairs: &[(impl AsRef<str>, Option<String>)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k.as_ref(), v);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", q.finish())
    } else {
        path.to_owned()
    }
}

impl AdminClient {
    /// `base_url` is the server origin (e.g. `http://127.0.0.1:8080`),
    /// `token` the operator token (`CASHDESK_ADMIN_TOKEN` or
    /// `<data_dir>/admin.token`). Requests time out after 30 s.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Result<Self> {
        Self::with_timeout(base_url, token, Duration::from_secs(30))
    }

    pub fn with_timeout(
        base_url: impl Into<String>,
        token: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self> {
        let base_url = normalize_base(&base_url.into())?;
        let token = Secret::new(token.into().trim());
        if token.expose().is_empty() {
            return Err(SdkError::InvalidCredentials(
                "the admin token is empty".to_owned(),
            ));
        }
        if HeaderValue::from_str(&format!("Bearer {}", token.expose())).is_err() {
            return Err(SdkError::InvalidCredentials(
                "the admin token contains characters not allowed in an HTTP header".to_owned(),
            ));
        }
        Ok(Self {
            base_url,
            http: http_client(timeout, &[])?,
            token,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends one admin request and returns the success envelope's `data`
    /// (`Value::Null` when there is none). `path_and_query` starts with
    /// `/api/admin`. For endpoints this type has no method for yet.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, bytes) = self.send(method, path_and_query, body).await?;
        Ok(parse_envelope::<Value>(status, &bytes)?
            .data
            .unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let url = join(&self.base_url, path_and_query)?;
        let auth =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                SdkError::InvalidCredentials("admin token is not a header value".into())
            })?;
        let mut req = self.http.request(method, url).header(AUTHORIZATION, auth);
        if let Some(body) = body {
            let bytes =
                serde_json::to_vec(body).map_err(|e| SdkError::InvalidBody(e.to_string()))?;
            req = req
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(bytes);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    async fn get(&self, path_and_query: &str) -> Result<Value> {
        self.request(Method::GET, path_and_query, None).await
    }

    /// POST with an empty JSON object (the state-change actions).
    async fn action(&self, path: &str) -> Result<Value> {
        self.request(Method::POST, path, Some(&Value::Object(Default::default())))
            .await
    }

    async fn create<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let body = serde_json::to_value(body).map_err(|e| SdkError::InvalidBody(e.to_string()))?;
        let data = self.request(Method::POST, path, Some(&body)).await?;
        serde_json::from_value(data)
            .map_err(|e| SdkError::InvalidBody(format!("unexpected data: {e}")))
    }

    // --- apps ---

    /// `GET /api/admin/apps`.
    pub async fn list_apps(&self) -> Result<Value> {
        self.get("/api/admin/apps").await
    }

    /// `GET /api/admin/apps/{appId}`.
    pub async fn get_app(&self, app_id: &str) -> Result<Value> {
        self.get(&format!("/api/admin/apps/{}", seg(app_id)?)).await
    }

    /// `POST /api/admin/apps` (registration by the operator). The app key
    /// in the answer is shown once.
    pub async fn create_app(&self, req: &RegisterAppRequest) -> Result<RegisterAppResponse> {
        self.create("/api/admin/apps", req).await
    }

    /// `POST /api/admin/apps/{appId}/disable`: its requests are refused
    /// (403) from now on.
    pub async fn disable_app(&self, app_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/apps/{}/disable", seg(app_id)?))
            .await
    }

    /// `POST /api/admin/apps/{appId}/enable`.
    pub async fn enable_app(&self, app_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/apps/{}/enable", seg(app_id)?))
            .await
    }

    /// `POST /api/admin/apps/{appId}/settings`: changes the given settings
    /// (`refundReview`, `autoRefundPaidAfterClose`, `notifyUrl`); the app
    /// afterwards, with `notificationsReaddressed` when the URL changed.
    pub async fn update_app_settings(&self, app_id: &str, settings: &AppSettings) -> Result<Value> {
        let body =
            serde_json::to_value(settings).map_err(|e| SdkError::InvalidBody(e.to_string()))?;
        self.request(
            Method::POST,
            &format!("/api/admin/apps/{}/settings", seg(app_id)?),
            Some(&body),
        )
        .await
    }

    /// `POST /api/admin/apps/{appId}/rotate-key`: a new key for the app
    /// (shared-key apps: `appKey` in the answer, shown this once; RSA2/SM2
    /// apps give `public_key_pem`), the previous one accepted for
    /// `overlap_seconds` more (server default one day when `None`).
    pub async fn rotate_app_key(
        &self,
        app_id: &str,
        overlap_seconds: Option<u32>,
        public_key_pem: Option<&str>,
    ) -> Result<Value> {
        let mut body = serde_json::Map::new();
        if let Some(s) = overlap_seconds {
            body.insert("overlapSeconds".into(), s.into());
        }
        if let Some(pem) = public_key_pem {
            body.insert("publicKeyPem".into(), pem.into());
        }
        self.request(
            Method::POST,
            &format!("/api/admin/apps/{}/rotate-key", seg(app_id)?),
            Some(&Value::Object(body)),
        )
        .await
    }

    // --- channel configs ---

    /// `POST /api/admin/channel-configs/{configId}/credentials`: replaces
    /// credentials by a JSON merge patch (RFC 7396: keys given replace,
    /// `null` removes, others stay); validated by the channel's adapter.
    pub async fn replace_channel_credentials(
        &self,
        config_id: &str,
        credentials_patch: &Value,
    ) -> Result<Value> {
        self.request(
            Method::POST,
            &format!("/api/admin/channel-configs/{}/credentials", seg(config_id)?),
            Some(&serde_json::json!({ "credentials": credentials_patch })),
        )
        .await
    }

    /// `POST /api/admin/channel-configs`.
    pub async fn create_channel_config(
        &self,
        req: &CreateChannelConfigRequest,
    ) -> Result<ChannelConfigCreated> {
        self.create("/api/admin/channel-configs", req).await
    }

    /// `GET /api/admin/channel-configs` (credentials masked).
    pub async fn list_channel_configs(&self) -> Result<Value> {
        self.get("/api/admin/channel-configs").await
    }

    /// `GET /api/admin/channel-configs/{configId}` (credentials masked).
    pub async fn get_channel_config(&self, config_id: &str) -> Result<Value> {
        self.get(&format!("/api/admin/channel-configs/{}", seg(config_id)?))
            .await
    }

    /// `POST /api/admin/channel-configs/{configId}/disable`.
    pub async fn disable_channel_config(&self, config_id: &str) -> Result<Value> {
        self.action(&format!(
            "/api/admin/channel-configs/{}/disable",
            seg(config_id)?
        ))
        .await
    }

    /// `POST /api/admin/channel-configs/{configId}/enable`.
    pub async fn enable_channel_config(&self, config_id: &str) -> Result<Value> {
        self.action(&format!(
            "/api/admin/channel-configs/{}/enable",
            seg(config_id)?
        ))
        .await
    }

    /// `POST /api/admin/channel-configs/{configId}/test`: one harmless
    /// query at the channel with the stored credentials →
    /// `{ok, outcome, code, message, latencyMs, …}`.
    pub async fn test_channel_config(&self, config_id: &str) -> Result<Value> {
        self.action(&format!(
            "/api/admin/channel-configs/{}/test",
            seg(config_id)?
        ))
        .await
    }

    // --- channels ---

    /// `POST /api/admin/channels`.
    pub async fn create_channel(&self, req: &CreateChannelRequest) -> Result<ChannelCreated> {
        self.create("/api/admin/channels", req).await
    }

    /// `GET /api/admin/channels`.
    pub async fn list_channels(&self) -> Result<Value> {
        self.get("/api/admin/channels").await
    }

    /// `GET /api/admin/channels/{channelId}`.
    pub async fn get_channel(&self, channel_id: &str) -> Result<Value> {
        self.get(&format!("/api/admin/channels/{}", seg(channel_id)?))
            .await
    }

    /// `POST /api/admin/channels/{channelId}/disable`: no longer offered to
    /// buyers.
    pub async fn disable_channel(&self, channel_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/channels/{}/disable", seg(channel_id)?))
            .await
    }

    /// `POST /api/admin/channels/{channelId}/enable`.
    pub async fn enable_channel(&self, channel_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/channels/{}/enable", seg(channel_id)?))
            .await
    }

    // --- bindings ---

    /// `GET /api/admin/bindings?state=&appId=`.
    pub async fn list_bindings(&self, query: &BindingQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/bindings", query)).await
    }

    /// `POST /api/admin/bindings/{bindingId}/approve` (only a PENDING
    /// binding; otherwise 422).
    pub async fn approve_binding(&self, binding_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/bindings/{}/approve", seg(binding_id)?))
            .await
    }

    /// `POST /api/admin/bindings/{bindingId}/reject`.
    pub async fn reject_binding(&self, binding_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/bindings/{}/reject", seg(binding_id)?))
            .await
    }

    // --- orders and audit ---

    /// `GET /api/admin/orders?appId=&storeId=&state=&outTradeNo=&limit=`
    /// (newest first).
    pub async fn list_orders(&self, query: &OrderQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/orders", query)).await
    }

    /// `GET /api/admin/orders/{orderId}`.
    pub async fn get_order(&self, order_id: &str) -> Result<Value> {
        self.get(&format!("/api/admin/orders/{}", seg(order_id)?))
            .await
    }

    /// `POST /api/admin/orders/{orderId}/sync`: asks the channel about an
    /// unpaid order and settles what it says (`orders.manage`).
    pub async fn sync_order(&self, order_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/orders/{}/sync", seg(order_id)?))
            .await
    }

    /// `POST /api/admin/orders/{orderId}/close`: closes an unpaid order
    /// (`orders.manage`; a paid order is 422).
    pub async fn close_order(&self, order_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/orders/{}/close", seg(order_id)?))
            .await
    }

    /// `POST /api/admin/orders/{orderId}/refunds` `{amount, reason?,
    /// outRefundNo?}` (`refunds.create`): a refund under the app's review
    /// rules; answers the refund (`RefundView`). Give an `outRefundNo` to
    /// make a retry the same refund.
    pub async fn refund_order(
        &self,
        order_id: &str,
        amount_fen: i64,
        reason: Option<&str>,
        out_refund_no: Option<&str>,
    ) -> Result<Value> {
        let body = serde_json::json!({
            "amount": amount_fen,
            "reason": reason,
            "outRefundNo": out_refund_no,
        });
        self.request(
            Method::POST,
            &format!("/api/admin/orders/{}/refunds", seg(order_id)?),
            Some(&body),
        )
        .await
    }

    // --- stores ---

    /// `POST /api/admin/stores`; answers the store (`StoreView`).
    pub async fn create_store(&self, req: &CreateStoreRequest) -> Result<Value> {
        let body = serde_json::to_value(req).map_err(|e| SdkError::InvalidBody(e.to_string()))?;
        self.request(Method::POST, "/api/admin/stores", Some(&body))
            .await
    }

    /// `GET /api/admin/stores?appId=`.
    pub async fn list_stores(&self, app_id: Option<&str>) -> Result<Value> {
        let path = with_query("/api/admin/stores", &[("appId", app_id.map(str::to_owned))]);
        self.get(&path).await
    }

    /// `GET /api/admin/stores/{appId}/{storeId}`.
    pub async fn get_store(&self, app_id: &str, store_id: &str) -> Result<Value> {
        self.get(&store_path(app_id, store_id, "")?).await
    }

    /// `PUT /api/admin/stores/{appId}/{storeId}` `{name}`.
    pub async fn rename_store(&self, app_id: &str, store_id: &str, name: &str) -> Result<Value> {
        self.request(
            Method::PUT,
            &store_path(app_id, store_id, "")?,
            Some(&serde_json::json!({ "name": name })),
        )
        .await
    }

    /// `POST /api/admin/stores/{appId}/{storeId}/disable`: its new orders,
    /// payments and binding applications are refused (403 4034).
    pub async fn disable_store(&self, app_id: &str, store_id: &str) -> Result<Value> {
        self.action(&store_path(app_id, store_id, "/disable")?)
            .await
    }

    /// `POST /api/admin/stores/{appId}/{storeId}/enable`.
    pub async fn enable_store(&self, app_id: &str, store_id: &str) -> Result<Value> {
        self.action(&store_path(app_id, store_id, "/enable")?).await
    }

    /// `GET /api/admin/stores/{appId}/{storeId}/identities` (secrets masked).
    pub async fn list_store_identities(&self, app_id: &str, store_id: &str) -> Result<Value> {
        self.get(&store_path(app_id, store_id, "/identities")?)
            .await
    }

    /// `PUT /api/admin/stores/{appId}/{storeId}/identities/{configId}`
    /// `{identity}`: the store's own merchant identity at that channel
    /// config (e.g. `{"subMchId": …}` for a WeChat service provider).
    pub async fn put_store_identity(
        &self,
        app_id: &str,
        store_id: &str,
        config_id: &str,
        identity: &Value,
    ) -> Result<Value> {
        let path = store_path(
            app_id,
            store_id,
            &format!("/identities/{}", seg(config_id)?),
        )?;
        self.request(
            Method::PUT,
            &path,
            Some(&serde_json::json!({ "identity": identity })),
        )
        .await
    }

    /// `DELETE /api/admin/stores/{appId}/{storeId}/identities/{configId}`.
    pub async fn delete_store_identity(
        &self,
        app_id: &str,
        store_id: &str,
        config_id: &str,
    ) -> Result<Value> {
        let path = store_path(
            app_id,
            store_id,
            &format!("/identities/{}", seg(config_id)?),
        )?;
        self.request(Method::DELETE, &path, None).await
    }

    // --- refunds ---

    /// `GET /api/admin/refunds?state=&appId=&limit=` (newest first).
    pub async fn list_refunds(&self, query: &RefundQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/refunds", query)).await
    }

    /// `GET /api/admin/refunds/{refundId}`.
    pub async fn get_refund(&self, refund_id: &str) -> Result<Value> {
        self.get(&format!("/api/admin/refunds/{}", seg(refund_id)?))
            .await
    }

    /// `POST /api/admin/refunds/{refundId}/approve`: a `PENDING_REVIEW`
    /// refund goes to the channel (otherwise 422).
    pub async fn approve_refund(&self, refund_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/refunds/{}/approve", seg(refund_id)?))
            .await
    }

    /// `POST /api/admin/refunds/{refundId}/reject`: a `PENDING_REVIEW`
    /// refund becomes `REJECTED` and its amount refundable again.
    pub async fn reject_refund(&self, refund_id: &str) -> Result<Value> {
        self.action(&format!("/api/admin/refunds/{}/reject", seg(refund_id)?))
            .await
    }

    // --- merchant notifications ---

    /// `GET /api/admin/notifications?appId=&orderId=&state=&limit=&before=`
    /// (newest first).
    pub async fn list_notifications(&self, query: &NotificationQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/notifications", query))
            .await
    }

    /// `GET /api/admin/notifications/{notifyId}`: the notification, its
    /// body and every attempt (`attemptLog`).
    pub async fn get_notification(&self, notify_id: &str) -> Result<Value> {
        self.get(&format!("/api/admin/notifications/{}", seg(notify_id)?))
            .await
    }

    /// `POST /api/admin/notifications/{notifyId}/resend`: due now, whatever
    /// its state, with the same notifyId.
    pub async fn resend_notification(&self, notify_id: &str) -> Result<Value> {
        self.action(&format!(
            "/api/admin/notifications/{}/resend",
            seg(notify_id)?
        ))
        .await
    }

    // --- reconciliation ---

    /// `POST /api/admin/reconciliations/run`: reconciles one day for one
    /// config or every enabled one; the runs as they ended.
    pub async fn run_reconciliation(&self, req: &ReconRunRequest) -> Result<Value> {
        self.create("/api/admin/reconciliations/run", req).await
    }

    /// `GET /api/admin/reconciliations?date=&configId=&state=&limit=`.
    pub async fn list_reconciliations(&self, query: &ReconRunQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/reconciliations", query))
            .await
    }

    /// `GET /api/admin/reconciliations/findings?date=&configId=&kind=&status=&limit=&before=`
    /// (newest first).
    pub async fn list_findings(&self, query: &FindingQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/reconciliations/findings", query))
            .await
    }

    /// `GET /api/admin/reconciliations/statement?date=&configId=&appId=&storeId=&limit=`:
    /// the daily statement per config, app and store (fen and yuan).
    pub async fn reconciliation_statement(&self, query: &StatementQuery) -> Result<Value> {
        self.get(&with_filter("/api/admin/reconciliations/statement", query))
            .await
    }

    /// `GET /api/admin/reconciliations/findings/{findingId}`.
    pub async fn get_finding(&self, finding_id: &str) -> Result<Value> {
        self.get(&format!(
            "/api/admin/reconciliations/findings/{}",
            seg(finding_id)?
        ))
        .await
    }

    /// `POST /api/admin/reconciliations/findings/{findingId}/resolve`
    /// `{"note"}`: an `OPEN` finding becomes `RESOLVED` (audited).
    pub async fn resolve_finding(&self, finding_id: &str, note: &str) -> Result<Value> {
        self.request(
            Method::POST,
            &format!(
                "/api/admin/reconciliations/findings/{}/resolve",
                seg(finding_id)?
            ),
            Some(&serde_json::json!({ "note": note })),
        )
        .await
    }

    /// `GET /api/admin/audit?limit=` (newest first).
    pub async fn list_audit(&self, limit: Option<u32>) -> Result<Value> {
        let path = with_query(
            "/api/admin/audit",
            &[("limit", limit.map(|l| l.to_string()))],
        );
        self.get(&path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_escape_the_route() {
        assert_eq!(seg("app0123456789abcdef").unwrap(), "app0123456789abcdef");
        assert_eq!(seg("../x?y=1 z").unwrap(), "..%2Fx%3Fy%3D1%20z");
        assert!(seg("..").is_err());
        assert!(seg(".").is_err());
        assert!(seg("").is_err());
    }

    #[test]
    fn queries_only_carry_set_filters() {
        assert_eq!(with_query("/a", &[("x", None)]), "/a");
        assert_eq!(
            with_query("/a", &[("state", Some("PENDING".into())), ("appId", None)]),
            "/a?state=PENDING"
        );
        assert_eq!(
            with_query("/a", &[("appId", Some("a&b".into()))]),
            "/a?appId=a%26b"
        );
        assert_eq!(
            with_filter("/a", &OrderQuery::default()),
            "/a",
            "no filter, no query string"
        );
        assert_eq!(
            with_filter(
                "/a",
                &BindingQuery {
                    state: Some(cashdesk_core::BindingState::Pending),
                    app_id: Some("a b".into()),
                }
            ),
            "/a?appId=a+b&state=PENDING"
        );
    }

    #[test]
    fn token_is_checked_and_never_printed() {
        assert!(AdminClient::new("http://127.0.0.1:1", "  ").is_err());
        assert!(AdminClient::new("http://127.0.0.1:1", "bad\ntoken").is_err());
        assert!(AdminClient::new("ftp://127.0.0.1:1", "tok").is_err());
        let c = AdminClient::new("http://127.0.0.1:1/", "s3cret-token").expect("valid");
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
