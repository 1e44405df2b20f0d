-- Brightness (mean luma 0-255) in eight bins of 32; 'unknown' counts unmeasured images.
-- Each image is tested against each bin (a few bins times the table: no join to plan), so
-- every bin is listed, with 0 where no image falls in it, once there are images.
WITH bins AS (
  SELECT
    bin_order,
    concat(bin_order * 32, '-', bin_order * 32 + 31) AS bin,
    bin_order * 32D AS low,
    IF(bin_order = 7, 1e300D, bin_order * 32D + 32D) AS high
  FROM (SELECT explode(sequence(0, 7)) AS bin_order)
)
SELECT b.bin_order, b.bin, count_if(i.brightness >= b.low AND i.brightness < b.high) AS images
FROM bins AS b
CROSS JOIN images AS i
GROUP BY b.bin_order, b.bin
UNION ALL
SELECT 99 AS bin_order, 'unknown' AS bin, count(*) AS images
FROM images
WHERE brightness IS NULL
HAVING count(*) > 0
ORDER BY bin_order
