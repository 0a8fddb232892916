//! Roles on the console: every role × every console route is allowed or
//! refused (403) exactly as the matrix says, signed in through the login
//! form (the operator API's matrix test is `rbac.rs`).

use cashdesk_core::{Permission, Role};

use crate::backend_tests;
use crate::console_auth::{Browserless, csrf_of};
use crate::helpers::*;
use crate::rbac::{PASSWORD, account_token};

backend_tests!(every_role_sees_exactly_its_console_pages);

/// `(POST?, path, permission)`; `None`: any signed-in account.
fn routes(app_id: &str, order_id: &str) -> Vec<(bool, String, Option<Permission>)> {
    use Permission as P;
    let r = "R01ARZ3NDEKTSV4RRFFQ69G5FA";
    let b = "B01ARZ3NDEKTSV4RRFFQ69G5FA";
    let n = "N01ARZ3NDEKTSV4RRFFQ69G5FA";
    let u = "U01ARZ3NDEKTSV4RRFFQ69G5FA";
    let c = "C01ARZ3NDEKTSV4RRFFQ69G5FA";
    let h = "H01ARZ3NDEKTSV4RRFFQ69G5FA";
    vec![
        (false, "/console/account".into(), None),
        (false, "/console/dashboard".into(), Some(P::OrdersRead)),
        (false, "/console/orders".into(), Some(P::OrdersRead)),
        (
            false,
            format!("/console/orders/{order_id}"),
            Some(P::OrdersRead),
        ),
        (
            true,
            format!("/console/orders/{order_id}/sync"),
            Some(P::OrdersManage),
        ),
        (
            true,
            format!("/console/orders/{order_id}/refund"),
            Some(P::RefundsCreate),
        ),
        (
            true,
            format!("/console/orders/{order_id}/close"),
            Some(P::OrdersManage),
        ),
        (false, "/console/refunds".into(), Some(P::RefundsRead)),
        (
            false,
            "/console/refunds/applications".into(),
            Some(P::RefundsRead),
        ),
        (false, "/console/bindings".into(), Some(P::BindingsRead)),
        (true, "/console/bindings".into(), Some(P::BindingsApply)),
        (
            false,
            "/console/notifications".into(),
            Some(P::NotificationsRead),
        ),
        (false, "/console/stores".into(), Some(P::StoresRead)),
        (false, "/console/audit".into(), Some(P::AuditRead)),
        (false, "/console/accounts".into(), Some(P::AccountsManage)),
        (
            false,
            format!("/console/accounts/{u}"),
            Some(P::AccountsManage),
        ),
        (
            true,
            format!("/console/refunds/{r}/approve"),
            Some(P::RefundsReview),
        ),
        (
            true,
            format!("/console/refunds/{r}/reject"),
            Some(P::RefundsReview),
        ),
        (
            true,
            format!("/console/bindings/{b}/approve"),
            Some(P::BindingsDecide),
        ),
        (
            true,
            format!("/console/bindings/{b}/reject"),
            Some(P::BindingsDecide),
        ),
        (
            true,
            format!("/console/notifications/{n}/resend"),
            Some(P::NotificationsResend),
        ),
        (
            true,
            "/console/notifications/resend".into(),
            Some(P::NotificationsResend),
        ),
        (true, "/console/stores".into(), Some(P::StoresWrite)),
        (
            true,
            format!("/console/stores/{app_id}/s1/rename"),
            Some(P::StoresWrite),
        ),
        (
            true,
            format!("/console/stores/{app_id}/s1/disable"),
            Some(P::StoresWrite),
        ),
        (false, "/console/apps".into(), Some(P::AppsRead)),
        (false, format!("/console/apps/{app_id}"), Some(P::AppsRead)),
        (true, "/console/apps".into(), Some(P::AppsWrite)),
        (
            true,
            format!("/console/apps/{app_id}/settings"),
            Some(P::AppsWrite),
        ),
        (
            true,
            format!("/console/apps/{app_id}/enable"),
            Some(P::AppsWrite),
        ),
        (
            true,
            format!("/console/apps/{app_id}/rotate-key"),
            Some(P::AppsRotateKey),
        ),
        (false, "/console/channels".into(), Some(P::ChannelsRead)),
        (true, "/console/channels".into(), Some(P::ChannelsWrite)),
        (
            true,
            "/console/channels/configs".into(),
            Some(P::ChannelsWrite),
        ),
        (
            true,
            format!("/console/channels/configs/{c}/credentials"),
            Some(P::ChannelSecretsWrite),
        ),
        (
            true,
            format!("/console/channels/configs/{c}/enable"),
            Some(P::ChannelsWrite),
        ),
        (
            true,
            format!("/console/channels/configs/{c}/test"),
            Some(P::ChannelsWrite),
        ),
        (
            true,
            format!("/console/channels/{h}/enable"),
            Some(P::ChannelsWrite),
        ),
        // Runs and findings (recon.read) or, for a merchant, its statement.
        (false, "/console/recon".into(), Some(P::StatementsRead)),
        (
            false,
            "/console/recon/statement.csv".into(),
            Some(P::StatementsRead),
        ),
        (true, "/console/recon/run".into(), Some(P::ReconRun)),
        (
            true,
            "/console/recon/findings/F01ARZ3NDEKTSV4RRFFQ69G5FA/resolve".into(),
            Some(P::ReconResolve),
        ),
        (true, "/console/accounts".into(), Some(P::AccountsManage)),
        (
            true,
            format!("/console/accounts/{u}"),
            Some(P::AccountsManage),
        ),
    ]
}

async fn every_role_sees_exactly_its_console_pages(b: Backend) {
    let app = spawn_app(b).await;
    let (_, order_id) = app.new_order(&app.client, 100).await;
    let web = Browserless::new(&app);
    for &role in Role::ALL {
        let apps: &[&str] = if role.is_scoped() {
            &[app.demo_app_id.as_str()]
        } else {
            &[]
        };
        let name = format!("web-{role}");
        account_token(&app, &name, role, apps).await;
        let session = web.session(&name, PASSWORD).await;
        let html = web
            .get(&session, "/console/account")
            .await
            .text()
            .await
            .expect("html");
        let csrf = csrf_of(&html);
        for (post, path, need) in routes(&app.demo_app_id, &order_id) {
            let resp = if post {
                web.post(&session, &path, &[("csrf", csrf.as_str()), ("name", "x")])
                    .await
            } else {
                web.get(&session, &path).await
            };
            let status = resp.status().as_u16();
            let allowed = need.is_none_or(|p| role.allows(p));
            if allowed {
                assert!(status != 403 && status != 401, "{role}: {path} → {status}");
            } else {
                assert_eq!(status, 403, "{role} may not: {path}");
            }
            // Nothing shows a signed-in page without its security headers.
            let csp = resp
                .headers()
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap_or(""));
            assert!(
                csp.is_some_and(|c| c.contains("default-src 'none'")),
                "{path}"
            );
        }
    }
}
