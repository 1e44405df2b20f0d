"""The state machine's job arguments run the real Spark entry points.

The arguments are read from the synthesized definition (not from ``imgpipe.jobs``), the run id
substituted for the execution name, and only the bucket root swapped for a local directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Template

from imgpipe.config import PipelineConfig
from imgpipe.ingest import Ingester, IngestItem
from imgpipe.labelers import NoLabeler
from imgpipe.store import LocalStore
from spark_jobs import analyze, process, report
from tests.cfntemplate import (
    data_bucket_id,
    parse_states_array,
    state_machine_definition,
)
from tests.imagefactory import jpeg_bytes, photo_like

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RUN_ID = "2024-06-01-nightly"
ENTRY_POINTS: dict[str, Callable[[list[str]], int]] = {
    "Process": process.main,
    "Analyze": analyze.main,
    "Report": report.main,
}


@pytest.fixture(scope="module")
def template(imgpipe_template: Template) -> Template:
    return imgpipe_template


def job_arguments_in_definition(definition: dict[str, Any], state: str) -> list[str]:
    """A job state's EntryPointArguments as Step Functions would pass them for RUN_ID."""
    submit = definition["States"][state]["Parameters"]["JobDriver"]["SparkSubmit"]
    if "EntryPointArguments" in submit:
        return list(submit["EntryPointArguments"])
    return parse_states_array(submit["EntryPointArguments.$"], {"$$.Execution.Name": RUN_ID})


@pytest.fixture(scope="module")
def arguments(template: Template) -> dict[str, list[str]]:
    definition = state_machine_definition(template.to_json())
    return {state: job_arguments_in_definition(definition, state) for state in ENTRY_POINTS}


def _collection(root: Path) -> None:
    """Two accepted photos (one with EXIF) and one rejected upload, ingested as in the cloud."""
    items = [
        IngestItem(
            "ingest/alice/beach.jpg",
            jpeg_bytes(
                photo_like(320, 240, 1), make="Canon", model="EOS R6", taken="2023:07:14 10:30:00"
            ),
        ),
        IngestItem("ingest/bob/hills.jpg", jpeg_bytes(photo_like(300, 200, 2))),
        IngestItem("ingest/bob/notes.txt", b"not an image at all"),
    ]
    store = LocalStore(root)
    for item in items:  # the uploads themselves, as they sit in the bucket
        store.put_bytes(item.key, item.data)
    outcomes = Ingester(store, PipelineConfig(), NoLabeler()).run(items)
    assert {o.key: o.accepted for o in outcomes} == {
        "ingest/alice/beach.jpg": True,
        "ingest/bob/hills.jpg": True,
        "ingest/bob/notes.txt": False,
    }


def test_every_job_reads_the_data_bucket_and_only_analyze_and_report_take_the_run_id(
    arguments: dict[str, list[str]], template: Template
) -> None:
    bucket = f"s3://@Ref:{data_bucket_id(template)}@"
    for state, args in arguments.items():
        assert args[args.index("--root") + 1] == bucket, state
        if state == "Process":
            assert "--run-id" not in args
        else:
            assert args[args.index("--run-id") + 1] == RUN_ID
        # cdk.json's pipeline settings reach every job.
        assert args[args.index("--thumbnail-size") + 1] == "512"
        assert args[args.index("--min-confidence") + 1] == "55.0"


@pytest.mark.spark
@pytest.mark.slow
def test_jobs_run_with_exactly_the_state_machine_arguments(
    arguments: dict[str, list[str]],
    template: Template,
    spark: SparkSession,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = f"s3://@Ref:{data_bucket_id(template)}@"
    _collection(tmp_path)
    for state, entry_point in ENTRY_POINTS.items():
        local_args = [str(tmp_path) if arg == bucket else arg for arg in arguments[state]]
        assert entry_point(local_args) == 0, state

    table = spark.read.parquet(str(tmp_path / "processed" / "images"))
    assert sorted(r.key for r in table.select("key").collect()) == [
        "ingest/alice/beach.jpg",
        "ingest/bob/hills.jpg",
    ]
    run_dir = tmp_path / "reports" / RUN_ID
    assert (run_dir / "tables" / "overview.parquet").is_file()
    assert (run_dir / "tables" / "top_labels.csv").is_file()
    assert "<html" in (run_dir / "index.html").read_text(encoding="utf-8").lower()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["accepted"], summary["quarantined"], summary["processed"]) == (2, 1, 2)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "report": f"reports/{RUN_ID}/index.html"
    }
