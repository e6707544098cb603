//! Retention: events accepted longer ago than `--retention`, whose
//! deliveries have all reached a final state, are deleted with their
//! deliveries and attempts, [`BATCH`] events per write through the
//! writer, so ingest goes on between batches. A pending delivery (and its
//! event) is never deleted, however old.

use crate::model::now_ms;
use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events deleted per write.
const BATCH: i64 = 500;

/// Purges until `cancel` fires: a pass every tenth of `retention` (at
/// least 100 ms, at most a minute), each pass in batches until nothing is
/// left to purge.
pub async fn run(store: Store, retention: Duration, cancel: CancellationToken) {
    let every = (retention / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let keep = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        loop {
            match store.purge(now_ms().saturating_sub(keep), BATCH).await {
                Ok(n) => {
                    metrics::counter!("hookgate_events_purged_total").increment(n);
                    if n < BATCH as u64 {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "retention pass failed; trying again later");
                    break;
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            // Let other writes in between batches.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
