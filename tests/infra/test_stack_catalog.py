"""The Glue catalog and Athena workgroup: columns generated from the Spark schema, valid SQL."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match, Template
from pyspark.sql import types as T

from imgpipe.table import image_table_schema, quarantine_schema
from stacks.catalog import hive_type, quarantine_reasons_sql, saved_queries


@pytest.fixture(scope="module")
def template(imgpipe_template: Template) -> Template:
    return imgpipe_template


@pytest.fixture(scope="module")
def tables(template: Template) -> dict[str, dict[str, Any]]:
    found = template.find_resources("AWS::Glue::Table").values()
    return {t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"] for t in found}


@pytest.fixture(scope="module")
def table_input(tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return tables["images"]


@pytest.mark.parametrize(
    ("spark_type", "expected"),
    [
        (T.StringType(), "string"),
        (T.LongType(), "bigint"),
        (T.IntegerType(), "int"),
        (T.DoubleType(), "double"),
        (T.TimestampType(), "timestamp"),
        (T.DecimalType(10, 2), "decimal(10,2)"),
        (T.ArrayType(T.StringType()), "array<string>"),
        (
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("name", T.StringType()),
                        T.StructField(
                            "boxes",
                            T.ArrayType(T.StructType([T.StructField("left", T.DoubleType())])),
                        ),
                    ]
                )
            ),
            "array<struct<name:string,boxes:array<struct<left:double>>>>",
        ),
    ],
)
def test_spark_types_become_hive_type_strings(spark_type: T.DataType, expected: str) -> None:
    assert hive_type(spark_type) == expected


def test_a_spark_type_without_a_glue_equivalent_is_refused() -> None:
    with pytest.raises(ValueError, match="no Glue type"):
        hive_type(T.DayTimeIntervalType())


def test_images_table_is_external_parquet_over_processed_images(
    table_input: dict[str, Any],
) -> None:
    assert table_input["Name"] == "images"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    storage = table_input["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    assert storage["OutputFormat"].endswith("MapredParquetOutputFormat")
    location = storage["Location"]["Fn::Join"][1]
    assert location[0] == "s3://" and location[-1] == "/processed/images/"


def test_images_table_has_every_column_of_the_process_job_in_order(
    table_input: dict[str, Any],
) -> None:
    columns = table_input["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == image_table_schema().fieldNames()
    types = {c["Name"]: c["Type"] for c in columns}
    assert types["size"] == "bigint"
    assert types["datetime_original"] == "timestamp"
    assert types["labels"] == (
        "array<struct<name:string,confidence:double,parents:array<string>,"
        "categories:array<string>,instances:array<struct<left:double,top:double,"
        "width:double,height:double,confidence:double>>>>"
    )


def test_the_catalog_has_the_images_and_quarantine_tables(
    tables: dict[str, dict[str, Any]],
) -> None:
    assert set(tables) == {"images", "quarantine"}


def test_quarantine_table_reads_indented_json_with_the_ion_serde(
    tables: dict[str, dict[str, Any]],
) -> None:
    quarantine = tables["quarantine"]
    assert quarantine["TableType"] == "EXTERNAL_TABLE"
    storage = quarantine["StorageDescriptor"]
    # The Hive/OpenX JSON SerDes need one object per line; a record is one indented object.
    assert storage["SerdeInfo"]["SerializationLibrary"] == "com.amazon.ionhiveserde.IonHiveSerDe"
    assert storage["InputFormat"] == "com.amazon.ionhiveserde.formats.IonInputFormat"
    assert storage["OutputFormat"] == "com.amazon.ionhiveserde.formats.IonOutputFormat"
    location = storage["Location"]["Fn::Join"][1]
    assert location[0] == "s3://" and location[-1] == "/quarantine/"


def test_quarantine_table_has_the_quarantine_schemas_columns(
    tables: dict[str, dict[str, Any]],
) -> None:
    columns = tables["quarantine"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == quarantine_schema().fieldNames()
    types = {c["Name"]: c["Type"] for c in columns}
    assert types == {
        "schema_version": "int",
        "key": "string",
        "size": "bigint",
        "reason": "string",
        "message": "string",
        "checksum": "string",
        "quarantined_at": "string",
    }


def test_quarantine_columns_are_the_fields_of_a_quarantine_record() -> None:
    # The record the Lambda and the local run write; the table must name its fields exactly.
    from dataclasses import fields

    from imgpipe.records import QuarantineRecord

    assert set(quarantine_schema().fieldNames()) == {f.name for f in fields(QuarantineRecord)}


def test_workgroup_enforces_encrypted_results_and_a_scan_cutoff(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 10 * 1024**3,
                "ResultConfiguration": {
                    "OutputLocation": {
                        "Fn::Join": ["", ["s3://", Match.any_value(), "/athena-results/"]]
                    },
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                },
            }
        },
    )


def test_saved_queries_are_in_the_workgroup_over_the_database(template: Template) -> None:
    queries = template.find_resources("AWS::Athena::NamedQuery")
    assert {q["Properties"]["Name"] for q in queries.values()} == {
        "top-labels",
        "creator-contributions",
        "images-by-month",
        "cameras",
        "quarantine-reasons",
    }
    (database,) = template.find_resources("AWS::Glue::Database").values()
    for query in queries.values():
        assert query["Properties"]["Database"] == database["Properties"]["DatabaseInput"]["Name"]
        assert query["Properties"]["WorkGroup"] == "Imgpipe-imgpipe"


def _identifiers(sql: str) -> set[str]:
    without_strings = re.sub(r"'[^']*'", "''", sql)
    return set(re.findall(r"\b[a-z_][a-z0-9_]*\b", without_strings))


SQL_WORDS = {
    "select", "as", "from", "cross", "join", "unnest", "transform", "group", "by", "order",
    "desc", "limit", "where", "is", "not", "null", "count", "distinct", "round", "avg", "sum",
    "coalesce", "nullif", "trim", "date_format", "l", "i", "t", "label", "images",
    "mean_confidence", "creator", "bytes", "month", "make", "model", "imgpipe", "files",
}  # fmt: skip


def test_saved_queries_use_only_columns_of_their_table() -> None:
    columns = {
        "images": set(image_table_schema().fieldNames()) | {"name", "confidence"},  # labels
        "quarantine": set(quarantine_schema().fieldNames()),
    }
    for name, (_, sql) in saved_queries("imgpipe").items():
        table = "quarantine" if name.startswith("quarantine") else "images"
        unknown = _identifiers(sql) - columns[table] - SQL_WORDS - {table}
        assert not unknown, f"{name}: {unknown}"


def test_saved_queries_parse_as_trino_sql() -> None:
    sqlglot = pytest.importorskip("sqlglot")
    for name, (_, sql) in saved_queries("imgpipe").items():
        parsed = sqlglot.parse_one(sql, read="trino")
        assert parsed is not None, name
        expected = "quarantine" if name.startswith("quarantine") else "images"
        assert parsed.find(sqlglot.exp.Table).name == expected


def test_quarantine_reasons_leave_superseded_markers_out() -> None:
    sqlglot = pytest.importorskip("sqlglot")
    parsed = sqlglot.parse_one(quarantine_reasons_sql("db"), read="trino")
    assert [s.alias_or_name for s in parsed.selects] == ["reason", "files"]
    where = parsed.args["where"].this
    # A marker has no reason: only `reason IS NOT NULL` keeps it out of the counts.
    assert isinstance(where, sqlglot.exp.Not) and isinstance(where.this, sqlglot.exp.Is)
    assert where.this.this.name == "reason" and isinstance(where.this.expression, sqlglot.exp.Null)
    assert [g.name for g in parsed.args["group"].expressions] == ["reason"]
