-- Images flagged by the quality thresholds (the rule column states each threshold), with the
-- keys of the flagged images (the first :top_n, in key order; all of them in the gallery).
WITH flagged AS (
  SELECT 1 AS flag_order, 'blurry' AS flag, concat('sharpness < ', :blurry_below) AS rule,
    sharpness < :blurry_below AS hit, key
  FROM images
  UNION ALL
  SELECT 2, 'dark', concat('brightness < ', :dark_below), brightness < :dark_below, key
  FROM images
  UNION ALL
  SELECT 3, 'overexposed', concat('brightness > ', :overexposed_above),
    brightness > :overexposed_above, key
  FROM images
  UNION ALL
  SELECT 4, 'unmeasured', 'no features (process_error)',
    sharpness IS NULL OR brightness IS NULL, key
  FROM images
)
SELECT
  flag,
  rule,
  count_if(hit) AS images,
  array_join(slice(array_sort(collect_list(IF(hit, key, NULL))), 1, :top_n), ', ') AS keys
FROM flagged
GROUP BY flag_order, flag, rule
ORDER BY flag_order
