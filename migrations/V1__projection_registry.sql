-- Which version of each projection's tables is live, and how far each version has read.
-- Projection tables are versioned (orgs_v1, orgs_v2, ...) so a rebuild can fill a new
-- version while the live one keeps serving; a view with the plain name points at the
-- active version.
CREATE TABLE projections (
    name            text PRIMARY KEY,
    active_version  integer NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Offsets are stored with the rows they produced, in the same transaction: a crash
-- can never apply a batch twice or skip one. Kafka offsets under transactions are not
-- contiguous, so this is the next offset to read, never "last + 1" arithmetic.
CREATE TABLE projection_offsets (
    projection   text    NOT NULL,
    version      integer NOT NULL,
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint  NOT NULL,
    PRIMARY KEY (projection, version, topic, partition)
);
