//! Micro-benchmarks of every signature scheme and cipher on cashdesk's hot
//! paths, shaped so each figure can be set next to `openssl speed` on the
//! same machine (`scripts/openssl-speed.sh`, docs/benchmarks.md):
//!
//! - `apisig/*`: the `Cashdesk-*` signature of each [`SignType`] (MD5,
//!   HMAC-SHA256, HMAC-SM3, RSA2, SM2), signed and verified through
//!   [`apisig::Signer`] / [`apisig::Verifier`] over a 200-byte string to
//!   sign — what the server does for every API request and answer.
//! - `rsa2048/*`, `sm2/*`: the raw SHA256withRSA and SM3withSM2 calls over
//!   the same 200 bytes (no base64), comparable with `openssl speed rsa2048`
//!   / `sm2`. Two reference lines explain gaps: `rsa2048/verify_parsed_key`
//!   (aws-lc-rs with the public key parsed once: what re-parsing the SPKI on
//!   every call costs) and `sm2/public_key` (the base-point multiplication
//!   `sign_der` repeats on every call to compute ZA).
//! - `digest/*`: MD5, SHA-256, SM3, HMAC-SHA256, HMAC-SM3 at 200 B, 1 KiB
//!   and 16 KiB, reported as throughput (openssl's 1024- and 16384-byte
//!   columns).
//! - `wxv2/*`: WeChat Pay v2 signing of a typical `unifiedorder` map.
//! - `aead/*`: AES-256-GCM decryption of a typical v3 notification resource;
//!   secretbox (XChaCha20-Poly1305) opening of an app key and of a channel
//!   config's credentials.
//!
//! Every benchmark checks its result once before measuring, so a broken
//! primitive fails the run instead of timing an error path.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use cashdesk_core::SignType;
use cashdesk_crypto::aead::{aes_gcm_decrypt, aes_gcm_encrypt};
use cashdesk_crypto::apisig::{self, Signer, Verifier};
use cashdesk_crypto::rsa::RsaPrivateKey;
use cashdesk_crypto::secretbox::MasterKey;
use cashdesk_crypto::sm::{self, DEFAULT_USER_ID, Sm2PrivateKey};
use cashdesk_crypto::{digest, wxv2};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A 200-byte `Cashdesk-*` string to sign: a unified-order request with its
/// JSON body padded to the size.
fn string_to_sign() -> Vec<u8> {
    let head = apisig::request_message(
        "POST",
        "/api/v1/orders",
        "1719800000",
        "7f3c2a9d4e5b6a718293a4b5c6d7e8f9",
        b"",
    );
    // `head` already ends with the body's `\n`.
    let body_len = 200 - head.len();
    let mut body = String::from(r#"{"outTradeNo":"T20240701000001","amount":100,"title":"#);
    while body.len() < body_len - 2 {
        body.push('x');
    }
    body.push_str("\"}");
    let m = apisig::request_message(
        "POST",
        "/api/v1/orders",
        "1719800000",
        "7f3c2a9d4e5b6a718293a4b5c6d7e8f9",
        body.as_bytes(),
    );
    assert_eq!(m.len(), 200);
    m
}

const APP_KEY: &[u8] = b"4e1b2c7d9a0f3e6b8c5d2a1f0e9d8c7b";

fn apisig_benches(c: &mut Criterion) {
    let msg = string_to_sign();
    let rsa = RsaPrivateKey::generate_2048().expect("RSA key");
    let rsa_pub = rsa.public_key();
    let sm2 = Sm2PrivateKey::generate();
    let sm2_pub = sm2.public_key();

    let mut g = c.benchmark_group("apisig");
    g.throughput(Throughput::Elements(1));
    let schemes: [(SignType, Signer<'_>, Verifier<'_>); 5] = [
        (
            SignType::Md5,
            Signer::Shared(SignType::Md5, APP_KEY),
            Verifier::Shared(SignType::Md5, APP_KEY),
        ),
        (
            SignType::HmacSha256,
            Signer::Shared(SignType::HmacSha256, APP_KEY),
            Verifier::Shared(SignType::HmacSha256, APP_KEY),
        ),
        (
            SignType::HmacSm3,
            Signer::Shared(SignType::HmacSm3, APP_KEY),
            Verifier::Shared(SignType::HmacSm3, APP_KEY),
        ),
        (SignType::Rsa2, Signer::Rsa(&rsa), Verifier::Rsa(&rsa_pub)),
        (SignType::Sm2, Signer::Sm2(&sm2), Verifier::Sm2(&sm2_pub)),
    ];
    for (kind, signer, verifier) in &schemes {
        let sig = signer.sign(&msg).expect("sign");
        verifier.verify(&msg, &sig).expect("own signature verifies");
        assert!(verifier.verify(b"other message", &sig).is_err());
        g.bench_with_input(BenchmarkId::new("sign", kind.as_str()), &msg, |b, m| {
            b.iter(|| signer.sign(black_box(m)))
        });
        g.bench_with_input(BenchmarkId::new("verify", kind.as_str()), &msg, |b, m| {
            b.iter(|| verifier.verify(black_box(m), black_box(&sig)))
        });
    }
    g.finish();
}

fn rsa_benches(c: &mut Criterion) {
    let msg = string_to_sign();
    let key = RsaPrivateKey::generate_2048().expect("RSA key");
    let public = key.public_key();
    let sig = key.sign_sha256(&msg).expect("sign");
    public.verify_sha256(&msg, &sig).expect("verify");
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        public.spki_der(),
    )
    .expect("SPKI parses");
    parsed.verify_sig(&msg, &sig).expect("verify (parsed)");

    let mut g = c.benchmark_group("rsa2048");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("sign_sha256", |b| {
        b.iter(|| key.sign_sha256(black_box(&msg)))
    });
    g.bench_function("verify_sha256", |b| {
        b.iter(|| public.verify_sha256(black_box(&msg), black_box(&sig)))
    });
    g.bench_function("verify_parsed_key", |b| {
        b.iter(|| parsed.verify_sig(black_box(&msg), black_box(&sig)))
    });
    g.finish();
}

fn sm2_benches(c: &mut Criterion) {
    let msg = string_to_sign();
    let key = Sm2PrivateKey::generate();
    let public = key.public_key();
    let sig = key.sign_der(&msg, DEFAULT_USER_ID).expect("sign");
    public
        .verify_der(&msg, DEFAULT_USER_ID, &sig)
        .expect("verify");

    let mut g = c.benchmark_group("sm2");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("sign_der", |b| {
        b.iter(|| key.sign_der(black_box(&msg), DEFAULT_USER_ID))
    });
    g.bench_function("verify_der", |b| {
        b.iter(|| public.verify_der(black_box(&msg), DEFAULT_USER_ID, black_box(&sig)))
    });
    // Reference line: deriving the public key (one base-point
    // multiplication), which `sign_der` does on every call for ZA.
    g.bench_function("public_key", |b| b.iter(|| black_box(&key).public_key()));
    g.finish();
}

fn digest_benches(c: &mut Criterion) {
    // Known answers first: a fast wrong digest is no result.
    assert_eq!(digest::md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        hex::encode(sm::sm3(b"abc")),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );

    let mut g = c.benchmark_group("digest");
    for size in [200usize, 1024, 16 * 1024] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("md5", size), &data, |b, d| {
            b.iter(|| digest::md5(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("sha256", size), &data, |b, d| {
            b.iter(|| digest::sha256(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("sm3", size), &data, |b, d| {
            b.iter(|| sm::sm3(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("hmac_sha256", size), &data, |b, d| {
            b.iter(|| digest::hmac_sha256(black_box(APP_KEY), black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("hmac_sm3", size), &data, |b, d| {
            b.iter(|| sm::hmac_sm3(black_box(APP_KEY), black_box(d)))
        });
    }
    g.finish();
}

/// A `pay/unifiedorder` request as the v2 adapter sends it (mini program).
fn unifiedorder() -> BTreeMap<String, String> {
    [
        ("appid", "wx2421b1c4370ec43b"),
        ("mch_id", "1900000109"),
        ("nonce_str", "1add1a30ac87aa2db72f57a2375d8fec"),
        ("body", "Image形象店-深圳腾大-QQ公仔"),
        ("out_trade_no", "01J1Z8Y4W6X2V0T9S7R5Q3P1NM"),
        ("total_fee", "100"),
        ("spbill_create_ip", "203.0.113.7"),
        (
            "notify_url",
            "https://pay.example.com/api/cashier-desk/notify/C01J1Z8Y4W6X2V0T9S7R5Q3P1",
        ),
        ("trade_type", "JSAPI"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("time_expire", "20240701123000"),
        ("attach", "store=S01"),
        ("sign_type", "MD5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn wxv2_benches(c: &mut Criterion) {
    const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    let mut g = c.benchmark_group("wxv2");
    g.throughput(Throughput::Elements(1));
    for kind in [wxv2::WxSignType::Md5, wxv2::WxSignType::HmacSha256] {
        let mut params = unifiedorder();
        params.insert("sign_type".into(), kind.as_str().into());
        let sign = wxv2::sign(&params, API_KEY, kind);
        let mut signed = params.clone();
        signed.insert("sign".into(), sign);
        assert!(wxv2::verify(&signed, API_KEY, kind));
        g.bench_with_input(
            BenchmarkId::new("sign_unifiedorder", kind.as_str()),
            &params,
            |b, p| b.iter(|| wxv2::sign(black_box(p), API_KEY, kind)),
        );
        g.bench_with_input(
            BenchmarkId::new("verify_unifiedorder", kind.as_str()),
            &signed,
            |b, p| b.iter(|| wxv2::verify(black_box(p), API_KEY, kind)),
        );
    }
    g.finish();
}

/// The decrypted `resource` of a v3 TRANSACTION.SUCCESS notification, as
/// documented (about 600 bytes).
const V3_TRANSACTION: &str = r#"{"transaction_id":"1217752501201407033233368018","amount":{"payer_total":100,"total":100,"currency":"CNY","payer_currency":"CNY"},"mchid":"1900000109","trade_state":"SUCCESS","bank_type":"CMC","promotion_detail":[],"success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"out_trade_no":"01J1Z8Y4W6X2V0T9S7R5Q3P1NM","appid":"wx2421b1c4370ec43b","trade_state_desc":"支付成功","trade_type":"JSAPI","attach":"自定义数据","scene_info":{"device_id":"013467007045764"}}"#;

fn aead_benches(c: &mut Criterion) {
    let key = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
    let nonce = b"fdasflkja484";
    let aad = b"transaction";
    let ct = aes_gcm_encrypt(key, nonce, aad, V3_TRANSACTION.as_bytes()).expect("encrypt");
    assert_eq!(
        aes_gcm_decrypt(key, nonce, aad, &ct).expect("decrypt"),
        V3_TRANSACTION.as_bytes()
    );

    let mut g = c.benchmark_group("aead");
    g.throughput(Throughput::Bytes(V3_TRANSACTION.len() as u64));
    g.bench_function("aes256gcm_decrypt_v3_resource", |b| {
        b.iter(|| aes_gcm_decrypt(key, nonce, aad, black_box(&ct)))
    });

    let master = MasterKey::generate();
    // An app key (32 bytes) and a v3 config's credentials (an RSA private
    // key PEM plus the rest, about 2 KiB): what the server opens.
    let app_key = [0x5au8; 32];
    let credentials = format!(
        r#"{{"appId":"wx2421b1c4370ec43b","serialNo":"5157F09EFDC096DE15EBE81A47057A7232F1B8E1","apiV3Key":"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb","privateKeyPem":{:?}}}"#,
        RsaPrivateKey::generate_2048()
            .expect("RSA key")
            .to_pkcs8_pem()
    );
    for (name, plaintext, aad) in [
        ("app_key", &app_key[..], &b"app:A01:key"[..]),
        (
            "credentials",
            credentials.as_bytes(),
            &b"config:C01:credentials"[..],
        ),
    ] {
        let sealed = master.seal(plaintext, aad);
        assert_eq!(&master.open(&sealed, aad).expect("open")[..], plaintext);
        g.throughput(Throughput::Bytes(plaintext.len() as u64));
        g.bench_with_input(BenchmarkId::new("secretbox_open", name), &sealed, |b, s| {
            b.iter(|| master.open(black_box(s), aad))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short by default; `--warm-up-time` / `--measurement-time` on the
    // command line still win (`criterion_group!` applies the arguments).
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = apisig_benches, rsa_benches, sm2_benches, digest_benches, wxv2_benches, aead_benches
}
criterion_main!(benches);
