"""The local-only session settings of the analyze stage, on a stand-in session (no JVM)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from analysis.analyze import LOCAL_SETTINGS, local_settings


class FakeConf:
    """The part of ``spark.conf`` that local_settings uses, over a dict."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def unset(self, key: str) -> None:
        self.values.pop(key, None)


def session(master: str, values: dict[str, str]) -> Any:
    return SimpleNamespace(sparkContext=SimpleNamespace(master=master), conf=FakeConf(values))


def test_a_cluster_session_keeps_its_settings_inside_the_block() -> None:
    # EMR runs big tables: one shuffle partition and no adaptive execution would hurt there.
    spark = session("yarn", {"spark.sql.shuffle.partitions": "200"})
    with local_settings(spark):
        assert spark.conf.values == {"spark.sql.shuffle.partitions": "200"}


def test_a_local_session_gets_the_settings_and_back_its_own_after() -> None:
    spark = session("local[2]", {"spark.sql.shuffle.partitions": "4"})
    with local_settings(spark):
        assert all(spark.conf.get(key) == value for key, value in LOCAL_SETTINGS.items())
    assert spark.conf.values == {"spark.sql.shuffle.partitions": "4"}


def test_settings_are_restored_when_the_block_fails() -> None:
    spark = session("local[*]", {"spark.sql.adaptive.enabled": "true"})
    with pytest.raises(RuntimeError), local_settings(spark):
        raise RuntimeError("a query failed")
    assert spark.conf.values == {"spark.sql.adaptive.enabled": "true"}
