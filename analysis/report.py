"""The HTML report of a run: chart PNGs and ``index.html`` under ``reports/RUN_ID/``.

Everything goes through a :class:`~imgpipe.store.Store`, so the same code runs locally and as
the cloud report step (which passes ``tables=None`` and reads the analyze job's Parquet tables).
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import Any

import jinja2
import pandas as pd

from analysis import report_prefix, tables_prefix
from analysis.empty import nothing_to_show
from analysis.gallery import gallery_view
from analysis.titles import TITLES, human_bytes
from imgpipe.store import Store

TABLE_ROWS = 10  # rows of each table shown under its chart
# Columns shown under each chart; byte counts are shown human-readable.
SHOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "top_labels": ("label", "images", "mean_confidence"),
    "label_parents": ("parent", "images", "labels"),
    "label_categories": ("category", "images"),
    "label_pairs": ("label_a", "label_b", "images"),
    "creators": ("creator", "images", "bytes", "top_labels"),
    "images_over_time": ("month", "images"),
    "cameras": ("make", "model", "images"),
    "formats": ("format", "images", "bytes"),
    "megapixels": ("bin", "images"),
    "sharpness": ("bin", "images"),
    "brightness": ("bin", "images"),
    "quality": ("flag", "rule", "images", "keys"),
    "exact_duplicates": ("copies", "key", "creator"),
    "near_duplicates": ("key", "closest", "distance", "near_duplicates"),
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


def accepted_images(tables: Mapping[str, pd.DataFrame]) -> int:
    """The images in the run's table (``overview.images``; 0 without an overview)."""
    overview = tables.get("overview")
    if overview is None or overview.empty or "images" not in overview.columns:
        return 0
    return int(overview["images"].iloc[0])


def render_charts(store: Store, run_id: str, tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Draw the chart of every table with something to show; return the file names.

    A table with nothing to show gets no chart: the page says why in one line instead.
    """
    # Imported here: matplotlib and seaborn take seconds, and a page that reuses an earlier
    # run's charts (copy_charts) never needs them.
    from analysis.charts import chart, figure_png

    prefix = report_prefix(run_id)
    images = accepted_images(tables)
    names: list[str] = []
    for name in TITLES:
        if nothing_to_show(name, tables.get(name), images):
            continue
        png = figure_png(chart(name, tables.get(name)))
        store.put_bytes(f"{prefix}{name}.png", png, "image/png")
        names.append(f"{name}.png")
    return names


def copy_charts(store: Store, source_run: str, run_id: str) -> list[str]:
    """Copy the charts of a run whose tables this run reuses unchanged; return the file names.

    Charts are drawn from the tables alone, so the same tables give the same PNGs.
    """
    source, target = report_prefix(source_run), report_prefix(run_id)
    names: list[str] = []
    for name in TITLES:
        png = store.get_bytes_or_none(f"{source}{name}.png")
        if png is not None:
            store.put_bytes(f"{target}{name}.png", png, "image/png")
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


def _count(summary: Mapping[str, Any], name: str) -> int:
    value = summary.get(name)
    return int(value) if isinstance(value, int | float) else 0


def summary_cards(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The summary's counts as cards whose parts add up (value, name, how it splits)."""
    inputs, accepted = _count(summary, "inputs"), _count(summary, "accepted")
    quarantined, processed = _count(summary, "quarantined"), _count(summary, "processed")
    cards = [
        {
            "value": inputs,
            "name": "inputs",
            "detail": f"{accepted:,} accepted + {quarantined:,} quarantined",
        },
    ]
    if "first_run" in summary:  # only a local run knows what the last run saw
        unchanged = _count(summary, "skipped_unchanged")
        cards.append(
            {
                "value": inputs - unchanged,
                "name": "inspected by this run",
                "detail": "first run: every input is new"
                if summary["first_run"]
                else f"{unchanged:,} unchanged since the last run were not inspected again",
            }
        )
    process = (summary.get("stages") or {}).get("process") or {}
    parts = [f"of {accepted:,} accepted"]
    if "decoded" in process:
        parts.append(
            f"{int(process['decoded']):,} decoded by this run + "
            f"{int(process.get('reused', 0)):,} reused (earlier runs or exact copies)"
        )
    if accepted > processed:
        parts.append(f"{accepted - processed:,} could not be decoded")
    cards.append(
        {
            "value": processed,
            "name": "processed (thumbnail and features)",
            "detail": "; ".join(parts),
        }
    )
    return cards


STAGE_DETAILS = {
    "ingest": "inputs read: accepted or quarantined",
    "process": "images in the table",
    "analyze": "images analysed",
    "report": "images reported",
}


def _stage_rows(stages: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, int, str]]:
    rows = []
    for name, stage in stages.items():
        detail = STAGE_DETAILS.get(name, "")
        if "decoded" in stage:
            detail = f"{int(stage['decoded']):,} decoded + {int(stage.get('reused', 0)):,} reused"
        seconds = f"{float(stage.get('seconds', 0.0)):.1f}"
        rows.append((name, seconds, int(stage.get("images", 0)), detail))
    return rows


def _summary_view(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": summary.get("run_id", ""),
        "cards": summary_cards(summary),
        "stages": _stage_rows(summary.get("stages") or {}),
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
    images = accepted_images(tables)
    sections = [
        {
            "name": name,
            "title": TITLES[name],
            "chart": f"{name}.png" if f"{name}.png" in charts else None,
            "empty": nothing_to_show(name, tables.get(name), images),
            "table": table_view(tables.get(name), SHOWN_COLUMNS[name], TABLE_ROWS),
        }
        for name in TITLES
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
            gallery=gallery_view(tables),
        )
    )


def build_report(
    store: Store,
    run_id: str,
    tables: dict[str, pd.DataFrame] | None,
    summary: dict[str, Any],
    charts_of: str | None = None,
) -> str:
    """Write the charts and ``index.html`` of a run; return the key of ``index.html``.

    The report stage's own row (seconds until the page is rendered, images reported) is
    added to ``summary["stages"]``, so the page and the caller's ``summary.json`` show it.

    Args:
        store: Where ``reports/RUN_ID/`` lives.
        run_id: The run to report on.
        tables: The analyze job's tables by name; ``None`` reads them from the store.
        summary: The run summary (run_id, inputs, accepted, ..., stages).
        charts_of: A run whose tables these are, unchanged: its charts are copied, not drawn.
    """
    started = time.perf_counter()
    if tables is None:
        tables = load_tables(store, run_id)
    if charts_of is None:
        charts = render_charts(store, run_id, tables)
    else:
        charts = copy_charts(store, charts_of, run_id)
    summary.setdefault("stages", {})["report"] = {
        "seconds": round(time.perf_counter() - started, 3),
        "images": accepted_images(tables),
    }
    html = render_html(run_id, tables, summary, charts)
    key = f"{report_prefix(run_id)}index.html"
    store.put_bytes(key, html.encode("utf-8"), "text/html; charset=utf-8")
    return key
