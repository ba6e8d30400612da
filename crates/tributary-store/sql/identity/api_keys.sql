CREATE TABLE IF NOT EXISTS {table} (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    secret_hash  text NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL,
    created_by   text
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, created_at);
