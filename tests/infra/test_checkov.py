"""checkov on the synthesized template, next to cdk-nag and cfn-lint (test_compliance.py).

No failed check; every skipped one is kept on purpose in ``stacks/checkov_skips.py`` with its
reason, and every skip there still matches a real finding. checkov pins old ``boto3``,
``packaging`` and ``networkx`` that conflict with this project's, so it lives in its own
environment: the test runs the ``checkov`` named by ``$CHECKOV``, else the one on ``PATH``,
else ``python -m checkov.main`` when it is importable here, and is skipped without one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import build_app
from stacks.checkov_skips import CHECKOV_SKIPS
from tests.checkovrig import findings, run_checkov
from tests.repo import CONTEXT


def synthesize(tmp: Path, skips: bool) -> Path:
    """Write the stack's template, with its checkov skips or with them stripped out."""
    app = build_app(CONTEXT)
    template = app.synth().get_stack_by_name("Imgpipe").template
    if not skips:
        for resource in template.get("Resources", {}).values():
            resource.get("Metadata", {}).pop("checkov", None)
    path = tmp / f"Imgpipe-{'skips' if skips else 'bare'}.template.json"
    path.write_text(json.dumps(template))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_checkov(synthesize(tmp_path_factory.mktemp("checkov"), skips=True))


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    print(f"\ncheckov summary: {report.get('summary')}")
    assert findings(report, "failed") == []


def test_checkov_parsed_every_resource(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50  # the template was really checked, not silently empty


def test_every_skip_gives_a_specific_reason() -> None:
    for skip in CHECKOV_SKIPS:
        assert len(skip.comment) >= 60, f"{skip.path} {skip.check}: reason too short"


@pytest.fixture(scope="module")
def bare_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_checkov(synthesize(tmp_path_factory.mktemp("checkov-bare"), skips=False))


def test_every_skip_matches_a_real_finding(
    report: dict[str, Any], bare_report: dict[str, Any]
) -> None:
    # Without the skips, exactly the skipped (check, resource) pairs fail: none is stale.
    assert findings(report, "skipped") == findings(bare_report, "failed")
    assert len(findings(report, "skipped")) == len(CHECKOV_SKIPS)
