//! The payer page, `/sandbox/wechat/pay/{prepay_id}`: what the buyer would
//! see inside WeChat, reduced to amount, merchant, description and two
//! buttons. `code_url` (Native) and `mweb_url` (H5) point here, so scanning
//! the QR code with a phone opens it. Plain HTML forms (works with
//! JavaScript off), no external assets, and a big SANDBOX label so nobody
//! mistakes it for a real payment.
//!
//! Pay marks the order paid and sends the notification; Cancel is what a
//! buyer closing the sheet does in WeChat: nothing changes, the order stays
//! NOTPAY. For H5, `redirect_url` (appended to `mweb_url` by the merchant,
//! as WeChat documents) is offered as the way back.

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
    Router::new().route("/sandbox/wechat/pay/{prepay_id}", get(show).post(act))
}

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
.pay{background:#07c160;color:#fff}.cancel{background:#f2f2f2;color:#333}.msg{font-size:1.2em;margin:1em 0}";

fn page(title: &str, inner: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>SANDBOX · {title}</title><style>{STYLE}</style></head><body>\
<div class=\"band\">SANDBOX</div>\
<div class=\"card\"><p class=\"muted\">WeChat Pay simulator — no real money moves</p>{inner}</div></body></html>",
        title = esc(title)
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
