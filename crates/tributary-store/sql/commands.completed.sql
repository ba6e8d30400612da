-- The first outcome wins: a repeated command id is answered with it again.
INSERT INTO {table} AS t (id, command_type, aggregate, aggregate_id, org_id, status, code, reason, aggregate_version, events, completed_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::int[], $11::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    code = excluded.code,
    reason = excluded.reason,
    aggregate = excluded.aggregate,
    aggregate_id = excluded.aggregate_id,
    org_id = COALESCE(t.org_id, excluded.org_id),
    aggregate_version = excluded.aggregate_version,
    events = excluded.events,
    completed_at = excluded.completed_at
WHERE t.status = 'pending'
