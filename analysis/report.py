"""The HTML report of a run: chart PNGs and ``index.html`` under ``reports/RUN_ID/``.

Everything goes through a :class:`~imgpipe.store.Store`, so the same code runs locally and as
the cloud report step (which passes ``tables=None`` and reads the analyze job's Parquet tables).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import jinja2
import pandas as pd

from analysis import report_prefix, tables_prefix
from analysis.charts import CHARTS, TITLES, chart, figure_png, human_bytes
from imgpipe.store import Store

TABLE_ROWS = 10  # rows of each table shown under its chart
GALLERY_SIZE = 6
SUMMARY_FIELDS = ("inputs", "accepted", "quarantined", "processed", "skipped_unchanged")
# Columns shown under each chart; byte counts are shown human-readable.
SHOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "top_labels": ("label", "images", "mean_confidence"),
    "label_parents": ("name", "images"),
    "label_categories": ("category", "images"),
    "label_pairs": ("label_a", "label_b", "images"),
    "creators": ("creator", "images", "bytes", "top_labels"),
    "images_over_time": ("month", "images"),
    "cameras": ("make", "model", "images"),
    "formats": ("format", "images", "bytes"),
    "megapixels": ("bin", "images"),
    "sharpness": ("bin", "images"),
    "brightness": ("bin", "images"),
    "quality": ("flag", "rule", "images"),
    "exact_duplicates": ("copies", "key", "creator"),
    "near_duplicates": ("key_a", "key_b", "distance"),
    "quarantine_reasons": ("reason", "objects"),
}


def load_tables(store: Store, run_id: str) -> dict[str, pd.DataFrame]:
    """Read every ``reports/RUN_ID/tables/NAME.parquet`` of a run, by table name."""
    prefix = tables_prefix(run_id)
    tables: dict[str, pd.DataFrame] = {}
    for key in store.list_keys(prefix):
        name = key[len(prefix) :]
        if name.endswith(".parquet") and "/" not in name:
            tables[name.removesuffix(".parquet")] = pd.read_parquet(
                io.BytesIO(store.get_bytes(key))
            )
    return tables


def render_charts(store: Store, run_id: str, tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Draw every chart (a missing or empty table draws "no data"); return the file names."""
    prefix = report_prefix(run_id)
    names: list[str] = []
    for name in CHARTS:
        png = figure_png(chart(name, tables.get(name)))
        store.put_bytes(f"{prefix}{name}.png", png, "image/png")
        names.append(f"{name}.png")
    return names


def _cell(column: str, value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if column == "bytes":
        return human_bytes(value)
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_view(frame: pd.DataFrame | None, columns: tuple[str, ...], rows: int) -> dict[str, Any]:
    """The first ``rows`` rows of a table as strings, for the template."""
    if frame is None or frame.empty:
        return {"columns": list(columns), "rows": [], "total": 0}
    shown = [c for c in columns if c in frame.columns]
    body = [
        [_cell(c, v.item() if hasattr(v, "item") else v) for c, v in zip(shown, row, strict=True)]
        for row in frame[shown].head(rows).itertuples(index=False, name=None)
    ]
    return {"columns": shown, "rows": body, "total": len(frame)}


def gallery(tables: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Per top label (in top-label order), up to six thumbnails, most confident first."""
    frame = tables.get("label_gallery")
    if frame is None or frame.empty:
        return []
    top = tables.get("top_labels")
    order = list(top["label"]) if top is not None and not top.empty else []
    labels = order + [x for x in dict.fromkeys(frame["label"]) if x not in order]
    sections = []
    for name in labels:
        rows = frame[frame["label"] == name].sort_values(
            ["confidence", "key"], ascending=[False, True]
        )
        images = [
            {"key": key, "src": f"../../{thumb}", "confidence": f"{conf:.0f}%"}
            for key, thumb, conf in rows[["key", "thumbnail_key", "confidence"]]
            .head(GALLERY_SIZE)
            .itertuples(index=False, name=None)
        ]
        if images:
            sections.append({"label": name, "images": images})
    return sections


def _summary_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    stages = summary.get("stages") or {}
    return {
        "run_id": summary.get("run_id", ""),
        "counts": [(f.replace("_", " "), summary.get(f, 0)) for f in SUMMARY_FIELDS],
        "stages": [
            (name, f"{float(s.get('seconds', 0.0)):.1f}", s.get("images", 0))
            for name, s in stages.items()
        ],
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("analysis", "templates"),
        autoescape=True,  # names come from user files
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    run_id: str, tables: Mapping[str, pd.DataFrame], summary: Mapping[str, Any], charts: list[str]
) -> str:
    """The report page as HTML text (charts referenced by relative file names)."""
    sections = [
        {
            "name": name,
            "title": TITLES[name],
            "chart": f"{name}.png" if f"{name}.png" in charts else None,
            "table": table_view(tables.get(name), SHOWN_COLUMNS[name], TABLE_ROWS),
        }
        for name in CHARTS
    ]
    overview = tables.get("overview")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run_id=run_id,
            summary=_summary_view({"run_id": run_id, **summary}),
            overview=table_view(overview, tuple(overview.columns), 1)
            if overview is not None
            else None,
            sections=sections,
            quarantine=table_view(
                tables.get("quarantine_list"), ("key", "reason", "message"), rows=1000
            ),
            gallery=gallery(tables),
        )
    )


def build_report(
    store: Store,
    run_id: str,
    tables: dict[str, pd.DataFrame] | None,
    summary: dict[str, Any],
) -> str:
    """Write the charts and ``index.html`` of a run; return the key of ``index.html``.

    Args:
        store: Where ``reports/RUN_ID/`` lives.
        run_id: The run to report on.
        tables: The analyze job's tables by name; ``None`` reads them from the store.
        summary: The run summary (run_id, inputs, accepted, ..., stages).
    """
    if tables is None:
        tables = load_tables(store, run_id)
    charts = render_charts(store, run_id, tables)
    html = render_html(run_id, tables, summary, charts)
    key = f"{report_prefix(run_id)}index.html"
    store.put_bytes(key, html.encode("utf-8"), "text/html; charset=utf-8")
    return key
