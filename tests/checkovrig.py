"""Running checkov offline on a synthesized template, shared by the checkov tests of every stack."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def checkov_command() -> list[str] | None:
    """How to run checkov here, or ``None`` when it is not installed."""
    configured = os.environ.get("CHECKOV") or shutil.which("checkov")
    if configured:
        return [configured]
    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    return None


def run_checkov(template: Path) -> dict[str, Any]:
    """checkov's JSON report on one CloudFormation template (offline)."""
    command = checkov_command()
    if command is None:
        pytest.skip("checkov is not installed (set $CHECKOV to its executable)")
    result = subprocess.run(
        [
            *command,
            "-f",
            str(template),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",  # no call to the vendor's API: guidelines are not needed
            "--compact",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    # checkov exits 1 when a check fails; anything else is a crash.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def findings(report: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(check id, logical id) of the failed or skipped checks."""
    return sorted(
        (check["check_id"], check["resource"].split(".", 1)[1])
        for check in report.get("results", {}).get(f"{kind}_checks", [])
    )
