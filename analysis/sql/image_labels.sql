-- Helper view: one row per (image, label). A label listed twice on one image counts once,
-- with its highest confidence and the union of its parents and categories.
SELECT
  key,
  coalesce(creator, 'unknown') AS creator,
  thumbnail_key,
  label.name AS label,
  max(label.confidence) AS confidence,
  array_distinct(flatten(collect_list(coalesce(label.parents, array())))) AS parents,
  array_distinct(flatten(collect_list(coalesce(label.categories, array())))) AS categories
FROM images
LATERAL VIEW explode(labels) exploded AS label
WHERE label.name IS NOT NULL
GROUP BY key, creator, thumbnail_key, label.name
