-- Images flagged by the quality thresholds (the rule column states each threshold).
SELECT 'blurry' AS flag, concat('sharpness < ', :blurry_below) AS rule,
  count_if(sharpness < :blurry_below) AS images
FROM images HAVING count(*) > 0
UNION ALL
SELECT 'dark', concat('brightness < ', :dark_below), count_if(brightness < :dark_below)
FROM images HAVING count(*) > 0
UNION ALL
SELECT 'overexposed', concat('brightness > ', :overexposed_above),
  count_if(brightness > :overexposed_above)
FROM images HAVING count(*) > 0
UNION ALL
SELECT 'unmeasured', 'no features (process_error)', count_if(sharpness IS NULL OR brightness IS NULL)
FROM images HAVING count(*) > 0
