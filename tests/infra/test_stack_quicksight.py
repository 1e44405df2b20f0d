"""The optional QuickSight dashboard: absent by default; when on, Athena-backed, clean, scoped.

The stack is synthesized once for this module with ``quicksight_principal_arn`` set, and
checked with cdk-nag, cfn-lint (which validates the dashboard definition against the resource
schema) and checkov, like the default stack.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

import aws_cdk as cdk
from aws_cdk.assertions import Template

import stacks.imgpipe_stack
from app import build_app
from stacks.catalog import quarantine_reasons_sql
from stacks.quicksight import labels_sql, quality_sql
from stacks.settings import DeploySettings
from tests.checkovrig import findings as checkov_findings
from tests.checkovrig import run_checkov
from tests.nagrig import PACKS, acknowledgements, cfn_lint
from tests.nagrig import findings as nag_findings

PRINCIPAL = "arn:aws:quicksight:us-east-1:123456789012:group/default/photo-team"
# The image table's columns that QuickSight can type, with the type QuickSight gives them;
# written out here (not derived) so that a schema change shows up as a failing test.
IMAGE_COLUMNS = [
    ("key", "STRING"), ("checksum", "STRING"), ("size", "INTEGER"), ("format", "STRING"),
    ("width", "INTEGER"), ("height", "INTEGER"), ("orientation", "INTEGER"),
    ("creator", "STRING"), ("creator_source", "STRING"), ("camera_make", "STRING"),
    ("camera_model", "STRING"), ("datetime_original", "DATETIME"),
    ("gps_latitude", "DECIMAL"), ("gps_longitude", "DECIMAL"), ("labeler", "STRING"),
    ("labeler_version", "STRING"), ("ingested_at", "DATETIME"), ("display_width", "INTEGER"),
    ("display_height", "INTEGER"), ("megapixels", "DECIMAL"), ("aspect", "DECIMAL"),
    ("phash", "STRING"), ("sharpness", "DECIMAL"), ("brightness", "DECIMAL"),
    ("dominant_color", "STRING"), ("thumbnail_key", "STRING"), ("thumbnail_width", "INTEGER"),
    ("thumbnail_height", "INTEGER"), ("process_error", "STRING"), ("processed_at", "DATETIME"),
]  # fmt: skip


def enabled(cdk_context: dict[str, Any]) -> dict[str, Any]:
    context = copy.deepcopy(cdk_context)
    context["imgpipe"] = {**context["imgpipe"], "quicksight_principal_arn": PRINCIPAL}
    return context


@pytest.fixture(scope="module")
def app(cdk_context: dict[str, Any]) -> cdk.App:
    return build_app(enabled(cdk_context))


@pytest.fixture(scope="module")
def template(app: cdk.App) -> Template:
    return Template.from_stack(app.node.find_child("Imgpipe"))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data_sets(template: Template) -> dict[str, dict[str, Any]]:
    found = template.find_resources("AWS::QuickSight::DataSet").values()
    return {d["Properties"]["DataSetId"].rsplit("-", 1)[1]: d["Properties"] for d in found}


def test_default_settings_add_no_quicksight_resource(imgpipe_template: Template) -> None:
    types = {r["Type"] for r in imgpipe_template.to_json()["Resources"].values()}
    assert not [t for t in types if t.startswith("AWS::QuickSight::")]
    assert "quicksight.amazonaws.com" not in json.dumps(imgpipe_template.to_json())


def test_the_data_source_is_athena_in_the_stacks_workgroup_as_its_own_role(
    template: Template,
) -> None:
    (source,) = template.find_resources("AWS::QuickSight::DataSource").values()
    (workgroup_id,) = template.find_resources("AWS::Athena::WorkGroup")
    (role_id,) = [
        logical_id
        for logical_id, role in template.find_resources("AWS::IAM::Role").items()
        if "quicksight.amazonaws.com" in json.dumps(role)
    ]
    properties = source["Properties"]
    assert properties["Type"] == "ATHENA"
    assert properties["DataSourceParameters"] == {
        "AthenaParameters": {
            "WorkGroup": {"Ref": workgroup_id},
            "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        }
    }
    assert properties["SslProperties"] == {"DisableSsl": False}


def test_the_images_data_set_has_the_image_tables_columns(
    data_sets: dict[str, dict[str, Any]],
) -> None:
    images = data_sets["images"]
    assert images["ImportMode"] == "DIRECT_QUERY"
    (table,) = images["PhysicalTableMap"].values()
    relational = table["RelationalTable"]
    assert relational["Catalog"] == "AwsDataCatalog"
    assert relational["Schema"] == "imgpipe_imgpipe"
    assert relational["Name"] == "images"
    columns = [(c["Name"], c["Type"]) for c in relational["InputColumns"]]
    assert columns == IMAGE_COLUMNS


def test_the_labels_data_set_has_one_row_per_label(data_sets: dict[str, dict[str, Any]]) -> None:
    labels = data_sets["labels"]
    assert labels["ImportMode"] == "DIRECT_QUERY"
    (table,) = labels["PhysicalTableMap"].values()
    sql = table["CustomSql"]["SqlQuery"]
    assert "CROSS JOIN UNNEST" in sql and '"imgpipe_imgpipe"."images"' in sql
    assert [(c["Name"], c["Type"]) for c in table["CustomSql"]["Columns"]] == [
        ("key", "STRING"),
        ("creator", "STRING"),
        ("datetime_original", "DATETIME"),
        ("label", "STRING"),
        ("confidence", "DECIMAL"),
    ]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (labels_sql("db"), ["key", "creator", "datetime_original", "label", "confidence"]),
        (quality_sql("db"), ["flag", "rule", "images"]),
        (quarantine_reasons_sql("db"), ["reason", "files"]),
    ],
    ids=["labels", "quality", "quarantine"],
)
def test_the_custom_sql_parses_as_trino_and_selects_its_columns(
    sql: str, expected: list[str]
) -> None:
    sqlglot = pytest.importorskip("sqlglot")
    parsed = sqlglot.parse_one(sql, read="trino")
    assert [s.alias_or_name for s in parsed.selects] == expected


def test_the_quarantine_data_set_counts_live_records_per_reason(
    data_sets: dict[str, dict[str, Any]],
) -> None:
    quarantine = data_sets["quarantine"]
    assert quarantine["ImportMode"] == "DIRECT_QUERY"
    (table,) = quarantine["PhysicalTableMap"].values()
    sql = table["CustomSql"]["SqlQuery"]
    assert sql == quarantine_reasons_sql("imgpipe_imgpipe")
    assert '"imgpipe_imgpipe"."quarantine"' in sql and "WHERE reason IS NOT NULL" in sql
    assert [(c["Name"], c["Type"]) for c in table["CustomSql"]["Columns"]] == [
        ("reason", "STRING"),
        ("files", "INTEGER"),
    ]


def test_the_quality_flags_use_the_analyze_jobs_thresholds() -> None:
    sql = quality_sql("db")
    for rule in ("sharpness < 100.0", "brightness < 40.0", "brightness > 215.0"):
        assert f"count_if({rule})" in sql


def test_everything_is_shared_with_the_principal_only(template: Template) -> None:
    permissions = {
        resource["Type"]: resource["Properties"]["Permissions"]
        for resource in template.to_json()["Resources"].values()
        if resource["Type"].startswith("AWS::QuickSight::")
    }
    assert set(permissions) == {
        "AWS::QuickSight::DataSource",
        "AWS::QuickSight::DataSet",
        "AWS::QuickSight::Dashboard",
    }
    for kind, granted in permissions.items():
        (grant,) = granted
        assert grant["Principal"] == PRINCIPAL, kind
        # Viewing and using, never updating or deleting: that stays with the stack.
        assert not [a for a in grant["Actions"] if "Update" in a or "Delete" in a], kind
    assert permissions["AWS::QuickSight::Dashboard"][0]["Actions"] == [
        "quicksight:DescribeDashboard",
        "quicksight:ListDashboardVersions",
        "quicksight:QueryDashboard",
    ]


def test_the_athena_role_reads_the_table_and_writes_only_athena_results(
    template: Template,
) -> None:
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any("QuickSight" in r["Ref"] for r in p["Properties"]["Roles"])
    ]
    text = json.dumps(policy)
    writes = [s for s in policy if "s3:PutObject" in s["Action"]]
    (write,) = writes
    assert json.dumps(write["Resource"]).endswith('"/athena-results/*"]]}')
    assert "s3:DeleteObject" not in text
    reads = [s for s in policy if s["Action"] == "s3:GetObject"]
    (read,) = reads
    read_prefixes = [json.dumps(r).rsplit('"', 2)[1] for r in read["Resource"]]
    assert read_prefixes == ["/processed/images/*", "/quarantine/*"]
    (listing,) = [s for s in policy if s["Action"] == ["s3:ListBucket", "s3:GetBucketLocation"]]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [
        "processed/images/*",
        "quarantine/*",
        "athena-results/*",
    ]
    glue = next(s for s in policy if "glue:GetTable" in s["Action"])
    assert all(a.startswith("glue:Get") or a == "glue:BatchGetPartition" for a in glue["Action"])
    glue_tables = [
        json.dumps(r).rsplit(":table/", 1)[1]
        for r in glue["Resource"]
        if ":table/" in json.dumps(r)
    ]
    assert glue_tables == ['imgpipe_imgpipe/images"]]}', 'imgpipe_imgpipe/quarantine"]]}']
    assert '"Resource": "*"' not in text


def test_the_dashboard_shows_one_visual_per_question(template: Template) -> None:
    (dashboard,) = template.find_resources("AWS::QuickSight::Dashboard").values()
    (sheet,) = dashboard["Properties"]["Definition"]["Sheets"]
    titles = {
        next(iter(v.values()))["Title"]["FormatText"]["PlainText"]: next(iter(v))
        for v in sheet["Visuals"]
    }
    assert titles == {
        "Top labels (images)": "BarChartVisual",
        "Images per creator": "BarChartVisual",
        "Images per month taken": "LineChartVisual",
        "Cameras (model)": "BarChartVisual",
        "Quality flags": "BarChartVisual",
        "Quarantine reasons": "BarChartVisual",
    }
    declared = {
        d["Identifier"]
        for d in dashboard["Properties"]["Definition"]["DataSetIdentifierDeclarations"]
    }
    assert "quarantine" in declared
    (reasons,) = [v["BarChartVisual"] for v in sheet["Visuals"] if "quarantine" in json.dumps(v)]
    wells = reasons["ChartConfiguration"]["FieldWells"]["BarChartAggregatedFieldWells"]
    (category,) = wells["Category"]
    (value,) = wells["Values"]
    assert category["CategoricalDimensionField"]["Column"] == {
        "DataSetIdentifier": "quarantine",
        "ColumnName": "reason",
    }
    assert value["NumericalMeasureField"]["Column"]["ColumnName"] == "files"
    assert value["NumericalMeasureField"]["AggregationFunction"] == {
        "SimpleNumericalAggregation": "SUM"
    }


def test_a_principal_that_is_not_a_quicksight_arn_is_refused() -> None:
    with pytest.raises(ValueError, match="quicksight_principal_arn"):
        DeploySettings.from_context({"imgpipe": {"quicksight_principal_arn": "alice"}})


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.__name__)
def test_no_unacknowledged_nag_finding_with_quicksight(app: cdk.App, pack: type) -> None:
    assert nag_findings(app, pack) == []


def test_every_quicksight_acknowledgement_matches_a_real_finding(
    app: cdk.App, cdk_context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stacks.imgpipe_stack, "acknowledge_findings", lambda *a, **k: [])
    bare = build_app(enabled(cdk_context))
    raw = {finding for pack in PACKS for finding in nag_findings(bare, pack)}
    ours = [(p, r) for p, r, _ in acknowledgements(app) if "/QuickSight/" in p]
    assert len(ours) == 3
    for path, rule in ours:
        assert any(r == rule and p.startswith(path) for r, p in raw), f"stale: {rule} on {path}"


@pytest.fixture(scope="module")
def template_path(app: cdk.App, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quicksight") / "Imgpipe.template.json"
    path.write_text(json.dumps(app.synth().get_stack_by_name("Imgpipe").template))
    return path


def test_cfn_lint_validates_the_dashboard_definition(template_path: Path) -> None:
    assert cfn_lint(template_path) == ""


def test_checkov_passes_with_quicksight(template_path: Path) -> None:
    report = run_checkov(template_path)
    assert report["summary"]["parsing_errors"] == 0
    assert checkov_findings(report, "failed") == []
