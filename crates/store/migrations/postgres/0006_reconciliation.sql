-- Reconciliation (issue 15): one run per (channel config, bill day) and
-- the findings of its latest matching. PostgreSQL. Mirrors
-- migrations/sqlite/0006_reconciliation.sql.

CREATE TABLE recon_runs (
    config_id TEXT COLLATE "C" NOT NULL REFERENCES channel_configs (config_id),
    -- The channel's day (China Standard Time), YYYY-MM-DD.
    bill_date TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('RUNNING', 'NOT_READY', 'FAILED', 'DONE')),
    attempts INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    -- The bill files kept in the data folder, JSON: [{scope, path, format,
    -- compression, sha1, size}] (one per sub-merchant in service-provider mode).
    bills TEXT NOT NULL DEFAULT '[]',
    lines BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL DEFAULT 0,
    paid_total BIGINT NOT NULL DEFAULT 0,
    refund_total BIGINT NOT NULL DEFAULT 0,
    -- Fees in 1/100000 yuan (WeChat states 5 decimals).
    fee_total BIGINT NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    next_try_at TIMESTAMPTZ,
    PRIMARY KEY (config_id, bill_date)
);

CREATE TABLE recon_findings (
    finding_id TEXT COLLATE "C" PRIMARY KEY,
    config_id TEXT COLLATE "C" NOT NULL,
    bill_date TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    -- What the finding is about, stable across reruns: `order:<id>`,
    -- `refund:<id>`, `trade:<channel id>`, `summary`.
    subject TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'REPAIRED', 'RESOLVED')),
    order_id TEXT COLLATE "C",
    refund_id TEXT COLLATE "C",
    channel_amount BIGINT,
    local_amount BIGINT,
    detail TEXT NOT NULL,
    -- The bill line and the local record as they were seen (JSON).
    evidence TEXT NOT NULL,
    note TEXT,
    resolved_by TEXT,
    resolved_at TIMESTAMPTZ,
    -- The run that last saw it (a rerun deletes the OPEN findings it no
    -- longer sees and keeps the others).
    seen_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (config_id, bill_date, kind, subject)
);
CREATE INDEX recon_findings_open ON recon_findings (kind) WHERE status = 'OPEN';
CREATE INDEX recon_findings_day ON recon_findings (bill_date, config_id);

-- The matching reads a config's payments and refunds by time.
CREATE INDEX orders_config_pay_time ON orders (config_id, pay_time) WHERE pay_time IS NOT NULL;
CREATE INDEX refunds_finished_at ON refunds (finished_at) WHERE state = 'SUCCESS';

-- The daily statement of a run: per app and store, what the channel's bill
-- moved for them (replaced by each run of the day).
CREATE TABLE recon_statements (
    config_id TEXT COLLATE "C" NOT NULL,
    bill_date TEXT COLLATE "C" NOT NULL,
    -- '' when the bill's line is no cashdesk order.
    app_id TEXT COLLATE "C" NOT NULL,
    store_id TEXT COLLATE "C" NOT NULL,
    channel_type TEXT NOT NULL,
    payments BIGINT NOT NULL,
    gross BIGINT NOT NULL,
    refunds BIGINT NOT NULL,
    refunded BIGINT NOT NULL,
    -- 1/100000 yuan.
    fees BIGINT NOT NULL,
    PRIMARY KEY (config_id, bill_date, app_id, store_id)
);
CREATE INDEX recon_statements_day ON recon_statements (bill_date, app_id);

-- The channel's fee and rate on each bill line, per cashdesk order or
-- refund id (the latest reconciliation that read it).
CREATE TABLE recon_fees (
    subject_id TEXT COLLATE "C" PRIMARY KEY,
    config_id TEXT COLLATE "C" NOT NULL,
    bill_date TEXT COLLATE "C" NOT NULL,
    -- 1/100000 yuan, negative on a refund.
    fee BIGINT NOT NULL,
    rate TEXT
);
