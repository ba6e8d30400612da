-- The vault's key store: data keys, each wrapped by a key-encryption key (KEK) from
-- configuration. This is the one piece of state that is NOT derived from the log, on
-- purpose: the log is immutable, so the only way to make a value in it unreadable for
-- good (crypto-shredding) is to destroy the key it was encrypted with. A rebuild never
-- touches these tables. See docs/decisions/0010-vault.md.
--
-- Never granted to tributary_app: tenant queries cannot see wrapped keys at all.
CREATE TABLE vault_data_keys (
    scope        text        NOT NULL CHECK (scope IN ('org', 'user')),
    scope_id     uuid        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    kek_id       text        NOT NULL,
    wrapped      bytea       NOT NULL,
    -- Encryptions made with this key so far; the next one's nonce carries the next
    -- number, so nonces never repeat, and the key retires long before GCM's limit.
    encryptions  bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Set when a newer version took over new writes; a retired key still decrypts.
    retired_at   timestamptz,
    PRIMARY KEY (scope, scope_id, version)
);
CREATE INDEX vault_data_keys_by_kek ON vault_data_keys (kek_id);

-- Scopes whose keys were destroyed: tells "shredded" apart from "never had a key", and
-- stops a late write from creating a fresh key for a deleted org.
CREATE TABLE vault_shredded (
    scope        text        NOT NULL CHECK (scope IN ('org', 'user')),
    scope_id     uuid        NOT NULL,
    shredded_at  timestamptz NOT NULL DEFAULT now(),
    reason       text        NOT NULL,
    PRIMARY KEY (scope, scope_id)
);

-- Events about keys (created, rotated, re-wrapped, shredded), written in the same
-- transaction as the key change and relayed to the vault topic by the keeper, so no
-- key change goes unrecorded even if a process dies in between.
CREATE TABLE vault_outbox (
    seq          bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    org_id       uuid,
    subject      text        NOT NULL,
    data         jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- OAuth `state` values already used: a state is accepted once. Rows older than their
-- expiry are useless (the signature check refuses an expired state) and are pruned.
CREATE TABLE oauth_states_used (
    nonce        uuid        PRIMARY KEY,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz NOT NULL DEFAULT now()
);
