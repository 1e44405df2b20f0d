-- Sharpness (variance of the Laplacian) distribution; 'unknown' counts unmeasured images.
-- Each image is tested against each bin (a few bins times the table: no join to plan), so
-- every bin is listed, with 0 where no image falls in it, once there are images.
WITH bins(bin_order, bin, low, high) AS (
  VALUES
    (0, '< 50', 0D, 50D),
    (1, '50-100', 50D, 100D),
    (2, '100-250', 100D, 250D),
    (3, '250-500', 250D, 500D),
    (4, '500-1000', 500D, 1000D),
    (5, '>= 1000', 1000D, 1e300D)
)
SELECT b.bin_order, b.bin, count_if(i.sharpness >= b.low AND i.sharpness < b.high) AS images
FROM bins AS b
CROSS JOIN images AS i
GROUP BY b.bin_order, b.bin
UNION ALL
SELECT 99 AS bin_order, 'unknown' AS bin, count(*) AS images
FROM images
WHERE sharpness IS NULL
HAVING count(*) > 0
ORDER BY bin_order
