//! X.509 certificate facts the channels need: WeChat's serial number (upper
//! hex), Alipay's cert SN (MD5 of issuer + decimal serial), the public key.

pub struct Certificate {/* x509_cert::Certificate */}

impl Certificate {
    /// The first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> crate::Result<Self> {
        todo!("{pem}")
    }
    /// Every `CERTIFICATE` block of a PEM text (Alipay's root cert file is a chain).
    pub fn all_from_pem(pem: &str) -> crate::Result<Vec<Self>> {
        todo!("{pem}")
    }
    /// Serial number as uppercase hex without leading zero bytes (WeChat's `serial_no`).
    pub fn serial_hex(&self) -> String {
        todo!()
    }
    /// Serial number in decimal (Alipay cert SN input).
    pub fn serial_decimal(&self) -> String {
        todo!()
    }
    /// Issuer DN in the form Alipay's SDKs hash: RDNs reversed, `k=v` joined by `,`.
    pub fn issuer_alipay(&self) -> String {
        todo!()
    }
    /// Alipay cert SN: lowercase hex MD5(issuer_alipay + serial_decimal).
    pub fn alipay_sn(&self) -> String {
        todo!()
    }
    /// Signature algorithm OID in dotted form (Alipay's root SN only counts RSA certs).
    pub fn signature_algorithm_oid(&self) -> String {
        todo!()
    }
    pub fn rsa_public_key(&self) -> crate::Result<crate::rsa::RsaPublicKey> {
        todo!()
    }
}
