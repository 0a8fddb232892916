//! The sandbox's own public-key infrastructure, standing in for Tenpay's:
//!
//! - a CA (ECDSA P-256) that issues the HTTPS server certificate of the mTLS
//!   listener, every sandbox merchant's API client certificate, and the
//!   platform certificate. Merchants trust it through `caCertPem`;
//! - the platform key (RSA 2048) with its certificate and serial, which signs
//!   every v3 response and notification (WeChat's "平台证书").
//!
//! Like WeChat, a merchant's API certificate (apiclient_cert.pem) is both the
//! v2 mutual-TLS client certificate and the v3 signing identity: its key is
//! the v3 private key and its serial is the v3 `serial_no`.
//!
//! For Alipay and Lakala (added to the file as `channels`, generated when
//! an older file lacks them):
//!
//! - a sandbox Alipay root CA (RSA 2048, so it counts in
//!   `alipay_root_cert_sn`, which only takes RSA-signed certificates), the
//!   Alipay key that signs every gateway response and notification, its
//!   public-key certificate (`alipayCertPem`), and the app certificates of
//!   certificate-mode merchants (`appCertPem`). The root file handed out
//!   (`alipayRootCertPem`) holds the RSA root *and* the ECDSA sandbox CA, as
//!   Alipay's holds RSA and non-RSA roots, so the "skip non-RSA
//!   certificates" rule is exercised;
//! - Lakala's platform key and certificate (`lklCertPem`: response
//!   signatures) and its separate notification key and certificate
//!   (`lklNotifyCertPem`), issued by the sandbox CA.
//!
//! The CA and platform keys persist in `<data_dir>/sandbox/pki.json` (mode
//! 0600), so merchants opened earlier stay valid across restarts. The server
//! certificate is re-issued at every start (its names depend on config).
//! The CA's rcgen issuer is rebuilt from [`ca_params`], which is deterministic
//! (same subject, key usages and key-id method), so certificates it issues
//! chain to the persisted CA certificate.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context as _;
use cashdesk_crypto::rsa::RsaPrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};

use crate::store::write_private_file;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PkiFile {
    version: u32,
    ca_cert_pem: String,
    ca_key_pem: String,
    platform_key_pem: String,
    platform_cert_pem: String,
    /// Alipay and Lakala keys; absent in files written before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channels: Option<ChannelKeysFile>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelKeysFile {
    alipay_ca_key_pem: String,
    alipay_ca_cert_pem: String,
    alipay_key_pem: String,
    alipay_cert_pem: String,
    lakala_key_pem: String,
    lakala_cert_pem: String,
    lakala_notify_key_pem: String,
    lakala_notify_cert_pem: String,
}

/// The sandbox Alipay's keys and certificates.
pub struct AlipayPki {
    issuer: Issuer<'static, KeyPair>,
    /// Signs gateway responses, notifications and return URLs.
    pub key: RsaPrivateKey,
    /// `alipayPublicKeyPem` (public-key mode).
    pub public_key_pem: String,
    /// `alipayCertPem` (certificate mode) and its SN (`alipay_cert_sn`).
    pub cert_pem: String,
    pub cert_sn: String,
    /// `alipayRootCertPem` and its SN (`alipay_root_cert_sn`).
    pub root_cert_pem: String,
    pub root_cert_sn: String,
}

/// Lakala's platform and notification keys.
pub struct LakalaPki {
    /// Signs API responses (`Lklapi-Signature`).
    pub key: RsaPrivateKey,
    pub cert_pem: String,
    /// `Lklapi-Serial`: the certificate serial, lowercase hex.
    pub serial: String,
    /// Signs notifications; a different key, as Lakala's is.
    pub notify_key: RsaPrivateKey,
    pub notify_cert_pem: String,
}

pub struct Pki {
    ca_cert_pem: String,
    ca_cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    pub platform_key: RsaPrivateKey,
    pub platform_cert_pem: String,
    pub platform_public_key_pem: String,
    pub platform_serial: String,
    pub alipay: AlipayPki,
    pub lakala: LakalaPki,
}

/// A freshly issued certificate and its key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
    pub serial_hex: String,
}

// Must stay byte-for-byte what it was: persisted CAs are rebuilt from it.
fn ca_params() -> CertificateParams {
    named_ca_params("cashdesk WeChat Pay sandbox CA")
}

fn alipay_ca_params() -> CertificateParams {
    let mut params = named_ca_params("cashdesk Alipay sandbox Root CA");
    // Alipay's roots carry C and OU too, so the issuer string hashed into
    // cert SNs has four RDNs, as Alipay's does.
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "Certification Authority");
    params.distinguished_name.push(DnType::CountryName, "CN");
    params
}

fn named_ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "cashdesk sandbox (not a real CA)");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A positive 20-byte serial (40 upper-hex characters, like WeChat's).
fn random_serial() -> SerialNumber {
    let mut bytes = cashdesk_crypto::random::bytes(20);
    bytes[0] = (bytes[0] & 0x3f) | 0x10;
    SerialNumber::from_slice(&bytes)
}

fn serial_hex(cert_pem: &str) -> anyhow::Result<String> {
    Ok(cashdesk_crypto::cert::Certificate::from_pem(cert_pem)
        .context("reading an issued certificate")?
        .serial_hex())
}

impl Pki {
    /// Load `<dir>/pki.json`, or create a CA and a platform key and save them.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("pki.json");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file: PkiFile = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let file = Self::upgrade_file(&path, file)
                .with_context(|| format!("adding channel keys to {}", path.display()))?;
            return Self::from_file(file)
                .with_context(|| format!("loading the sandbox keys in {}", path.display()));
        }
        let ca_key = KeyPair::generate().context("generating the sandbox CA key")?;
        let mut params = ca_params();
        params.serial_number = Some(random_serial());
        let ca_cert = params
            .self_signed(&ca_key)
            .context("self-signing the sandbox CA")?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let platform_key = RsaPrivateKey::generate_2048().context("generating the platform key")?;
        let platform_key_pem = platform_key.to_pkcs8_pem();
        let platform = issue(
            &issuer,
            &platform_key_pem,
            "WeChat Pay sandbox platform",
            Usage::Platform,
        )?;
        let channels = Some(generate_channel_keys(&issuer)?);
        let file = PkiFile {
            version: 1,
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem: issuer.key().serialize_pem(),
            platform_key_pem,
            platform_cert_pem: platform.cert_pem,
            channels,
        };
        let json = serde_json::to_string_pretty(&file).context("serialising the sandbox keys")?;
        write_private_file(&path, json.as_bytes())?;
        Self::from_file(file)
    }

    fn from_file(mut file: PkiFile) -> anyhow::Result<Self> {
        anyhow::ensure!(
            file.version == 1,
            "unknown pki.json version {}",
            file.version
        );
        let ca_key = KeyPair::from_pem(&file.ca_key_pem).context("CA key")?;
        let ca_cert_der = crate::store::pem_to_der(&file.ca_cert_pem).context("CA certificate")?;
        let platform_key =
            RsaPrivateKey::from_pem(&file.platform_key_pem).context("platform key")?;
        let platform_public_key_pem = platform_key.public_key().to_spki_pem();
        let platform_serial = serial_hex(&file.platform_cert_pem)?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let channels = match file.channels.take() {
            Some(c) => c,
            None => generate_channel_keys(&issuer)?,
        };
        let alipay_ca_key =
            KeyPair::from_pem(&channels.alipay_ca_key_pem).context("Alipay CA key")?;
        let alipay_key = RsaPrivateKey::from_pem(&channels.alipay_key_pem).context("Alipay key")?;
        let root_cert_pem = format!("{}{}", channels.alipay_ca_cert_pem, file.ca_cert_pem);
        let alipay = AlipayPki {
            issuer: Issuer::new(alipay_ca_params(), alipay_ca_key),
            public_key_pem: alipay_key.public_key().to_spki_pem(),
            key: alipay_key,
            cert_sn: cashdesk_crypto::cert::Certificate::from_pem(&channels.alipay_cert_pem)
                .context("Alipay certificate")?
                .alipay_sn(),
            cert_pem: channels.alipay_cert_pem.clone(),
            root_cert_sn: cashdesk_crypto::cert::alipay_root_cert_sn(&root_cert_pem)
                .context("Alipay root certificates")?,
            root_cert_pem,
        };
        let lakala = LakalaPki {
            key: RsaPrivateKey::from_pem(&channels.lakala_key_pem).context("Lakala key")?,
            serial: serial_hex(&channels.lakala_cert_pem)?.to_ascii_lowercase(),
            cert_pem: channels.lakala_cert_pem.clone(),
            notify_key: RsaPrivateKey::from_pem(&channels.lakala_notify_key_pem)
                .context("Lakala notify key")?,
            notify_cert_pem: channels.lakala_notify_cert_pem.clone(),
        };
        Ok(Self {
            ca_cert_pem: file.ca_cert_pem,
            ca_cert_der,
            issuer,
            platform_key,
            platform_cert_pem: file.platform_cert_pem,
            platform_public_key_pem,
            platform_serial,
            alipay,
            lakala,
        })
    }

    /// Load `<dir>/pki.json`; when it predates the Alipay and Lakala keys,
    /// add them and save the file again (everything else unchanged).
    fn upgrade_file(path: &Path, mut file: PkiFile) -> anyhow::Result<PkiFile> {
        if file.channels.is_some() {
            return Ok(file);
        }
        let ca_key = KeyPair::from_pem(&file.ca_key_pem).context("CA key")?;
        let issuer = Issuer::new(ca_params(), ca_key);
        file.channels = Some(generate_channel_keys(&issuer)?);
        let json = serde_json::to_string_pretty(&file).context("serialising the sandbox keys")?;
        write_private_file(path, json.as_bytes())?;
        Ok(file)
    }

    /// A certificate-mode Alipay app's public-key certificate (`appCertPem`),
    /// issued by the sandbox Alipay root over the app's key.
    pub fn issue_alipay_app_cert(&self, app_id: &str, key_pem: &str) -> anyhow::Result<Issued> {
        issue_as(
            &self.alipay.issuer,
            key_pem,
            app_id,
            "cashdesk Alipay sandbox app",
            Usage::Platform,
        )
    }

    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    pub fn ca_cert_der(&self) -> &[u8] {
        &self.ca_cert_der
    }

    /// The HTTPS listener's certificate: `localhost`, loopback addresses and
    /// any extra names (the public host, the listen address).
    pub fn issue_server_cert(&self, extra_names: &[String]) -> anyhow::Result<Issued> {
        let key = KeyPair::generate().context("generating the TLS server key")?;
        issue(
            &self.issuer,
            &key.serialize_pem(),
            "cashdesk sandbox HTTPS",
            Usage::Server(extra_names),
        )
    }

    /// A merchant's API certificate (client certificate for v2 mutual TLS,
    /// v3 signing identity) over a fresh RSA 2048 key.
    pub fn issue_merchant_cert(&self, mch_id: &str) -> anyhow::Result<Issued> {
        let key = RsaPrivateKey::generate_2048().context("generating a merchant key")?;
        issue(&self.issuer, &key.to_pkcs8_pem(), mch_id, Usage::Client)
    }
}

/// Fresh Alipay and Lakala keys and certificates.
fn generate_channel_keys(ca: &Issuer<'static, KeyPair>) -> anyhow::Result<ChannelKeysFile> {
    let alipay_ca_key = RsaPrivateKey::generate_2048().context("generating the Alipay CA key")?;
    let alipay_ca_key =
        KeyPair::from_pem(&alipay_ca_key.to_pkcs8_pem()).context("loading the Alipay CA key")?;
    let mut params = alipay_ca_params();
    params.serial_number = Some(random_serial());
    let alipay_ca_cert = params
        .self_signed(&alipay_ca_key)
        .context("self-signing the Alipay sandbox root")?;
    let alipay_issuer = Issuer::new(alipay_ca_params(), alipay_ca_key);
    let alipay_key = RsaPrivateKey::generate_2048().context("generating the Alipay key")?;
    let alipay_key_pem = alipay_key.to_pkcs8_pem();
    let alipay_cert = issue_as(
        &alipay_issuer,
        &alipay_key_pem,
        "Alipay sandbox (支付宝公钥证书)",
        "cashdesk Alipay sandbox",
        Usage::Platform,
    )?;
    let lakala_key = RsaPrivateKey::generate_2048().context("generating the Lakala key")?;
    let lakala_key_pem = lakala_key.to_pkcs8_pem();
    let lakala_cert = issue_as(
        ca,
        &lakala_key_pem,
        "Lakala sandbox platform",
        "cashdesk Lakala sandbox",
        Usage::Platform,
    )?;
    let notify_key = RsaPrivateKey::generate_2048().context("generating the Lakala notify key")?;
    let notify_key_pem = notify_key.to_pkcs8_pem();
    let notify_cert = issue_as(
        ca,
        &notify_key_pem,
        "Lakala sandbox notifications",
        "cashdesk Lakala sandbox",
        Usage::Platform,
    )?;
    Ok(ChannelKeysFile {
        alipay_ca_cert_pem: alipay_ca_cert.pem(),
        alipay_ca_key_pem: alipay_issuer.key().serialize_pem(),
        alipay_key_pem,
        alipay_cert_pem: alipay_cert.cert_pem,
        lakala_key_pem,
        lakala_cert_pem: lakala_cert.cert_pem,
        lakala_notify_key_pem: notify_key_pem,
        lakala_notify_cert_pem: notify_cert.cert_pem,
    })
}

enum Usage<'a> {
    Server(&'a [String]),
    Client,
    Platform,
}

fn issue(
    issuer: &Issuer<'static, KeyPair>,
    key_pem: &str,
    common_name: &str,
    usage: Usage<'_>,
) -> anyhow::Result<Issued> {
    issue_as(
        issuer,
        key_pem,
        common_name,
        "cashdesk WeChat Pay sandbox",
        usage,
    )
}

fn issue_as(
    issuer: &Issuer<'static, KeyPair>,
    key_pem: &str,
    common_name: &str,
    organization: &str,
    usage: Usage<'_>,
) -> anyhow::Result<Issued> {
    let key = KeyPair::from_pem(key_pem).context("loading a key to certify")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.serial_number = Some(random_serial());
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    match usage {
        Usage::Server(extra) => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            names.extend(extra.iter().cloned());
            names.sort();
            names.dedup();
            for name in names {
                let san = match name.parse::<IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(
                        name.clone()
                            .try_into()
                            .with_context(|| format!("`{name}` is not a valid DNS name"))?,
                    ),
                };
                params.subject_alt_names.push(san);
            }
        }
        Usage::Client => {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Usage::Platform => {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        }
    }
    let cert = params
        .signed_by(&key, issuer)
        .context("signing a certificate with the sandbox CA")?;
    let cert_pem = cert.pem();
    Ok(Issued {
        serial_hex: serial_hex(&cert_pem)?,
        cert_der: cert.der().to_vec(),
        cert_pem,
        key_pem: key_pem.to_owned(),
        key_der: key.serialize_der(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_files_gain_channel_keys_and_keep_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path()).unwrap();
        let path = dir.path().join("pki.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("channels");
        std::fs::write(&path, v.to_string()).unwrap();
        let upgraded = Pki::load_or_create(dir.path()).unwrap();
        assert_eq!(upgraded.ca_cert_pem(), first.ca_cert_pem());
        assert_eq!(upgraded.platform_serial, first.platform_serial);
        assert_ne!(upgraded.alipay.public_key_pem, first.alipay.public_key_pem);
        // Saved: a third load keeps the upgraded keys.
        let again = Pki::load_or_create(dir.path()).unwrap();
        assert_eq!(again.alipay.public_key_pem, upgraded.alipay.public_key_pem);
        assert_eq!(again.alipay.root_cert_sn, upgraded.alipay.root_cert_sn);
        assert_eq!(again.lakala.serial, upgraded.lakala.serial);
        // The app certificate chains to the RSA root in the root file.
        let key = RsaPrivateKey::generate_2048().unwrap();
        let issued = again
            .issue_alipay_app_cert("2021000000000001", &key.to_pkcs8_pem())
            .unwrap();
        let cert = cashdesk_crypto::cert::Certificate::from_pem(&issued.cert_pem).unwrap();
        let root =
            cashdesk_crypto::cert::Certificate::from_pem(&again.alipay.root_cert_pem).unwrap();
        assert!(cert.is_rsa_signed());
        assert_eq!(
            cert.issuer_alipay(),
            "C=CN,OU=Certification Authority,O=cashdesk sandbox (not a real CA),CN=cashdesk Alipay sandbox Root CA"
        );
        assert_eq!(root.issuer_alipay(), cert.issuer_alipay());
    }
}
