"""A class-data-sharing archive for the local Spark JVM: made once, then mapped at each start.

Starting Spark loads and verifies ~10,000 classes from pyspark's jars; that is most of the
JVM's CPU before a local run's first job. An AppCDS archive (JDK 13+, ``-XX:SharedArchiveFile``)
holds those classes already parsed and verified, and the JVM maps it instead (measured on this
project's 2-core machine: the session's JVM CPU 4.5-5.7 -> 2.6-2.9 s, the first job's 2.9-4.0 ->
1.4-1.9 s). The JDK writes the archive itself (``-XX:ArchiveClassesAtExit``) when a JVM that
asked for it exits normally, so the first local run that finds none asks for it and, at its end,
stops its JVM and waits for the file (:func:`imgpipe.spark.finish_class_archive`); every
later run maps it.

One archive per JDK and pyspark installation, in ``$IMGPIPE_CACHE_DIR`` (default
``$XDG_CACHE_HOME/imgpipe`` or ``~/.cache/imgpipe``); ``IMGPIPE_CLASS_ARCHIVE=0`` turns it off.
The archive is named by the JDK's and the jars' sizes and modification times, which the JVM
checks it against, so a reinstalled environment writes its own. Should one still not match, the
JVM ignores it (``-Xshare:auto``, the default), never an error: it only costs the speed-up.
Each archive is ~170 MB: every local run marks its own as used and deletes the others that no
run has used for :data:`UNUSED_DAYS` days, and all but the :data:`KEEP_OTHERS` most recently
used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

# One file per installation, named by the key of its JDK and pyspark.
ARCHIVE_NAME = "spark-classes-{key}.jsa"
# Archives of other installations unused this long are deleted by the next local run. One that
# is still wanted after all is written again by its installation's next run (seconds, once).
UNUSED_DAYS = 30
# Other installations' archives kept however recent: each virtualenv (a CI job's clean clone,
# a rebuilt .venv) writes one, and a machine that makes many would otherwise hold 175 MB per
# environment for a month (seen: 7 archives, 1.2 GB). Alternating between more environments
# than this costs each of them its archive's rewrite on its next run.
KEEP_OTHERS = 3


@dataclass(frozen=True)
class ClassArchive:
    """Where the archive of this JDK + pyspark lives, and where a run in progress writes it."""

    path: Path

    @property
    def partial(self) -> Path:
        # Per process: two first runs at once never write the same file; the rename is atomic.
        return self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")

    def jvm_option(self, create: bool) -> str:
        """The JVM option that maps the archive, or asks the JVM to write it (``create``)."""
        self.prune_unused()
        if self.path.is_file():
            with contextlib.suppress(OSError):  # a read-only shared cache: it is only kept longer
                os.utime(self.path)  # used now: see prune_unused
            return f"-XX:SharedArchiveFile={self.path}"
        if not create:
            return ""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f"{self.path.name}.*.partial"):
            stale.unlink(missing_ok=True)  # left by a run that died before it finished
        return f"-XX:ArchiveClassesAtExit={self.partial}"

    def prune_unused(self, now: float | None = None) -> list[Path]:
        """Delete the other installations' archives beside this one that no run has used for
        :data:`UNUSED_DAYS` days, and all but the :data:`KEEP_OTHERS` most recently used (a run
        marks its archive used by its modification time)."""
        cutoff = (time.time() if now is None else now) - UNUSED_DAYS * 24 * 3600
        others: list[tuple[float, Path]] = []
        for other in self.path.parent.glob(ARCHIVE_NAME.format(key="*")):
            if other != self.path:
                with contextlib.suppress(OSError):  # gone already: another run pruned it
                    others.append((other.stat().st_mtime, other))
        removed: list[Path] = []
        for rank, (used, other) in enumerate(sorted(others, reverse=True)):
            if rank < KEEP_OTHERS and used >= cutoff:
                continue
            with contextlib.suppress(OSError):  # gone already (another run) or not ours to delete
                other.unlink()
                removed.append(other)
        return removed

    def publish(self) -> bool:
        """Move a finished archive into place; True when one was published."""
        if not self.partial.is_file():
            return False
        self.partial.replace(self.path)
        return True


def class_archive() -> ClassArchive | None:
    """The archive for the JDK and pyspark this process would start; None when turned off."""
    if os.environ.get("IMGPIPE_CLASS_ARCHIVE", "1") == "0":
        return None
    java = _java_executable()
    if java is None:
        return None
    import pyspark

    # The JVM maps the archive only with the build and the classpath's jars it was written with
    # (each jar's size and modification time): a key of exactly those makes a new installation
    # write a new archive. A key of the paths and version alone kept a reinstalled environment
    # (same folder, same pyspark, new jar files) on its old archive, which the JVM then ignored
    # on every run ("A jar file is not the one used while building the shared archive file").
    jvm = java.parent.parent / "lib" / "server" / "libjvm.so"
    jars = Path(pyspark.__file__).parent / "jars"
    files = [java, jvm, *sorted(jars.glob("*.jar"))]
    parts = [pyspark.__version__, *_identities(files)]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return ClassArchive(_cache_dir() / ARCHIVE_NAME.format(key=key))


def _identities(paths: list[Path]) -> list[str]:
    """Each existing file as ``path:size:mtime``, what the JVM compares an archive's files by."""
    found: list[str] = []
    for path in paths:
        with contextlib.suppress(OSError):  # no libjvm.so there: a JDK laid out otherwise
            stat = path.stat()
            found.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return found


def _java_executable() -> Path | None:
    """The ``java`` that Spark's launcher runs: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not found or not Path(found).is_file():
        return None
    return Path(found).resolve()


def _cache_dir() -> Path:
    configured = os.environ.get("IMGPIPE_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "imgpipe"
