//! Reading WeChat Pay v2's flat XML: answers and notifications stay string
//! maps ([`Fields`]), because the signature covers every field received,
//! known or not; these helpers take the fields the adapter needs, as a
//! [`ChannelError::BadResponse`] (answers) or a malformed
//! [`NotifyError`] (notifications) when one is missing or not a value.

use std::collections::BTreeMap;

use cashdesk_core::Fen;

use crate::channel::{NotifiedMerchant, RefundOutcome};
use crate::error::{ChannelError, NotifyError};

/// A v2 request, answer or notification: field name → value.
pub(super) type Fields = BTreeMap<String, String>;

/// The fields to sign of a front-end payload (`wx.requestPayment`, `PayReq`).
pub(super) fn fields_of(pairs: &[(&str, &String)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).clone()))
        .collect()
}

pub(super) fn need<'a>(
    path: &str,
    fields: &'a Fields,
    name: &str,
) -> Result<&'a str, ChannelError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ChannelError::bad_response(format!("{path}: response has no {name}")))
}

pub(super) fn fen(path: &str, fields: &Fields, name: &str) -> Result<Fen, ChannelError> {
    let raw = need(path, fields, name)?;
    raw.parse::<i64>()
        .ok()
        .and_then(|v| Fen::parse_positive("amount", v).ok())
        .ok_or_else(|| {
            ChannelError::bad_response(format!("{path}: {name} `{raw}` is not an amount in fen"))
        })
}

pub(super) fn refund_outcome(status: &str) -> Option<RefundOutcome> {
    match status {
        "SUCCESS" => Some(RefundOutcome::Success),
        "PROCESSING" => Some(RefundOutcome::Processing),
        "REFUNDCLOSE" => Some(RefundOutcome::Closed),
        "CHANGE" => Some(RefundOutcome::Abnormal),
        _ => None,
    }
}

pub(super) fn notify_field<'a>(fields: &'a Fields, name: &str) -> Result<&'a str, NotifyError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| NotifyError::malformed(format!("no {name}")))
}

pub(super) fn notify_fen(fields: &Fields, name: &str) -> Result<Fen, NotifyError> {
    let raw = notify_field(fields, name)?;
    raw.parse::<i64>()
        .ok()
        .and_then(|v| Fen::parse_positive("amount", v).ok())
        .ok_or_else(|| NotifyError::malformed(format!("{name} `{raw}` is not an amount in fen")))
}

/// The sub-merchant fields of a (partner) notification.
pub(super) fn sub_merchant_of(fields: &Fields) -> NotifiedMerchant {
    NotifiedMerchant::from_fields(&["sub_mch_id", "sub_appid"], |n| {
        fields.get(n).map(String::as_str)
    })
}
