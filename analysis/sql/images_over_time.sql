-- Images per month of the EXIF DateTimeOriginal; images without one are left out.
SELECT
  date_format(datetime_original, 'yyyy-MM') AS month,
  count(*) AS images
FROM images
WHERE datetime_original IS NOT NULL
GROUP BY date_format(datetime_original, 'yyyy-MM')
ORDER BY month
