"""The lowest versions pyproject.toml allows have what the code uses.

pip installs any version at or above a floor, so a floor below a feature's release lets an
install that crashes: ``imgpipe aws`` builds a botocore ``Config`` with
``request_checksum_calculation`` at import, and botocore before 1.36.0 rejects that option.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import requires

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.repo import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
# botocore 1.36.0 (January 2025) added request_checksum_calculation and
# response_checksum_validation to Config; boto3 1.36.0 is the first release built on it.
CHECKSUM_CONFIG_SINCE = Version("1.36.0")


def floors(extra: str | None = None) -> dict[str, Version]:
    """The ``>=`` floor of each dependency that has one (core, or of ``extra``), by name."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    found: dict[str, Version] = {}
    for line in lines:
        requirement = Requirement(line)
        lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
        if lows:
            found[requirement.name.lower()] = max(lows)
    return found


@pytest.mark.parametrize("package", ["botocore", "boto3"])
def test_floor_has_the_checksum_options_of_the_upload_config(package: str) -> None:
    # botocore is named on its own: boto3's floor alone would let a resolver keep an older
    # botocore that another package pins.
    assert package in floors(), f"{package} needs an explicit floor in pyproject.toml"
    assert floors()[package] >= CHECKSUM_CONFIG_SINCE


def test_the_upload_config_takes_the_option_it_is_floored_for() -> None:
    # The installed botocore is at or above the floor: the option must be accepted, and the
    # setting the CLI relies on must be the one it reads back.
    from botocore.config import Config

    from imgpipe.aws_ops import UPLOAD_CONFIG

    assert isinstance(UPLOAD_CONFIG, Config)
    # botocore-stubs do not know the option yet.
    setting = UPLOAD_CONFIG.request_checksum_calculation  # type: ignore[attr-defined]
    assert setting == "when_required"


@pytest.mark.parametrize("package", ["aws-cdk-lib", "constructs"])
def test_cdk_floors_are_what_the_installed_cdk_nag_requires(package: str) -> None:
    # cdk-nag 3 finds nothing to acknowledge without aws_cdk.Validations (a recent
    # aws-cdk-lib): a lower floor would promise installs that cannot synthesize.
    pytest.importorskip("cdk_nag")
    (needed,) = [
        Requirement(line)
        for line in requires("cdk-nag") or []
        if Requirement(line).name.lower() == package
    ]
    lows = [Version(s.version) for s in needed.specifier if s.operator == ">="]
    assert floors("cdk")[package] >= max(lows)
