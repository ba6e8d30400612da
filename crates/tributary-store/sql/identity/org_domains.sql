CREATE TABLE IF NOT EXISTS {table} (
    org_id  uuid NOT NULL,
    domain  text NOT NULL,
    PRIMARY KEY (org_id, domain)
);
CREATE INDEX IF NOT EXISTS {table}_domain ON {table} (domain);
