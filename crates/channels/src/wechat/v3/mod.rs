//! WeChat Pay API v3: JSON over HTTPS, SHA256withRSA both ways
//! (PROTOCOLS.md "WeChat Pay API v3").
//!
//! Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",
//! nonce_str="…",signature="…",timestamp="…",serial_no="…"` over
//! `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`. Responses are verified
//! against the configured platform key: `Wechatpay-Serial` must be the
//! configured `platformSerial`, the timestamp within ±300 s, the signature
//! over `TIMESTAMP\nNONCE\nBODY\n` good. A 2xx answer that is unsigned or
//! does not verify is [`ChannelError::BadResponse`] — never acted on. A 4xx
//! error body may be unsigned (WeChat does not sign answers to requests it
//! could not authenticate); it is reported as an error and never turned into
//! a state, except `ORDER_NOT_EXIST`, which becomes `NotFound` only when
//! signed. 5xx and 429 are retryable whatever their signature.
//!
//! Service-provider mode: with a store's `SubMerchant` orders go to the
//! partner endpoints (`/v3/pay/partner/transactions/…`, body `sp_appid`,
//! `sp_mchid`, `sub_appid`, `sub_mchid`, `payer.sp_openid|sub_openid`;
//! query `?sp_mchid=&sub_mchid=`; close `{sp_mchid, sub_mchid}`) and
//! refunds carry `sub_mchid`. The service provider signs, as always.
//!
//! Notifications: headers verified the same way (an unknown serial is a key
//! problem: the platform key may have rotated), then the resource decrypted
//! with AEAD_AES_256_GCM under the APIv3 key. The signature covers the
//! ciphertext, so a decryption failure after a good signature means our
//! APIv3 key is wrong (key problem), not tampering.
//!
//! Rooms: [`client`] signs and sends every call, verifies answers and maps
//! error codes (the one place v3's `code`s get a meaning,
//! [`client::business_kind`]); [`flows`] is the [`crate::Channel`]
//! implementation, one method per flow, and builds `payData`; [`notify`]
//! verifies, decrypts and parses notifications; [`wire`] holds the JSON
//! bodies.

mod bill;
mod client;
mod flows;
mod notify;
pub mod wire;

use std::sync::Arc;

use cashdesk_crypto::Secret;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

use super::oauth::WechatOAuth;
use super::wire::V3Credentials;
use crate::error::ChannelError;
use crate::http;
use crate::registry::ChannelEnv;

/// The allowed clock difference for signed responses and notifications.
pub const MAX_SKEW_SECS: i64 = 300;

/// One WeChat Pay v3 merchant account.
pub struct WxPayV3 {
    mch_id: String,
    app_id: String,
    serial_no: String,
    private_key: RsaPrivateKey,
    api_v3_key: Secret,
    platform_serial: String,
    platform_key: RsaPublicKey,
    base_url: Url,
    notify_url: String,
    http: reqwest::Client,
    /// The official account's web OAuth, when the config has `appSecret`.
    oauth: Option<Arc<WechatOAuth>>,
}

impl std::fmt::Debug for WxPayV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPayV3")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("serial_no", &self.serial_no)
            .field("platform_serial", &self.platform_serial)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl WxPayV3 {
    pub fn new(
        mch_id: &str,
        creds: V3Credentials,
        base_url: Url,
        env: &ChannelEnv,
    ) -> Result<Self, ChannelError> {
        let checked = creds.check().map_err(ChannelError::config)?;
        let mut roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        if let Some(ca) = &creds.ca_cert_pem {
            roots.push(ca);
        }
        let http = http::build_client(&env.http, &roots, None)?;
        let oauth =
            WechatOAuth::from_credentials(&creds.app_id, creds.app_secret.as_ref(), &http, env)?
                .map(Arc::new);
        Ok(Self {
            mch_id: mch_id.trim().to_owned(),
            app_id: creds.app_id.trim().to_owned(),
            serial_no: creds.serial_no.trim().to_owned(),
            private_key: checked.private_key,
            api_v3_key: creds.api_v3_key,
            platform_serial: creds.platform_serial.trim().to_owned(),
            platform_key: checked.platform_key,
            base_url,
            notify_url: env.notify_url.clone(),
            http,
            oauth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::http::HttpSettings;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use cashdesk_crypto::aead::{aes_gcm_decrypt, aes_gcm_encrypt};
    use serde_json::json;

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.decode(s).unwrap()
    }

    #[test]
    fn vector_aead_aes_256_gcm() {
        let ct = b64("ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=");
        let plain = aes_gcm_decrypt(
            b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            b"uluk4a9R25RW",
            b"associatedData",
            &ct,
        )
        .unwrap();
        assert_eq!(plain, b"message");
        let again = aes_gcm_encrypt(
            b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            b"uluk4a9R25RW",
            b"associatedData",
            b"message",
        )
        .unwrap();
        assert_eq!(again, ct);
        let mut tampered = ct.clone();
        tampered[0] ^= 1;
        assert!(
            aes_gcm_decrypt(
                b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
                b"uluk4a9R25RW",
                b"associatedData",
                &tampered
            )
            .is_err()
        );
        assert!(
            aes_gcm_decrypt(
                b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
                b"uluk4a9R25RW",
                b"other",
                &ct
            )
            .is_err()
        );
    }

    #[test]
    fn vector_sdk_aes_128_gcm() {
        let ct = b64("FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC");
        let plain = aes_gcm_decrypt(
            b"testAPIv3Key0000",
            b"wCq51qZv4Yfg",
            b"Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            &ct,
        )
        .unwrap();
        assert_eq!(plain, b"Hello World");
    }

    fn adapter() -> (WxPayV3, RsaPublicKey) {
        let merchant = RsaPrivateKey::generate_2048().unwrap();
        let platform = RsaPrivateKey::generate_2048().unwrap();
        let public = merchant.public_key();
        let creds = V3Credentials::parse(&json!({
            "appId": "wxd930ea5d5a258f4f",
            "serialNo": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "privateKeyPem": merchant.to_pkcs8_pem(),
            "apiV3Key": "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            "platformSerial": "PUB_KEY_ID_0114232134912410000000000000",
            "platformPublicKeyPem": platform.public_key().to_spki_pem(),
        }))
        .unwrap();
        let env = ChannelEnv {
            public_url: "https://pay.example.com".into(),
            notify_url: "https://pay.example.com/api/cashier-desk/notify/C1".into(),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
            oauth_base_url: None,
        };
        let a = WxPayV3::new(
            "1900000001",
            creds,
            Url::parse(crate::wechat::PRODUCTION_BASE_URL).unwrap(),
            &env,
        )
        .unwrap();
        (a, public)
    }

    #[test]
    fn authorization_header_layout() {
        let (a, public) = adapter();
        let body = r#"{"mchid":"1900000001"}"#;
        let auth = a
            .authorization(
                "POST",
                "/v3/pay/transactions/out-trade-no/P1/close",
                body,
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
            )
            .unwrap();
        let rest = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ").unwrap();
        let params: std::collections::BTreeMap<&str, &str> = rest
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k, v.trim_matches('"'))
            })
            .collect();
        assert_eq!(params["mchid"], "1900000001");
        assert_eq!(params["nonce_str"], "593BEC0C930BF1AFEB40B4A08C8FB242");
        assert_eq!(params["timestamp"], "1554208460");
        assert_eq!(
            params["serial_no"],
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
        );
        let message = format!(
            "POST\n/v3/pay/transactions/out-trade-no/P1/close\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{body}\n"
        );
        // The signature may contain '=' padding: take everything after "signature=".
        let sig = rest
            .split("signature=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        public
            .verify_sha256_base64(message.as_bytes(), sig)
            .unwrap();
    }

    #[test]
    fn request_payment_and_app_params_are_rsa_signed() {
        let (a, public) = adapter();
        let v = a
            .jsapi_pay_data(
                "wx201410272009395522657a690389285100",
                1414561699,
                "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                "wxd930ea5d5a258f4f",
            )
            .unwrap()
            .to_json();
        assert_eq!(v["signType"], "RSA");
        assert_eq!(
            v["package"],
            "prepay_id=wx201410272009395522657a690389285100"
        );
        let msg = "wxd930ea5d5a258f4f\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n";
        public
            .verify_sha256_base64(msg.as_bytes(), v["paySign"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            v.as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            [
                "appId",
                "nonceStr",
                "package",
                "paySign",
                "signType",
                "timeStamp"
            ]
            .into_iter()
            .collect()
        );
        let app = a
            .app_pay_data("wx2014", 1414561699, "abc", None)
            .unwrap()
            .to_json();
        let msg = "wxd930ea5d5a258f4f\n1414561699\nabc\nwx2014\n";
        public
            .verify_sha256_base64(msg.as_bytes(), app["sign"].as_str().unwrap())
            .unwrap();
        assert_eq!(app["package"], "Sign=WXPay");
        assert_eq!(app["partnerid"], "1900000001");
    }

    #[test]
    fn replies() {
        let (a, _) = adapter();
        assert_eq!(a.notification_reply(true).status, 204);
        let fail = a.notification_reply(false);
        assert_eq!(fail.status, 500);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&fail.body).unwrap()["code"],
            "FAIL"
        );
    }
}
