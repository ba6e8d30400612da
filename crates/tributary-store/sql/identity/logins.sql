-- Sign-in lookups by the blind index of the address, apart from the profile: no policy
-- grants them to the API's tenant role; only the login lookup (a system read) sees
-- them. The password hash is sealed under the user's key.
CREATE TABLE IF NOT EXISTS {table} (
    email_index    text PRIMARY KEY,
    user_id        uuid NOT NULL,
    password_hash  text NOT NULL
);
