-- Row-level security for tenant data (ADR 0009).
--
-- Read-model tables are owned by the role that runs migrations and projectors. The API
-- reads tenant data as `tributary_app`, a role that owns nothing, has no login and does
-- not bypass row-level security: every tenant-scoped transaction starts with
-- `SET LOCAL ROLE tributary_app` and sets `app.current_org` (and `app.current_user`)
-- from the authenticated caller. Without the setting a policy matches no row.
DO $$
BEGIN
    CREATE ROLE tributary_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION
    -- Roles are cluster-wide: another database (another test) may have created it.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT tributary_app TO %I', current_user);
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO tributary_app;

-- The caller's org and user for this transaction, or NULL when unset.
CREATE FUNCTION tributary_current_org() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.current_org', true), '')::uuid $$;

CREATE FUNCTION tributary_current_user() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.current_user', true), '')::uuid $$;
