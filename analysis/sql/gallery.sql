-- The report's gallery: every accepted image once, labelled or not. Exact copies share one
-- thumbnail, so they are one entry listing every key (and creator) that holds the content.
-- Labels are listed most confident first; flags name the quality thresholds an image fails.
WITH labelled AS (
  SELECT
    key,
    transform(
      array_sort(collect_list(struct(-confidence AS rank, label AS name))),
      x -> x.name
    ) AS labels
  FROM image_labels
  GROUP BY key
),
per_image AS (
  SELECT
    i.checksum,
    i.key,
    coalesce(i.creator, 'unknown') AS creator,
    i.thumbnail_key,
    i.process_error,
    coalesce(l.labels, array()) AS labels,
    filter(
      array(
        IF(i.sharpness < :blurry_below, 'blurry', NULL),
        IF(i.brightness < :dark_below, 'dark', NULL),
        IF(i.brightness > :overexposed_above, 'overexposed', NULL)
      ),
      f -> f IS NOT NULL
    ) AS flags
  FROM images AS i
  LEFT JOIN labelled AS l ON l.key = i.key
),
entries AS (
  SELECT
    checksum,
    array_sort(collect_set(key)) AS keys,
    array_sort(collect_set(creator)) AS creators,
    first(thumbnail_key, true) AS thumbnail_key,
    first(process_error, true) AS process_error,
    array_distinct(flatten(collect_list(labels))) AS labels,
    array_distinct(flatten(collect_list(flags))) AS flags
  FROM per_image
  GROUP BY checksum
)
SELECT checksum, keys, creators, thumbnail_key, process_error, labels, flags
FROM entries
ORDER BY size(labels) = 0, keys[0]
