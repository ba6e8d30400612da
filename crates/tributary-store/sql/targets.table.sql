-- One row per target (a configured destination). Deleted targets stay, with status
-- `deleted`, so a waiter sees the deletion applied and a worker or deliverer can tell a
-- deleted target from one that never existed.
CREATE TABLE IF NOT EXISTS {table} (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL,
    config           jsonb NOT NULL,
    credential_id    uuid,
    status           text NOT NULL,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_by       text NOT NULL,
    updated_at       timestamptz NOT NULL,
    -- The target aggregate's version this row shows: the guard that makes a replayed
    -- event a no-op, and what read-your-writes waits on.
    aggregate_version bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, created_at, id);
CREATE INDEX IF NOT EXISTS {table}_credential ON {table} (credential_id)
    WHERE credential_id IS NOT NULL;
