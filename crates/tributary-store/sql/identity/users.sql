-- Personal data stays sealed under the user's own key (tributary-vault): the API opens
-- it when it answers. Once the user is forgotten the sealed columns are emptied, and a
-- rebuild from the log finds them unreadable anyway (the key is shredded).
CREATE TABLE IF NOT EXISTS {table} (
    id            uuid PRIMARY KEY,
    email_index   text NOT NULL,
    email         text,
    name          text,
    forgotten_at  timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_email_index ON {table} (email_index);
