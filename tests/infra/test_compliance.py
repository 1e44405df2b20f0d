"""The whole app against cdk-nag (AwsSolutions, Serverless) and cfn-lint.

Zero unacknowledged findings; every acknowledgement (all in ``stacks/acknowledgements.py``)
carries a specific reason and still matches a real finding, so the list cannot rot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("cdk_nag")

import aws_cdk as cdk
from cdk_nag import NagPack

import stacks.imgpipe_stack
from app import build_app
from tests.nagrig import PACKS, acknowledgements, cfn_lint, findings
from tests.repo import CONTEXT


@pytest.fixture(scope="module")
def app() -> cdk.App:
    return build_app(CONTEXT)


@pytest.fixture(scope="module")
def template_path(app: cdk.App, tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = app.synth().get_stack_by_name("Imgpipe").template
    path = tmp_path_factory.mktemp("cfn") / "Imgpipe.template.json"
    path.write_text(json.dumps(template))
    return path


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.__name__)
def test_no_unacknowledged_findings(app: cdk.App, pack: type[NagPack]) -> None:
    assert findings(app, pack) == []


def test_every_acknowledgement_gives_a_specific_reason(app: cdk.App) -> None:
    acknowledged = list(acknowledgements(app))
    assert acknowledged
    for path, rule, reason in acknowledged:
        assert len(reason) >= 60, f"{path} {rule}: reason too short: {reason!r}"
        # Wildcard findings are acknowledged one by one, never as a whole rule.
        if rule.startswith("AwsSolutions-IAM5"):
            assert "[" in rule, f"{path}: {rule} acknowledges every wildcard at once"


def test_every_acknowledgement_matches_a_real_finding(
    app: cdk.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stacks.imgpipe_stack, "acknowledge_findings", lambda *a, **k: [])
    bare = build_app(CONTEXT)
    raw = {finding for pack in PACKS for finding in findings(bare, pack)}
    for path, rule, _ in acknowledgements(app):
        matches = [p for r, p in raw if r == rule and (p == path or p.startswith(f"{path}/"))]
        assert matches, f"stale acknowledgement: {rule} on {path} matches no finding"


def test_cfn_lint_reports_no_errors_or_warnings(template_path: Path) -> None:
    assert cfn_lint(template_path) == ""
