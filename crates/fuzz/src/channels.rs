//! Targets for what the channels send cashdesk: WeChat Pay v2's flat XML,
//! and each channel's notification through the adapter's public
//! [`Channel::parse_notification`], the path the server's notify endpoint
//! takes. In mode `S` the notification is made authentic with the
//! sandbox's platform keys (signature, v3 resource encryption, v2 refund
//! `req_info` encryption), so the decoding behind the check is fuzzed too;
//! then what the adapter accepted must be what was sent.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cashdesk_channels::{
    IncomingNotification, PaymentResult, VerifiedNotification, xml as channel_xml,
};
use cashdesk_crypto::wxv2::{self, WxSignType};
use cashdesk_sandbox::xml as sandbox_xml;
use serde_json::{Value, json};

use crate::message::{Message, substitute};
use crate::{Outcome, fixtures};

/// `timestamp\nnonce\nbody\n`: what WeChat v3 and Lakala sign on a
/// notification.
pub(crate) fn lines(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for p in parts {
        m.extend_from_slice(p);
        m.push(b'\n');
    }
    m
}

/// A form's parameters (last value wins), `$NAME`s replaced in values
/// (a form encodes `$` as `%24`, so it is replaced after decoding).
pub(crate) fn form_with_vars(body: &[u8], vars: &[(&str, String)]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| {
            let v = substitute(v.as_bytes(), vars);
            (k.into_owned(), String::from_utf8_lossy(&v).into_owned())
        })
        .collect()
}

fn incoming(m: &Message<'_>, body: Vec<u8>) -> IncomingNotification {
    IncomingNotification {
        method: "POST".into(),
        headers: m.headers.clone(),
        query: None,
        body,
    }
}

fn json_str(v: Option<&Value>, key: &str) -> Option<String> {
    v?.get(key)?.as_str().map(str::to_owned)
}

/// What the adapter accepted must be what the authentic body says.
fn check_decoded(
    result: Result<VerifiedNotification, cashdesk_channels::NotifyError>,
    fields: &dyn Fn(&str) -> Option<String>,
) -> Outcome {
    let Ok(verified) = result else {
        return Outcome::Refused;
    };
    match &verified {
        VerifiedNotification::Payment(p) => {
            assert_eq!(Some(&p.out_trade_no), fields("out_trade_no").as_ref());
            if let PaymentResult::Paid(paid) = &p.result {
                assert!(paid.amount.get() > 0, "paid amount {:?}", paid.amount);
            }
        }
        VerifiedNotification::Refund(r) => {
            assert_eq!(Some(&r.out_trade_no), fields("out_trade_no").as_ref());
            assert!(
                r.refund_amount.get() > 0,
                "refund amount {:?}",
                r.refund_amount
            );
        }
        VerifiedNotification::Other { .. } => {}
    }
    Outcome::Accepted
}

/// WeChat Pay v2's flat XML, both readers: the adapters' (`parse_flat`) and
/// the sandbox's (`parse`). Whatever a reader accepts, its writer must
/// write back to the same fields.
pub fn wechat_v2_xml(data: &[u8]) -> Outcome {
    let mut accepted = false;
    if let Ok(fields) = channel_xml::parse_flat(data) {
        let again = channel_xml::parse_flat(channel_xml::to_xml(&fields).as_bytes());
        assert_eq!(again.as_ref(), Ok(&fields), "to_xml → parse_flat");
        accepted = true;
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(fields) = sandbox_xml::parse(text)
    {
        let again = sandbox_xml::parse(&sandbox_xml::render(&fields));
        assert_eq!(again.as_ref(), Ok(&fields), "render → parse");
        accepted = true;
    }
    Outcome::from(accepted)
}

/// A WeChat Pay v2 notification (body: flat XML). Mode `S`: the body's
/// fields are signed with the merchant's API key (MD5 or HMAC-SHA256 as the
/// `sign_type` field says), and a `req_info` given as plain `<root>` XML is
/// encrypted as WeChat encrypts refund notifications.
pub fn wechat_v2_notify(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let m = Message::parse(data, false);
    if !m.sign {
        let n = incoming(&m, m.body.to_vec());
        let md5 = f.wx_v2_md5.parse_notification(&n).is_ok();
        let hmac = f.wx_v2_hmac.parse_notification(&n).is_ok();
        return Outcome::from(md5 || hmac);
    }
    let Ok(mut fields) = channel_xml::parse_flat(&substitute(m.body, &f.vars())) else {
        return Outcome::Refused;
    };
    let hmac = fields.get("sign_type").map(String::as_str) == Some("HMAC-SHA256");
    let (ch, creds) = if hmac {
        (&f.wx_v2_hmac, &f.wechat_hmac.credentials_v2)
    } else {
        (&f.wx_v2_md5, &f.wechat_md5.credentials_v2)
    };
    fields.remove("sign");
    let mut refund_fields = None;
    if let Some(plain) = fields
        .get("req_info")
        .filter(|v| v.starts_with('<'))
        .cloned()
    {
        refund_fields = sandbox_xml::parse(&plain).ok();
        fields.insert(
            "req_info".into(),
            wxv2::encrypt_req_info(&creds.api_key, &plain),
        );
    } else {
        let kind = if hmac {
            WxSignType::HmacSha256
        } else {
            WxSignType::Md5
        };
        let sign = wxv2::sign(&fields, &creds.api_key, kind);
        fields.insert("sign".into(), sign);
    }
    let body = channel_xml::to_xml(&fields).into_bytes();
    let result = ch.parse_notification(&incoming(&m, body));
    // A refund's numbers come from the encrypted part.
    let source = refund_fields.as_ref().unwrap_or(&fields);
    check_decoded(result, &|k| source.get(k).cloned())
}

/// A WeChat Pay v3 notification: `Wechatpay-*` headers and a JSON envelope.
/// Mode `S`: the body is the resource's plaintext; it is encrypted with the
/// merchant's APIv3 key into an envelope (event type from an `Event-Type`
/// header, TRANSACTION.SUCCESS by default) signed now with the platform key.
pub fn wechat_v3_notify(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let m = Message::parse(data, false);
    if !m.sign {
        let result = f.wx_v3.parse_notification(&incoming(&m, m.body.to_vec()));
        return Outcome::from(result.is_ok());
    }
    let creds = &f.wechat_md5.credentials_v3;
    let plaintext = substitute(m.body, &f.vars());
    let nonce = "fuzzfuzzfuzz";
    let Ok(ciphertext) = cashdesk_crypto::aead::aes_gcm_encrypt(
        creds.api_v3_key.as_bytes(),
        nonce.as_bytes(),
        b"transaction",
        &plaintext,
    ) else {
        return Outcome::Refused;
    };
    let event_type = m.header("Event-Type").unwrap_or("TRANSACTION.SUCCESS");
    let body = json!({
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "fuzz",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": STANDARD.encode(ciphertext),
            "associated_data": "transaction",
            "nonce": nonce,
        },
    })
    .to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let Ok(signature) = f.pki.platform_key.sign_sha256_base64(&lines(&[
        ts.as_bytes(),
        nonce.as_bytes(),
        body.as_bytes(),
    ])) else {
        return Outcome::Refused;
    };
    let mut m = m;
    m.set_header("Wechatpay-Timestamp", ts);
    m.set_header("Wechatpay-Nonce", nonce.into());
    m.set_header("Wechatpay-Signature", signature);
    m.set_header("Wechatpay-Serial", creds.platform_serial.clone());
    let plain: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(&plaintext)).ok();
    let result = f.wx_v3.parse_notification(&incoming(&m, body.into_bytes()));
    check_decoded(result, &|k| json_str(plain.as_ref(), k))
}

/// An Alipay notification (a form body). Mode `S`: the body's parameters
/// are signed (RSA2) with Alipay's key and sent as a clean form.
pub fn alipay_notify(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let m = Message::parse(data, false);
    let ch = &f.alipay_channel;
    if !m.sign {
        return Outcome::from(
            ch.parse_notification(&incoming(&m, m.body.to_vec()))
                .is_ok(),
        );
    }
    let mut params = form_with_vars(m.body, &f.vars());
    params.remove("sign");
    let content = cashdesk_sandbox::alipay::sign_content(&params, &["sign", "sign_type"]);
    let Ok(sign) = f.pki.alipay.key.sign_sha256_base64(content.as_bytes()) else {
        return Outcome::Refused;
    };
    params.insert("sign".into(), sign);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let result = ch.parse_notification(&incoming(&m, body.into_bytes()));
    check_decoded(result, &|k| params.get(k).cloned())
}

/// A Lakala notification: `Authorization: LKLAPI-SHA256withRSA …` and a
/// JSON body. Mode `S`: the Authorization is made with Lakala's notify key.
pub fn lakala_notify(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let mut m = Message::parse(data, false);
    let ch = &f.lakala_channel;
    if !m.sign {
        return Outcome::from(
            ch.parse_notification(&incoming(&m, m.body.to_vec()))
                .is_ok(),
        );
    }
    let body = substitute(m.body, &f.vars());
    let (ts, nonce) = ("1704164646", "Lx8dOYbYh2Ts");
    let Ok(sig) = f.pki.lakala.notify_key.sign_sha256_base64(&lines(&[
        ts.as_bytes(),
        nonce.as_bytes(),
        &body,
    ])) else {
        return Outcome::Refused;
    };
    m.set_header(
        "Authorization",
        format!(
            "LKLAPI-SHA256withRSA timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{sig}\""
        ),
    );
    let plain: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(&body)).ok();
    let result = ch.parse_notification(&incoming(&m, body));
    check_decoded(result, &|k| json_str(plain.as_ref(), k))
}
