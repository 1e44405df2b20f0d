"""Shared fixtures: the real-image corpus and one local SparkSession for the whole run."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_cdk.assertions import Template
    from pyspark.sql import SparkSession

    from tests.lambdarig import Rig

from tests.repo import CONTEXT, require_corpus


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region for moto and botocore stubs; never a real profile."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> Iterator[Rig]:
    """The moto rig of tests/lambdarig.py, with the handler's environment set for the test.

    Here, not in tests/aws/, because Spark tests (superseded records) drive the handler too.
    """
    from tests.lambdarig import HANDLER_ENVIRONMENT, moto_rig

    for name, value in HANDLER_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with moto_rig() as made:
        yield made


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-image corpus: ``exif-samples/`` under ``$IMGPIPE_TEST_CORPUS`` (tests/repo.py)."""
    return require_corpus()


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local SparkSession shared by every test that needs Spark (JVM start-up is slow)."""
    from imgpipe.spark import local_session

    session = local_session("imgpipe-tests", cores="2")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    """The CDK context of ``cdk.json``, as ``cdk synth`` reads it."""
    return copy.deepcopy(CONTEXT)


@pytest.fixture(scope="session")
def imgpipe_template(cdk_context: dict[str, Any]) -> Iterator[Template]:
    """The synthesized stack with the default settings, built once for every test reading it."""
    pytest.importorskip("aws_cdk")
    from aws_cdk.assertions import Template

    from app import build_app

    app = build_app(cdk_context)
    yield Template.from_stack(app.node.find_child("Imgpipe"))  # type: ignore[arg-type]
    shutil.rmtree(app.outdir, ignore_errors=True)  # a temporary folder holding the bundles
