//! The v2 trade bill (PROTOCOLS-2 §1.2): `POST /pay/downloadbill`, signed
//! like every v2 call, no client certificate. The answer is the bill text
//! itself (not XML, not signed), or an XML failure: `return_code=FAIL`
//! with `error_code` 20002 ("No Bill Exist") for a day without trades.
//! Asked plain, so the answer's first bytes tell a bill from a failure;
//! cashdesk gzips it for keeping.

use cashdesk_crypto::random::nonce_str;

use super::WxPayV2;
use super::wire::Fields;
use crate::bill::{BillDownload, BillFile, BillFormat, BillRequest, Compression, MAX_BILL_BYTES};
use crate::error::ChannelError;
use crate::http;
use crate::support::join_url;
use crate::wechat::wire::SubMerchant;
use crate::xml;

const PATH: &str = "/pay/downloadbill";

/// A sink that keeps the first bytes of what passes, to tell an XML
/// failure from a bill.
struct Head<'a> {
    inner: &'a mut (dyn std::io::Write + Send),
    head: Vec<u8>,
}

impl std::io::Write for Head<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = 4096usize.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..room.min(buf.len())]);
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl WxPayV2 {
    pub(super) async fn download_trade_bill(
        &self,
        req: &BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<BillDownload, ChannelError> {
        let mut params = Fields::new();
        params.insert("appid".into(), self.app_id.clone());
        params.insert("mch_id".into(), self.mch_id.clone());
        if let Some(sub) = SubMerchant::of(req.store.as_ref())? {
            params.insert("sub_mch_id".into(), sub.sub_mch_id);
        }
        params.insert("bill_date".into(), req.date.format("%Y%m%d").to_string());
        params.insert("bill_type".into(), "ALL".into());
        params.insert("nonce_str".into(), nonce_str(32));
        params.insert("sign_type".into(), self.sign_type.as_str().into());
        let sign = self.sign(&params, self.sign_type);
        params.insert("sign".into(), sign);
        let post = self
            .http
            .post(join_url(&self.base_url, PATH))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(xml::to_xml(&params));
        let mut head = Head {
            inner: sink,
            head: Vec::new(),
        };
        let size = http::download_to(post, PATH, &mut head, MAX_BILL_BYTES).await?;
        let start = String::from_utf8_lossy(&head.head);
        let start = start.trim_start_matches('\u{feff}').trim_start();
        if start.starts_with("<xml") {
            // A failure is small: the whole answer is in the head.
            let fields = xml::parse_flat(&head.head)
                .map_err(|e| ChannelError::bad_response(format!("{PATH}: {e}")))?;
            let code = fields.get("error_code").or_else(|| fields.get("err_code"));
            let msg = fields.get("return_msg").map_or("", String::as_str);
            return match code.map(String::as_str) {
                Some("20002") => Ok(BillDownload::Empty),
                _ if msg.contains("No Bill Exist") => Ok(BillDownload::Empty),
                // Not published as a code; WeChat's text says it.
                _ if msg.contains("Creating") || msg.contains("生成中") => {
                    Ok(BillDownload::NotReady(msg.to_owned()))
                }
                Some("SYSTEMERROR") => Err(ChannelError::retryable(
                    code.cloned(),
                    format!("{PATH}: {msg}"),
                )),
                // 20001 and the rest: the request itself is refused
                // (e.g. an invalid bill_date); asking again changes nothing.
                _ => Err(ChannelError::bad_response(format!(
                    "{PATH}: WeChat Pay refused: {} {msg}",
                    code.map_or("", String::as_str)
                ))),
            };
        }
        Ok(BillDownload::Written(BillFile {
            format: BillFormat::WechatTrade,
            compression: Compression::Plain,
            sha1: None,
            size,
        }))
    }
}
