-- An app setting: a payment that arrives for an order cashdesk already
-- closed (paidAfterClose) is refunded automatically. PostgreSQL. Mirrors
-- migrations/sqlite/0003_auto_refund_paid_after_close.sql.
ALTER TABLE apps ADD COLUMN auto_refund_paid_after_close BOOLEAN NOT NULL DEFAULT false;
