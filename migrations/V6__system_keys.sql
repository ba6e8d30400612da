-- Keys of the installation itself live in the key store too: the email blind-index key
-- (scope 'system', never rotated or shredded, re-wrapped with every KEK rotation).
ALTER TABLE vault_data_keys DROP CONSTRAINT vault_data_keys_scope_check;
ALTER TABLE vault_data_keys ADD CONSTRAINT vault_data_keys_scope_check
    CHECK (scope IN ('org', 'user', 'system'));
