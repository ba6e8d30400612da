CREATE TABLE IF NOT EXISTS {table} (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL,
    email_index  text NOT NULL,
    -- Sealed under the org's key: shredded with the org.
    email        text NOT NULL,
    role         text NOT NULL,
    status       text NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text,
    accepted_by  uuid,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, created_at);
