//! Merchant notifications (ARCHITECTURE.md §5.3): what cashdesk POSTs to an
//! order's `notifyUrl` on every terminal event, and how a merchant checks it.
//!
//! A notification is signed like a request: method `POST`, the path and
//! query of the notify URL, `Cashdesk-Timestamp`, `Cashdesk-Nonce` and the
//! raw body (`POST\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY\n`), with the app
//! key (HMAC-SHA256 / HMAC-SM3 / MD5) or cashdesk's platform private key
//! (RSA2 / SM2 apps). Verification therefore needs the notify URL *as the
//! merchant registered it*, not as a reverse proxy may have rewritten it.
//!
//! cashdesk retries until it gets HTTP 200 with [`NOTIFICATION_ACK_BODY`]
//! (or the text `success`); every attempt is signed afresh, so the
//! timestamp window applies per attempt. The same event keeps its
//! `notifyId` across attempts: deduplicate on it.

use reqwest::header::HeaderMap;

use crate::signing::SignatureVerifier;
use crate::{Result, SdkError};

/// The body (one type with the server's, from the contract crate) and the
/// acknowledgement that stops the retries.
pub use cashdesk_api::{MerchantNotification, NOTIFICATION_ACK_BODY};

/// The path and query a notification is signed over: for an absolute
/// `http(s)` URL its path plus `?query` (as the `url` crate normalises
/// them; no fragment), and a value starting with `/` as it is. cashdesk
/// signs with the same rule.
pub fn notify_path_and_query(notify_url: &str) -> Result<String> {
    if notify_url.starts_with('/') {
        return Ok(notify_url.to_owned());
    }
    let url = url::Url::parse(notify_url)
        .map_err(|e| SdkError::InvalidUrl(format!("notify URL {notify_url}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SdkError::InvalidUrl(format!(
            "notify URL {notify_url}: scheme must be http or https"
        )));
    }
    let mut out = url.path().to_owned();
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Verifies a merchant notification and parses it.
///
/// `verifier` is the app's [`SignatureVerifier`] (app key, or cashdesk's
/// platform public key for RSA2/SM2 apps); `notify_url` the URL the
/// notification was addressed to (absolute, or its path and query);
/// `headers` and `body` exactly as received. Fails with
/// [`SdkError::BadNotificationSignature`] when the signature, sign type,
/// timestamp or app does not match — answer such a request with an error
/// status and do not act on it — and [`SdkError::InvalidBody`] when a
/// correctly signed body is not a notification.
pub fn verify_notification(
    verifier: &SignatureVerifier,
    notify_url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<MerchantNotification> {
    let path_and_query = notify_path_and_query(notify_url)?;
    verifier
        .verify_request("POST", &path_and_query, headers, body)
        .map_err(SdkError::BadNotificationSignature)?;
    let notification: MerchantNotification = serde_json::from_slice(body)
        .map_err(|e| SdkError::InvalidBody(format!("not a merchant notification: {e}")))?;
    if notification.app_id != verifier.app_id() {
        return Err(SdkError::BadNotificationSignature(format!(
            "notification is for app {}, expected {}",
            notification.app_id,
            verifier.app_id()
        )));
    }
    Ok(notification)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_of_notify_urls() {
        assert_eq!(
            notify_path_and_query("https://shop.example.com/pay/cb?shop=1&x=a%20b#frag").unwrap(),
            "/pay/cb?shop=1&x=a%20b"
        );
        assert_eq!(
            notify_path_and_query("http://shop.example.com").unwrap(),
            "/"
        );
        assert_eq!(notify_path_and_query("/cb?x=1").unwrap(), "/cb?x=1");
        assert!(notify_path_and_query("ftp://shop.example.com/cb").is_err());
        assert!(notify_path_and_query("not a url").is_err());
    }
}
