"""The one place a SparkSession is built: for local runs and tests, and for the jobs on EMR."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from imgpipe.class_archive import ClassArchive, class_archive

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import SparkConf
    from pyspark.sql import SparkSession


# Tasks a session runs at once, when Spark's default parallelism says otherwise: a local
# session's is 4 (its small shuffles) whatever the cores, which made the process stage's
# decode 8 tasks on 2 cores. Jobs on EMR leave it unset (their parallelism is their cores).
TASK_SLOTS = "spark.imgpipe.taskSlots"

# Session settings that evaluate expressions interpreted: no Java generated and compiled per
# plan, which for a local stage's small data costs a young JVM more than running it (the
# process stage and analyze of small tables use them; their measurements are there).
# factoryMode is marked internal in Spark (meant for its tests); it has been in SQLConf since
# 2.4, and a Spark without it would ignore the setting (only slower).
INTERPRETED = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}

# The class archive this process's JVM was asked to write; finish_class_archive publishes it.
_archive_in_progress: ClassArchive | None = None


def local_session(
    app_name: str = "imgpipe", cores: str = "*", *, create_class_archive: bool = False
) -> SparkSession:
    """A quiet local-mode SparkSession with Arrow enabled and small shuffles.

    The JVM maps the class archive when there is one (:mod:`imgpipe.class_archive`);
    ``create_class_archive`` asks it to write one when there is none, which
    :func:`finish_class_archive` then waits for. On EMR Serverless the jobs use
    :func:`job_session` instead.
    """
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    log_config = Path(__file__).with_name("data") / "log4j2.properties"
    # Spark picks a LAN address otherwise and warns; local mode only needs loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Workers run this interpreter (and so this virtualenv's packages), not the first
    # ``python3`` on PATH: `.venv/bin/imgpipe run` works without activating the venv.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # A local run lives for seconds to minutes and its JVM mostly plans small queries: the C1
    # compiler alone warms up sooner and leaves the second core to the work (measured on
    # 100 photos: analyze 13.6 -> 10 s cold, 5.4 -> 3.4 s warm). Long runs may want C2 back.
    jvm_options = os.environ.get("IMGPIPE_JVM_OPTIONS", "-XX:TieredStopAtLevel=1")
    archive = class_archive()
    archive_option = archive.jvm_option(create_class_archive) if archive else ""
    # The JVM's own warnings (class sharing's among them) go to its stderr, the quiet log.
    # With C1 alone the JVM reserves 48 MB for compiled code instead of 240 MB; Spark's
    # generated classes filled that in a long session (the test suite: "CodeCache is full",
    # then "Out of space in CodeCache for adapters", which killed the JVM). The reservation
    # is address space; only what is compiled takes memory. A size in IMGPIPE_JVM_OPTIONS,
    # later on the command line, wins.
    jvm_options = (
        f"{archive_option} -Xlog:disable -Xlog:all=warning:stderr"
        f" -XX:ReservedCodeCacheSize=240m {jvm_options}"
    )
    slots = (os.cpu_count() or 1) if cores == "*" else int(cores)
    conf = (
        SparkConf()
        .setMaster(f"local[{cores}]")
        .set(TASK_SLOTS, str(slots))
        .setAppName(app_name)
        .set("spark.ui.enabled", "false")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.sql.shuffle.partitions", "4")
        .set("spark.default.parallelism", "4")
        .set("spark.sql.execution.arrow.pyspark.enabled", "true")
        # An Arrow batch of the process job is a few seconds of decoding at 64 images; the
        # default 10,000 would hold a whole task's results back until its last image.
        .set("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
        # One Python worker per core for the whole run: imports (OpenCV, Pillow) paid once.
        .set("spark.python.worker.reuse", "true")
        # Workers import pyspark from this environment, not Spark's zip: ~0.18 s of CPU per
        # task less (imgpipe.local_daemon says why).
        .set("spark.python.daemon.module", "imgpipe.local_daemon")
        .set("spark.sql.session.timeZone", "UTC")
        # Spark counts each file as 4 MB of reading to open it, a guess made for remote
        # storage; a local file opens in tens of microseconds. With that guess 10,000 metadata
        # records (~1.5 KB each) were read in 313 tasks and the image table written as 313
        # files, which analyze then opened one by one; at 64 KB: 5 tasks, 5 files (10,000
        # records: process 30.8 -> 23.1 s, load 4).
        .set("spark.sql.files.openCostInBytes", str(64 * 1024))
        .set("spark.driver.memory", os.environ.get("IMGPIPE_DRIVER_MEMORY", "2g"))
        # Spark's default (1g) is half the driver's heap: a result the heap cannot hold then
        # kills the thread receiving it (OutOfMemoryError in task-result-getter) and its job
        # waits forever (seen: an analysis whose result grew with the square of the images).
        # Spark's docs: "Setting a proper limit can protect the driver from out-of-memory
        # errors". The analyses' results are KB to a few MB.
        .set("spark.driver.maxResultSize", "256m")
        .set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .set(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j2.configurationFile={log_config.as_uri()} {jvm_options}",
        )
    )
    if _launch_quiet_gateway(conf) and "ArchiveClassesAtExit" in archive_option:
        global _archive_in_progress
        _archive_in_progress = archive
    session = SparkSession.builder.config(conf=conf).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def task_slots(spark: SparkSession) -> int:
    """Tasks ``spark`` runs at once: :data:`TASK_SLOTS` when set, else the default parallelism."""
    return int(spark.conf.get(TASK_SLOTS, "0") or 0) or spark.sparkContext.defaultParallelism


def archive_in_progress() -> bool:
    """Whether this process's JVM will write the class archive when it exits."""
    return _archive_in_progress is not None


def finish_class_archive(spark: SparkSession) -> bool:
    """When this process's JVM was asked to write the class archive: stop it and wait for it.

    The JVM writes the archive as it exits (seconds, once per installation), so the session
    is stopped, the JVM told to exit (its stdin closed: pyspark's gateway exits on EOF) and
    waited for. Otherwise nothing happens (a session shared with other callers stays up).
    Returns whether an archive was published.
    """
    global _archive_in_progress
    from pyspark import SparkContext

    archive, _archive_in_progress = _archive_in_progress, None
    process = getattr(SparkContext._gateway, "proc", None)
    if archive is None or process is None or process.stdin is None:
        return False
    spark.stop()
    process.stdin.close()
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        return False
    finally:
        SparkContext._gateway = None
        SparkContext._jvm = None
    return process.returncode == 0 and archive.publish()


@contextlib.contextmanager
def session_settings(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """``settings`` on the session for the block, then back as they were (also on failure).

    The local run's stages share one session, each with the settings that suit it.
    """
    previous = {name: spark.conf.get(name, None) for name in settings}
    for name, value in settings.items():
        spark.conf.set(name, value)
    try:
        yield
    except KeyboardInterrupt:
        # The run ends here, and the interrupt may have cut a py4j call off mid-answer: a
        # further call can then meet a closed connection ("Answer from Java side is empty").
        raise
    except BaseException:
        _restore(spark, previous)
        raise
    _restore(spark, previous)


def _restore(spark: SparkSession, previous: Mapping[str, str | None]) -> None:
    for name, old in previous.items():
        if old is None:
            spark.conf.unset(name)
        else:
            spark.conf.set(name, old)


def job_session(app_name: str) -> SparkSession:
    """The session of a job run by spark-submit (EMR Serverless), named ``app_name``.

    Its settings come from the job run's ``sparkSubmitParameters``, not from here.
    """
    from pyspark.sql import SparkSession

    return SparkSession.builder.appName(app_name).getOrCreate()


def _launch_quiet_gateway(conf: SparkConf) -> bool:
    """Start the driver JVM with its output in a temporary log file, unless one already runs.

    The JVM prints start-up lines that no log4j setting reaches (``WARNING: Using incubator
    modules``, from the JDK itself) in the middle of the ingest progress. The file lives as
    long as this process; its tail is the error message when the JVM fails to start. Errors
    of Spark jobs (the Python workers' tracebacks included) still reach the caller as
    exceptions. Returns whether this call started the JVM.
    """
    from pyspark import SparkContext
    from pyspark.errors import PySparkRuntimeError
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:  # a session ran before in this process
        return False
    # Removed when this process exits: the JVM (and its log) lives only as long.
    log = tempfile.NamedTemporaryFile(prefix="imgpipe-spark-", suffix=".log")  # noqa: SIM115
    atexit.register(log.close)
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
    except PySparkRuntimeError as exc:
        tail = Path(log.name).read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(
            f"Spark did not start ({exc.getCondition()}); the JVM's last output:\n"
            + "\n".join(tail)
        ) from None
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)
    return True


def warm_up(spark: SparkSession) -> None:
    """Start one Python worker per core with the image kernel imported, before it is needed.

    Workers are reused across tasks (``spark.python.worker.reuse``), so the process stage's
    first tasks find OpenCV, Pillow, NumPy and pyarrow's Parquet writer loaded (about a second
    per worker otherwise).
    Idle workers are stopped after a minute; warming up is then only wasted, never wrong.
    """
    from pyspark.sql import types as T

    cores = spark.sparkContext.defaultParallelism
    schema = T.StructType([T.StructField("id", T.LongType())])
    spark.range(cores, numPartitions=cores).mapInArrow(_import_kernel, schema).collect()


def _import_kernel(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet  # noqa: F401  (a first run's tasks write the features cache with it)

    import imgpipe.imaging  # noqa: F401  (the import is the point)

    yield from batches
