CREATE TABLE IF NOT EXISTS {table} (
    id                 uuid PRIMARY KEY,
    command_type       text NOT NULL,
    aggregate          text,
    aggregate_id       text,
    org_id             uuid,
    status             text NOT NULL DEFAULT 'pending',
    code               text,
    reason             text,
    aggregate_version  bigint,
    events             integer,
    submitted_at       timestamptz,
    completed_at       timestamptz
);
