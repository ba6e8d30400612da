-- One row per profile (a connection). Deleted profiles stay, with status `deleted`, like
-- targets. `schedule` is the domain's schedule as JSON (`interval_secs` or `cron`, and
-- `jitter_secs`), NULL for a manual-only profile.
CREATE TABLE IF NOT EXISTS {table} (
    id                  uuid PRIMARY KEY,
    org_id              uuid NOT NULL,
    name                text NOT NULL,
    source_kind         text NOT NULL,
    source_config       jsonb NOT NULL,
    credential_id       uuid,
    targets             uuid[] NOT NULL,
    schedule            jsonb,
    prune_interval_secs bigint NOT NULL,
    paused              boolean NOT NULL DEFAULT false,
    paused_reason       text,
    status              text NOT NULL,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_by          text NOT NULL,
    updated_at          timestamptz NOT NULL,
    aggregate_version   bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, created_at, id);
CREATE INDEX IF NOT EXISTS {table}_targets ON {table} USING gin (targets);
