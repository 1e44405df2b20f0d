"""The Python daemon of local sessions: pyspark's own, with pyspark imported from this environment.

Spark puts ``SPARK_HOME/python/lib/pyspark.zip``, py4j's zip and spark-core's jar first on its
Python workers' path, and every task calls ``importlib.invalidate_caches()``, which on this
Python (3.11) makes every zip importer re-read its whole archive directory: ~0.18 s of worker
CPU per task, whatever the task does. A local session runs the pyspark installed in this
environment (:func:`imgpipe.spark.local_session`), the same release as the zip, so its workers
import it from site-packages, where invalidating the caches costs next to nothing. Measured on
a mapInArrow that returns its input, 32 tasks over 120 rows: 5.9 s of worker CPU with Spark's
daemon, 0.8 s with this one. Set by ``local_session`` only (``spark.python.daemon.module``);
jobs on EMR keep Spark's own daemon.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def without_spark_archives() -> None:
    """Drop Spark's bundled zips and jars from the path when pyspark is importable without them.

    Their importers go too: ``invalidate_caches()`` walks every importer ever made, not only
    those of the entries on the path.
    """
    home = os.environ.get("SPARK_HOME")
    if not home:
        return
    inside = os.path.join(home, "")
    bundled = list(sys.path)
    kept = [entry for entry in bundled if not _archive_under(entry, inside)]
    if len(kept) == len(bundled):
        return
    sys.path[:] = kept
    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("py4j") is None:
        sys.path[:] = bundled  # not installed here: Spark's archives it is, at their cost
        return
    for key in [key for key in sys.path_importer_cache if _archive_under(key, inside)]:
        del sys.path_importer_cache[key]


def _archive_under(entry: str, home: str) -> bool:
    """Whether ``entry`` is inside a zip or jar under Spark's home (or is one)."""
    return entry.startswith(home) and any(
        part.endswith((".zip", ".jar")) for part in entry[len(home) :].split(os.sep)
    )


if __name__ == "__main__":
    without_spark_archives()
    from pyspark.daemon import manager

    manager()
