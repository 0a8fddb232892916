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
}

pub struct Pki {
    ca_cert_pem: String,
    ca_cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    pub platform_key: RsaPrivateKey,
    pub platform_cert_pem: String,
    pub platform_public_key_pem: String,
    pub platform_serial: String,
}

/// A freshly issued certificate and its key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
    pub serial_hex: String,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "cashdesk WeChat Pay sandbox CA");
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
        let file = PkiFile {
            version: 1,
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem: issuer.key().serialize_pem(),
            platform_key_pem,
            platform_cert_pem: platform.cert_pem,
        };
        let json = serde_json::to_string_pretty(&file).context("serialising the sandbox keys")?;
        write_private_file(&path, json.as_bytes())?;
        Self::from_file(file)
    }

    fn from_file(file: PkiFile) -> anyhow::Result<Self> {
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
        Ok(Self {
            ca_cert_pem: file.ca_cert_pem,
            ca_cert_der,
            issuer: Issuer::new(ca_params(), ca_key),
            platform_key,
            platform_cert_pem: file.platform_cert_pem,
            platform_public_key_pem,
            platform_serial,
        })
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
    let key = KeyPair::from_pem(key_pem).context("loading a key to certify")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "cashdesk WeChat Pay sandbox");
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
