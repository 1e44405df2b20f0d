"""``imgpipe aws upload | run | report`` against a moto account with a deployed-like stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imgpipe import aws_ops
from imgpipe.cli import main
from imgpipe.s3_events import decode_metadata_text
from tests.imagefactory import jpeg_bytes, photo_like, png_bytes
from tests.statemachines import BUCKET, FAILS, SUCCEEDS

ROLE = "arn:aws:iam::123456789012:role/imgpipe-pipeline"


def deploy(definition: dict[str, Any], stack: str = "Imgpipe") -> str:
    """A state machine and a stack whose outputs name it and the bucket, like cdk deploy."""
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"{stack}-pipeline", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "BucketName": {"Value": BUCKET},
            "StateMachineArn": {"Value": arn},
        },
    }
    boto3.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    return arn


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> Iterator[Any]:
    monkeypatch.setattr(aws_ops, "POLL_SECONDS", 0.05)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    (folder / "trip" / "beach day.jpg").write_bytes(jpeg_bytes(photo_like(200, 150, 1)))
    (folder / "cat.png").write_bytes(png_bytes(photo_like(120, 120, 2)))
    return folder


def ingest_keys(s3: Any) -> list[str]:
    response = s3.list_objects_v2(Bucket=BUCKET, Prefix="ingest/")
    return sorted(obj["Key"] for obj in response.get("Contents", []))


def test_upload_puts_files_under_ingest_with_creator_metadata_and_progress(
    aws: Any, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(SUCCEEDS)
    assert main(["aws", "upload", str(photos), "--creator", "Zoë Ng"]) == 0

    assert ingest_keys(aws) == ["ingest/cat.png", "ingest/trip/beach day.jpg"]
    head = aws.head_object(Bucket=BUCKET, Key="ingest/trip/beach day.jpg", ChecksumMode="ENABLED")
    assert decode_metadata_text(head["Metadata"]["creator"]) == "Zoë Ng"
    assert head["ContentType"] == "image/jpeg"
    # No client-side CRC32: S3 is left to assign the CRC64NVME the Lambda uses.
    assert "ChecksumCRC32" not in head
    out, err = capsys.readouterr()
    assert "uploaded 2 files" in out and "0 unchanged skipped" in out
    assert "upload: 2/2" in err


def test_second_upload_skips_unchanged_files_and_sends_changed_ones(
    aws: Any, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(SUCCEEDS)
    assert main(["aws", "upload", str(photos)]) == 0
    (photos / "cat.png").write_bytes(png_bytes(photo_like(120, 120, 3)))
    capsys.readouterr()

    assert main(["aws", "upload", str(photos)]) == 0
    assert "uploaded 1 files" in capsys.readouterr().out
    # A new creator is a change too: the object must carry it.
    assert main(["aws", "upload", str(photos), "--creator", "Ann"]) == 0
    assert "uploaded 2 files" in capsys.readouterr().out


def test_run_with_wait_prints_the_report_uri(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    arn = deploy(SUCCEEDS)
    assert main(["aws", "run", "--wait"]) == 0

    out, err = capsys.readouterr()
    (execution,) = boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    run_id = execution["name"]
    assert len(run_id) == 16 and run_id.endswith("Z")  # 20250102T030405Z
    assert f"report: s3://{BUCKET}/reports/{run_id}/index.html" in out
    assert "step: Report" in err


def test_failed_run_names_the_step_and_cause_and_exits_nonzero(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(FAILS)
    assert main(["aws", "run", "--wait"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]  # after the step progress lines
    assert last.startswith("imgpipe: run failed: step 'Process' failed: SNS.NotFoundException")
    assert "Endpoint does not exist" in last


def test_two_runs_in_the_same_second_get_distinct_names(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = deploy(SUCCEEDS)
    sfn = boto3.client("stepfunctions")
    # Both starts see the same second, whatever the clock does between them.
    monkeypatch.setattr(aws_ops, "new_run_id", lambda now=None: "20260101T000000Z")
    first, _ = aws_ops.start_run(sfn, arn)
    second, _ = aws_ops.start_run(sfn, arn)
    assert (first, second) == ("20260101T000000Z", "20260101T000000Z-2")


def test_missing_stack_is_a_one_line_error(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aws", "report", "--stack", "Nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("imgpipe: error: stack 'Nope' not found")


def test_missing_credentials_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    assert main(["aws", "run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no AWS credentials" in err


def put(s3: Any, key: str, body: bytes = b"x") -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


PAGE = (
    '<html><img class="chart" src="top_labels.png" alt="Top labels chart">'
    '<figure><img src="../../processed/thumbnails/crc64nvme-AB_cd.jpg" alt="ingest/a.jpg">'
    '</figure><a href="#gallery">Gallery</a></html>'
)


def test_report_prints_the_newest_run_with_a_page(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(SUCCEEDS)
    put(aws, "reports/20250101T000000Z/index.html")
    put(aws, "reports/20250102T000000Z/index.html")
    put(aws, "reports/20250103T000000Z/tables/overview.parquet")  # a run still going

    assert main(["aws", "report"]) == 0
    assert capsys.readouterr().out == (
        f"report: s3://{BUCKET}/reports/20250102T000000Z/index.html\n"
    )


def test_report_download_fetches_page_charts_tables_and_shown_thumbnails(
    aws: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(SUCCEEDS)
    run = "reports/20250102T000000Z"
    put(aws, f"{run}/index.html", PAGE.encode())
    put(aws, f"{run}/top_labels.png", b"png")
    put(aws, f"{run}/tables/top_labels.parquet", b"parquet")
    put(aws, "processed/thumbnails/crc64nvme-AB_cd.jpg", b"thumb")
    put(aws, "processed/thumbnails/not-shown.jpg", b"other")
    target = tmp_path / "offline"

    assert main(["aws", "report", "--run-id", "20250102T000000Z", "--download", str(target)]) == 0

    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == [
        "processed/thumbnails/crc64nvme-AB_cd.jpg",
        f"{run}/index.html",
        f"{run}/tables/top_labels.parquet",
        f"{run}/top_labels.png",
    ]
    assert capsys.readouterr().out == f"report: {target / run / 'index.html'}\n"


def test_report_for_an_unknown_run_is_a_one_line_error(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(SUCCEEDS)
    assert main(["aws", "report", "--run-id", "19990101T000000Z"]) == 2
    assert "no report for run '19990101T000000Z'" in capsys.readouterr().err
