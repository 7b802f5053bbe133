-- restricted_among --
-- Which of some Datastreams are restricted (their changes go out on their own topics only).
SELECT id FROM datastreams WHERE access = 'restricted' AND id = ANY($1::bigint[]);

-- observation_datastreams --
-- The Datastream of each of some Observations.
SELECT id, datastream_id FROM observations WHERE id = ANY($1::bigint[]);
