-- Label hierarchy, shown once: each top-level name (a parent that has no parent of its own)
-- with the images under it and the labels below it, most frequent first. A name counts for
-- an image when it is one of the image's labels or a parent of one, once per image: an
-- image with Cat and Dog (both under Animal) counts once for Animal.
WITH names AS (
  SELECT DISTINCT key, name
  FROM image_labels
  LATERAL VIEW explode(array_union(array(label), parents)) n AS name
),
name_images AS (
  SELECT name, count(*) AS images
  FROM names
  GROUP BY name
),
edges AS (
  SELECT DISTINCT parent AS ancestor, label AS descendant
  FROM image_labels
  LATERAL VIEW explode(parents) p AS parent
  WHERE parent <> label
),
roots AS (
  SELECT DISTINCT e.ancestor AS root
  FROM edges AS e
  LEFT ANTI JOIN edges AS up ON up.descendant = e.ancestor
),
below AS (
  SELECT
    e.ancestor AS root,
    e.descendant AS name,
    n.images,
    row_number() OVER (PARTITION BY e.ancestor ORDER BY n.images DESC, e.descendant) AS rank
  FROM edges AS e
  JOIN roots AS r ON r.root = e.ancestor
  JOIN name_images AS n ON n.name = e.descendant
)
SELECT
  r.root AS parent,
  n.images,
  count(b.name) AS labels_below,
  array_join(
    transform(
      array_sort(collect_list(struct(b.rank, b.name, b.images))),
      x -> concat(x.name, ' (', x.images, ')')
    ),
    ', '
  ) AS labels
FROM roots AS r
JOIN name_images AS n ON n.name = r.root
LEFT JOIN below AS b ON b.root = r.root
GROUP BY r.root, n.images
ORDER BY images DESC, parent
LIMIT :top_n
