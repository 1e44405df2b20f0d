"""Why an analysis has nothing to show: one line in the report instead of an empty chart."""

from __future__ import annotations

import pandas as pd

# Why a table has nothing to chart, said once in place of an empty chart.
EMPTY_REASONS: dict[str, str] = {
    "top_labels": "No image has a label (the run used no labeler, or it found nothing).",
    "label_parents": "No label has a parent label.",
    "label_categories": "No label has a category.",
    "label_pairs": "No image has two unrelated labels (a label and its parent do not count).",
    "creators": "No image has a creator.",
    "images_over_time": "No image has an EXIF date taken.",
    "cameras": "No image records its camera (EXIF make and model).",
    "formats": "No image has a format.",
    "megapixels": "No image could be measured (every decode failed).",
    "sharpness": "No image could be measured (every decode failed).",
    "brightness": "No image could be measured (every decode failed).",
    "quality": "No image is blurry, dark or overexposed, and every image was measured.",
    "exact_duplicates": "No two images have the same content.",
    "near_duplicates": "No two different images look nearly the same (pHash).",
    "quarantine_reasons": "Nothing was quarantined.",
}
NO_IMAGES = "No image was accepted in this run."


def nothing_to_show(name: str, frame: pd.DataFrame | None, images: int) -> str | None:
    """One line saying why table ``name`` has nothing to chart, or ``None`` when it has.

    Args:
        name: The analysis.
        frame: Its result table (``None`` when missing).
        images: The accepted images of the run (``overview.images``).
    """
    if images == 0 and name != "quarantine_reasons":
        return NO_IMAGES
    if frame is None or frame.empty:
        return EMPTY_REASONS[name]
    columns = set(frame.columns)
    no_camera = (
        name == "cameras"
        and {"make", "model"} <= columns
        and ((frame["make"] == "unknown") & (frame["model"] == "unknown")).all()
    )
    unmeasured = (
        name in ("megapixels", "sharpness", "brightness")
        and {"bin", "images"} <= columns
        and not frame.loc[frame["bin"] != "unknown", "images"].any()
    )
    nothing_flagged = name == "quality" and "images" in columns and not frame["images"].any()
    return EMPTY_REASONS[name] if no_camera or unmeasured or nothing_flagged else None
