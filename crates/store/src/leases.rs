//! Cluster-wide leases: a scheduled job runs on one instance at a time.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::Result;
use crate::common::{Backend, Sql, SqlStore};

/// Cluster-wide leases for scheduled jobs.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Take or extend the lease `name` for `owner` until `now + ttl`:
    /// `true` if it was free, expired (`lease_until <= now`) or already
    /// `owner`'s; `false` while another owner holds it. One statement, so
    /// exactly one of several racing instances gets a free lease.
    async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool>;
    /// Give the lease up if `owner` holds it; `true` if it did.
    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool>;
}

#[async_trait]
impl<B: Backend> Leases for SqlStore<B> {
    async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool> {
        // As use_nonce: one upsert whose WHERE decides; the database
        // serialises the key, so one racer sees a changed row.
        let sql = Sql::new(
            "INSERT INTO leases (name, owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
             lease_until = excluded.lease_until \
             WHERE leases.owner = excluded.owner OR leases.lease_until <= $4",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl)
        .bind(now);
        Ok(self.backend.execute(sql).await? == 1)
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<bool> {
        let sql = Sql::new("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner);
        Ok(self.backend.execute(sql).await? > 0)
    }
}
