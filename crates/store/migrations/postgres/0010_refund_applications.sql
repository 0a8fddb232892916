-- Refund applications (issue 17 §2): the buyer asks through the merchant's
-- backend, the app's policy says who decides (none | merchant | operator)
-- and what happens when nobody has within its days (approve | reject).
ALTER TABLE apps ADD COLUMN refund_application_mode TEXT NOT NULL DEFAULT 'merchant';
ALTER TABLE apps ADD COLUMN refund_application_days INTEGER NOT NULL DEFAULT 7;
ALTER TABLE apps ADD COLUMN refund_application_timeout TEXT NOT NULL DEFAULT 'reject';

-- One row per (app, outRefundNo); the refund it leads to has the same
-- outRefundNo. `request_hash` tells a repeated application from another
-- one with the same number; `decide_by` is when the timeout decides.
CREATE TABLE refund_applications (
    application_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    app_id         TEXT COLLATE "C" NOT NULL REFERENCES apps (app_id),
    order_id       TEXT COLLATE "C" NOT NULL REFERENCES orders (order_id),
    out_refund_no  TEXT COLLATE "C" NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    reason         TEXT NOT NULL,
    buyer_remark   TEXT,
    request_hash   TEXT NOT NULL,
    state          TEXT NOT NULL,
    decide_by      TIMESTAMPTZ NOT NULL,
    decided_at     TIMESTAMPTZ,
    decided_by     TEXT,
    remark         TEXT,
    auto_decided   BOOLEAN NOT NULL,
    refund_id      TEXT,
    refund_error   TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (app_id, out_refund_no)
);
CREATE INDEX refund_applications_due ON refund_applications (state, decide_by);
CREATE INDEX refund_applications_order ON refund_applications (order_id);
