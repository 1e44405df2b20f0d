-- The most frequent labels: images carrying the label (once per image), mean confidence.
SELECT
  label,
  count(*) AS images,
  round(avg(confidence), 2) AS mean_confidence
FROM image_labels
GROUP BY label
ORDER BY images DESC, label
LIMIT :top_n
