//! The payer pages: `/sandbox/wechat/pay/{prepay_id}`,
//! `/sandbox/alipay/pay/{trade_no}` and `/sandbox/lakala/pay/{trade_no}`:
//! what the buyer would see inside the wallet — a phone wallet's
//! confirmation sheet: brand bar, amount, payee, order, one Pay button and
//! Cancel. `code_url` (Native) and `mweb_url` (H5) point here, so scanning
//! the QR code with a phone opens it. Plain HTML forms (works with
//! JavaScript off), no external assets, and a big SANDBOX label so nobody
//! mistakes it for a real payment.
//!
//! Pay marks the order paid and sends the notification; Cancel is what a
//! buyer closing the sheet does in WeChat: nothing changes, the order stays
//! NOTPAY. For H5, `redirect_url` (appended to `mweb_url` by the merchant,
//! as WeChat documents) is offered as the way back, and after a successful
//! payment the page goes there by itself after two seconds (a meta
//! refresh, so still no script), as WeChat returns to it. Only to a
//! registered domain, as at WeChat (whose H5 `redirect_url` must be on the
//! merchant's H5 payment domain): the sandbox's registered domains are
//! those of its web OAuth ([`crate::oauth::Domains`]); another
//! `redirect_url` is ignored, so the page is no open redirect.
//!
//! Alipay's page is also what `gateway.do` answers to a signed wap, page or
//! app order (the browser lands on it); after paying, the order's
//! `return_url` is offered with Alipay's signed return parameters. Lakala's
//! is its Native `code` and H5 `redirect_url`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use cashdesk_core::html::escape as esc;
use serde::Deserialize;

use crate::Shared;
use crate::ledger::{LedgerError, Order};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/wechat/pay/{prepay_id}", get(show).post(act))
        .route(
            "/sandbox/alipay/pay/{trade_no}",
            get(alipay_show).post(alipay_act),
        )
        .route(
            "/sandbox/lakala/pay/{trade_no}",
            get(lakala_show).post(lakala_act),
        )
}

/// Who the page looks like.
struct Brand {
    name: &'static str,
    pay_color: &'static str,
}

const WECHAT: Brand = Brand {
    name: "WeChat Pay",
    pay_color: "#07c160",
};
const ALIPAY: Brand = Brand {
    name: "Alipay",
    pay_color: "#1677ff",
};
const LAKALA: Brand = Brand {
    name: "Lakala",
    pay_color: "#e60012",
};

#[derive(Deserialize, Default)]
struct PageQuery {
    redirect_url: Option<String>,
}

#[derive(Deserialize)]
struct PageForm {
    action: String,
    redirect_url: Option<String>,
}

/// Only absolute http(s) URLs are offered as a way back.
fn safe_redirect(s: &Shared, u: Option<&str>) -> Option<String> {
    let url = url::Url::parse(u?).ok()?;
    (matches!(url.scheme(), "http" | "https") && s.oauth_domains.allows(&url))
        .then(|| url.to_string())
}

/// A phone wallet's confirmation sheet: the brand bar, the amount large,
/// payee and order below, one big Pay button. Narrow first (it is opened
/// on a phone), centred on a desktop. The red SANDBOX band stays on top.
const STYLE: &str = "*{box-sizing:border-box}body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;background:#ededed;margin:0;color:#111}\
.band{background:#c62828;color:#fff;text-align:center;font-weight:800;letter-spacing:.25em;padding:.45em;font-size:1.1em}\
.band small{display:block;letter-spacing:0;font-weight:400;font-size:.75em;opacity:.9}\
.phone{max-width:420px;margin:0 auto;min-height:90vh;background:#f7f7f7}\
.bar{display:flex;align-items:center;gap:.5em;padding:.8em 1em;color:#fff;font-weight:600}\
.bar svg{width:1.6em;height:1.6em}\
.sheet{background:#fff;margin:1em;border-radius:12px;padding:1.4em 1.2em;text-align:center;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
.desc{color:#555;margin:.2em 0}.amount{font-size:2.6em;font-weight:700;margin:.2em 0 .5em}\
.rows{text-align:left;border-top:1px solid #eee;margin:0;padding:.6em 0 0;font-size:.92em}\
.rows div{display:flex;justify-content:space-between;gap:1em;padding:.35em 0}.rows dt{color:#888}.rows dd{margin:0;word-break:break-all;text-align:right}\
.muted{color:#777;font-size:.85em;word-break:break-all}\
button{width:100%;padding:.95em;font-size:1.1em;border:0;border-radius:8px;margin-top:.8em;cursor:pointer}\
.pay{color:#fff;font-weight:600}.cancel{background:#f2f2f2;color:#333}.msg{font-size:1.2em;margin:1em 0}\
a{color:#576b95}";

/// The brand's mark, drawn here (no external assets).
fn logo(brand: &Brand) -> &'static str {
    match brand.name {
        "Alipay" => {
            "<svg viewBox=\"0 0 32 32\" aria-hidden=\"true\"><rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#fff\"/><text x=\"16\" y=\"23\" font-size=\"19\" text-anchor=\"middle\" fill=\"#1677ff\" font-weight=\"700\">支</text></svg>"
        }
        "Lakala" => {
            "<svg viewBox=\"0 0 32 32\" aria-hidden=\"true\"><rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#fff\"/><text x=\"16\" y=\"23\" font-size=\"19\" text-anchor=\"middle\" fill=\"#e60012\" font-weight=\"700\">L</text></svg>"
        }
        _ => {
            "<svg viewBox=\"0 0 32 32\" aria-hidden=\"true\"><ellipse cx=\"13\" cy=\"13\" rx=\"11\" ry=\"9\" fill=\"#fff\"/><ellipse cx=\"21\" cy=\"20\" rx=\"9\" ry=\"7.5\" fill=\"#fff\" stroke=\"#07c160\" stroke-width=\"1.5\"/></svg>"
        }
    }
}

fn page(title: &str, inner: &str) -> Html<String> {
    branded_page(&WECHAT, title, inner)
}

/// A WeChat-branded sandbox page (also the OAuth error page).
pub(crate) fn wechat_page(title: &str, inner: &str) -> Html<String> {
    page(title, inner)
}

fn branded_page(brand: &Brand, title: &str, inner: &str) -> Html<String> {
    branded_page_with_head(brand, title, inner, "")
}

fn branded_page_with_head(brand: &Brand, title: &str, inner: &str, head: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{head}\
<title>SANDBOX · {title}</title><style>{STYLE}.pay,.bar{{background:{color}}}</style></head><body>\
<div class=\"band\" role=\"note\">SANDBOX<small>{name} simulator · 沙箱 · no real money moves</small></div>\
<main class=\"phone\"><div class=\"bar\">{logo}<span>{name}</span></div>\
<div class=\"sheet\">{inner}</div></main></body></html>",
        title = esc(title),
        color = brand.pay_color,
        name = brand.name,
        logo = logo(brand),
    ))
}

fn order_summary(o: &Order) -> String {
    format!(
        "<p class=\"desc\">{desc}</p><div class=\"amount\">¥{amount}</div>\
<dl class=\"rows\"><div><dt>Payee 收款方</dt><dd>Merchant {mch}</dd></div>\
<div><dt>Order 订单号</dt><dd>{no}</dd></div>\
<div><dt>Pay with 付款方式</dt><dd>Sandbox balance 沙箱零钱</dd></div></dl>",
        desc = esc(&o.description),
        amount = cashdesk_core::Fen::from_stored(o.total).to_yuan(),
        mch = esc(&o.mch_id),
        no = esc(&o.out_trade_no),
    )
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            "unknown payment",
            "<p class=\"msg\">No sandbox payment has this id.</p>",
        ),
    )
        .into_response()
}

async fn show(
    State(s): State<Arc<Shared>>,
    Path(prepay_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(order) = s.ledger.find_by_prepay(&prepay_id) else {
        return not_found();
    };
    let redirect = safe_redirect(&s, q.redirect_url.as_deref());
    let state = order.trade_state(chrono::Utc::now());
    let body = if state == "NOTPAY" {
        let hidden = redirect
            .map(|r| {
                format!(
                    "<input type=\"hidden\" name=\"redirect_url\" value=\"{}\">",
                    esc(&r)
                )
            })
            .unwrap_or_default();
        format!(
            "{summary}<form method=\"post\">{hidden}<button class=\"pay\" name=\"action\" value=\"pay\">Pay ¥{amount}</button>\
<button class=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button></form>",
            summary = order_summary(&order),
            amount = cashdesk_core::Fen::from_stored(order.total).to_yuan(),
        )
    } else {
        format!(
            "{}<p class=\"msg\">This payment is {state}.</p>",
            order_summary(&order)
        )
    };
    page("WeChat Pay", &body).into_response()
}

async fn act(
    State(s): State<Arc<Shared>>,
    Path(prepay_id): Path<String>,
    axum::Form(form): axum::Form<PageForm>,
) -> Response {
    let Some(order) = s.ledger.find_by_prepay(&prepay_id) else {
        return not_found();
    };
    let redirect = safe_redirect(&s, form.redirect_url.as_deref());
    let back = redirect
        .as_ref()
        .map(|r| format!("<p><a href=\"{}\">Back to the merchant</a></p>", esc(r)))
        .unwrap_or_default();
    let (status, msg) = match form.action.as_str() {
        "pay" => match s.pay(&order.mch_id, &order.out_trade_no, true, None, "payer") {
            Ok(_) => (
                StatusCode::OK,
                "Payment successful. The merchant has been notified.",
            ),
            Err(LedgerError::OrderPaid) => (StatusCode::CONFLICT, "This order is already paid."),
            Err(_) => (
                StatusCode::CONFLICT,
                "This order is closed or expired and cannot be paid.",
            ),
        },
        "cancel" => (StatusCode::OK, "Payment cancelled. The order stays unpaid."),
        _ => (StatusCode::BAD_REQUEST, "Unknown action."),
    };
    let body = format!(
        "{}<p class=\"msg\" role=\"status\">{}</p>{back}",
        order_summary(&order),
        esc(msg)
    );
    // Like WeChat's H5 payment, a finished payment returns to the
    // merchant's redirect_url by itself (after a moment to read the result).
    let head = match (&redirect, form.action.as_str(), status) {
        (Some(r), "pay", StatusCode::OK) => {
            format!("<meta http-equiv=\"refresh\" content=\"2;url={}\">", esc(r))
        }
        _ => String::new(),
    };
    (
        status,
        branded_page_with_head(&WECHAT, "WeChat Pay", &body, &head),
    )
        .into_response()
}

/// The payer form (Pay / Cancel) posting to `action`, or the order's state.
fn payer_body(o: &Order, action: &str, state: &str, payable: bool) -> String {
    if payable {
        format!(
            "{summary}<form method=\"post\" action=\"{action}\"><button class=\"pay\" name=\"action\" value=\"pay\">Pay ¥{amount}</button>\
<button class=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button></form>",
            summary = order_summary(o),
            action = esc(action),
            amount = cashdesk_core::Fen::from_stored(o.total).to_yuan(),
        )
    } else {
        format!(
            "{}<p class=\"msg\">This payment is {}.</p>",
            order_summary(o),
            esc(state)
        )
    }
}

fn find_channel_order(s: &Shared, trade_no: &str, api: crate::ledger::Api) -> Option<Order> {
    s.ledger.find_by_prepay(trade_no).filter(|o| o.api == api)
}

/// The Alipay payer page of `o` (also `gateway.do`'s answer to a wap, page
/// or app order).
pub(crate) fn alipay_order_page(o: &Order) -> Html<String> {
    let now = chrono::Utc::now();
    let state = crate::alipay::trade_status(o, now);
    let action = format!("/sandbox/alipay/pay/{}", o.prepay_id);
    branded_page(
        &ALIPAY,
        "Alipay",
        &payer_body(o, &action, state, state == "WAIT_BUYER_PAY"),
    )
}

/// `gateway.do`'s error page for a page/wap/app order.
pub(crate) fn alipay_error_page(code: &str, sub_code: &str, sub_msg: &str) -> Response {
    let body = format!(
        "<p class=\"msg\">支付宝错误 / Alipay error</p><p>code {}<br>sub_code {}</p><p class=\"muted\">{}</p>",
        esc(code),
        esc(sub_code),
        esc(sub_msg)
    );
    (
        StatusCode::BAD_REQUEST,
        branded_page(&ALIPAY, "Alipay error", &body),
    )
        .into_response()
}

fn unknown(brand: &Brand) -> Response {
    (
        StatusCode::NOT_FOUND,
        branded_page(
            brand,
            "unknown payment",
            "<p class=\"msg\">No sandbox payment has this id.</p>",
        ),
    )
        .into_response()
}

async fn alipay_show(State(s): State<Arc<Shared>>, Path(trade_no): Path<String>) -> Response {
    match find_channel_order(&s, &trade_no, crate::ledger::Api::Alipay) {
        Some(o) => alipay_order_page(&o).into_response(),
        None => unknown(&ALIPAY),
    }
}

async fn lakala_show(State(s): State<Arc<Shared>>, Path(trade_no): Path<String>) -> Response {
    let Some(o) = find_channel_order(&s, &trade_no, crate::ledger::Api::Lakala) else {
        return unknown(&LAKALA);
    };
    let state = crate::lakala::trade_state(&o, chrono::Utc::now());
    let action = format!("/sandbox/lakala/pay/{trade_no}");
    branded_page(
        &LAKALA,
        "Lakala",
        &payer_body(&o, &action, state, state == "CREATE"),
    )
    .into_response()
}

/// Pay or cancel; returns the status, the message and the paid order.
fn payer_action(s: &Shared, o: &Order, action: &str) -> (StatusCode, &'static str, Option<Order>) {
    match action {
        "pay" => match s.pay(&o.mch_id, &o.out_trade_no, true, None, "payer") {
            Ok(paid) => (
                StatusCode::OK,
                "Payment successful. The merchant has been notified.",
                Some(paid),
            ),
            Err(LedgerError::OrderPaid) => {
                (StatusCode::CONFLICT, "This order is already paid.", None)
            }
            Err(_) => (
                StatusCode::CONFLICT,
                "This order is closed or expired and cannot be paid.",
                None,
            ),
        },
        "cancel" => (
            StatusCode::OK,
            "Payment cancelled. The order stays unpaid.",
            None,
        ),
        _ => (StatusCode::BAD_REQUEST, "Unknown action.", None),
    }
}

async fn alipay_act(
    State(s): State<Arc<Shared>>,
    Path(trade_no): Path<String>,
    axum::Form(form): axum::Form<PageForm>,
) -> Response {
    let Some(o) = find_channel_order(&s, &trade_no, crate::ledger::Api::Alipay) else {
        return unknown(&ALIPAY);
    };
    let (status, msg, paid) = payer_action(&s, &o, &form.action);
    let back = paid
        .as_ref()
        .and_then(|p| crate::alipay::return_url(&s, p))
        .map(|r| format!("<p><a href=\"{}\">Back to the merchant</a></p>", esc(&r)))
        .unwrap_or_default();
    let body = format!(
        "{}<p class=\"msg\">{}</p>{back}",
        order_summary(&o),
        esc(msg)
    );
    (status, branded_page(&ALIPAY, "Alipay", &body)).into_response()
}

async fn lakala_act(
    State(s): State<Arc<Shared>>,
    Path(trade_no): Path<String>,
    axum::Form(form): axum::Form<PageForm>,
) -> Response {
    let Some(o) = find_channel_order(&s, &trade_no, crate::ledger::Api::Lakala) else {
        return unknown(&LAKALA);
    };
    let (status, msg, _) = payer_action(&s, &o, &form.action);
    let body = format!("{}<p class=\"msg\">{}</p>", order_summary(&o), esc(msg));
    (status, branded_page(&LAKALA, "Lakala", &body)).into_response()
}
