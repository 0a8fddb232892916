//! The payer pages: `/sandbox/wechat/pay/{prepay_id}`,
//! `/sandbox/alipay/pay/{trade_no}` and `/sandbox/lakala/pay/{trade_no}`:
//! what the buyer would see inside the wallet, reduced to amount, merchant,
//! description and two buttons. `code_url` (Native) and `mweb_url` (H5) point here, so scanning
//! the QR code with a phone opens it. Plain HTML forms (works with
//! JavaScript off), no external assets, and a big SANDBOX label so nobody
//! mistakes it for a real payment.
//!
//! Pay marks the order paid and sends the notification; Cancel is what a
//! buyer closing the sheet does in WeChat: nothing changes, the order stays
//! NOTPAY. For H5, `redirect_url` (appended to `mweb_url` by the merchant,
//! as WeChat documents) is offered as the way back.
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

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Only absolute http(s) URLs are offered as a way back.
fn safe_redirect(u: Option<&str>) -> Option<String> {
    let url = url::Url::parse(u?).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#ededed;margin:0}\
.band{background:#c62828;color:#fff;text-align:center;font-size:2.4em;font-weight:800;letter-spacing:.3em;padding:.4em}\
.card{max-width:420px;margin:1.5em auto;background:#fff;border-radius:8px;padding:1.5em;text-align:center}\
.amount{font-size:2.6em;font-weight:700;margin:.3em 0}.muted{color:#777;font-size:.9em;word-break:break-all}\
button{width:100%;padding:.9em;font-size:1.1em;border:0;border-radius:6px;margin-top:.8em;cursor:pointer}\
.pay{color:#fff}.cancel{background:#f2f2f2;color:#333}.msg{font-size:1.2em;margin:1em 0}";

fn page(title: &str, inner: &str) -> Html<String> {
    branded_page(&WECHAT, title, inner)
}

fn branded_page(brand: &Brand, title: &str, inner: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>SANDBOX · {title}</title><style>{STYLE}.pay{{background:{color}}}</style></head><body>\
<div class=\"band\">SANDBOX</div>\
<div class=\"card\"><p class=\"muted\">{name} simulator — no real money moves</p>{inner}</div></body></html>",
        title = esc(title),
        color = brand.pay_color,
        name = brand.name,
    ))
}

fn order_summary(o: &Order) -> String {
    format!(
        "<p>{desc}</p><div class=\"amount\">¥{amount}</div>\
<p class=\"muted\">Merchant {mch} · order {no}</p>",
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
    let redirect = safe_redirect(q.redirect_url.as_deref());
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
    let back = safe_redirect(form.redirect_url.as_deref())
        .map(|r| format!("<p><a href=\"{}\">Back to the merchant</a></p>", esc(&r)))
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
        "{}<p class=\"msg\">{}</p>{back}",
        order_summary(&order),
        esc(msg)
    );
    (status, page("WeChat Pay", &body)).into_response()
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
