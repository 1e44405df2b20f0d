"""The pipeline's one typed configuration.

The same names reach the Lambda as environment variables (``IMGPIPE_<NAME>``), the Spark jobs as
command-line arguments and the CDK stacks through ``cdk.json`` context.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class PipelineConfig:
    """Tunables shared by ingest, process, analyze and report.

    Attributes:
        thumbnail_size: Longest side of the JPEG thumbnail, in pixels.
        thumbnail_quality: JPEG quality of thumbnails (1-95).
        min_side: Smallest accepted side in pixels (Rekognition rejects < 80 px).
        max_side: Largest accepted side in pixels (Rekognition rejects > 10,000 px).
        max_pixels: Pixel count above which an image is treated as a decompression bomb.
        max_bytes: Largest accepted object size in bytes.
        max_labels: Most labels kept per image.
        min_confidence: Lowest label confidence kept (0-100).
        top_n: How many rows the "top" analyses keep.
        near_duplicate_distance: Largest perceptual-hash Hamming distance counted as a
            near-duplicate.
    """

    thumbnail_size: int = 512
    thumbnail_quality: int = 85
    min_side: int = 80
    max_side: int = 10_000
    max_pixels: int = 120_000_000
    max_bytes: int = 200 * 1024 * 1024
    max_labels: int = 10
    min_confidence: float = 55.0
    top_n: int = 20
    near_duplicate_distance: int = 6

    def __post_init__(self) -> None:
        if not 16 <= self.thumbnail_size <= 4096:
            raise ValueError(f"thumbnail_size must be 16..4096, got {self.thumbnail_size}")
        if not 1 <= self.thumbnail_quality <= 95:
            raise ValueError(f"thumbnail_quality must be 1..95, got {self.thumbnail_quality}")
        if not 1 <= self.min_side <= self.max_side:
            raise ValueError("min_side must be at least 1 and not above max_side")
        if self.max_pixels < self.min_side * self.min_side:
            raise ValueError("max_pixels is smaller than the smallest accepted image")
        if not 0.0 <= self.min_confidence <= 100.0:
            raise ValueError(f"min_confidence must be 0..100, got {self.min_confidence}")
        if self.max_labels < 1 or self.top_n < 1 or self.max_bytes < 1:
            raise ValueError("max_labels, top_n and max_bytes must be positive")
        if not 0 <= self.near_duplicate_distance <= 64:
            raise ValueError("near_duplicate_distance must be 0..64")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PipelineConfig:
        """Build a config from a mapping of field names to values (strings are converted).

        Unknown names are rejected so that a typo in ``cdk.json`` or the environment is loud.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown config option(s): {', '.join(unknown)}")
        converted: dict[str, Any] = {}
        for name, value in values.items():
            kind = type(getattr(cls(), name))
            try:
                converted[name] = kind(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"config option {name}={value!r} is not a {kind.__name__}"
                ) from exc
        return cls(**converted)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineConfig:
        """Read ``IMGPIPE_<FIELD>`` variables (used by the Lambda)."""
        env = os.environ if environ is None else environ
        values = {
            f.name: env[f"IMGPIPE_{f.name.upper()}"]
            for f in fields(cls)
            if f"IMGPIPE_{f.name.upper()}" in env
        }
        return cls.from_mapping(values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads back to this config."""
        return {f"IMGPIPE_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}

    def to_args(self) -> list[str]:
        """Command-line arguments for the Spark jobs (``--thumbnail-size 512`` ...)."""
        args: list[str] = []
        for f in fields(self):
            args += [f"--{f.name.replace('_', '-')}", str(getattr(self, f.name))]
        return args

    def with_overrides(self, **changes: Any) -> PipelineConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


# What ``imgpipe run --help`` says of each tuning option: its metavar (the unit) and meaning.
OPTION_HELP: dict[str, tuple[str, str]] = {
    "thumbnail_size": ("PIXELS", "longest side of each JPEG thumbnail, in pixels"),
    "thumbnail_quality": ("1-95", "JPEG quality of the thumbnails"),
    "min_side": ("PIXELS", "smallest accepted image side, in pixels (Rekognition needs 80)"),
    "max_side": ("PIXELS", "largest accepted image side, in pixels (Rekognition: 10,000)"),
    "max_pixels": ("PIXELS", "images with more pixels are quarantined as decompression bombs"),
    "max_bytes": ("BYTES", "largest input file to accept, in bytes"),
    "max_labels": ("N", "most labels kept per image"),
    "min_confidence": ("0-100", "lowest label confidence kept, in percent"),
    "top_n": ("N", "rows kept by the report's top-N analyses (labels, creators, cameras)"),
    "near_duplicate_distance": (
        "BITS",
        "largest perceptual-hash distance (differing bits of 64) counted as a near-duplicate",
    ),
}


def _readable(value: Any) -> str:
    """The default as written, plus a rounder form for large sizes (``= 200 MiB``)."""
    if isinstance(value, int) and value >= 1024 * 1024 and value % (1024 * 1024) == 0:
        return f"{value} = {value // (1024 * 1024)} MiB"
    if isinstance(value, int) and value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value} = {value // 1_000_000} million"
    return str(value)


def add_config_arguments(parser: Any) -> None:
    """Add one ``--field-name`` option per config field to an argparse parser."""
    defaults = PipelineConfig()
    for f in fields(PipelineConfig):
        value = getattr(defaults, f.name)
        metavar, text = OPTION_HELP[f.name]
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            type=type(value),
            default=value,
            metavar=metavar,
            help=f"{text} (default: {_readable(value)})",
        )


def config_from_namespace(namespace: Any) -> PipelineConfig:
    """The config carried by an argparse namespace filled by :func:`add_config_arguments`."""
    return PipelineConfig(**{f.name: getattr(namespace, f.name) for f in fields(PipelineConfig)})
