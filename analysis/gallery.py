"""The report's gallery: every accepted image once, with what the page filters it by.

Built from the analyze job's ``gallery`` table (one row per content: exact copies share a
thumbnail and are one entry naming every key). The page lists every entry in plain HTML, so
it reads without JavaScript; a small inline script filters by label, creator and quality flag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd


def _strings(value: Any) -> list[str]:
    """A list column's cell (numpy array, list or missing) as a list of strings."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return [str(v) for v in value]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def gallery_view(tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """The entries and the filter choices of the gallery, for the template.

    Returns:
        ``entries`` (one per content: ``src``, ``files`` (its keys), ``creators``, ``labels``,
        ``flags``, ``error``), ``labels`` (label names, most frequent first), ``creators``,
        ``flags``, ``unlabeled`` (entries without a label) and ``images`` (keys shown).
    """
    frame = tables.get("gallery")
    entries: list[dict[str, Any]] = []
    if frame is not None and not frame.empty:
        for row in frame.to_dict("records"):
            thumb = row.get("thumbnail_key")
            entries.append(
                {
                    "src": f"../../{thumb}" if isinstance(thumb, str) and thumb else None,
                    "files": _strings(row.get("keys")),
                    "creators": _strings(row.get("creators")),
                    "labels": _strings(row.get("labels")),
                    "flags": _strings(row.get("flags")),
                    "error": _text(row.get("process_error")),
                }
            )
    return {
        "entries": entries,
        "labels": _by_frequency(e["labels"] for e in entries),
        "creators": sorted({c for e in entries for c in e["creators"]}),
        "flags": _by_frequency(e["flags"] for e in entries),
        "unlabeled": sum(1 for e in entries if not e["labels"]),
        "images": sum(len(e["files"]) for e in entries),
    }


def _by_frequency(groups: Iterable[list[str]]) -> list[str]:
    counts: Counter[str] = Counter()
    for names in groups:
        counts.update(set(names))
    return [name for name, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
