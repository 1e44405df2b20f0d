-- Thumbnails for the report's gallery: for each top label, its most confident images
-- (up to :gallery_size) that have a thumbnail.
WITH top AS (
  SELECT label, count(*) AS label_images
  FROM image_labels
  GROUP BY label
  ORDER BY label_images DESC, label
  LIMIT :top_n
),
ranked AS (
  SELECT
    l.label,
    t.label_images,
    l.key,
    l.thumbnail_key,
    l.confidence,
    row_number() OVER (PARTITION BY l.label ORDER BY l.confidence DESC, l.key) AS rank
  FROM image_labels AS l
  JOIN top AS t ON l.label = t.label
  WHERE l.thumbnail_key IS NOT NULL
)
SELECT label, rank, key, thumbnail_key, confidence
FROM ranked
WHERE rank <= :gallery_size
ORDER BY label_images DESC, label, rank
