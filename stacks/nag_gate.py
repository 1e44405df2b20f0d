"""The CDK app behind CI's synth: the same app as ``app.py``, refused on a cdk-nag finding.

``app.py`` applies no rule pack (cdk-nag runs in ``tests/infra/test_compliance.py``), so a plain
``cdk synth`` would pass with a new finding. CI synthesizes through this module instead
(``cdk synth --app "python -m stacks.nag_gate"``): every unacknowledged AwsSolutions or
Serverless finding is printed and the synth exits non-zero before writing ``cdk.out``.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks

from app import build_app

PACKS: tuple[type[NagPack], ...] = (AwsSolutionsChecks, ServerlessChecks)


def unacknowledged_findings(app: cdk.App) -> list[str]:
    """``rule construct-path`` of every finding no acknowledgement covers, sorted."""
    lines = []
    for pack in PACKS:
        for violation in pack().validate_scope(app).violations:
            for resource in violation.violating_resources:
                where = resource.construct_path or resource.resource_logical_id or "?"
                lines.append(f"{violation.rule_name} {where}")
    return sorted(lines)


def main() -> int:
    """Synthesize the app, or print the findings and return 1."""
    app = build_app()
    found = unacknowledged_findings(app)
    if found:
        print(f"cdk-nag: {len(found)} unacknowledged finding(s):", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
