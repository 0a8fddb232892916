-- Key rotation (issue 13): an app's previous key stays valid until a
-- deadline after its key is replaced, and a channel config records when
-- its credentials last changed. SQLite. Mirrors
-- migrations/postgres/0005_key_rotation.sql.

-- The key the app had before its last rotation (sealed like app_key_sealed,
-- AAD `app:<appId>:key`; RSA2/SM2 apps: their previous public key), valid
-- for incoming signatures until previous_key_until (unix ms).
ALTER TABLE apps ADD COLUMN previous_key_sealed BLOB;
ALTER TABLE apps ADD COLUMN previous_public_key_pem TEXT;
ALTER TABLE apps ADD COLUMN previous_key_until INTEGER;
-- Whether the app has signed a request with its current key since the
-- rotation: until then cashdesk signs what it sends the app (shared-key
-- apps) with the previous key, which the merchant still has.
ALTER TABLE apps ADD COLUMN key_confirmed INTEGER NOT NULL DEFAULT 1
    CHECK (key_confirmed IN (0, 1));

ALTER TABLE channel_configs ADD COLUMN credentials_updated_at INTEGER;
