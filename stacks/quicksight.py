"""Optional QuickSight dashboard over the Glue image and quarantine tables, live through Athena.

On when ``quicksight_principal_arn`` is set. The Athena data source runs in the stack's
workgroup as a role of its own (``AthenaParameters.RoleArn``), which may read the two tables
and write Athena's results and nothing else: QuickSight's account-wide service role is not
touched. Datasets are direct query (no SPICE capacity to buy). The dataset columns come from
:func:`imgpipe.table.image_table_schema`, the schema the Glue table is generated from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_quicksight as quicksight
from aws_cdk import aws_s3 as s3
from constructs import Construct

from analysis.analyze import (
    BLURRY_SHARPNESS_BELOW,
    DARK_BRIGHTNESS_BELOW,
    OVEREXPOSED_BRIGHTNESS_ABOVE,
)
from imgpipe.records import IMAGES_TABLE_PREFIX, QUARANTINE_PREFIX
from imgpipe.table import image_table_schema, label_type
from stacks.catalog import IMAGES_TABLE, QUARANTINE_TABLE, Catalog, quarantine_reasons_sql
from stacks.quicksight_dashboard import dashboard_definition
from stacks.settings import DeploySettings
from stacks.storage import ATHENA_RESULTS_PREFIX

if TYPE_CHECKING:
    from pyspark.sql import types as T

ATHENA_CATALOG = "AwsDataCatalog"
_QUICKSIGHT_TYPES = {
    "StringType": "STRING",
    "LongType": "INTEGER",
    "IntegerType": "INTEGER",
    "ShortType": "INTEGER",
    "ByteType": "INTEGER",
    "DoubleType": "DECIMAL",
    "FloatType": "DECIMAL",
    "DecimalType": "DECIMAL",
    "TimestampType": "DATETIME",
    "DateType": "DATETIME",
    "BooleanType": "BOOLEAN",
}
# What the shared principal may do: use the data source and datasets in analyses of its own,
# and view the dashboard. Only the stack changes or deletes them.
DATA_SOURCE_ACTIONS = (
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
)
DATA_SET_ACTIONS = (
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
)
DASHBOARD_ACTIONS = (
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
)


def quicksight_type(data_type: T.DataType) -> str | None:
    """QuickSight's column type for a Spark type; ``None`` for arrays and structs."""
    return _QUICKSIGHT_TYPES.get(type(data_type).__name__)


def image_columns() -> list[tuple[str, str]]:
    """(name, QuickSight type) of every image-table column QuickSight can read, in order.

    Arrays and structs (``labels``) are left out: QuickSight has no type for them; the
    labels dataset flattens them with SQL instead.
    """
    columns = []
    for field in image_table_schema():
        kind = quicksight_type(field.dataType)
        if kind is not None:
            columns.append((field.name, kind))
    return columns


def label_columns() -> list[tuple[str, str]]:
    """Columns of the labels dataset: the image's key, creator and date, one label each."""
    images = dict(image_columns())
    labels = {f.name: quicksight_type(f.dataType) for f in label_type()}
    return [
        *((name, images[name]) for name in ("key", "creator", "datetime_original")),
        ("label", str(labels["name"])),
        ("confidence", str(labels["confidence"])),
    ]


def labels_sql(database: str) -> str:
    """Athena (Trino) SQL: one row per (image, label)."""
    return f"""SELECT i.key, i.creator, i.datetime_original, t.label, t.confidence
FROM "{database}"."{IMAGES_TABLE}" AS i
CROSS JOIN UNNEST(
  transform(i.labels, l -> l.name), transform(i.labels, l -> l.confidence)
) AS t (label, confidence)"""


QUALITY_COLUMNS = [("flag", "STRING"), ("rule", "STRING"), ("images", "INTEGER")]
QUARANTINE_COLUMNS = [("reason", "STRING"), ("files", "INTEGER")]


def quality_sql(database: str) -> str:
    """Athena SQL: images per quality flag, with the analyze job's thresholds."""
    table = f'"{database}"."{IMAGES_TABLE}"'
    flags = (
        ("blurry", f"sharpness < {BLURRY_SHARPNESS_BELOW}"),
        ("dark", f"brightness < {DARK_BRIGHTNESS_BELOW}"),
        ("overexposed", f"brightness > {OVEREXPOSED_BRIGHTNESS_ABOVE}"),
        ("unmeasured", "sharpness IS NULL OR brightness IS NULL"),
    )
    return "\nUNION ALL\n".join(
        f"SELECT '{flag}' AS flag, '{rule}' AS rule, count_if({rule}) AS images FROM {table}"
        for flag, rule in flags
    )


def _input_columns(
    columns: list[tuple[str, str]],
) -> list[quicksight.CfnDataSet.InputColumnProperty]:
    return [quicksight.CfnDataSet.InputColumnProperty(name=n, type=t) for n, t in columns]


class QuickSightDashboard(Construct):
    """Athena data source, image/label/quality/quarantine datasets and a dashboard, shared.

    Attributes:
        role: The role QuickSight assumes to query Athena for this data source.
        data_source: The Athena data source (the stack's workgroup).
        data_sets: The datasets by identifier (``images``, ``labels``, ``quality``,
            ``quarantine``).
        dashboard: The dashboard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        bucket: s3.IBucket,
        catalog: Catalog,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._account = stack.account
        self._principal = settings.quicksight_principal_arn
        self._id_prefix = f"{settings.stack_prefix.lower()}-imgpipe"
        self._tables = (catalog.images_table, catalog.quarantine_table)
        self.role = self._build_role(bucket, catalog)
        self.data_source = self._build_data_source(catalog)
        database = catalog.database_name
        self.data_sets = {
            "images": self._relational_data_set("images", database),
            "labels": self._sql_data_set("labels", labels_sql(database), label_columns()),
            "quality": self._sql_data_set("quality", quality_sql(database), QUALITY_COLUMNS),
            "quarantine": self._sql_data_set(
                "quarantine", quarantine_reasons_sql(database), QUARANTINE_COLUMNS
            ),
        }
        self.dashboard = self._build_dashboard()

    def _build_role(self, bucket: s3.IBucket, catalog: Catalog) -> iam.Role:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "AthenaRole",
            assumed_by=iam.ServicePrincipal("quicksight.amazonaws.com"),
            description="QuickSight queries the imgpipe image and quarantine tables via Athena",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:StopQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:GetQueryResultsStream",
                    "athena:GetWorkGroup",
                ],
                resources=[
                    stack.format_arn(
                        service="athena", resource="workgroup", resource_name=catalog.workgroup.ref
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                ],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(
                        service="glue", resource="database", resource_name=catalog.database_name
                    ),
                    stack.format_arn(
                        service="glue",
                        resource="table",
                        resource_name=f"{catalog.database_name}/{IMAGES_TABLE}",
                    ),
                    stack.format_arn(
                        service="glue",
                        resource="table",
                        resource_name=f"{catalog.database_name}/{QUARANTINE_TABLE}",
                    ),
                ],
            )
        )
        # Athena reads the table's files and writes the results as the caller, this role.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    bucket.arn_for_objects(f"{IMAGES_TABLE_PREFIX}*"),
                    bucket.arn_for_objects(f"{QUARANTINE_PREFIX}*"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[bucket.arn_for_objects(f"{ATHENA_RESULTS_PREFIX}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {
                        "s3:prefix": [
                            f"{IMAGES_TABLE_PREFIX}*",
                            f"{QUARANTINE_PREFIX}*",
                            f"{ATHENA_RESULTS_PREFIX}*",
                        ]
                    }
                },
            )
        )
        return role

    def _build_data_source(self, catalog: Catalog) -> quicksight.CfnDataSource:
        return quicksight.CfnDataSource(
            self,
            "DataSource",
            aws_account_id=self._account,
            data_source_id=f"{self._id_prefix}-athena",
            name="imgpipe (Athena)",
            type="ATHENA",
            data_source_parameters=quicksight.CfnDataSource.DataSourceParametersProperty(
                athena_parameters=quicksight.CfnDataSource.AthenaParametersProperty(
                    work_group=catalog.workgroup.ref, role_arn=self.role.role_arn
                )
            ),
            ssl_properties=quicksight.CfnDataSource.SslPropertiesProperty(disable_ssl=False),
            permissions=[
                quicksight.CfnDataSource.ResourcePermissionProperty(
                    principal=self._principal, actions=list(DATA_SOURCE_ACTIONS)
                )
            ],
        )

    def _data_set(
        self, name: str, table: quicksight.CfnDataSet.PhysicalTableProperty
    ) -> quicksight.CfnDataSet:
        data_set = quicksight.CfnDataSet(
            self,
            f"DataSet-{name}",
            aws_account_id=self._account,
            data_set_id=f"{self._id_prefix}-{name}",
            name=f"imgpipe {name}",
            import_mode="DIRECT_QUERY",
            physical_table_map={name: table},
            permissions=[
                quicksight.CfnDataSet.ResourcePermissionProperty(
                    principal=self._principal, actions=list(DATA_SET_ACTIONS)
                )
            ],
        )
        # Created (and validated) only once its table and the role's policy exist.
        data_set.node.add_dependency(self.role, *self._tables)
        return data_set

    def _relational_data_set(self, name: str, database: str) -> quicksight.CfnDataSet:
        table = quicksight.CfnDataSet.RelationalTableProperty(
            data_source_arn=self.data_source.attr_arn,
            catalog=ATHENA_CATALOG,
            schema=database,
            name=IMAGES_TABLE,
            input_columns=_input_columns(image_columns()),
        )
        return self._data_set(
            name, quicksight.CfnDataSet.PhysicalTableProperty(relational_table=table)
        )

    def _sql_data_set(
        self, name: str, sql: str, columns: list[tuple[str, str]]
    ) -> quicksight.CfnDataSet:
        table = quicksight.CfnDataSet.CustomSqlProperty(
            data_source_arn=self.data_source.attr_arn,
            name=name,
            sql_query=sql,
            columns=_input_columns(columns),
        )
        return self._data_set(name, quicksight.CfnDataSet.PhysicalTableProperty(custom_sql=table))

    def _build_dashboard(self) -> quicksight.CfnDashboard:
        dashboard = quicksight.CfnDashboard(
            self,
            "Dashboard",
            aws_account_id=self._account,
            dashboard_id=self._id_prefix,
            name="imgpipe: the image collection",
            permissions=[
                quicksight.CfnDashboard.ResourcePermissionProperty(
                    principal=self._principal, actions=list(DASHBOARD_ACTIONS)
                )
            ],
        )
        arns = {name: data_set.attr_arn for name, data_set in self.data_sets.items()}
        dashboard.add_property_override("Definition", dashboard_definition(arns))
        return dashboard
