CREATE TABLE IF NOT EXISTS {table} (
    id        uuid PRIMARY KEY,
    org_id    uuid NOT NULL,
    type      text NOT NULL,
    actor     text,
    subject   text,
    at        timestamptz NOT NULL,
    detail    jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_org_at ON {table} (org_id, at, id);
