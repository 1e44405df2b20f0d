"""The ingest Lambda's metrics, as it prints them, are the ones the alarms and dashboard read.

CloudWatch finds a metric only by namespace, name and exactly its dimensions; a graph or alarm
that differs in any of the three shows nothing and never fires, without an error anywhere. So
the handler runs on the moto rig, its embedded-metric-format (EMF) output is parsed as
CloudWatch would, and the synthesized dashboard and alarm are checked against it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import Rig, invoke, stubbed_rekognition, use

# Spelled here independently of imgpipe.deployment: what an operator would type in CloudWatch.
NAMESPACE = "imgpipe"
DIMENSIONS = {"service": "imgpipe-ingest"}

MetricId = tuple[str, str, tuple[tuple[str, str], ...]]  # namespace, name, sorted dimensions


def metric_id(namespace: str, name: str, dimensions: dict[str, str]) -> MetricId:
    return namespace, name, tuple(sorted(dimensions.items()))


def parse_emf(stdout: str) -> Counter[MetricId]:
    """Sum every metric in the EMF documents among ``stdout``'s lines, as CloudWatch would."""
    totals: Counter[MetricId] = Counter()
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue  # a log line
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = {name: document[name] for name in dimension_set}
                for metric in directive["Metrics"]:
                    values = document[metric["Name"]]
                    total = sum(values) if isinstance(values, list) else values
                    totals[metric_id(directive["Namespace"], metric["Name"], dimensions)] += total
    return totals


@pytest.fixture
def emitted(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Counter[MetricId]:
    """Two invocations: a new photo and a broken file, then a copy of the photo."""
    photo = jpeg_bytes(photo_like(400, 300, 7))
    rekognition, _ = stubbed_rekognition("ok")
    use(monkeypatch, rig, rekognition)
    capsys.readouterr()
    rig.put("ingest/alice/photo.jpg", photo)
    rig.put("ingest/alice/broken.png", b"%PDF-1.7 not a picture at all")
    assert invoke(rig.receive()) == []
    rig.put("ingest/bob/copy.jpg", photo)
    assert invoke(rig.receive()) == []
    return parse_emf(capsys.readouterr().out)


def test_handler_counts_outcomes_under_the_namespace_and_service_dimension(
    emitted: Counter[MetricId],
) -> None:
    assert emitted == {
        metric_id(NAMESPACE, "Accepted", DIMENSIONS): 2,
        metric_id(NAMESPACE, "Quarantined", DIMENSIONS): 1,
        metric_id(NAMESPACE, "RekognitionCalls", DIMENSIONS): 1,
        metric_id(NAMESPACE, "LabelCacheHits", DIMENSIONS): 1,
        # Published by every invocation, also as 0, so its alarm always has data.
        metric_id(NAMESPACE, "FailedMessages", DIMENSIONS): 0,
    }


def dashboard_metrics(template: Any) -> set[MetricId]:
    """The custom metrics (outside ``AWS/``) the dashboard graphs."""
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    # Tokens (Refs to queues, functions) sit inside JSON strings: any word keeps it valid.
    body = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))
    found = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            fields = [f for f in row if isinstance(f, str)]
            namespace, name, pairs = fields[0], fields[1], fields[2:]
            if not namespace.startswith("AWS/"):
                found.add(
                    metric_id(namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)))
                )
    return found


def test_dashboard_graphs_labeling_and_outcomes_as_the_handler_emits_them(
    emitted: Counter[MetricId], imgpipe_template: Any
) -> None:
    graphed = dashboard_metrics(imgpipe_template)
    assert {name for _, name, _ in graphed} == {
        *("RekognitionCalls", "LabelCacheHits", "Accepted", "Quarantined"),
    }
    assert graphed <= set(emitted)


def test_failed_messages_alarm_reads_the_metric_the_handler_emits(
    emitted: Counter[MetricId], imgpipe_template: Any
) -> None:
    alarms = imgpipe_template.find_resources("AWS::CloudWatch::Alarm").values()
    (alarm,) = [
        a["Properties"] for a in alarms if a["Properties"]["MetricName"] == "FailedMessages"
    ]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert metric_id(alarm["Namespace"], alarm["MetricName"], dimensions) in emitted
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
