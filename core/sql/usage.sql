-- add_usage --
-- Add amounts to the day's usage of agencies (by agency code); unknown codes are skipped.
INSERT INTO usage_daily (day, agency_id, metric, amount)
SELECT u.day, a.id, u.metric, sum(u.amount)
FROM unnest($1::date[], $2::text[], $3::text[], $4::bigint[]) AS u (day, agency, metric, amount)
JOIN agencies a ON a.code = u.agency
GROUP BY u.day, a.id, u.metric
ON CONFLICT (day, agency_id, metric)
DO UPDATE SET amount = usage_daily.amount + EXCLUDED.amount;
