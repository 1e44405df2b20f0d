-- Labels seen together: unordered pairs (label_a < label_b) of labels on the same image,
-- counted once per image. A pair where one label is an ancestor of the other (Cat + Mammal,
-- Rocket + Vehicle) says nothing new and is left out. Ancestry is what the labels' parents
-- record (Rekognition lists every ancestor), closed over one more step for labelers that
-- record only the direct parent (Cat -> Mammal -> Animal also excludes Cat + Animal).
WITH recorded AS (
  SELECT DISTINCT label AS descendant, parent AS ancestor
  FROM image_labels
  LATERAL VIEW explode(parents) p AS parent
),
ancestry AS (
  SELECT descendant, ancestor FROM recorded
  UNION
  SELECT a.descendant, b.ancestor
  FROM recorded AS a
  JOIN recorded AS b ON b.descendant = a.ancestor
),
pairs AS (
  SELECT a.key, a.label AS label_a, b.label AS label_b
  FROM image_labels AS a
  JOIN image_labels AS b
    ON a.key = b.key AND a.label < b.label
)
SELECT p.label_a, p.label_b, count(*) AS images
FROM pairs AS p
LEFT ANTI JOIN ancestry AS up
  ON up.descendant = p.label_a AND up.ancestor = p.label_b
LEFT ANTI JOIN ancestry AS down
  ON down.descendant = p.label_b AND down.ancestor = p.label_a
GROUP BY p.label_a, p.label_b
ORDER BY images DESC, label_a, label_b
LIMIT :top_n
