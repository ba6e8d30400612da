-- Who did what to credentials and keys. `org_id` is NULL for installation-wide key
-- events (a KEK rotation), which every org's admins see.
CREATE TABLE IF NOT EXISTS {table} (
    id             uuid PRIMARY KEY,
    org_id         uuid,
    action         text NOT NULL,
    actor          text,
    credential_id  uuid,
    at             timestamptz NOT NULL,
    detail         jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_org_at ON {table} (org_id, at, id);
CREATE INDEX IF NOT EXISTS {table}_credential ON {table} (credential_id, at);
