//! The load: N merchant clients running an operation in a loop until the
//! time (or count) is up, optionally paced together at a total rate (open
//! loop: latency counts from the operation's slot), and the stages of each
//! operation — the unified order alone, `/healthz`, or the whole cycle
//! (order, payment, the sandbox's buyer pays, the merchant's notification).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cashdesk_sdk::{Client, CreateOrderRequest, PaymentRequest, SdkError};
use serde_json::json;
use tokio::sync::oneshot;

use super::STAGE_TIMEOUT;
use super::options::{BenchChannel, Scenario};
use super::receiver::ReceiverState;

pub(super) struct Ctx {
    pub(super) clients: Vec<Client>,
    /// Plain HTTP clients (the `/healthz` comparison), one per client.
    pub(super) plain: Vec<reqwest::Client>,
    pub(super) server_url: String,
    pub(super) channel: BenchChannel,
    pub(super) channel_id: String,
    pub(super) sandbox_url: String,
    pub(super) http: reqwest::Client,
    pub(super) receiver: Arc<ReceiverState>,
    /// Makes this run's outTradeNos unique in a reused database.
    pub(super) run: String,
    pub(super) seq: AtomicU64,
}

/// One measured operation.
#[derive(Default, Clone)]
pub(super) struct Sample {
    pub(super) order: Option<Duration>,
    pub(super) payment: Option<Duration>,
    pub(super) buyer: Option<Duration>,
    /// The order id and when the merchant got its notification.
    pub(super) order_id: Option<String>,
    pub(super) delivered_at: Option<Instant>,
    pub(super) total: Option<Duration>,
}

/// What one `drive` measured.
pub(super) struct Run {
    pub(super) elapsed: Duration,
    pub(super) samples: Vec<Sample>,
    pub(super) errors: BTreeMap<String, u64>,
}

/// Paces operations at a total rate: each gets the next slot.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// Waits for this operation's slot and returns it.
    async fn slot(&self) -> Instant {
        let slot = match self.next.lock() {
            Ok(mut next) => {
                let slot = (*next).max(Instant::now());
                *next = slot + self.interval;
                slot
            }
            Err(_) => Instant::now(),
        };
        tokio::time::sleep_until(slot.into()).await;
        slot
    }
}

/// What one client loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Load {
    Cycle,
    Order,
    Healthz,
}

impl From<Scenario> for Load {
    fn from(s: Scenario) -> Load {
        match s {
            Scenario::Cycle => Load::Cycle,
            Scenario::Order => Load::Order,
        }
    }
}

/// Runs `load` on every client until `duration` has passed (or `count`
/// operations have started), paced by `rate` when given.
pub(super) async fn drive(
    ctx: &Arc<Ctx>,
    load: Load,
    duration: Duration,
    count: Option<u64>,
    rate: Option<f64>,
) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let pacer = rate.map(|r| {
        Arc::new(Pacer {
            interval: Duration::from_secs_f64(1.0 / r),
            next: Mutex::new(started),
        })
    });
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.clients.len() {
        let ctx = ctx.clone();
        let pacer = pacer.clone();
        let issued = issued.clone();
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                if count.is_some_and(|c| issued.fetch_add(1, Ordering::Relaxed) >= c) {
                    break;
                }
                let start = match &pacer {
                    Some(p) => {
                        let slot = p.slot().await;
                        if slot >= deadline {
                            break;
                        }
                        slot
                    }
                    None => Instant::now(),
                };
                let done = match load {
                    Load::Cycle => cycle(&ctx, i, start).await,
                    Load::Order => order(&ctx, i, start).await,
                    Load::Healthz => healthz(&ctx, i, start).await,
                };
                match done {
                    Ok(s) => samples.push(s),
                    Err(kind) => *errors.entry(kind).or_default() += 1,
                }
            }
            (samples, errors)
        });
    }
    let mut run = Run {
        elapsed: Duration::ZERO,
        samples: Vec::new(),
        errors: BTreeMap::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((samples, errors)) => {
                run.samples.extend(samples);
                for (k, n) in errors {
                    *run.errors.entry(k).or_default() += n;
                }
            }
            Err(e) => *run.errors.entry(format!("client task: {e}")).or_default() += 1,
        }
    }
    run.elapsed = started.elapsed();
    run
}

/// A short, stable name for a failure (the errors-by-kind table).
fn kind(stage: &str, e: &SdkError) -> String {
    match e {
        SdkError::Api { status, code, .. } => format!("{stage}: HTTP {status}, code {code}"),
        SdkError::Http(e) if e.is_timeout() => format!("{stage}: timeout"),
        SdkError::Http(e) if e.is_connect() => format!("{stage}: connection refused"),
        SdkError::Http(_) => format!("{stage}: HTTP transport error"),
        SdkError::BadResponseSignature(_) => format!("{stage}: response signature rejected"),
        SdkError::InvalidBody(_) => format!("{stage}: unexpected body"),
        other => format!("{stage}: {other}"),
    }
}

impl Ctx {
    fn next_out_trade_no(&self) -> (u64, String) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (n, format!("B{}{n}", self.run))
    }

    fn forget(&self, order_id: &str) {
        if let Ok(mut w) = self.receiver.waiting.lock() {
            w.remove(order_id);
        }
    }
}

async fn order(ctx: &Ctx, client: usize, start: Instant) -> Result<Sample, String> {
    let (n, no) = ctx.next_out_trade_no();
    ctx.clients[client]
        .create_order(&CreateOrderRequest::new(
            &no,
            1 + (n % 1000) as i64,
            "bench",
        ))
        .await
        .map_err(|e| kind("order", &e))?;
    Ok(Sample {
        order: Some(start.elapsed()),
        total: Some(start.elapsed()),
        ..Sample::default()
    })
}

async fn healthz(ctx: &Ctx, client: usize, start: Instant) -> Result<Sample, String> {
    let resp = ctx.plain[client]
        .get(format!("{}/healthz", ctx.server_url))
        .send()
        .await
        .map_err(|e| {
            format!(
                "healthz: {}",
                if e.is_timeout() {
                    "timeout"
                } else {
                    "HTTP transport error"
                }
            )
        })?;
    let status = resp.status();
    let _ = resp.bytes().await;
    if !status.is_success() {
        return Err(format!("healthz: HTTP {}", status.as_u16()));
    }
    Ok(Sample {
        total: Some(start.elapsed()),
        ..Sample::default()
    })
}

async fn cycle(ctx: &Ctx, client: usize, start: Instant) -> Result<Sample, String> {
    let sdk = &ctx.clients[client];
    let (n, no) = ctx.next_out_trade_no();
    let created = sdk
        .create_order(&CreateOrderRequest::new(
            &no,
            1 + (n % 1000) as i64,
            "bench",
        ))
        .await
        .map_err(|e| kind("order", &e))?;
    let ordered = Instant::now();
    let mut req = PaymentRequest::new(&no, &ctx.channel_id);
    if matches!(ctx.channel, BenchChannel::WxV2Mini | BenchChannel::WxV3Mini) {
        req = req.with_openid("oBenchBuyer0000000000000000");
    }
    sdk.pay(&req).await.map_err(|e| kind("payment", &e))?;
    let paying = Instant::now();
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = ctx.receiver.waiting.lock() {
        w.insert(created.order_id.clone(), tx);
    }
    let answer = ctx
        .http
        .post(format!("{}/sandbox/api/pay", ctx.sandbox_url))
        .json(&json!({
            "channelType": ctx.channel.channel_type(),
            "outTradeNo": created.order_id,
            "result": "SUCCESS",
        }))
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => {
            let _ = r.bytes().await;
        }
        Ok(r) => {
            ctx.forget(&created.order_id);
            return Err(format!(
                "buyer pays (sandbox): HTTP {}",
                r.status().as_u16()
            ));
        }
        Err(_) => {
            ctx.forget(&created.order_id);
            return Err("buyer pays (sandbox): HTTP transport error".into());
        }
    }
    let paid = Instant::now();
    let delivered_at = match tokio::time::timeout(STAGE_TIMEOUT, rx).await {
        Ok(Ok(at)) => at,
        _ => {
            ctx.forget(&created.order_id);
            return Err("merchant notification: not received within 30 s".into());
        }
    };
    Ok(Sample {
        order: Some(ordered - start),
        payment: Some(paying - ordered),
        buyer: Some(paid - paying),
        order_id: Some(created.order_id),
        delivered_at: Some(delivered_at),
        total: Some(delivered_at.saturating_duration_since(start)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pacer_hands_out_slots_an_interval_apart() {
        let start = Instant::now();
        let pacer = Pacer {
            interval: Duration::from_millis(5),
            next: Mutex::new(start),
        };
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(pacer.slot().await);
        }
        // The first slot is the start, or now if that has passed; the next
        // ones are one interval apart, or later when the caller came late
        // (a slot never lies in the past, so a late client does not bunch
        // operations up).
        assert!(slots[0] >= start);
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(5), "{slots:?}");
        }
        assert!(Instant::now() >= slots[3]);
    }
}
