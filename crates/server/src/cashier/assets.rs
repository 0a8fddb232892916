//! The cashier page's static files and response headers. One stylesheet
//! and one small script, compiled into the binary, served from
//! `/cashier-desk-web/static/` with a content hash in the URL (so they
//! can be cached for long), and the strict headers every cashier page
//! carries.
//!
//! # Content-Security-Policy
//!
//! `default-src 'none'`, scripts and styles from this origin only (no
//! inline script or style anywhere), images from this origin (the QR
//! codes), `fetch` to this origin (the status poll), no framing, no
//! `<base>`. `form-action` is left out on purpose: choosing an H5/WAP
//! channel posts the form to cashdesk, which answers with a redirect to
//! the channel's page, and browsers apply `form-action` to that redirect
//! too; the form itself only ever posts to this origin.
//!
//! # Referrer-Policy
//!
//! `strict-origin-when-cross-origin`, as a header and as a `<meta>` tag
//! (`templates/cashier/base.html`). Cashier URLs carry the order's token in
//! their query, so a cross-origin request (the channel's page the H5 choice
//! redirects to, a link out) gets the origin only, never the path and
//! query; an HTTPS page sends nothing to plain HTTP; same-origin requests
//! (this server) keep the full URL. Not `no-referrer`: WeChat Pay H5 (MWEB)
//! checks that the buyer arrives at `mweb_url` with a `Referer` on the H5
//! domain the merchant registered, and refuses the payment without one, so
//! the cashier's origin (the host of `CASHDESK_PUBLIC_URL`) must be sent,
//! and is all that is sent.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const CSS: &str = include_str!("../../static/cashier.css");
pub const JS: &str = include_str!("../../static/cashier.js");

/// See the module comment: the origin only, cross-origin.
pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn versioned(name: &str, content: &str) -> String {
    let d = cashdesk_crypto::digest::sha256(content.as_bytes());
    format!(
        "/cashier-desk-web/static/{name}?v={}",
        &hex::encode(d)[..12]
    )
}

pub static CSS_URL: LazyLock<String> = LazyLock::new(|| versioned("cashier.css", CSS));
pub static JS_URL: LazyLock<String> = LazyLock::new(|| versioned("cashier.js", JS));

/// The headers of every cashier HTML page.
pub fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(REFERRER_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /cashier-desk-web/static/{file}`.
pub fn file(name: &str) -> Option<Response> {
    let (body, ty) = match name {
        "cashier.css" => (CSS, "text/css; charset=utf-8"),
        "cashier.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, ty),
                (header::CACHE_CONTROL, "public, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_self_contained() {
        assert!(JS.len() < 4096, "the script stays a few KB: {}", JS.len());
        for asset in [CSS, JS] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
            assert!(!asset.contains("@import") && !asset.contains("url("));
        }
        assert!(CSS_URL.starts_with("/cashier-desk-web/static/cashier.css?v="));
        assert!(CSP.contains("default-src 'none'") && !CSP.contains("unsafe"));
    }
}
