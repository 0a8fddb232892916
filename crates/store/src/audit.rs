//! The audit log: who did what to which object, newest first.

use async_trait::async_trait;

use crate::common::{Backend, Sql, SqlStore, Tx, page_size};
use crate::rows::{AUDIT_COLS, RawAudit, json_text};
use crate::{AuditEntry, Result};

/// The audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn insert_audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
}

#[async_trait]
impl<B: Backend> Audit for SqlStore<B> {
    async fn insert_audit(&self, e: &AuditEntry) -> Result<()> {
        self.backend.execute(insert_sql(e)?).await?;
        Ok(())
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let sql = Sql::new(format!(
            "SELECT {AUDIT_COLS} FROM audit ORDER BY id DESC LIMIT $1"
        ))
        .bind(i64::from(page_size(limit)));
        self.all::<RawAudit, _>(sql).await
    }
}

fn insert_sql(e: &AuditEntry) -> Result<Sql> {
    Ok(Sql::new(format!(
        "INSERT INTO audit ({AUDIT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(e.at)
    .bind(e.actor.as_str())
    .bind(e.action.as_str())
    .bind(e.target.as_str())
    .bind(json_text("audit.detail", &e.detail)?)
    .bind(e.role.as_deref())
    .bind(e.ip.as_deref())
    .bind(optional_json("audit.before_json", e.before.as_ref())?.as_deref())
    .bind(optional_json("audit.after_json", e.after.as_ref())?.as_deref()))
}

fn optional_json(column: &str, v: Option<&serde_json::Value>) -> Result<Option<String>> {
    v.map(|v| json_text(column, v)).transpose()
}

/// Writes `entry` in `tx`: the audit entry of a state change commits or
/// rolls back with it.
pub(crate) async fn insert_audit_in<X: Tx>(tx: &mut X, entry: &AuditEntry) -> Result<()> {
    tx.execute(insert_sql(entry)?).await?;
    Ok(())
}
