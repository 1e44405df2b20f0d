-- The most frequent labels: images carrying the label (once per image), mean confidence.
-- The mean is taken over exact decimals: a sum of doubles depends, in its last bits, on how
-- the rows were split into partitions, which is enough to flip the rounding of a mean that
-- lies on a tie (x.xx5).
SELECT
  label,
  count(*) AS images,
  CAST(round(avg(try_cast(confidence AS DECIMAL(20, 10))), 2) AS DOUBLE) AS mean_confidence
FROM image_labels
GROUP BY label
ORDER BY images DESC, label
LIMIT :top_n
