//! Micro-benchmarks of channel notification handling: what cashdesk spends,
//! before touching the database, on each notification a channel sends.
//!
//! Every figure goes through the public path the server takes: an adapter
//! built by [`build_channel`] from a config's credentials, then
//! [`Channel::parse_notification`] (parse, verify the signature, decrypt,
//! decode):
//!
//! - `notify/wxv2_pay_xml/{MD5,HMAC-SHA256}`: a WeChat Pay v2 payment
//!   notification (flat XML, parameter signature);
//! - `notify/wxv3_transaction_json`: a WeChat Pay v3 TRANSACTION.SUCCESS
//!   notification (SHA256withRSA over the headers and body, AES-256-GCM
//!   resource, JSON);
//! - `notify/xml_parse_flat`: the v2 body's XML parse alone, to split the v2
//!   figure into parsing and signature work.
//!
//! Keys and credentials are made here with cashdesk-crypto, as the
//! integration tests do (`tests/wechat/support.rs`). Each benchmark checks
//! that its notification is accepted before timing it.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cashdesk_channels::{
    Channel, ChannelEnv, HttpSettings, IncomingNotification, PaymentResult, VerifiedNotification,
    build_channel, xml,
};
use cashdesk_core::ChannelType;
use cashdesk_crypto::aead::aes_gcm_encrypt;
use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::wxv2::{self, WxSignType};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const MCH_ID: &str = "1900000109";
const APP_ID: &str = "wx2421b1c4370ec43b";
const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const API_V3_KEY: &str = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0119000001092025010100000000";
const ORDER_ID: &str = "01J1Z8Y4W6X2V0T9S7R5Q3P1NM";

fn env() -> ChannelEnv {
    ChannelEnv {
        public_url: "https://pay.example.com".into(),
        notify_url: "https://pay.example.com/api/cashier-desk/notify/C01BENCH".into(),
        http: HttpSettings {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
        },
        extra_root_ca_pems: vec![],
        oauth_base_url: None,
    }
}

/// Panics unless `n` is accepted as the paid order [`ORDER_ID`] of 100 fen.
fn assert_paid(ch: &dyn Channel, n: &IncomingNotification) {
    match ch.parse_notification(n) {
        Ok(VerifiedNotification::Payment(p)) => {
            assert_eq!(p.out_trade_no, ORDER_ID);
            let PaymentResult::Paid(paid) = p.result else {
                panic!("not paid: {:?}", p.result)
            };
            assert_eq!(paid.amount.get(), 100);
        }
        other => panic!("notification refused or misread: {other:?}"),
    }
}

// ---------------- WeChat Pay v2 ----------------

/// A pay notification as documented (WeChat omits `sign_type` in it; the
/// config's sign type applies).
fn v2_pay_notification(kind: WxSignType) -> Vec<u8> {
    let mut f: BTreeMap<String, String> = [
        ("appid", APP_ID),
        ("attach", "支付测试"),
        ("bank_type", "CFT"),
        ("fee_type", "CNY"),
        ("is_subscribe", "Y"),
        ("mch_id", MCH_ID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
        ("out_trade_no", ORDER_ID),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20140903131540"),
        ("total_fee", "100"),
        ("cash_fee", "100"),
        ("coupon_fee", "10"),
        ("coupon_count", "1"),
        ("coupon_type", "CASH"),
        ("coupon_id", "10000"),
        ("trade_type", "JSAPI"),
        ("transaction_id", "1004400740201409030005092168"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sign = wxv2::sign(&f, API_KEY, kind);
    f.insert("sign".into(), sign);
    xml::to_xml(&f).into_bytes()
}

fn v2_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("notify");
    g.throughput(Throughput::Elements(1));
    for kind in [WxSignType::Md5, WxSignType::HmacSha256] {
        let creds = json!({"appId": APP_ID, "apiKey": API_KEY, "signType": kind.as_str()});
        let ch = build_channel(ChannelType::WxPay, "v2", MCH_ID, &creds, None, &env())
            .expect("v2 adapter");
        let n = IncomingNotification {
            method: "POST".into(),
            headers: vec![("Content-Type".into(), "text/xml".into())],
            query: None,
            body: v2_pay_notification(kind),
        };
        assert_paid(ch.as_ref(), &n);
        g.bench_with_input(
            BenchmarkId::new("wxv2_pay_xml", kind.as_str()),
            &n,
            |b, n| b.iter(|| ch.parse_notification(black_box(n))),
        );
        if kind == WxSignType::Md5 {
            assert!(xml::parse_flat(&n.body).is_ok_and(|f| f.len() == 21));
            g.bench_with_input("xml_parse_flat", &n.body, |b, body| {
                b.iter(|| xml::parse_flat(black_box(body)))
            });
        }
    }
    g.finish();
}

// ---------------- WeChat Pay v3 ----------------

struct V3 {
    channel: Arc<dyn Channel>,
    platform: RsaPrivateKey,
    body: String,
}

impl V3 {
    fn setup() -> Self {
        let merchant = RsaPrivateKey::generate_2048().expect("merchant key");
        let platform = RsaPrivateKey::generate_2048().expect("platform key");
        let creds = json!({
            "appId": APP_ID,
            "serialNo": MERCHANT_SERIAL,
            "privateKeyPem": merchant.to_pkcs8_pem(),
            "apiV3Key": API_V3_KEY,
            "platformSerial": PLATFORM_SERIAL,
            "platformPublicKeyPem": platform.public_key().to_spki_pem(),
        });
        let channel = build_channel(ChannelType::WxPay, "v3", MCH_ID, &creds, None, &env())
            .expect("v3 adapter");
        Self {
            channel,
            platform,
            body: v3_envelope(),
        }
    }

    /// The notification as WeChat posts it now: the platform's signature
    /// over `timestamp\nnonce\nbody\n` in the `Wechatpay-*` headers.
    fn incoming(&self) -> IncomingNotification {
        let ts = chrono::Utc::now().timestamp();
        let nonce = nonce_str(32);
        let message = format!("{ts}\n{nonce}\n{}\n", self.body);
        let signature = self
            .platform
            .sign_sha256_base64(message.as_bytes())
            .expect("platform signature");
        IncomingNotification {
            method: "POST".into(),
            headers: vec![
                ("Wechatpay-Timestamp".into(), ts.to_string()),
                ("Wechatpay-Nonce".into(), nonce),
                ("Wechatpay-Signature".into(), signature),
                ("Wechatpay-Serial".into(), PLATFORM_SERIAL.into()),
                (
                    "Wechatpay-Signature-Type".into(),
                    "WECHATPAY2-SHA256-RSA2048".into(),
                ),
                ("Content-Type".into(), "application/json".into()),
            ],
            query: None,
            body: self.body.as_bytes().to_vec(),
        }
    }
}

/// A TRANSACTION.SUCCESS envelope as documented, resource encrypted with
/// the APIv3 key.
fn v3_envelope() -> String {
    let resource: Value = json!({
        "transaction_id": "1217752501201407033233368018",
        "amount": {"payer_total": 100, "total": 100, "currency": "CNY", "payer_currency": "CNY"},
        "mchid": MCH_ID,
        "trade_state": "SUCCESS",
        "bank_type": "CMC",
        "promotion_detail": [],
        "success_time": "2018-06-08T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "out_trade_no": ORDER_ID,
        "appid": APP_ID,
        "trade_state_desc": "支付成功",
        "trade_type": "JSAPI",
        "attach": "自定义数据",
        "scene_info": {"device_id": "013467007045764"}
    });
    let nonce = "fdasflkja484";
    let aad = "transaction";
    let ciphertext = aes_gcm_encrypt(
        API_V3_KEY.as_bytes(),
        nonce.as_bytes(),
        aad.as_bytes(),
        resource.to_string().as_bytes(),
    )
    .expect("encrypt resource");
    json!({
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64::engine::general_purpose::STANDARD.encode(ciphertext),
            "associated_data": aad,
            "nonce": nonce
        }
    })
    .to_string()
}

fn v3_benches(c: &mut Criterion) {
    let v3 = V3::setup();
    let mut n = v3.incoming();
    let mut signed_at = Instant::now();
    assert_paid(v3.channel.as_ref(), &n);

    let mut g = c.benchmark_group("notify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("wxv3_transaction_json", |b| {
        b.iter_custom(|iters| {
            // The adapter refuses timestamps older than 300 s; re-sign
            // (outside the timed loop) long before that.
            if signed_at.elapsed() > Duration::from_secs(60) {
                n = v3.incoming();
                signed_at = Instant::now();
                assert_paid(v3.channel.as_ref(), &n);
            }
            let start = Instant::now();
            for _ in 0..iters {
                let _ = black_box(v3.channel.parse_notification(black_box(&n)));
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short by default; command-line options still win.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = v2_benches, v3_benches
}
criterion_main!(benches);
