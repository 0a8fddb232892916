-- The reference shop's own tables (SQLite). Money in fen; times in unix
-- seconds.

-- `reserved` is held by PENDING orders; what can be sold is
-- `stock - reserved`. A payment takes both down by the order's quantity, a
-- close gives the reservation back.
CREATE TABLE goods (
    goods_id  TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    price     INTEGER NOT NULL CHECK (price > 0),
    stock     INTEGER NOT NULL,
    reserved  INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

-- `order_id` is the shop's order number and cashdesk's `outTradeNo`.
-- `gateway_request` is the create-order body exactly as first sent, so the
-- same order is asked for again with the same bytes (cashdesk answers a
-- repeated outTradeNo with the same body idempotently, another body 409).
CREATE TABLE orders (
    order_id          TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    openid            TEXT NOT NULL,
    goods_id          TEXT NOT NULL REFERENCES goods (goods_id),
    qty               INTEGER NOT NULL CHECK (qty > 0),
    amount            INTEGER NOT NULL CHECK (amount > 0),
    state             TEXT NOT NULL CHECK (state IN ('PENDING', 'PAID', 'CLOSED')),
    gateway_request   TEXT NOT NULL,
    gateway_order_id  TEXT,
    transaction_id    TEXT,
    paid_after_close  INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    reuse_until       INTEGER NOT NULL,
    settled_at        INTEGER
);

-- At most one pending order per user and goods: buy-now reuses it.
CREATE UNIQUE INDEX orders_one_pending ON orders (user_id, goods_id) WHERE state = 'PENDING';

-- Every verified notification, by cashdesk's notifyId: how often it came
-- and whether it changed anything (once at most per order and event).
CREATE TABLE notifications (
    notify_id     TEXT PRIMARY KEY,
    notify_type   TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    deliveries    INTEGER NOT NULL,
    applied       INTEGER NOT NULL,
    first_at      INTEGER NOT NULL,
    last_at       INTEGER NOT NULL
);
