CREATE TABLE IF NOT EXISTS {table} (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL,
    kind             text NOT NULL,
    name             text NOT NULL,
    config           jsonb NOT NULL,
    version          integer NOT NULL,
    pending_version  integer,
    status           text NOT NULL,
    last_test        jsonb,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    -- The credential aggregate's version this row shows (read-your-writes waits on it).
    aggregate_version bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, id);
