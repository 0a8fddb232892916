-- Console accounts (issue 16): a role, the apps a merchant account is
-- scoped to (a JSON array of app ids; empty for other roles), an argon2id
-- password hash (PHC string), an optional TOTP secret sealed under the
-- master key (AAD `account:<id>:totp`), and the login throttle's state.
CREATE TABLE accounts (
    account_id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username            TEXT COLLATE "C" NOT NULL UNIQUE,
    role                TEXT NOT NULL,
    apps                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    totp_sealed         BYTEA,
    totp_enabled        BOOLEAN NOT NULL,
    disabled            BOOLEAN NOT NULL,
    failed_logins       INTEGER NOT NULL,
    locked_until        TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- API tokens of accounts: only the SHA-256 of the token is kept; the token
-- is shown once when created. A revoked token stays listed.
CREATE TABLE account_tokens (
    token_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account_id   TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id),
    name         TEXT NOT NULL,
    token_hash   TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX account_tokens_account ON account_tokens (account_id);

-- Console sessions: the SHA-256 of the cookie's value, never the value.
CREATE TABLE console_sessions (
    session_hash TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account_id   TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id),
    csrf         TEXT NOT NULL,
    ip           TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_account ON console_sessions (account_id);

-- Who did it, from where, and what changed: the role and client address
-- of the actor, and the object before and after (JSON, no secrets).
-- Entries written before this migration have none of them.
ALTER TABLE audit ADD COLUMN role TEXT;
ALTER TABLE audit ADD COLUMN ip TEXT;
ALTER TABLE audit ADD COLUMN before_json TEXT;
ALTER TABLE audit ADD COLUMN after_json TEXT;
CREATE INDEX audit_actor ON audit (actor, id);
