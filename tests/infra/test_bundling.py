"""Packaging without Docker: the Spark code zip, the EMR dependency archive, the Lambda bundle.

The dependency builds download wheels from PyPI the first time and are cached under ``build/``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytest.importorskip("aws_cdk")

import stacks.bundling
from stacks.bundling import (
    LAMBDA_BUNDLE_BUDGET,
    LAMBDA_UNZIPPED_LIMIT,
    PROJECT_ROOT,
    BundlingError,
    LambdaLocalBundler,
    build_code_zip,
    build_emr_archive,
    directory_size,
)
from stacks.settings import DeploySettings

# This machine's target: its Python can import what is built for it.
X86_64 = replace(DeploySettings(), architecture="x86_64")
ARCHITECTURES = ("x86_64", "arm64")
# What the Lambda Python runtime provides besides the standard library.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def run_isolated(code: str, *path: Path, env: dict[str, str] | None = None) -> str:
    """Run ``code`` with only the standard library and ``path`` importable; return stdout."""
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}\n"
    result = subprocess.run(
        # -I ignores PYTHON* variables and the user site; -S drops site-packages entirely.
        [sys.executable, "-I", "-S", "-c", prelude + code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=Path(sys.executable).anchor,  # not the project: it would shadow what is tested
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with only the packages the Lambda runtime provides, from this venv."""
    target = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        source = Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin)
        (target / source.name).symlink_to(source)
    return target


class TestRequirements:
    """The bundles install the project's extras; the pins are written once, in pyproject.toml."""

    @staticmethod
    def project() -> dict[str, Any]:
        return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]

    def test_bundles_install_exactly_the_lambda_and_emr_extras(self) -> None:
        extras = self.project()["optional-dependencies"]
        installed = {
            "lambda": stacks.bundling.LAMBDA_REQUIREMENTS,
            "emr": stacks.bundling.EMR_REQUIREMENTS,
        }
        assert installed == {"lambda": tuple(extras["lambda"]), "emr": tuple(extras["emr"])}

    def test_extras_name_what_each_bundle_needs_and_nothing_else(self) -> None:
        def names(requirements: tuple[str, ...]) -> set[str]:
            return {canonicalize_name(Requirement(r).name) for r in requirements}

        assert names(stacks.bundling.LAMBDA_REQUIREMENTS) == {
            *("pillow", "pillow-heif", "numpy", "defusedxml", "aws-lambda-powertools"),
        }
        # The tracer extra brings aws-xray-sdk, which Tracer imports at module load.
        tracer = [
            Requirement(r).extras
            for r in stacks.bundling.LAMBDA_REQUIREMENTS
            if Requirement(r).name == "aws-lambda-powertools"
        ]
        assert tracer == [{"tracer"}]
        assert names(stacks.bundling.EMR_REQUIREMENTS) == {
            *("pillow", "pillow-heif", "numpy", "opencv-python-headless", "defusedxml"),
            *("pyarrow", "pandas", "matplotlib", "seaborn", "jinja2"),
        }

    def test_each_package_has_one_version_range_across_core_and_extras(self) -> None:
        project = self.project()
        lists = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
        ranges: dict[str, dict[str, str]] = {}
        for where, requirements in lists.items():
            for line in requirements:
                requirement = Requirement(line)
                name = canonicalize_name(requirement.name)
                ranges.setdefault(name, {})[where] = str(requirement.specifier)
        disagreeing = {
            name: found for name, found in ranges.items() if len(set(found.values())) > 1
        }
        assert disagreeing == {}
        # The extras the bundles install share packages with the core list: the check bites.
        assert {"lambda", "emr", "dependencies"} <= set(ranges["pillow"])


class TestCodeZip:
    def test_zip_holds_the_packages_with_their_sql_and_templates(self, tmp_path: Path) -> None:
        names = set(zipfile.ZipFile(build_code_zip(tmp_path)).namelist())
        assert {"imgpipe/__init__.py", "spark_jobs/process.py", "analysis/report.py"} <= names
        assert {"imgpipe/process/stage.py", "analysis/analyze.py"} <= names  # what they import
        assert "analysis/sql/top_labels.sql" in names
        assert "analysis/templates/report.html.j2" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert not [n for n in names if n.startswith(("lambda_src/", "stacks/", "tests/"))]

    def test_zip_is_byte_identical_when_the_code_is_unchanged(self, tmp_path: Path) -> None:
        first = build_code_zip(tmp_path / "a").read_bytes()
        time.sleep(1.1)  # zip timestamps have 2 s resolution; a real clock would show
        assert build_code_zip(tmp_path / "b").read_bytes() == first

    def test_sql_files_are_readable_from_the_zip_as_package_resources(self, tmp_path: Path) -> None:
        code = build_code_zip(tmp_path)
        out = run_isolated(
            "from importlib.resources import files\n"
            "print(files('analysis').joinpath('sql/top_labels.sql').read_text())",
            code,
        )
        assert "select" in out.lower()


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The EMR dependency archive for x86_64, unpacked as spark.archives would."""
    target = tmp_path_factory.mktemp("deps")
    with tarfile.open(build_emr_archive(X86_64)) as archive:
        archive.extractall(target, filter="data")
    return target


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lambda bundle for x86_64, as local bundling writes it."""
    target = tmp_path_factory.mktemp("lambda")
    assert LambdaLocalBundler(X86_64).try_bundle(str(target))
    return target


class TestEmrArchive:
    def test_archive_imports_the_job_dependencies_from_itself(self, unpacked: Path) -> None:
        modules = [
            *("numpy", "PIL", "pillow_heif", "cv2", "pyarrow"),
            *("pandas", "matplotlib", "seaborn", "jinja2", "defusedxml"),
        ]
        out = run_isolated(
            "import importlib\n"
            f"for name in {modules!r}:\n"
            "    print(name, importlib.import_module(name).__file__)",
            unpacked,
        )
        origins = dict(line.split(" ", 1) for line in out.splitlines())
        assert sorted(origins) == sorted(modules)
        assert all(origin.startswith(str(unpacked)) for origin in origins.values())

    def test_archive_leaves_out_what_emr_provides(self, unpacked: Path) -> None:
        tops = {p.name.split("-")[0].lower() for p in unpacked.iterdir()}
        assert not tops & {"boto3", "botocore", "pyspark", "py4j"}

    def test_archive_is_a_tgz_so_spark_unpacks_it(self) -> None:
        assert build_emr_archive(X86_64).name.endswith(".tgz")


class TestLambdaBundle:
    @pytest.mark.parametrize("architecture", ARCHITECTURES)
    def test_bundle_leaves_40_mib_of_headroom_under_the_limit(
        self, architecture: str, tmp_path: Path
    ) -> None:
        settings = replace(DeploySettings(), architecture=architecture)
        assert LambdaLocalBundler(settings).try_bundle(str(tmp_path))
        size = directory_size(tmp_path)
        print(f"{architecture} Lambda bundle: {size / 2**20:.1f} MiB unzipped (limit 250 MiB)")
        assert LAMBDA_UNZIPPED_LIMIT == 262_144_000  # AWS's 250 MB, in bytes
        assert size <= 210 * 2**20

    def test_bundle_over_the_budget_fails_the_build(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert LAMBDA_BUNDLE_BUDGET == 210 * 2**20
        assert LambdaLocalBundler(X86_64).try_bundle(str(tmp_path / "fits"))
        # A budget one byte under this very bundle: the same build must now be refused.
        size = directory_size(tmp_path / "fits")
        monkeypatch.setattr(stacks.bundling, "LAMBDA_BUNDLE_BUDGET", size - 1)
        with pytest.raises(BundlingError, match="MiB budget, which keeps 40 MiB free"):
            LambdaLocalBundler(X86_64).try_bundle(str(tmp_path / "over"))

    def test_bundle_leaves_out_spark_analysis_opencv_and_runtime_packages(
        self, bundle: Path
    ) -> None:
        tops = {p.name.split("-")[0].lower() for p in bundle.iterdir()}
        assert {"lambda_src", "imgpipe", "numpy", "pil", "pillow_heif"} <= tops
        assert not tops & {"pandas", "pyspark", "torch", "matplotlib", "boto3", "botocore"}
        assert not tops & {"cv2", "opencv_python_headless.libs", "opencv_python_headless"}

    def test_handler_imports_with_the_bundle_and_the_runtimes_packages(
        self, bundle: Path, runtime_packages: Path
    ) -> None:
        out = run_isolated(
            "import sys, lambda_src.ingest_handler\n"
            "left_out = {'pandas', 'pyspark', 'torch', 'matplotlib', 'rich', 'cv2'}\n"
            "heavy = left_out & set(sys.modules)\n"
            "print(sorted(heavy))",
            bundle,
            runtime_packages,
            env={"AWS_DEFAULT_REGION": "us-east-1"},
        )
        assert out.strip() == "[]"


def test_cdk_synth_succeeds_without_docker(tmp_path: Path) -> None:
    """``python app.py`` (what ``cdk synth`` runs) with any Docker call bound to fail."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_DOCKER": str(tmp_path / "no-docker"),  # the CLI CDK would run for Docker
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    print(f"synth: {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "Imgpipe.template.json").is_file()
    bundles = [p for p in tmp_path.glob("asset.*") if (p / "lambda_src").is_dir()]
    assert len(bundles) == 1
