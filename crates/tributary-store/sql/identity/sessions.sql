CREATE TABLE IF NOT EXISTS {table} (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    org_id      uuid NOT NULL,
    role        text NOT NULL,
    token_hash  text NOT NULL,
    status      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_token ON {table} (token_hash);
