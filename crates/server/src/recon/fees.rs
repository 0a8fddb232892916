//! The channel's fee and rate per bill line, recorded per order or refund
//! id once a day's bills have been matched: a second read of each kept
//! file, streamed to the store in batches, so memory does not grow with
//! the bill.

use std::path::PathBuf;

use cashdesk_core::ConfigId;
use cashdesk_store::{LineFee, StoredBill};
use chrono::NaiveDate;

use super::files;
use super::matching::fee_e5;
use crate::service::error::{ServiceError, ServiceResult};
use crate::state::AppState;

/// Lines per batch written to the store.
const BATCH: usize = 1000;

/// Records the fee of every line of `bills` that states one; returns how
/// many.
pub async fn record(
    state: &AppState,
    config_id: &ConfigId,
    day: NaiveDate,
    bills: &[StoredBill],
) -> ServiceResult<u64> {
    let mut recorded = 0;
    for stored in bills {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<LineFee>>(4);
        let (dir, stored): (PathBuf, StoredBill) = (state.config.data_dir.clone(), stored.clone());
        let reader = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let read = files::read(&dir, &stored, |rec| {
                let Some(fee) = rec.fee.as_deref().and_then(fee_e5) else {
                    return;
                };
                batch.push(LineFee {
                    subject_id: rec.out_refund_no.unwrap_or(rec.out_trade_no),
                    fee_e5: fee,
                    rate: rec.rate,
                });
                if batch.len() == BATCH {
                    // The receiver is gone only when a write failed: that
                    // error is the one reported.
                    let _ =
                        tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                }
            });
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
            read
        });
        while let Some(batch) = rx.recv().await {
            state.store.record_fees(config_id, day, &batch).await?;
            recorded += batch.len() as u64;
        }
        reader.await.map_err(ServiceError::internal)?.map_err(|e| {
            ServiceError::internal(anyhow::anyhow!("re-reading a matched bill: {e}"))
        })?;
    }
    Ok(recorded)
}
