-- Password hashes, apart from the profile: no policy grants them to the API's tenant
-- role; only the login lookup (a system read) sees them.
CREATE TABLE IF NOT EXISTS {table} (
    email          text PRIMARY KEY,
    user_id        uuid NOT NULL,
    password_hash  text NOT NULL
);
