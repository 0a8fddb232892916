-- Stores of an app and their merchant identities per channel config
-- (issue 5, multi-store). PostgreSQL. Mirrors migrations/sqlite/0004_stores.sql.

-- A store (a shop of a chain) belongs to one app: (app_id, store_id) is
-- its key. Orders and bindings name a store by store_id without a foreign
-- key: rows written before stores existed stay valid, and the service
-- layer refuses new orders and applications of unknown or disabled stores.
CREATE TABLE stores (
    app_id     TEXT COLLATE "C" NOT NULL REFERENCES apps (app_id),
    store_id   TEXT COLLATE "C" NOT NULL,
    name       TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (app_id, store_id)
);

-- A store's own merchant identity at one channel config (WeChat
-- service-provider sub-merchant, Lakala merchant_no/term_no, Alipay
-- app_auth_token): the channel-specific fields as a JSON object sealed
-- under the master key (AAD `store:<appId>:<storeId>:<configId>:identity`),
-- and the merchant id they amount to at the channel, in clear for display.
CREATE TABLE store_identities (
    app_id          TEXT COLLATE "C" NOT NULL,
    store_id        TEXT COLLATE "C" NOT NULL,
    config_id       TEXT COLLATE "C" NOT NULL REFERENCES channel_configs (config_id),
    mch_id          TEXT NOT NULL,
    identity_sealed BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (app_id, store_id, config_id),
    FOREIGN KEY (app_id, store_id) REFERENCES stores (app_id, store_id)
);
CREATE INDEX store_identities_config_id ON store_identities (config_id);

-- The identity an order is being paid with, copied (still sealed) from
-- store_identities when it moves to PAYING, so queries, closes and refunds
-- of that order keep using it even if the store's identity changes later.
ALTER TABLE orders ADD COLUMN store_identity_sealed BYTEA;
CREATE INDEX orders_store_id ON orders (app_id, store_id, order_id);
