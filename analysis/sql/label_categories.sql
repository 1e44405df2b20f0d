-- Rekognition label categories, each counted once per image.
SELECT
  category,
  count(DISTINCT key) AS images
FROM (
  SELECT key, explode(categories) AS category
  FROM image_labels
)
GROUP BY category
ORDER BY images DESC, category
LIMIT :top_n
