"""The local runner: ingest -> process -> analyze -> report on one machine, one SparkSession."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgpipe.config import PipelineConfig
from imgpipe.ingest import Ingester, IngestItem
from imgpipe.labelers import Labeler, LabelerOptions, make_labeler
from imgpipe.localfs import LocalInput, describe_special, scan_inputs
from imgpipe.progress import ProgressReporter
from imgpipe.records import (
    METADATA_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
    Reason,
    RejectedImage,
    new_run_id,
)
from imgpipe.rerun import (
    analysis_fingerprint,
    last_summary,
    records_fingerprint,
    reusable_run,
)
from imgpipe.stages import analyze_with_spark, reuse_analysis, save_class_archive
from imgpipe.store import LocalStore

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class UsageError(Exception):
    """A problem with what the user asked for; the message is one line to print."""


class NothingToDo(Exception):
    """The input folder holds no files: no stage runs and no report is written."""


@dataclass
class RunSummary:
    """The run summary written to ``reports/RUN_ID/summary.json``.

    ``run_id``, the five counts and ``stages`` are what a cloud run's summary holds too (its
    ``stages`` empty: the cloud's stage timings live in Step Functions).

    Each count means one thing: ``inputs = accepted + quarantined``; ``skipped_unchanged`` of
    the inputs were unchanged since the last run (their records reused, not inspected again;
    0 on a ``first_run``); ``processed`` accepted images have a thumbnail and features. The
    process stage's ``images`` (the table's rows) = ``decoded`` by this run + ``reused``.
    """

    run_id: str
    inputs: int = 0
    accepted: int = 0
    quarantined: int = 0
    processed: int = 0
    skipped_unchanged: int = 0
    first_run: bool = True
    reasons: dict[str, int] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    labeler: str = ""
    report: str = ""
    # Set when nothing changed since that run: its analysis was reused, no Spark started.
    reused_analysis_of: str | None = None
    inputs_fingerprint: str = ""
    # The time around the stages (setup, spark_start, shutdown): with the stages' seconds
    # they add up to ``wall_seconds``, the whole run.
    overheads: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        """One line of counts that add up: inputs = accepted + quarantined, and since when."""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        since = (
            "first run"
            if self.first_run
            else f"{self.inputs - self.skipped_unchanged} inspected, "
            f"{self.skipped_unchanged} unchanged since the last run"
        )
        reused = (
            f"; nothing changed since run {self.reused_analysis_of}: report reused"
            if self.reused_analysis_of
            else ""
        )
        return (
            f"{self.inputs} inputs: {self.accepted} accepted, {self.quarantined} quarantined"
            f"{f' ({reasons})' if reasons else ''}; {since}; {self.processed} processed{reused}"
        )


def check_paths(input_dir: Path, out_dir: Path) -> None:
    """Raise :class:`UsageError` for an input that cannot be used."""
    if not input_dir.exists():
        raise UsageError(f"input directory not found: {input_dir}")
    if not input_dir.is_dir():
        raise UsageError(f"input must be a directory of images, not a file: {input_dir}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out must be a directory, but a file is there: {out_dir}")
    if input_dir.resolve() == out_dir.resolve():
        raise UsageError("--out must differ from the input directory")


def read_inputs(
    inputs: list[LocalInput], store: LocalStore, creator: str | None
) -> Iterator[IngestItem]:
    """Copy each regular input unchanged into ``ingest/`` and yield it as an ingest item.

    Entries that are not regular files, or cannot be read, are yielded already rejected.
    """
    for entry in inputs:
        if not entry.regular:
            message = f"{describe_special(entry.path)}; copy the image itself into the input folder"
            yield IngestItem(
                entry.key, b"", creator, RejectedImage(Reason.NOT_A_REGULAR_FILE, message), 0
            )
            continue
        try:
            data = entry.path.read_bytes()
        except OSError as exc:
            message = f"could not read the file ({exc.strerror or exc}); check its permissions"
            yield IngestItem(
                entry.key, b"", creator, RejectedImage(Reason.UNREADABLE, message), entry.size
            )
            continue
        target = store.path(entry.key)
        unchanged = (
            target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data
        )
        if not unchanged:
            store.put_bytes(entry.key, data)
        yield IngestItem(entry.key, data, creator)


def run_ingest(
    input_dir: Path,
    store: LocalStore,
    config: PipelineConfig,
    labeler: Labeler,
    creator: str | None,
    progress: ProgressReporter,
    summary: RunSummary,
    on_new_record: Callable[[], None] | None = None,
) -> None:
    """The local ingest stage: every input ends as exactly one metadata or quarantine record.

    ``on_new_record`` is called for each record written (not for one left unchanged since the
    last run): what this run will compute.
    """
    inputs = scan_inputs(input_dir, exclude=store.root)
    summary.inputs = len(inputs)
    # "Unchanged since the last run" needs a last run: one that left records here.
    summary.first_run = not any(
        (store.root / prefix).is_dir() for prefix in (METADATA_PREFIX, QUARANTINE_PREFIX)
    )
    ingester = Ingester(store, config, labeler)
    with progress.stage("ingest", total=len(inputs)) as advance:
        for outcome in ingester.run(read_inputs(inputs, store, creator)):
            advance(1)
            if outcome.accepted:
                summary.accepted += 1
            else:
                summary.quarantined += 1
                reason = outcome.reason or "unknown"
                summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
            summary.skipped_unchanged += outcome.reused
            if on_new_record is not None and not outcome.reused:
                on_new_record()


def _start_spark() -> SparkSession:
    from imgpipe.spark import local_session, warm_up

    # The first run on this installation also has its JVM write the class archive that halves
    # later runs' JVM start-up (imgpipe.class_archive); the runner waits for it at the end.
    spark = local_session(create_class_archive=True)
    warm_up(spark)
    return spark


def run_pipeline(
    input_dir: Path,
    out_dir: Path,
    *,
    labeler_name: str = "local",
    creator: str | None = None,
    config: PipelineConfig | None = None,
    progress: ProgressReporter | None = None,
) -> RunSummary:
    """Run every stage locally; returns the summary (also written as ``summary.json``)."""
    started_at = time.perf_counter()
    config = config or PipelineConfig()
    progress = progress or ProgressReporter()
    check_paths(input_dir, out_dir)
    # Before the labeler's model and Spark load: an empty folder is answered at once.
    if not scan_inputs(input_dir, exclude=out_dir):
        raise NothingToDo(f"no files found in {input_dir}: nothing to do")
    labeler = make_labeler(
        labeler_name,
        LabelerOptions(max_labels=config.max_labels, min_confidence=config.min_confidence),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    store = LocalStore(out_dir)
    summary = RunSummary(
        run_id=new_run_id(lambda run_id: (store.root / REPORTS_PREFIX / run_id).exists()),
        labeler=labeler_name,
    )

    # Every second of the run is charged to one entry: the stages, or the time around them
    # (setup, waiting for Spark, shutdown), so the summary's seconds add up to the wall time.
    clock = [started_at]

    def lap() -> float:
        now = time.perf_counter()
        seconds, clock[0] = round(now - clock[0], 3), now
        return seconds

    def timed(name: str, images: int) -> None:
        summary.stages[name] = {"seconds": lap(), "images": images}

    summary.overheads["setup"] = lap()
    # A first run always needs Spark: its JVM starts while ingest labels. A later run may
    # need nothing computed: its Spark starts with ingest's first new or changed record (the
    # analysis it was computed from is then out of date), or after ingest for other work
    # (new settings, a new version), and never for a run that reuses the last one.
    previous = last_summary(store)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start") as starter:
        session: Future[SparkSession] | None = None

        def start_spark() -> None:  # at most once
            nonlocal session
            if session is None:
                session = starter.submit(_start_spark)

        if previous is None:
            start_spark()
        run_ingest(
            input_dir, store, config, labeler, creator, progress, summary, on_new_record=start_spark
        )
        timed("ingest", summary.inputs)
        reusable = None
        if session is None:  # not while the starter imports pyspark: imports would interleave
            records = records_fingerprint(store, config)
            summary.inputs_fingerprint = analysis_fingerprint(store, config, records)
            reusable = reusable_run(store, previous, summary.inputs_fingerprint, records)
        if reusable is not None:
            reuse_analysis(store, summary, reusable, progress, timed)
        else:
            start_spark()
            assert session is not None
            if not session.done():
                progress.info("waiting for Spark to start (local mode)")
            spark = session.result()
            summary.overheads["spark_start"] = lap()
            if not summary.inputs_fingerprint:
                records = records_fingerprint(store, config)
                summary.inputs_fingerprint = analysis_fingerprint(store, config, records)
            analyze_with_spark(spark, store, config, summary, progress, timed, records)
            save_class_archive(spark, progress, summary, lap)
    summary.overheads["shutdown"] = lap()
    summary.wall_seconds = round(time.perf_counter() - started_at, 3)
    store.put_bytes(
        f"{REPORTS_PREFIX}{summary.run_id}/summary.json",
        json.dumps(summary.to_dict(), indent=2, ensure_ascii=False).encode(),
        "application/json",
    )
    return summary
