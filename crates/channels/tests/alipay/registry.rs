//! Alipay credential validation and adapter construction.

use cashdesk_channels::*;
use cashdesk_core::ChannelType;
use serde_json::json;

use crate::support::*;

#[test]
fn public_key_and_certificate_modes_validate() {
    validate_credentials(ChannelType::AliPay, "v2", &creds()).unwrap();
    validate_credentials(ChannelType::AliPay, "v2", &cert_creds()).unwrap();
    assert!(validate_credentials(ChannelType::AliPay, "v3", &creds()).is_err());
    let private = keys().app.to_pkcs8_pem();
    let remove = |field: &str| {
        let mut c = cert_creds();
        c.as_object_mut().unwrap().remove(field);
        c
    };
    let mut other_key = cert_creds();
    other_key["privateKeyPem"] = json!(keys().alipay.to_pkcs8_pem());
    let mut disagree = cert_creds();
    disagree["alipayPublicKeyPem"] = json!(keys().app.public_key().to_spki_pem());
    let mut bad_return = creds();
    bad_return["returnUrl"] = json!("javascript:alert(1)");
    let cases = [
        (
            json!({"privateKeyPem": private, "alipayPublicKeyPem": "x"}),
            "appId",
        ),
        (
            json!({"appId": APP_ID, "privateKeyPem": private}),
            "alipayPublicKeyPem",
        ),
        (
            json!({"appId": APP_ID, "privateKeyPem": "nope", "alipayPublicKeyPem": "x"}),
            "privateKeyPem",
        ),
        (
            json!({"appId": APP_ID, "privateKeyPem": private, "alipayPublicKeyPem": "nope"}),
            "alipayPublicKeyPem",
        ),
        (remove("alipayRootCertPem"), "alipayRootCertPem"),
        (remove("appCertPem"), "appCertPem"),
        (other_key, "appCertPem"),
        (disagree, "disagree"),
        (bad_return, "returnUrl"),
    ];
    for (c, field) in cases {
        let e = validate_credentials(ChannelType::AliPay, "v2", &c).unwrap_err();
        assert!(e.contains(field), "{e} should name {field}");
        assert!(
            !e.contains("PRIVATE KEY-----\n"),
            "message leaks a key: {e}"
        );
    }
    // A root file with only a non-RSA certificate has no alipay_root_cert_sn.
    let ec = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let mut c = cert_creds();
    c["alipayRootCertPem"] = json!(ec);
    assert!(
        validate_credentials(ChannelType::AliPay, "v2", &c)
            .unwrap_err()
            .contains("alipayRootCertPem")
    );
}

#[test]
fn built_adapter_describes_itself_without_secrets() {
    let ch = build_channel(ChannelType::AliPay, "V2", MCH_ID, &creds(), None, &env()).unwrap();
    assert_eq!(ch.channel_type(), ChannelType::AliPay);
    assert_eq!(ch.api_version(), "v2");
    assert_eq!(ch.mch_id(), MCH_ID);
    assert_eq!(
        ch.meta()
            .scene_codes()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["mini", "wap", "page", "qr", "app"]
    );
    let dbg = format!("{ch:?}");
    assert!(!dbg.contains("PRIVATE"), "{dbg}");
    let e = build_channel(
        ChannelType::AliPay,
        "v2",
        MCH_ID,
        &creds(),
        Some("ftp://x"),
        &env(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
}

#[test]
fn api_version_defaults_to_the_only_one() {
    // The sandbox's and the docs' config shapes carry no apiVersion.
    assert_eq!(
        resolve_api_version(ChannelType::AliPay, None).unwrap(),
        "v2"
    );
    assert_eq!(
        resolve_api_version(ChannelType::AliPay, Some(" ")).unwrap(),
        "v2"
    );
    assert_eq!(
        resolve_api_version(ChannelType::AliPay, Some("V2")).unwrap(),
        "v2"
    );
    let e = resolve_api_version(ChannelType::AliPay, Some("v3")).unwrap_err();
    assert!(e.contains("apiVersion") && e.contains("v2"), "{e}");
    validate_credentials(ChannelType::AliPay, "", &creds()).unwrap();
    let env = env();
    build_channel(
        ChannelType::AliPay,
        "",
        "2088102146225135",
        &creds(),
        None,
        &env,
    )
    .unwrap();
}
