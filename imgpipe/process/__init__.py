"""The process stage: image records + image bytes -> JPEG thumbnails + the Parquet image table.

Split by concern: :mod:`~imgpipe.process.transforms` (pure ``DataFrame -> DataFrame`` steps),
:mod:`~imgpipe.process.kernel` (the Arrow batch function that decodes each image once on the
executors), :mod:`~imgpipe.process.manifest` (what the table was built from, so an unchanged
input skips the stage) and :mod:`~imgpipe.process.stage` (:func:`run_process`, the reads and
writes). Nothing is imported here: pyspark is slow to import and only the stage needs it.
"""
