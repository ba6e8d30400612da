-- Per-document failures of a run: what the source could not produce and what a
-- target dead-lettered.
CREATE TABLE IF NOT EXISTS {table} (
    run_id     uuid NOT NULL,
    org_id     uuid NOT NULL,
    seq        bigserial,
    doc_id     text NOT NULL,
    target_id  uuid,
    class      text NOT NULL,
    message    text NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (run_id, seq)
);
