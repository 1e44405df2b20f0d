"""The one place a SparkSession is built for local runs and tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def local_session(app_name: str = "imgpipe", cores: str = "*") -> SparkSession:
    """A quiet local-mode SparkSession with Arrow enabled and small shuffles.

    On EMR Serverless the jobs call ``SparkSession.builder.getOrCreate()`` instead and take
    their settings from the job run's ``sparkSubmitParameters``.
    """
    from pyspark.sql import SparkSession

    log_config = Path(__file__).with_name("data") / "log4j2.properties"
    # Spark picks a LAN address otherwise and warns; local mode only needs loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # An Arrow batch of the process job is a few seconds of decoding at 64 images; the
        # default 10,000 would hold a whole task's results back until its last image.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
        # One Python worker per core for the whole run: imports (OpenCV, Pillow) paid once.
        .config("spark.python.worker.reuse", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("IMGPIPE_DRIVER_MEMORY", "2g"))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_config.as_uri()}"
        )
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session
