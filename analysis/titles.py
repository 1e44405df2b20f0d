"""The charts' titles and number formats, without matplotlib: the page needs them, the charts too.

A report that reuses an earlier run's charts (nothing changed since) renders its page from
these alone, so matplotlib and seaborn (~2-4 s to import) are never loaded for it.
"""

from __future__ import annotations

# The charted tables and their titles, in report order.
TITLES: dict[str, str] = {
    "top_labels": "Top labels",
    "label_parents": "Label hierarchy",
    "label_categories": "Label categories",
    "label_pairs": "Labels seen together",
    "creators": "Images per creator",
    "images_over_time": "Images over time",
    "cameras": "Cameras",
    "formats": "Formats",
    "megapixels": "Resolution",
    "sharpness": "Sharpness",
    "brightness": "Brightness",
    "quality": "Quality flags",
    "exact_duplicates": "Exact duplicates",
    "near_duplicates": "Near duplicates",
    "quarantine_reasons": "Quarantine reasons",
}


def human_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
