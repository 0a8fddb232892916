//! X.509 certificate facts the channels need: WeChat's serial number (upper
//! hex), Alipay's cert SN (MD5 of issuer + decimal serial), the public key.
//!
//! Alipay's SDKs compute a cert SN as `md5(issuer + serial)` where the issuer
//! is Java's `X500Principal.getName()` (RFC 2253: RDNs last-to-first, `k=v`
//! joined by `,`) and the serial is decimal. The whole rule lives in
//! [`Certificate::issuer_alipay`] so a difference found in the field is a
//! one-function fix.
//! [`alipay_root_cert_sn`] joins the SNs of the RSA-signed certificates of
//! Alipay's root certificate file with `_`.

use der::{Decode as _, Encode as _, Tag, Tagged as _};
use x509_cert::attr::AttributeTypeAndValue;

use crate::CryptoError;

pub struct Certificate {
    inner: x509_cert::Certificate,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("serial", &self.serial_hex())
            .field("issuer", &self.issuer_alipay())
            .finish()
    }
}

impl Certificate {
    /// The first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        Self::all_from_pem(pem)?
            .into_iter()
            .next()
            .ok_or_else(|| CryptoError::InvalidEncoding("no CERTIFICATE PEM block".into()))
    }

    /// Every `CERTIFICATE` block of a PEM text (Alipay's root cert file is a chain).
    pub fn all_from_pem(pem: &str) -> crate::Result<Vec<Self>> {
        let blocks = ::pem::parse_many(pem.as_bytes())
            .map_err(|e| CryptoError::InvalidEncoding(format!("certificate PEM: {e}")))?;
        blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| Self::from_der(b.contents()))
            .collect()
    }

    /// A DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> crate::Result<Self> {
        let inner = x509_cert::Certificate::from_der(der)
            .map_err(|e| CryptoError::InvalidEncoding(format!("X.509 certificate: {e}")))?;
        Ok(Self { inner })
    }

    /// Whether the serial is negative (RFC 5280 forbids it; some old CAs did it).
    fn serial_is_negative(&self) -> bool {
        let raw = self.inner.tbs_certificate.serial_number.as_bytes();
        raw.first().is_some_and(|&b| b & 0x80 != 0)
    }

    /// The serial's magnitude, big-endian, without leading zero bytes.
    fn serial_magnitude(&self) -> Vec<u8> {
        let raw = self.inner.tbs_certificate.serial_number.as_bytes();
        let mut bytes = raw.to_vec();
        if self.serial_is_negative() {
            // Two's complement: invert and add one.
            let mut carry = true;
            for b in bytes.iter_mut().rev() {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        bytes.split_off(start)
    }

    /// Serial number as uppercase hex of its bytes, without leading zero
    /// bytes (WeChat's `serial_no`; the Go SDK's `%X` of `SerialNumber.Bytes()`).
    pub fn serial_hex(&self) -> String {
        let bytes = self.serial_magnitude();
        if bytes.is_empty() {
            return "00".into();
        }
        hex::encode_upper(bytes)
    }

    /// Serial number in decimal, `-` first if negative (Java's
    /// `BigInteger.toString()`, the Alipay cert SN input).
    pub fn serial_decimal(&self) -> String {
        let digits = be_bytes_to_decimal(&self.serial_magnitude());
        if self.serial_is_negative() {
            format!("-{digits}")
        } else {
            digits
        }
    }

    /// Issuer DN in the form Alipay's SDKs hash: RDNs reversed, `k=v` joined by `,`.
    ///
    /// Follows Java's `X500Principal.getName()` (RFC 2253): RFC 2253 keywords
    /// (CN, C, L, ST, O, OU, STREET, DC, UID) by name, other attributes as the
    /// dotted OID with `#` and the lowercase hex of the value's DER;
    /// multi-valued RDNs joined by `+` in their DER order; `,=+<>#;"\`
    /// escaped with `\` wherever they occur, as are leading and trailing
    /// spaces. Checked against Java 17 (see the tests).
    pub fn issuer_alipay(&self) -> String {
        self.inner
            .tbs_certificate
            .issuer
            .0
            .iter()
            .rev()
            .map(|rdn| rdn.0.iter().map(format_atv).collect::<Vec<_>>().join("+"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Alipay cert SN: lowercase hex MD5(issuer_alipay + serial_decimal).
    pub fn alipay_sn(&self) -> String {
        let input = format!("{}{}", self.issuer_alipay(), self.serial_decimal());
        crate::digest::md5_hex(input.as_bytes())
    }

    /// Signature algorithm OID in dotted form (Alipay's root SN only counts RSA certs).
    pub fn signature_algorithm_oid(&self) -> String {
        self.inner.signature_algorithm.oid.to_string()
    }

    /// Whether the certificate is signed with an RSA algorithm, the certs
    /// Alipay's root SN counts. Same test as Alipay's Java SDK: the dotted
    /// OID starts with `1.2.840.113549.1.1` (PKCS#1).
    pub fn is_rsa_signed(&self) -> bool {
        self.signature_algorithm_oid()
            .starts_with("1.2.840.113549.1.1")
    }

    /// The certificate's RSA public key (an error for any other key type).
    pub fn rsa_public_key(&self) -> crate::Result<crate::rsa::RsaPublicKey> {
        let spki = self
            .inner
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| CryptoError::InvalidEncoding(format!("certificate public key: {e}")))?;
        crate::rsa::RsaPublicKey::from_spki_der(&spki)
    }
}

/// Alipay's `alipay_root_cert_sn`: the [`Certificate::alipay_sn`] of every
/// RSA-signed certificate in the root certificate file, joined by `_` in file
/// order (the file also holds SM2 certificates, which Alipay's SDKs skip).
pub fn alipay_root_cert_sn(pem: &str) -> crate::Result<String> {
    let sns: Vec<String> = Certificate::all_from_pem(pem)?
        .iter()
        .filter(|c| c.is_rsa_signed())
        .map(Certificate::alipay_sn)
        .collect();
    if sns.is_empty() {
        return Err(CryptoError::InvalidInput(
            "the root certificate file holds no RSA-signed certificate".into(),
        ));
    }
    Ok(sns.join("_"))
}

fn format_atv(atv: &AttributeTypeAndValue) -> String {
    // The RFC 2253 keywords Java's `X500Principal.getName()` prints by name;
    // every other attribute is printed as its dotted OID.
    const KEYWORDS: &[(&str, &str)] = &[
        ("2.5.4.3", "CN"),
        ("2.5.4.6", "C"),
        ("2.5.4.7", "L"),
        ("2.5.4.8", "ST"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.9", "STREET"),
        ("0.9.2342.19200300.100.1.25", "DC"),
        ("0.9.2342.19200300.100.1.1", "UID"),
    ];
    let oid = atv.oid.to_string();
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, attribute_string(&atv.value)) {
        (Some(k), Some(v)) => format!("{k}={}", escape_rfc2253(&v)),
        (Some(k), None) => format!("{k}=#{}", value_der_hex(&atv.value)),
        (None, _) => format!("{oid}=#{}", value_der_hex(&atv.value)),
    }
}

/// Lowercase hex of the value's whole DER (tag, length, content), Java's
/// `#…` form.
fn value_der_hex(value: &der::Any) -> String {
    hex::encode(value.to_der().unwrap_or_default())
}

/// The text of a directory-string value, decoded the way Java's RFC 2253
/// printer does: UTF8String as UTF-8, BMPString as UTF-16BE, the 8-bit
/// string types (Printable, Teletex, IA5) as ISO-8859-1. Other types
/// (VisibleString included, as in Java) are not strings here and print as hex.
fn attribute_string(value: &der::Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String => Some(String::from_utf8_lossy(bytes).into_owned()),
        Tag::PrintableString | Tag::TeletexString | Tag::Ia5String => {
            Some(bytes.iter().map(|&b| char::from(b)).collect())
        }
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Java's RFC 2253 value escaping: each of `,=+<>#;"\` gets a backslash
/// (Java escapes `=` and `#` anywhere, more than RFC 2253 asks), NUL becomes
/// `\00`, and every leading and trailing space or CR gets a backslash.
fn escape_rfc2253(v: &str) -> String {
    const ESCAPEES: &str = ",=+<>#;\"\\";
    let mut escaped: Vec<char> = Vec::with_capacity(v.len());
    for c in v.chars() {
        if c == '\0' {
            escaped.extend(['\\', '0', '0']);
            continue;
        }
        if ESCAPEES.contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| blank(c)).count();
    let trail_start = escaped.len() - escaped.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(escaped.len() + 4);
    for (i, c) in escaped.into_iter().enumerate() {
        if i < lead || i >= trail_start.max(lead) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Decimal text of an unsigned big-endian integer.
fn be_bytes_to_decimal(bytes: &[u8]) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::new();
    while num.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Fixtures made with OpenSSL 3.0; the expected issuer strings, serials
    // and SNs were computed with Java 17 (`X509Certificate
    // .getIssuerX500Principal().getName()`, `getSerialNumber()`, MD5), the
    // same calls Alipay's Java SDK makes.
    const ANT: &str = include_str!("../testdata/ant_cert.pem");
    const TRICKY: &str = include_str!("../testdata/tricky_cert.pem");
    const SPACES: &str = include_str!("../testdata/space_cert.pem");
    const ROOT_CHAIN: &str = include_str!("../testdata/root_chain.pem");
    const EC: &str = include_str!("../testdata/ec_cert.pem");
    const RSA_SPKI: &str = include_str!("../testdata/rsa_spki.pem");

    #[test]
    fn decimal() {
        assert_eq!(be_bytes_to_decimal(&[]), "0");
        assert_eq!(be_bytes_to_decimal(&[0x01, 0x00]), "256");
        assert_eq!(
            be_bytes_to_decimal(&hex::decode("ffffffffffffffffffffffffffffffff").unwrap()),
            u128::MAX.to_string()
        );
    }

    #[test]
    fn escaping_follows_java() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc2253("a#b=c"), "a\\#b\\=c");
        assert_eq!(escape_rfc2253("<\"\\;>"), "\\<\\\"\\\\\\;\\>");
        assert_eq!(escape_rfc2253("  a b  "), "\\ \\ a b\\ \\ ");
        assert_eq!(escape_rfc2253("   "), "\\ \\ \\ ");
        assert_eq!(escape_rfc2253("a\0b"), "a\\00b");
        assert_eq!(escape_rfc2253("Ant Financial"), "Ant Financial");
        assert_eq!(escape_rfc2253("收银台"), "收银台");
    }

    #[test]
    fn alipay_style_certificate() {
        let cert = Certificate::from_pem(ANT).unwrap();
        assert_eq!(
            cert.issuer_alipay(),
            "CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,O=Ant Financial,C=CN"
        );
        // The DER serial is 00 9A…: the sign byte is not part of the number.
        assert_eq!(cert.serial_hex(), "9A3B5C7D1E2F4A6B8C0D");
        assert_eq!(cert.serial_decimal(), "728339460778486265515021");
        assert_eq!(cert.alipay_sn(), "31e361b50b30e3a96f7133f33bcfddc5");
        assert_eq!(cert.signature_algorithm_oid(), "1.2.840.113549.1.1.11");
        assert!(cert.is_rsa_signed());
        let expected = crate::rsa::RsaPublicKey::from_pem(RSA_SPKI).unwrap();
        assert_eq!(cert.rsa_public_key().unwrap(), expected);
        let debug = format!("{cert:?}");
        assert!(debug.contains("9A3B5C7D1E2F4A6B8C0D"), "{debug}");
    }

    #[test]
    fn issuer_with_special_characters_matches_java() {
        let cert = Certificate::from_pem(TRICKY).unwrap();
        // emailAddress has no RFC 2253 keyword: dotted OID and hex DER;
        // O+OU is one multi-valued RDN, printed in DER order.
        assert_eq!(
            cert.issuer_alipay(),
            "1.2.840.113549.1.9.1=#160f6f7073406578616d706c652e636f6d,\
             CN=pay \\\"test\\\" 收银台,O=Acme\\, Inc.+OU=\\#1 \\= best\\;\\<x\\>,ST=Zhe Jiang,C=CN"
        );
        assert_eq!(cert.serial_hex(), "05");
        assert_eq!(cert.serial_decimal(), "5");
        assert_eq!(cert.alipay_sn(), "4616b0ae906ff3fa254e888fd1a66c30");
    }

    #[test]
    fn issuer_with_leading_and_trailing_spaces_matches_java() {
        let cert = Certificate::from_pem(SPACES).unwrap();
        assert_eq!(cert.issuer_alipay(), "CN=\\ \\ lead\\=trail\\ ,O=\\ x\\ ");
        assert_eq!(cert.serial_hex(), "FF");
        assert_eq!(cert.serial_decimal(), "255");
        assert_eq!(cert.alipay_sn(), "30548a430781de2ba208acc91b2afbd8");
    }

    #[test]
    fn root_cert_sn_skips_non_rsa_certificates() {
        // RSA/SHA-256, ECDSA/SHA-256, RSA/SHA-1: the ECDSA one is skipped.
        let certs = Certificate::all_from_pem(ROOT_CHAIN).unwrap();
        assert_eq!(certs.len(), 3);
        assert_eq!(certs[1].signature_algorithm_oid(), "1.2.840.10045.4.3.2");
        assert!(!certs[1].is_rsa_signed());
        assert_eq!(certs[2].issuer_alipay(), "CN=root R1,O=a\\#b\\=c,C=CN");
        assert_eq!(certs[2].alipay_sn(), "81cf7cb943ec3b71da59b74997a494a0");
        assert_eq!(
            alipay_root_cert_sn(ROOT_CHAIN).unwrap(),
            "31e361b50b30e3a96f7133f33bcfddc5_81cf7cb943ec3b71da59b74997a494a0"
        );
        assert!(matches!(
            alipay_root_cert_sn(EC),
            Err(CryptoError::InvalidInput(_))
        ));
    }

    #[test]
    fn non_rsa_certificate_has_no_rsa_key() {
        let cert = Certificate::from_pem(EC).unwrap();
        assert!(matches!(
            cert.rsa_public_key(),
            Err(CryptoError::InvalidKey(_))
        ));
        // The RSA public-key parser refuses it the same way.
        assert!(crate::rsa::RsaPublicKey::from_pem(EC).is_err());
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(Certificate::from_pem("").is_err());
        assert!(Certificate::from_pem("not a certificate").is_err());
        assert!(
            Certificate::from_pem(RSA_SPKI).is_err(),
            "a PUBLIC KEY block is not a certificate"
        );
        let truncated: String = ANT.lines().take(5).collect::<Vec<_>>().join("\n");
        assert!(Certificate::from_pem(&truncated).is_err());
        // Valid PEM framing around bytes that are not a certificate.
        let junk = crate::pem_encode("CERTIFICATE", b"\x30\x03\x02\x01\x05");
        assert!(matches!(
            Certificate::from_pem(&junk),
            Err(CryptoError::InvalidEncoding(_))
        ));
        assert!(Certificate::from_der(&[]).is_err());
        assert!(alipay_root_cert_sn("").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Serial hex and decimal agree with u128 arithmetic for any
        /// positive serial of up to 16 bytes, high bit set or not.
        #[test]
        fn serial_round_trip(serial in 1u128.., ) {
            let bytes = serial.to_be_bytes();
            let start = bytes.iter().position(|&b| b != 0).unwrap_or(15);
            let mut params = rcgen::CertificateParams::new(vec!["cashdesk.test".to_string()]).unwrap();
            params.serial_number = Some(rcgen::SerialNumber::from(bytes[start..].to_vec()));
            let key = rcgen::KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            let cert = Certificate::from_pem(&pem).unwrap();
            prop_assert_eq!(cert.serial_decimal(), serial.to_string());
            prop_assert_eq!(cert.serial_hex(), hex::encode_upper(&bytes[start..]));
        }
    }
}
