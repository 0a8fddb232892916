//! Lakala credential validation and adapter construction.

use cashdesk_channels::*;
use cashdesk_core::ChannelType;
use serde_json::json;

use crate::support::*;

#[test]
fn credentials_are_validated() {
    validate_credentials(ChannelType::Lakala, "v3", &creds()).unwrap();
    assert!(validate_credentials(ChannelType::Lakala, "v2", &creds()).is_err());
    for field in [
        "appId",
        "serialNo",
        "privateKeyPem",
        "lklCertPem",
        "lklNotifyCertPem",
        "merchantNo",
        "termNo",
    ] {
        let mut c = creds();
        c.as_object_mut().unwrap().remove(field);
        let e = validate_credentials(ChannelType::Lakala, "v3", &c).unwrap_err();
        assert!(e.contains(field), "{e} should name {field}");
        let mut c = creds();
        c[field] = json!(" ");
        let e = validate_credentials(ChannelType::Lakala, "v3", &c).unwrap_err();
        assert!(e.contains(field), "{e} should name {field}");
    }
    // A public key is not a certificate.
    let mut c = creds();
    c["lklCertPem"] = json!(keys().platform.public_key().to_spki_pem());
    assert!(
        validate_credentials(ChannelType::Lakala, "v3", &c)
            .unwrap_err()
            .contains("lklCertPem")
    );
}

#[test]
fn built_adapter_describes_itself_without_secrets() {
    let ch = build_channel(ChannelType::Lakala, "v3", MCH_ID, &creds(), None, &env()).unwrap();
    assert_eq!(ch.channel_type(), ChannelType::Lakala);
    assert_eq!(ch.api_version(), "v3");
    assert_eq!(ch.mch_id(), MCH_ID);
    assert_eq!(
        ch.meta()
            .scene_codes()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["mini", "jsapi", "native", "h5"]
    );
    let dbg = format!("{ch:?}");
    assert!(!dbg.contains("PRIVATE"), "{dbg}");
}

#[test]
fn api_version_defaults_to_the_only_one() {
    assert_eq!(
        resolve_api_version(ChannelType::Lakala, None).unwrap(),
        "v3"
    );
    assert_eq!(
        resolve_api_version(ChannelType::Lakala, Some("V3")).unwrap(),
        "v3"
    );
    assert!(resolve_api_version(ChannelType::Lakala, Some("v2")).is_err());
    validate_credentials(ChannelType::Lakala, "", &creds()).unwrap();
}
