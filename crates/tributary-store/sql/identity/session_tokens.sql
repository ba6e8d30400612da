-- Every refresh-token hash a session ever had, current or used: presenting a used one
-- must still find its session, so the session can revoke itself (theft detection).
CREATE TABLE IF NOT EXISTS {table} (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL
);
