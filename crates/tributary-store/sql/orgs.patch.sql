UPDATE {table} AS t SET
    name = COALESCE(u.name, t.name),
    deleted_at = COALESCE(u.deleted_at, t.deleted_at),
    updated_at = COALESCE(u.updated_at, t.updated_at),
    version = u.version
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[])
    AS u(id, name, deleted_at, updated_at, version)
WHERE t.id = u.id AND t.version < u.version
