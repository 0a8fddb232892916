//! Credential validation and adapter construction.

use cashdesk_channels::*;
use cashdesk_core::ChannelType;
use serde_json::json;

use crate::support::*;

#[test]
fn v2_credentials() {
    let ok = json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5"});
    validate_credentials(ChannelType::WxPay, "v2", &ok).unwrap();
    validate_credentials(ChannelType::WxPay, "V2", &ok).unwrap();
    let cases = [
        (json!({"apiKey": API_KEY, "signType": "MD5"}), "appId"),
        (json!({"appId": APP_ID, "signType": "MD5"}), "apiKey"),
        (
            json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "SHA1"}),
            "signType",
        ),
        (
            json!({"appId": APP_ID, "apiKey": "", "signType": "MD5"}),
            "apiKey",
        ),
        (
            json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5", "certPem": "x"}),
            "keyPem",
        ),
        (
            json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5", "certPem": "x", "keyPem": "y"}),
            "certPem",
        ),
        (
            json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5", "caCertPem": "nope"}),
            "caCertPem",
        ),
    ];
    for (creds, field) in cases {
        let e = validate_credentials(ChannelType::WxPay, "v2", &creds).unwrap_err();
        assert!(e.contains(field), "{e} should name {field}");
        assert!(!e.contains(API_KEY), "message leaks the key: {e}");
    }
    assert!(validate_credentials(ChannelType::WxPay, "v4", &ok).is_err());
    assert!(validate_credentials(ChannelType::AliPay, "v2", &ok).is_err());
}

#[test]
fn v3_credentials() {
    let ok = crate::v3::creds();
    validate_credentials(ChannelType::WxPay, "v3", &ok).unwrap();
    let mut short_key = ok.clone();
    short_key["apiV3Key"] = json!("tooshort");
    assert!(
        validate_credentials(ChannelType::WxPay, "v3", &short_key)
            .unwrap_err()
            .contains("apiV3Key")
    );
    let mut no_platform = ok.clone();
    no_platform
        .as_object_mut()
        .unwrap()
        .remove("platformPublicKeyPem");
    assert!(
        validate_credentials(ChannelType::WxPay, "v3", &no_platform)
            .unwrap_err()
            .contains("platform")
    );
    let mut bad_key = ok.clone();
    bad_key["privateKeyPem"] =
        json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert!(
        validate_credentials(ChannelType::WxPay, "v3", &bad_key)
            .unwrap_err()
            .contains("privateKeyPem")
    );
}

#[test]
fn v3_platform_certificate_serial_must_match() {
    // A platform certificate for the platform key, serial 0x1A2B.
    let platform_pem = keys().platform.to_pkcs8_pem();
    let key = rcgen::KeyPair::from_pem(&platform_pem).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x1A, 0x2B]));
    let cert = params.self_signed(&key).unwrap().pem();
    let mut creds = crate::v3::creds();
    let obj = creds.as_object_mut().unwrap();
    obj.remove("platformPublicKeyPem");
    obj.insert("platformCertPem".into(), json!(cert));
    obj.insert("platformSerial".into(), json!("1A2B"));
    validate_credentials(ChannelType::WxPay, "v3", &creds).unwrap();
    creds["platformSerial"] = json!("FFFF");
    assert!(
        validate_credentials(ChannelType::WxPay, "v3", &creds)
            .unwrap_err()
            .contains("platformSerial")
    );
}

#[test]
fn build_reports_config_errors() {
    let ok = json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5"});
    let ch = build_channel(ChannelType::WxPay, "v2", MCH_ID, &ok, None, &env()).unwrap();
    assert_eq!(ch.api_version(), "v2");
    assert_eq!(ch.mch_id(), MCH_ID);
    assert_eq!(ch.channel_type(), ChannelType::WxPay);
    let e = build_channel(ChannelType::WxPay, "v2", "", &ok, None, &env()).unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    let e = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &ok,
        Some("ftp://x"),
        &env(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    let e = build_channel(ChannelType::WxPay, "v3", MCH_ID, &ok, None, &env()).unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    // Debug output never shows keys.
    let v3 = build_channel(
        ChannelType::WxPay,
        "v3",
        MCH_ID,
        &crate::v3::creds(),
        None,
        &env(),
    )
    .unwrap();
    let dbg = format!("{ch:?} {v3:?}");
    assert!(
        !dbg.contains(API_KEY) && !dbg.contains(API_V3_KEY) && !dbg.contains("PRIVATE"),
        "{dbg}"
    );
}

#[test]
fn api_version_is_required_for_wechat() {
    // Two versions with different credentials: no default.
    let e = resolve_api_version(ChannelType::WxPay, None).unwrap_err();
    assert!(e.contains("apiVersion is required"), "{e}");
    assert_eq!(
        resolve_api_version(ChannelType::WxPay, Some("V3")).unwrap(),
        "v3"
    );
    let ok = json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5"});
    assert!(validate_credentials(ChannelType::WxPay, "", &ok).is_err());
}
