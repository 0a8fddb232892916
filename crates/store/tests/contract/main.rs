//! One contract suite for every `Store` backend.
//!
//! `cases.rs` holds each case once, written against `Arc<dyn Store>`;
//! [`contract!`] runs every case as `sqlite::<case>` (temporary file) and
//! `postgres::<case>` (a fresh database through `CASHDESK_TEST_POSTGRES_URL`,
//! skipped with a message when it is not set). `sqlite_only` covers what is
//! specific to opening SQLite.

mod cases;
mod harness;
mod sqlite_only;

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = crate::harness::TestDb::sqlite().await;
                    crate::cases::$case(&db).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(db) = crate::harness::TestDb::postgres().await else { return };
                    crate::cases::$case(&db).await;
                }
            )*
        }
    };
}

contract!(
    migrate_twice_is_a_no_op,
    settings_are_written_once,
    settings_race_has_one_winner,
    nonces_refuse_replays_until_expiry,
    nonce_race_has_one_winner,
    nonce_race_across_instances_has_one_winner,
    apps_round_trip,
    configs_and_channels_round_trip,
    bindings_are_unique_per_app_channel_store,
    decide_binding_is_compare_and_set,
    decide_binding_race_has_one_winner,
    approve_due_bindings_approves_only_due_ones,
    bound_channels_lists_only_payable_bindings,
    orders_insert_idempotently_and_look_up,
    insert_order_race_has_one_winner,
    transition_order_is_compare_and_set,
    transition_order_race_has_one_winner,
    list_orders_filters_and_pages,
    audit_is_listed_newest_first,
    accounts_round_trip_with_their_audit,
    account_changes_end_sessions_and_are_audited,
    login_failures_lock_and_race_without_losing_a_count,
    mp_token_refresh_is_claimed_once,
    tokens_are_found_by_hash_until_revoked,
    sessions_expire_by_idle_and_absolute_time,
    // scopes and searches
    app_scopes_narrow_every_listing,
    list_orders_finds_by_ids_buyer_channel_and_time,
    audit_is_found_by_actor_action_target_and_time,
    corrupt_rows_are_errors,
    // refunds
    refunds_insert_idempotently_and_check_refundable,
    insert_refund_race_respects_refundable,
    transition_refund_moves_money_with_its_notification,
    transition_refund_race_counts_once,
    a_decision_is_audited_with_its_change,
    // order transitions with their notification, polling, expiry
    transition_order_notify_is_atomic,
    transition_order_notify_race_writes_one_row,
    claim_orders_to_query_follows_the_schedule,
    claim_orders_race_hands_out_each_order_once,
    claim_refunds_to_query_follows_the_schedule,
    // the outbox and job leases
    a_new_notify_url_readdresses_undelivered_notifications,
    notification_attempts_are_recorded_under_the_lease,
    expired_notification_lease_is_taken_over,
    resend_keeps_the_notify_id,
    list_notifications_filters_and_pages,
    notification_claims_are_exclusive,
    notification_workers_deliver_each_once,
    job_leases_are_exclusive_and_expire,
    // stores and their identities
    stores_belong_to_an_app,
    store_identities_round_trip,
    store_identity_puts_race_to_one_row,
    orders_keep_the_identity_they_are_paid_with,
    list_orders_filters_by_store,
    // reconciliation
    recon_runs_restart_and_finish,
    findings_keep_resolutions_across_reruns,
    statements_are_replaced_per_day,
    recon_unpaid_sent_orders_are_the_unpaid_ones_that_went_to_the_config,
    recon_reads_paid_orders_and_successful_refunds_in_a_window,
    // the console: order timeline and dashboard
    order_events_are_listed_in_time_order_and_pruned,
    dashboard_stats_by_channel_app_store_and_day,
);
