-- The order timeline (issue 16): what cashdesk asked a channel about an
-- order or a refund and what it answered, the channel notifications it
-- received for them, and the state changes they caused. PostgreSQL. Mirrors
-- migrations/sqlite/0008_order_events.sql.
--
-- Append-only. `summary` is a small JSON object (codes, states, amounts,
-- truncated messages; never a secret, a signature or a whole body),
-- capped by the store. Rows older than the retention (see events.rs) are
-- deleted by the housekeeping worker.
CREATE TABLE order_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   TEXT COLLATE "C" NOT NULL REFERENCES orders (order_id),
    refund_id  TEXT COLLATE "C" REFERENCES refunds (refund_id),
    at         TIMESTAMPTZ NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('CHANNEL_CALL', 'CHANNEL_NOTIFY', 'STATE')),
    operation  TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('OK', 'ERROR', 'REFUSED')),
    latency_ms BIGINT CHECK (latency_ms >= 0),
    summary    TEXT NOT NULL
);
CREATE INDEX order_events_order_id ON order_events (order_id, at, id);
CREATE INDEX order_events_at ON order_events (at);

-- The dashboard reads orders by creation time.
CREATE INDEX orders_created_at ON orders (created_at);
