"""The Glue catalog over the image table and the quarantine records, an Athena workgroup.

The Glue columns are generated from :func:`imgpipe.table.image_table_schema`, the schema the
process job writes, and :func:`imgpipe.table.quarantine_schema`, so the catalog cannot drift
from the files.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from imgpipe.records import IMAGES_TABLE_PREFIX, QUARANTINE_PREFIX
from imgpipe.table import image_table_schema, quarantine_schema
from stacks.settings import DeploySettings
from stacks.storage import ATHENA_RESULTS_PREFIX

if TYPE_CHECKING:
    from pyspark.sql import types as T

# Athena bills per byte scanned; a query scanning more than this is cancelled.
BYTES_SCANNED_CUTOFF = 10 * 1024**3
IMAGES_TABLE = "images"
QUARANTINE_TABLE = "quarantine"
TOP_N = 20

_PRIMITIVE_HIVE_TYPES = {
    "StringType": "string",
    "LongType": "bigint",
    "IntegerType": "int",
    "ShortType": "smallint",
    "ByteType": "tinyint",
    "DoubleType": "double",
    "FloatType": "float",
    "BooleanType": "boolean",
    "TimestampType": "timestamp",
    "DateType": "date",
    "BinaryType": "binary",
}

PARQUET_STORAGE = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serialization_library": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}
# Quarantine records are indented JSON, one object per file: the Hive and OpenX JSON SerDes
# need one object per line; Athena's Ion SerDe reads JSON (Ion is a superset) across lines.
ION_STORAGE = {
    "input_format": "com.amazon.ionhiveserde.formats.IonInputFormat",
    "output_format": "com.amazon.ionhiveserde.formats.IonOutputFormat",
    "serialization_library": "com.amazon.ionhiveserde.IonHiveSerDe",
}


def hive_type(data_type: T.DataType) -> str:
    """The Hive/Glue type string of a Spark type (``array<struct<name:string,...>>``).

    Raises:
        ValueError: For a Spark type with no Glue equivalent used here (maps, intervals...).
    """
    from pyspark.sql import types as T

    if isinstance(data_type, T.ArrayType):
        return f"array<{hive_type(data_type.elementType)}>"
    if isinstance(data_type, T.StructType):
        fields = ",".join(f"{f.name}:{hive_type(f.dataType)}" for f in data_type.fields)
        return f"struct<{fields}>"
    if isinstance(data_type, T.DecimalType):
        return f"decimal({data_type.precision},{data_type.scale})"
    name = type(data_type).__name__
    if name not in _PRIMITIVE_HIVE_TYPES:
        raise ValueError(f"no Glue type for Spark type {data_type.simpleString()}")
    return _PRIMITIVE_HIVE_TYPES[name]


def glue_columns(schema: T.StructType) -> list[glue.CfnTable.ColumnProperty]:
    """Glue columns, in order, for the top-level fields of a Spark schema."""
    return [glue.CfnTable.ColumnProperty(name=f.name, type=hive_type(f.dataType)) for f in schema]


def quarantine_reasons_sql(database: str) -> str:
    """Athena (Trino) SQL: quarantined files per reason code.

    A superseded marker (the file was later accepted) has no ``reason`` and is left out.
    """
    return f"""SELECT reason, count(*) AS files
FROM "{database}"."{QUARANTINE_TABLE}"
WHERE reason IS NOT NULL
GROUP BY reason"""


def saved_queries(database: str) -> dict[str, tuple[str, str]]:
    """The main analyses as Athena (Trino) SQL: name -> (description, query)."""
    table = f'"{database}"."{IMAGES_TABLE}"'
    return {
        "top-labels": (
            "The most frequent labels: images carrying each label and its mean confidence.",
            f"""SELECT t.label, count(DISTINCT i.key) AS images,
       round(avg(t.confidence), 2) AS mean_confidence
FROM {table} AS i
CROSS JOIN UNNEST(
  transform(i.labels, l -> l.name), transform(i.labels, l -> l.confidence)
) AS t (label, confidence)
GROUP BY t.label
ORDER BY images DESC, t.label
LIMIT {TOP_N}""",
        ),
        "creator-contributions": (
            "Images and bytes contributed by each creator.",
            f"""SELECT coalesce(creator, 'unknown') AS creator, count(*) AS images,
       coalesce(sum(size), 0) AS bytes
FROM {table}
GROUP BY coalesce(creator, 'unknown')
ORDER BY images DESC, creator""",
        ),
        "images-by-month": (
            "Images per month of the EXIF DateTimeOriginal (images without one left out).",
            f"""SELECT date_format(datetime_original, '%Y-%m') AS month, count(*) AS images
FROM {table}
WHERE datetime_original IS NOT NULL
GROUP BY date_format(datetime_original, '%Y-%m')
ORDER BY month""",
        ),
        "cameras": (
            "Camera make and model from EXIF; 'unknown' where an image has none.",
            f"""SELECT coalesce(nullif(trim(camera_make), ''), 'unknown') AS make,
       coalesce(nullif(trim(camera_model), ''), 'unknown') AS model,
       count(*) AS images
FROM {table}
GROUP BY 1, 2
ORDER BY images DESC, make, model
LIMIT {TOP_N}""",
        ),
        "quarantine-reasons": (
            "Quarantined files per reason code (superseded markers left out).",
            f"{quarantine_reasons_sql(database)}\nORDER BY files DESC, reason",
        ),
    }


class Catalog(Construct):
    """Glue database, image and quarantine tables, Athena workgroup and saved queries.

    Attributes:
        database_name: The Glue database (``<stack prefix>_imgpipe``, lower case).
        images_table: The external Parquet table over ``processed/images/``.
        quarantine_table: The external JSON (Ion SerDe) table over ``quarantine/``.
        workgroup: The Athena workgroup (enforced settings, encrypted results, scan cutoff).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.database_name = re.sub(r"[^a-z0-9_]", "_", f"{settings.stack_prefix}_imgpipe".lower())
        database = self._build_database()
        self.images_table = self._build_images_table(bucket)
        self.images_table.node.add_dependency(database)
        self.quarantine_table = self._build_quarantine_table(bucket)
        self.quarantine_table.node.add_dependency(database)
        self.workgroup = self._build_workgroup(settings, bucket)
        self._build_saved_queries()

    def _build_database(self) -> glue.CfnDatabase:
        return glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="imgpipe: the processed image table and the quarantine records",
            ),
        )

    def _build_images_table(self, bucket: s3.IBucket) -> glue.CfnTable:
        return self._external_table(
            "ImagesTable",
            name=IMAGES_TABLE,
            description="One row per accepted image (written by the process job).",
            classification="parquet",
            schema=image_table_schema(),
            location=f"s3://{bucket.bucket_name}/{IMAGES_TABLE_PREFIX}",
            storage=PARQUET_STORAGE,
            serde_parameters={"serialization.format": "1"},
        )

    def _build_quarantine_table(self, bucket: s3.IBucket) -> glue.CfnTable:
        # Records may sit in creator folders (quarantine/CREATOR/NAME.json). Athena's docs say
        # it reads "all data" under the location; that this includes subfolders is not checked
        # here (no account): README says how to check it after the first deploy.
        return self._external_table(
            "QuarantineTable",
            name=QUARANTINE_TABLE,
            description="One row per quarantine record (and superseded marker: no reason).",
            classification="json",
            schema=quarantine_schema(),
            location=f"s3://{bucket.bucket_name}/{QUARANTINE_PREFIX}",
            storage=ION_STORAGE,
        )

    def _external_table(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        classification: str,
        schema: T.StructType,
        location: str,
        storage: dict[str, str],
        serde_parameters: dict[str, str] | None = None,
    ) -> glue.CfnTable:
        """An external Glue table whose columns come from the pipeline's own Spark schema."""
        return glue.CfnTable(
            self,
            construct_id,
            catalog_id=Stack.of(self).account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters={"classification": classification, "EXTERNAL": "TRUE"},
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=glue_columns(schema),
                    location=location,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=storage["serialization_library"],
                        parameters=serde_parameters,
                    ),
                    input_format=storage["input_format"],
                    output_format=storage["output_format"],
                ),
            ),
        )

    def _build_workgroup(self, settings: DeploySettings, bucket: s3.IBucket) -> athena.CfnWorkGroup:
        return athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=f"{settings.stack_prefix}-imgpipe",
            description="imgpipe: queries over the processed image table",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )

    def _build_saved_queries(self) -> None:
        for name, (description, sql) in saved_queries(self.database_name).items():
            query = athena.CfnNamedQuery(
                self,
                f"Query-{name}",
                name=name,
                description=description,
                database=self.database_name,
                query_string=sql,
                work_group=self.workgroup.name,
            )
            query.node.add_dependency(self.workgroup)
            query.node.add_dependency(self.images_table, self.quarantine_table)
