-- An app setting: a payment that arrives for an order cashdesk already
-- closed (paidAfterClose) is refunded automatically. SQLite. Mirrors
-- migrations/postgres/0003_auto_refund_paid_after_close.sql.
ALTER TABLE apps ADD COLUMN auto_refund_paid_after_close INTEGER NOT NULL DEFAULT 0
    CHECK (auto_refund_paid_after_close IN (0, 1));
