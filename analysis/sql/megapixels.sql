-- Megapixel distribution in fixed bins [low, high); 'unknown' counts images whose decode
-- failed.
-- Each image is tested against each bin (a few bins times the table: no join to plan), so
-- every bin is listed, with 0 where no image falls in it, once there are images.
WITH bins(bin_order, bin, low, high) AS (
  VALUES
    (0, '< 1 MP', 0D, 1D),
    (1, '1-2 MP', 1D, 2D),
    (2, '2-5 MP', 2D, 5D),
    (3, '5-8 MP', 5D, 8D),
    (4, '8-12 MP', 8D, 12D),
    (5, '12-16 MP', 12D, 16D),
    (6, '16-24 MP', 16D, 24D),
    (7, '>= 24 MP', 24D, 1e12D)
)
SELECT b.bin_order, b.bin, count_if(i.megapixels >= b.low AND i.megapixels < b.high) AS images
FROM bins AS b
CROSS JOIN images AS i
GROUP BY b.bin_order, b.bin
UNION ALL
SELECT 99 AS bin_order, 'unknown' AS bin, count(*) AS images
FROM images
WHERE megapixels IS NULL
HAVING count(*) > 0
ORDER BY bin_order
