-- One row per sync run: its phase or outcome, attempt, counts and progress, kept up to
-- date from the sync aggregate's events.
CREATE TABLE IF NOT EXISTS {table} (
    id                uuid PRIMARY KEY,
    org_id            uuid NOT NULL,
    profile_id        uuid NOT NULL,
    mode              text NOT NULL,
    trigger           text NOT NULL,
    -- queued, running, interrupted, succeeded, completed_with_errors, failed, canceled
    state             text NOT NULL,
    attempt           integer NOT NULL DEFAULT 0,
    worker            text,
    stalled           boolean NOT NULL DEFAULT false,
    stalled_reason    text,
    seq               bigint NOT NULL DEFAULT 0,
    documents         bigint NOT NULL DEFAULT 0,
    deletions         bigint NOT NULL DEFAULT 0,
    source_failed     bigint NOT NULL DEFAULT 0,
    delivered         bigint NOT NULL DEFAULT 0,
    delivery_failed   bigint NOT NULL DEFAULT 0,
    -- {target id: {delivered, failed}}
    targets           jsonb NOT NULL,
    checkpoint        jsonb,
    progress_done     bigint NOT NULL DEFAULT 0,
    progress_total    bigint,
    source_done       boolean NOT NULL DEFAULT false,
    error             jsonb,
    canceled_by       text,
    slot              timestamptz,
    requested_at      timestamptz NOT NULL,
    started_at        timestamptz,
    -- The last batch or delivery report: a run whose progress stops is flagged stalled.
    last_progress_at  timestamptz,
    -- The last sign of life from the worker holding it: when these stop, it is
    -- interrupted and another worker resumes it.
    heartbeat_at      timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, requested_at DESC, id);
CREATE INDEX IF NOT EXISTS {table}_profile ON {table} (profile_id, requested_at DESC);
CREATE INDEX IF NOT EXISTS {table}_active ON {table} (state) WHERE finished_at IS NULL;
