//! WeChat Pay API v2: flat XML over HTTPS, MD5 or HMAC-SHA256 parameter
//! signatures (PROTOCOLS.md "WeChat Pay API v2").
//!
//! Every request carries `mch_id`, `nonce_str`, `sign_type` (the config's) and
//! `sign`. Every answer is checked in WeChat's order: `return_code` (a
//! communication-level failure carries no signature), then the signature over
//! every field received (unknown ones included), then `mch_id`/`appid`, then
//! `result_code`/`err_code`. `secapi/pay/refund` goes over mutual TLS with the
//! merchant certificate, on its own client so the private key is only ever
//! presented to the refund endpoint.
//!
//! Service-provider mode: with a store's `SubMerchant` every request
//! carries `sub_mch_id` (and `sub_appid` when the store has its own AppID,
//! the payer then being `sub_openid`), signed with the service provider's
//! key; answers must name that `sub_mch_id` back.
//!
//! Notifications: payment notifications are signed (with the order's sign
//! type when `sign_type` is absent — the config's, which every order of this
//! config was made with); refund notifications are not signed but carry
//! `req_info`, AES-256-ECB under MD5(API key), which only WeChat can produce.
//!
//! Rooms: [`client`] signs, sends and checks every call and maps `err_code`s
//! (the one place they get a meaning, [`client::business_kind`]); [`flows`]
//! is the [`crate::Channel`] implementation, one method per flow, and builds
//! `payData`; [`notify`] verifies and parses notifications; [`wire`] reads
//! fields of the flat XML (v2 has no typed bodies: its signature covers every
//! field, known or not, so answers stay string maps).

mod bill;
mod client;
mod flows;
mod notify;
mod wire;

use std::sync::Arc;

use cashdesk_crypto::Secret;
use cashdesk_crypto::wxv2::WxSignType;
use url::Url;

use super::oauth::WechatOAuth;
use super::wire::V2Credentials;
use crate::error::ChannelError;
use crate::http;
use crate::registry::ChannelEnv;
use crate::support::parse_base_url;

/// One WeChat Pay v2 merchant account.
pub struct WxPayV2 {
    mch_id: String,
    app_id: String,
    api_key: Secret,
    sign_type: WxSignType,
    base_url: Url,
    refund_base_url: Url,
    notify_url: String,
    public_url: String,
    http: reqwest::Client,
    /// The official account's web OAuth, when the config has `appSecret`.
    oauth: Option<Arc<WechatOAuth>>,
    /// Presents the merchant certificate; `None` when the config has none.
    refund_http: Option<reqwest::Client>,
}

impl std::fmt::Debug for WxPayV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPayV2")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("sign_type", &self.sign_type)
            .field("base_url", &self.base_url.as_str())
            .field("refund_client", &self.refund_http.is_some())
            .finish_non_exhaustive()
    }
}

impl WxPayV2 {
    pub fn new(
        mch_id: &str,
        creds: V2Credentials,
        base_url: Url,
        env: &ChannelEnv,
    ) -> Result<Self, ChannelError> {
        let checked = creds.check().map_err(ChannelError::config)?;
        let mut roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        if let Some(ca) = &creds.ca_cert_pem {
            roots.push(ca);
        }
        let http = http::build_client(&env.http, &roots, None)?;
        let refund_http = match &checked.identity_pem {
            Some(pem) => Some(http::build_client(
                &env.http,
                &roots,
                Some(pem.expose().as_bytes()),
            )?),
            None => None,
        };
        let refund_base_url = match &creds.refund_base_url {
            Some(u) => parse_base_url(u).map_err(ChannelError::config)?,
            None => base_url.clone(),
        };
        let oauth =
            WechatOAuth::from_credentials(&creds.app_id, creds.app_secret.as_ref(), &http, env)?
                .map(Arc::new);
        Ok(Self {
            mch_id: mch_id.trim().to_owned(),
            app_id: creds.app_id.trim().to_owned(),
            api_key: creds.api_key,
            sign_type: checked.sign_type,
            base_url,
            refund_base_url,
            notify_url: env.notify_url.clone(),
            public_url: env.public_url.clone(),
            http,
            oauth,
            refund_http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::wire::Fields;
    use super::*;
    use crate::channel::Channel;
    use crate::http::HttpSettings;
    use cashdesk_crypto::wxv2;
    use serde_json::json;

    // PROTOCOLS.md vectors.
    const VECTOR_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const VECTOR_APPID: &str = "wxd930ea5d5a258f4f";

    fn adapter(sign_type: &str) -> WxPayV2 {
        let creds = V2Credentials::parse(&json!({
            "appId": VECTOR_APPID, "apiKey": VECTOR_KEY, "signType": sign_type
        }))
        .unwrap();
        let env = ChannelEnv {
            public_url: "https://pay.example.com".into(),
            notify_url: "https://pay.example.com/api/cashier-desk/notify/C1".into(),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
            oauth_base_url: None,
        };
        WxPayV2::new(
            "10000100",
            creds,
            Url::parse(crate::wechat::PRODUCTION_BASE_URL).unwrap(),
            &env,
        )
        .unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn vector_param_signature_md5_and_hmac() {
        let p = fields(&[
            ("appid", VECTOR_APPID),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        assert_eq!(
            wxv2::string_a(&p),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            adapter("MD5").sign(&p, WxSignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            adapter("HMAC-SHA256").sign(&p, WxSignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
        // `sign` and empty values are not signed.
        let mut with_extra = p.clone();
        with_extra.insert("sign".into(), "X".into());
        with_extra.insert("attach".into(), String::new());
        assert_eq!(
            wxv2::sign(&with_extra, VECTOR_KEY, WxSignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn vector_request_payment_pay_sign() {
        let prepay = "wx2017033010242291fcfe0db70013231072";
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
        let md5 = adapter("MD5")
            .jsapi_pay_data(prepay, 1490840662, nonce, VECTOR_APPID)
            .to_json();
        assert_eq!(
            md5,
            json!({
                "appId": VECTOR_APPID, "timeStamp": "1490840662", "nonceStr": nonce,
                "package": "prepay_id=wx2017033010242291fcfe0db70013231072", "signType": "MD5",
                "paySign": "A3C4993E71916E54AE93F5D2B1E888AF"
            })
        );
        let hmac = adapter("HMAC-SHA256")
            .jsapi_pay_data(prepay, 1490840662, nonce, VECTOR_APPID)
            .to_json();
        assert_eq!(hmac["signType"], "HMAC-SHA256");
        assert_eq!(
            hmac["paySign"],
            "15FC5558B3F2A6AF14B8C4FEB53F8D822E04051B2C788ECDD0ABA657F9EA5A06"
        );
    }

    #[test]
    fn app_params_are_signed_over_the_six_fields() {
        let a = adapter("MD5");
        let v = a.app_pay_data("wx201", 1490840662, "abc", None).to_json();
        let obj = v.as_object().unwrap();
        let mut p: Fields = obj
            .iter()
            .filter(|(k, _)| *k != "sign")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            p.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "appid",
                "noncestr",
                "package",
                "partnerid",
                "prepayid",
                "timestamp"
            ]
        );
        assert_eq!(p["package"], "Sign=WXPay");
        assert_eq!(p["partnerid"], "10000100");
        p.insert("sign".into(), obj["sign"].as_str().unwrap().to_owned());
        assert!(wxv2::verify(&p, VECTOR_KEY, WxSignType::Md5));
    }

    #[test]
    fn vector_refund_notify_key() {
        let key = wxv2::refund_notify_key("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk");
        assert_eq!(&key, b"63dfc0c1f53d9bc83a8fdc365b8141da");
        let xml = "<root><out_refund_no><![CDATA[R1]]></out_refund_no></root>";
        let enc = wxv2::encrypt_req_info("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk", xml);
        assert_eq!(
            wxv2::decrypt_req_info("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk", &enc).unwrap(),
            xml
        );
    }

    #[test]
    fn replies() {
        let a = adapter("MD5");
        assert!(a.payer_oauth().is_none(), "no appSecret, no OAuth");
        assert_eq!(
            a.notification_reply(true).body,
            "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
        );
        assert!(a.notification_reply(false).body.contains("FAIL"));
    }
}
