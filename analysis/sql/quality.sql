-- Images flagged by the quality thresholds (the rule column states each threshold), with the
-- keys of the flagged images (the first :top_n, in key order; all of them in the gallery).
-- stack() gives each image one row per flag in a single pass over the table.
WITH flagged AS (
  SELECT flag_order, flag, rule, hit, key
  FROM images
  LATERAL VIEW stack(
    4,
    1, 'blurry', concat('sharpness < ', :blurry_below), sharpness < :blurry_below,
    2, 'dark', concat('brightness < ', :dark_below), brightness < :dark_below,
    3, 'overexposed', concat('brightness > ', :overexposed_above),
      brightness > :overexposed_above,
    4, 'unmeasured', 'no features (process_error)', sharpness IS NULL OR brightness IS NULL
  ) flags AS flag_order, flag, rule, hit
)
SELECT
  flag,
  rule,
  count_if(hit) AS images,
  array_join(slice(array_sort(collect_list(IF(hit, key, NULL))), 1, :top_n), ', ') AS keys
FROM flagged
GROUP BY flag_order, flag, rule
ORDER BY flag_order
