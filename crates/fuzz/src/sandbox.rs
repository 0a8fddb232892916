//! The sandbox's parsers of merchant requests — reachable by anyone who can
//! reach a cashdesk with the sandbox on, no credentials needed: WeChat v2
//! XML, the v3 `Authorization` header and JSON bodies, Alipay's gateway
//! form, Lakala's `Authorization` and JSON envelope. Requests go through
//! [`cashdesk_sandbox::Sandbox::router`] in-process; mode `S` signs them
//! with the fixture merchant's key so the business checks behind the
//! signature are fuzzed too. No input may make the sandbox answer 500.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use cashdesk_crypto::wxv2::{self, WxSignType};
use cashdesk_sandbox::xml as sandbox_xml;
use tower::ServiceExt as _;

use crate::fixtures::{self, Fixtures};
use crate::message::{Message, substitute};
use crate::{Outcome, channels};

fn send(
    f: &Fixtures,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Outcome {
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Outcome::Refused;
    };
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            req = req.header(k, v);
        }
    }
    let Ok(req) = req.body(Body::from(body)) else {
        return Outcome::Refused;
    };
    let resp = match f.rt.block_on(async { f.router.clone().oneshot(req).await }) {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    let status = resp.status();
    assert_ne!(status.as_u16(), 500, "the sandbox answered 500 to {path}");
    Outcome::from(status.is_success())
}

/// WeChat Pay v2 (`/sandbox/wechat/pay/…`, XML). Mode `S`: the body's
/// fields are signed with the merchant's API key (`sign_type` HMAC-SHA256
/// picks the HMAC merchant, anything else the MD5 one).
pub fn wechat_v2(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let mut m = Message::parse(data, true);
    if m.sign {
        m.substitute_start(&f.vars());
    }
    let (method, path) = m.route("/sandbox/wechat/");
    if !m.sign {
        return send(f, &method, &path, &m.headers, m.body.to_vec());
    }
    let Ok(text) = String::from_utf8(substitute(m.body, &f.vars())) else {
        return Outcome::Refused;
    };
    let Ok(mut fields) = sandbox_xml::parse(&text) else {
        return Outcome::Refused;
    };
    let (key, kind) = match fields.get("sign_type").map(String::as_str) {
        Some("HMAC-SHA256") => (
            &f.wechat_hmac.credentials_v2.api_key,
            WxSignType::HmacSha256,
        ),
        _ => (&f.wechat_md5.credentials_v2.api_key, WxSignType::Md5),
    };
    fields.remove("sign");
    let sign = wxv2::sign(&fields, key, kind);
    fields.insert("sign".into(), sign);
    send(
        f,
        &method,
        &path,
        &m.headers,
        sandbox_xml::render(&fields).into_bytes(),
    )
}

/// WeChat Pay v3 (`/sandbox/wechat/v3/…`, JSON). The `Authorization`
/// header's parser is called directly too. Mode `S`: the Authorization is
/// made with the merchant's v3 key over `METHOD\nPATH\nts\nnonce\nbody\n`.
pub fn wechat_v3(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let mut m = Message::parse(data, true);
    if let Some(value) = m.header("Authorization")
        && let Ok(a) = cashdesk_sandbox::v3::parse_authorization(value)
    {
        assert!(
            !a.mchid.is_empty() && value.contains(&format!("mchid=\"{}\"", a.mchid)),
            "mchid {:?} from {value:?}",
            a.mchid
        );
    }
    if m.sign {
        m.substitute_start(&f.vars());
    }
    let (method, path) = m.route("/sandbox/wechat/v3/");
    let mut body = m.body.to_vec();
    if m.sign {
        body = substitute(&body, &f.vars());
        let creds = &f.wechat_md5.credentials_v3;
        let ts = chrono::Utc::now().timestamp().to_string();
        let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
        let mut msg = format!("{method}\n{path}\n{ts}\n{nonce}\n").into_bytes();
        msg.extend_from_slice(&body);
        msg.push(b'\n');
        let Ok(sig) = f.wechat_v3_key.sign_sha256_base64(&msg) else {
            return Outcome::Refused;
        };
        m.set_header(
            "Authorization",
            format!(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{sig}\",timestamp=\"{ts}\",serial_no=\"{}\"",
                f.wechat_md5.mch_id, creds.serial_no
            ),
        );
    }
    send(f, &method, &path, &m.headers, body)
}

/// Alipay's gateway (`/sandbox/alipay/gateway.do`, a form). Mode `S`: the
/// parameters are signed (RSA2) with the merchant's app key.
pub fn alipay(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let mut m = Message::parse(data, true);
    let (method, _) = m.route("/");
    let path = "/sandbox/alipay/gateway.do";
    if !m.sign {
        return send(f, &method, path, &m.headers, m.body.to_vec());
    }
    let mut params = channels::form_with_vars(m.body, &f.vars());
    params.remove("sign");
    let content = cashdesk_sandbox::alipay::sign_content(&params, &["sign"]);
    let Ok(sign) = f.alipay_app_key.sign_sha256_base64(content.as_bytes()) else {
        return Outcome::Refused;
    };
    params.insert("sign".into(), sign);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    m.set_header(
        "Content-Type",
        "application/x-www-form-urlencoded;charset=utf-8".into(),
    );
    send(f, "POST", path, &m.headers, body.into_bytes())
}

/// Lakala (`/sandbox/lakala/api/v3/labs/…`, JSON). Mode `S`: the
/// `Authorization: LKLAPI-SHA256withRSA …` is made with the merchant's key
/// over `appid\nserial_no\ntimestamp\nnonce_str\nbody\n`.
pub fn lakala(data: &[u8]) -> Outcome {
    let f = fixtures::get();
    let mut m = Message::parse(data, true);
    if m.sign {
        m.substitute_start(&f.vars());
    }
    let (method, path) = m.route("/sandbox/lakala/api/v3/labs/");
    let mut body = m.body.to_vec();
    if m.sign {
        body = substitute(&body, &f.vars());
        let creds = &f.lakala.credentials;
        let ts = chrono::Utc::now().timestamp().to_string();
        let nonce = "Lx8dOYbYh2Ts";
        let msg = channels::lines(&[
            creds.app_id.as_bytes(),
            creds.serial_no.as_bytes(),
            ts.as_bytes(),
            nonce.as_bytes(),
            &body,
        ]);
        let Ok(sig) = f.lakala_app_key.sign_sha256_base64(&msg) else {
            return Outcome::Refused;
        };
        m.set_header(
            "Authorization",
            format!(
                "LKLAPI-SHA256withRSA appid=\"{}\",serial_no=\"{}\",timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{sig}\"",
                creds.app_id, creds.serial_no
            ),
        );
    }
    send(f, &method, &path, &m.headers, body)
}
