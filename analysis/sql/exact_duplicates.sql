-- Exact duplicates: images whose content checksum is shared by other keys. One row per image,
-- with the size of its group.
SELECT checksum, copies, key, creator
FROM (
  SELECT checksum, key, coalesce(creator, 'unknown') AS creator,
    count(*) OVER (PARTITION BY checksum) AS copies
  FROM images
)
WHERE copies > 1
ORDER BY copies DESC, checksum, key
