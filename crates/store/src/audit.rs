//! The audit log: who did what to which object, newest first.

use async_trait::async_trait;

use crate::common::{Backend, Sql, SqlStore, Tx, page_size};
use crate::rows::{AUDIT_COLS, RawAudit, RawAuditRecord, json_text};
use crate::{AuditEntry, AuditFilter, AuditRecord, Result};

/// The audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn insert_audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
    /// The entries `filter` selects, with their ids, newest first.
    async fn find_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
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

    async fn find_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = Sql::new("");
        let mut cond = vec!["TRUE".to_owned()];
        if let Some(actor) = &f.actor {
            cond.push(format!("actor = {}", sql.push_arg(actor.as_str())));
        }
        // A prefix by its length: the same text on both engines, and no
        // LIKE (whose case rules differ between them).
        for (column, prefix) in [("action", &f.action_prefix), ("target", &f.target_prefix)] {
            if let Some(p) = prefix {
                let arg = sql.push_arg(p.as_str());
                cond.push(format!("substr({column}, 1, length({arg})) = {arg}"));
            }
        }
        if let Some(from) = f.from {
            cond.push(format!("at >= {}", sql.push_arg(from)));
        }
        if let Some(to) = f.to {
            cond.push(format!("at < {}", sql.push_arg(to)));
        }
        if let Some(before) = f.before {
            cond.push(format!("id < {}", sql.push_arg(before)));
        }
        let limit = sql.push_arg(i64::from(page_size(f.limit)));
        sql.text = format!(
            "SELECT id, {AUDIT_COLS} FROM audit WHERE {} ORDER BY id DESC LIMIT {limit}",
            cond.join(" AND ")
        );
        self.all::<RawAuditRecord, _>(sql).await
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
