-- Every rejected ingest object with its reason and the message for a person.
SELECT key, coalesce(reason, 'unknown') AS reason, message, size, quarantined_at
FROM quarantine
ORDER BY reason, key
