-- Near duplicates: pairs of images (key_a < key_b) whose 64-bit pHashes differ in at most
-- :max_distance bits, leaving out exact copies (same checksum: see exact_duplicates).
-- Instead of comparing every pair, each hash is cut into :max_distance + 1 bands of bits and
-- images are joined on equal bands: by the pigeonhole principle two hashes that differ in
-- <= :max_distance bits agree on at least one band. The distance is then the bit_count of
-- the XOR of the two 32-bit halves (a 64-bit hash does not fit a signed BIGINT).
WITH hashed AS (
  SELECT
    key,
    checksum,
    lower(phash) AS phash,
    lpad(conv(phash, 16, 2), 64, '0') AS bits,
    CAST(conv(substr(phash, 1, 8), 16, 10) AS BIGINT) AS high,
    CAST(conv(substr(phash, 9, 8), 16, 10) AS BIGINT) AS low
  FROM images
  WHERE phash RLIKE '^[0-9a-fA-F]{16}$'
),
banded AS (
  SELECT h.*, band, substr(bits, band * width + 1, width) AS band_bits
  FROM hashed AS h
  LATERAL VIEW explode(sequence(0, :max_distance)) bands AS band
  LATERAL VIEW explode(array(CAST(ceil(64 / (:max_distance + 1)) AS INT))) widths AS width
),
pairs AS (
  SELECT DISTINCT
    a.key AS key_a,
    b.key AS key_b,
    a.phash AS phash_a,
    b.phash AS phash_b,
    bit_count(a.high ^ b.high) + bit_count(a.low ^ b.low) AS distance
  FROM banded AS a
  JOIN banded AS b
    ON a.band = b.band AND a.band_bits = b.band_bits AND a.key < b.key
  WHERE a.checksum <> b.checksum
)
SELECT key_a, key_b, distance, phash_a, phash_b
FROM pairs
WHERE distance <= :max_distance
ORDER BY distance, key_a, key_b
