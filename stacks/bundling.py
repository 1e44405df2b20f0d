"""Packaging without Docker, at synth time, cached under ``build/``.

Three artefacts:

* the project code as a zip (``--py-files`` of the Spark jobs), deterministic so that its
  asset hash changes only when the code does;
* the Spark jobs' third-party dependencies as a tar.gz (``spark.archives``), built with
  ``pip install --only-binary=:all: --platform ...`` for the workers' architecture;
* the Lambda bundle (handler, library and its dependencies) through CDK's local bundling.

pip installs are cached by a hash of (requirements, platform, Python version), so only the
first synth downloads wheels; later synths and tests reuse the cached directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from stacks.settings import DeploySettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = PROJECT_ROOT / "build"

# Packages in the Spark jobs' --py-files zip: the entry points (each also an asset of its own)
# and the library and analysis they import.
CODE_PACKAGES = ("imgpipe", "spark_jobs", "analysis")
# What the ingest Lambda imports: its adapter and the shared library.
LAMBDA_PACKAGES = ("lambda_src", "imgpipe")


def project_extra(name: str, root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """The requirements of one of ``pyproject.toml``'s extras: the pins are written there only."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return tuple(project["optional-dependencies"][name])


# The Spark jobs' dependencies (the ``emr`` extra). boto3/botocore and pyspark come with the
# EMR release: shipping our own copies would shadow the release's versions, so they are kept
# out of the archive even where another package pulls them in.
EMR_REQUIREMENTS = project_extra("emr")
EMR_PROVIDED = ("boto3", "botocore", "s3transfer", "pyspark", "py4j")

# The Lambda's dependencies (the ``lambda`` extra, which says why it is this short).
LAMBDA_REQUIREMENTS = project_extra("lambda")
# aws-xray-sdk pulls in botocore; the runtime's boto3 must find its own botocore instead.
LAMBDA_PROVIDED = ("boto3", "botocore", "s3transfer")
# Files the function never loads: test suites and type stubs. fnmatch patterns over paths
# ("*" also matches "/").
LAMBDA_PRUNED = ("*/tests/*", "*.pyi")
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # what AWS enforces: 262,144,000 bytes
# Room kept free under the limit, so that a dependency's next release cannot break a deploy:
# a bundle over the budget fails the synth (and the bundling tests) instead.
LAMBDA_HEADROOM = 40 * 1024 * 1024
LAMBDA_BUNDLE_BUDGET = LAMBDA_UNZIPPED_LIMIT - LAMBDA_HEADROOM

_SKIPPED_NAMES = {"__pycache__", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo", ".ipynb"}
# Zip entries need a date from 1980 on; a fixed one keeps the bytes (and asset hash) stable.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BundlingError(RuntimeError):
    """Packaging failed; the message carries pip's output."""


def _source_files(root: Path, packages: Sequence[str]) -> Iterator[Path]:
    """Files of ``packages`` under ``root`` in sorted order, without caches and notebooks."""
    for package in packages:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if any(part in _SKIPPED_NAMES for part in relative.parts):
                continue
            if path.is_file() and path.suffix not in _SKIPPED_SUFFIXES:
                yield path


def source_digest(packages: Sequence[str], *extra: str, root: Path = PROJECT_ROOT) -> str:
    """A SHA-256 over the packages' file names and contents, plus ``extra`` strings."""
    digest = hashlib.sha256()
    for path in _source_files(root, packages):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def build_code_zip(out_dir: Path = BUILD_DIR / "code", root: Path = PROJECT_ROOT) -> Path:
    """Zip ``imgpipe/``, ``spark_jobs/`` and ``analysis/`` (with the SQL and templates).

    Entries are sorted and carry a fixed timestamp, so equal code gives equal bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _source_files(root, CODE_PACKAGES):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "imgpipe-code.zip"
    data = buffer.getvalue()
    if not target.exists() or target.read_bytes() != data:
        _atomic_write(target, data)
    return target


def dependencies_key(requirements: Sequence[str], settings: DeploySettings) -> str:
    """The cache key of a pip install: requirements, platform and Python version."""
    payload = json.dumps(
        [sorted(requirements), settings.pip_platform, settings.python_version], sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_dependencies(
    target_dir: Path, requirements: Sequence[str], settings: DeploySettings
) -> Path:
    """Install ``requirements`` as wheels for the target platform; cached by their key.

    Args:
        target_dir: Cache directory; the install goes to ``target_dir/<key>/``.
        requirements: pip requirement specifiers.
        settings: Gives the target platform (architecture) and Python version.

    Returns:
        The directory holding the installed packages (a ``--target`` directory).

    Raises:
        BundlingError: pip failed, for instance when a package has no wheel for the platform.
    """
    key = dependencies_key(requirements, settings)
    installed = target_dir / key
    if (installed / ".complete").exists():
        return installed
    target_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target_dir))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--only-binary=:all:",
        "--platform",
        settings.pip_platform,
        "--python-version",
        settings.python_version,
        "--implementation",
        "cp",
        "--target",
        str(staging),
        *requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundlingError(
            f"pip could not install wheels for {settings.pip_platform} / Python "
            f"{settings.python_version}:\n{result.stderr.strip() or result.stdout.strip()}"
        )
    # Console scripts are linked against this machine's interpreter: useless on the target.
    shutil.rmtree(staging / "bin", ignore_errors=True)
    (staging / ".complete").write_text(json.dumps(sorted(requirements)))
    # Rename last so a failed or interrupted install never looks complete.
    shutil.rmtree(installed, ignore_errors=True)
    staging.rename(installed)
    return installed


def build_emr_archive(settings: DeploySettings, build_dir: Path = BUILD_DIR) -> Path:
    """The Spark jobs' dependencies as a deterministic gzipped tar for ``spark.archives``.

    Packages sit at the archive's root, so ``#deps`` unpacks them into ``./deps``.
    """
    deps = build_dependencies(build_dir / "deps", EMR_REQUIREMENTS, settings)
    # .tgz, not .tar.gz: the asset's S3 key keeps only the last suffix, and Spark unpacks
    # an archive by its name (".gz" alone would be copied, not extracted).
    archive = build_dir / "emr" / f"emr-deps-{deps.name}.tgz"
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}-")
    # filename="" and mtime=0 keep the gzip header free of the temporary name and the time.
    with (
        os.fdopen(fd, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for path in sorted(deps.rglob("*")):
            relative = path.relative_to(deps)
            if _is_provided(relative, EMR_PROVIDED) or not path.is_file():
                continue
            info = tar.gettarinfo(str(path), arcname=relative.as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    os.replace(tmp, archive)
    return archive


def directory_size(path: Path) -> int:
    """Bytes of all files under ``path`` (the unzipped size Lambda counts)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@jsii.implements(ILocalBundling)
class LambdaLocalBundler:
    """Builds the Lambda bundle on this machine: no Docker needed.

    Copies ``lambda_src/`` and ``imgpipe/`` and adds the Lambda requirements installed as
    wheels for the function's architecture (from the cache).
    """

    def __init__(self, settings: DeploySettings, root: Path = PROJECT_ROOT) -> None:
        self._settings = settings
        self._root = root

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        """Fill ``output_dir``; returns True (failures raise so synth stops with pip's error)."""
        out = Path(output_dir)
        deps = build_dependencies(BUILD_DIR / "deps", LAMBDA_REQUIREMENTS, self._settings)
        for path in sorted(deps.rglob("*")):
            relative = path.relative_to(deps)
            if (
                path.is_file()
                and not _is_provided(relative, LAMBDA_PROVIDED)
                and not _pruned(relative)
            ):
                (out / relative).parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(path, out / relative)
        for path in _source_files(self._root, LAMBDA_PACKAGES):
            target = out / path.relative_to(self._root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        size = directory_size(out)
        if size > LAMBDA_BUNDLE_BUDGET:
            raise BundlingError(
                f"the {self._settings.architecture} Lambda bundle is {size / 2**20:.1f} MiB"
                f" unzipped: over the {LAMBDA_BUNDLE_BUDGET / 2**20:.0f} MiB budget, which keeps"
                f" {LAMBDA_HEADROOM / 2**20:.0f} MiB free under Lambda's"
                f" {LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MiB limit; drop or prune a dependency"
            )
        return True


def lambda_code(settings: DeploySettings) -> lambda_.Code:
    """The ingest Lambda's code, bundled locally (see :class:`LambdaLocalBundler`)."""
    asset_hash = source_digest(
        LAMBDA_PACKAGES,
        dependencies_key(LAMBDA_REQUIREMENTS, settings),
        *LAMBDA_PROVIDED,
        *LAMBDA_PRUNED,
    )
    return lambda_.Code.from_asset(
        str(PROJECT_ROOT),
        # A custom hash: fingerprinting the project root would read .venv/ and build/.
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash,
        bundling=BundlingOptions(
            # Required by the API; never pulled, because local bundling always succeeds or
            # raises with pip's message.
            image=DockerImage.from_registry(
                f"public.ecr.aws/sam/build-python{settings.python_version}"
            ),
            local=LambdaLocalBundler(settings),
        ),
    )


def _is_provided(relative: Path, provided: Sequence[str]) -> bool:
    """Whether a path of a ``--target`` directory belongs to a package the platform provides.

    Also true for pip's ``.complete`` marker of this cache.
    """
    top = relative.parts[0].split("-")[0].lower()  # "botocore" or "botocore-1.2.dist-info"
    return top in {name.replace("-", "_") for name in provided} or top == ".complete"


def _pruned(relative: Path) -> bool:
    """Whether the Lambda bundle leaves out this dependency file (see LAMBDA_PRUNED)."""
    return any(fnmatch(relative.as_posix(), pattern) for pattern in LAMBDA_PRUNED)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link a cached file where possible (same file system): instant, no extra space.

    Nothing writes to bundled files, so sharing them with the cache is safe.
    """
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
