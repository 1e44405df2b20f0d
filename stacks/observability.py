"""PLACEHOLDER being replaced (issue 2): alarms and the dashboard."""

from __future__ import annotations

from constructs import Construct

from stacks.ingest import Ingest
from stacks.orchestration import Orchestration
from stacks.settings import DeploySettings


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        ingest: Ingest,
        orchestration: Orchestration,
    ) -> None:
        super().__init__(scope, construct_id)
