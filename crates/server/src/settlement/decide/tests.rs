//! `decide_order` / `decide_refund` against the state machines, and as a
//! store would apply them (compare-and-set on the row as it is, decided on
//! a read that may be stale), over any sequence of events.

use crate::access::Principal;
use cashdesk_core::{
    AppId, ChannelId, ChannelType, ConfigId, Fen, OrderId, OrderState, OutRefundNo, RefundId,
    RefundState, SceneCode,
};
use cashdesk_store::{Order, OrderChannel, Refund};
use chrono::{Duration, Utc};
use proptest::prelude::*;

use super::*;

fn order(state: OrderState) -> Order {
    let app_id = AppId::parse("app0123456789abcdef").expect("app id");
    Order {
        state,
        ..crate::service::test_order(app_id, "T1001", 1000, Utc::now())
    }
}

fn channel() -> OrderChannel {
    OrderChannel {
        channel_id: ChannelId::generate(),
        channel_type: ChannelType::WxPay,
        config_id: ConfigId::generate(),
        mch_id: "1900000109".into(),
        scene_code: SceneCode::Mini,
    }
}

fn paid(tx: &str) -> OrderEvent {
    OrderEvent::Paid {
        transaction_id: tx.into(),
        pay_time: Utc::now(),
        channel: Some(channel()),
        identity_sealed: None,
    }
}

fn refund(amount: i64, state: RefundState) -> Refund {
    let now = Utc::now();
    Refund {
        refund_id: RefundId::generate(),
        app_id: AppId::parse("app0123456789abcdef").expect("app id"),
        order_id: OrderId::generate(),
        out_refund_no: OutRefundNo::parse("RF1").expect("no"),
        amount: Fen::parse_positive("amount", amount).expect("fen"),
        reason: None,
        notify_url: None,
        state,
        request_hash: String::new(),
        channel_refund_id: None,
        error_code: None,
        error_msg: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        next_query_at: None,
        query_attempts: 0,
    }
}

#[test]
fn every_event_follows_the_state_machine() {
    let now = Utc::now();
    let events = [
        OrderEvent::PaymentStarted {
            channel: channel(),
            identity_sealed: None,
        },
        paid("42"),
        OrderEvent::PaymentFailed {
            code: "PAYERROR".into(),
            message: "no".into(),
        },
        OrderEvent::ClosedByChannel,
        OrderEvent::ClosedByMerchant,
        OrderEvent::Expired,
    ];
    for from in OrderState::ALL {
        for e in &events {
            if let Some(t) = decide_order(&order(*from), e, now) {
                assert!(from.can_become(t.to), "{from} -> {} by {}", t.to, e.name());
                assert!(t.from.contains(from));
                assert!(t.from.iter().all(|s| s.can_become(t.to)));
            }
        }
    }
    // The ones that matter, spelled out.
    let t = decide_order(&order(OrderState::Closed), &paid("42"), now).expect("paid after close");
    assert_eq!(
        (t.to, t.paid_after_close),
        (OrderState::Success, Some(true))
    );
    assert_eq!(t.from, [OrderState::Closed, OrderState::Failed]);
    let t = decide_order(&order(OrderState::Paying), &paid("42"), now).expect("paid");
    assert_eq!((t.to, t.paid_after_close), (OrderState::Success, None));
    assert!(decide_order(&order(OrderState::Success), &paid("42"), now).is_none());
    assert!(decide_order(&order(OrderState::Refunded), &OrderEvent::Expired, now).is_none());
    assert!(
        decide_order(
            &order(OrderState::Created),
            &OrderEvent::ClosedByChannel,
            now
        )
        .is_none()
    );
    let t = decide_order(&order(OrderState::Created), &OrderEvent::Expired, now).expect("expired");
    assert_eq!(t.from, [OrderState::Created, OrderState::Paying]);
}

#[test]
fn a_known_channel_is_kept_and_a_missing_one_recorded() {
    let now = Utc::now();
    let mut o = order(OrderState::Paying);
    o.channel = Some(channel());
    let t = decide_order(&o, &paid("42"), now).expect("paid");
    assert!(t.channel.is_none(), "the order's channel is not replaced");
    let t = decide_order(&order(OrderState::Created), &paid("42"), now).expect("paid");
    assert!(t.channel.is_some(), "recorded with the payment");
}

#[test]
fn refund_events_follow_the_refund_machine() {
    let now = Utc::now();
    let events = [
        RefundEvent::Approved {
            by: Principal::break_glass(None),
        },
        RefundEvent::Rejected {
            by: Principal::break_glass(None),
        },
        RefundEvent::Succeeded {
            channel_refund_id: Some("50".into()),
            success_time: now,
        },
        RefundEvent::Failed {
            channel_refund_id: None,
            code: "X".into(),
            message: "x".into(),
        },
        RefundEvent::Progress {
            channel_refund_id: Some("50".into()),
            problem: None,
        },
    ];
    for from in RefundState::ALL {
        for e in &events {
            if let Some(t) = decide_refund(&refund(10, *from), e, now) {
                assert!(from.can_become(t.to), "{from} -> {}", t.to);
            }
        }
    }
    let mut known = refund(10, RefundState::Processing);
    known.channel_refund_id = Some("50".into());
    let nothing_new = RefundEvent::Progress {
        channel_refund_id: Some("50".into()),
        problem: None,
    };
    assert!(
        decide_refund(&known, &nothing_new, now).is_none(),
        "no write without news"
    );
    let t = decide_refund(
        &refund(10, RefundState::PendingReview),
        &RefundEvent::Rejected {
            by: Principal::break_glass(None),
        },
        now,
    )
    .expect("rejected");
    assert_eq!(t.error_code.as_deref(), Some("REJECTED"));
    let audit = t.audit.expect("an operator's decision is audited with it");
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("admin", "refund.reject")
    );
    assert_eq!(audit.detail["state"], "REJECTED");
    let approved = decide_refund(
        &refund(10, RefundState::PendingReview),
        &RefundEvent::Approved {
            by: Principal {
                actor: "ops".into(),
                ..Principal::break_glass(None)
            },
        },
        now,
    )
    .expect("approved");
    let audit = approved.audit.expect("audited");
    assert_eq!(
        (audit.actor.as_str(), audit.action.as_str()),
        ("ops", "refund.approve")
    );
    // What the channel reports is not an operator's decision.
    let success = decide_refund(
        &refund(10, RefundState::Processing),
        &RefundEvent::Succeeded {
            channel_refund_id: None,
            success_time: now,
        },
        now,
    )
    .expect("succeeded");
    assert!(success.audit.is_none());
}

// --- any sequence of events, applied as the store applies them ---

fn order_event(i: u8) -> OrderEvent {
    match i % 7 {
        0 => OrderEvent::PaymentStarted {
            channel: channel(),
            identity_sealed: None,
        },
        1 => paid("4200001"),
        2 => paid("4200002"),
        3 => OrderEvent::PaymentFailed {
            code: "PAYERROR".into(),
            message: "declined".into(),
        },
        4 => OrderEvent::ClosedByChannel,
        5 => OrderEvent::ClosedByMerchant,
        _ => OrderEvent::Expired,
    }
}

/// What the store does with a transition: compare-and-set on the row as
/// it is now.
fn store_apply(row: &mut Order, t: &cashdesk_store::OrderTransition) -> bool {
    if !t.from.contains(&row.state) {
        return false;
    }
    row.state = t.to;
    if let Some(p) = t.paid_after_close {
        row.paid_after_close = p;
    }
    if t.transaction_id.is_some() {
        row.transaction_id = t.transaction_id.clone();
    }
    if t.channel.is_some() {
        row.channel = t.channel.clone();
    }
    true
}

proptest! {
    /// Whatever arrives, in whatever order, decided on fresh or stale
    /// reads: a paid order is never un-paid, its payment is recorded
    /// (and so notified) once, a closed order is closed once, and a close
    /// never follows a payment.
    #[test]
    fn orders_settle_once(steps in proptest::collection::vec((0u8..7, any::<bool>()), 1..40)) {
        let now = Utc::now();
        let mut row = order(OrderState::Created);
        let mut snapshots = vec![row.clone()];
        let (mut entered_success, mut entered_closed) = (0, 0);
        for (i, stale) in steps {
            let read = if stale { snapshots[snapshots.len() / 2].clone() } else { row.clone() };
            let was_paid = row.state.is_paid();
            let event = order_event(i);
            if let Some(t) = decide_order(&read, &event, now)
                && store_apply(&mut row, &t)
            {
                match t.to {
                    OrderState::Success => entered_success += 1,
                    OrderState::Closed => entered_closed += 1,
                    _ => {}
                }
                prop_assert!(!was_paid || row.state.is_paid(), "un-paid by {}", event.name());
            }
            snapshots.push(row.clone());
        }
        prop_assert!(entered_success <= 1, "paid {entered_success} times");
        prop_assert!(entered_closed <= 1, "closed {entered_closed} times");
        if row.state.is_paid() {
            prop_assert!(row.transaction_id.is_some());
        }
    }

    /// Refunds of one order, each stored within what is left to refund (the
    /// store's insert rule), then any sequence of events on any of them:
    /// each reaches a final state once, and what succeeded never exceeds
    /// the paid amount.
    #[test]
    fn refunds_never_exceed_the_payment(
        amounts in proptest::collection::vec(1i64..600, 1..6),
        steps in proptest::collection::vec((0usize..6, 0u8..5), 1..60),
    ) {
        let now = Utc::now();
        let paid_amount = 1000i64;
        let mut held = 0i64;
        let mut refunds: Vec<Refund> = Vec::new();
        for a in amounts {
            if held + a <= paid_amount {
                held += a;
                refunds.push(refund(a, RefundState::PendingReview));
            }
        }
        prop_assume!(!refunds.is_empty());
        let mut finals = vec![0u32; refunds.len()];
        let mut refunded = 0i64;
        for (which, e) in steps {
            let k = which % refunds.len();
            let event = match e {
                0 => RefundEvent::Approved {
            by: Principal::break_glass(None),
        },
                1 => RefundEvent::Rejected {
            by: Principal::break_glass(None),
        },
                2 => RefundEvent::Succeeded { channel_refund_id: Some("50".into()), success_time: now },
                3 => RefundEvent::Failed { channel_refund_id: None, code: "X".into(), message: "x".into() },
                _ => RefundEvent::Progress { channel_refund_id: Some("51".into()), problem: None },
            };
            let r = &mut refunds[k];
            if let Some(t) = decide_refund(r, &event, now)
                && t.from.contains(&r.state)
            {
                r.state = t.to;
                if t.channel_refund_id.is_some() {
                    r.channel_refund_id = t.channel_refund_id.clone();
                }
                if t.to.is_final() {
                    finals[k] += 1;
                    if t.to == RefundState::Success {
                        refunded += r.amount.get();
                    }
                }
            }
        }
        prop_assert!(finals.iter().all(|n| *n <= 1), "{finals:?}");
        prop_assert!(refunded <= paid_amount);
    }
}

#[test]
fn stale_reads_do_not_close_a_paid_order() {
    // Read while PAYING; the payment lands first; the close then loses.
    let now = Utc::now();
    let read = order(OrderState::Paying);
    let mut row = read.clone();
    let t = decide_order(&read, &paid("42"), now).expect("paid");
    assert!(store_apply(&mut row, &t));
    let close = decide_order(
        &read,
        &OrderEvent::ClosedByMerchant,
        now + Duration::seconds(1),
    )
    .expect("decided on the stale read");
    assert!(
        !store_apply(&mut row, &close),
        "the compare-and-set refuses"
    );
    assert_eq!(row.state, OrderState::Success);
}
