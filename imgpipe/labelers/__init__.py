"""Labelers: ``none``, ``local`` (offline model) and ``rekognition``."""

from __future__ import annotations

from imgpipe.labelers.base import (
    ImageInput,
    Labeler,
    LabelerOptions,
    LabelingError,
    NoLabeler,
)

LABELER_NAMES = ("local", "none", "rekognition")


class LabelerUnavailable(Exception):
    """A labeler's dependencies are missing; the message says how to install them."""


def check_aws_access() -> None:
    """Raise :class:`LabelerUnavailable` unless boto3 finds credentials and a region.

    Checked before a run starts: otherwise every image would be quarantined, one by one,
    with botocore's NoCredentialsError.
    """
    import boto3

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise LabelerUnavailable(
            "--labeler rekognition needs AWS credentials: run `aws configure` or set "
            "AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    if not session.region_name:
        raise LabelerUnavailable(
            "--labeler rekognition needs an AWS region: set AWS_DEFAULT_REGION or `region` in "
            "~/.aws/config (`aws configure`)"
        )


def make_labeler(name: str, options: LabelerOptions | None = None) -> Labeler:
    """Build a labeler by name. Raises :class:`LabelerUnavailable` with an install hint."""
    options = options or LabelerOptions()
    if name == "none":
        return NoLabeler(options)
    if name == "local":
        from imgpipe.labelers.local import LocalLabeler, missing_module

        missing = missing_module()
        if missing is not None:
            raise LabelerUnavailable(
                f"the local labeler needs its model ({missing}): "
                "pip install 'imgpipe[local]' (or use --labeler none)"
            )
        return LocalLabeler(options)
    if name == "rekognition":
        from imgpipe.labelers.rekognition import RekognitionLabeler

        check_aws_access()
        return RekognitionLabeler(options)
    raise ValueError(f"unknown labeler {name!r}; choose one of {', '.join(LABELER_NAMES)}")


__all__ = [
    "LABELER_NAMES",
    "ImageInput",
    "Labeler",
    "LabelerOptions",
    "LabelerUnavailable",
    "LabelingError",
    "NoLabeler",
    "make_labeler",
]
