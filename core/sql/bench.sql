-- air_quality_streams --
-- The datastreams of the Stockholm air-quality stations, the ones `bench api` seeds.
SELECT ds.id FROM datastreams ds JOIN things t ON t.id = ds.thing_id
WHERE t.model = 'air-quality-station' ORDER BY ds.id;

-- seed_minutes --
-- One reading a minute for one datastream over [$2, $3), a slow wave plus noise.
INSERT INTO observations (phenomenon_time, datastream_id, result_number)
SELECT m, $1, round((30 + 20 * sin(extract(epoch FROM m) / 43200 * pi()) + random() * 5)::numeric, 1)
FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 minute',
                     interval '1 minute') AS m;
