-- Image formats (as detected at ingest) with their total bytes.
SELECT
  coalesce(format, 'unknown') AS format,
  count(*) AS images,
  coalesce(sum(size), 0) AS bytes
FROM images
GROUP BY coalesce(format, 'unknown')
ORDER BY images DESC, format
