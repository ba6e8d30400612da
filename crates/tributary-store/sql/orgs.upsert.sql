INSERT INTO {table} AS t (id, slug, name, created_at, updated_at, deleted_at, version)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::bigint[])
ON CONFLICT (id) DO UPDATE SET
    slug = excluded.slug,
    name = excluded.name,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    deleted_at = excluded.deleted_at,
    version = excluded.version
WHERE t.version < excluded.version
