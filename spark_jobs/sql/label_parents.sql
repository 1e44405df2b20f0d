-- Label hierarchy: a name counts for an image when it is one of the image's labels or a
-- parent of one. An image with Cat and Dog (both under Animal) counts once for Animal.
SELECT
  name,
  count(DISTINCT key) AS images
FROM (
  SELECT key, explode(array_union(array(label), parents)) AS name
  FROM image_labels
)
GROUP BY name
ORDER BY images DESC, name
LIMIT :top_n
