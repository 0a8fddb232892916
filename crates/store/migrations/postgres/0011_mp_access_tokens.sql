-- Mini-program access tokens (issue 17 §1), shared by every instance: the
-- token sealed under the master key (AAD `mp-token:<appid>`), when it
-- expires, and the lease of the one refresh in flight per AppID.
CREATE TABLE mp_access_tokens (
    appid          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    token_sealed   BYTEA,
    expires_at     TIMESTAMPTZ,
    force_refresh  BOOLEAN NOT NULL,
    refresh_owner  TEXT,
    refresh_until  TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL
);
