-- When each API key was last used. Operational telemetry, not domain state: written by
-- the API at most once a minute per key, never from the log, and not rebuilt.
CREATE TABLE api_key_usage (
    key_id        uuid PRIMARY KEY,
    org_id        uuid NOT NULL,
    last_used_at  timestamptz NOT NULL
);
ALTER TABLE api_key_usage ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON api_key_usage TO tributary_app;
CREATE POLICY tenant ON api_key_usage FOR SELECT TO tributary_app
    USING (org_id = tributary_current_org());
