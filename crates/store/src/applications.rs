//! Refund applications (issue 17 §2): a buyer's request for a refund,
//! made through the merchant's backend, decided once (compare-and-set, with
//! its audit entry in the same transaction), and the refund it leads to.

use async_trait::async_trait;
use cashdesk_core::{
    AppId, ApplicationId, Fen, OrderId, OutRefundNo, RefundApplicationState, RefundId,
};
use chrono::{DateTime, Utc};

use crate::audit::insert_audit_in;
use crate::common::{Backend, Sql, SqlStore, Tx};
use crate::rows::{Ts, app_id, corrupt, id};
use crate::{AuditEntry, Inserted, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundApplication {
    pub application_id: ApplicationId,
    pub app_id: AppId,
    pub order_id: OrderId,
    /// Also the refund's `outRefundNo` once approved.
    pub out_refund_no: OutRefundNo,
    pub amount: Fen,
    pub reason: String,
    pub buyer_remark: Option<String>,
    /// sha256 of what was asked (tells a repeat from another application).
    pub request_hash: String,
    pub state: RefundApplicationState,
    /// When the app's timeout decides, if nobody has.
    pub decide_by: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub remark: Option<String>,
    /// Decided by the timeout, not by a person.
    pub auto_decided: bool,
    pub refund_id: Option<RefundId>,
    /// Why the approved application's refund could not be made.
    pub refund_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A decision: from `APPLIED` to `to`.
#[derive(Debug, Clone)]
pub struct ApplicationDecision {
    pub to: RefundApplicationState,
    pub by: String,
    pub remark: Option<String>,
    pub auto: bool,
    pub at: DateTime<Utc>,
}

/// Which applications to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct ApplicationFilter {
    /// The principal's scope (`None`: every app).
    pub app_ids: Option<Vec<AppId>>,
    pub app_id: Option<AppId>,
    pub state: Option<RefundApplicationState>,
    pub before: Option<ApplicationId>,
    pub limit: u32,
}

#[async_trait]
pub trait RefundApplications: Send + Sync {
    /// Stores a new application, or answers the one the app already has
    /// under that `outRefundNo`.
    async fn insert_application(
        &self,
        a: &RefundApplication,
    ) -> Result<Inserted<RefundApplication>>;
    async fn get_application(&self, id: &ApplicationId) -> Result<Option<RefundApplication>>;
    async fn find_application(
        &self,
        app: &AppId,
        out_refund_no: &OutRefundNo,
    ) -> Result<Option<RefundApplication>>;
    /// `APPLIED → d.to` with `audit`, in one transaction; `None` if the
    /// application was no longer `APPLIED` (someone else decided).
    async fn decide_application(
        &self,
        id: &ApplicationId,
        d: &ApplicationDecision,
        audit: &AuditEntry,
    ) -> Result<Option<RefundApplication>>;
    /// Records the refund an approved application led to, or why it could
    /// not be made.
    async fn set_application_refund(
        &self,
        id: &ApplicationId,
        refund: std::result::Result<&RefundId, &str>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    async fn list_applications(&self, f: &ApplicationFilter) -> Result<Vec<RefundApplication>>;
    /// `APPLIED` past their `decide_by`, and `APPROVED` without a refund
    /// or an error (a decision whose refund was interrupted), oldest first.
    async fn due_applications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<RefundApplication>>;
}

const COLS: &str = "application_id, app_id, order_id, out_refund_no, amount, reason, buyer_remark, \
     request_hash, state, decide_by, decided_at, decided_by, remark, auto_decided, refund_id, \
     refund_error, created_at, updated_at";

#[async_trait]
impl<B: Backend> RefundApplications for SqlStore<B> {
    async fn insert_application(
        &self,
        a: &RefundApplication,
    ) -> Result<Inserted<RefundApplication>> {
        let sql = Sql::new(format!(
            "INSERT INTO refund_applications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
             ON CONFLICT (app_id, out_refund_no) DO NOTHING"
        ))
        .bind(a.application_id.as_str())
        .bind(a.app_id.as_str())
        .bind(a.order_id.as_str())
        .bind(a.out_refund_no.as_str())
        .bind(a.amount.get())
        .bind(a.reason.as_str())
        .bind(a.buyer_remark.as_deref())
        .bind(a.request_hash.as_str())
        .bind(a.state.as_str())
        .bind(a.decide_by)
        .bind(a.decided_at)
        .bind(a.decided_by.as_deref())
        .bind(a.remark.as_deref())
        .bind(a.auto_decided)
        .bind(a.refund_id.as_ref().map(RefundId::as_str))
        .bind(a.refund_error.as_deref())
        .bind(a.created_at)
        .bind(a.updated_at);
        if self.backend.execute(sql).await? == 1 {
            return Ok(Inserted::New(a.clone()));
        }
        self.find_application(&a.app_id, &a.out_refund_no)
            .await?
            .map(Inserted::Existing)
            .ok_or_else(|| {
                crate::StoreError::Corrupt(format!(
                    "refund application {} neither inserted nor found",
                    a.out_refund_no
                ))
            })
    }

    async fn get_application(&self, id: &ApplicationId) -> Result<Option<RefundApplication>> {
        let sql = Sql::new(format!(
            "SELECT {COLS} FROM refund_applications WHERE application_id = $1"
        ))
        .bind(id.as_str());
        self.one::<Raw, RefundApplication>(sql).await
    }

    async fn find_application(
        &self,
        app: &AppId,
        out_refund_no: &OutRefundNo,
    ) -> Result<Option<RefundApplication>> {
        let sql = Sql::new(format!(
            "SELECT {COLS} FROM refund_applications WHERE app_id = $1 AND out_refund_no = $2"
        ))
        .bind(app.as_str())
        .bind(out_refund_no.as_str());
        self.one::<Raw, RefundApplication>(sql).await
    }

    async fn decide_application(
        &self,
        id: &ApplicationId,
        d: &ApplicationDecision,
        audit: &AuditEntry,
    ) -> Result<Option<RefundApplication>> {
        let mut tx = self.backend.begin().await?;
        let sql = Sql::new(format!(
            "UPDATE refund_applications SET state = $1, decided_by = $2, remark = $3, \
             auto_decided = $4, decided_at = $5, updated_at = $5 \
             WHERE application_id = $6 AND state = $7 RETURNING {COLS}"
        ))
        .bind(d.to.as_str())
        .bind(d.by.as_str())
        .bind(d.remark.as_deref())
        .bind(d.auto)
        .bind(d.at)
        .bind(id.as_str())
        .bind(RefundApplicationState::Applied.as_str());
        let Some(raw) = tx.fetch_optional::<Raw>(sql).await? else {
            return Ok(None);
        };
        let decided = RefundApplication::try_from(raw)?;
        insert_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(decided))
    }

    async fn set_application_refund(
        &self,
        id: &ApplicationId,
        refund: std::result::Result<&RefundId, &str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (refund_id, error) = match refund {
            Ok(r) => (Some(r.as_str()), None),
            Err(e) => (None, Some(e)),
        };
        let sql = Sql::new(
            "UPDATE refund_applications SET refund_id = COALESCE($1, refund_id), \
             refund_error = $2, updated_at = $3 WHERE application_id = $4",
        )
        .bind(refund_id)
        .bind(error)
        .bind(now)
        .bind(id.as_str());
        self.backend.execute(sql).await?;
        Ok(())
    }

    async fn list_applications(&self, f: &ApplicationFilter) -> Result<Vec<RefundApplication>> {
        let mut sql = Sql::new("");
        let mut conds = Vec::new();
        conds.extend(sql.app_scope("app_id", f.app_ids.as_deref()));
        if let Some(a) = &f.app_id {
            conds.push(format!("app_id = {}", sql.push_arg(a.as_str())));
        }
        if let Some(s) = f.state {
            conds.push(format!("state = {}", sql.push_arg(s.as_str())));
        }
        if let Some(b) = &f.before {
            conds.push(format!("application_id < {}", sql.push_arg(b.as_str())));
        }
        let limit = sql.push_arg(i64::from(f.limit.clamp(1, 1000)));
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        sql.text = format!(
            "SELECT {COLS} FROM refund_applications {filter} \
             ORDER BY application_id DESC LIMIT {limit}"
        );
        self.all::<Raw, RefundApplication>(sql).await
    }

    async fn due_applications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<RefundApplication>> {
        let sql = Sql::new(format!(
            "SELECT {COLS} FROM refund_applications \
             WHERE (state = $1 AND decide_by <= $2) \
             OR (state = $3 AND refund_id IS NULL AND refund_error IS NULL) \
             ORDER BY decide_by LIMIT $4"
        ))
        .bind(RefundApplicationState::Applied.as_str())
        .bind(now)
        .bind(RefundApplicationState::Approved.as_str())
        .bind(i64::from(limit));
        self.all::<Raw, RefundApplication>(sql).await
    }
}

#[derive(sqlx::FromRow)]
struct Raw {
    application_id: String,
    app_id: String,
    order_id: String,
    out_refund_no: String,
    amount: i64,
    reason: String,
    buyer_remark: Option<String>,
    request_hash: String,
    state: String,
    decide_by: Ts,
    decided_at: Option<Ts>,
    decided_by: Option<String>,
    remark: Option<String>,
    auto_decided: bool,
    refund_id: Option<String>,
    refund_error: Option<String>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<Raw> for RefundApplication {
    type Error = crate::StoreError;

    fn try_from(r: Raw) -> Result<Self> {
        Ok(RefundApplication {
            application_id: id(
                "refund_applications.application_id",
                r.application_id,
                ApplicationId::parse,
            )?,
            app_id: app_id("refund_applications.app_id", r.app_id)?,
            order_id: id("refund_applications.order_id", r.order_id, OrderId::parse)?,
            out_refund_no: OutRefundNo::parse(&r.out_refund_no)
                .map_err(|_| corrupt("refund_applications.out_refund_no", &r.out_refund_no))?,
            amount: Fen::from_stored(r.amount),
            reason: r.reason,
            buyer_remark: r.buyer_remark,
            request_hash: r.request_hash,
            state: RefundApplicationState::parse(&r.state)
                .ok_or_else(|| corrupt("refund_applications.state", &r.state))?,
            decide_by: r.decide_by.0,
            decided_at: r.decided_at.map(|t| t.0),
            decided_by: r.decided_by,
            remark: r.remark,
            auto_decided: r.auto_decided,
            refund_id: r
                .refund_id
                .map(|s| id("refund_applications.refund_id", s, RefundId::parse))
                .transpose()?,
            refund_error: r.refund_error,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}
