-- One row per document a profile's runs wrote to the documents topic: what was delivered,
-- as far as pruning needs to know. Keyed by the record key's parts; the last record wins.
CREATE TABLE IF NOT EXISTS {table} (
    profile_id  uuid NOT NULL,
    doc_id      text NOT NULL,
    org_id      uuid NOT NULL,
    -- true once the last record of the document was a deletion
    deleted     boolean NOT NULL,
    run_id      uuid,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (profile_id, doc_id)
);
