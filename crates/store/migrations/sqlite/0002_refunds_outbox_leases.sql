-- Refunds, the merchant-notification outbox, poller scheduling and
-- cluster-wide leases (issue 4). SQLite. Mirrors
-- migrations/postgres/0002_refunds_outbox_leases.sql (times INTEGER unix
-- microseconds, STRICT tables).

-- The poller's schedule for PAYING orders: NULL means "first due a while
-- after updated_at" (see QuerySchedule in model.rs).
ALTER TABLE orders ADD COLUMN next_query_at INTEGER;
ALTER TABLE orders ADD COLUMN query_attempts INTEGER NOT NULL DEFAULT 0 CHECK (query_attempts >= 0);
CREATE INDEX orders_query_due ON orders (next_query_at, updated_at) WHERE state = 'PAYING';
CREATE INDEX orders_expiry ON orders (expire_at) WHERE state IN ('CREATED', 'PAYING');

-- Refunds. The sum of an order's refunds in PENDING_REVIEW, PROCESSING or
-- SUCCESS never exceeds the order's amount (checked in one transaction
-- holding the write lock, see common.rs).
CREATE TABLE refunds (
    refund_id         TEXT NOT NULL PRIMARY KEY,
    app_id            TEXT NOT NULL REFERENCES apps (app_id),
    order_id          TEXT NOT NULL REFERENCES orders (order_id),
    out_refund_no     TEXT NOT NULL,
    amount            INTEGER NOT NULL CHECK (amount > 0),
    reason            TEXT,
    notify_url        TEXT,
    state             TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    channel_refund_id TEXT,
    error_code        TEXT,
    error_msg         TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    next_query_at     INTEGER,
    query_attempts    INTEGER NOT NULL DEFAULT 0 CHECK (query_attempts >= 0),
    UNIQUE (app_id, out_refund_no)
) STRICT;
CREATE INDEX refunds_order_id ON refunds (order_id, state);
CREATE INDEX refunds_app_id ON refunds (app_id, refund_id);
CREATE INDEX refunds_query_due ON refunds (next_query_at, updated_at) WHERE state = 'PROCESSING';

-- The outbox: one row per merchant notification, written in the same
-- transaction as the state change it reports. Workers claim due rows with
-- a lease (lease_owner, lease_until).
CREATE TABLE notifications (
    notify_id       TEXT NOT NULL PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES apps (app_id),
    order_id        TEXT NOT NULL REFERENCES orders (order_id),
    refund_id       TEXT REFERENCES refunds (refund_id),
    notify_type     TEXT NOT NULL,
    url             TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX notifications_app_id ON notifications (app_id, notify_id);
CREATE INDEX notifications_order_id ON notifications (order_id);
CREATE INDEX notifications_refund_id ON notifications (refund_id);

-- Every delivery attempt, append-only.
CREATE TABLE notification_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notify_id        TEXT NOT NULL REFERENCES notifications (notify_id),
    at               INTEGER NOT NULL,
    owner            TEXT NOT NULL,
    http_status      INTEGER,
    latency_ms       INTEGER NOT NULL CHECK (latency_ms >= 0),
    response_excerpt TEXT,
    error            TEXT,
    outcome          TEXT NOT NULL,
    retry_at         INTEGER
) STRICT;
CREATE INDEX notification_attempts_notify_id ON notification_attempts (notify_id, id);

-- Cluster-wide leases for scheduled jobs: one holder per name at a time.
CREATE TABLE leases (
    name        TEXT NOT NULL PRIMARY KEY,
    owner       TEXT NOT NULL,
    lease_until INTEGER NOT NULL
) STRICT;
