-- Camera make and model from EXIF; 'unknown' where the image has none.
SELECT
  coalesce(nullif(trim(camera_make), ''), 'unknown') AS make,
  coalesce(nullif(trim(camera_model), ''), 'unknown') AS model,
  count(*) AS images
FROM images
GROUP BY 1, 2
ORDER BY images DESC, make, model
LIMIT :top_n
