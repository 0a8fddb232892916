//! The server's own parsers of merchant input: the JSON body reader and its
//! typed field access (`cashdesk_server::input`), and the whole signed
//! merchant API over HTTP — the `Cashdesk-*` headers (`auth`), the body and
//! path parsing of each handler — against a running `cashdesk serve`.
//! Whatever arrives, the server must answer without a 500 (a panic in a
//! handler is caught and answered as a 500, so this catches it too).

use cashdesk_core::SignType;
use cashdesk_crypto::apisig::{self, Signer};
use cashdesk_server::input::{Fields, parse_object, query_params};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Outcome;
use crate::fixtures;
use crate::message::{Message, substitute};

/// A body as the API reads it, every field read every way.
pub fn server_input(data: &[u8]) -> Outcome {
    let _ = query_params(std::str::from_utf8(data).ok());
    let Ok(map) = parse_object(data) else {
        return Outcome::Refused;
    };
    let fields = Fields(&map);
    for name in map.keys() {
        let _ = fields.str_opt(name, 32);
        let _ = fields.str_req(name, 32);
        let _ = fields.int_opt(name);
        let _ = fields.bool_opt(name);
        let _ = fields.object_req(name);
    }
    Outcome::Accepted
}

/// A request to the merchant API: start line `METHOD /path?query` (kept
/// under `/api/cashier-desk/`), headers, body. Mode `S` signs it as the
/// demo app (HMAC-SHA256): app id, timestamp now, a fresh nonce, the
/// signature; a `Cashdesk-App-Id` or `Cashdesk-Sign-Type` already in the
/// input stays, so the header checks behind the signature are fuzzed too.
pub fn server_api(data: &[u8]) -> Outcome {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    let s = fixtures::server();
    let mut m = Message::parse(data, true);
    let (method, path) = m.route("/api/cashier-desk/");
    let mut body = m.body.to_vec();
    if m.sign {
        let vars = [("$APPID", s.app_id.clone())];
        body = substitute(&body, &vars);
        let ts = chrono::Utc::now().timestamp().to_string();
        let nonce = format!("fuzz{}", NONCE.fetch_add(1, Ordering::Relaxed));
        let message = apisig::request_message(&method, &path, &ts, &nonce, &body);
        let Ok(sig) = Signer::Shared(SignType::HmacSha256, s.app_key.as_bytes()).sign(&message)
        else {
            return Outcome::Refused;
        };
        if m.header(apisig::HEADER_APP_ID).is_none() {
            m.set_header(apisig::HEADER_APP_ID, s.app_id.clone());
        }
        if m.header(apisig::HEADER_SIGN_TYPE).is_none() {
            m.set_header(apisig::HEADER_SIGN_TYPE, "HMAC-SHA256".into());
        }
        m.set_header(apisig::HEADER_TIMESTAMP, ts);
        m.set_header(apisig::HEADER_NONCE, nonce);
        m.set_header(apisig::HEADER_SIGNATURE, sig);
    }
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return Outcome::Refused;
    };
    let Ok(url) = reqwest::Url::parse(&format!("{}{path}", s.base_url)) else {
        return Outcome::Refused;
    };
    let mut req = s.client.request(method, url).body(body);
    for (k, v) in &m.headers {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            req = req.header(k, v);
        }
    }
    let status = match s.rt.block_on(async { req.send().await }) {
        Ok(resp) => resp.status(),
        // The client refused to build it: nothing reached the server.
        Err(e) if e.is_builder() => return Outcome::Refused,
        Err(e) => panic!("the server did not answer: {e}"),
    };
    assert_ne!(status.as_u16(), 500, "internal error for {data:?}");
    Outcome::from(status.is_success())
}
