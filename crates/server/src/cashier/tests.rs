//! Rendering of the cashier pages without a server: every token state,
//! both languages, exact amounts, escaping, and no external reference.

use axum::body::to_bytes;
use cashdesk_core::{AppId, ChannelType, OrderState, SignType};
use cashdesk_store::{App, Order};
use chrono::{Duration, Utc};

use super::*;

fn opened(state: OrderState, expire_in: Duration, return_url: Option<&str>) -> Opened {
    let now = Utc::now();
    let app_id = AppId::parse("app0123456789abcdef").expect("app id");
    Opened {
        app: App {
            app_id: app_id.clone(),
            app_name: "Demo <shop>".into(),
            sign_type: SignType::HmacSha256,
            app_key_sealed: Vec::new(),
            public_key_pem: None,
            notify_url: None,
            refund_review: false,
            auto_refund_paid_after_close: false,
            enabled: true,
            created_at: now,
            previous_key: None,
            key_confirmed: true,
            refund_applications: cashdesk_core::RefundApplicationPolicy::default(),
        },
        order: Order {
            order_title: "Latte & cake".into(),
            return_url: return_url.map(str::to_owned),
            token: "tok_en-123".into(),
            expire_at: now + expire_in,
            state,
            ..crate::service::test_order(app_id, "T1001", 1234, now)
        },
    }
}

async fn body(resp: Response) -> (StatusCode, String, axum::http::HeaderMap) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (
        status,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
        headers,
    )
}

fn assert_self_contained(html: &str) {
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "no inline style"
    );
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains(" on"), "no inline handlers");
}

#[test]
fn stages_of_token_states() {
    let live = Duration::minutes(10);
    let gone = Duration::minutes(-1);
    let now = Utc::now();
    let of = |s, e| Stage::of(&opened(s, e, None).order, now);
    assert_eq!(of(OrderState::Created, live), Stage::Payable);
    assert_eq!(of(OrderState::Paying, live), Stage::Payable);
    assert_eq!(of(OrderState::Created, gone), Stage::Expired);
    assert_eq!(of(OrderState::Paying, gone), Stage::Expired);
    // A paid order is paid for ever, expired or refunded.
    assert_eq!(of(OrderState::Success, gone), Stage::Paid);
    assert_eq!(of(OrderState::Refunded, live), Stage::Paid);
    assert_eq!(of(OrderState::Failed, live), Stage::Failed);
    assert_eq!(of(OrderState::Closed, live), Stage::Closed);
    assert!(!Stage::Payable.is_final() && Stage::Paid.is_final());
}

#[tokio::test]
async fn result_pages_per_state_and_language() {
    let cases = [
        (
            OrderState::Success,
            Stage::Paid,
            "支付成功",
            "Payment successful",
            StatusCode::OK,
        ),
        (
            OrderState::Failed,
            Stage::Failed,
            "支付失败",
            "Payment failed",
            StatusCode::OK,
        ),
        (
            OrderState::Closed,
            Stage::Closed,
            "订单已关闭",
            "Order closed",
            StatusCode::OK,
        ),
        (
            OrderState::Created,
            Stage::Expired,
            "订单已过期",
            "Order expired",
            StatusCode::GONE,
        ),
        (
            OrderState::Paying,
            Stage::Payable,
            "等待支付结果",
            "Waiting for the payment result",
            StatusCode::OK,
        ),
    ];
    for (state, stage, zh, en, code) in cases {
        let o = opened(state, Duration::minutes(5), None);
        let (status, html, headers) = body(result_page(Lang::Zh.texts(), &o, stage)).await;
        assert_eq!(status, code, "{stage:?}");
        assert!(
            html.contains(zh) && html.contains("lang=\"zh-CN\""),
            "{html}"
        );
        assert!(html.contains("¥12.34"));
        assert!(
            html.contains("Demo &#60;shop&#62;") || html.contains("Demo &lt;shop&gt;"),
            "escaped: {html}"
        );
        assert!(html.contains("Latte &#38; cake") || html.contains("Latte &amp; cake"));
        assert_self_contained(&html);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], assets::CSP);
        assert_eq!(
            headers[header::REFERRER_POLICY],
            "strict-origin-when-cross-origin"
        );
        assert!(
            html.contains(r#"<meta name="referrer" content="strict-origin-when-cross-origin">"#)
        );
        let (_, html, _) = body(result_page(Lang::En.texts(), &o, stage)).await;
        assert!(html.contains(en) && html.contains("lang=\"en\""), "{html}");
        // Waiting pages poll and refresh; final ones do not.
        assert_eq!(html.contains("data-status-url"), stage == Stage::Payable);
        assert_eq!(
            html.contains("http-equiv=\"refresh\""),
            stage == Stage::Payable
        );
    }
}

#[tokio::test]
async fn paid_page_returns_to_the_shop() {
    let o = opened(
        OrderState::Success,
        Duration::minutes(5),
        Some("https://shop.example.com/done?id=1&x=2"),
    );
    let (status, html, _) = body(result_page(Lang::En.texts(), &o, Stage::Paid)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("content=\"3;url=https://shop.example.com/done?id=1&#38;x=2\"")
            || html.contains("content=\"3;url=https://shop.example.com/done?id=1&amp;x=2\""),
        "{html}"
    );
    assert!(html.contains("Back to the shop"));
    // Not paid: never sent back as if it were.
    let o = opened(
        OrderState::Closed,
        Duration::minutes(5),
        Some("https://shop.example.com/done"),
    );
    let (_, html, _) = body(result_page(Lang::En.texts(), &o, Stage::Closed)).await;
    assert!(!html.contains("shop.example.com"));
}

#[tokio::test]
async fn unknown_token_page() {
    let (status, html, headers) = body(unknown_page(Lang::En.texts())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Payment link not valid"));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let (_, html, _) = body(unknown_page(Lang::Zh.texts())).await;
    assert!(html.contains("支付链接无效"));
}

#[test]
fn payment_page_lists_channels_in_a_form() {
    let o = opened(OrderState::Created, Duration::seconds(1781), None);
    let t = Lang::Zh.texts();
    let page = PaymentPage {
        t,
        head: Head::new("收银台"),
        order: OrderInfo::of(&o, true),
        notice: None,
        being_paid: false,
        channels: vec![ChannelItem {
            id: "C01".into(),
            brand: view::brand(Lang::Zh, ChannelType::WxPay),
            flow: t.scene_mobile_web,
            name: "WeChat Pay H5 <v2>".into(),
            icon: view::icon(ChannelType::WxPay),
        }],
        token: &o.order.token,
    };
    let html = page.render().expect("renders");
    assert!(html.contains("¥12.34"));
    assert!(html.contains("<form method=\"post\" action=\"/cashier-desk-web/payment\">"));
    assert!(html.contains("name=\"channelId\" value=\"C01\""));
    assert!(html.contains("name=\"token\" value=\"tok_en-123\""));
    assert!(
        html.contains("aria-label=\"微信支付 · 手机网页支付 · WeChat Pay H5 &#60;v2&#62;\"")
            || html.contains("aria-label=\"微信支付 · 手机网页支付 · WeChat Pay H5 &lt;v2&gt;\""),
        "{html}"
    );
    assert!(
        html.contains("id=\"countdown\"") && html.contains(">29:4"),
        "{html}"
    );
    assert!(html.contains(assets::CSS_URL.as_str()) && html.contains(assets::JS_URL.as_str()));
    assert_self_contained(&html);
}
