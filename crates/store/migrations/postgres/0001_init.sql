-- cashdesk schema, PostgreSQL. Mirrors migrations/sqlite/0001_init.sql.
-- Times are TIMESTAMPTZ; sealed secrets BYTEA; JSON documents TEXT (the
-- store never looks inside them). Ids use COLLATE "C" so they sort by
-- bytes, as their time-ordered encoding intends, whatever the database's
-- default collation.

-- Small shared values (platform keys, …), written once.
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- Request nonces per app, for replay protection; purged after expiry.
CREATE TABLE nonces (
    app_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (app_id, nonce)
);
CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE apps (
    app_id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    app_name       TEXT NOT NULL,
    sign_type      TEXT NOT NULL,
    app_key_sealed BYTEA NOT NULL,
    public_key_pem TEXT,
    notify_url     TEXT,
    refund_review  BOOLEAN NOT NULL,
    enabled        BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

-- A merchant account at a channel; credentials sealed under the master key.
CREATE TABLE channel_configs (
    config_id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    channel_type       TEXT NOT NULL,
    name               TEXT NOT NULL,
    mch_id             TEXT NOT NULL,
    api_version        TEXT,
    credentials_sealed BYTEA NOT NULL,
    base_url           TEXT,
    enabled            BOOLEAN NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL
);

-- A payable channel: a config plus a scene.
CREATE TABLE channels (
    channel_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    config_id    TEXT COLLATE "C" NOT NULL REFERENCES channel_configs (config_id),
    scene_code   TEXT NOT NULL,
    channel_name TEXT NOT NULL,
    sort         INTEGER NOT NULL,
    enabled      BOOLEAN NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX channels_config_id ON channels (config_id);

-- An app's application to use a channel, app-wide (store_id = '') or for
-- one store. '' rather than NULL so the unique key holds for app-wide rows.
CREATE TABLE bindings (
    binding_id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    app_id          TEXT COLLATE "C" NOT NULL REFERENCES apps (app_id),
    channel_id      TEXT COLLATE "C" NOT NULL REFERENCES channels (channel_id),
    store_id        TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    auto_approve_at TIMESTAMPTZ,
    decided_at      TIMESTAMPTZ,
    decided_by      TEXT,
    UNIQUE (app_id, channel_id, store_id)
);
CREATE INDEX bindings_channel_id ON bindings (channel_id);
CREATE INDEX bindings_due ON bindings (auto_approve_at) WHERE state = 'PENDING';

-- Pay orders. Amounts in fen. The chosen channel (channel_id … scene_code)
-- is a snapshot taken when the order moves to PAYING.
CREATE TABLE orders (
    order_id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    app_id            TEXT COLLATE "C" NOT NULL REFERENCES apps (app_id),
    out_trade_no      TEXT NOT NULL,
    amount            BIGINT NOT NULL CHECK (amount > 0),
    order_title       TEXT NOT NULL,
    goods_desc        TEXT NOT NULL,
    third_party_user  TEXT NOT NULL,
    notify_url        TEXT,
    return_url        TEXT,
    store_id          TEXT,
    attach            TEXT,
    client_ip         TEXT,
    token             TEXT NOT NULL UNIQUE,
    expire_at         TIMESTAMPTZ NOT NULL,
    request_hash      TEXT NOT NULL,
    response          TEXT NOT NULL,
    state             TEXT NOT NULL,
    channel_id        TEXT COLLATE "C" REFERENCES channels (channel_id),
    channel_type      TEXT,
    config_id         TEXT COLLATE "C" REFERENCES channel_configs (config_id),
    mch_id            TEXT,
    scene_code        TEXT,
    transaction_id    TEXT,
    pay_time          TIMESTAMPTZ,
    refunded_amount   BIGINT NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    result_error_code TEXT,
    result_error_msg  TEXT,
    paid_after_close  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (app_id, out_trade_no)
);
CREATE INDEX orders_app_id ON orders (app_id, order_id);
CREATE INDEX orders_state ON orders (state, updated_at);

-- Operator actions, append-only.
CREATE TABLE audit (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
