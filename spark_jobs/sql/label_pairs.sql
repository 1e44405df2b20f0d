-- Label co-occurrence: unordered pairs (label_a < label_b) of labels on the same image,
-- counted once per image.
SELECT
  a.label AS label_a,
  b.label AS label_b,
  count(*) AS images
FROM image_labels AS a
JOIN image_labels AS b
  ON a.key = b.key AND a.label < b.label
GROUP BY a.label, b.label
ORDER BY images DESC, label_a, label_b
LIMIT :top_n
