-- Near duplicates: one row per image that has any, that is another image (not an exact copy:
-- same checksum, see exact_duplicates) whose 64-bit pHash differs in at most :max_distance
-- bits. The row names its closest one (the smallest key at the smallest distance) and counts
-- them all.
-- One row per image, not per pair: a collection can hold thousands of near-identical pictures
-- (a burst, screenshots of one app), and its pairs grow with the square of their number
-- (10,000 frames of 12 scenes: 4 million pairs, more than the driver could collect). The
-- comparisons are made between distinct hashes, and per-image figures from each hash's counts.
WITH hashed AS (
  SELECT
    key,
    checksum,
    -- Hex digits to lower case. Not lower(): its first call in a JVM loads ICU's case mappings,
    -- 3.1 s of a fresh local JVM's time (a third of analyze at 120 images), for six letters.
    translate(phash, 'ABCDEF', 'abcdef') AS phash,
    count(*) OVER (PARTITION BY checksum) AS copies
  FROM images
  WHERE phash RLIKE '^[0-9a-fA-F]{16}$'
),
ranked AS (
  SELECT *, min_by(checksum, key) OVER (PARTITION BY phash) AS first_checksum
  FROM hashed
),
-- Per distinct hash: its images, its smallest key, and the smallest key of other content than
-- that one's (the closest image for a copy of the smallest key's content). Copies always share
-- a hash: the features are computed once per checksum.
hashes AS (
  SELECT
    phash,
    count(*) AS images,
    min(key) AS first_key,
    first(first_checksum) AS first_checksum,
    min(key) FILTER (WHERE checksum <> first_checksum) AS other_key,
    lpad(conv(phash, 16, 2), 64, '0') AS bits,
    CAST(conv(substr(phash, 1, 8), 16, 10) AS BIGINT) AS high,
    CAST(conv(substr(phash, 9, 8), 16, 10) AS BIGINT) AS low
  FROM ranked
  GROUP BY phash
),
-- Instead of comparing every pair of hashes, each is cut into :max_distance + 1 bands of bits
-- and hashes are joined on equal bands: by the pigeonhole principle two hashes that differ in
-- <= :max_distance bits agree on at least one band. The distance is then the bit_count of the
-- XOR of the two 32-bit halves (a 64-bit hash does not fit a signed BIGINT).
banded AS (
  SELECT phash, band, substr(bits, band * width + 1, width) AS band_bits
  FROM hashes
  LATERAL VIEW explode(sequence(0, :max_distance)) bands AS band
  LATERAL VIEW explode(array(CAST(ceil(64 / (:max_distance + 1)) AS INT))) widths AS width
),
hash_pairs AS (
  SELECT DISTINCT a.phash, b.phash AS other
  FROM banded AS a
  JOIN banded AS b ON a.band = b.band AND a.band_bits = b.band_bits AND a.phash <> b.phash
),
-- Each hash's near hashes, both ways round, and itself at distance 0.
near AS (
  SELECT
    p.phash,
    bit_count(h.high ^ o.high) + bit_count(h.low ^ o.low) AS distance,
    o.images,
    o.first_key,
    o.first_checksum,
    o.other_key
  FROM hash_pairs AS p
  JOIN hashes AS h ON h.phash = p.phash
  JOIN hashes AS o ON o.phash = p.other
  UNION ALL
  SELECT phash, 0 AS distance, images, first_key, first_checksum, other_key
  FROM hashes
),
candidates AS (
  SELECT
    i.key,
    i.phash,
    i.copies,
    n.distance,
    n.images,
    -- Only the image's own hash can hold its copies (first_checksum is then its checksum).
    IF(n.first_checksum <> i.checksum, n.first_key, n.other_key) AS closest_key
  FROM hashed AS i
  JOIN near AS n ON n.phash = i.phash AND n.distance <= :max_distance
),
per_image AS (
  SELECT
    key,
    first(phash) AS phash,
    min(named_struct('distance', distance, 'key', closest_key))
      FILTER (WHERE closest_key IS NOT NULL) AS closest,
    -- Every image of a near hash, less the image's own content (itself and its copies).
    sum(images) - first(copies) AS near_duplicates
  FROM candidates
  GROUP BY key
)
SELECT key, closest.key AS closest, closest.distance AS distance, near_duplicates, phash
FROM per_image
WHERE near_duplicates > 0
ORDER BY distance, key
