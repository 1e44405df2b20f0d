"""The EMR Serverless application, its job role and the jobs' code, asserted on the template."""

from __future__ import annotations

import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from app import build_app
from imgpipe.jobs import JOBS
from stacks.processing import Processing
from tests.cfntemplate import as_list, logical_id, render, role_statements
from tests.repo import CONTEXT


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    app = build_app(CONTEXT)
    stack: Stack = app.node.find_child("Imgpipe")  # type: ignore[assignment]
    processing: Processing = stack.node.find_child("Processing")  # type: ignore[assignment]
    for job in JOBS:  # uploads each entry point, as the state machine does
        processing.spark_submit(job)
    app.synth()
    yield stack
    shutil.rmtree(app.outdir, ignore_errors=True)  # a temporary dir holding the bundles


@pytest.fixture(scope="module")
def template(stack: Stack) -> Template:
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def processing(stack: Stack) -> Processing:
    return stack.node.find_child("Processing")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def statements(stack: Stack, template: Template) -> list[dict[str, Any]]:
    """Everything the job role may do."""
    return role_statements(template, logical_id(stack, "Processing/JobRole"))


def spark_confs(stack: Stack, processing: Processing, job: str = "process") -> dict[str, str]:
    """The ``--conf name=value`` pairs of a job's synthesized SparkSubmitParameters."""
    params = render(stack.resolve(processing.spark_submit(job)["sparkSubmitParameters"]))
    parts = params.split()
    return dict(parts[i + 1].split("=", 1) for i, p in enumerate(parts) if p == "--conf")


# Compiled extension modules name the CPython they were built for: "cpython-311-..." or the
# stable ABI ("abi3"); a shared library without such a tag (numpy.libs/...) is not a module.
EXTENSION_TAG = re.compile(r"\.cpython-(\d)(\d+)-[^/]*\.so$")
WHEEL_TAG = re.compile(r"^Tag: (\S+)-(\S+)-(\S+)$", re.MULTILINE)


def archive_python_tags(archive: Path) -> tuple[set[tuple[int, int]], dict[str, list[str]]]:
    """The CPython versions of the archive's extension modules, and each wheel's tags."""
    extensions: set[tuple[int, int]] = set()
    wheels: dict[str, list[str]] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            if match := EXTENSION_TAG.search(member.name):
                extensions.add((int(match.group(1)), int(match.group(2))))
            elif member.name.endswith(".dist-info/WHEEL"):
                text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
                wheels[member.name] = ["-".join(tag) for tag in WHEEL_TAG.findall(text)]
    return extensions, wheels


def wheel_runs_on(tag: str, python: tuple[int, int]) -> bool:
    """Whether a wheel tag (``cp311-cp311-manylinux...``, ``py3-none-any``) fits ``python``."""
    interpreter, abi, _platform = tag.split("-")
    if all(part.startswith("py") for part in interpreter.split(".")):
        return any(part in ("py3", f"py{python[0]}{python[1]}") for part in interpreter.split("."))
    built = (int(interpreter[2]), int(interpreter[3:]))
    # abi3 wheels run on the version they name and every later one; others on theirs alone.
    return built <= python if abi == "abi3" else built == python


def bucket_resources(statements: list[dict[str, Any]], action: str, stack: Stack) -> set[str]:
    """The data bucket paths (``/processed/*``) that ``action`` is granted on."""
    bucket = "${" + logical_id(stack, "Storage/Data") + ".Arn}"
    found = {
        render(r)
        for s in statements
        if action in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }
    return {r.removeprefix(bucket) for r in found if r.startswith(bucket)}


class TestApplication:
    def test_application_is_spark_on_the_configured_release_and_architecture(
        self, template: Template
    ) -> None:
        template.has_resource_properties(
            "AWS::EMRServerless::Application",
            {
                "Type": "SPARK",
                "ReleaseLabel": "emr-spark-8.0.0",
                "Architecture": "ARM64",
                "MaximumCapacity": {"Cpu": "32 vCPU", "Memory": "128 GB"},
            },
        )

    def test_application_starts_on_demand_and_stops_when_idle(self, template: Template) -> None:
        template.has_resource_properties(
            "AWS::EMRServerless::Application",
            {
                "AutoStartConfiguration": {"Enabled": True},
                "AutoStopConfiguration": {"Enabled": True, "IdleTimeoutMinutes": 15},
                # pre-initialised capacity bills while idle
                "InitialCapacity": Match.absent(),
            },
        )

    def test_application_logs_under_logs_emr(self, stack: Stack, template: Template) -> None:
        apps = template.find_resources("AWS::EMRServerless::Application")
        (app,) = apps.values()
        uri = app["Properties"]["MonitoringConfiguration"]["S3MonitoringConfiguration"]["LogUri"]
        assert render(uri) == "s3://${" + logical_id(stack, "Storage/Data") + "}/logs/emr/"


class TestJobRole:
    def test_only_emr_serverless_jobs_of_this_application_assume_the_role(
        self, stack: Stack, template: Template
    ) -> None:
        role = template.find_resources("AWS::IAM::Role")[logical_id(stack, "Processing/JobRole")]
        (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
        assert statement["Condition"]["ArnLike"] == {
            "aws:SourceArn": {"Fn::GetAtt": [logical_id(stack, "Processing/Application"), "Arn"]}
        }

    def test_jobs_write_only_processed_reports_and_logs(
        self, stack: Stack, statements: list[dict[str, Any]]
    ) -> None:
        assert bucket_resources(statements, "s3:PutObject", stack) == {
            "/processed/*",
            "/reports/*",
            "/logs/emr/*",
        }
        written = [
            r
            for s in statements
            if any(a.startswith("s3:Put") for a in as_list(s["Action"]))
            for r in as_list(s["Resource"])
        ]
        assert "*" not in written and not [r for r in written if "ingest/" in render(r)]

    def test_jobs_delete_only_under_processed(
        self, stack: Stack, statements: list[dict[str, Any]]
    ) -> None:
        deleting = [s for s in statements if any("Delete" in a for a in as_list(s["Action"]))]
        assert [as_list(s["Action"]) for s in deleting] == [["s3:DeleteObject"]]
        assert bucket_resources(statements, "s3:DeleteObject", stack) == {"/processed/*"}

    def test_jobs_read_the_pipeline_prefixes(
        self, stack: Stack, statements: list[dict[str, Any]]
    ) -> None:
        prefixes = ("ingest", "metadata", "quarantine", "processed", "reports")
        # The objects under each prefix, and the folder's own key, which Hadoop probes (HEAD
        # "metadata") before listing: a 403 there fails the job.
        assert bucket_resources(statements, "s3:GetObject", stack) == {
            f"/{prefix}/*" for prefix in prefixes
        } | {f"/{prefix}" for prefix in prefixes}

    def test_listing_the_data_bucket_is_unconditioned_so_missing_keys_read_as_404(
        self, stack: Stack, statements: list[dict[str, Any]]
    ) -> None:
        # A GetObject of a missing key (the input manifest before the first run, EMRFS's
        # probes of output paths) carries no s3:prefix: a conditioned ListBucket never
        # matches it, and S3 answers 403 instead of 404.
        (listing,) = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
        assert as_list(listing["Action"]) == ["s3:ListBucket"]
        assert "Condition" not in listing
        resources = [render(r) for r in as_list(listing["Resource"])]
        assert resources == ["${" + logical_id(stack, "Storage/Data") + ".Arn}"]

    def test_no_wildcard_actions_and_no_wildcard_resources(
        self, statements: list[dict[str, Any]]
    ) -> None:
        assert not [a for s in statements for a in as_list(s["Action"]) if a.endswith("*")]
        assert not [s for s in statements if "*" in as_list(s["Resource"])]

    def test_jobs_read_exactly_their_code_dependency_and_entry_point_assets(
        self, statements: list[dict[str, Any]]
    ) -> None:
        assets = sorted(
            render(r).rsplit(".", 1)[1]
            for s in statements
            for r in as_list(s["Resource"])
            if "cdk-hnb659fds-assets" in render(r)
        )
        assert assets == sorted(["zip", "tgz"] + ["py"] * len(JOBS))


class TestSparkSubmit:
    @pytest.mark.parametrize("job", sorted(JOBS))
    def test_entry_point_is_the_jobs_script_in_s3(
        self, stack: Stack, processing: Processing, job: str
    ) -> None:
        entry = render(stack.resolve(processing.spark_submit(job)["entryPoint"]))
        assert entry.startswith("s3://cdk-hnb659fds-assets-") and entry.endswith(".py")

    def test_parameters_ship_code_and_dependencies_on_the_python_path(
        self, stack: Stack, processing: Processing
    ) -> None:
        params = render(stack.resolve(processing.spark_submit("process")["sparkSubmitParameters"]))
        parts = params.split()
        code = parts[parts.index("--py-files") + 1]
        assert code.startswith("s3://cdk-hnb659fds-assets-") and code.endswith(".zip")
        confs = dict(parts[i + 1].split("=", 1) for i, p in enumerate(parts) if p == "--conf")
        # Spark unpacks .tgz/.tar.gz/.zip archives by name; any other name is only copied.
        assert confs["spark.archives"].endswith(".tgz#deps")
        assert confs["spark.emr-serverless.driverEnv.PYTHONPATH"] == "./deps"
        assert confs["spark.executorEnv.PYTHONPATH"] == "./deps"
        assert confs["spark.dynamicAllocation.enabled"] == "true"
        # (32 vCPU cap - 2 driver cores) // 4 cores per executor
        assert confs["spark.dynamicAllocation.maxExecutors"] == "7"
        assert confs["spark.executor.cores"] == "4"
        assert confs["spark.sql.files.maxPartitionBytes"]

    @pytest.mark.parametrize("job", sorted(JOBS))
    def test_driver_and_executors_run_the_python_the_archive_is_built_for(
        self, stack: Stack, processing: Processing, job: str
    ) -> None:
        confs = spark_confs(stack, processing, job)
        pins = {
            confs.get(name)
            for name in (
                "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON",
                "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
                "spark.executorEnv.PYSPARK_PYTHON",
            )
        }
        assert len(pins) == 1, f"driver and executors must run one interpreter, not {pins}"
        (pin,) = pins
        match = re.fullmatch(r"/usr/bin/python(\d)\.(\d+)", pin or "")
        assert match, f"not a pinned interpreter: {pin!r}"
        python = (int(match.group(1)), int(match.group(2)))

        # The archive this stack ships (staged by synth), not a rebuilt one.
        outdir = Path(stack.node.root.outdir)  # type: ignore[attr-defined]
        (archive,) = outdir.glob("asset.*.tgz")
        assert archive.name.split(".")[1] in confs["spark.archives"]
        extensions, wheels = archive_python_tags(archive)
        compiled = [name for name, tags in wheels.items() if tags[0].startswith("cp")]
        assert extensions and compiled, "no compiled wheel in the archive: nothing to check"
        assert extensions == {python}, f"extensions for {extensions}, pinned {pin}"
        # A wheel installs when any of its tags fits (universal ones list py2 and py3).
        misfits = {
            name: tags
            for name, tags in wheels.items()
            if not any(wheel_runs_on(tag, python) for tag in tags)
        }
        assert not misfits, f"wheels that do not run on {pin}: {misfits}"

    def test_unknown_job_is_rejected(self, processing: Processing) -> None:
        with pytest.raises(ValueError, match="unknown job 'resize'"):
            processing.spark_submit("resize")

    def test_staged_code_zip_holds_the_spark_entry_modules(self, stack: Stack) -> None:
        outdir = Path(stack.node.root.outdir)  # type: ignore[attr-defined]
        (code,) = [p for p in outdir.glob("asset.*.zip")]
        names = zipfile.ZipFile(code).namelist()
        assert {f"spark_jobs/{spec.module}.py" for spec in JOBS.values()} <= set(names)
