-- How far this projection has applied each org's events (its aggregate version), so a
-- request can wait until its own change is visible here (read-your-writes).
CREATE TABLE IF NOT EXISTS {table} (
    org_id   uuid PRIMARY KEY,
    version  bigint NOT NULL
);
