-- One row per document dead letter, from the `recorded` and `redriven` events on
-- `<prefix>.dead-letter.events`. The document itself stays in the dead-letter record
-- (`letter_*`); a redrive reads it from there.
CREATE TABLE IF NOT EXISTS {table} (
    id                 uuid PRIMARY KEY,
    org_id             uuid NOT NULL,
    profile_id         uuid,
    run_id             uuid,
    target_id          uuid,
    doc_id             text,
    -- upsert or delete
    op                 text,
    -- permanent, transient, rate_limited or malformed
    class              text NOT NULL,
    -- Redacted by the sink that failed: never a secret.
    message            text NOT NULL,
    stage              text NOT NULL,
    attempts           integer NOT NULL,
    first_failure      timestamptz NOT NULL,
    last_failure       timestamptz NOT NULL,
    letter_topic       text NOT NULL,
    letter_partition   integer NOT NULL,
    letter_offset      bigint NOT NULL,
    original_topic     text NOT NULL,
    original_partition integer NOT NULL,
    original_offset    bigint NOT NULL,
    -- The dead letter whose redrive failed again into this one.
    redrive_of         uuid,
    -- dead or redriven
    state              text NOT NULL,
    redriven_at        timestamptz,
    redriven_by        text
);
CREATE INDEX IF NOT EXISTS {table}_org ON {table} (org_id, last_failure DESC, id DESC);
CREATE INDEX IF NOT EXISTS {table}_target ON {table} (org_id, target_id, state);
CREATE INDEX IF NOT EXISTS {table}_run ON {table} (org_id, run_id, state);
