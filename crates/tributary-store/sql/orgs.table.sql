CREATE TABLE IF NOT EXISTS {table} (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    version     bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_live_created ON {table} (created_at, id) WHERE deleted_at IS NULL;
