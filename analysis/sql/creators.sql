-- Contributions per creator: images, bytes and the creator's three most frequent labels.
WITH per_creator AS (
  SELECT coalesce(creator, 'unknown') AS creator, count(*) AS images, coalesce(sum(size), 0) AS bytes
  FROM images
  GROUP BY coalesce(creator, 'unknown')
),
creator_labels AS (
  SELECT
    creator,
    label,
    count(*) AS images,
    row_number() OVER (PARTITION BY creator ORDER BY count(*) DESC, label) AS rank
  FROM image_labels
  GROUP BY creator, label
)
SELECT
  p.creator,
  p.images,
  p.bytes,
  coalesce(
    array_join(
      transform(
        array_sort(collect_list(struct(l.rank, l.label, l.images)) FILTER (WHERE l.label IS NOT NULL)),
        x -> concat(x.label, ' (', x.images, ')')
      ),
      ', '
    ),
    ''
  ) AS top_labels
FROM per_creator AS p
LEFT JOIN creator_labels AS l
  ON l.creator = p.creator AND l.rank <= 3
GROUP BY p.creator, p.images, p.bytes
ORDER BY images DESC, creator
