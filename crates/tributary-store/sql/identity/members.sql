CREATE TABLE IF NOT EXISTS {table} (
    org_id      uuid NOT NULL,
    user_id     uuid NOT NULL,
    email_index text NOT NULL,
    role        text NOT NULL,
    active      boolean NOT NULL,
    via         text NOT NULL,
    joined_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS {table}_user ON {table} (user_id);
