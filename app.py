#!/usr/bin/env python3
"""The CDK app: ``cdk synth`` / ``cdk deploy``. Settings come from ``cdk.json`` context."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.imgpipe_stack import ImgpipeStack
from stacks.settings import DeploySettings


def build_app(context: dict[str, object] | None = None) -> cdk.App:
    """The app with its stack; tests call this with their own context."""
    app = cdk.App(context=context) if context is not None else cdk.App()
    settings = DeploySettings.from_context(
        {key: app.node.try_get_context(key) for key in ("imgpipe", "imgpipe:pipeline")}
    )
    ImgpipeStack(app, settings.stack_prefix, settings=settings)
    return app


if __name__ == "__main__":
    build_app().synth()
