"""The storage stack, asserted on its synthesized template."""

from __future__ import annotations

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match, Template

from app import build_app


@pytest.fixture(scope="module")
def template(imgpipe_template: Template) -> Template:
    return imgpipe_template


def test_both_buckets_are_encrypted_private_and_versioned(template: Template) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert (
            props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
                "ServerSideEncryptionByDefault"
            ]["SSEAlgorithm"]
            == "AES256"
        )
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert bucket["DeletionPolicy"] == "Retain"


def test_buckets_deny_requests_without_tls(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Principal"] == {"AWS": "*"}
            for s in statements
        )


def test_data_bucket_logs_access_and_expires_logs_reports_and_query_results(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": "data-bucket/",
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {"Prefix": "logs/emr/", "ExpirationInDays": 30, "Status": "Enabled"}
                        ),
                        Match.object_like(
                            {"Prefix": "reports/", "ExpirationInDays": 365, "Status": "Enabled"}
                        ),
                        Match.object_like(
                            {
                                "Prefix": "athena-results/",
                                "ExpirationInDays": 7,
                                "Status": "Enabled",
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_old_versions_expire_and_then_their_delete_markers(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                                "ExpiredObjectDeleteMarker": True,
                                "Status": "Enabled",
                            }
                        )
                    ]
                )
            },
            "LoggingConfiguration": Match.any_value(),  # the data bucket
        },
    )


def test_data_bucket_is_tagged_with_the_project(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "Tags": Match.array_with([{"Key": "project", "Value": "imgpipe"}]),
            "LoggingConfiguration": Match.any_value(),
        },
    )


def test_unknown_context_option_is_rejected() -> None:
    with pytest.raises(ValueError, match="report_retension_days"):
        build_app({"imgpipe": {"report_retension_days": 3}})
