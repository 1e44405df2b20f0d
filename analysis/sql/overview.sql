-- One row of collection totals. Rows with a process_error count here but have no features.
-- Each source is aggregated to one row and the three rows joined side by side (one Spark job;
-- a scalar subquery would run as a job of its own).
WITH totals AS (
  SELECT
    count(*) AS images,
    coalesce(sum(size), 0) AS bytes,
    count(DISTINCT coalesce(creator, 'unknown')) AS creators,
    count_if(process_error IS NOT NULL) AS process_errors
  FROM images
),
labelled AS (
  SELECT count(DISTINCT key) AS labeled_images, count(DISTINCT label) AS distinct_labels
  FROM image_labels
),
rejected AS (
  SELECT count(*) AS quarantined FROM quarantine
)
SELECT
  t.images,
  t.bytes,
  t.creators,
  l.labeled_images,
  l.distinct_labels,
  t.process_errors,
  r.quarantined
FROM totals AS t
CROSS JOIN labelled AS l
CROSS JOIN rejected AS r
