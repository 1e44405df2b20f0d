-- Rejected ingest objects per reason code.
SELECT
  coalesce(reason, 'unknown') AS reason,
  count(*) AS objects
FROM quarantine
GROUP BY coalesce(reason, 'unknown')
ORDER BY objects DESC, reason
