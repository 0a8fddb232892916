//! The operator API under `/api/admin`: `Authorization: Bearer <token>`,
//! the break-glass admin token or an account's API token (401 code 4019
//! otherwise; [`access::authenticate`]). Each handler checks the one
//! permission it needs (403 code 4035) and, for a merchant account, that
//! the object is one of its apps' (404 otherwise). Every write is audited
//! with the account, its role, the client address and, where it has
//! them, the object before and after (no secrets).
//! Responses are not signed: the bearer token over TLS is the trust.

mod accounts;
mod applications;
mod apps;
mod audit;
mod bindings;
mod channels;
mod configs;
mod notifications;
mod orders;
mod recon;
mod refunds;
mod stores;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};

use crate::access;
use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/admin/apps", get(apps::list).post(apps::create))
        .route("/api/admin/apps/{id}", get(apps::get))
        .route("/api/admin/apps/{id}/disable", post(apps::disable))
        .route("/api/admin/apps/{id}/enable", post(apps::enable))
        .route("/api/admin/apps/{id}/settings", post(apps::settings))
        .route("/api/admin/apps/{id}/rotate-key", post(apps::rotate_key))
        .route(
            "/api/admin/channel-configs",
            get(configs::list).post(configs::create),
        )
        .route("/api/admin/channel-configs/{id}", get(configs::get))
        .route(
            "/api/admin/channel-configs/{id}/disable",
            post(configs::disable),
        )
        .route(
            "/api/admin/channel-configs/{id}/enable",
            post(configs::enable),
        )
        .route(
            "/api/admin/channel-configs/{id}/credentials",
            post(configs::credentials),
        )
        .route("/api/admin/channel-configs/{id}/test", post(configs::test))
        .route(
            "/api/admin/channels",
            get(channels::list).post(channels::create),
        )
        .route("/api/admin/channels/{id}", get(channels::get))
        .route("/api/admin/channels/{id}/disable", post(channels::disable))
        .route("/api/admin/channels/{id}/enable", post(channels::enable))
        .route("/api/admin/stores", get(stores::list).post(stores::create))
        .route(
            "/api/admin/stores/{app_id}/{store_id}",
            get(stores::get).put(stores::rename),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/disable",
            post(stores::disable),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/enable",
            post(stores::enable),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/identities",
            get(stores::list_identities),
        )
        .route(
            "/api/admin/stores/{app_id}/{store_id}/identities/{config_id}",
            put(stores::put_identity).delete(stores::delete_identity),
        )
        .route(
            "/api/admin/bindings",
            get(bindings::list).post(bindings::apply),
        )
        .route("/api/admin/bindings/{id}/approve", post(bindings::approve))
        .route("/api/admin/bindings/{id}/reject", post(bindings::reject))
        .route("/api/admin/orders", get(orders::list))
        .route("/api/admin/orders/{id}", get(orders::get))
        .route("/api/admin/orders/{id}/sync", post(orders::sync))
        .route("/api/admin/orders/{id}/close", post(orders::close))
        .route("/api/admin/orders/{id}/refunds", post(orders::refund))
        .route("/api/admin/refunds", get(refunds::list))
        .route("/api/admin/refunds/{id}", get(refunds::get))
        .route("/api/admin/refund-applications", get(applications::list))
        .route(
            "/api/admin/refund-applications/{id}",
            get(applications::get),
        )
        .route(
            "/api/admin/refund-applications/{id}/approve",
            post(applications::approve),
        )
        .route(
            "/api/admin/refund-applications/{id}/reject",
            post(applications::reject),
        )
        .route("/api/admin/refunds/{id}/approve", post(refunds::approve))
        .route("/api/admin/refunds/{id}/reject", post(refunds::reject))
        .route("/api/admin/notifications", get(notifications::list))
        .route("/api/admin/notifications/{id}", get(notifications::get))
        .route(
            "/api/admin/notifications/{id}/resend",
            post(notifications::resend),
        )
        .route("/api/admin/reconciliations", get(recon::list))
        .route("/api/admin/reconciliations/run", post(recon::run))
        .route("/api/admin/reconciliations/findings", get(recon::findings))
        .route(
            "/api/admin/reconciliations/statement",
            get(recon::statement),
        )
        .route(
            "/api/admin/reconciliations/findings/{id}",
            get(recon::finding),
        )
        .route(
            "/api/admin/reconciliations/findings/{id}/resolve",
            post(recon::resolve),
        )
        .route("/api/admin/audit", get(audit::list))
        .route("/api/admin/me", get(accounts::me))
        .route(
            "/api/admin/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route("/api/admin/accounts/{id}", get(accounts::get))
        .route(
            "/api/admin/accounts/{id}/settings",
            post(accounts::settings),
        )
        .route(
            "/api/admin/accounts/{id}/password",
            post(accounts::reset_password),
        )
        .route(
            "/api/admin/accounts/{id}/totp/reset",
            post(accounts::reset_totp),
        )
        .route(
            "/api/admin/accounts/{id}/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route(
            "/api/admin/tokens/{id}/revoke",
            post(accounts::revoke_token),
        )
        .route_layer(from_fn_with_state(state, access::authenticate))
}

#[cfg(test)]
mod tests {
    //! The operator lists read their query string themselves (`ListQuery`:
    //! each parameter by its own rule, a refusal naming it); the SDK and
    //! the CLI send the contract's filter structs. Every name those send
    //! must be one the server reads — a name it did not read would be
    //! ignored silently, and the list would come back unfiltered.

    use axum::response::IntoResponse;
    use cashdesk_api::{
        BindingQuery, FindingQuery, NotificationQuery, OrderQuery, QueryPairs, ReconRunQuery,
        RefundQuery, StatementQuery,
    };
    use cashdesk_core::BindingState;

    use crate::error::ApiResult;
    use crate::input::ListQuery;

    /// Each name of `query` (every field set, so every name is sent),
    /// given a value no rule accepts, is refused with 4000 naming it.
    async fn every_name_is_read(
        query: &impl QueryPairs,
        filter: impl Fn(&ListQuery) -> ApiResult<()>,
    ) {
        let pairs = query.query_pairs();
        assert!(!pairs.is_empty());
        for (name, _) in pairs {
            let raw = format!("{name}=%01not-a-value");
            let err = filter(&ListQuery::parse(Some(&raw)))
                .expect_err(&format!("`{name}` is not read by the server"));
            let body = axum::body::to_bytes(err.into_response().into_body(), usize::MAX)
                .await
                .expect("body");
            let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(body["code"], 4000, "{name}: {body}");
            assert_eq!(body["data"]["field"], name.as_str(), "{body}");
        }
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    // The struct literals name every field, so a field added to a filter
    // does not compile here until it is set, and then it is checked.
    #[tokio::test]
    async fn the_contract_list_filters_name_what_the_server_reads() {
        every_name_is_read(
            &OrderQuery {
                app_id: some("a"),
                store_id: some("s"),
                state: some("SUCCESS"),
                out_trade_no: some("T1"),
                limit: Some(10),
                before: some("P1"),
            },
            |q| super::orders::filter(q).map(drop),
        )
        .await;
        every_name_is_read(
            &RefundQuery {
                app_id: some("a"),
                order_id: some("P1"),
                state: some("SUCCESS"),
                limit: Some(10),
                before: some("R1"),
            },
            |q| super::refunds::filter(q).map(drop),
        )
        .await;
        every_name_is_read(
            &BindingQuery {
                state: Some(BindingState::Pending),
                app_id: some("a"),
            },
            |q| super::bindings::filter(q).map(drop),
        )
        .await;
        every_name_is_read(
            &NotificationQuery {
                app_id: some("a"),
                order_id: some("P1"),
                state: some("FAILED"),
                limit: Some(10),
                before: some("N1"),
            },
            |q| super::notifications::filter(q).map(drop),
        )
        .await;
        every_name_is_read(
            &ReconRunQuery {
                date: some("2026-12-06"),
                config_id: some("C1"),
                state: some("DONE"),
                limit: Some(10),
            },
            |q| super::recon::run_filter(q).map(drop),
        )
        .await;
        every_name_is_read(
            &FindingQuery {
                date: some("2026-12-06"),
                config_id: some("C1"),
                kind: some("LOCAL_ONLY"),
                status: some("OPEN"),
                limit: Some(10),
                before: some("F1"),
            },
            |q| super::recon::finding_filter(q).map(drop),
        )
        .await;
        every_name_is_read(
            &StatementQuery {
                date: some("2026-12-06"),
                config_id: some("C1"),
                app_id: some("a"),
                store_id: some("s"),
                limit: Some(10),
            },
            |q| super::recon::statement_filter(q).map(drop),
        )
        .await;
    }
}
