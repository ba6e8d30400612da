-- OAuth authorizations in flight, one row per `start`. The `state` parameter carries a
-- signed copy of (provider, org, user, nonce, expiry); this row makes it single-use
-- (`used_at` is set exactly once, by the callback that wins) and says what the tokens
-- are for: a new credential (`credential_id` is the id it will get) or the
-- re-authorization of an existing one. Rows are operational, not domain state: they are
-- not on the log and are pruned a day after they expire.
DROP TABLE IF EXISTS oauth_states_used;
CREATE TABLE oauth_flows (
    nonce          uuid        PRIMARY KEY,
    provider       text        NOT NULL,
    org_id         uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    credential_id  uuid        NOT NULL,
    name           text        NOT NULL,
    reconnect      boolean     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX oauth_flows_expiry ON oauth_flows (expires_at);
