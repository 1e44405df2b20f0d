"""The explicit schema of the Parquet image table (``processed/images/``).

One row per accepted image. The process job writes exactly these columns in this order; the
analyze job, the Glue catalog and the notebook read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import types as T


def instance_type() -> T.StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("left", T.DoubleType()),
            T.StructField("top", T.DoubleType()),
            T.StructField("width", T.DoubleType()),
            T.StructField("height", T.DoubleType()),
            T.StructField("confidence", T.DoubleType()),
        ]
    )


def label_type() -> T.StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("name", T.StringType(), nullable=False),
            T.StructField("confidence", T.DoubleType(), nullable=False),
            T.StructField("parents", T.ArrayType(T.StringType(), containsNull=False)),
            T.StructField("categories", T.ArrayType(T.StringType(), containsNull=False)),
            T.StructField("instances", T.ArrayType(instance_type(), containsNull=False)),
        ]
    )


def record_schema() -> T.StructType:
    """The metadata JSON records as Spark reads them (``spark.read.schema(...).json``)."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("schema_version", T.IntegerType()),
            T.StructField("key", T.StringType()),
            T.StructField("size", T.LongType()),
            T.StructField("checksum", T.StringType()),
            T.StructField("format", T.StringType()),
            T.StructField("width", T.IntegerType()),
            T.StructField("height", T.IntegerType()),
            T.StructField("orientation", T.IntegerType()),
            T.StructField("creator", T.StringType()),
            T.StructField("creator_source", T.StringType()),
            T.StructField(
                "exif",
                T.StructType(
                    [
                        T.StructField("make", T.StringType()),
                        T.StructField("model", T.StringType()),
                        T.StructField("datetime_original", T.StringType()),
                        T.StructField("artist", T.StringType()),
                        T.StructField(
                            "gps",
                            T.StructType(
                                [
                                    T.StructField("latitude", T.DoubleType()),
                                    T.StructField("longitude", T.DoubleType()),
                                    T.StructField("altitude", T.DoubleType()),
                                ]
                            ),
                        ),
                    ]
                ),
            ),
            T.StructField("labels", T.ArrayType(label_type())),
            T.StructField("labeler", T.StringType()),
            T.StructField("labeler_version", T.StringType()),
            T.StructField("ingested_at", T.StringType()),
        ]
    )


def quarantine_schema() -> T.StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("schema_version", T.IntegerType()),
            T.StructField("key", T.StringType()),
            T.StructField("size", T.LongType()),
            T.StructField("reason", T.StringType()),
            T.StructField("message", T.StringType()),
            T.StructField("checksum", T.StringType()),
            T.StructField("quarantined_at", T.StringType()),
        ]
    )


def feature_fields() -> list[T.StructField]:
    """Columns computed by the imaging kernel from the one decode of each image."""
    from pyspark.sql import types as T

    return [
        T.StructField("display_width", T.IntegerType()),  # after EXIF orientation
        T.StructField("display_height", T.IntegerType()),
        T.StructField("megapixels", T.DoubleType()),
        T.StructField("aspect", T.DoubleType()),  # display_width / display_height
        T.StructField("phash", T.StringType()),  # 64-bit DCT perceptual hash, 16 hex digits
        T.StructField("sharpness", T.DoubleType()),  # variance of the Laplacian
        T.StructField("brightness", T.DoubleType()),  # mean luma, 0-255
        T.StructField("dominant_color", T.StringType()),  # "#rrggbb"
        T.StructField("thumbnail_key", T.StringType()),
        T.StructField("thumbnail_width", T.IntegerType()),
        T.StructField("thumbnail_height", T.IntegerType()),
        T.StructField("process_error", T.StringType()),  # null when the decode succeeded
    ]


def features_cache_schema() -> T.StructType:
    """``processed/features/``: the kernel's output per content checksum and settings."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("checksum", T.StringType(), nullable=False),
            T.StructField("settings", T.StringType(), nullable=False),
            *feature_fields(),
            T.StructField("computed_at", T.TimestampType()),
        ]
    )


def image_table_schema() -> T.StructType:
    """The ``processed/images/`` table: the record flattened, plus the features."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("key", T.StringType(), nullable=False),
            T.StructField("checksum", T.StringType(), nullable=False),
            T.StructField("size", T.LongType()),
            T.StructField("format", T.StringType()),
            T.StructField("width", T.IntegerType()),
            T.StructField("height", T.IntegerType()),
            T.StructField("orientation", T.IntegerType()),
            T.StructField("creator", T.StringType()),
            T.StructField("creator_source", T.StringType()),
            T.StructField("camera_make", T.StringType()),
            T.StructField("camera_model", T.StringType()),
            T.StructField("datetime_original", T.TimestampType()),
            T.StructField("gps_latitude", T.DoubleType()),
            T.StructField("gps_longitude", T.DoubleType()),
            T.StructField("labels", T.ArrayType(label_type())),
            T.StructField("labeler", T.StringType()),
            T.StructField("labeler_version", T.StringType()),
            T.StructField("ingested_at", T.TimestampType()),
            *feature_fields(),
            T.StructField("processed_at", T.TimestampType()),
        ]
    )
