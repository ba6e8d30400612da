-- The shape each projection's active version was built with: a fingerprint of the code's
-- table definitions (ADR 0016). A projector whose code defines the tables differently
-- rebuilds the projection from the log before it projects, instead of failing on a
-- column that does not exist. NULL: recorded before this migration; the projector checks
-- the columns once and records it.
ALTER TABLE projections ADD COLUMN IF NOT EXISTS fingerprint text;

-- Fingerprints a rebuild replaced. A projector whose own fingerprint is listed here is
-- older than the tables it would write to, and refuses to start rather than rebuild them
-- back to its older shape.
ALTER TABLE projections ADD COLUMN IF NOT EXISTS replaced_fingerprints text[] NOT NULL DEFAULT '{}';
