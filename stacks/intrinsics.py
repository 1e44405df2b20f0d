"""Step Functions intrinsic-function expressions that the state machine's Task states use.

Kept apart from :mod:`stacks.orchestration` so that they can be read (and evaluated in tests)
without the constructs. Why the client token is built as it is: see that module's docstring.
"""

from __future__ import annotations

import re

# The run id inside the state machine: the execution's name (unique per state machine).
EXECUTION_NAME = "$$.Execution.Name"
CDK_TOKEN = re.compile(r"\$\{Token\[[^\]]*\]\}")


def intrinsic_literal(value: str) -> str:
    """``value`` as a quoted string literal inside a Step Functions intrinsic function.

    CDK token markers (``${Token[...]}``, e.g. the bucket name) are kept intact: they resolve
    to names that hold none of the characters the intrinsic syntax reserves.
    """
    pieces = CDK_TOKEN.split(value)
    markers = CDK_TOKEN.findall(value)
    escaped = [re.sub(r"([\\'{}])", r"\\\1", piece) for piece in pieces]
    joined = escaped[0] + "".join(m + e for m, e in zip(markers, escaped[1:], strict=True))
    return f"'{joined}'"


def client_token_expression(step: str) -> str:
    """The intrinsic giving ``step`` a ``ClientToken``, the same on retries, new on redrive.

    Why: see :mod:`stacks.orchestration`. ``$$.Execution.RedriveCount`` is 0 until a redrive.
    """
    parts = ("$$.Execution.Id", intrinsic_literal(step), "$$.Execution.RedriveCount")
    key = f"States.Format('{{}}/{{}}/{{}}', {', '.join(parts)})"
    return f"States.Hash({key}, 'SHA-256')"


def arguments_expression(arguments: list[str], run_id_placeholder: str) -> str:
    """``States.Array(...)`` of ``arguments`` with the execution name for the run id."""
    items = (
        EXECUTION_NAME if arg == run_id_placeholder else intrinsic_literal(arg) for arg in arguments
    )
    return f"States.Array({', '.join(items)})"
