"""The lowest versions pyproject.toml allows have what the code uses.

pip installs any version at or above a floor, so a floor below a feature's release lets an
install that crashes: ``imgpipe aws`` builds a botocore ``Config`` with
``request_checksum_calculation`` at import, and botocore before 1.36.0 rejects that option.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# botocore 1.36.0 (January 2025) added request_checksum_calculation and
# response_checksum_validation to Config; boto3 1.36.0 is the first release built on it.
CHECKSUM_CONFIG_SINCE = Version("1.36.0")


def floors() -> dict[str, Version]:
    """The ``>=`` floor of each core dependency that has one, by normalised name."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found: dict[str, Version] = {}
    for line in project["dependencies"]:
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
