-- Mini-program access tokens (issue 17 §1), shared by every instance: the
-- token sealed under the master key (AAD `mp-token:<appid>`), when it
-- expires, and the lease of the one refresh in flight per AppID.
CREATE TABLE mp_access_tokens (
    appid          TEXT NOT NULL PRIMARY KEY,
    token_sealed   BLOB,
    expires_at     INTEGER,
    force_refresh  INTEGER NOT NULL CHECK (force_refresh IN (0, 1)),
    refresh_owner  TEXT,
    refresh_until  INTEGER,
    updated_at     INTEGER NOT NULL
) STRICT;
