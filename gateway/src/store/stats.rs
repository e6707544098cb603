//! Counts for the dashboard: one organization's events and deliveries per
//! time bucket, its queue depth, and the destinations failing most. Each
//! query reads one organization's rows in the window from an index that
//! starts with the organization: deliveries per bucket from
//! `(organization_id, status, created, id)` alone (every status named, so
//! each is one range of the index and no row is read), failures from the
//! same index's two failure ranges.

use super::{Store, StoreError, with_pool};
use crate::model::{EpochMs, OrgId};
use std::collections::BTreeMap;

/// Counts in one time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Start, epoch ms.
    pub start: EpochMs,
    /// Events accepted.
    pub events: i64,
    /// Deliveries made in the bucket, by their status now.
    pub deliveries: BTreeMap<String, i64>,
}

/// A destination with failed or dead deliveries in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingDestination {
    /// The subscription or integration.
    pub target_id: String,
    /// The URL.
    pub endpoint: String,
    /// Failed and dead deliveries in the window.
    pub failures: i64,
    /// The most recent of their errors.
    pub last_error: Option<String>,
}

/// What the overview shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Oldest first, every bucket of the window (empty ones too).
    pub buckets: Vec<Bucket>,
    /// Deliveries waiting to be sent, now.
    pub pending: i64,
    /// The five destinations with the most failures in the window.
    pub failing: Vec<FailingDestination>,
}

/// What the four statements read: events per bucket, deliveries per
/// bucket and status, pending deliveries, failing destinations.
type StatsRows = (
    Vec<(i64, i64)>,
    Vec<(i64, String, i64)>,
    i64,
    Vec<(String, String, i64, Option<String>)>,
);

impl Store {
    /// `organization_id`'s counts in `count` buckets of `bucket_ms` ending now.
    pub async fn stats(
        &self,
        organization_id: &OrgId,
        now: EpochMs,
        bucket_ms: i64,
        count: i64,
    ) -> Result<Stats, StoreError> {
        let since = now - now.rem_euclid(bucket_ms) - bucket_ms * (count - 1);
        let org = organization_id.as_str();
        let (events, deliveries, pending, failing): StatsRows = with_pool!(self, |p| {
            tokio::try_join!(
            sqlx::query_as(
                "SELECT (created - $2) / $3, COUNT(*) FROM events \
                 WHERE organization_id = $1 AND created >= $2 GROUP BY 1"
            )
            .bind(org)
            .bind(since)
            .bind(bucket_ms)
            .fetch_all(p),
            sqlx::query_as(
                "SELECT (created - $2) / $3, status, COUNT(*) FROM deliveries \
                 WHERE organization_id = $1 \
                   AND status IN ('pending', 'delivered', 'failed', 'dead', 'dropped', 'cancelled') \
                   AND created >= $2 GROUP BY 1, 2"
            )
            .bind(org)
            .bind(since)
            .bind(bucket_ms)
            .fetch_all(p),
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE organization_id = $1 AND status = 'pending'"
            )
            .bind(org)
            .fetch_one(p),
            sqlx::query_as(
                // The inner LIMIT keeps SQLite from flattening the subquery
                // into a scan of every delivery in destination order (the
                // index that matches GROUP BY), and bounds the work.
                "SELECT f.target_id, MIN(f.endpoint), COUNT(*), \
                   (SELECT e.last_error FROM deliveries e WHERE e.organization_id = $1 \
                      AND e.target_id = f.target_id AND e.status IN ('failed', 'dead') \
                    ORDER BY e.created DESC, e.id DESC LIMIT 1) \
                 FROM (SELECT target_id, endpoint FROM deliveries WHERE organization_id = $1 \
                         AND status IN ('failed', 'dead') AND created >= $2 LIMIT 100000) f \
                 GROUP BY f.target_id ORDER BY COUNT(*) DESC, f.target_id LIMIT 5"
            )
            .bind(org)
            .bind(since)
            .fetch_all(p),
        )?
        });
        let mut buckets: Vec<Bucket> = (0..count)
            .map(|i| Bucket {
                start: since + i * bucket_ms,
                ..Bucket::default()
            })
            .collect();
        let slot = |index: i64| usize::try_from(index).ok();
        for (index, n) in events {
            if let Some(bucket) = slot(index).and_then(|i| buckets.get_mut(i)) {
                bucket.events = n;
            }
        }
        for (index, status, n) in deliveries {
            if let Some(bucket) = slot(index).and_then(|i| buckets.get_mut(i)) {
                bucket.deliveries.insert(status, n);
            }
        }
        Ok(Stats {
            buckets,
            pending,
            failing: failing
                .into_iter()
                .map(
                    |(target_id, endpoint, failures, last_error)| FailingDestination {
                        target_id,
                        endpoint,
                        failures,
                        last_error,
                    },
                )
                .collect(),
        })
    }
}

/// How a destination has been doing, from its most recent deliveries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationHealth {
    /// Deliveries looked at (at most the number asked for).
    pub deliveries: i64,
    /// Of those, delivered.
    pub delivered: i64,
    /// Of those, failed or dead.
    pub failed: i64,
    /// The 95th percentile of their last attempts' durations, ms.
    pub p95_ms: Option<i64>,
    /// The most recent error among them.
    pub last_error: Option<String>,
}

impl Store {
    /// The health of destination `endpoint` of route `target_id`, from its
    /// `recent` newest deliveries (the `(organization_id, target_id,
    /// created, id)` index, newest first; each last attempt by key).
    pub async fn destination_health(
        &self,
        organization_id: &OrgId,
        target_id: &str,
        endpoint: &str,
        recent: i64,
    ) -> Result<DestinationHealth, StoreError> {
        let rows: Vec<(String, Option<String>, Option<i64>)> = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT d.status, d.last_error, \
               (SELECT a.duration_ms FROM attempts a WHERE a.delivery_id = d.id \
                ORDER BY a.attempt DESC LIMIT 1) \
             FROM deliveries d WHERE d.organization_id = $1 AND d.target_id = $2 AND d.endpoint = $3 \
             ORDER BY d.created DESC, d.id DESC LIMIT $4"
        )
        .bind(organization_id.as_str())
        .bind(target_id)
        .bind(endpoint)
        .bind(recent)
        .fetch_all(p)
        .await?
        });
        let mut durations: Vec<i64> = rows.iter().filter_map(|r| r.2).collect();
        durations.sort_unstable();
        let p95_ms = (!durations.is_empty())
            .then(|| durations[(durations.len() * 95).div_ceil(100).saturating_sub(1)]);
        Ok(DestinationHealth {
            deliveries: rows.len() as i64,
            delivered: rows.iter().filter(|r| r.0 == "delivered").count() as i64,
            failed: rows
                .iter()
                .filter(|r| r.0 == "failed" || r.0 == "dead")
                .count() as i64,
            p95_ms,
            last_error: rows.iter().find_map(|r| r.1.clone()),
        })
    }
}
