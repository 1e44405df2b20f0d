-- One row of collection totals. Rows with a process_error count here but have no features.
SELECT
  count(*) AS images,
  coalesce(sum(size), 0) AS bytes,
  count(DISTINCT coalesce(creator, 'unknown')) AS creators,
  (SELECT count(DISTINCT key) FROM image_labels) AS labeled_images,
  (SELECT count(DISTINCT label) FROM image_labels) AS distinct_labels,
  count_if(process_error IS NOT NULL) AS process_errors,
  (SELECT count(*) FROM quarantine) AS quarantined
FROM images
