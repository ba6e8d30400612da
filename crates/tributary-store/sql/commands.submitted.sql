INSERT INTO {table} AS t (id, command_type, aggregate, aggregate_id, org_id, submitted_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
    submitted_at = COALESCE(LEAST(t.submitted_at, excluded.submitted_at), excluded.submitted_at)
