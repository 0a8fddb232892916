//! The v3 trade bill (PROTOCOLS-2 §1.1): `GET /v3/bill/tradebill` (signed,
//! its answer verified like every v3 answer) gives a short-lived
//! `download_url` and the SHA-1 of the uncompressed text; the file itself
//! is a signed GET whose answer carries no signature (WeChat's rule: the
//! hash is the check, made by [`crate::bill::read_bill`] before any record
//! is used). Asked gzipped. The download URL must be on the configured API
//! host: cashdesk never calls a host an answer names.

use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::WxPayV3;
use crate::bill::{BillDownload, BillFile, BillFormat, BillRequest, Compression, MAX_BILL_BYTES};
use crate::error::ChannelError;
use crate::http;
use crate::support::url_encode as enc;
use crate::wechat::wire::SubMerchant;

const WHAT: &str = "/v3/bill/tradebill";

#[derive(Debug, Deserialize)]
struct TradeBillApply {
    hash_type: String,
    hash_value: String,
    download_url: String,
}

impl WxPayV3 {
    pub(super) async fn download_trade_bill(
        &self,
        req: &BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<BillDownload, ChannelError> {
        let mut path = format!(
            "{WHAT}?bill_date={}&bill_type=ALL&tar_type=GZIP",
            req.date.format("%Y-%m-%d")
        );
        if let Some(sub) = SubMerchant::of(req.store.as_ref())? {
            path.push_str(&format!("&sub_mchid={}", enc(&sub.sub_mch_id)));
        }
        let apply: TradeBillApply = match self.call(Method::GET, &path, None).await? {
            Ok(body) => Self::decode(WHAT, &body)?,
            Err(f) if f.code == "NO_STATEMENT_EXIST" => return Ok(BillDownload::Empty),
            Err(f) if f.code == "STATEMENT_CREATING" => {
                return Ok(BillDownload::NotReady(format!("{}: {}", f.code, f.message)));
            }
            Err(f) => return Err(f.into_error(WHAT)),
        };
        if !apply.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(ChannelError::bad_response(format!(
                "{WHAT}: hash_type {} (only SHA1 is known)",
                apply.hash_type
            )));
        }
        if apply.hash_value.len() != 40 || !apply.hash_value.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ChannelError::bad_response(format!(
                "{WHAT}: hash_value is not a SHA-1"
            )));
        }
        let url = self.download_url(&apply.download_url)?;
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let nonce = cashdesk_crypto::random::nonce_str(32);
        let auth =
            self.authorization("GET", &target, "", chrono::Utc::now().timestamp(), &nonce)?;
        let get = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::ACCEPT, "*/*");
        let size = http::download_to(get, "/v3/billdownload/file", sink, MAX_BILL_BYTES).await?;
        Ok(BillDownload::Written(BillFile {
            format: BillFormat::WechatTrade,
            compression: Compression::Gzip,
            sha1: Some(apply.hash_value.to_ascii_lowercase()),
            size,
        }))
    }

    /// The answer's `download_url`, if it is on the configured API host
    /// (scheme, host and port).
    fn download_url(&self, given: &str) -> Result<Url, ChannelError> {
        let url = Url::parse(given).map_err(|_| {
            ChannelError::bad_response(format!("{WHAT}: download_url is not a URL"))
        })?;
        let same_origin = url.scheme() == self.base_url.scheme()
            && url.host_str() == self.base_url.host_str()
            && url.port_or_known_default() == self.base_url.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none();
        if !same_origin {
            return Err(ChannelError::bad_response(format!(
                "{WHAT}: download_url is on {}, not on the configured API host",
                url.host_str().unwrap_or("no host")
            )));
        }
        Ok(url)
    }
}
