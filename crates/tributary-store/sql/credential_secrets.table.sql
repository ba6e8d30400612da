-- One row per secret field of a credential's current and pending version: ciphertext
-- (never plaintext), the mask the API shows, and the data-key version it is sealed
-- under (for the encryption report and re-encryption). `shredded` when the org's keys
-- were destroyed: the ciphertext is then unreadable for good.
CREATE TABLE IF NOT EXISTS {table} (
    org_id          uuid NOT NULL,
    credential_id   uuid NOT NULL,
    secret_version  integer NOT NULL,
    field           text NOT NULL,
    sealed          text NOT NULL,
    mask            text NOT NULL,
    key_version     integer NOT NULL,
    shredded        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (credential_id, secret_version, field)
);
CREATE INDEX IF NOT EXISTS {table}_org_key ON {table} (org_id, key_version);
